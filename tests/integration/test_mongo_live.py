"""The live server on the MongoDB store (the fake server of tests/fakes/mongo, or a real replica
set when ``GIGVORA_TEST_MONGO_URL`` is set): chat, recovery with ``since_seq``, idempotent
retries; and two ``gigvora serve`` nodes with Redis sharing one database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.helpers import Client, LiveServer, make_settings, start_cluster
from tests.helpers import start_server as start_live_server

pytest.importorskip("pymongo", reason="pymongo not installed: pip install -e '.[mongodb]'")


@pytest.fixture
async def mongo_server(tmp_path: Path, mongo_url: str) -> AsyncIterator[LiveServer]:
    live = await start_live_server(make_settings(
        tmp_path, store_url=mongo_url, message_rate_per_s=1000, message_burst=1000,
        plugins_disable=["moderation"]))
    yield live
    await live.stop()


async def test_chat_recovery_and_retries_on_mongodb(mongo_server: LiveServer) -> None:
    alice = await mongo_server.client("alice")
    bob = await mongo_server.client("bob")
    await bob.ok("channel:join", {"channel": "general"})
    await alice.ok("channel:join", {"channel": "general"})
    first = await alice.ok("message:send", {"channel": "general", "text": "hi", "client_id": "k1"})
    assert first["seq"] == 1
    assert await bob.wait_for("message:new", lambda m: m["seq"] == 1) == first
    again = await alice.ok("message:send", {"channel": "general", "text": "hi", "client_id": "k1"})
    assert again == first  # the retry is answered with the first message
    reply = await bob.ok("message:send", {"channel": "general", "text": "re", "thread_id":
                                          first["id"]})
    await alice.ok("reaction:add", {"id": reply["id"], "emoji": "👍"})
    await alice.ok("message:edit", {"id": first["id"], "text": "hi!"})
    await bob.close()
    missed = [await alice.ok("message:send", {"channel": "general", "text": f"m{i}",
                                               "client_id": f"m{i}"}) for i in range(4)]
    bob2 = await mongo_server.client("bob")
    rejoined = await bob2.ok("channel:join", {"channel": "general", "since_seq": 2})
    assert [m["seq"] for m in rejoined["messages"]] == [3, 4, 5, 6]
    assert rejoined["messages"] == missed and rejoined["last_seq"] == 6
    history = await bob2.ok("channel:join", {"channel": "general"})
    by_seq = {m["seq"]: m for m in history["messages"]}
    assert by_seq[1]["text"] == "hi!" and by_seq[2]["reactions"] == {"👍": ["alice"]}
    assert by_seq[2]["thread_id"] == first["id"]
    await alice.ok("message:send", {"channel": "general", "text": "live"})
    await bob2.wait_for("message:new", lambda m: m["seq"] == 7)


async def test_two_nodes_with_redis_share_one_mongodb(tmp_path: Path, mongo_url: str) -> None:
    async with start_cluster(tmp_path, own_dirs=True, GIGVORA_STORE_URL=mongo_url,
                             GIGVORA_MESSAGE_RATE_PER_S="0") as rig:
        clients = [await rig.client(0, "alice"), await rig.client(1, "bob")]
        for client in clients:
            await client.ok("channel:join", {"channel": "general"})

        async def send(client: Client, who: str) -> list[int]:
            return [(await client.ok("message:send", {"channel": "general", "text": f"{who}{i}",
                                                      "client_id": f"{who}{i}"}))["seq"]
                    for i in range(15)]
        acked = await asyncio.gather(send(clients[0], "a"), send(clients[1], "b"))
        assert sorted(acked[0] + acked[1]) == list(range(1, 31))  # unique and gap-free
        for client in clients:  # every message reaches both nodes' clients, in seq order
            await client.wait_for("message:new", lambda m: m["seq"] == 30, timeout=10)
            seqs = [m["seq"] for m in client.events["message:new"]]
            assert sorted(seqs) == list(range(1, 31)) and len(seqs) == 30
        retry = await clients[1].ok("message:send", {"channel": "general", "text": "a0",
                                                     "client_id": "a0"})
        assert retry["seq"] == 31  # bob's own key, not alice's: a new message
        same = await clients[0].ok("message:send", {"channel": "general", "text": "again",
                                                    "client_id": "a0"})
        assert same["seq"] == acked[0][0]  # alice's retry on node 0 is her first message
        late = await rig.client(1, "carol")
        recovered = await late.ok("channel:join", {"channel": "general", "since_seq": 29})
        assert [m["seq"] for m in recovered["messages"]] == [30, 31]
        assert await _stored_seqs(mongo_url) == list(range(1, 32))  # the nodes used MongoDB


async def _stored_seqs(url: str) -> list[int]:
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(url)
    try:
        cursor = client.get_default_database()["messages"].find({"channel_id": "general"})
        return sorted([int(doc["seq"]) async for doc in cursor])  # type: ignore[call-overload]
    finally:
        await client.close()
