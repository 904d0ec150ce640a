"""The staff consoles in Debian's chromium, with moderation on: a moderator rejects a held
message and the member's page updates; an approved message reaches the others; an appeal is
refused for the moderator who decided and decided by another; sanctions reach the member; the
audit log and its verification; the operator console; axe-core and screenshots of both."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import pytest
from playwright.async_api import expect

from tests.helpers import LiveServer, mint
from tests.web.pages import (
    DESKTOP,
    PHONE,
    Member,
    accept_guidelines,
    axe_violations,
    message_log,
    open_member,
    screenshot,
    send,
)

TOXIC = "nobody wants you here, just leave"
HOSTILE_NAME = '<img src=x onerror=alert("name")>'
HOSTILE_TEXT = "<script>alert(1)</script> nobody wants you here, idiot"


async def open_console(browser: Any, url: str, persona: str, path: str,
                       viewport: dict[str, int] | None = None, *, for_axe: bool = False
                       ) -> Member:
    """A staff persona signed in, on one of the consoles."""
    staff = await open_member(browser, url, persona, viewport, for_axe=for_axe)
    await staff.page.goto(url + path)
    return staff


def queue(page: Any, name: str) -> Any:
    """One of the console's sections ("Held messages", "Reports", "Appeals", ...)."""
    return page.get_by_role("region", name=name, exact=True)


async def rejected_hold_id(shell: LiveServer) -> str:
    """The id of the hold a moderator rejected (read from the audit log over REST)."""
    async with aiohttp.ClientSession() as http, http.get(
            shell.url + "/api/v1/moderation/audit?action=hold_reject",
            headers=shell.headers("auditor", "moderator")) as response:
        entries = (await response.json())["entries"]
    return str(entries[0]["target_id"])


async def message_id(member: Member, text: str) -> str:
    """The id of the message with ``text`` in a member's log."""
    item = member.page.locator("#messages li").filter(has_text=text)
    return str(await item.get_attribute("data-id"))


