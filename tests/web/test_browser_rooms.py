"""The live room page in Debian's chromium with fake camera and microphone: a publisher's
video plays on the other members' pages (a late joiner too), self mute, host mute and kick,
leave and rejoin, the page's own getStats() figures reaching the room's telemetry; axe-core and
screenshots at phone and desktop width."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from playwright.async_api import expect

from tests.helpers import LiveServer, mint
from tests.web.conftest import CHROMIUM, CHROMIUM_FLAGS
from tests.web.pages import DESKTOP, PHONE, Member, axe_violations, open_member, screenshot

ROOM = "design-review"
HOSTILE_NAME = '<img src=x onerror=alert("name")>\'"&'
#: Fake camera and microphone, no permission prompt, sound may start without a gesture, and
#: real host candidates (no mDNS names) on loopback.
MEDIA_FLAGS = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
               "--autoplay-policy=no-user-gesture-required",
               "--disable-features=WebRtcHideLocalIpsWithMdns"]
#: True once the video has a frame (readyState >= 2), its playback position advances and its
#: audio track receives packets (a remote track stays `muted` until media arrives).
PLAYING = """async (video) => {
  const audio = video.srcObject && video.srcObject.getAudioTracks()[0];
  if (video.readyState < 2 || !audio || audio.muted || video.muted) return false;
  const start = video.currentTime;
  await new Promise((resolve) => video.requestVideoFrameCallback(() => resolve()));
  await new Promise((resolve) => video.requestVideoFrameCallback(() => resolve()));
  return video.currentTime > start;
}"""


@pytest.fixture
async def media_browser() -> AsyncIterator[Any]:
    """Debian's chromium with fake media devices (never a downloaded browser)."""
    if not os.path.exists(CHROMIUM):  # noqa: ASYNC240 (one stat, before any I/O starts)
        pytest.skip("browser tests need Debian's chromium at /usr/bin/chromium")
    playwright_api = pytest.importorskip("playwright.async_api")
    async with playwright_api.async_playwright() as playwright:
        playwright_api.expect.set_options(timeout=15_000)
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS + MEDIA_FLAGS)
        yield chromium
        await chromium.close()


async def enter_room(browser: Any, url: str, persona: str,
                     viewport: dict[str, int] | None = None, *, for_axe: bool = False
                     ) -> Member:
    """A signed-in member on the room page, once the page has joined the room."""
    member = await open_member(browser, url, persona, viewport, for_axe=for_axe)
    await member.page.goto(f"{url}/rooms/{ROOM}")
    await expect(member.page.locator("#room-status")).to_contain_text("You are in the room")
    return member


async def assert_playing(page: Any, name: str) -> None:
    """The video of ``name`` on ``page`` plays, with sound."""
    video = page.get_by_label(f"Video of {name}")
    await expect(video).to_be_visible()
    handle = await video.element_handle()
    await page.wait_for_function(PLAYING, arg=handle, polling=200, timeout=20_000)


async def client_figures(shell: LiveServer, name: str) -> bool:
    """True once the room's telemetry holds the browser figures ``name``'s page reported
    (waits for them, checking once a second for up to 20 s)."""
    async with aiohttp.ClientSession() as http:
        for _ in range(20):
            async with http.get(f"{shell.url}/api/v1/rooms/{ROOM}/telemetry",
                                headers=shell.headers("ops", "operator")) as response:
                document = await response.json()
            if any(p["user"]["name"] == name and p["client"] for p in document["participants"]):
                return True
            await asyncio.sleep(1)
    return False


def participants(page: Any) -> Any:
    """The participant list."""
    return page.get_by_role("region", name=re.compile(r"^Participants"))


def activity(page: Any) -> Any:
    """The activity log (a polite live region)."""
    return page.get_by_role("log", name="Activity")


