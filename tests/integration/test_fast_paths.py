"""The per-message fast paths: idempotency served from memory stays exact (edits, restarts,
moderation on), and the presence feed's multi-packet writes keep order across disconnects.
(Slow consumers: those writes go through ``DirectConnection.write``/``flush``, whose
drop is tested in test_fanout.)"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from tests.helpers import Client, LiveServer, ServerProcess, mint


async def test_retry_after_edit_returns_the_current_first_message(server: LiveServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    for client in (alice, bob):
        await client.ok("channel:join", {"channel": "general"})
    body = {"channel": "general", "text": "first", "client_id": "c-1"}
    first = await alice.ok("message:send", body)
    assert await alice.ok("message:send", body) == first  # answered from memory
    edited = await alice.ok("message:edit", {"id": first["id"], "text": "second"})
    await alice.ok("reaction:add", {"id": first["id"], "emoji": "👍"})
    again = await alice.ok("message:send", body)
    assert (again["id"], again["seq"], again["text"]) == (first["id"], 1, "second")
    assert again["edited_at"] == edited["edited_at"] and again["reactions"] == {"👍": ["alice"]}
    other = await bob.ok("message:send", body)  # the key is per author
    assert other["seq"] == 2
    await alice.ok("message:send", {"channel": "general", "text": "next", "client_id": "c-2"})
    await bob.wait_for("message:new", lambda m: m["seq"] == 3)
    assert [m["seq"] for m in bob.events["message:new"]] == [1, 2, 3]  # retries: no broadcast


async def test_idempotency_is_exact_across_a_restart(tmp_path: Path) -> None:
    """The memory is empty after SIGKILL: retries fall back to the store (moderation on, so
    the pre-check before the classifiers is exercised too)."""
    server = ServerProcess(tmp_path, GIGVORA_MESSAGE_RATE_PER_S="0").start()
    sent: list[dict] = []
    try:
        await server.wait_ready()
        client = await Client(server.url, mint("ada")).connect()
        try:
            for i in range(5):
                sent.append(await client.ok("message:send", {
                    "channel": "general", "text": f"note {i} about the garden",
                    "client_id": f"k-{i}"}))
        finally:
            await client.close()
        assert server.proc is not None
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(10)
    finally:
        server.stop()
    restarted = ServerProcess(tmp_path, port=server.port,
                              GIGVORA_MESSAGE_RATE_PER_S="0").start()
    try:
        await restarted.wait_ready()
        ada = await Client(restarted.url, mint("ada")).connect()
        watcher = await Client(restarted.url, mint("watcher")).connect()
        try:
            await watcher.ok("channel:join", {"channel": "general"})
            for i, first in enumerate(sent):
                again = await ada.ok("message:send", {
                    "channel": "general", "text": f"note {i} about the garden",
                    "client_id": f"k-{i}"})
                assert (again["id"], again["seq"]) == (first["id"], first["seq"])
            fresh = await ada.ok("message:send", {"channel": "general", "text": "a new one",
                                                  "client_id": "k-new"})
            assert fresh["seq"] == 6
            await watcher.wait_for("message:new", lambda m: m["seq"] == 6)
            assert [m["seq"] for m in watcher.events["message:new"]] == [6]
        finally:
            await ada.close()
            await watcher.close()
    finally:
        restarted.stop()


async def test_presence_ticks_keep_order_across_disconnects(server: LiveServer) -> None:
    watchers = [await server.client(f"watch{n}") for n in range(3)]
    leavers = [await server.client(f"leaver{n}") for n in range(5)]

    async def churn(n: int) -> None:
        for round_ in range(3):
            client = await server.client(f"churn{n}")
            await client.ok("presence:set", {"status": "away" if round_ % 2 else "online"})
            await client.close()

    async def leave() -> None:
        for client in leavers:
            await asyncio.sleep(0.01)
            await client.close()
    await asyncio.gather(*(churn(n) for n in range(6)), leave())
    gone = [f"churn{n}" for n in range(6)] + [f"leaver{n}" for n in range(5)]
    for watcher in watchers:
        for user in gone:
            await watcher.wait_for("presence", lambda p, user=user: p["user"]["id"] == user
                                   and p["status"] == "offline")
        last: dict[str, str] = {}
        for event in watcher.events["presence"]:
            last[event["user"]["id"]] = event["status"]
        assert {last[f"churn{n}"] for n in range(6)} == {"offline"}
        assert {last[f"leaver{n}"] for n in range(5)} == {"offline"}
