"""The loki source through httpx against a fake Loki speaking its documented wire format."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.servers.loki import FakeLoki
from watchdog.evaluation.evaluate import evaluate
from watchdog.foundation.model import RuleState, SampleKind, Verdict
from watchdog.rulefile.telemetry import LokiRule
from watchdog.sources.base import SampleContext
from watchdog.sources.loki import LokiSource

pytestmark = pytest.mark.integration

RLS = 'sum(count_over_time({app="{{ service }}"} |= "row-level security" [5m]))'


@pytest.fixture
async def loki() -> AsyncIterator[FakeLoki]:
    fake = FakeLoki(tenant_required=True)
    await fake.start()
    yield fake
    await fake.stop()


def rule(query: str = RLS, **kw: Any) -> LokiRule:
    return LokiRule.model_validate({"name": "rls", "source": "loki", "query": query,
                                    "threshold": "> 0", **kw})  # fmt: skip


async def push(
    loki: FakeLoki, app: str, *entries: tuple[float, str], tenant: str = "team-a"
) -> None:
    streams = [
        {"stream": {"app": app}, "values": [[str(int(t * 1e9)), line] for t, line in entries]}
    ]
    async with httpx.AsyncClient() as client:
        resp = await client.post(f"{loki.url}/loki/api/v1/push", json={"streams": streams},
                                 headers={"X-Scope-OrgID": tenant})  # fmt: skip
    assert resp.status_code == 204


async def test_counts_matching_lines_since_the_window_opened_only(loki: FakeLoki) -> None:
    now = time.time()
    opened = now - 60
    rls = 'ERROR: new row violates row-level security policy for table "orders"'
    await push(loki, "api", (opened - 120, rls), (opened + 10, rls), (opened + 20, "GET /health 200"),
               (opened + 30, rls))  # fmt: skip
    await push(loki, "worker", (opened + 40, rls))
    source = LokiSource(loki.url, tenant="team-a", token="loki-reader-token-1234")
    sample = await source.sample(rule(), SampleContext("w", {"service": "api"}, now, since=opened))
    await source.close()
    # The line from before the window (the previous version's) is not counted: [5m] → [60s].
    assert sample.kind is SampleKind.VALUES and [s.value for s in sample.series] == [2.0]
    (request,) = loki.requests
    assert request["query"] == 'sum(count_over_time({app="api"} |= "row-level security" [60s]))'
    assert request["headers"]["X-Scope-OrgID"] == "team-a"
    assert request["headers"]["Authorization"] == "Bearer loki-reader-token-1234"
    assert abs(int(request["time"]) / 1e9 - now) < 1e-3


async def test_no_matching_lines_is_no_data_which_the_pack_reads_as_healthy(loki: FakeLoki) -> None:
    source = LokiSource(loki.url, tenant="team-a")
    now = time.time()
    sample = await source.sample(
        rule(), SampleContext("w", {"service": "api"}, now, since=now - 30)
    )
    await source.close()
    assert sample.kind is SampleKind.NO_DATA
    result = evaluate(rule(no_data="ok"), RuleState(), sample, now)
    assert result.state.verdict is Verdict.OK


async def test_loki_down_is_inconclusive_not_a_rollback(loki: FakeLoki) -> None:
    await loki.stop()
    source = LokiSource(loki.url, tenant="team-a", timeout=2)
    now = time.time()
    sample = await source.sample(
        rule(), SampleContext("w", {"service": "api"}, now, since=now - 30)
    )
    await source.close()
    assert sample.kind is SampleKind.ERROR and sample.transient
    where = loki.url.split("://")[1]
    assert sample.error == f"cannot connect to Loki at {where}: connection refused"
    result = evaluate(rule(), RuleState(), sample, now)
    assert result.state.verdict is Verdict.INCONCLUSIVE


@pytest.mark.parametrize(
    ("kwargs", "query", "fragment", "transient"),
    [
        ({}, RLS, "Loki answered HTTP 401: no org id", False),
        ({"tenant": "team-a"}, "count_over_time(nonsense", "HTTP 400: parse error", False),
    ],
)
async def test_loki_errors_name_the_problem(loki: FakeLoki, kwargs: dict[str, Any], query: str,
                                           fragment: str, transient: bool) -> None:  # fmt: skip
    source = LokiSource(loki.url, **kwargs)
    now = time.time()
    sample = await source.sample(rule(query), SampleContext("w", {"service": "api"}, now))
    await source.close()
    assert sample.kind is SampleKind.ERROR and fragment in (sample.error or "")
    assert sample.transient is transient


async def test_an_oversized_answer_is_refused(loki: FakeLoki) -> None:
    now = time.time()
    await push(loki, "api", *[(now - i, f"row-level security {i}") for i in range(1, 50)])
    by_line = 'count_over_time({app="api"} |= "row-level security" [5m])'  # one series per stream
    source = LokiSource(loki.url, tenant="team-a", max_bytes=64)
    sample = await source.sample(rule(by_line), SampleContext("w", {}, now))
    await source.close()
    assert sample.kind is SampleKind.ERROR and "exceeds 64 bytes" in (sample.error or "")


async def test_range_queries_for_replay(loki: FakeLoki) -> None:
    base = float(int(time.time()) - 100)
    await push(loki, "api", (base + 5, "row-level security"), (base + 25, "row-level security"))
    source = LokiSource(loki.url, tenant="team-a")
    query = 'sum(count_over_time({app="api"} |= "row-level security" [10s]))'
    ((labels, points),) = await source.query_range(query, base, base + 30, 10)
    await source.close()
    assert labels == {} and points == [(base + 10, 1.0), (base + 30, 1.0)]


async def test_basic_auth_is_sent(loki: FakeLoki) -> None:
    source = LokiSource(loki.url, tenant="team-a", basic=("reader", "s3cret-password-for-loki"))
    await source.sample(rule(), SampleContext("w", {"service": "api"}, time.time()))
    await source.close()
    assert loki.requests[-1]["headers"]["Authorization"].startswith("Basic ")


@pytest.mark.parametrize(
    ("rule_name", "line"),
    [
        ("rls-violations-loki",
         'ERROR:  new row violates row-level security policy for table "orders"'),
        ("fk-violations-loki",
         'ERROR:  insert or update on table "order_items" violates foreign key constraint '
         '"order_items_order_id_fkey"'),
    ],
)  # fmt: skip
async def test_the_packs_loki_rules_count_postgres_log_lines(
    loki: FakeLoki, rule_name: str, line: str
) -> None:
    from tests.shipped import REPO
    from watchdog.rulefile.load import load_rules

    rules = load_rules([REPO / "rules/alternatives/data-integrity-loki.yml"])
    pack_rule = rules.by_name[rule_name]
    now = time.time()
    await push(loki, "postgres", (now - 5, line), (now - 4, "LOG:  checkpoint starting: time"))
    source = LokiSource(loki.url, tenant="team-a")
    sample = await source.sample(
        pack_rule, SampleContext("w", {"service": "api"}, now, since=now - 60)
    )
    await source.close()
    assert [s.value for s in sample.series] == [1.0]
    assert evaluate(pack_rule, RuleState(), sample, now).state.verdict is Verdict.FIRING


async def test_replay_reaches_the_live_verdicts_through_range_queries(loki: FakeLoki) -> None:
    from watchdog.evaluation.replay import Replayer
    from watchdog.foundation.model import Deployment
    from watchdog.rulefile.load import RuleSet

    class NoPrometheus:
        async def query_range(self, *_: Any) -> Any:
            raise AssertionError("a loki rule must not query Prometheus")

    opened = float(int(time.time()) - 120)
    await push(loki, "api", (opened + 31, "row-level security"), (opened + 32, "GET /x 200"))
    r = rule(interval="10s")
    source = LokiSource(loki.url, tenant="team-a")
    deployment = Deployment("api", "production", "v2", "v1")
    replayed = await Replayer(NoPrometheus(), upstreams={"loki": source}).run(  # type: ignore[arg-type]
        RuleSet.of([r]), deployment, opened, opened + 60
    )
    live = [
        await source.sample(
            r, SampleContext("w", deployment.template_vars(), opened + t, since=opened)
        )
        for t in range(0, 61, 10)
    ]
    await source.close()
    assert replayed.replayed == ["rls"] and replayed.evaluations == 7
    firing = replayed.first("rls", "firing")
    assert firing is not None and firing.at == opened + 40  # the first look after the line
    assert [s.series[0].value if s.series else None for s in live] == [None] * 4 + [1.0] * 3
    assert replayed.rollback_at is None  # the rule's action is notify here
    # Without a Loki configured, the rule is said to be skipped, never silently passed.
    skipped = await Replayer(NoPrometheus()).run(RuleSet.of([r]), deployment, opened, opened + 60)  # type: ignore[arg-type]
    assert skipped.skipped == {"rls": "loki rules replay with WATCHDOG_LOKI_URL set"}
