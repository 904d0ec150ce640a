"""The fan-out fast path: encode a broadcast once, write pre-framed bytes to every recipient.

python-socketio's stock path costs one task per recipient plus a queue and a writer task per
socket, and deflates every frame per recipient. Here, for sockets that connected over WebSocket:

* ``realtime.eio_direct.DirectWebSocket`` replaces engine.io's aiohttp driver: no per-message
  deflate (chat frames are small; per-recipient compression costs ~4x memory per connection),
  and the socket's transport is owned by a ``DirectSession``, a ``DirectConnection`` that also
  reads the client's frames.
* Engine.IO MESSAGE packets (every Socket.IO packet: events, acks, connect) for such a socket skip
  the queue and the writer task: they are appended, already framed, to the connection's pending
  list. One ``call_soon`` per loop iteration flushes every dirty connection with a single
  ``transport.write`` — so all MESSAGE frames of a connection keep their order, and a burst of
  broadcasts costs one syscall per recipient, not one per message. Control packets (PING, CLOSE,
  NOOP) keep engine.io's own queue; their order relative to messages does not matter.
* ``FanoutManager.emit`` encodes a broadcast once (orjson), frames it once, and appends the same
  bytes to each recipient: no task, no encode, no allocation per recipient.
* A recipient whose kernel send buffer plus pending bytes exceed ``max_outbound_bytes`` is a slow
  consumer: it is disconnected (counted) instead of growing memory without bound.

Sockets that started on long-polling and upgraded keep the stock path (correct, just slower).
"""

from __future__ import annotations

import asyncio
import json
import logging
import struct
import time
from collections.abc import Callable
from typing import Any

import orjson
import socketio
from engineio import packet as eio_packet

from realtime.bus import BusMessage, RedisBus

log = logging.getLogger(__name__)
#: How long a closing WebSocket waits for the client's close frame (aiohttp's default is 10 s).
CLOSE_TIMEOUT_S = 2.0


class OrjsonShim:
    """The ``json`` module interface python-socketio expects, backed by orjson (with the
    standard library for what orjson refuses, e.g. integers beyond 64 bits)."""

    @staticmethod
    def dumps(obj: Any, **_: Any) -> str:
        """Serialise compactly."""
        try:
            return orjson.dumps(obj).decode()
        except TypeError:
            return json.dumps(obj, separators=(",", ":"))

    @staticmethod
    def loads(data: str | bytes, **_: Any) -> Any:
        """Parse."""
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            return json.loads(data)


def has_binary(data: Any) -> bool:
    """Whether ``data`` holds ``bytes`` anywhere (python-socketio's ``data_is_binary``, without
    its ``functools.reduce`` over a list of recursive results: it runs for every packet sent)."""
    kind = type(data)
    if kind is str or kind is int or data is None or kind is bool or kind is float:
        return False
    if isinstance(data, bytes | bytearray):
        return True
    items = data if isinstance(data, list) else data.values() if isinstance(data, dict) else ()
    for item in items:
        if has_binary(item):
            return True
    return False


class OrjsonPacket(socketio.packet.Packet):
    """Socket.IO packets encoded with orjson — a subclass, so setting its ``json`` leaves
    python-socketio's own ``Packet`` (used by clients in the same process) untouched."""

    json = OrjsonShim

    @classmethod
    def data_is_binary(cls, data: Any) -> bool:
        """Whether the payload needs a binary packet; runs for every packet sent. orjson
        serialising it (about a microsecond for an ack) proves it holds no ``bytes``; python-
        socketio's own recursive check costs ~10 µs for a message ack."""
        try:
            orjson.dumps(data)
        except TypeError:  # bytes, or something else orjson refuses: look closer
            return has_binary(data)
        return False


def ws_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """An unmasked, final server→client WebSocket frame (RFC 6455 §5.2)."""
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", 0x80 | opcode, size)
    elif size < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 126, size)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 127, size)
    return header + payload


def eio_frame(pkt: eio_packet.Packet) -> bytes:
    """The WebSocket frame that carries one Engine.IO packet."""
    encoded = pkt.encode()
    if isinstance(encoded, bytes):
        return ws_frame(encoded, 0x2)
    return ws_frame(encoded.encode())


