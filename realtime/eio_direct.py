"""Engine.IO sessions that start on WebSocket, served with one task per connection.

engine.io's stock WebSocket session costs, per idle connection, a reader task, a writer task, an
``asyncio.Queue`` with a task waiting on it, and a sleeping ping task. For sessions that start on
WebSocket (every load-balanced production client and the web shell), ``DirectWebSocket`` instead:

* opens the WebSocket without per-message deflate (chat frames are small);
* registers a :class:`realtime.fanout.DirectConnection` and writes **every** Engine.IO packet of
  the session straight to it (framed once, flushed once per loop iteration, in order);
* replaces the socket's queue with :class:`NoQueue` (nothing ever waits in it; engine.io closing
  the socket closes the WebSocket with a 1000 close frame);
* reads frames in the request handler's own task and hands MESSAGE packets straight to
  python-socketio's packet handler (which decodes them in order and runs each event's handler in
  its own task), other packets to engine.io's ``receive`` — engine.io would start one more task
  per message just to call that handler;
* schedules PINGs on the fan-out's single pinger instead of a sleeping task per socket, while
  engine.io's service task keeps detecting late PONGs as before — the first PING too:
  ``defer_first_ping`` keeps engine.io from starting its sleeping first-ping task for sessions
  that open on WebSocket (that task lived ``ping_interval``, 25 s, per connection: ~1.3 KB).

Sessions that start on long-polling and upgrade keep engine.io's stock handler (correct, slower).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web
from engineio import exceptions as eio_exceptions
from engineio import packet as eio_packet

from realtime.fanout import CLOSE_TIMEOUT_S, DirectConnection, Fanout, eio_frame

log = logging.getLogger(__name__)


class NoQueue:
    """Stands in for engine.io's per-socket queue on a direct session."""

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


class DirectWebSocket:
    """engine.io's aiohttp WebSocket driver, replaced (see the module docstring)."""

    def __init__(self, handler: Callable[[Any], Any], server: Any) -> None:
        self.handler = handler
        self.server = server
        self._sock: web.WebSocketResponse | None = None
        self._conn: DirectConnection | None = None

    async def __call__(self, environ: dict[str, Any]) -> web.WebSocketResponse:
        request: web.Request = environ["aiohttp.request"]
        self._sock = sock = web.WebSocketResponse(
            max_msg_size=self.server.max_http_buffer_size, compress=False,
            timeout=CLOSE_TIMEOUT_S)
        await sock.prepare(request)
        eio_socket = getattr(self.handler, "__self__", None)
        fanout: Fanout | None = getattr(self.server, "gigvora_fanout", None)
        if (fanout is None or eio_socket is None or eio_socket.connected
                or request.transport is None):
            if eio_socket is not None and getattr(eio_socket, "gigvora_first_ping", False):
                eio_socket.last_ping = time.time()  # engine.io's own first PING after all
                eio_socket.schedule_ping()
            await self.handler(self)  # an upgrade from polling: engine.io's own loop
            return sock
        conn = self._conn = self._go_direct(fanout, eio_socket, request.transport)
        try:
            await self._serve(sock, eio_socket)
        finally:
            conn.close()
            fanout.connections.pop(conn.eio_sid, None)
        return sock

    def _go_direct(self, fanout: Fanout, eio_socket: Any, transport: Any) -> DirectConnection:
        conn = DirectConnection(fanout, eio_socket, transport)
        fanout.connections[conn.eio_sid] = conn
        while not eio_socket.queue.empty():  # the OPEN packet, queued before the upgrade
            queued = eio_socket.queue.get_nowait()
            if queued is not None:
                conn.write(eio_frame(queued))
        ping_interval = self.server.ping_interval

        async def send(pkt: eio_packet.Packet) -> None:
            conn.write(eio_frame(pkt))

        def schedule_ping() -> None:
            if eio_socket.last_ping:  # engine.io's rule: only after the last PING was answered
                eio_socket.last_ping = None
                conn.ping_due = asyncio.get_running_loop().time() + ping_interval

        if getattr(eio_socket, "gigvora_first_ping", False):  # see defer_first_ping
            conn.ping_due = asyncio.get_running_loop().time() + ping_interval
        eio_socket.send = send
        eio_socket.schedule_ping = schedule_ping
        eio_socket.queue = NoQueue(conn.close)
        eio_socket.connected = True
        eio_socket.upgraded = True
        return conn

    async def _serve(self, sock: web.WebSocketResponse, eio_socket: Any) -> None:
        """Read frames and hand them on (see the module docstring) until either side closes."""
        on_message = self.server.handlers.get("message")
        sid = eio_socket.sid
        while True:
            msg = await sock.receive()
            if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                break
            try:
                pkt = eio_packet.Packet(encoded_packet=msg.data)
                if pkt.packet_type == eio_packet.MESSAGE and on_message is not None:
                    await on_message(sid, pkt.data)
                else:
                    await eio_socket.receive(pkt)
            except eio_exceptions.UnknownPacketError:
                continue
            except eio_exceptions.SocketIsClosedError:
                break
            except Exception:
                log.exception("bad engine.io frame ignored", extra={"eio_sid": eio_socket.sid})
        await eio_socket.close(wait=False, abort=True,
                               reason=self.server.reason.TRANSPORT_CLOSE)

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
        if not isinstance(msg.data, bytes | str):
            raise OSError()
        return msg.data
