"""Media through a live server: aiortc peers with synthetic audio+video."""

from __future__ import annotations

from tests.rooms.conftest import StartRooms, flowing, measure, wait_until


async def test_publish_subscribe_30fps_passthrough(start_rooms: StartRooms) -> None:
    """publish → subscribe: video ≥ 25 fps, audio ≥ 45 frames/s, nothing decoded server-side."""
    rooms = await start_rooms()
    alice, bob = await rooms.member("alice"), await rooms.member("bob")
    await alice.join()
    published = await alice.publish(["audio", "video"])
    assert published["kinds"] == ["audio", "video"]
    joined = await bob.join()  # a late joiner sees the publisher in the ack
    assert [p["participant_id"] for p in joined["publishers"]] == [alice.participant_id]
    assert joined["publishers"][0]["kinds"] == ["audio", "video"]
    await bob.subscribe(alice.participant_id)
    audio, video = await flowing(bob, alice.participant_id, timeout=5)
    fps = await measure([audio, video], 3.0)
    print(f"\npass-through 1→1: audio {fps[0]} frames/s, video {fps[1]} fps")
    assert fps[1] >= 25, fps
    assert fps[0] >= 45, fps
    relays = rooms.service.publications[alice.participant_id].relays
    # pass-through: the publisher's remote tracks never receive decoded frames
    assert all(r.receiver.track._queue.qsize() == 0 for r in relays)
    assert all(r.frames > 0 for r in relays)


async def test_three_participants_all_see_each_other(start_rooms: StartRooms) -> None:
    """A 3-person mesh: 6 subscriptions, every audio and video track arrives."""
    rooms = await start_rooms()
    members = [await rooms.member(name) for name in ("alice", "bob", "carol")]
    for member in members:
        await member.join()
        await member.publish(["audio", "video"])
    for member in members:
        for other in members:
            if other is not member:
                await member.subscribe(other.participant_id)
    counters = [c for m in members for p in m.subscriptions for c in m.counters(p)]
    assert len(counters) == 12
    await wait_until(lambda: all(c.stamps for c in counters), timeout=8)
    video = [c for c in counters if c.kind == "video"]
    fps = await measure(video, 3.0)
    print(f"\n3-person mesh video fps per subscription: {fps}")
    assert min(fps) >= 20, fps


async def test_bundle_mixed_mlines_all_arrive(start_rooms: StartRooms) -> None:
    """aiortc#868 regression: an a,v,a,v offer → all four tracks are forwarded (MAX_BUNDLE)."""
    rooms = await start_rooms()
    alice, bob = await rooms.member("alice"), await rooms.member("bob")
    await alice.join()
    assert (await alice.publish(["audio", "video", "audio", "video"]))["kinds"] == [
        "audio", "video", "audio", "video"]
    await bob.join()
    await bob.subscribe(alice.participant_id)
    counters = bob.counters(alice.participant_id)
    await wait_until(lambda: len(counters) == 4 and all(len(c.stamps) > 10 for c in counters),
                     timeout=8)
    assert sorted(c.kind for c in counters) == ["audio", "audio", "video", "video"]


async def test_stock_relay_fallback_forwards(start_rooms: StartRooms) -> None:
    """``forwarding="relay"`` (decode + re-encode with aiortc's MediaRelay) still works."""
    rooms = await start_rooms(forwarding="relay")
    alice, bob = await rooms.member("alice"), await rooms.member("bob")
    await alice.join()
    await alice.publish(["audio", "video"])
    await bob.join()
    await bob.subscribe(alice.participant_id)
    counters = bob.counters(alice.participant_id)
    await wait_until(lambda: len(counters) == 2 and all(len(c.stamps) > 10 for c in counters),
                     timeout=8)
