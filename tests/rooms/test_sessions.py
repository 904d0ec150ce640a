"""Scheduled live sessions: REST validation and roles, the join window, the room closing at the
end, and the channel reminder posted exactly once (across a restart, too)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from realtime import contract_models as out
from realtime.app import STORE
from realtime.errors import AppError
from rooms.sessions import ENDED_GRACE_S, SessionGate, Window
from storage.seed import PACKS, apply_pack
from storage.sqlite import SQLiteStore
from tests.rooms.conftest import Rooms, StartRooms, wait_until

SESSIONS = "/api/v1/rooms/sessions"


def at(offset_s: float) -> str:
    """ISO 8601 ``offset_s`` from now."""
    return datetime.fromtimestamp(time.time() + offset_s, UTC).isoformat()


async def http(rooms: Rooms, method: str, path: str, sub: str = "alice",
               roles: str = "member", body: Any = None) -> tuple[int, Any]:
    """A REST call as ``sub``: status and JSON body."""
    async with aiohttp.ClientSession() as session, session.request(
            method, rooms.live.url + path, json=body,
            headers=rooms.live.headers(sub, roles)) as response:
        return response.status, await response.json()


def session_body(**extra: Any) -> dict[str, Any]:
    """A valid session an hour from now, in ``general``."""
    return {"title": "Office hours", "channel": "general", "starts_at": at(3600),
            "ends_at": at(7200), **extra}


def test_gate_opens_for_the_window_only() -> None:
    """Ad-hoc rooms are open; before the start only the host and staff enter; during the
    window everyone; after the end nobody (for a grace period), then the name is free."""
    now = [1000.0]
    gate = SessionGate(lambda: now[0])
    gate.replace([Window("s1", "ama", "hana", 2000.0, 3000.0)])
    assert gate.check("lounge", "bob", staff=False) is None
    with pytest.raises(AppError) as early:
        gate.check("ama", "bob", staff=False)
    assert early.value.details["reason"] == "session_not_started"
    assert early.value.details["retry_after_ms"] == 1_000_000
    assert gate.check("ama", "hana", staff=False).id == "s1"  # type: ignore[union-attr]
    assert gate.check("ama", "mod", staff=True) is not None
    now[0] = 2500.0
    assert gate.check("ama", "bob", staff=False) is not None
    now[0] = 3000.0
    with pytest.raises(AppError) as late:
        gate.check("ama", "bob", staff=False)
    assert late.value.details["reason"] == "session_ended"
    assert [w.id for w in gate.ended()] == ["s1"]
    now[0] = 3000.0 + ENDED_GRACE_S
    assert gate.check("ama", "bob", staff=False) is None
    gate.drop("s1")
    assert gate.rooms == {}


async def test_schedule_list_cancel_with_validation_and_roles(start_rooms: StartRooms) -> None:
    """Members schedule sessions they host; staff for anyone; bad bodies answer ``invalid``;
    only the host, the creator or staff cancel; a cancelled session leaves the list."""
    rooms = await start_rooms()
    status, made = await http(rooms, "POST", SESSIONS, body=session_body(room="ama"))
    assert status == 201, made
    assert (made["room"], made["host"]["id"], made["status"]) == ("ama", "alice", "scheduled")
    for bad in (session_body(ends_at=at(1800)), session_body(extra="x"),
                session_body(starts_at="tomorrow"), session_body(title=""),
                session_body(room="bad room"), {"title": "x"}):
        status, error = await http(rooms, "POST", SESSIONS, body=bad)
        assert (status, error["error"]["code"]) == (400, "invalid"), bad
    status, error = await http(rooms, "POST", SESSIONS, body=session_body(channel="nope"))
    assert (status, error["error"]["code"]) == (404, "not_found")
    status, error = await http(rooms, "POST", SESSIONS, body=session_body(room="ama"))
    assert (status, error["error"]["reason"]) == (409, "room_taken")  # overlapping
    status, error = await http(rooms, "POST", SESSIONS, body=session_body(host="bob"))
    assert (status, error["error"]["reason"]) == (403, "not_staff")
    status, error = await http(rooms, "POST", SESSIONS, "olga", "operator",
                               session_body())
    assert (status, error["error"]["code"]) == (403, "forbidden")  # operators do not host
    status, error = await http(rooms, "POST", SESSIONS, body=session_body(channel="announcements"))
    assert (status, error["error"]["code"]) == (403, "forbidden")  # may not post there
    status, other = await http(rooms, "POST", SESSIONS, "mod", "moderator",
                               session_body(host="bob", host_name="Bob"))
    assert status == 201 and other["host"] == {"id": "bob", "name": "Bob"}
    assert other["room"] == f"session-{other['id']}"

    status, listed = await http(rooms, "GET", SESSIONS + "?channel=general", "carol")
    assert status == 200 and [s["id"] for s in listed["sessions"]] == [made["id"], other["id"]]
    status, error = await http(rooms, "GET", SESSIONS + "?limit=0", "carol")
    assert status == 400
    status, error = await http(rooms, "DELETE", f"{SESSIONS}/{made['id']}", "carol")
    assert (status, error["error"]["reason"]) == (403, "not_host")
    status, cancelled = await http(rooms, "DELETE", f"{SESSIONS}/{made['id']}")
    assert status == 200 and cancelled["status"] == "cancelled"
    status, error = await http(rooms, "DELETE", f"{SESSIONS}/{made['id']}")
    assert status == 409
    status, error = await http(rooms, "DELETE", f"{SESSIONS}/nope")
    assert status == 404
    status, _ = await http(rooms, "DELETE", f"{SESSIONS}/{other['id']}", "bob")
    assert status == 200  # the host cancels what staff scheduled for them
    status, listed = await http(rooms, "GET", SESSIONS, "carol")
    assert listed["sessions"] == []


async def test_join_window_host_early_and_room_closes_at_the_end(start_rooms: StartRooms
                                                                 ) -> None:
    """Before the start members are refused and the host enters as host; a running session
    admits members (who do not host even when first); at the end the room closes and
    rejoining answers ``session_ended``."""
    rooms = await start_rooms()
    status, later = await http(rooms, "POST", SESSIONS, "hana",
                               body=session_body(room="later"))
    assert status == 201
    status, now = await http(rooms, "POST", SESSIONS, "hana", body=session_body(
        room="now", starts_at=at(-1), ends_at=at(3)))
    assert status == 201
    bob, hana = await rooms.member("bob"), await rooms.member("hana")
    early = await bob.call("room:join", {"room": "later"})
    assert (early["error"]["code"], early["error"]["reason"]) == ("forbidden",
                                                                  "session_not_started")
    assert early["error"]["session_id"] == later["id"] and early["error"]["retry_after_ms"] > 0
    assert (await hana.join("later"))["role"] == "host"
    assert (await bob.join("now"))["role"] == "publisher"  # first in, but not the host
    closed = await bob.client.wait_for("room:closed", timeout=15)
    assert closed == {"room": "now", "reason": "session_ended", "session_id": now["id"]}
    out.RoomClosed.model_validate(closed, strict=True)
    assert "now" not in rooms.service.registry.rooms
    again = await bob.call("room:join", {"room": "now"})
    assert again["error"]["reason"] == "session_ended"
    status, _ = await http(rooms, "DELETE", f"{SESSIONS}/{later['id']}", "hana")
    closed = await hana.client.wait_for("room:closed")
    assert closed["reason"] == "session_cancelled"


async def test_reminder_posted_once_across_restarts(start_rooms: StartRooms) -> None:
    """The linked channel gets one reminder (``message:new`` from ``system:rooms``) and
    ``room:session`` events; a lost mark or a restart does not post it again."""
    rooms = await start_rooms(reminder_lead_s=3600)
    chat = await rooms.live.client("dave")
    await chat.ok("channel:join", {"channel": "general"})
    status, made = await http(rooms, "POST", SESSIONS, "hana", body=session_body(
        starts_at=at(1800), ends_at=at(3600)))
    assert status == 201
    reminder = await chat.wait_for("message:new", lambda m: m["author"]["id"] == "system:rooms")
    assert "Office hours" in reminder["text"] and made["room"] in reminder["text"]
    await wait_until(lambda: [e["state"] for e in chat.events["room:session"]]
                     == ["scheduled", "reminder"])
    for event in chat.events["room:session"]:
        out.RoomSession.model_validate(event, strict=True)
        assert event["session"]["id"] == made["id"]
    sessions = rooms.plugin.sessions
    assert sessions is not None
    # the node died after posting but before marking: the next tick posts nothing new
    store = rooms.live.app[STORE]
    assert isinstance(store, SQLiteStore)
    await store.run_write(lambda conn: conn.execute(
        "UPDATE room_sessions SET reminded_at = NULL WHERE id = ?", (made["id"],)))
    await sessions.tick()
    row = await sessions.records.get(made["id"])
    assert row["reminded_at"] is not None and row["reminder_message_id"] == reminder["id"]
    await rooms.stop()

    again = await start_rooms(reminder_lead_s=3600)
    assert again.plugin.sessions is not None
    await again.plugin.sessions.tick()
    status, history = await http(again, "GET", "/api/v1/channels/general/messages", "dave")
    reminders = [m for m in history["messages"] if m["author"]["id"] == "system:rooms"]
    assert [m["id"] for m in reminders] == [reminder["id"]]
    status, listed = await http(again, "GET", SESSIONS, "dave")
    assert [s["id"] for s in listed["sessions"]] == [made["id"]]


async def test_demo_seed_pack_stores_its_session_once(start_rooms: StartRooms) -> None:
    """``gigvora db seed --pack demo`` stores its sample session through the rooms hook."""
    rooms = await start_rooms()
    store = rooms.live.app[STORE]
    first = await apply_pack(store, PACKS["demo"])
    again = await apply_pack(store, PACKS["demo"])
    assert (first["sessions"]["stored"], again["sessions"]["stored"]) == (1, 0)
    status, listed = await http(rooms, "GET", SESSIONS, "member-ada")
    assert status == 200
    seeded = next(s for s in listed["sessions"] if s["id"] == "seed-demo-office-hours")
    assert (seeded["room"], seeded["channel"], seeded["host"]["id"]) == (
        "office-hours", "general", "admin-margaret")
