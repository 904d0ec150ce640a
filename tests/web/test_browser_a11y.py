"""Accessibility (axe-core, keyboard) and screenshots of every page at phone and desktop width."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import expect

from tests.helpers import LiveServer
from tests.web.pages import (
    DESKTOP,
    PHONE,
    accept_guidelines,
    axe_violations,
    open_member,
    screenshot,
    send,
)

PUBLIC_PAGES = {"login": "/login", "guidelines": "/guidelines", "privacy": "/privacy"}


@pytest.mark.parametrize("width", ["phone", "desktop"])
async def test_pages_pass_axe_and_are_captured(shell: LiveServer, browser: Any,
                                               width: str) -> None:
    viewport = PHONE if width == "phone" else DESKTOP
    context = await browser.new_context(viewport=viewport, bypass_csp=True)  # to inject axe
    page = await context.new_page()
    for name, path in PUBLIC_PAGES.items():
        await page.goto(shell.url + path)
        assert await axe_violations(page) == [], name
        await screenshot(page, f"{name}-{viewport['width']}")
    alan = await open_member(browser, shell.url, "Alan Turing", viewport, for_axe=True)
    await accept_guidelines(alan.page)
    await send(alan.page, "Welcome! Anyone up for a quick design review this afternoon?")
    ada = await open_member(browser, shell.url, "Ada Lovelace", viewport, for_axe=True)
    await expect(ada.page.locator("#message-log")).to_contain_text("design review")
    assert await axe_violations(ada.page) == [], "community, guidelines not yet accepted"
    await screenshot(ada.page, f"community-guidelines-{viewport['width']}")
    await accept_guidelines(ada.page)
    await send(ada.page, "Count me in. I'll share the mock-ups in the thread.")
    await ada.page.locator("#messages li").first.get_by_role("button", name="👍").click()
    await expect(ada.page.locator("#messages li").first.get_by_role("button", name="👍 1")
                 ).to_be_visible()
    assert await axe_violations(ada.page) == [], "community"
    await screenshot(ada.page, f"community-{viewport['width']}")
    await ada.page.locator("#messages li").first.get_by_role(
        "button", name="Reply in thread").click()
    await ada.page.get_by_role("textbox", name="Thread reply").fill("Here are the mock-ups.")
    await ada.page.get_by_role("button", name="Reply", exact=True).click()
    await expect(ada.page.get_by_role("region", name="Thread")).to_contain_text("mock-ups.")
    assert await axe_violations(ada.page) == [], "community with a thread open"
    await screenshot(ada.page, f"community-thread-{viewport['width']}")
    ada.assert_clean()


async def test_keyboard_only_sign_in_and_post(shell: LiveServer, browser: Any) -> None:
    context = await browser.new_context(viewport=DESKTOP)
    page = await context.new_page()
    await page.goto(shell.url + "/login")
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("link", name="Skip to main content")).to_be_focused()
    await page.keyboard.press("Enter")
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("button", name="Sign in as Ada Lovelace")).to_be_focused()
    await page.keyboard.press("Enter")
    await page.get_by_role("navigation", name="Channels").wait_for()
    # the page's scripts are running (before that, the form would post without them)
    await expect(page.locator("#log-note")).not_to_have_text("Connecting…")
    accept = page.get_by_role("button", name="Accept guidelines")
    await accept.focus()
    await page.keyboard.press("Enter")
    box = page.get_by_role("textbox", name="Message", exact=True)
    await expect(box).to_be_focused()  # focus moves to the message box after accepting
    await page.keyboard.type("typed without a mouse")
    await page.keyboard.press("Enter")
    await expect(page.locator("#messages")).to_contain_text("typed without a mouse")
    await expect(box).to_have_value("")
