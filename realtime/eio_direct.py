"""Engine.IO sessions that start on WebSocket, served outside aiohttp once the handshake is done.

engine.io's stock WebSocket session costs, per idle connection, a reader task, a writer task, an
``asyncio.Queue`` with a task waiting on it, and a sleeping ping task; aiohttp adds, for as long
as the WebSocket lives, the request handler task with its suspended coroutine frames (aiohttp →
middlewares → engine.io → driver), the ``Request``, the ``WebSocketResponse`` with its reader
and queue, and the HTTP protocol object. For sessions that start on WebSocket (every
load-balanced production client and the web shell), ``DirectWebSocket`` instead:

* answers the upgrade itself (101, no per-message deflate: chat frames are small), then
  **detaches the TCP transport from aiohttp**: the transport's protocol becomes the session's
  :class:`DirectSession` and aiohttp's request handler returns at once — no task, no request
  object and no aiohttp state stay behind; engine.io's WSGI-style ``environ`` (kept by
  python-socketio for the whole session) is slimmed to a few keys without the request;
* reads WebSocket frames in ``data_received`` (RFC 6455: masking, fragmentation, control frames,
  UTF-8, size limit; protocol violations close with the RFC's code) and hands MESSAGE packets
  straight to python-socketio's packet handler in arrival order, without a task per message
  (see :meth:`DirectSession.run`); PONGs re-arm the PING timer directly;
* writes **every** Engine.IO packet of the session through :class:`realtime.fanout.
  DirectConnection` (framed once, flushed once per loop iteration, in order) and replaces the
  socket's queue with :class:`NoQueue` (engine.io closing the socket closes the WebSocket with a
  1000 close frame);
* schedules PINGs on the fan-out's single pinger instead of a sleeping task per socket, while
  engine.io's service task keeps detecting late PONGs as before — the first PING too:
  ``defer_first_ping`` keeps engine.io from starting its sleeping first-ping task for sessions
  that open on WebSocket.

Sessions that start on long-polling and upgrade keep engine.io's stock handler (correct, slower).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextvars
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSMsgType, web
from engineio import exceptions as eio_exceptions
from engineio import packet as eio_packet

from realtime.fanout import CLOSE_TIMEOUT_S, DirectConnection, Fanout, eio_frame, ws_frame
from realtime.tasks import resume

log = logging.getLogger(__name__)
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#: What a direct session's ``environ`` keeps (python-socketio holds it for the whole session).
ENVIRON_KEPT = ("REQUEST_METHOD", "PATH_INFO", "REMOTE_ADDR", "HTTP_ORIGIN", "HTTP_USER_AGENT",
                "HTTP_X_FORWARDED_FOR")
#: Close codes a peer may send (RFC 6455 §7.4); anything else is a protocol error.
VALID_CLOSE_CODES = frozenset((1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012,
                               1013, 1014))
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class NoQueue:
    """Stands in for engine.io's per-socket queue on a direct session."""

    __slots__ = ("_on_close",)

    def __init__(self, on_close: Callable[[], None]) -> None:
        self._on_close = on_close

    async def put(self, item: Any) -> None:
        """``None`` is engine.io's "socket closed" marker: close the WebSocket."""
        self.put_nowait(item)

    def put_nowait(self, item: Any) -> None:
        """See ``put``."""
        if item is None:
            self._on_close()

    async def join(self) -> None:
        """Nothing is ever pending."""

    def empty(self) -> bool:
        """Always empty."""
        return True

    def qsize(self) -> int:
        """Always 0."""
        return 0

    def task_done(self) -> None:
        """Nothing to account for."""

    def get_nowait(self) -> Any:
        """Nothing to get."""
        raise asyncio.QueueEmpty


def defer_first_ping(eio: Any) -> None:
    """Wrap engine.io's ``connect`` handler so that a session opening on WebSocket gets no
    first-ping task from engine.io (``schedule_ping`` only starts one when ``last_ping`` is
    set); :class:`DirectWebSocket` schedules that PING on the pinger, or restores engine.io's
    own if the session does not go direct."""
    accept = eio.handlers["connect"]

    async def connect(sid: str, environ: dict[str, Any], *args: Any) -> Any:
        accepted = await accept(sid, environ, *args)
        socket = eio.sockets.get(sid)
        opens_on_websocket = "transport=websocket" in environ.get("QUERY_STRING", "")
        if (accepted is None or accepted is True) and socket is not None and opens_on_websocket:
            socket.last_ping = None
            socket.gigvora_first_ping = True
        return accepted

    eio.handlers["connect"] = connect


