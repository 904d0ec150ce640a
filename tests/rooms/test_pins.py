"""Room PINs: an admin issues single-use PINs for a room (REST); while one is unexpired the room
admits members only with a PIN, once each; the member may then come back without one; staff
never need one; a room without PINs stays open."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.rooms.conftest import ROOM, StartRooms


async def issue_pin(url: str, headers: dict[str, str], room: str = ROOM) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.post(
            url + "/api/v1/admin/codes", headers=headers,
            json={"purpose": "room_pin", "subject": room, "ttl_s": 600}) as response:
        assert response.status == 201, await response.text()
        return dict(await response.json())


async def test_a_pin_admits_once_and_grants_the_room(start_rooms: StartRooms) -> None:
    rooms = await start_rooms()
    live = rooms.live
    ada, alan, kate = (await rooms.member("ada"), await rooms.member("alan"),
                       await rooms.member("kate", roles="member,moderator"))
    await ada.join("open-room")  # a room without PINs is open
    await ada.ok("room:leave", {"room": "open-room"})

    pin = (await issue_pin(live.url, live.headers("root", "admin")))["code"]
    assert len(pin) == 8 and pin.isdigit()
    refused = await ada.call("room:join", {"room": ROOM})
    assert refused["ok"] is False and refused["error"]["code"] == "forbidden"
    assert refused["error"]["reason"] == "pin_required"
    wrong = "00000000" if pin != "00000000" else "11111111"
    refused = await ada.call("room:join", {"room": ROOM, "pin": wrong})
    assert refused["ok"] is False and refused["error"]["reason"] == "pin_invalid"
    for bad in ("123", "abcdefgh", 12345678):
        invalid = await ada.call("room:join", {"room": ROOM, "pin": bad})
        assert invalid["ok"] is False and invalid["error"]["code"] == "invalid", bad

    await ada.join(ROOM, pin=pin)
    await ada.ok("room:leave", {"room": ROOM})
    await ada.join(ROOM)  # granted until the PIN expires: no PIN needed to come back
    used = await alan.call("room:join", {"room": ROOM, "pin": pin})  # single use
    assert used["ok"] is False and used["error"]["reason"] == "pin_invalid"
    await kate.join(ROOM)  # staff need none
    assert rooms.service.registry.room(ROOM).participants.keys() == {
        ada.participant_id, kate.participant_id}

    second = (await issue_pin(live.url, live.headers("root", "admin")))["code"]
    await alan.join(ROOM, pin=second)


async def test_wrong_guesses_lock_the_room_pins(start_rooms: StartRooms) -> None:
    rooms = await start_rooms()
    pin = (await issue_pin(rooms.live.url, rooms.live.headers("root", "admin")))["code"]
    mallory = await rooms.member("mallory")
    wrong = "00000000" if pin != "00000000" else "11111111"
    for _ in range(5):
        refused = await mallory.call("room:join", {"room": ROOM, "pin": wrong})
        assert refused["error"]["reason"] == "pin_invalid"
    locked = await mallory.call("room:join", {"room": ROOM, "pin": pin})
    assert locked["ok"] is False and locked["error"]["reason"] == "pin_invalid"
