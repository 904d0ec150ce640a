"""Support in Debian's chromium against the fake Chatwoot: a member writes from the bubble, an
agent answers on /inbox and the bubble shows the reply; private notes never reach the member;
replies missed while offline are filled in; assignment, status and SLA timers on the inbox;
axe-core and screenshots of both at phone and desktop width; no bubble without the bridge."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.async_api import expect

from tests.helpers import LiveServer
from tests.web.pages import DESKTOP, PHONE, Member, axe_violations, open_member, screenshot
from tests.web.support_stack import SupportStack

HOSTILE = '<img src=x onerror=alert("support")><script>alert(2)</script> & "quotes"'


def bubble(page: Any) -> Any:
    """The open support chat (a dialog named "Support")."""
    return page.get_by_role("dialog", name="Support")


async def open_bubble(member: Member) -> Any:
    """Open the support chat and wait until its history has loaded."""
    await member.page.get_by_role("button", name="Support").click()
    dialog = bubble(member.page)
    await expect(dialog).to_be_visible()
    await expect(dialog.get_by_role("textbox", name="Message to support")).to_be_focused()
    return dialog


async def write_to_support(member: Member, text: str) -> None:
    """Send ``text`` from the open bubble and wait for the server's ack."""
    dialog = bubble(member.page)
    await dialog.get_by_role("textbox", name="Message to support").fill(text)
    await dialog.get_by_role("button", name="Send to support").click()
    await expect(dialog.locator("#support-messages")).to_contain_text(text)


def socket_io_connections(page: Any) -> list[str]:
    """The URLs of the Socket.IO WebSockets ``page`` opens from now on (one per connection)."""
    opened: list[str] = []
    page.on("websocket", lambda ws: opened.append(ws.url) if "/socket.io/" in ws.url else None)
    return opened


async def open_inbox(browser: Any, url: str, viewport: dict[str, int] | None = None, *,
                     for_axe: bool = False, persona: str = "Grace Hopper") -> Member:
    """Grace (agent; or another staff ``persona``) signed in, on /inbox with the conversation
    list loaded."""
    agent = await open_member(browser, url, persona, viewport, for_axe=for_axe)
    await agent.page.goto(url + "/inbox")
    await expect(agent.page.locator("#connection-banner")).to_be_empty()
    return agent


async def open_conversation(agent: Member, contact: str) -> Any:
    """Open the conversation with ``contact`` from the list; its message log."""
    conversations = agent.page.get_by_role("region", name="Conversations")
    await conversations.get_by_role("button", name=contact).click()
    await expect(agent.page.get_by_role("heading", level=2, name=contact)).to_be_visible()
    return agent.page.locator("#conversation-log")


async def agent_writes(agent: Member, text: str, *, note: bool = False) -> None:
    """Reply (or add a private note) in the open conversation."""
    await agent.page.get_by_role("textbox", name="Reply", exact=True).fill(text)
    name = "Add private note" if note else "Send reply"
    await agent.page.get_by_role("button", name=name).click()
    await expect(agent.page.locator("#conversation-messages")).to_contain_text(text)