class DirectConnection:
    """One WebSocket client's transport and its pending, already-framed bytes."""

    __slots__ = ("closed", "eio_sid", "eio_socket", "fanout", "pending", "ping_due",
                 "transport")

    def __init__(self, fanout: Fanout, eio_socket: Any, transport: asyncio.Transport) -> None:
        self.fanout = fanout
        self.eio_socket = eio_socket
        self.eio_sid: str = eio_socket.sid
        self.transport = transport
        self.pending: list[bytes] = []
        self.closed = False
        #: When this connection's next Engine.IO PING is due (loop time), or None.
        self.ping_due: float | None = None

    def write(self, frame: bytes) -> None:
        """Queue a frame; it is written with everything else pending at the next flush."""
        if self.closed:
            return
        if not self.pending:
            self.fanout.mark_dirty(self)
        self.pending.append(frame)

    def close(self, code: int = 1000) -> None:
        """Flush, send a WebSocket close frame with ``code`` and close the transport."""
        if self.closed:
            return
        self.flush()
        self.closed = True
        if not self.transport.is_closing():
            self.transport.write(ws_frame(code.to_bytes(2, "big"), 0x8))
            self.transport.close()

    def flush(self) -> None:
        """Write what is pending now; drop the connection if the client stopped reading."""
        pending, self.pending = self.pending, []
        if self.closed or not pending:
            return
        transport = self.transport
        if transport.is_closing():
            self.closed = True
            return
        transport.write(pending[0] if len(pending) == 1 else b"".join(pending))
        if transport.get_write_buffer_size() > self.fanout.max_outbound_bytes:
            self.fanout.drop_slow_consumer(self)


#: Bus messages in this pseudo-namespace are commands between nodes, not Socket.IO packets.
CONTROL_NS = "\x00control"
PING_FRAME = ws_frame(b"2")