def unmask(payload: bytes, mask: bytes) -> bytes:
    """XOR ``payload`` with the repeated 4-byte ``mask`` (one big-integer XOR, in C)."""
    size = len(payload)
    if not size:
        return payload
    key = (mask * (size // 4 + 1))[:size]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(
        size, "little")


def accept_key(key: str) -> str:
    """``Sec-WebSocket-Accept`` for a client's ``Sec-WebSocket-Key`` (RFC 6455 §4.2.2)."""
    return base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()).decode()


class DirectSession(DirectConnection, asyncio.Protocol):
    """A direct WebSocket session: the transport's protocol (reads) and the fan-out's
    connection (writes)."""

    __slots__ = ("_backlog", "_busy", "_fragments", "_need", "_partial", "max_size",
                 "on_message")

    def __init__(self, fanout: Fanout, eio_socket: Any, transport: asyncio.Transport,
                 max_size: int) -> None:
        super().__init__(fanout, eio_socket, transport)
        self.max_size = max_size
        self.on_message: Callable[[str, Any], Awaitable[Any]] | None = \
            eio_socket.server.handlers.get("message")
        #: The start of an incomplete frame, and how many bytes it needs before parsing again.
        self._partial: bytearray | None = None
        self._need = 0
        #: (opcode, [payloads]) of a fragmented message being received, or None.
        self._fragments: tuple[int, list[bytes]] | None = None
        #: The task finishing a handler that suspended, and the packets waiting behind it.
        self._busy: asyncio.Task[None] | None = None
        self._backlog: collections.deque[tuple[Callable[..., Any], tuple[Any, ...]]] | None = None

    # engine.io's socket calls these (bound onto it in DirectWebSocket) ----------------------
    async def eio_send(self, pkt: eio_packet.Packet) -> None:
        """engine.io's ``socket.send``: frame and queue the packet."""
        self.write(eio_frame(pkt))

    def schedule_ping(self) -> None:
        """engine.io's ``socket.schedule_ping``: the next PING is due one interval from now,
        on the fan-out's pinger, once the last one was answered (engine.io's rule)."""
        if self.eio_socket.last_ping:
            self.eio_socket.last_ping = None
            self.ping_due = asyncio.get_running_loop().time() + \
                self.eio_socket.server.ping_interval

    # asyncio.Protocol ---------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        """Parse every complete frame in ``data`` (plus what was left from before). An
        incomplete frame waits in a buffer that grows by appending until the bytes it needs
        have come, so a client trickling a frame byte by byte costs linear time, not quadratic."""
        if self.closed:
            return
        if self._partial is not None:
            self._partial += data
            if len(self._partial) < self._need:
                return
            data, self._partial = bytes(self._partial), None
        pos, end, need = 0, len(data), 2
        while end - pos >= 2:
            first, second = data[pos], data[pos + 1]
            if first & 0x70:
                self.fail(1002, "reserved bits set")
                return
            if not second & 0x80:
                self.fail(1002, "client frames must be masked")
                return
            size, head = second & 0x7F, pos + 2
            if size == 126:
                if end - pos < 4:
                    need = 4
                    break
                size, head = int.from_bytes(data[head:head + 2], "big"), head + 2
            elif size == 127:
                if end - pos < 10:
                    need = 10
                    break
                size, head = int.from_bytes(data[head:head + 8], "big"), head + 8
            if size > self.max_size:
                self.fail(1009, "message too big")
                return
            stop = head + 4 + size
            if stop > end:
                need = stop - pos
                break
            payload = unmask(data[head + 4:stop], data[head:head + 4])
            pos = stop
            if not self.frame(first & 0x80, first & 0x0F, payload):
                return
            need = 2
        if pos < end:
            self._partial, self._need = bytearray(data[pos:]), need

    def eof_received(self) -> bool:
        """The client half-closed: close our side too."""
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        """The TCP connection is gone: end the Engine.IO session (after any packets still
        being handled), as engine.io does when its WebSocket loop ends."""
        self.closed = True
        self.pending = []
        self._partial = None
        self.fanout.connections.pop(self.eio_sid, None)
        self.run(self._end, ())

    async def _end(self) -> None:
        sock = self.eio_socket
        await sock.close(wait=False, abort=True, reason=sock.server.reason.TRANSPORT_CLOSE)
        sock.server.sockets.pop(self.eio_sid, None)

    # frames -------------------------------------------------------------------------------
    def frame(self, fin: int, opcode: int, payload: bytes) -> bool:
        """Handle one frame; False when the connection is closing."""
        if opcode >= OP_CLOSE:
            if not fin or len(payload) > 125:
                return self.fail(1002, "bad control frame")
            if opcode == OP_PING:
                self.write(ws_frame(payload, OP_PONG))
                return True
            if opcode == OP_PONG:
                return True
            if opcode == OP_CLOSE:
                return self.closing_handshake(payload)
            return self.fail(1002, "unknown opcode")
        if opcode == OP_CONT:
            if self._fragments is None:
                return self.fail(1002, "continuation without a message")
            first_op, parts = self._fragments
            parts.append(payload)
            if sum(len(part) for part in parts) > self.max_size:
                return self.fail(1009, "message too big")
            if not fin:
                return True
            self._fragments = None
            return self.message(first_op, b"".join(parts))
        if opcode not in (OP_TEXT, OP_BINARY):
            return self.fail(1002, "unknown opcode")
        if self._fragments is not None:
            return self.fail(1002, "new message inside a fragmented one")
        if not fin:
            self._fragments = (opcode, [payload])
            return True
        return self.message(opcode, payload)

    def closing_handshake(self, payload: bytes) -> bool:
        """Answer the client's close frame with the same code and close (RFC 6455 §5.5.1)."""
        code = 1000
        if len(payload) == 1:
            return self.fail(1002, "bad close frame")
        if len(payload) >= 2:
            code = int.from_bytes(payload[:2], "big")
            if code not in VALID_CLOSE_CODES and not 3000 <= code <= 4999:
                return self.fail(1002, "bad close code")
            try:
                payload[2:].decode()
            except UnicodeDecodeError:
                return self.fail(1007, "close reason is not UTF-8")
        self.close(code)
        return False

    def message(self, opcode: int, payload: bytes) -> bool:
        """One whole WebSocket message: one Engine.IO packet."""
        data: str | bytes
        if opcode == OP_TEXT:
            try:
                data = payload.decode()
            except UnicodeDecodeError:
                return self.fail(1007, "text frame is not UTF-8")
            if not data:
                return True  # engine.io ignores an empty packet
            kind = data[0]
            if kind == "4" and self.on_message is not None:  # MESSAGE: a Socket.IO packet
                self.run(self.on_message, (self.eio_sid, data[1:]), data.startswith("2", 1))
                return True
            if kind == "3":  # PONG
                self.schedule_ping()
                return True
        else:
            data = payload
            if self.on_message is not None:  # a binary MESSAGE (attachment)
                self.run(self.on_message, (self.eio_sid, data))
                return True
        try:
            pkt = eio_packet.Packet(encoded_packet=data)
        except Exception:  # unparsable: engine.io's loop ignores it as well
            return True
        self.run(self._receive, (pkt,))
        return True

    async def _receive(self, pkt: eio_packet.Packet) -> None:
        try:
            await self.eio_socket.receive(pkt)
        except eio_exceptions.UnknownPacketError:
            pass
        if self.eio_socket.closed:  # the client's Engine.IO CLOSE
            self.close()

    def fail(self, code: int, reason: str) -> bool:
        """Close the connection for a protocol violation (RFC 6455 §7.1.7)."""
        log.info("websocket protocol error", extra={"eio_sid": self.eio_sid, "code": code,
                                                    "reason": reason})
        self.close(code)
        return False

    # handlers, in order --------------------------------------------------------------------
    def run(self, handler: Callable[..., Any], args: tuple[Any, ...],
            eager: bool = False) -> None:
        """Run ``handler(*args)`` behind any packet of this session still being handled, so a
        session's packets are handled in order, as engine.io's own read loop does.

        A handler runs in a task (the packets arriving meanwhile wait behind it), except an
        ``eager`` one: a Socket.IO EVENT, for which python-socketio's packet handler only
        decodes the packet and starts the event's own task, never suspending. It is stepped
        by hand (in a copy of the context, as a task would), which saves a task per message;
        should it suspend after all, a task finishes it.
        """
        if self._busy is not None:
            if self._backlog is None:
                self._backlog = collections.deque()
            self._backlog.append((handler, args))
            return
        if not eager:
            self._busy = asyncio.get_running_loop().create_task(self._chain(handler(*args)))
            return
        context = contextvars.copy_context()
        coro = handler(*args)
        try:
            awaited = context.run(coro.send, None)
        except StopIteration:
            return
        except Exception:
            log.exception("engine.io packet handler failed", extra={"eio_sid": self.eio_sid})
            return
        self._busy = asyncio.get_running_loop().create_task(self._chain(resume(coro, awaited)),
                                                            context=context)

    async def _chain(self, first: Awaitable[Any]) -> None:
        """Await ``first``, then every packet that queued up behind it."""
        current: Awaitable[Any] | None = first
        try:
            while current is not None:
                try:
                    await current
                except Exception:
                    log.exception("engine.io packet handler failed",
                                  extra={"eio_sid": self.eio_sid})
                if self._backlog:
                    handler, args = self._backlog.popleft()
                    current = handler(*args)
                else:
                    current = None
        finally:
            self._busy = None
            self._backlog = None


