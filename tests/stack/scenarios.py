"""Every scenario of the stack suite, run side by side on one event loop.

Watchdogs (the real ``App``, in-process) load the shipped rule files unchanged except
for timing: every `for` divided by ``FACTOR`` and every interval ``INTERVAL``, plus
where probes and logs live on this machine. Faults that could disturb each other run
under separate services (one app instance, database or Celery worker each).

* ``main``: api, workers, manual and synthetic rules; windows for the services
  health, errors, slow, celery and manual (and the redeploy of errors).
* one watchdog per database scenario (its ``app`` target is that scenario's
  database): database and data-integrity rules.
* ``scrape``: ``rules/alternatives/api-scrape.yml`` (`source: scrape`, the app's own
  /metrics, no Prometheus); windows for the services scrape5xx and scrapeslow.
* ``healthy``: the whole pack, one window of ``HEALTHY_WINDOW`` real seconds.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any

import httpx
from pydantic import SecretStr

from examples.stack import query_values
from tests.shipped import shipped, shipped_names, write_rules
from tests.stack.faults import Trigger, healer, triggers
from tests.stack.recorder import Recorder, recorder
from tests.stack.stack import APPS, SCRAPE, Stack
from watchdog.app import App
from watchdog.foundation.durations import parse_duration
from watchdog.foundation.model import Deployment, EventKind, WindowPhase
from watchdog.judge.stats import LEVEL_SHIFT_STEPS, MIN_PAIRS
from watchdog.settings import Settings

FACTOR = 30  # the runbook's minutes become seconds: `for: 3m` runs as 6s
INTERVAL = 2.0
HEALTHY_WINDOW = 185.0  # more than three real minutes of steady traffic
HANG_GUARD = 180.0  # seconds: only a hung run waits this long for an event
REDEPLOY_AFTER = 30.0
REDEPLOY_WINDOW = HEALTHY_WINDOW  # as long as the healthy deploy: the judge sees as much
FAULT_WINDOW = 600.0  # still open when the results are read
LAGS = {"api-p95-judged": 2.5, "api-p95-scrape": 2.5, "db-avg-query-latency": 1.2}
URLS = {
    "api-health": "/health",
    "synthetic-login": "/login",
    "synthetic-core-api": "/api/v1/status",
}
MAIN_FILES = ("api.yml", "workers.yml", "manual.yml", "synthetic.yml")
DB_FILES = ("database.yml", "data-integrity.yml")
ALL_FILES = ("alerts.yml", *MAIN_FILES, "redis.yml", *DB_FILES)
SCRAPE_FILES = ("alternatives/api-scrape.yml",)  # no Prometheus: the app's own /metrics


def compressed(file: str, name: str, log: str) -> dict[str, Any]:
    """The shipped rule with its timing compressed and this machine's addresses."""
    raw = shipped(file, name)
    local: dict[str, Any] = {"interval": f"{INTERVAL:g}s"}
    if "for" in raw:
        local["for"] = f"{parse_duration(raw['for']) / FACTOR:g}s"
    if raw["source"] == "judge":  # its `for` is the warm-up and the tests' restarts
        local["warmup"] = f"{parse_duration(raw.get('warmup', 60)) / FACTOR:g}s"
        local["restart_every"] = f"{parse_duration(raw.get('restart_every', 300)) / FACTOR:g}s"
    if name in URLS:
        local["url"] = "http://127.0.0.1:{{ labels.port }}" + URLS[name]
    if raw["source"] == "scrape":
        local["url"] = "http://127.0.0.1:{{ labels.port }}/metrics"
    if raw["source"] == "log":
        local["path"] = log
    if file == "workers.yml":  # scoped as an operator would: only services that run Celery
        local["services"] = [s for s, (_, worker) in APPS.items() if worker]
    return shipped(file, name, **local)