async def test_moderator_rejects_a_held_message_then_an_appeal_is_decided_by_another(
        shell: LiveServer, browser: Any) -> None:
    ada = await open_member(browser, shell.url, "Ada Lovelace")
    kat = await open_console(browser, shell.url, "Katherine Johnson", "/moderation")
    holds = queue(kat.page, "Held messages")
    await expect(holds).to_contain_text("Nothing is waiting for review.")
    await accept_guidelines(ada.page)
    await send(ada.page, TOXIC)
    held_note = ada.page.locator("#message-log .msg-held")
    await expect(held_note).to_contain_text(re.compile("held for review", re.I))
    await expect(held_note).to_contain_text(TOXIC)
    # the moderator's console shows it live
    item = holds.get_by_role("listitem").filter(has_text=TOXIC)
    await expect(item).to_contain_text("Ada Lovelace in #general")
    await expect(item).to_contain_text("toxic")
    await item.get_by_role("button", name="Reject").click()  # no reason: refused by the page
    await expect(item.get_by_role("alert")).to_contain_text("Give a reason first")
    await item.get_by_role("textbox", name="Reason").fill("Harassment: telling people to leave")
    await item.get_by_role("button", name="Reject").click()
    await expect(held_note).to_contain_text(
        re.compile("not published: Harassment: telling people to leave", re.I))
    await expect(held_note).not_to_contain_text(re.compile("held for review", re.I))
    await expect(holds).to_contain_text("Nothing is waiting for review.")
    await expect(kat.page.get_by_role("log", name="Live activity")).to_contain_text("hold_reject")
    # the member appeals; the moderator who rejected it may not decide the appeal
    member = await shell.client(token=mint("member-ada", "Ada Lovelace"))
    await member.ok("moderation:appeal", {"subject_type": "hold",
                                          "subject_id": await rejected_hold_id(shell),
                                          "text": "I was quoting a film, please look again."})
    appeal = queue(kat.page, "Appeals").get_by_role("listitem").filter(has_text="quoting a film")
    await expect(appeal).to_contain_text("Appeal by Ada Lovelace against a held message")
    await expect(appeal).to_contain_text(  # the subject: the held message and its decision
        "The held message in #general (rejected: Harassment: telling people to leave)")
    await expect(appeal.locator(".item-text").last).to_have_text(TOXIC)
    await appeal.get_by_role("textbox", name="Reason").fill("I stand by it")
    await appeal.get_by_role("button", name="Overturn").click()
    await expect(appeal.get_by_role("alert")).to_have_text(
        "Refused: a different moderator must decide this appeal")
    # another moderator (an admin) overturns it: the message is published after all
    margaret = await open_console(browser, shell.url, "Margaret Hamilton", "/moderation")
    other = queue(margaret.page, "Appeals").get_by_role("listitem").filter(
        has_text="quoting a film")
    await other.get_by_role("textbox", name="Reason").fill("Context shows a quotation")
    await other.get_by_role("button", name="Overturn").click()
    await expect(margaret.page.get_by_role("status").filter(has_text="Appeal overturned.")
                 ).to_be_visible()
    await expect(ada.page.locator("#messages .msg-text")).to_have_text([TOXIC])
    await expect(appeal).to_have_count(0)  # gone from the first console too, live
    # a mute reaches the member's page
    sanctions = queue(kat.page, "Sanctions")
    await sanctions.get_by_role("textbox", name="User ID").fill("member-ada")
    await sanctions.get_by_role("combobox", name="Sanction").select_option("mute")
    await sanctions.get_by_role("combobox", name="Duration").select_option(label="1 hour")
    await sanctions.get_by_role("textbox", name="Reason", exact=True).fill("Cooling off")
    await sanctions.get_by_role("button", name="Apply sanction").click()
    await expect(ada.page.locator("#moderation-notice")).to_contain_text(
        re.compile(r"You are muted until \d"))
    await expect(ada.page.locator("#moderation-notice")).to_contain_text("Reason: Cooling off.")
    await ada.page.reload()  # the notice comes back from GET /api/v1/moderation/mine
    await expect(ada.page.locator("#moderation-notice")).to_contain_text(
        re.compile(r"You are muted until \d.*Reason: Cooling off\."))
    latest = sanctions.get_by_role("listitem").first
    await expect(latest).to_contain_text("mute · member-ada until")
    await latest.get_by_role("textbox", name="Reason for lifting").fill("Apologised")
    await latest.get_by_role("button", name="Lift the mute of member-ada").click()
    await expect(ada.page.locator("#moderation-notice")).to_have_text(
        "Your mute was lifted. You can post again.")
    await expect(latest).to_contain_text("lifted · by moderator-katherine")
    # the audit log: entries, filters and the chain's verification
    audit = queue(kat.page, "Audit log")
    await expect(audit.get_by_role("status").first).to_have_text(
        re.compile(r"^Audit chain verified: \d+ entries"))
    rows = audit.locator("tbody tr")
    for action in ("auto_hold", "hold_reject", "appeal", "appeal_overturned", "hold_approve",
                   "mute"):
        await expect(rows.filter(has=kat.page.get_by_role("cell", name=action, exact=True))
                     ).not_to_have_count(0)
    await audit.get_by_role("combobox", name="Action").select_option("hold_reject")
    await audit.get_by_role("button", name="Apply filters").click()
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("moderator-katherine")
    await expect(rows.first).to_contain_text("Harassment: telling people to leave")
    await audit.get_by_role("button", name="Clear filters").click()
    await expect(rows).not_to_have_count(1)
    for person in (ada, kat, margaret):
        person.assert_clean()


