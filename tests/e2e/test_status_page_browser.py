"""The status page in a real headless browser (Debian's chromium driven by Playwright).

A real Prometheus scrapes the demo app, the watchdog runs in-process; the test signs in
with a ``?token=`` link, watches a window, injects a 5xx fault and waits for the page,
refreshing itself, to show the rollback. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from examples.stack import PromStack
from tests.e2e.test_watch_loop import (  # noqa: F401 (fixtures)
    TOKEN,
    Factory,
    open_window,
    stack,
    wait_for,
    watchdog_app,
)

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@pytest.fixture
def chromium() -> str:
    path = shutil.which("chromium") or CHROMIUM
    if not Path(path).exists():
        pytest.fail("chromium is not installed: run `make system-deps` (Debian package)")
    return path


async def test_page_follows_a_window_from_watching_to_rolled_back(
    stack: PromStack,  # noqa: F811
    watchdog_app: Factory,  # noqa: F811
    chromium: str,
) -> None:
    from playwright.async_api import async_playwright, expect

    app = await watchdog_app(stack.prom_url)
    window = await open_window(app, stack.demo)
    await wait_for(app, window["id"], lambda d: d["rules"][0]["last_value"] is not None, 15)
    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(viewport={"width": 1100, "height": 900})
            page = await context.new_page()
            denied = await page.goto(f"{app.url}/")
            assert denied is not None and denied.status == 401
            await page.goto(f"{app.url}/?token={TOKEN}")
            assert page.url == f"{app.url}/"  # the token left the address bar
            section = page.locator(f'section[data-window="{window["id"]}"]')
            await expect(section).to_have_attribute("data-phase", "watching")

            await section.locator("h2 a").click()
            await page.wait_for_url(f"**/deployments/{window['id']}")
            rule = page.locator('article[data-rule="http-5xx-ratio"]')
            await expect(rule.locator("svg.graph polyline.values")).to_have_count(1)

            stack.demo.set_fault(error_ratio=0.4)
            # no reload: the page's own polling must bring the rollback in
            phase = page.locator("section.window")
            await expect(phase).to_have_attribute("data-phase", "rolled_back", timeout=45_000)

            timeline = page.locator("ol.timeline")
            await expect(timeline.locator("li.rule_firing")).to_have_count(1)
            await expect(timeline.locator("li.rollback_succeeded")).to_have_count(1)
            step = timeline.locator("li.step_succeeded")
            await expect(step.locator("pre.output")).to_contain_text("rolled_back")
            graph = rule.locator("svg.graph")
            assert int(await graph.get_attribute("data-points") or 0) >= 3
            points = await graph.locator("polyline.values").first.get_attribute("points")
            assert points is not None and len(points.split()) >= 3
            await expect(graph.locator("line.threshold")).to_have_count(1)
            await expect(graph.locator("circle.firing").first).to_be_visible()
            await expect(page.locator("#live")).to_have_text("final", timeout=10_000)
            await page.screenshot(path=str(ARTIFACTS / "status-page.png"), full_page=True)

            phone = await browser.new_context(
                viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True
            )
            mobile = await phone.new_page()
            await mobile.goto(f"{app.url}/deployments/{window['id']}?token={TOKEN}")
            await expect(mobile.locator("section.window")).to_have_attribute(
                "data-phase", "rolled_back"
            )
            width = await mobile.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, f"page overflows a phone screen: {width}px wide"
            await mobile.screenshot(path=str(ARTIFACTS / "status-page-phone.png"))
        finally:
            await browser.close()
