"""Two ``gigvora serve`` processes sharing a real Redis and one SQLite file (WAL).

Users must not be able to tell which node they are on; Redis outages (SIGKILL, SIGSTOP) must
neither hang a node nor lose or duplicate an acknowledged message.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.helpers import Client, Cluster, RedisProcess, mint, start_cluster


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    async with start_cluster(tmp_path, GIGVORA_MESSAGE_RATE_PER_S="0") as made:
        yield made


async def test_cross_node_chat_both_ways(cluster: Cluster) -> None:
    alice = await cluster.client(0, "alice")
    bob = await cluster.client(1, "bob")
    await alice.wait_for("presence", lambda p: p["user"]["id"] == "bob")
    for client in (alice, bob):
        await client.ok("channel:join", {"channel": "general"})
    a1 = await alice.ok("message:send", {"channel": "general", "text": "from node 0"})
    b1 = await bob.ok("message:send", {"channel": "general", "text": "from node 1"})
    assert (a1["seq"], b1["seq"]) == (1, 2)
    assert await bob.wait_for("message:new", lambda m: m["seq"] == 1) == a1
    assert await alice.wait_for("message:new", lambda m: m["seq"] == 2) == b1
    await alice.ok("typing", {"channel": "general", "typing": True})
    assert (await bob.wait_for("typing"))["user"]["id"] == "alice"
    await bob.ok("reaction:add", {"id": a1["id"], "emoji": "🎉"})
    await alice.wait_for("message:updated", lambda m: m["reactions"] == {"🎉": ["bob"]})
    await alice.ok("message:edit", {"id": a1["id"], "text": "edited on node 0"})
    await bob.wait_for("message:updated", lambda m: m["text"] == "edited on node 0")
    await bob.ok("message:delete", {"id": b1["id"]})
    await alice.wait_for("message:deleted", lambda m: m["id"] == b1["id"])
    listed = await alice.ok("presence:list")
    assert {u["user"]["id"] for u in listed["users"]} == {"alice", "bob"}
    await bob.ok("presence:set", {"status": "away"})
    await alice.wait_for("presence", lambda p: p["user"]["id"] == "bob" and p["status"] == "away")
    await bob.close()
    await alice.wait_for("presence", lambda p: p["user"]["id"] == "bob"
                         and p["status"] == "offline")
    assert [m["seq"] for m in alice.events["message:new"]] == [1, 2]


async def test_dead_node_users_go_offline_and_recover_elsewhere(cluster: Cluster) -> None:
    alice = await cluster.client(0, "alice")
    carol = await cluster.client(1, "carol")
    await carol.ok("channel:join", {"channel": "general"})
    await alice.ok("channel:join", {"channel": "general"})
    await alice.wait_for("presence", lambda p: p["user"]["id"] == "carol")
    await alice.ok("message:send", {"channel": "general", "text": "before"})
    await carol.wait_for("message:new", lambda m: m["seq"] == 1)
    assert cluster.nodes[1].proc is not None
    cluster.nodes[1].proc.kill()  # SIGKILL: no goodbye, no presence cleanup
    await alice.ok("message:send", {"channel": "general", "text": "while carol's node is dead"})
    offline = await alice.wait_for("presence", lambda p: p["user"]["id"] == "carol"
                                   and p["status"] == "offline", timeout=30)
    assert offline["user"]["name"] == "Carol"
    carol_again = await cluster.client(0, "carol")
    recovered = await carol_again.ok("channel:join", {"channel": "general", "since_seq": 1})
    assert [m["text"] for m in recovered["messages"]] == ["while carol's node is dead"]


async def test_rate_limit_holds_across_nodes(tmp_path: Path) -> None:
    async with start_cluster(tmp_path, GIGVORA_MESSAGE_RATE_PER_S="0.1",
                             GIGVORA_MESSAGE_BURST="4") as rig:
        clients = [await rig.client(node, "greedy") for node in range(2)]
        acks = []
        for i in range(6):
            for client in clients:
                acks.append(await client.call("message:send",
                                              {"channel": "general", "text": f"{i}"}))
        assert sum(a["ok"] for a in acks) == 4, acks
        assert all(a["error"]["code"] == "rate_limited" for a in acks if not a["ok"])


async def _publish_through_outage(cluster: Cluster, outage: signal.Signals) -> None:
    """Publish on node 0 while Redis dies (or stalls) and returns; the subscriber on node 1
    must end with every acked message exactly once, in seq order."""
    sender = await cluster.client(0, "sender")
    receiver = await cluster.client(1, "receiver")
    await receiver.ok("channel:join", {"channel": "general"})
    acked: list[int] = []

    async def send(count: int) -> None:
        for _ in range(count):
            ack = await sender.call("message:send", {"channel": "general", "text": "x"},
                                    timeout=5)  # an ack that hangs fails the test here
            assert ack["ok"], ack
            acked.append(ack["data"]["seq"])
            await asyncio.sleep(0.01)

    await send(20)
    if outage == signal.SIGKILL:
        cluster.redis.signal(signal.SIGKILL)
    else:
        cluster.redis.signal(signal.SIGSTOP)
    await send(40)
    for _ in range(100):
        detail = await cluster.readyz(0)
        if detail["checks"]["redis:pubsub"][0].get("gvCode"):
            break
        await asyncio.sleep(0.1)
    check = detail["checks"]["redis:pubsub"][0]
    assert check["gvCode"] in ("REDIS_UNREACHABLE", "REDIS_PUBLISH_FAILING"), check
    assert detail["checks"]["lifecycle:state"][0]["status"] == "pass"
    if outage == signal.SIGKILL:
        cluster.redis = RedisProcess(cluster.redis.workdir)
        cluster.redis.port = int(cluster.redis_port)
        cluster.redis.url = f"redis://127.0.0.1:{cluster.redis.port}/0"
        cluster.redis.start()
    else:
        cluster.redis.signal(signal.SIGCONT)
    await send(20)
    for _ in range(300):  # live delivery, or the store-backed repair after ~2 sweeps
        seqs = [m["seq"] for m in receiver.events["message:new"]]
        if set(acked) <= set(seqs):
            break
        await asyncio.sleep(0.1)
    assert sorted(seqs) == sorted(set(seqs)), "a message was shown twice"
    assert set(acked) <= set(seqs), f"acked but never delivered: {set(acked) - set(seqs)}"
    for node in (0, 1):  # both nodes report the recovery (listeners reconnect with back-off)
        for _ in range(100):
            check = (await cluster.readyz(node))["checks"]["redis:pubsub"][0]
            if check["status"] == "pass":
                break
            await asyncio.sleep(0.1)
        assert check["status"] == "pass", (node, check)


async def test_redis_killed_mid_traffic(cluster: Cluster) -> None:
    cluster.redis_port = cluster.redis.port  # type: ignore[attr-defined]
    await _publish_through_outage(cluster, signal.SIGKILL)


async def test_redis_stalled_mid_traffic(cluster: Cluster) -> None:
    await _publish_through_outage(cluster, signal.SIGSTOP)


async def test_a_ban_disconnects_the_user_on_every_node(cluster: Cluster) -> None:
    target = await cluster.client(1, "troll")
    async with aiohttp.ClientSession() as http:
        async with http.post(cluster.nodes[0].url + "/api/v1/moderation/sanctions", json={
                "user_id": "troll", "kind": "ban", "reason": "raid"}, headers={
                "Authorization": f"Bearer {mint('mod', roles='moderator')}"}) as r:
            assert r.status == 201, await r.text()
    for _ in range(250):
        if not target.sio.connected:
            break
        await asyncio.sleep(0.02)
    assert not target.sio.connected
    again = await Client(cluster.nodes[1].url, mint("troll")).connect()
    cluster.clients.append(again)
    refused = await again.call("message:send", {"channel": "general", "text": "hi"})
    assert refused["error"]["code"] == "moderation_blocked"