async def test_moderator_approves_a_held_message_for_everyone(shell: LiveServer,
                                                              browser: Any) -> None:
    ada = await open_member(browser, shell.url, "Ada Lovelace")
    alan = await open_member(browser, shell.url, "Alan Turing")
    kat = await open_console(browser, shell.url, "Katherine Johnson", "/moderation")
    await accept_guidelines(ada.page)
    await send(ada.page, TOXIC)
    await expect(ada.page.locator("#message-log .msg-held")).to_contain_text(
        re.compile("held for review", re.I))
    await alan.page.wait_for_timeout(200)
    assert TOXIC not in await message_log(alan.page).inner_text()  # nobody else sees it
    await ada.page.reload()  # the note comes back from GET /api/v1/moderation/mine
    await expect(ada.page.locator("#message-log .msg-held")).to_contain_text(TOXIC)
    await expect(ada.page.locator("#message-log .msg-held")).to_contain_text(
        re.compile("held for review", re.I))
    item = queue(kat.page, "Held messages").get_by_role("listitem").filter(has_text=TOXIC)
    await item.get_by_role("textbox", name="Reason").fill("Friendly banter between colleagues")
    await item.get_by_role("button", name="Approve").click()
    await expect(message_log(alan.page)).to_contain_text(TOXIC)
    await expect(ada.page.locator("#messages .msg-text")).to_have_text([TOXIC])
    await expect(ada.page.locator("#message-log .msg-held")).to_have_count(0)
    await expect(queue(kat.page, "Held messages")).to_contain_text("Nothing is waiting")
    # a report: the moderator deletes the message, then resolves the report
    carol = await shell.client("carol")
    await carol.ok("message:report", {"id": await message_id(alan, TOXIC),
                                      "reason": "Still rude to me"})
    report = queue(kat.page, "Reports").get_by_role("listitem").filter(
        has_text="Still rude to me")
    await expect(report).to_contain_text("Report on a message by Ada Lovelace in #general")
    await expect(report).to_contain_text("Reported by Carol")
    await expect(report).to_contain_text(TOXIC)
    await report.get_by_role("button", name="Sanction author Ada Lovelace").click()
    await expect(kat.page.get_by_role("textbox", name="User ID")).to_have_value("member-ada")
    await report.get_by_role("textbox", name="Reason").fill("Rude after all")
    await report.get_by_role("button", name="Delete message").click()
    await expect(message_log(alan.page)).to_contain_text("This message was deleted.")
    await expect(report).to_contain_text("This message was deleted.")
    await report.get_by_role("textbox", name="Reason").fill("Message removed")
    await report.get_by_role("button", name="Resolve").click()
    await expect(queue(kat.page, "Reports")).to_contain_text("No open reports.")
    for person in (ada, alan, kat):
        person.assert_clean()


async def test_operator_console_shows_readiness_queues_metrics_and_config(
        shell: LiveServer, browser: Any) -> None:
    radia = await open_member(browser, shell.url, "Radia Perlman")
    page = radia.page
    readyz: list[str] = []
    page.on("request", lambda request: readyz.append(request.url)
            if request.url.endswith("/readyz") else None)
    await page.clock.install()
    await page.goto(shell.url + "/ops")
    checks = queue(page, "Readiness")
    for check in ("lifecycle:state", "store:roundtrip", "fanout:outbound", "eventloop:lag",
                  "moderation:pipeline"):
        row = checks.get_by_role("row", name=re.compile("^" + re.escape(check)))
        await expect(row).to_contain_text("pass")
    await expect(checks.get_by_role("row", name=re.compile("^lifecycle:state"))
                 ).to_contain_text("ready")
    await expect(checks).to_contain_text("Overall: pass (HTTP 200")
    queues = queue(page, "Queues")
    await expect(queues).to_contain_text("Store write queue")
    await expect(queues).to_contain_text("not used (no Redis bus on this node)")
    await expect(queues).to_contain_text("Outbound buffered")
    metrics = queue(page, "Key metrics")
    for name in ("Connections", "Events ok", "Events with errors", "Fan-out deliveries",
                 "Store commit p50", "Rate limited"):
        await expect(metrics).to_contain_text(name)
    await expect(metrics).to_contain_text(re.compile(r"Store commit p50\s*[\d.]+ ms"))
    config = queue(page, "Configuration")
    await expect(config).to_contain_text("Config lint: pass no problems found")
    await config.get_by_text("Settings in effect (secrets masked)").click()
    await expect(config.get_by_role("row", name=re.compile("^GIGVORA_JWT_SECRET"))
                 ).to_contain_text("**********")
    await expect(queue(page, "Live room telemetry")).to_contain_text("No open rooms.")
    # auto-refresh every 5 s, until paused
    first = len(readyz)
    await page.clock.run_for(5_100)
    for _ in range(50):
        if len(readyz) > first:
            break
        await page.wait_for_timeout(20)
    assert len(readyz) > first, readyz
    await page.get_by_role("button", name="Pause auto-refresh").click()
    await expect(page.get_by_role("button", name="Resume auto-refresh")).to_be_visible()
    paused = len(readyz)
    await page.clock.run_for(11_000)
    await page.wait_for_timeout(100)
    assert len(readyz) == paused
    radia.assert_clean()


