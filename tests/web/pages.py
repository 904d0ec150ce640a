"""Browser helpers for the web shell tests: sign in, collect page errors, screenshots, axe-core."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.helpers import REPO

SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
AXE_JS = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 800}


@dataclass
class Member:
    """One signed-in browser context and its page, with the errors the page reported."""

    context: Any
    page: Any
    errors: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        """No uncaught script error and no console error (CSP violations are console errors)."""
        assert not self.errors, self.errors


async def open_member(browser: Any, url: str, persona: str,
                      viewport: dict[str, int] | None = None, *, for_axe: bool = False
                      ) -> Member:
    """A new browser context signed in as a dev ``persona`` (by its display name).

    ``for_axe``: let Playwright inject axe-core as a script tag despite the pages' strict CSP
    (the CSP itself is enforced in every other context, where a violation fails the test).
    """
    context = await browser.new_context(viewport=viewport or DESKTOP, bypass_csp=for_axe)
    context.set_default_timeout(10_000)
    page = await context.new_page()
    member = Member(context, page)
    page.on("pageerror", lambda error: member.errors.append(f"pageerror: {error}"))
    page.on("console", lambda msg: member.errors.append(f"console: {msg.text}")
            if msg.type == "error" else None)
    await page.goto(url + "/login")
    await page.get_by_role("button", name=f"Sign in as {persona}").click()
    await page.wait_for_url(re.compile(r"/(\?.*)?$"))
    await page.get_by_role("navigation", name="Channels").wait_for()
    return member


async def accept_guidelines(page: Any) -> None:
    """Confirm the community guidelines and wait until the composer is enabled."""
    await page.get_by_role("button", name="Accept guidelines").click()
    await page.get_by_role("textbox", name="Message", exact=True).wait_for()
    await page.wait_for_function(
        "() => !document.getElementById('message-text').disabled")


async def send(page: Any, text: str) -> None:
    """Type ``text`` into the message box and press Send."""
    await page.get_by_role("textbox", name="Message", exact=True).fill(text)
    await page.get_by_role("button", name="Send", exact=True).click()


def message_log(page: Any) -> Any:
    """The live message log of the open channel."""
    return page.locator("#message-log")


async def screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot under test-artifacts/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


async def axe_violations(page: Any, impacts: tuple[str, ...] = ("serious", "critical")
                         ) -> list[dict[str, Any]]:
    """axe-core's violations of the given impacts on the current page (WCAG 2.x A/AA rules)."""
    assert AXE_JS.exists(), "run `npm ci --prefix tests/web` (axe-core) first"
    await page.add_script_tag(path=str(AXE_JS))
    result = await page.evaluate(
        """async () => await axe.run(document, {runOnly: {type: 'tag', values:
            ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice']}})""")
    return [{"id": v["id"], "impact": v["impact"], "help": v["help"],
             "nodes": [n["target"] for n in v["nodes"]][:5]}
            for v in result["violations"] if v["impact"] in impacts]