def for_of(name: str) -> float:
    """How long a rule's condition must hold, compressed. A judge rule's counterpart: its
    warm-up, or the evaluations it needs before it trusts the window's own burstiness
    estimate (the stack has no six hours before the deploy to learn it from), and then
    the three steps after a jump that tell a level shift from a burst (a burst's own
    step weighs it down until then; docs/rules.md, "Bursty errors")."""
    for file in (*ALL_FILES, *SCRAPE_FILES):
        if name in shipped_names(file):
            raw = shipped(file, name)
            if raw["source"] == "judge":
                warmup = parse_duration(raw.get("warmup", 60)) / FACTOR
                return max(warmup, MIN_PAIRS * INTERVAL) + LEVEL_SHIFT_STEPS * INTERVAL
            return parse_duration(raw.get("for", 0)) / FACTOR
    raise KeyError(name)


async def watchdog(stack: Stack, rec: Recorder, key: str, files: tuple[str, ...]) -> App:
    log = str(stack.log_path(key))
    rules = [compressed(f, n, log) for f in files for n in shipped_names(f)]
    step = {"name": "rollback", "kind": "http", "url": f"{rec.url}/rollback"}
    step["json"] = {"service": "{{ service }}", "version": "{{ previous_version }}"}
    settings = Settings(
        rules=[write_rules(stack.home / f"rules-{key}.yml", rules, f"{INTERVAL:g}s")],
        store_url=SecretStr(f"sqlite:///{stack.home / f'watchdog-{key}.db'}"),
        listen_port=0,
        tick=0.25,
        confirm_for=0,  # ends at rolled_back: confirmation has its own tests
        plans={"deploy": {"steps": [step]}},
        default_plan="deploy",
        http_allowed_hosts=["127.0.0.1"],
        prometheus_url=stack.prom_url,
        prometheus_scrape_interval=SCRAPE,
        postgres_targets={"app": SecretStr(stack.watchdog_dsn(key))},
        redis_targets={"cache": SecretStr(stack.redis_url)},
        notify={"webhook_url": f"{rec.url}/notify", "escalate_after": None},
    )
    app = App(settings)
    await app.start()
    return app


async def open_window(
    app: App, stack: Stack, service: str, seconds: float, version: str = "v2", previous: str = "v1"
) -> str:
    assert app.parts is not None
    port = stack.apps[service].port if service in stack.apps else 9
    deployment = Deployment(service, "production", version, previous, {"port": str(port)})
    window = await app.parts.windows.open_window(deployment, window_seconds=seconds, actor="ci")
    return window.id