async def test_admin_sees_readiness_metrics_and_live_room_telemetry(shell: LiveServer,
                                                                   browser: Any) -> None:
    from rooms.service import NS as ROOMS_NS
    from tests.rooms.conftest import Member as RoomMember

    host = RoomMember(await shell.client("host-ada", namespaces=[ROOMS_NS]))
    viewer = RoomMember(await shell.client("viewer-alan", namespaces=[ROOMS_NS]))
    try:
        await host.join("standup")
        await host.publish(["audio", "video"], room="standup")
        await viewer.join("standup", role="listener")
        await viewer.subscribe(host.participant_id, room="standup")
        margaret = await open_console(browser, shell.url, "Margaret Hamilton", "/ops")
        page = margaret.page
        checks = queue(page, "Readiness")  # the detail, for an admin without the operator role
        await expect(checks.get_by_role("row", name=re.compile("^rooms:media"))
                     ).to_contain_text("pass")
        await expect(queue(page, "Key metrics")).to_contain_text(re.compile(r"Connections\s*\d"))
        rooms = queue(page, "Live room telemetry")
        await expect(rooms).to_contain_text("1 open room, 2 participants")
        sender = rooms.locator(f'tr[data-participant="{host.participant_id}"]')
        await expect(sender).to_contain_text("#standup")
        await expect(sender).to_contain_text("Host-Ada")
        # figures arrive with the second telemetry sample and the next refresh of the page
        await expect(sender).to_contain_text(re.compile(r"video VP8 [\d.]+ [kM]bit/s \d+ fps"),
                                             timeout=30_000)
        await expect(sender).to_contain_text(re.compile(r"audio opus [\d.]+ kbit/s"))
        await expect(sender).to_contain_text(re.compile(r"in \d+\.\d %"))  # loss received
        listener = rooms.locator(f'tr[data-participant="{viewer.participant_id}"]')
        await expect(listener).to_contain_text("listener")
        await expect(listener).to_contain_text(re.compile(r"2 streams, [\d.]+ [kM]bit/s"),
                                               timeout=30_000)
        margaret.assert_clean()
    finally:
        await host.close()
        await viewer.close()


@pytest.mark.parametrize("width", ["phone", "desktop"])
async def test_consoles_pass_axe_and_are_captured(shell: LiveServer, browser: Any,
                                                  width: str) -> None:
    viewport = PHONE if width == "phone" else DESKTOP
    bob = await shell.client("bob")
    carol = await shell.client("carol")
    posted = await bob.ok("message:send", {"channel": "general", "text": "Selling my old laptop"})
    await carol.ok("message:report", {"id": posted["id"], "reason": "Off-topic sales post"})
    await bob.ok("message:send", {"channel": "general", "text": TOXIC})
    mallory = await shell.client(token=mint("mallory", HOSTILE_NAME))
    await mallory.ok("message:send", {"channel": "general", "text": HOSTILE_TEXT})
    ada = await open_member(browser, shell.url, "Ada Lovelace", viewport, for_axe=True)
    await accept_guidelines(ada.page)
    await send(ada.page, "you are all idiots and nobody wants you here")
    await expect(ada.page.locator("#message-log .msg-held")).to_be_visible()
    assert await axe_violations(ada.page) == [], "community with a held message"
    await screenshot(ada.page, f"community-held-{viewport['width']}")
    kat = await open_console(browser, shell.url, "Katherine Johnson", "/moderation", viewport,
                             for_axe=True)
    holds = queue(kat.page, "Held messages")
    await expect(holds.get_by_role("listitem")).to_have_count(3)
    hostile = holds.get_by_role("listitem").filter(has_text="alert(1)")
    await expect(hostile.locator(".item-text")).to_have_text(HOSTILE_TEXT)  # as text
    await expect(hostile.locator(".item-title")).to_have_text(f"{HOSTILE_NAME} in #general")
    assert await kat.page.locator("#main img, #main script, #main svg").count() == 0
    await expect(queue(kat.page, "Reports")).to_contain_text("Off-topic sales post")
    await expect(kat.page.get_by_text(re.compile("^Audit chain verified"))).to_be_visible()
    await expect(kat.page.locator("#audit-rows tr")).not_to_have_count(0)
    assert await axe_violations(kat.page) == [], "moderation console"
    await screenshot(kat.page, f"moderation-{viewport['width']}")
    radia = await open_console(browser, shell.url, "Radia Perlman", "/ops", viewport,
                               for_axe=True)
    await expect(radia.page.locator("#ready-rows tr")).not_to_have_count(0)
    await expect(radia.page.get_by_text("Config lint:")).to_be_visible()
    assert await axe_violations(radia.page) == [], "operator console"
    await screenshot(radia.page, f"ops-{viewport['width']}")
    for person in (ada, kat, radia):
        person.assert_clean()
