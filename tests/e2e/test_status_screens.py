"""Every terminal state's page in real Chromium, at desktop and phone widths.

One app (fake clock, scripted values, recording executor: ``status_states.py``) drives
a window into each terminal state; one browser (Debian's chromium, driven by
Playwright) opens each page and checks what a person reads first: the verdict sentence,
the graphs' UTC time axis, the deploy / rollback / recovery markers, the values in their
units, and that nothing overflows a phone. Screenshots: ``test-artifacts/status/``.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.e2e.status_states import (
    JUDGE_RULES,
    PLAN,
    RULES,
    BySource,
    Counters,
    States,
    judged,
)
from tests.e2e.test_status_page_browser import CHROMIUM, CHROMIUM_ARGS
from tests.fakes import RecordingExecutor, serve
from tests.world import app_settings, opened
from watchdog.foundation.clock import FakeClock

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "status"
VIEWPORTS = {
    "desktop": {"viewport": {"width": 1280, "height": 900}},
    "phone": {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2},
}
# What each state's sentence must say (regular expressions over its text).
SENTENCES = {
    "passed": r"^Passed: cart v8 was watched for 10 m until \d\d:\d\d:\d\d .*no rollback rule",
    "recovered": r"^Rolled back api v3 → v2 at \d\d:\d\d:\d\d: http-5xx-ratio \d+(\.\d)? % > 5 % "
    r"for 1 m\. v2 recovered \d+ s later\.$",
    "rollback_failed": r"^Rollback of search v12 → v11 FAILED at .*step undo failed.*Act now",
    "rollback_ineffective": r"^Rolled back checkout v5 → v4 .* still breaches on v4 .*"
    r"It fell from \d+(\.\d)? % to 12(\.\d)? %",
    "inconclusive": r"^Inconclusive: .*billing v21 .*http-5xx-ratio could not be judged for "
    r"most of it \(judged 0 of 36 times: Prometheus did not answer\)",
    "expired_while_held": r"^Expired while held: alice held payments v7 .*18(\.\d)? % > 5 %",
    "would_have_rolled_back": r"^Would have rolled back web v4 → v3 .*Shadow mode: nothing",
}
# The markers each state's graphs must show.
MARKERS = {
    "passed": ["deploy"],
    "recovered": ["deploy", "rollback", "rolled-back", "recovered"],
    "rollback_failed": ["deploy", "rollback", "failed"],
    "rollback_ineffective": ["deploy", "rollback", "rolled-back"],
    "inconclusive": ["deploy"],
    "expired_while_held": ["deploy", "held"],
    "would_have_rolled_back": ["deploy", "would"],
}
# What the "what now" box must offer.
NEXT = {
    "rollback_failed": "kubectl -n prod rollout undo deployment/search",
    "expired_while_held": "kubectl -n prod rollout undo deployment/payments",
    "would_have_rolled_back": "kubectl -n prod rollout undo deployment/web",
    "inconclusive": "kubectl -n prod rollout undo deployment/billing",
    "rollback_ineffective": "will not roll back again",
}


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium") or CHROMIUM
    if not Path(path).exists():
        pytest.fail("chromium is not installed: run `make system-deps` (Debian package)")
    return path


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def site(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[str, States]]:
    """The app with a window in every terminal state, served on a loopback port."""
    tmp = tmp_path_factory.mktemp("status-states")
    settings = app_settings(
        tmp, RULES, plans={"kubectl": PLAN}, default_plan="kubectl", confirm_for=60,
        status_public=True,
    )  # fmt: skip
    clock, source, executor = FakeClock(), BySource(), RecordingExecutor()
    seams = {"sources": {"prometheus": source}, "executors": {"command": executor}}
    async with opened(settings, clock=clock, **seams) as parts:
        states = States(parts, clock, source, executor)
        await states.build()
        runner, url = await serve(parts.web_app)
        try:
            yield url, states
        finally:
            await runner.cleanup()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def judged_site(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[str, str]]:
    """An app whose judge rule rolled a deploy back, served; with the window's id."""
    tmp = tmp_path_factory.mktemp("status-judge")
    settings = app_settings(
        tmp, JUDGE_RULES, plans={"kubectl": PLAN}, default_plan="kubectl", confirm_for=300,
        status_public=True,
    )  # fmt: skip
    clock = FakeClock()
    counters = Counters(clock.now())
    seams = {"sources": {"prometheus": counters}, "executors": {"command": RecordingExecutor()}}
    async with opened(settings, clock=clock, **seams) as parts:
        window_id = await judged(parts, clock, counters)
        runner, url = await serve(parts.web_app)
        try:
            yield url, window_id
        finally:
            await runner.cleanup()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser(chromium: str) -> AsyncIterator[Any]:
    """One Chromium for the whole module."""
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        launched = await p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


def _marker_classes(found: list[str]) -> set[str]:
    return {c for classes in found for c in classes.split() if c != "marker"}