async def until(check: Callable[[], Any], timeout: float) -> bool:
    """Poll ``check()`` (a value or an awaitable) until truthy or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return True
        await asyncio.sleep(0.1)
    return False


async def phase(app: App, window_id: str) -> WindowPhase:
    assert app.parts is not None
    return (await app.parts.windows.detail(window_id)).window.phase


async def warm(app: App, stack: Stack, window_id: str) -> None:
    """Every rule of the window evaluated twice and Prometheus' targets scraped inside
    the window, so the fault meets a settled window: its queries read only the window's
    evidence, and a counter with no sample inside it shows no increase (see
    tests/e2e/runbook.py, ``scraped_since``). Events, not seconds: scrapes and ticks
    slip on a busy machine."""
    assert app.parts is not None
    windows = app.parts.windows
    first: dict[str, float] = {}

    async def evaluated_twice() -> bool:
        detail = await windows.detail(window_id)
        for r in detail.rules:
            if r.last_eval_at is not None:
                first.setdefault(r.name, r.last_eval_at)
        return all(
            r.last_eval_at is not None and r.last_eval_at > first[r.name] for r in detail.rules
        )

    await until(evaluated_twice, HANG_GUARD)
    started = (await windows.detail(window_id)).window.started_at

    def scraped() -> bool:
        try:
            up = query_values(stack.prom_url, "min(timestamp(up))")
        except httpx.HTTPError:
            return False  # a slow answer on a busy machine: ask again
        return bool(up) and up[0] > started

    await until(lambda: asyncio.to_thread(scraped), HANG_GUARD)


def arrival(rec: Recorder, trig: Trigger, window_id: str) -> float | None:
    """When the action reached the recorder (monotonic), if it did."""
    found = {
        "rollback": rec.rollback_calls(window_id),
        "approve": rec.told(window_id, EventKind.APPROVAL_NEEDED.value),
        "notify": rec.told(window_id, EventKind.RULE_FIRING.value, trig.rule),
    }[trig.action]
    return min((c["at"] for c in found), default=None)


async def inject(app: App, rec: Recorder, trig: Trigger, window_id: str) -> dict[str, Any]:
    """Inject the fault, wait for the action; the seconds in between."""
    injected = time.monotonic()
    await asyncio.to_thread(trig.fault)
    await until(lambda: arrival(rec, trig, window_id) is not None, HANG_GUARD)
    at = arrival(rec, trig, window_id)
    return {"window": window_id, "seconds": None if at is None else at - injected}


async def one_trigger(app: App, stack: Stack, rec: Recorder, trig: Trigger) -> dict[str, Any]:
    window_id = await open_window(app, stack, trig.service, FAULT_WINDOW)
    await warm(app, stack, window_id)
    return await inject(app, rec, trig, window_id)


async def manual(app: App, stack: Stack, rec: Recorder, trigs: list[Trigger]) -> dict[str, Any]:
    """The notify-only triggers, one after another in one window of their service."""
    window_id = await open_window(app, stack, "manual", FAULT_WINDOW)
    await warm(app, stack, window_id)
    return {t.rule: await inject(app, rec, t, window_id) for t in trigs}


async def healthy(stack: Stack, rec: Recorder, apps: AsyncExitStack) -> dict[str, Any]:
    app = await watchdog(stack, rec, "healthy", (*ALL_FILES, *SCRAPE_FILES))
    apps.push_async_callback(app.stop)
    window_id = await open_window(app, stack, "healthy", HEALTHY_WINDOW)
    started = time.monotonic()
    await until(lambda: phase_is(app, window_id, WindowPhase.PASSED), HEALTHY_WINDOW + HANG_GUARD)
    return {"window": window_id, "app": app, "seconds": time.monotonic() - started}


async def phase_is(app: App, window_id: str, wanted: WindowPhase) -> bool:
    return await phase(app, window_id) is wanted


async def redeploy(
    app: App, stack: Stack, rec: Recorder, first: asyncio.Task[Any]
) -> dict[str, Any]:
    """The errors service deployed again 30 s after its rollback, healthy this time."""
    rolled_back = await first
    calls = rec.rollback_calls(rolled_back["window"])
    if not calls:
        return {"skipped": "the first deploy was not rolled back"}
    at = calls[0]["at"] + REDEPLOY_AFTER
    await until(lambda: time.monotonic() >= at, REDEPLOY_AFTER + 5)
    # long enough for every rollback rule to be judged for most of it (a pass needs it)
    window_id = await open_window(
        app, stack, "errors", REDEPLOY_WINDOW, version="v3", previous="v2"
    )
    await until(lambda: time.monotonic() >= at + 3, 10)
    # What a ratio over the last minute ([1m], unclamped; the threshold alternative of the
    # judged rule) reads now: the rolled-back version's errors.
    query = shipped("alternatives/api-threshold.yml", "api-5xx-ratio")["query"]
    query = query.replace("{{ service_label }}", "service").replace("{{ service }}", "errors")
    unclamped = await asyncio.to_thread(query_values, stack.prom_url, query)
    await until(lambda: ended(app, window_id), REDEPLOY_WINDOW + HANG_GUARD)
    return {"window": window_id, "unclamped": unclamped}


async def ended(app: App, window_id: str) -> bool:
    return (await phase(app, window_id)).terminal


async def run_all(stack: Stack) -> dict[str, Any]:
    """Run every scenario at once; the outcome of each, read once everything is over."""
    main_trigs, db_trigs, manual_trigs, scrape_trigs = triggers(stack)
    async with recorder(healer(stack)) as rec, AsyncExitStack() as apps:
        main = await watchdog(stack, rec, "main", MAIN_FILES)
        apps.push_async_callback(main.stop)
        db_apps = {}
        for trig in db_trigs:
            db_apps[trig.rule] = await watchdog(stack, rec, trig.service, DB_FILES)
            apps.push_async_callback(db_apps[trig.rule].stop)
        scraper = await watchdog(stack, rec, "scrape", SCRAPE_FILES)
        apps.push_async_callback(scraper.stop)
        tasks = {t.rule: asyncio.create_task(one_trigger(main, stack, rec, t)) for t in main_trigs}
        for t in scrape_trigs:
            tasks[t.rule] = asyncio.create_task(one_trigger(scraper, stack, rec, t))
        for t in db_trigs:
            tasks[t.rule] = asyncio.create_task(one_trigger(db_apps[t.rule], stack, rec, t))
        manual_task = asyncio.create_task(manual(main, stack, rec, manual_trigs))
        again = asyncio.create_task(redeploy(main, stack, rec, tasks["api-5xx-judged"]))
        calm = asyncio.create_task(healthy(stack, rec, apps))
        done = {name: await task for name, task in tasks.items()}
        done.update(await manual_task)
        results: dict[str, Any] = {"redeploy": await again, "healthy": await calm}
        owners = {t.rule: main for t in main_trigs + manual_trigs} | db_apps
        owners |= {t.rule: scraper for t in scrape_trigs}
        for trig in main_trigs + db_trigs + manual_trigs + scrape_trigs:
            results[trig.rule] = await outcome(owners[trig.rule], rec, trig, done[trig.rule])
        results["redeploy"] = await settled(main, rec, results["redeploy"])
        results["healthy"] = await settled(results["healthy"].pop("app"), rec, results["healthy"])
    return results


async def outcome(app: App, rec: Recorder, trig: Trigger, run: dict[str, Any]) -> dict[str, Any]:
    out = await settled(app, rec, run)
    # The words people get with the action: the rule's summary is its reason.
    kind = {"rollback": EventKind.ROLLBACK_STARTED, "approve": EventKind.APPROVAL_NEEDED}
    told = rec.told(run["window"], kind.get(trig.action, EventKind.RULE_FIRING).value)
    out.update(
        message=told[0]["text"] if told else None,
        action=trig.action,
        for_=for_of(trig.rule),
        lag=LAGS.get(trig.rule, 0.0),
        named=len(rec.told(run["window"], EventKind.RULE_FIRING.value, trig.rule)),
    )
    return out


async def settled(app: App, rec: Recorder, run: dict[str, Any]) -> dict[str, Any]:
    """What the window's journal and the recorder hold for it, at the end."""
    if "window" not in run:
        return run
    assert app.parts is not None
    detail = await app.parts.windows.detail(run["window"])
    kinds = [e.kind for e in detail.events]
    return {
        **run,
        "phase": detail.window.phase.value,
        "fired": sorted({e.rule or "" for e in detail.events if e.kind is EventKind.RULE_FIRING}),
        "rollbacks": len(rec.rollback_calls(run["window"])),
        "approvals": len(rec.told(run["window"], EventKind.APPROVAL_NEEDED.value)),
        "blind": kinds.count(EventKind.WATCHDOG_BLIND),
        "severe": [(n["event"]["kind"], n["event"]["rule"]) for n in rec.severe(run["window"])],
        "length": detail.window.ends_at - detail.window.started_at,
        # Rules whose last reading was no value at all (absent is zero: none expected).
        "no_value": sorted(r.name for r in detail.rules if r.last_value is None),
        # why a window that ended inconclusive could not judge (shown when a test fails)
        "unjudged": {r.name: dict(r.gaps or {}) for r in detail.rules if r.gaps},
    }
