"""Joins, leaves, publications and host controls land in the tamper-evident audit trail."""

from __future__ import annotations

import asyncio
from typing import Any

from realtime.app import STORE
from storage.moderation import ModerationRecords
from storage.sqlite import SQLiteStore
from tests.rooms.conftest import ROOM, StartRooms


async def test_room_actions_are_audited_in_the_hash_chain(start_rooms: StartRooms) -> None:
    """join/publish/mute-by-host/lock/unlock/kick/leave each append one entry (actor, target,
    room, participant ids); self-mutes are not audited; the chain verifies."""
    rooms = await start_rooms()
    store = rooms.live.app[STORE]
    assert isinstance(store, SQLiteStore)
    records = ModerationRecords(store)
    alice, bob = await rooms.member("alice"), await rooms.member("bob")
    await alice.join()
    await bob.join()
    await bob.publish(["audio"])
    await bob.ok("room:mute", {"room": ROOM, "muted": True})  # self: not audited
    await alice.ok("room:mute", {"room": ROOM, "muted": True, "participant_id":
                                 bob.participant_id, "kinds": ["audio", "video"]})
    await alice.ok("room:lock", {"room": ROOM, "locked": True})
    await alice.ok("room:lock", {"room": ROOM, "locked": False})
    await alice.ok("room:kick", {"room": ROOM, "participant_id": bob.participant_id,
                                 "reason": "spam"})
    await alice.ok("room:leave", {"room": ROOM})
    expected = ["room_join", "room_join", "room_publish", "room_mute", "room_lock",
                "room_unlock", "room_kick", "room_leave"]
    entries: list[dict[str, Any]] = []

    async def load() -> list[str]:
        entries[:] = sorted(await records.audit_entries(limit=50), key=lambda e: e["seq"])
        return [e["action"] for e in entries]
    for _ in range(100):
        if await load() == expected:
            break
        await asyncio.sleep(0.05)  # entries are written in the background
    assert await load() == expected
    by = {e["action"]: e for e in entries}
    assert (by["room_publish"]["actor_id"], by["room_publish"]["target_type"],
            by["room_publish"]["target_id"]) == ("bob", "room", ROOM)
    assert by["room_publish"]["details"]["kinds"] == ["audio"]
    mute = by["room_mute"]
    assert (mute["actor_id"], mute["target_type"], mute["target_id"]) == ("alice", "user", "bob")
    assert mute["details"]["target_participant_id"] == bob.participant_id
    assert mute["details"]["changed"] == ["video"]  # audio was already self-muted
    kick = by["room_kick"]
    assert (kick["actor_id"], kick["target_id"], kick["reason"]) == ("alice", "bob", "spam")
    assert by["room_leave"]["reason"] == "left" and by["room_join"]["details"]["room"] == ROOM
    assert (await records.audit_verify())["ok"] is True