async def test_member_writes_agent_replies_note_stays_private(support: SupportStack,
                                                             browser: Any) -> None:
    ada = await open_member(browser, support.url, "Ada Lovelace")
    sockets = socket_io_connections(ada.page)
    await ada.page.reload()  # counted from the community page's load
    await expect(ada.page.locator("#connection-banner")).to_be_empty()
    dialog = await open_bubble(ada)
    await write_to_support(ada, "My invoice shows the wrong VAT number.")

    grace = await open_inbox(browser, support.url)
    log = await open_conversation(grace, "Ada Lovelace")
    await expect(log).to_contain_text("My invoice shows the wrong VAT number.")
    sla = grace.page.locator("#sla")
    await expect(sla).to_contain_text(re.compile(r"First response due in 59 min \(\d"))
    await agent_writes(grace, "Member says VAT id changed in March.", note=True)
    await expect(log.locator(".msg-private")).to_contain_text("Private note")
    await agent_writes(grace, "Thanks Ada, I have corrected it. A new invoice is on its way.")

    await expect(sla).not_to_contain_text("First response")  # met by the reply
    await expect(sla).to_contain_text(re.compile(r"Resolution due in 23 h 59 min"))
    messages = dialog.locator("#support-messages")
    await expect(messages).to_contain_text("A new invoice is on its way.")
    # the note was queued before the reply on the same conversation (order is kept per
    # conversation), so it has been through Chatwoot and its echo by now: never on the page
    assert "VAT id changed" not in await ada.page.content()
    # the bubble talked over the community page's own socket: one `/` connection, not two
    assert len(sockets) == 1, sockets
    sockets.clear()
    await ada.page.reload()  # the bubble was used: it attaches at once, still one socket
    dialog = await open_bubble(ada)
    await expect(dialog.locator("#support-messages li")).to_have_count(2)
    assert len(sockets) == 1, sockets
    assert "VAT id changed" not in await ada.page.content()
    texts = await dialog.locator("#support-messages .msg-text").all_text_contents()
    assert texts == ["My invoice shows the wrong VAT number.",
                     "Thanks Ada, I have corrected it. A new invoice is on its way."]
    await dialog.get_by_role("button", name="Close support chat").click()
    await expect(dialog).to_be_hidden()
    await expect(ada.page.get_by_role("button", name="Support")).to_be_focused()
    ada.assert_clean()
    grace.assert_clean()


class SocketCut:
    """Drops a page's Socket.IO connections and refuses new ones until ``clear()``."""

    def __init__(self) -> None:
        self.cut = False
        self.routes: list[Any] = []
        self.opened = 0  # WebSockets let through

    async def on_websocket(self, ws: Any) -> None:
        if self.cut:
            await ws.close()
            return
        ws.connect_to_server()
        self.routes.append(ws)
        self.opened += 1

    async def on_request(self, route: Any) -> None:
        await (route.abort() if self.cut else route.continue_())

    async def start(self) -> None:
        self.cut = True
        for ws in self.routes:
            await ws.close()
        self.routes.clear()

    def clear(self) -> None:
        self.cut = False


async def route_sockets(member: Member) -> SocketCut:
    """Route the member's sockets through a ``SocketCut`` (the page reloads to apply it)."""
    cut = SocketCut()
    await member.context.route_web_socket(re.compile(r"/socket\.io/"), cut.on_websocket)
    await member.context.route(re.compile(r"/socket\.io/"), cut.on_request)
    await member.page.reload()
    await expect(member.page.locator("#connection-banner")).to_be_empty()
    return cut


async def test_replies_missed_offline_fill_in_and_closed_bubble_counts_them(
        support: SupportStack, browser: Any) -> None:
    ada = await open_member(browser, support.url, "Ada Lovelace")
    await open_bubble(ada)
    await write_to_support(ada, "Is the live workshop recorded?")
    grace = await open_inbox(browser, support.url)
    await open_conversation(grace, "Ada Lovelace")

    await ada.page.keyboard.press("Escape")  # closes the bubble; focus back on its button
    await expect(bubble(ada.page)).to_be_hidden()
    toggle = ada.page.get_by_role("button", name="Support")
    await expect(toggle).to_be_focused()

    cut = await route_sockets(ada)  # reloads: the bubble connects at once (used before)
    await agent_writes(grace, "Yes, recordings are posted the next day.")
    await expect(toggle).to_contain_text("1")  # live while closed: counted as unread
    assert cut.opened == 1  # the community page and its bubble share one socket
    await cut.start()
    await expect(ada.page.locator("#support-banner")).to_contain_text("Offline")
    await agent_writes(grace, "You will find them under Workshops.")
    cut.clear()
    await expect(ada.page.locator("#support-banner")).to_be_empty(timeout=20_000)
    dialog = await open_bubble(ada)
    texts = dialog.locator("#support-messages .msg-text")
    await expect(texts).to_have_text(["Is the live workshop recorded?",
                                      "Yes, recordings are posted the next day.",
                                      "You will find them under Workshops."])
    assert cut.opened == 2  # reconnected once, still shared
    await agent_writes(grace, "And the slides too.")  # live again after the reconnect
    await expect(texts).to_have_count(4)
    await expect(texts.last).to_have_text("And the slides too.")
    await expect(ada.page.locator("#connection-banner")).to_be_empty()  # the page is back too
    ada.assert_clean()


