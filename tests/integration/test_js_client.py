"""The official Socket.IO JavaScript client (npm socket.io-client 4.8) against a live server."""

from __future__ import annotations

import asyncio
import json
import shutil

import pytest

from tests.helpers import REPO, LiveServer, mint

JS_DIR = REPO / "tests" / "js"


async def test_official_js_client_chats(server: LiveServer) -> None:
    node = shutil.which("node")
    if node is None or not (JS_DIR / "node_modules" / "socket.io-client").exists():
        pytest.fail("node and `npm ci --prefix tests/js` are required (scripts/test does both)")
    proc = await asyncio.create_subprocess_exec(
        node, str(JS_DIR / "chat_client.mjs"), server.url, mint("jsuser", "JS User"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=60)
    result = json.loads(stdout.decode().strip().splitlines()[-1])
    assert proc.returncode == 0 and result["ok"], (result, stderr.decode()[-2000:])
    assert result["transports"]["a_final"] == "websocket"
    assert result["first"]["seq"] < result["second"]["seq"]
    assert all(ack["error"]["code"] == "invalid" for ack in result["invalid_acks"])
    alice = await server.client("alice")
    history = await alice.ok("channel:join", {"channel": "general"})
    assert [m["client_id"] for m in history["messages"]] == ["js-1", "js-2"]