class DirectWebSocket:
    """engine.io's aiohttp WebSocket driver, replaced (see the module docstring)."""

    def __init__(self, handler: Callable[[Any], Any], server: Any) -> None:
        self.handler = handler
        self.server = server
        self._sock: web.WebSocketResponse | None = None

    async def __call__(self, environ: dict[str, Any]) -> web.StreamResponse:
        request: web.Request = environ["aiohttp.request"]
        eio_socket = getattr(self.handler, "__self__", None)
        fanout: Fanout | None = getattr(self.server, "gigvora_fanout", None)
        sock = web.WebSocketResponse(max_msg_size=self.server.max_http_buffer_size,
                                     compress=False, timeout=CLOSE_TIMEOUT_S)
        transport = request.transport
        if (fanout is None or eio_socket is None or eio_socket.connected
                or transport is None or transport.is_closing()
                or not sock.can_prepare(request).ok):
            return await self._stock(sock, request, eio_socket)
        session = DirectSession(fanout, eio_socket, transport, self.server.max_http_buffer_size)
        self._detach(request, transport, session)
        self._go_direct(fanout, eio_socket, session, environ)
        return web.Response(status=101)  # never written: aiohttp no longer has the transport

    async def _stock(self, sock: web.WebSocketResponse, request: web.Request,
                     eio_socket: Any) -> web.WebSocketResponse:
        """engine.io's own WebSocket loop (an upgrade from polling, or no fan-out)."""
        self._sock = sock
        await sock.prepare(request)
        if eio_socket is not None and getattr(eio_socket, "gigvora_first_ping", False):
            eio_socket.last_ping = time.time()  # engine.io's own first PING after all
            eio_socket.schedule_ping()
        await self.handler(self)
        return sock

    @staticmethod
    def _detach(request: web.Request, transport: asyncio.Transport,
                session: DirectSession) -> None:
        """Answer the upgrade and take the transport from aiohttp: from now on its bytes go to
        ``session``; aiohttp's protocol forgets it (its ``connection_lost`` runs once the
        request handler has returned, so it neither writes nor closes anything)."""
        key = request.headers["Sec-WebSocket-Key"]
        transport.set_protocol(session)
        if not transport.is_reading():  # paused by aiohttp's request flow control
            transport.resume_reading()
        transport.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                        b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
                        + accept_key(key).encode() + b"\r\n\r\n")
        protocol = request.protocol
        protocol.transport = None
        task = asyncio.current_task()
        if task is not None:
            task.add_done_callback(lambda _: protocol.connection_lost(None))
        else:  # pragma: no cover - aiohttp always runs handlers in a task
            asyncio.get_running_loop().call_soon(protocol.connection_lost, None)

    def _go_direct(self, fanout: Fanout, eio_socket: Any, session: DirectSession,
                   environ: dict[str, Any]) -> None:
        fanout.connections[session.eio_sid] = session
        while not eio_socket.queue.empty():  # the OPEN packet, queued before the upgrade
            queued = eio_socket.queue.get_nowait()
            if queued is not None:
                session.write(eio_frame(queued))
        if getattr(eio_socket, "gigvora_first_ping", False):  # see defer_first_ping
            session.ping_due = asyncio.get_running_loop().time() + self.server.ping_interval
        eio_socket.send = session.eio_send
        eio_socket.schedule_ping = session.schedule_ping
        eio_socket.queue = NoQueue(session.close)
        eio_socket.connected = True
        eio_socket.upgraded = True
        # python-socketio keeps this dict for the whole session: keep a few keys, drop the
        # request (``clear`` frees the table; every holder of the dict sees the slim view)
        kept = {key: environ[key] for key in ENVIRON_KEPT if key in environ}
        environ.clear()
        environ.update(kept)

    # engine.io's stock loop calls these on upgraded (polling-first) sessions ------------------
    async def close(self) -> None:
        """Close the WebSocket."""
        assert self._sock is not None
        await self._sock.close()

    async def send(self, message: str | bytes) -> None:
        """Send one encoded packet."""
        assert self._sock is not None
        if isinstance(message, bytes):
            await self._sock.send_bytes(message)
        else:
            await self._sock.send_str(message)

    async def wait(self) -> str | bytes:
        """The next data frame from the client; OSError when the socket closed."""
        assert self._sock is not None
        msg = await self._sock.receive()
        if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
            raise OSError()
        if not isinstance(msg.data, bytes | str):
            raise OSError()
        return msg.data
