"""The web shell in Debian's chromium: two members chat, recovery after going offline, XSS,
accessibility (axe-core) and screenshots at phone and desktop widths."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.async_api import expect

import web_shell.sessions
from realtime.app import FANOUT
from tests.helpers import LiveServer, mint
from tests.web.pages import accept_guidelines, message_log, open_member, send


async def test_two_members_chat(shell: LiveServer, browser: Any) -> None:
    ada = await open_member(browser, shell.url, "Ada Lovelace")
    alan = await open_member(browser, shell.url, "Alan Turing")
    await accept_guidelines(ada.page)
    await send(ada.page, "Hello Alan, are you there?")
    await expect(message_log(alan.page)).to_contain_text("Hello Alan, are you there?")
    await accept_guidelines(alan.page)
    await send(alan.page, "Hi Ada!")
    await expect(message_log(ada.page)).to_contain_text("Hi Ada!")
    assert len(shell.app[FANOUT].connections) == 2  # both pages on WebSocket (the fast path)
    ada.assert_clean()
    alan.assert_clean()


async def test_reconnect_recovers_missed_messages(shell: LiveServer, browser: Any) -> None:
    ada = await open_member(browser, shell.url, "Ada Lovelace")
    alan = await open_member(browser, shell.url, "Alan Turing")
    await accept_guidelines(alan.page)
    await send(alan.page, "before the outage")
    await expect(message_log(ada.page)).to_contain_text("before the outage")
    await ada.context.set_offline(True)
    banner = ada.page.locator("#connection-banner")
    await expect(banner).to_contain_text("You are offline")
    for n in range(3):
        await send(alan.page, f"missed {n}")
    await expect(message_log(alan.page)).to_contain_text("missed 2")
    await ada.page.wait_for_timeout(300)
    assert "missed" not in await message_log(ada.page).inner_text()  # really disconnected
    await ada.context.set_offline(False)
    await expect(banner).to_be_empty()
    log = message_log(ada.page)
    for n in range(3):
        await expect(log).to_contain_text(f"missed {n}")
    texts = await ada.page.locator("#messages .msg-text").all_text_contents()
    assert texts == ["before the outage", "missed 0", "missed 1", "missed 2"]


async def test_threads_reactions_edits_dms_unread_typing(shell: LiveServer,
                                                          browser: Any) -> None:
    ada = await open_member(browser, shell.url, "Ada Lovelace")
    alan = await open_member(browser, shell.url, "Alan Turing")
    for member in (ada, alan):
        await accept_guidelines(member.page)
    # typing indicator
    await alan.page.get_by_role("textbox", name="Message", exact=True).press_sequentially("hm")
    await expect(ada.page.locator("#typing")).to_have_text("Alan Turing is typing…")
    await send(ada.page, "root message")
    alan_item = alan.page.locator("#messages li").first
    await expect(alan_item).to_contain_text("root message")
    # reaction
    await alan_item.get_by_role("button", name="👍").click()
    ada_item = ada.page.locator("#messages li").first
    await expect(ada_item.get_by_role("button", name="👍 1")).to_be_visible()
    await expect(alan_item.get_by_role("button", name="👍 1")).to_have_attribute(
        "aria-pressed", "true")
    # thread
    await alan_item.get_by_role("button", name="Reply in thread").click()
    await alan.page.get_by_role("textbox", name="Thread reply").fill("a reply in the thread")
    await alan.page.get_by_role("button", name="Reply", exact=True).click()
    await expect(ada_item.get_by_role("button", name="1 reply")).to_be_visible()
    await ada_item.get_by_role("button", name="1 reply").click()
    thread = ada.page.get_by_role("region", name="Thread")
    await expect(thread).to_contain_text("a reply in the thread")
    await expect(message_log(ada.page)).not_to_contain_text("a reply in the thread")
    await thread.get_by_role("button", name="Close thread").click()
    # edit and delete own messages (not others')
    await expect(alan_item.get_by_role("button", name="Edit")).to_have_count(0)
    await ada_item.get_by_role("button", name="Edit").click()
    await ada_item.get_by_role("textbox", name="Edited text").fill("root message, edited")
    await ada_item.get_by_role("button", name="Save").click()
    await expect(alan_item).to_contain_text("root message, edited")
    await expect(alan_item).to_contain_text("(edited)")
    ada.page.once("dialog", lambda dialog: dialog.accept())
    await ada_item.get_by_role("button", name="Delete").click()
    await expect(alan_item).to_contain_text("This message was deleted.")
    # unread count in another channel, cleared when opened
    channels = alan.page.get_by_role("navigation", name="Channels")
    await ada.page.get_by_role("navigation", name="Channels").get_by_role(
        "link", name="Help").click()
    await send(ada.page, "over in help")
    await expect(channels.get_by_role("link", name="Help 1 unread")).to_be_visible()
    await channels.get_by_role("link", name="Help").click()
    await expect(message_log(alan.page)).to_contain_text("over in help")
    await expect(channels.get_by_role("link", name="Help", exact=True)).to_be_visible()
    # direct message from the presence list
    people = ada.page.get_by_role("region", name="People online")
    await people.get_by_role("button", name="Message Alan Turing").click()
    await expect(ada.page.locator("#channel-title")).to_contain_text("Alan Turing")
    await send(ada.page, "a private word")
    dms = channels.get_by_role("link", name=re.compile("Ada Lovelace & Alan Turing"))
    await expect(dms).to_contain_text("1")
    await dms.click()
    await expect(message_log(alan.page)).to_contain_text("a private word")
    ada.assert_clean()
    alan.assert_clean()


async def test_history_scroll_loads_older_messages(shell: LiveServer, browser: Any) -> None:
    writer = await shell.client("writer")
    for n in range(70):
        await writer.ok("message:send", {"channel": "general", "text": f"old message {n}"})
    ada = await open_member(browser, shell.url, "Ada Lovelace")
    log = message_log(ada.page)
    await expect(log).to_contain_text("old message 69")
    texts = await ada.page.locator("#messages .msg-text").all_text_contents()
    assert texts == [f"old message {n}" for n in range(20, 70)]  # the latest page
    await expect(ada.page.get_by_role("button", name="Load older messages")).to_be_visible()
    await log.evaluate("log => { log.scrollTop = 0; }")  # scrolling up loads the older page
    await expect(log).to_contain_text("old message 0")
    texts = await ada.page.locator("#messages .msg-text").all_text_contents()
    assert texts == [f"old message {n}" for n in range(70)]
    await expect(ada.page.get_by_role("button", name="Load older messages")).to_be_hidden()
    ada.assert_clean()


HOSTILE_NAME = '<img src=x onerror=alert("name")>"\'&'
HOSTILE_TEXTS = ["<img src=x onerror=alert(1)>", "<script>alert(2)</script>",
                 '"><svg onload=alert(3)>', "&lt;b&gt;entity&lt;/b&gt;"]


async def test_hostile_names_and_messages_render_as_text(shell: LiveServer,
                                                          browser: Any) -> None:
    context = await browser.new_context()
    page = await context.new_page()
    dialogs: list[str] = []

    async def refuse(dialog: Any) -> None:
        dialogs.append(dialog.message)
        await dialog.dismiss()
    page.on("dialog", refuse)
    token = mint("mallory", HOSTILE_NAME)
    answer = await context.request.post(shell.url + "/session", data={"token": token})
    assert answer.status == 200, await answer.text()
    await page.goto(shell.url + "/")
    await expect(page.locator(".account-name strong")).to_have_text(HOSTILE_NAME)
    await accept_guidelines(page)
    ada = await open_member(browser, shell.url, "Ada Lovelace")
    ada.page.on("dialog", refuse)
    for text in HOSTILE_TEXTS:
        await send(page, text)
    log = message_log(ada.page)
    await expect(log).to_contain_text(HOSTILE_TEXTS[-1])
    texts = await ada.page.locator("#messages .msg-text").all_text_contents()
    assert texts == HOSTILE_TEXTS
    authors = await ada.page.locator("#messages .msg-author").all_text_contents()
    assert set(authors) == {HOSTILE_NAME}
    people = ada.page.get_by_role("region", name="People online")
    await expect(people).to_contain_text(HOSTILE_NAME)
    for target in (page, ada.page):
        assert await target.locator("#main img, #main svg, #main script").count() == 0
    await page.wait_for_timeout(200)
    assert dialogs == []
    ada.assert_clean()


async def test_expired_socket_token_is_renewed_and_the_send_retried(
        shell: LiveServer, browser: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(web_shell.sessions, "SOCKET_TOKEN_TTL_S", 2)
    ada = await open_member(browser, shell.url, "Ada Lovelace")
    alan = await open_member(browser, shell.url, "Alan Turing")
    await accept_guidelines(ada.page)
    await ada.page.wait_for_timeout(2_500)  # the page's socket token has expired by now
    await send(ada.page, "sent with an expired token")
    await expect(message_log(alan.page)).to_contain_text("sent with an expired token")
    await expect(ada.page.locator("#messages .msg-text")).to_have_count(1)
    await expect(ada.page.locator(".msg-pending")).to_have_count(0)


async def test_channels_are_grouped_by_category(shell: LiveServer, browser: Any) -> None:
    import aiohttp

    from tests.web.pages import DESKTOP, axe_violations, screenshot

    admin = shell.headers("root", "admin")
    async with aiohttp.ClientSession() as http:
        for body in ({"id": "gigs", "name": "Gigs", "category": "Work"},
                     {"id": "showcase", "name": "Showcase", "category": "Community"}):
            async with http.post(shell.url + "/api/v1/channels", json=body, headers=admin) as r:
                assert r.status == 201
        async with http.patch(shell.url + "/api/v1/channels/general",
                              json={"category": "Community"}, headers=admin) as r:
            assert r.status == 200
    ada = await open_member(browser, shell.url, "Ada Lovelace", DESKTOP, for_axe=True)
    nav = ada.page.get_by_role("navigation", name="Channels")
    work = nav.get_by_role("list", name="Work")
    community = nav.get_by_role("list", name="Community")
    await expect(work.get_by_role("link", name="Gigs")).to_be_visible()
    await expect(community.get_by_role("link")).to_have_count(2)  # General, Showcase
    await expect(nav.get_by_role("list", name="Community").get_by_role(
        "link", name="Help")).to_have_count(0)  # uncategorised: outside the groups
    await work.get_by_role("link", name="Gigs").click()  # the scripts redraw the groups
    await expect(ada.page.locator("#channel-title")).to_contain_text("Gigs")
    await expect(work.get_by_role("link", name="Gigs")).to_have_attribute("aria-current", "page")
    assert await axe_violations(ada.page) == [], "community with categories"
    await screenshot(ada.page, "community-categories-1280")
    ada.assert_clean()