async def test_members_see_each_other_and_the_host_kicks(shell: LiveServer,
                                                         media_browser: Any) -> None:
    ada = await enter_room(media_browser, shell.url, "Ada Lovelace")
    await expect(ada.page.locator("#room-status")).to_contain_text("its host")
    alan = await enter_room(media_browser, shell.url, "Alan Turing")
    await expect(activity(ada.page)).to_contain_text("Alan Turing joined.")
    await expect(participants(alan.page)).to_contain_text("Ada Lovelace")

    await alan.page.get_by_role("button", name="Publish", exact=True).click()
    await expect(alan.page.locator("#room-status")).to_contain_text("You are live")
    await expect(alan.page.get_by_label("Your camera preview")).to_be_visible()
    await assert_playing(ada.page, "Alan Turing")
    await expect(activity(ada.page)).to_contain_text("Alan Turing is live.")

    # a late joiner sees everyone already publishing
    katherine = await enter_room(media_browser, shell.url, "Katherine Johnson")
    await assert_playing(katherine.page, "Alan Turing")

    # the publisher's own getStats() figures: the indicator, and the room's telemetry
    await expect(alan.page.locator("#quality-text")).to_have_text(re.compile(r"^(good|fair|poor)"))
    await expect(participants(ada.page)).to_contain_text("connection")
    assert await client_figures(shell, "Alan Turing")

    # self mute, then a host mute that only a host lifts
    await alan.page.get_by_role("button", name="Mute", exact=True).click()
    await expect(alan.page.get_by_role("button", name="Unmute", exact=True)).to_be_visible()
    await expect(participants(ada.page)).to_contain_text("microphone muted")
    await alan.page.get_by_role("button", name="Unmute", exact=True).click()
    await expect(alan.page.get_by_role("button", name="Mute", exact=True)).to_be_visible()
    await ada.page.get_by_role("button", name="Mute Alan Turing").click()
    await expect(activity(alan.page)).to_contain_text("Ada Lovelace muted your microphone.")
    # the list re-renders; the host's focus stays on the same control
    await expect(ada.page.get_by_role("button", name="Unmute Alan Turing")).to_be_focused()
    await alan.page.get_by_role("button", name="Unmute", exact=True).click()
    await expect(alan.page.get_by_role("alert")).to_contain_text("only a host can unmute you")
    await ada.page.get_by_role("button", name="Unmute Alan Turing").click()
    await expect(alan.page.get_by_role("button", name="Mute", exact=True)).to_be_visible()

    # the host kicks: the member's page says so, the others' pages drop them
    await ada.page.get_by_role("button", name="Kick Alan Turing").click()
    await expect(ada.page.get_by_role("button", name="Confirm kick of Alan Turing")).to_be_focused()
    await ada.page.keyboard.press("Enter")
    await expect(alan.page.get_by_role("alert")).to_contain_text("You were removed from this room")
    await expect(activity(ada.page)).to_contain_text("Alan Turing was removed by Ada Lovelace.")
    await expect(participants(ada.page)).not_to_contain_text("Alan Turing")
    await expect(katherine.page.get_by_label("Video of Alan Turing")).to_have_count(0)
    await alan.page.get_by_role("button", name="Rejoin").click()
    await expect(alan.page.get_by_role("alert")).to_contain_text("you may rejoin in 10 minutes")
    # staff see the open rooms on /rooms
    await katherine.page.get_by_role("link", name="Live rooms").click()
    await katherine.page.get_by_role("link", name=ROOM).click()
    await expect(katherine.page.locator("#room-status")).to_contain_text("You are in the room")
    for member in (ada, alan, katherine):
        member.assert_clean()


async def test_leave_and_rejoin(shell: LiveServer, media_browser: Any) -> None:
    ada = await enter_room(media_browser, shell.url, "Ada Lovelace")
    await ada.page.get_by_role("button", name="Publish", exact=True).click()
    alan = await enter_room(media_browser, shell.url, "Alan Turing")
    await assert_playing(alan.page, "Ada Lovelace")
    await ada.page.get_by_role("button", name="Leave").focus()  # keyboard only from here
    await ada.page.keyboard.press("Enter")
    await expect(activity(alan.page)).to_contain_text("Ada Lovelace left.")
    await expect(alan.page.get_by_label("Video of Ada Lovelace")).to_have_count(0)
    await expect(alan.page.locator("#room-status")).to_contain_text("You are in the room")
    await expect(activity(alan.page)).to_contain_text("You are now the host.")
    await expect(ada.page.get_by_role("button", name="Rejoin")).to_be_focused()
    await ada.page.keyboard.press("Enter")
    await expect(activity(alan.page)).to_contain_text("Ada Lovelace joined.")
    await expect(alan.page.get_by_role("button", name="Kick Ada Lovelace")).to_be_visible()
    for member in (ada, alan):
        member.assert_clean()


async def test_a_publisher_back_from_an_outage_is_seen_again(shell: LiveServer,
                                                               media_browser: Any) -> None:
    ada = await enter_room(media_browser, shell.url, "Ada Lovelace")
    await ada.page.get_by_role("button", name="Publish", exact=True).click()
    alan = await enter_room(media_browser, shell.url, "Alan Turing")
    await assert_playing(alan.page, "Ada Lovelace")
    await ada.context.set_offline(True)
    await expect(activity(alan.page)).to_contain_text("Ada Lovelace lost their connection.")
    await expect(alan.page.get_by_label("Video of Ada Lovelace")).to_have_count(0)
    await expect(ada.page.locator("#room-status")).to_contain_text("reconnecting")
    await ada.context.set_offline(False)
    await expect(ada.page.locator("#room-status")).to_contain_text("You are live")
    await assert_playing(alan.page, "Ada Lovelace")  # rejoined and published again
    alan.assert_clean()