async def test_agent_assigns_resolves_and_sees_sla(
        support_breaching: SupportStack, browser: Any) -> None:
    stack = support_breaching
    grace = await open_inbox(browser, stack.url)
    page = grace.page
    margaret = await open_inbox(browser, stack.url, persona="Margaret Hamilton")  # supervisor
    ada = await open_member(browser, stack.url, "Ada Lovelace")
    await open_bubble(ada)
    await write_to_support(ada, "Can I move my session to Friday?")
    # nobody answered within the policy's first-response time: the breach is announced live
    # to supervisors (role admin); agents see it on the conversation
    alerts = margaret.page.get_by_role("log", name="SLA breaches")
    await expect(alerts).to_contain_text(
        re.compile(r"SLA breached: first response on conversation #\d+ with Ada Lovelace"))
    await open_conversation(grace, "Ada Lovelace")
    sla = page.locator("#sla")
    await expect(sla).to_contain_text("SLA: standard")
    await expect(sla.locator(".sla-breached")).to_contain_text("First response overdue by")
    await expect(sla).to_contain_text("Resolution due in")
    conversations = page.locator("#conversations")
    await expect(conversations).to_contain_text("SLA: First response overdue")
    # plain agents have no breach log at all (the alerts go to supervisors only)
    await expect(page.get_by_role("log", name="SLA breaches")).to_have_count(0)
    margaret.assert_clean()

    facts = page.locator("#conversation-facts")
    await page.get_by_role("combobox", name="Assign to").select_option(label="Aiko Tanaka")
    await page.get_by_role("button", name="Assign", exact=True).click()
    await expect(facts).to_contain_text("Aiko Tanaka (Chatwoot agent 24)")
    assignee = page.get_by_role("combobox", name="Assignee")
    await assignee.select_option(label="Aiko Tanaka")
    await expect(conversations).to_contain_text("Assigned to Aiko Tanaka")
    await assignee.select_option(label="Unassigned")
    await expect(conversations).not_to_contain_text("Ada Lovelace")
    await assignee.select_option(label="Anyone")
    await page.get_by_role("button", name="Resolve").click()
    await expect(facts).to_contain_text("Resolved")
    await expect(conversations).not_to_contain_text("Ada Lovelace")  # the list shows Open
    await page.locator("#filter-status").select_option("resolved")
    await expect(conversations).to_contain_text("Ada Lovelace")
    await expect(sla).to_contain_text("First response: breached")  # what was missed stays
    grace.assert_clean()


