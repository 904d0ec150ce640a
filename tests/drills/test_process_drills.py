"""Drills against a real ``gigvora serve`` process: SIGTERM under write load drains cleanly,
slow-reading clients are cut off with the server's memory bounded, and a flood of connections
beyond ``GIGVORA_MAX_CONNECTIONS`` is refused cleanly. No acknowledged message may be lost."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import aiohttp
import orjson

from tests.drills.common import Writer, assert_exactly_once, readyz, stored_messages
from tests.helpers import Client, ServerProcess, mint
from tests.rawws import RawWebSocket


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def _metric(url: str, name: str) -> float:
    async with aiohttp.ClientSession() as http:
        async with http.get(url + "/metrics", headers={
                "Authorization": f"Bearer {mint('ops', roles='operator')}"}) as r:
            text = await r.text()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name))


async def test_sigterm_under_load_drains_and_loses_nothing(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, None, GIGVORA_MESSAGE_RATE_PER_S="0",
                           GIGVORA_DRAIN_GRACE_S="1.0").start()
    writers = [Writer(server.url, f"w{n}") for n in range(6)]
    stop = asyncio.Event()
    try:
        await server.wait_ready()
        for writer in writers:
            await writer.client.connect()
        tasks = [asyncio.create_task(w.run(stop)) for w in writers]
        while sum(len(w.acked) for w in writers) < 300:
            await asyncio.sleep(0.02)
        assert server.proc is not None
        server.proc.send_signal(signal.SIGTERM)
        for _ in range(1500):
            if server.proc.poll() is not None:
                break
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.gather(*tasks)
        assert server.proc.poll() == 0, server.output()
        for writer in writers:
            assert set(writer.refused) <= {"unavailable"}, writer.refused
    finally:
        stop.set()
        for writer in writers:
            await writer.client.close()
        server.stop()
    acked = [cid for w in writers for cid in w.acked]
    restarted = ServerProcess(tmp_path, server.port).start()
    try:
        await restarted.wait_ready()
        assert_exactly_once(acked, await stored_messages(restarted.url))
    finally:
        restarted.stop()


async def test_slow_readers_are_dropped_with_memory_bounded(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, None, GIGVORA_MESSAGE_RATE_PER_S="0",
                           GIGVORA_MAX_OUTBOUND_BYTES="65536", GIGVORA_MAX_TEXT_CHARS="30000",
                           GIGVORA_PLUGINS_DISABLE="moderation").start()
    sloths: list[RawWebSocket] = []
    reader = Client(server.url, mint("reader"))
    writer = Writer(server.url, "pub", text="x" * 30_000)
    try:
        await server.wait_ready()
        for n in range(5):  # join, then never read again
            raw = await RawWebSocket.open(server.url)
            assert (await raw.recv()).startswith("0{")
            raw.send("40" + orjson.dumps({"token": mint(f"sloth{n}")}).decode())
            assert (await raw.recv()).startswith("40{")
            raw.send('421["channel:join",{"channel":"general"}]')
            while not (await raw.recv()).startswith("431"):
                pass
            sloths.append(raw)
        await reader.connect()
        await reader.ok("channel:join", {"channel": "general"})
        await writer.client.connect()
        assert server.proc is not None
        rss_before = _rss_kb(server.proc.pid)
        for i in range(300):  # ~9 MB per sloth, more than kernel buffers can hide
            await writer.send_one(i)
        assert writer.hung == 0 and not writer.refused
        for _ in range(200):
            if await _metric(server.url, "gigvora_slow_consumer_disconnects_total") >= 5:
                break
            await asyncio.sleep(0.05)
        assert await _metric(server.url, "gigvora_slow_consumer_disconnects_total") == 5
        growth_mb = (_rss_kb(server.proc.pid) - rss_before) / 1024
        assert growth_mb < 40, f"server grew {growth_mb:.0f} MB for 5 slow readers"
        _, detail = await readyz(server.url)
        fanout = detail["checks"]["fanout:outbound"][0]
        assert fanout["observedValue"] == 2 and fanout["outboundBufferedBytes"] < 65_536 * 4
        await reader.wait_for("message:new", lambda m: m["seq"] == 300, timeout=20)
        assert [m["seq"] for m in reader.events["message:new"]] == list(range(1, 301))
        assert_exactly_once(writer.acked, await stored_messages(server.url))
    finally:
        for raw in sloths:
            raw.close()
        await reader.close()
        await writer.client.close()
        server.stop()


async def test_connection_flood_beyond_the_limit_is_refused_cleanly(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, None, GIGVORA_MESSAGE_RATE_PER_S="0",
                           GIGVORA_MAX_CONNECTIONS="20").start()
    flood = [Client(server.url, mint(f"f{n}")) for n in range(60)]
    try:
        await server.wait_ready()

        async def attempt(client: Client) -> bool:
            try:
                await client.connect()
                return True
            except Exception:
                return False
        admitted = await asyncio.gather(*(attempt(c) for c in flood))
        assert sum(admitted) == 20, sum(admitted)
        refusals = [c.events["connect_error"] for c, ok in zip(flood, admitted, strict=True)
                    if not ok]
        assert all(r and r[0]["data"]["code"] == "unavailable" for r in refusals), refusals[:3]
        inside = [c for c, ok in zip(flood, admitted, strict=True) if ok]
        writer = Writer(server.url, "unused")
        writer.client = inside[0]
        for i in range(20):
            await writer.send_one(i)
        status, _ = await readyz(server.url)
        assert status == 200 and not writer.refused and writer.hung == 0
        for client in inside[:5]:
            await client.sio.disconnect()
        late = [Client(server.url, mint(f"late{n}")) for n in range(5)]
        flood += late
        assert all(await asyncio.gather(*(attempt(c) for c in late))), "slots not freed"
        assert_exactly_once(writer.acked, await stored_messages(server.url))
    finally:
        await asyncio.gather(*(c.close() for c in flood), return_exceptions=True)
        server.stop()
