"""Host controls and capacity over real sockets (and real media where it matters)."""

from __future__ import annotations

import asyncio
import time

from tests.rooms.conftest import ROOM, StartRooms, flowing, wait_until


async def test_capacity_refused_clearly_per_class(start_rooms: StartRooms) -> None:
    """Publishers and listeners have separate places; a full class answers ``unavailable``
    with reason ``room_full``; listeners cannot publish."""
    rooms = await start_rooms(max_publishers=2, max_listeners=1)
    alice, bob, carol, dave = [await rooms.member(n) for n in ("alice", "bob", "carol", "dave")]
    assert (await alice.join())["role"] == "host"
    assert (await bob.join())["role"] == "publisher"
    full = await carol.call("room:join", {"room": ROOM})
    assert full["ok"] is False
    assert full["error"]["code"] == "unavailable"
    assert full["error"]["reason"] == "room_full" and full["error"]["slot"] == "publisher"
    assert (await carol.join(role="listener"))["role"] == "listener"
    full = await dave.call("room:join", {"room": ROOM, "role": "listener"})
    assert (full["error"]["code"], full["error"]["slot"]) == ("unavailable", "listener")
    offer = await carol.peers.offer(["audio"])
    refused = await carol.call("rtc:publish", {"room": ROOM, "sdp": offer, "type": "offer"})
    assert (refused["error"]["code"], refused["error"]["reason"]) == ("forbidden", "listener")
    await bob.ok("room:leave", {"room": ROOM})
    await wait_until(lambda: any(e["participant_id"] == bob.participant_id
                                 for e in alice.client.events["room:left"]))
    assert (await dave.join())["role"] == "publisher"  # the freed place


async def test_host_kick_stops_forwarding_and_closes_peer(start_rooms: StartRooms) -> None:
    """Kick: the kicked peer's connections close, its viewers stop receiving, no rejoin."""
    rooms = await start_rooms()
    alice, bob, carol = [await rooms.member(n) for n in ("alice", "bob", "carol")]
    await alice.join()
    await alice.publish(["audio", "video"])
    await bob.join()
    await bob.publish(["audio", "video"])
    await carol.join()
    await carol.subscribe(bob.participant_id)
    await bob.subscribe(alice.participant_id)
    seen = await flowing(carol, bob.participant_id)

    refused = await carol.call("room:kick", {"room": ROOM, "participant_id": bob.participant_id})
    assert (refused["error"]["code"], refused["error"]["reason"]) == ("forbidden", "not_host")
    await alice.ok("room:kick", {"room": ROOM, "participant_id": bob.participant_id,
                                 "reason": "spam"})
    kicked = await bob.client.wait_for("room:kicked")
    assert kicked["by"] == alice.participant_id and kicked["reason"] == "spam"
    left = await carol.client.wait_for("room:left")
    assert (left["participant_id"], left["reason"]) == (bob.participant_id, "kicked")
    assert bob.participant_id not in rooms.service.publications
    assert not [s for s in rooms.service.subscriptions.values()
                if bob.participant_id in (s.subscriber_id, s.publisher_id)]
    # the kicked client's peer connections are closed by the server (DTLS close)
    pcs = [bob.peers.publisher, *bob.peers.subscriptions.values()]
    await wait_until(lambda: all(pc.connectionState == "closed" for pc in pcs), timeout=8)
    # forwarding stopped: carol's copies of bob end and nothing more arrives
    await wait_until(lambda: all(c.ended for c in seen), timeout=5)
    after = time.monotonic()
    await asyncio.sleep(0.5)
    assert all(c.count_after(after) == 0 for c in seen)
    again = await bob.call("room:join", {"room": ROOM})
    assert (again["error"]["code"], again["error"]["reason"]) == ("forbidden", "kicked")


async def test_mute_signalled_and_enforced(start_rooms: StartRooms) -> None:
    """Self-mute and host-mute reach everyone; a host mute stops forwarding and holds."""
    rooms = await start_rooms()
    alice, bob, carol = [await rooms.member(n) for n in ("alice", "bob", "carol")]
    await alice.join()
    await bob.join()
    await bob.publish(["audio", "video"])
    await carol.join()
    await carol.subscribe(bob.participant_id)
    video = next(c for c in carol.counters(bob.participant_id) if c.kind == "video")
    await wait_until(lambda: len(video.stamps) > 5, timeout=8)

    await bob.ok("room:mute", {"room": ROOM, "muted": True, "kinds": ["audio"]})
    for member in (alice, carol, bob):
        event = await member.client.wait_for("room:muted")
        assert event["participant_id"] == bob.participant_id and event["kinds"] == ["audio"]
        assert event["muted"] is True and event["by"] == bob.participant_id

    await alice.ok("room:mute", {"room": ROOM, "muted": True, "kinds": ["video"],
                                 "participant_id": bob.participant_id})
    event = await carol.client.wait_for("room:muted", lambda e: e["kinds"] == ["video"])
    assert event["by"] == alice.participant_id and event["host_muted"] == ["video"]
    await asyncio.sleep(0.3)
    stopped = time.monotonic()
    await asyncio.sleep(0.7)
    assert video.count_after(stopped) == 0  # not forwarded while host-muted
    refused = await bob.call("room:mute", {"room": ROOM, "muted": False, "kinds": ["video"]})
    assert (refused["error"]["code"], refused["error"]["reason"]) == ("forbidden",
                                                                      "host_muted")
    refused = await carol.call("room:mute", {"room": ROOM, "muted": True,
                                             "participant_id": alice.participant_id})
    assert refused["error"]["code"] == "forbidden"
    await alice.ok("room:mute", {"room": ROOM, "muted": False, "kinds": ["video"],
                                 "participant_id": bob.participant_id})
    resumed = time.monotonic()
    await wait_until(lambda: video.count_after(resumed) > 5, timeout=5)  # at a new keyframe


async def test_lock_refuses_members_not_staff(start_rooms: StartRooms) -> None:
    """A locked room refuses new members (``forbidden``/``room_locked``); moderators enter."""
    rooms = await start_rooms()
    alice, bob, mod = (await rooms.member("alice"), await rooms.member("bob"),
                       await rooms.member("mia", roles="member,moderator"))
    await alice.join()
    await alice.ok("room:lock", {"room": ROOM, "locked": True})
    assert (await alice.client.wait_for("room:locked"))["locked"] is True
    refused = await bob.call("room:join", {"room": ROOM})
    assert (refused["error"]["code"], refused["error"]["reason"]) == ("forbidden",
                                                                      "room_locked")
    joined = await mod.join()
    assert joined["role"] == "host" and joined["locked"] is True
    await mod.ok("room:lock", {"room": ROOM, "locked": False})
    assert (await bob.join())["role"] == "publisher"
