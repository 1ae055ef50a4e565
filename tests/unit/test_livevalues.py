"""Label values a rule names that no series has (watchdog/rulefile/livevalues.py), without a
server: the shapes of values, the listing, the hint for status codes."""

from __future__ import annotations

from watchdog.rulefile.livevalues import listed, shape, value_problems
from watchdog.rulefile.promql import Matcher


class Values:
    def __init__(self, **labels: list[str]) -> None:
        self.labels = labels
        self.asked: list[tuple[str, str]] = []

    def label_values(self, label: str, match: str) -> list[str]:
        self.asked.append((label, match))
        return self.labels.get(label, [])


SERVICE = (Matcher("service", "=", "api"),)


def test_shapes_tell_codes_from_classes() -> None:
    assert shape("500") == "999" and shape("5xx") == "9aa" and shape("GET") == "aaa"
    assert listed([str(c) for c in range(200, 212)]) == "200, 201, 202, 203, 204, 205, 206, 207, …"


def test_a_value_of_another_shape_is_an_error_with_the_values_and_a_hint() -> None:
    prom = Values(status=["2xx", "4xx", "5xx"])
    found = value_problems("http_requests_total", SERVICE, [Matcher("status", "=", "500")], prom)
    assert found == [
        (
            'status="500" can never match http_requests_total{service="api"}: status has 2xx, '
            '4xx, 5xx, none like "500" (to match either form: status=~"5..")',
            True,
        )
    ]
    assert prom.asked == [("status", 'http_requests_total{service="api"}')]


def test_a_value_of_the_same_shape_is_a_note() -> None:
    prom = Values(status=["200", "404"])
    [(message, error)] = value_problems("x", (), [Matcher("status", "=", "500")], prom)
    assert not error and message.startswith('status="500" matches no series of x right now')


def test_a_regex_that_matches_a_value_is_fine_and_one_that_does_not_is_a_note() -> None:
    prom = Values(status_code=["200", "500"])
    assert value_problems("x", (), [Matcher("status_code", "=~", "5..")], prom) == []
    [(_, error)] = value_problems("x", (), [Matcher("status_code", "=~", "4..")], prom)
    assert not error


def test_a_missing_label_is_an_error_even_for_a_not_empty_matcher() -> None:
    prom = Values(status=["2xx"])
    found = value_problems("x", (), [Matcher("version", "!=", ""), Matcher("le", "!=", "1")], prom)
    assert found == [("series x have no 'version' label, so the rule never matches", True)]
