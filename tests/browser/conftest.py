"""The map page in a real browser: Debian's chromium, driven by playwright.

One `lienwatch serve` per module (a fresh SQLite data dir, a known admin key, fences and devices
reloaded every 0.2 s), one browser per test. Screenshots go to test-artifacts/browser/ (ignored
by git) so a person can look at what the tests saw.
"""

from __future__ import annotations

import signal
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, async_playwright

from tests.support.processes import api_url, start_serve, stop

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
KEY = "browser-admin-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}


@dataclass
class Served:
    base: str
    gateway_port: int

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, headers=AUTH, timeout=10)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data = tmp_path_factory.mktemp("browser-serve")
    env = {
        "LIENWATCH_DATA_DIR": str(data),
        "LIENWATCH_JT808_LISTEN": "127.0.0.1:0",
        "LIENWATCH_AUTO_REGISTER": "true",
        "LIENWATCH_ADMIN_API_KEY": KEY,
        "LIENWATCH_RELOAD_INTERVAL_S": "0.2",
    }
    proc, port = start_serve(env)
    try:
        yield Served(api_url(proc), port)
    finally:
        stop(proc, signal.SIGTERM)


@pytest.fixture
async def page(served: Served, request: pytest.FixtureRequest) -> AsyncIterator[Page]:
    """The map page open with the admin key, its map loaded; a screenshot is kept after."""
    assert CHROMIUM.exists(), "the browser tests need Debian's chromium: apt-get install chromium"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=str(CHROMIUM),
            # Root in a container needs --no-sandbox; WebGL runs on SwiftShader (no GPU).
            args=["--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"],
        )
        try:
            context = await browser.new_context(viewport={"width": 1400, "height": 860})
            await context.add_init_script(f"localStorage.setItem('lienwatch.key', '{KEY}')")
            tab = await context.new_page()
            tab.on("pageerror", lambda exc: errors.append(str(exc)))
            await tab.goto(served.base + "/map")
            await until(
                tab, "() => !!(window.lienwatch && window.lienwatch.ready && window.lienwatch.cars)"
            )
            yield tab
            await tab.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"))
        finally:
            await browser.close()
    assert errors == [], errors


async def until(page: Page, predicate: str, arg: Any = None, timeout_s: float = 15.0) -> Any:
    """Polls `predicate` (a JavaScript function of `arg`) until it is truthy. Playwright's own
    wait_for_function evaluates text, which the page's Content-Security-Policy forbids."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await page.evaluate(predicate, arg)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {predicate}")
        await page.wait_for_timeout(50)


async def pixel(page: Page, lon: float, lat: float) -> tuple[float, float]:
    """Where (lon, lat) is on the screen, for clicking the map."""
    box = await page.locator("#map").bounding_box()
    assert box is not None
    x, y = await page.evaluate(
        "([lon, lat]) => {"
        " const p = window.lienwatch.map.project([lon, lat]); return [p.x, p.y]; }",
        [lon, lat],
    )
    return box["x"] + x, box["y"] + y