async def test_agent_picks_an_assignee_and_labels_another_agent_sees_them(
        support: SupportStack, browser: Any) -> None:
    ada = await open_member(browser, support.url, "Ada Lovelace")
    await open_bubble(ada)
    await write_to_support(ada, "My payout is late.")
    grace = await open_inbox(browser, support.url)
    margaret = await open_inbox(browser, support.url, persona="Margaret Hamilton")
    await open_conversation(grace, "Ada Lovelace")
    page = grace.page
    picker = page.get_by_role("combobox", name="Assign to")
    await expect(picker.locator("option")).to_have_text(["Unassigned", "Aiko Tanaka",
                                                         "Marco Silva"])
    await picker.select_option(label="Marco Silva")  # by name, from Chatwoot's agents
    await page.get_by_role("button", name="Assign", exact=True).click()
    facts = page.locator("#conversation-facts")
    await expect(facts).to_contain_text("Marco Silva (Chatwoot agent 21)")
    await expect(picker).to_have_value("21")

    labels = page.get_by_role("group", name="Labels")
    box = labels.get_by_role("combobox", name="Add a label")
    suggestions = page.locator("#known-labels option")
    await expect(suggestions).to_have_count(3)  # the account's labels
    await box.fill("billing")
    await box.press("Enter")  # keyboard only: Enter adds
    chips = page.get_by_role("list", name="Labels of this conversation")
    chip_names = chips.locator(".label-chip > span:first-child")
    await expect(chip_names).to_have_text(["billing"])
    await expect(box).to_have_value("")
    await box.fill("vip")
    await labels.get_by_role("button", name="Add label").click()
    await expect(chips.get_by_role("listitem")).to_have_count(2)
    await expect(suggestions).to_have_count(1)  # only "orders" is left to suggest
    await box.fill("a,b")
    await box.press("Enter")
    await expect(page.locator("#action-status")).to_contain_text("cannot contain commas")
    remove = chips.get_by_role("button", name="Remove label billing")
    await remove.focus()
    await page.keyboard.press("Enter")
    await expect(chip_names).to_have_text(["vip"])
    await expect(chips.get_by_role("button", name="Remove label vip")).to_be_focused()
    await expect(facts).to_contain_text("vip")

    # another agent's inbox shows it live, without a reload
    conversations = margaret.page.get_by_role("region", name="Conversations")
    await expect(conversations).to_contain_text("Assigned to Marco Silva")
    await expect(conversations).to_contain_text("Labels: vip")
    await open_conversation(margaret, "Ada Lovelace")
    await expect(margaret.page.get_by_role("combobox", name="Assign to")).to_have_value("21")
    await expect(margaret.page.get_by_role("list", name="Labels of this conversation")
                 .get_by_role("button")).to_have_accessible_name("Remove label vip")
    assert support.fake.conversations[next(iter(support.fake.conversations))]["labels"] == [
        "vip"]
    grace.assert_clean()
    margaret.assert_clean()


async def test_keyboard_only_and_hostile_text_shown_as_text(
        support: SupportStack, browser: Any) -> None:
    alerts: list[str] = []
    ada = await open_member(browser, support.url, "Ada Lovelace")
    ada.page.on("dialog", lambda dialog: alerts.append(dialog.message))
    toggle = ada.page.get_by_role("button", name="Support")
    await toggle.focus()
    await ada.page.keyboard.press("Enter")
    box = bubble(ada.page).get_by_role("textbox", name="Message to support")
    await expect(box).to_be_focused()
    await ada.page.keyboard.type(HOSTILE)
    await ada.page.keyboard.press("Enter")  # Enter sends
    messages = bubble(ada.page).locator("#support-messages")
    await expect(messages).to_contain_text(HOSTILE)
    await expect(box).to_have_value("")

    grace = await open_inbox(browser, support.url)
    grace.page.on("dialog", lambda dialog: alerts.append(dialog.message))
    log = await open_conversation(grace, "Ada Lovelace")
    await expect(log).to_contain_text(HOSTILE)
    await agent_writes(grace, "Reply to " + HOSTILE)
    await expect(messages).to_contain_text("Reply to " + HOSTILE)
    for page in (ada.page, grace.page):
        assert await page.locator("#support-messages img, #conversation-messages img,"
                                  " #support-messages script").count() == 0
    assert alerts == []
    ada.assert_clean()
    grace.assert_clean()


async def test_typing_and_replies_from_chatwoots_dashboard(support: SupportStack,
                                                           browser: Any) -> None:
    ada = await open_member(browser, support.url, "Ada Lovelace")
    dialog = await open_bubble(ada)
    await write_to_support(ada, "Where is my course certificate?")
    grace = await open_inbox(browser, support.url)
    log = await open_conversation(grace, "Ada Lovelace")
    conv_id = next(iter(support.fake.conversations))
    agent_typing, member_typing = grace.page.locator("#conversation-typing"), dialog.locator(
        "#support-typing")

    support.fake.typing(conv_id, True, private=True)  # Marco, in Chatwoot's dashboard
    await support.fake.drain()
    await expect(agent_typing).to_have_text("Marco Silva is typing a private note…")
    support.fake.typing(conv_id, True)
    await support.fake.drain()
    await expect(agent_typing).to_have_text("Marco Silva is typing…")
    await expect(member_typing).to_have_text("Support is typing…")  # never for the note
    support.fake.agent_reply(conv_id, "Here it is, with the PDF attached.", attachments=[{
        "id": 5, "message_id": 0, "file_type": "file", "account_id": 7, "extension": "pdf",
        "data_url": "https://chat.example.com/certificate.pdf", "thumb_url": "",
        "file_size": 1200}])
    support.fake.typing(conv_id, False)
    messages = dialog.locator("#support-messages")
    await expect(messages).to_contain_text("Here it is, with the PDF attached.")
    await expect(messages.get_by_role("link", name="Attachment (file)")).to_have_attribute(
        "href", "https://chat.example.com/certificate.pdf")
    await expect(member_typing).to_be_empty()
    await expect(log).to_contain_text("Marco Silva")
    await expect(log).to_contain_text("Attachment: file (.pdf)")
    await expect(agent_typing).to_be_empty()
    # the agent's own typing in Gigvora goes through Chatwoot to the member
    await grace.page.get_by_role("textbox", name=re.compile("Reply")).press_sequentially("On it")
    await support.fake.drain()
    await expect(member_typing).to_have_text("Support is typing…")
    await grace.page.get_by_role("button", name="Send reply").click()
    await support.fake.drain()
    await expect(member_typing).to_be_empty()
    await expect(messages).to_contain_text("On it")
    ada.assert_clean()
    grace.assert_clean()


