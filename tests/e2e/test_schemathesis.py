"""Schemathesis against /openapi.json of a real `watchdog serve`: no 5xx, and every
response matches the schema (status, content type, body). Bounded examples per operation."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from examples.stack import WatchdogServer, start_watchdog
from tests.rules import rules as rule_file

pytestmark = pytest.mark.e2e

TOKEN = "schemathesis-token-0123456789"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WatchdogServer]:
    home = tmp_path_factory.mktemp("schemathesis")
    rules = rule_file(home).group("g", "1h").http("probe", "http://127.0.0.1:9/health").write()
    with start_watchdog(home, {"rules": str(rules)}, token=TOKEN) as s:
        yield s


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def test_no_server_errors_and_responses_match_the_schema(server: WatchdogServer) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json", headers=auth)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10  # the API, the receiver, the status page, reload…
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=12, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def run(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=server.url, headers=auth, checks=CHECKS)

        run()