class Fanout:
    """The registry of direct connections, the once-per-iteration flush and the pinger."""

    def __init__(self, max_outbound_bytes: int, on_slow: Callable[[], None]) -> None:
        self.max_outbound_bytes = max_outbound_bytes
        self.connections: dict[str, DirectConnection] = {}
        self._dirty: list[DirectConnection] = []
        self._scheduled = False
        self._on_slow = on_slow
        self.delivered = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    def mark_dirty(self, conn: DirectConnection) -> None:
        """Remember ``conn`` for the next flush, scheduling one if none is."""
        self._dirty.append(conn)
        if not self._scheduled:
            self._scheduled = True
            if self._loop is None:  # looked up once: on Python 3.11 every
                # get_running_loop() costs a getpid() system call
                self._loop = asyncio.get_running_loop()
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write every dirty connection's pending frames."""
        self._scheduled = False
        dirty, self._dirty = self._dirty, []
        for conn in dirty:
            conn.flush()

    async def run_pinger(self, interval: float = 1.0) -> None:
        """Send due Engine.IO PINGs for every direct connection (one timer for all of them,
        instead of a sleeping task per connection); engine.io's own service task still closes
        sockets whose PONG is late."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(interval)
            now, wall = loop.time(), time.time()
            for conn in list(self.connections.values()):
                if conn.ping_due is not None and now >= conn.ping_due and not conn.closed:
                    conn.ping_due = None
                    conn.eio_socket.last_ping = wall
                    conn.write(PING_FRAME)

    def close_all(self, code: int = 1001) -> None:
        """Close every direct connection (1001: going away), after flushing what is pending;
        their sessions end as the transports report the loss."""
        for conn in list(self.connections.values()):
            conn.close(code)

    def buffered_bytes(self) -> int:
        """Bytes waiting in kernel-side transport buffers across all connections."""
        return sum(c.transport.get_write_buffer_size() for c in self.connections.values()
                   if not c.closed)

    def drop_slow_consumer(self, conn: DirectConnection) -> None:
        """Abort a connection whose client does not read; the normal disconnect path follows."""
        conn.closed = True
        self._on_slow()
        log.warning("slow consumer disconnected", extra={"eio_sid": conn.eio_sid})
        conn.transport.abort()


class FanoutManager(socketio.AsyncManager):
    """python-socketio's manager with the encode-once, frame-once broadcast path, optionally
    sharing broadcasts with other nodes over a :class:`realtime.bus.RedisBus`."""

    def __init__(self, fanout: Fanout, on_delivered: Callable[[int], None],
                 bus: RedisBus | None = None) -> None:
        super().__init__()
        self.fanout = fanout
        self._on_delivered = on_delivered
        self.bus = bus
        #: ``accept(room, seq) -> bool``: drops a remote broadcast already delivered here.
        self.remote_filter: Callable[[str, int], bool] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        if bus is not None:
            bus.on_deliver(self._from_bus)

    async def emit(self, event: str, data: Any, namespace: str, room: Any = None,
                   skip_sid: Any = None, callback: Any = None, to: Any = None,
                   **kwargs: Any) -> None:
        """Broadcast ``event``; without a callback, through the fast path (and the bus).
        ``seq=`` marks a channel message for the other nodes' de-duplication and repair;
        ``ignore_queue=True`` keeps the broadcast on this node."""
        room = to or room
        seq = kwargs.pop("seq", 0)
        local_only = kwargs.pop("ignore_queue", False)
        if callback is not None or namespace not in self.rooms or not isinstance(
                room, str | None):
            return await super().emit(event, data, namespace, room=room, skip_sid=skip_sid,
                                      callback=callback, **kwargs)
        args = list(data) if isinstance(data, tuple) else ([] if data is None else [data])
        try:
            body = orjson.dumps([event, *args])
        except TypeError:  # binary or exotic payloads: the stock encoder handles them
            return await super().emit(event, data, namespace, room=room, skip_sid=skip_sid,
                                      **kwargs)
        packet = (b"2" if namespace == "/" else b"2" + namespace.encode() + b",") + body
        skip = skip_sid if isinstance(skip_sid, str) else None
        self._deliver_local(namespace, room, skip, packet)
        if self.bus is not None and not local_only and not self._is_local_sid(room, namespace):
            self.bus.publish(BusMessage(self.bus.node_id, namespace, room or "", skip or "",
                                        seq, packet))
        return None

    async def emit_many(self, event: str, payloads: list[Any], namespace: str,
                        room: str) -> None:
        """Emit ``event`` once per payload to ``room``, in order: every packet is encoded and
        framed once, and each direct recipient gets all of them as one buffer (one append per
        recipient, not one per packet). Other nodes get them through the bus one by one."""
        prefix = b"2" if namespace == "/" else b"2" + namespace.encode() + b","
        packets = [prefix + orjson.dumps([event, payload]) for payload in payloads]
        if not packets:
            return
        if namespace in self.rooms:
            blob = b"".join(ws_frame(b"4" + packet) for packet in packets)
            connections = self.fanout.connections
            others: list[str] = []
            direct = 0
            for _, eio_sid in self.get_participants(namespace, room):
                conn = connections.get(eio_sid)
                if conn is None:
                    others.append(eio_sid)
                else:
                    conn.write(blob)
                    direct += 1
            if others:  # stock sockets: packet by packet, in order
                for packet in packets:
                    await self._send_stock(others, eio_packet.Packet(eio_packet.MESSAGE,
                                                                     packet.decode()))
            self._on_delivered(len(packets) * (direct + len(others)))
        if self.bus is not None:
            for packet in packets:
                self.bus.publish(BusMessage(self.bus.node_id, namespace, room, "", 0, packet))

    def _is_local_sid(self, room: str | None, namespace: str) -> bool:
        return room is not None and self.eio_sid_from_sid(room, namespace) is not None

    def _deliver_local(self, namespace: str, room: str | None, skip: str | None,
                       packet: bytes) -> int:
        """Write one Socket.IO packet to every local participant of ``room``."""
        frame: bytes | None = None
        connections = self.fanout.connections
        others: list[str] = []
        delivered = 0
        for sid, eio_sid in self.get_participants(namespace, room):
            if sid == skip:
                continue
            conn = connections.get(eio_sid)
            if conn is None:
                others.append(eio_sid)
                continue
            if frame is None:
                frame = ws_frame(b"4" + packet)
            conn.write(frame)
            delivered += 1
        if others:
            self._spawn(self._send_stock(others, eio_packet.Packet(eio_packet.MESSAGE,
                                                                   packet.decode())))
        self._on_delivered(delivered + len(others))
        return delivered + len(others)

    async def _send_stock(self, eio_sids: list[str], pkt: eio_packet.Packet) -> None:
        await asyncio.gather(*(self.server._send_eio_packet(e, pkt) for e in eio_sids),
                             return_exceptions=True)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)  # held until done: nothing is left unowned
        task.add_done_callback(self._tasks.discard)

    def disconnect_remote(self, namespace: str, room: str) -> None:
        """Ask the other nodes to disconnect their sockets in ``room`` (e.g. a banned user)."""
        if self.bus is not None:
            self.bus.publish(BusMessage(self.bus.node_id, CONTROL_NS, room, "", 0,
                                        b"disconnect:" + namespace.encode()))

    async def _disconnect_room(self, namespace: str, room: str) -> None:
        for sid, _ in list(self.get_participants(namespace, room)):
            await self.server.disconnect(sid, namespace=namespace)

    def _from_bus(self, message: BusMessage) -> None:
        """A broadcast from another node: skip what nobody here needs, without decoding it."""
        if message.namespace == CONTROL_NS:
            command, _, namespace = message.packet.decode().partition(":")
            if command == "disconnect":
                self._spawn(self._disconnect_room(namespace, message.room))
            return
        namespace_rooms = self.rooms.get(message.namespace)
        room = message.room or None
        if namespace_rooms is None or (room is not None and room not in namespace_rooms):
            return
        if message.seq and self.remote_filter is not None and not self.remote_filter(
                message.room, message.seq):
            return
        self._deliver_local(message.namespace, room, message.skip_sid or None, message.packet)