@pytest.mark.parametrize("width", ["phone", "desktop"])
async def test_support_pages_pass_axe_and_are_captured(support: SupportStack,
                                                       browser: Any, width: str) -> None:
    viewport = PHONE if width == "phone" else DESKTOP
    ada = await open_member(browser, support.url, "Ada Lovelace", viewport, for_axe=True)
    await open_bubble(ada)
    await write_to_support(ada, "Hello! How do I change my payout account?")
    grace = await open_inbox(browser, support.url, viewport, for_axe=True)
    await open_conversation(grace, "Ada Lovelace")
    await agent_writes(grace, "Checking the payout rules for your country.", note=True)
    await agent_writes(grace, "Hi Ada! Settings → Payouts → Change account.")
    await expect(bubble(ada.page)).to_contain_text("Settings → Payouts")
    await grace.page.get_by_role("combobox", name="Add a label").fill("billing")
    await grace.page.get_by_role("button", name="Add label").click()
    await expect(grace.page.get_by_role("button", name="Remove label billing")).to_be_visible()
    assert await axe_violations(ada.page) == [], "community with the support bubble open"
    await screenshot(ada.page, f"support-bubble-{viewport['width']}")
    assert await axe_violations(grace.page) == [], "inbox"
    await screenshot(grace.page, f"inbox-{viewport['width']}")


async def test_no_bubble_without_the_bridge(shell: LiveServer, browser: Any) -> None:
    ada = await open_member(browser, shell.url, "Ada Lovelace")
    await expect(ada.page.locator("#message-log")).to_be_visible()
    await expect(ada.page.get_by_role("button", name="Support")).to_have_count(0)
    await expect(ada.page.get_by_role("complementary", name="Support")).to_have_count(0)
    ada.assert_clean()


async def test_room_page_and_bubble_share_one_websocket(support: SupportStack,
                                                       browser: Any) -> None:
    """The room page's `/rooms` socket and the bubble's `/` socket are two Socket.IO namespaces
    multiplexed over one WebSocket (one Engine.IO connection), and both work."""
    ada = await open_member(browser, support.url, "Ada Lovelace")
    sockets = socket_io_connections(ada.page)
    await ada.page.goto(support.url + "/rooms/support-lounge")
    await expect(ada.page.locator("#room-status")).to_contain_text("You are in the room")
    await open_bubble(ada)
    await write_to_support(ada, "Sound drops in the lounge every minute.")
    grace = await open_inbox(browser, support.url)
    log = await open_conversation(grace, "Ada Lovelace")
    await expect(log).to_contain_text("Sound drops in the lounge every minute.")
    await agent_writes(grace, "Try the wired headset, Ada.")
    await expect(bubble(ada.page).locator("#support-messages")).to_contain_text(
        "Try the wired headset, Ada.")
    await expect(ada.page.locator("#room-status")).to_contain_text("You are in the room")
    assert len(sockets) == 1, sockets
    ada.assert_clean()
    grace.assert_clean()