@pytest.mark.parametrize("device", sorted(VIEWPORTS))
@pytest.mark.parametrize("state", sorted(SENTENCES))
async def test_each_terminal_state_reads_first_as_a_sentence(
    site: tuple[str, States], browser: Any, state: str, device: str
) -> None:
    from playwright.async_api import expect

    url, states = site
    context = await browser.new_context(**VIEWPORTS[device])
    try:
        page = await context.new_page()
        await page.goto(f"{url}/deployments/{states.made[state]}")
        sentence = page.locator(".verdict .sentence")
        await expect(sentence).to_be_visible()
        words = await sentence.inner_text()
        assert re.search(SENTENCES[state], words), words
        # the verdict comes before any graph
        order = await page.evaluate(
            "document.querySelector('.verdict').compareDocumentPosition("
            "document.querySelector('svg.graph'))"
        )
        assert order & 4, "the verdict must come before the graphs"  # FOLLOWING
        rule = page.locator('article[data-rule="http-5xx-ratio"]')
        graph = rule.locator("svg.graph")
        await expect(graph.locator(".axis-title")).to_have_text("time (UTC)")
        ticks = await graph.locator(".axis-x text:not(.axis-title)").all_text_contents()
        assert len(ticks) >= 2 and all(re.fullmatch(r"\d\d:\d\d(:\d\d)?", t) for t in ticks)
        values = await graph.locator(".axis-y text").all_text_contents()
        assert values and all(v.endswith(" %") for v in values), values
        await expect(graph.locator("text.threshold-label")).to_have_text("limit 5 %")
        latency = page.locator('article[data-rule="p99-latency"] svg.graph .axis-y text')
        assert all(t.endswith((" ms", " s")) for t in await latency.all_text_contents())
        found = await graph.locator("g.marker").evaluate_all(
            "gs => gs.map(g => g.className.baseVal)"
        )
        assert set(MARKERS[state]) <= _marker_classes(found), found
        box = page.locator(".verdict .next")
        await expect(box).to_contain_text(f"watchdog deploy status {states.made[state]}")
        if state in NEXT:
            await expect(box).to_contain_text(NEXT[state])
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= VIEWPORTS[device]["viewport"]["width"], f"{width}px wide"
        SHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SHOTS / f"{state}-{device}.png"), full_page=True)
    finally:
        await context.close()


@pytest.mark.parametrize("device", sorted(VIEWPORTS))
async def test_the_front_page_shows_the_open_window_first_with_what_to_do(
    site: tuple[str, States], browser: Any, device: str
) -> None:
    from playwright.async_api import expect

    url, states = site
    context = await browser.new_context(**VIEWPORTS[device])
    try:
        page = await context.new_page()
        await page.goto(f"{url}/")
        section = page.locator(f'section[data-window="{states.made["live"]}"]')
        words = await section.locator(".verdict .sentence").inner_text()
        assert re.search(
            r"^Watching: auth v2: http-5xx-ratio is pending at \d+(\.\d)? % > 5 %", words
        )
        box = section.locator(".next")
        await expect(box).to_contain_text(f"watchdog deploy hold {states.made['live']}")
        await expect(box).to_contain_text(f"watchdog deploy rollback {states.made['live']}")
        await expect(section.locator("progress")).to_have_count(1)
        recent = page.locator("table.recent tbody tr")
        assert await recent.count() == len(SENTENCES)
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= VIEWPORTS[device]["viewport"]["width"], f"{width}px wide"
        SHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SHOTS / f"front-{device}.png"), full_page=True)
    finally:
        await context.close()


@pytest.mark.parametrize("device", sorted(VIEWPORTS))
async def test_a_judge_rule_draws_the_difference_with_its_band(
    judged_site: tuple[str, str], browser: Any, device: str
) -> None:
    from playwright.async_api import expect

    url, window_id = judged_site
    context = await browser.new_context(**VIEWPORTS[device])
    try:
        page = await context.new_page()
        await page.goto(f"{url}/deployments/{window_id}")
        words = await page.locator(".verdict .sentence").inner_text()
        assert re.search(
            r"^Rolled back orders v9 → v8 at \d\d:\d\d:\d\d: api-5xx-judged \d(\.\d+)? % "
            r"> limit \d(\.\d+)? %",
            words,
        ), words
        graph = page.locator('article[data-rule="api-5xx-judged"] svg.band-graph')
        await expect(graph.locator("text.caption")).to_have_text("new - baseline, 95 % interval")
        assert await graph.locator("polygon.band").count() > 5
        assert await graph.locator("polygon.band.firing").count() >= 1  # red where it fired
        await expect(graph.locator("text.threshold-label")).to_contain_text("fires above +")
        await expect(graph.locator(".axis-title")).to_have_text("time (UTC)")
        found = await graph.locator("g.marker").evaluate_all(
            "gs => gs.map(g => g.className.baseVal)"
        )
        assert {"deploy", "rollback", "rolled-back"} <= _marker_classes(found), found
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= VIEWPORTS[device]["viewport"]["width"], f"{width}px wide"
        SHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SHOTS / f"judge-{device}.png"), full_page=True)
    finally:
        await context.close()