async def test_hostile_names_are_shown_as_text(shell: LiveServer, media_browser: Any) -> None:
    ada = await enter_room(media_browser, shell.url, "Ada Lovelace")
    dialogs: list[str] = []
    ada.page.on("dialog", lambda dialog: dialogs.append(dialog.message))
    mallory = await shell.client(token=mint("mallory", HOSTILE_NAME), namespaces=["/rooms"])
    await mallory.ok("room:join", {"room": ROOM}, namespace="/rooms")
    await expect(activity(ada.page)).to_contain_text(f"{HOSTILE_NAME} joined.")
    await expect(participants(ada.page)).to_contain_text(HOSTILE_NAME)
    await ada.page.get_by_role("button", name=f"Kick {HOSTILE_NAME}").click()
    await ada.page.get_by_role("button", name="Cancel").click()  # a kick asks first
    await expect(ada.page.get_by_role("button", name=f"Kick {HOSTILE_NAME}")).to_be_focused()
    await expect(participants(ada.page)).to_contain_text(HOSTILE_NAME)
    assert await ada.page.locator("#participants img").count() == 0
    assert dialogs == []
    ada.assert_clean()


@pytest.mark.parametrize("width", ["phone", "desktop"])
async def test_room_pages_pass_axe_and_are_captured(shell: LiveServer, media_browser: Any,
                                                    width: str) -> None:
    viewport = PHONE if width == "phone" else DESKTOP
    ada = await enter_room(media_browser, shell.url, "Ada Lovelace", viewport, for_axe=True)
    await ada.page.get_by_role("button", name="Publish", exact=True).click()
    alan = await enter_room(media_browser, shell.url, "Alan Turing", viewport, for_axe=True)
    await alan.page.get_by_role("button", name="Publish", exact=True).click()
    await assert_playing(alan.page, "Ada Lovelace")
    await assert_playing(ada.page, "Alan Turing")
    await expect(ada.page.get_by_role("button", name="Kick Alan Turing")).to_be_visible()
    assert await axe_violations(ada.page) == [], "room (host)"
    await screenshot(ada.page, f"room-{viewport['width']}")
    assert await axe_violations(alan.page) == [], "room (participant)"
    title = f"Portfolio clinic ({width})"
    await schedule_session(shell.url, title)
    await alan.page.get_by_role("link", name="Live rooms").click()
    await expect(alan.page.get_by_role("textbox", name="Room name")).to_be_visible()
    # every member sees the upcoming scheduled sessions, linked to their rooms
    await expect(alan.page.get_by_role("link", name=title)).to_be_visible()
    assert await axe_violations(alan.page) == [], "room list"
    await screenshot(alan.page, f"rooms-{viewport['width']}")


async def schedule_session(url: str, title: str) -> None:
    """A member schedules a session in an hour (REST), hosted by themselves."""
    start = datetime.now(UTC) + timedelta(hours=1)
    body = {"title": title, "channel": "general", "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(hours=1)).isoformat()}
    headers = {"Authorization": f"Bearer {mint('grace', 'Grace Hopper')}"}
    async with aiohttp.ClientSession() as http, http.post(
            f"{url}/api/v1/rooms/sessions", json=body, headers=headers) as response:
        assert response.status == 201, await response.text()


async def test_a_private_room_asks_for_its_pin_once(shell: LiveServer, media_browser: Any) -> None:
    room = "pin-room"
    async with aiohttp.ClientSession() as http, http.post(
            f"{shell.url}/api/v1/admin/codes", headers=shell.headers("root", "admin"),
            json={"purpose": "room_pin", "subject": room, "ttl_s": 600}) as response:
        assert response.status == 201
        pin = (await response.json())["code"]
    ada = await open_member(media_browser, shell.url, "Ada Lovelace", for_axe=True)
    await ada.page.goto(f"{shell.url}/rooms/{room}")
    box = ada.page.get_by_role("textbox", name="Room PIN")
    await expect(box).to_be_focused()
    assert await axe_violations(ada.page) == [], "room PIN form"
    await box.fill("00000000" if pin != "00000000" else "11111111")
    await box.press("Enter")
    await expect(ada.page.get_by_role("alert")).to_contain_text("wrong, expired or already used")
    await box.fill(pin)
    await box.press("Enter")
    await expect(ada.page.locator("#room-status")).to_contain_text("You are in the room")
    await expect(box).to_be_hidden()
    await ada.page.reload()  # granted: no PIN the second time
    await expect(ada.page.locator("#room-status")).to_contain_text("You are in the room")
    await expect(box).to_be_hidden()
    ada.assert_clean()
