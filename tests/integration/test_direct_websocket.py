"""Direct WebSocket sessions: after the handshake the TCP transport leaves aiohttp and
``realtime.eio_direct.DirectSession`` reads the frames itself. These tests speak RFC 6455 by
hand (masking, fragmentation, control frames, violations) and check that nothing of a session
stays behind in aiohttp, engine.io, python-socketio or the fan-out once it is gone."""

from __future__ import annotations

import asyncio
import itertools
import struct
from pathlib import Path
from typing import Any

import orjson
import pytest

from realtime.app import FANOUT, HUB, SIO
from tests.helpers import LiveServer, make_settings, mint, start_server
from tests.rawws import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    RawWebSocket,
    client_frame,
)


async def connected(server: LiveServer, sub: str) -> RawWebSocket:
    """A raw client with its Engine.IO OPEN read and its Socket.IO CONNECT answered."""
    raw = await RawWebSocket.open(server.url, small_buffer=False)
    assert (await raw.recv()).startswith("0{")
    raw.send("40" + orjson.dumps({"token": mint(sub)}).decode())
    assert (await raw.recv()).startswith("40{")
    return raw


async def ack(raw: RawWebSocket, ack_id: int) -> Any:
    """Read frames until the Socket.IO ACK ``ack_id`` arrives; its payload."""
    prefix = f"43{ack_id}["
    async with asyncio.timeout(5):
        while not (frame := await raw.recv()).startswith(prefix):
            pass
    return orjson.loads(frame[len(prefix) - 1:])[0]


async def wait_until(condition: Any, timeout: float = 5) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


def session_count(server: LiveServer) -> tuple[int, int, int, int]:
    """What the server holds for sessions: Socket.IO sessions, engine.io sockets, direct
    connections, and aiohttp's open HTTP connections."""
    sio = server.app[SIO]
    return (len(server.app[HUB].sessions), len(sio.eio.sockets),
            len(server.app[FANOUT].connections), len(server.runner.server.connections))


async def test_connect_and_events_pipelined_in_one_write_are_handled_in_order(
        server: LiveServer) -> None:
    """CONNECT (whose handler suspends) and two events in one TCP segment: the events wait for
    the connection to be accepted instead of being dropped as "not connected". (Each event then
    runs in its own task, as python-socketio does; so these two do not depend on each other.)"""
    raw = await RawWebSocket.open(server.url, small_buffer=False)
    assert (await raw.recv()).startswith("0{")
    raw.send_raw(client_frame(("40" + orjson.dumps({"token": mint("ada")}).decode()).encode())
                 + client_frame(b'421["channel:join",{"channel":"general"}]')
                 + client_frame(b'422["presence:list",{}]'))
    assert (await raw.recv()).startswith("40{")
    replies = {}
    async with asyncio.timeout(5):
        while len(replies) < 2:
            frame = await raw.recv()
            if frame.startswith(("431[", "432[")):
                replies[frame[2]] = orjson.loads(frame[3:])[0]
    assert replies["1"]["ok"] is True and replies["2"]["ok"] is True, replies
    raw.close()


async def test_frames_split_anywhere_and_fragmented_messages_are_reassembled(
        server: LiveServer) -> None:
    raw = await connected(server, "bo")
    frames = client_frame(b'421["channel:join",{"channel":"general"}]')
    for i in range(len(frames)):  # one byte per TCP write
        raw.send_raw(frames[i:i + 1])
        await raw.writer.drain()
        await asyncio.sleep(0)
    assert (await ack(raw, 1))["ok"] is True
    text = '422["message:send",{"channel":"general","text":"ünïcødé in pieces ✓"}]'.encode()
    cut = text.index("ï".encode()) + 1  # a fragment may end inside a UTF-8 sequence
    raw.send_raw(client_frame(text[:cut], OP_TEXT, fin=False)
                 + client_frame(b"ping?", OP_PING)  # control frames may interleave
                 + client_frame(text[cut:cut + 10], OP_CONT, fin=False)
                 + client_frame(text[cut + 10:], OP_CONT))
    opcode, fin, payload = await raw.recv_frame()
    assert (opcode, fin, payload) == (OP_PONG, True, b"ping?")
    sent = await ack(raw, 2)
    assert sent["ok"] is True and sent["data"]["text"] == "ünïcødé in pieces ✓"
    raw.close()


