"""The fan-out fast path: order, mixed transports, binary, disconnects, slow consumers."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson

from realtime.app import FANOUT, HUB, METRICS, SIO
from tests.helpers import LiveServer, make_settings, mint, start_server
from tests.rawws import RawWebSocket


async def test_per_channel_order_is_seq_order(server: LiveServer) -> None:
    subscribers = [await server.client(f"sub{n}") for n in range(10)]
    for sub in subscribers:
        await sub.ok("channel:join", {"channel": "general"})
    publishers = [await server.client(f"pub{n}") for n in range(4)]

    async def publish(client: Any, n: int) -> None:
        for i in range(50):
            await client.ok("message:send", {"channel": "general", "text": f"{n}:{i}"})
    await asyncio.gather(*(publish(p, n) for n, p in enumerate(publishers)))
    for sub in subscribers:
        await sub.wait_for("message:new", lambda m: m["seq"] == 200)
        assert [m["seq"] for m in sub.events["message:new"]] == list(range(1, 201))


async def test_polling_and_websocket_clients_get_the_same_frames(server: LiveServer) -> None:
    ws = await server.client("ws")
    polling = await server.client("poll", connect=False)
    await polling.connect(transports=["polling"])
    for client in (ws, polling):
        await client.ok("channel:join", {"channel": "general"})
    sent = await ws.ok("message:send", {"channel": "general", "text": "ünïcødé ✓ \u2028"})
    assert await polling.wait_for("message:new") == sent
    assert await ws.wait_for("message:new") == sent


async def test_binary_payloads_take_the_stock_path(server: LiveServer) -> None:
    client = await server.client("bin")
    await server.app[SIO].emit("blob", {"raw": b"\x00\x01\xff"}, to="user:bin")
    got = await client.wait_for("blob")
    assert got == {"raw": b"\x00\x01\xff"}


async def test_disconnects_during_broadcast_harm_nobody(server: LiveServer) -> None:
    stayers = [await server.client(f"stay{n}") for n in range(3)]
    leavers = [await server.client(f"leave{n}") for n in range(10)]
    for client in stayers + leavers:
        await client.ok("channel:join", {"channel": "general"})
    publisher = await server.client("pub")

    async def publish() -> None:
        for i in range(100):
            await publisher.ok("message:send", {"channel": "general", "text": str(i)})

    async def leave() -> None:
        for client in leavers:
            await asyncio.sleep(0.005)
            await client.close()
    await asyncio.gather(publish(), leave())
    for client in stayers:
        await client.wait_for("message:new", lambda m: m["seq"] == 100)
        assert [m["seq"] for m in client.events["message:new"]] == list(range(1, 101))


async def test_raw_frames_are_valid_and_slow_consumers_are_dropped(tmp_path: Path) -> None:
    live = await start_server(make_settings(tmp_path, message_rate_per_s=0,
                                            max_outbound_bytes=65_536, max_text_chars=40_000))
    try:
        raw = await RawWebSocket.open(live.url)
        assert (await raw.recv()).startswith("0{")  # Engine.IO OPEN
        raw.send("40" + orjson.dumps({"token": mint("sloth")}).decode())
        assert (await raw.recv()).startswith("40{")  # Socket.IO CONNECT
        raw.send('421["channel:join",{"channel":"general"}]')
        while not (frame := await raw.recv()).startswith("431"):
            pass
        assert orjson.loads(frame[3:])[0]["ok"] is True
        reader = await live.client("reader")
        await reader.ok("channel:join", {"channel": "general"})
        publisher = await live.client("pub")
        sessions_before = len(live.app[HUB].sessions)
        text = "x" * 30_000
        for i in range(300):  # ~9 MB towards a client that reads nothing: more than the
            # kernel's socket buffers (send buffers autotune up to tcp_wmem's 4 MB) can hide
            await publisher.ok("message:send", {"channel": "general", "text": f"{i} {text}"})
        await reader.wait_for("message:new", lambda m: m["seq"] == 300, timeout=20)
        assert [m["seq"] for m in reader.events["message:new"]] == list(range(1, 301))
        for _ in range(200):
            if len(live.app[HUB].sessions) < sessions_before:
                break
            await asyncio.sleep(0.02)
        assert len(live.app[HUB].sessions) == sessions_before - 1
        assert live.app[METRICS].slow_consumers._value.get() == 1
        assert live.app[FANOUT].buffered_bytes() < 65_536 * 4
        raw.close()
    finally:
        await live.stop()


async def test_heartbeats_keep_live_clients_and_drop_silent_ones(tmp_path: Path) -> None:
    live = await start_server(make_settings(tmp_path, ping_interval_s=1, ping_timeout_s=1,
                                            plugins_disable=["moderation"]))
    try:
        alive = await live.client("alive")
        raw = await RawWebSocket.open(live.url)  # answers nothing after its handshake
        assert (await raw.recv()).startswith("0{")
        raw.send("40" + orjson.dumps({"token": mint("silent")}).decode())
        assert (await raw.recv()).startswith("40{")
        assert len(live.app[HUB].sessions) == 2
        await asyncio.sleep(5)  # several ping rounds
        assert alive.sio.connected and alive.disconnect_reasons == []
        assert len(live.app[HUB].sessions) == 1, "the silent client was not dropped"
        assert (await alive.ok("presence:list"))["users"][0]["user"]["id"] == "alive"
        raw.close()
    finally:
        await live.stop()
