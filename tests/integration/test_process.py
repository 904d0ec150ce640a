"""``gigvora serve`` as a real process: SIGKILL loses no acked message; SIGTERM drains cleanly."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import aiohttp

from tests.helpers import SECRET, Client, ServerProcess, mint


async def _writer(url: str, sub: str, acked: list[str], stop: asyncio.Event) -> None:
    client = Client(url, mint(sub))
    try:
        await client.connect()
        i = 0
        while not stop.is_set():
            client_id = f"{sub}-{i}"
            ack = await client.call("message:send", {"channel": "general", "text": client_id,
                                                     "client_id": client_id}, timeout=2)
            assert ack["ok"], ack
            acked.append(client_id)
            i += 1
    except Exception:  # the server was killed under us: expected
        pass
    finally:
        await client.close()


async def _all_messages(url: str) -> list[dict]:
    messages: list[dict] = []
    async with aiohttp.ClientSession() as http:
        while True:
            params = {"after_seq": messages[-1]["seq"] if messages else 0, "limit": 500}
            async with http.get(f"{url}/api/v1/channels/general/messages", params=params,
                                headers={"Authorization": f"Bearer {mint('auditor')}"}) as r:
                body = await r.json()
            messages += body["messages"]
            if not body["has_more"]:
                return messages


async def test_sigkill_loses_no_acked_message(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, GIGVORA_MESSAGE_RATE_PER_S="0").start()
    try:
        await server.wait_ready()
        acked: list[str] = []
        stop = asyncio.Event()
        writers = [asyncio.create_task(_writer(server.url, f"w{n}", acked, stop))
                   for n in range(8)]
        deadline = time.monotonic() + 10
        while len(acked) < 300 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert server.proc is not None
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(10)
        stop.set()
        await asyncio.gather(*writers)
        assert len(acked) >= 50, "writers made too little progress to prove anything"
        restarted = ServerProcess(tmp_path, port=server.port).start()
        try:
            await restarted.wait_ready()
            messages = await _all_messages(restarted.url)
        finally:
            restarted.stop()
    finally:
        server.stop()
    stored = [m["client_id"] for m in messages]
    assert len(stored) == len(set(stored)), "a message was stored twice"
    missing = set(acked) - set(stored)
    assert not missing, f"acked but lost: {sorted(missing)[:10]}"
    assert [m["seq"] for m in messages] == list(range(1, len(messages) + 1))


async def test_sigterm_drains_cleanly(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, GIGVORA_DRAIN_GRACE_S="1.0",
                           GIGVORA_LOG_LEVEL="debug").start()
    clients: list[Client] = []
    try:
        await server.wait_ready()
        clients = [await Client(server.url, mint(f"u{n}")).connect() for n in range(5)]
        for client in clients:
            await client.ok("channel:join", {"channel": "general"})
        assert server.proc is not None
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        async with aiohttp.ClientSession() as http:
            status = 0
            for _ in range(50):
                async with http.get(server.url + "/readyz") as r:
                    status = r.status
                if status == 503:
                    break
                await asyncio.sleep(0.02)
            assert status == 503, "readiness did not go 503 while draining"
        in_flight = await clients[0].call("message:send", {"channel": "general",
                                                           "text": "sent while draining"})
        assert in_flight["ok"], in_flight  # existing sessions finish their work
        late = Client(server.url, mint("late"))
        try:
            await late.connect()
            refused = False
        except Exception:
            refused = True
        finally:
            await late.close()
        assert refused and late.events["connect_error"][0]["data"]["code"] == "unavailable"
        for _ in range(750):
            if server.proc.poll() is not None:
                break
            await asyncio.sleep(0.02)
        assert server.proc.poll() == 0, server.output()
        logs = server.output()
        assert '"state": "draining"' in logs and '"event": "drained"' in logs
        assert SECRET not in logs and not any(c.token in logs for c in clients)
        elapsed = time.monotonic() - started
        for client in clients:
            for _ in range(100):
                if client.disconnect_reasons:
                    break
                await asyncio.sleep(0.02)
            assert client.disconnect_reasons == ["server disconnect"], \
                client.disconnect_reasons
        assert elapsed < 10, f"drain took {elapsed:.1f}s"
    finally:
        for client in clients:
            await client.close()
        server.stop()
