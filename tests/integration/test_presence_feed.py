"""Presence pushes: coalesced per tick, scoped by ``presence:subscribe`` (presence_feed)."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import LiveServer, make_settings, start_server


def ids(batch: dict) -> set[str]:
    return {p["user"]["id"] for p in batch["users"]}


async def test_channel_scope_sees_only_channel_members(server: LiveServer) -> None:
    watcher = await server.client("watcher")
    assert await watcher.ok("presence:subscribe", {"mode": "channels"}) == {"mode": "channels"}
    first = await watcher.ok("channel:join", {"channel": "general"})
    assert first["channel"] == "general"
    listed = await watcher.wait_for("presence:batch", lambda b: b.get("channel") == "general")
    assert "watcher" in ids(listed)
    outsider = await server.client("outsider")  # online, but in no channel the watcher sees
    member = await server.client("member")
    await member.ok("channel:join", {"channel": "general"})
    seen = await watcher.wait_for("presence:batch", lambda b: "member" in ids(b))
    assert seen["channel"] == "general"
    await member.ok("presence:set", {"status": "away"})
    await watcher.wait_for("presence:batch", lambda b: any(
        p["user"]["id"] == "member" and p["status"] == "away" for p in b["users"]))
    await member.close()
    await watcher.wait_for("presence:batch", lambda b: any(
        p["user"]["id"] == "member" and p["status"] == "offline" for p in b["users"]))
    await outsider.close()
    everything = [p for b in watcher.events["presence:batch"] for p in b["users"]]
    assert "outsider" not in {p["user"]["id"] for p in everything}
    assert watcher.events["presence"] == []  # no per-user contract events in this mode


async def test_batch_mode_gets_one_frame_for_many_changes(tmp_path: Path) -> None:
    live = await start_server(make_settings(tmp_path, plugins_disable=["moderation"],
                                            presence_tick_s=0.5))
    try:
        watcher = await live.client("watcher")
        await watcher.ok("presence:subscribe", {"mode": "batch"})
        others = [await live.client(f"user{n}") for n in range(5)]
        batch = await watcher.wait_for("presence:batch", lambda b: "user4" in ids(b))
        assert all(p["status"] == "online" for p in batch["users"])
        for other in others:
            await other.close()
        await watcher.wait_for("presence:batch", lambda b: any(
            p["user"]["id"] == "user4" and p["status"] == "offline" for p in b["users"]))
        statuses: dict[str, str] = {}
        for frame in watcher.events["presence:batch"]:
            assert len(ids(frame)) == len(frame["users"])  # a user at most once per frame
            statuses.update({p["user"]["id"]: p["status"] for p in frame["users"]})
        assert {statuses[f"user{n}"] for n in range(5)} == {"offline"}
        assert watcher.events["presence"] == []
    finally:
        await live.stop()


async def test_none_mode_and_default_mode_setting(tmp_path: Path) -> None:
    live = await start_server(make_settings(tmp_path, plugins_disable=["moderation"],
                                            presence_default="none"))
    try:
        quiet = await live.client("quiet")
        legacy = await live.client("legacy")
        await legacy.ok("presence:subscribe", {"mode": "all"})
        bob = await live.client("bob")
        await legacy.wait_for("presence", lambda p: p["user"]["id"] == "bob")
        await bob.close()
        await legacy.wait_for("presence", lambda p: p["user"]["id"] == "bob"
                              and p["status"] == "offline")
        await quiet.ok("presence:list")
        assert quiet.events["presence"] == [] and quiet.events["presence:batch"] == []
        listed = await quiet.ok("presence:list")
        assert {u["user"]["id"] for u in listed["users"]} == {"quiet", "legacy"}
    finally:
        await live.stop()


async def test_contract_presence_events_arrive_in_order(server: LiveServer) -> None:
    """The default mode keeps the contract: one ``presence`` per change, last one wins."""
    watcher = await server.client("watcher")
    bob = await server.client("bob")
    await bob.ok("presence:set", {"status": "away"})
    await bob.ok("presence:set", {"status": "online"})
    await bob.close()
    await watcher.wait_for("presence", lambda p: p["user"]["id"] == "bob"
                           and p["status"] == "offline")
    bobs = [p["status"] for p in watcher.events["presence"] if p["user"]["id"] == "bob"]
    assert bobs[-1] == "offline"
    assert bad_mode_is_invalid(await watcher.call("presence:subscribe", {"mode": "loud"}))


def bad_mode_is_invalid(answer: dict) -> bool:
    return answer["error"]["code"] == "invalid"