async def test_a_large_frame_in_odd_pieces_is_parsed_once_complete(server: LiveServer) -> None:
    """A 64-bit length header and a 70 KB payload, cut inside the header and the payload:
    the incomplete frame is buffered (appending) until its bytes have come."""
    raw = await connected(server, "lenny")
    frame = client_frame(b'423["no:such:event","' + b"y" * 70_000 + b'"]')
    assert frame[1] & 0x7F == 127  # the 8-byte length form
    cuts = [0, 1, 3, 9, 13, 4_000, 50_000, len(frame)]
    for start, stop in itertools.pairwise(cuts):
        raw.send_raw(frame[start:stop])
        await raw.writer.drain()
        await asyncio.sleep(0.01)
    reply = await ack(raw, 3)
    assert reply["ok"] is False and reply["error"]["code"] == "not_found"
    raw.close()


async def test_binary_frames_reach_socketio_as_attachments(server: LiveServer) -> None:
    raw = await connected(server, "cy")
    raw.send('451-7["no:such:event",{"_placeholder":true,"num":0}]')
    raw.send_raw(client_frame(b"\x00\x01\xff", OP_BINARY))
    reply = await ack(raw, 7)
    assert reply["ok"] is False and reply["error"]["code"] == "not_found"
    raw.close()


@pytest.mark.parametrize(("frame", "code"), [
    (client_frame(b"42[]", masked=False), 1002),  # clients must mask
    (client_frame(b"42[]", rsv=0x40), 1002),  # no extension was negotiated
    (client_frame(b"\xc3\x28", OP_TEXT), 1007),  # not UTF-8
    (client_frame(b"more", OP_CONT), 1002),  # continuation of nothing
    (client_frame(b"x", 0x3), 1002),  # reserved opcode
    (client_frame(b"x" * 126, OP_PING), 1002),  # control frames carry at most 125 bytes
    (client_frame(b"x", OP_PING, fin=False), 1002),  # control frames are not fragmented
    (client_frame(b"\x03", OP_CLOSE), 1002),  # a one-byte close payload
    (client_frame(struct.pack("!H", 1005), OP_CLOSE), 1002),  # a code never sent on the wire
    (client_frame(b"4" + b"x" * (200 * 1024), OP_TEXT), 1009),  # beyond the frame ceiling
    (client_frame(b"4" + b"x" * (100 * 1024), OP_TEXT, fin=False)
     + client_frame(b"x" * (100 * 1024), OP_CONT), 1009),  # the whole message counts
])
async def test_protocol_violations_close_with_the_rfc_code_and_leave_nothing(
        server: LiveServer, frame: bytes, code: int) -> None:
    raw = await connected(server, "dee")
    await wait_until(lambda: session_count(server)[0] == 1)
    raw.send_raw(frame)
    assert await raw.recv_close() == code
    await wait_until(lambda: session_count(server) == (0, 0, 0, 0))
    raw.close()


async def test_close_handshake_echoes_the_code_and_everything_is_released(
        server: LiveServer) -> None:
    clients = [await connected(server, f"u{n}") for n in range(20)]
    assert session_count(server) == (20, 20, 20, 0), "aiohttp keeps no upgraded connection"
    environ = server.app[SIO].get_environ(next(iter(server.app[HUB].sessions))[1])
    assert environ is not None and "aiohttp.request" not in environ
    assert environ["REQUEST_METHOD"] == "GET"
    for n, raw in enumerate(clients):
        if n % 2:
            raw.send_raw(client_frame(struct.pack("!H", 1001) + b"bye", OP_CLOSE))
            assert await raw.recv_close() == 1001
        else:
            raw.close()  # TCP gone without a close frame
    await wait_until(lambda: session_count(server) == (0, 0, 0, 0))
    watcher = await server.client("watcher")  # the server still serves
    await watcher.ok("channel:join", {"channel": "general"})


async def test_engineio_close_packet_closes_the_websocket(server: LiveServer) -> None:
    raw = await connected(server, "eve")
    raw.send("1")  # Engine.IO CLOSE
    assert await raw.recv_close() == 1000
    await wait_until(lambda: session_count(server) == (0, 0, 0, 0))


async def test_a_drain_closes_direct_websockets_going_away(tmp_path: Path) -> None:
    live = await start_server(make_settings(tmp_path))
    try:
        member = await connected(live, "gus")
        bare = await RawWebSocket.open(live.url, small_buffer=False)  # no namespace yet
        assert (await bare.recv()).startswith("0{")
    finally:
        await live.stop()
    assert await member.recv() == "41"  # the Socket.IO disconnect first
    assert await member.recv_close() == 1001
    assert await bare.recv_close() == 1001
