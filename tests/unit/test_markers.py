"""Deploy markers: bodies for each milestone, and routes never hold them back."""

from __future__ import annotations

from typing import Any

from watchdog.foundation.clock import FakeClock
from watchdog.foundation.model import Deployment, Event, EventKind, Window, WindowPhase
from watchdog.notify.config import Route
from watchdog.notify.markers import GrafanaAnnotations, SentryDeploys, annotation
from watchdog.notify.outbox import Outbox

WINDOW = Window(
    "w1", Deployment("api", "prod", "v2", "v1"), WindowPhase.WATCHING, 100.0, 1900.0, 100.0
)


class Named:
    def __init__(self, name: str) -> None:
        self.name = name

    def wants(self, kind: EventKind) -> bool:
        return True


def test_routes_pick_people_channels_but_markers_always_get_their_events() -> None:
    channels: dict[str, Any] = {"slack": Named("slack"), "grafana": Named("grafana"),
                                "sentry_deploys": Named("sentry_deploys")}  # fmt: skip
    routes = [Route(channels=["slack"], services=["pay*"], min_severity="critical")]
    outbox = Outbox(None, channels, routes, FakeClock())  # type: ignore[arg-type]
    opened = Event("w1", 100.0, EventKind.WINDOW_OPENED, "opened")
    assert outbox.route(opened, WINDOW) == ["grafana", "sentry_deploys"]


def test_each_marker_channel_wants_only_its_milestones() -> None:
    grafana = GrafanaAnnotations(None, "http://g", "t")  # type: ignore[arg-type]
    sentry = SentryDeploys(None, "http://s", "acme", "t")  # type: ignore[arg-type]
    wanted = {k for k in EventKind if grafana.wants(k)}
    assert wanted == {EventKind.WINDOW_OPENED, EventKind.ROLLBACK_STARTED,
                      EventKind.ROLLBACK_SUCCEEDED, EventKind.ROLLBACK_FAILED,
                      EventKind.WINDOW_PASSED, EventKind.WINDOW_INCONCLUSIVE,
                      EventKind.WINDOW_EXPIRED_WHILE_HELD,
                      EventKind.WINDOW_WOULD_HAVE_ROLLED_BACK}  # fmt: skip
    assert {k for k in EventKind if sentry.wants(k)} == {EventKind.WINDOW_OPENED,
                                                        EventKind.ROLLBACK_SUCCEEDED}  # fmt: skip


def test_annotation_bodies() -> None:
    failed = annotation(
        Event("w1", 130.5, EventKind.ROLLBACK_FAILED, "step rb failed"), WINDOW, None
    )
    assert failed == {"time": 130500, "tags": ["rollback", "api", "v2", "prod"],
                      "text": "api v2: rollback FAILED (to v1). step rb failed"}  # fmt: skip
    passed = annotation(Event("w1", 1900.0, EventKind.WINDOW_PASSED, "ok"), WINDOW, "dash")
    assert (passed["time"], passed["timeEnd"], passed["dashboardUID"]) == (100000, 1900000, "dash")


def test_a_window_that_ended_unjudged_is_a_region_saying_so() -> None:
    end = Event("w1", 1900.0, EventKind.WINDOW_INCONCLUSIVE, "inconclusive: watched nothing")
    body = annotation(end, WINDOW, None)
    assert (body["time"], body["timeEnd"]) == (100_000, 1_900_000)
    assert body["text"].startswith("api v2: watch window INCONCLUSIVE (not judged). inconclusive")
