"""A raw WebSocket client for tests that need control over every byte a client sends: the
handshake, masking, fragmentation, control frames and protocol violations (RFC 6455)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import socket
import struct

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def client_frame(payload: bytes, opcode: int = OP_TEXT, *, fin: bool = True,
                 masked: bool = True, rsv: int = 0) -> bytes:
    """One client→server frame (masked unless told otherwise)."""
    size = len(payload)
    first = (0x80 if fin else 0) | rsv | opcode
    flag = 0x80 if masked else 0
    if size < 126:
        header = struct.pack("!BB", first, flag | size)
    elif size < 65536:
        header = struct.pack("!BBH", first, flag | 126, size)
    else:
        header = struct.pack("!BBQ", first, flag | 127, size)
    if not masked:
        return header + payload
    mask = os.urandom(4)
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class RawWebSocket:
    """A client speaking WebSocket by hand to ``/socket.io/?EIO=4&transport=websocket``."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 handshake: bytes = b"") -> None:
        self.reader = reader
        self.writer = writer
        #: The server's handshake response head.
        self.handshake = handshake

    @classmethod
    async def open(cls, url: str, small_buffer: bool = True) -> RawWebSocket:
        """Connect and upgrade (with a 4 KB receive buffer unless told otherwise, so that a
        client that stops reading is soon noticed by the server)."""
        host, port = url.removeprefix("http://").split(":")
        sock = socket.socket()
        if small_buffer:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
        reader, writer = await asyncio.open_connection(sock=sock, limit=4096 if small_buffer
                                                       else 2 ** 20)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write((f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {host}\r\n"
                      f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                      "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        accept = base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest())
        assert b"\r\nsec-websocket-accept: " + accept.lower() + b"\r\n" in head.lower(), head
        return cls(reader, writer, head)

    def send(self, text: str) -> None:
        """Send one text frame."""
        self.writer.write(client_frame(text.encode()))

    def send_raw(self, data: bytes) -> None:
        """Send bytes as they are (frames built with :func:`client_frame`)."""
        self.writer.write(data)

    async def recv_frame(self) -> tuple[int, bool, bytes]:
        """The next server frame: (opcode, fin, payload)."""
        first, second = await self.reader.readexactly(2)
        assert not second & 0x80, "server frames are not masked"
        size = second & 0x7F
        if size == 126:
            size = struct.unpack("!H", await self.reader.readexactly(2))[0]
        elif size == 127:
            size = struct.unpack("!Q", await self.reader.readexactly(8))[0]
        return first & 0x0F, bool(first & 0x80), await self.reader.readexactly(size)

    async def recv(self) -> str:
        """The next text frame's text (server frames are always final)."""
        _, fin, payload = await self.recv_frame()
        assert fin, "server frames are final"
        return payload.decode()

    async def recv_close(self, timeout: float = 5) -> int | None:
        """Skip frames until a close frame; its code (None without one); then expect EOF."""
        async with asyncio.timeout(timeout):
            while True:
                try:
                    opcode, _, payload = await self.recv_frame()
                except asyncio.IncompleteReadError:
                    return None
                if opcode == OP_CLOSE:
                    try:  # the server closes the TCP stream (with a reset if it left unread
                        # bytes behind, e.g. the rest of an oversized frame)
                        assert await self.reader.read() == b""
                    except ConnectionResetError:
                        pass
                    return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None

    def close(self) -> None:
        """Drop the TCP connection."""
        self.writer.close()
