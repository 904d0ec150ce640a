"""Presence pushes: coalesced per tick, sent only to the sockets that asked for them.

Announcing every status change to the whole namespace costs N frames per change, so N² frames
when N users connect (10,000 users: 100 million frames). Here a change is only recorded (the
last status of a user within a tick wins) and once per tick (``GIGVORA_PRESENCE_TICK_S``) the
changes go out according to each socket's mode (``presence:subscribe``, default
``GIGVORA_PRESENCE_DEFAULT``):

* ``all``      — the contract's ``presence`` event, one per changed user, to every such socket.
  The packets of one tick are encoded once and written to each recipient as one buffer.
* ``batch``    — one ``presence:batch`` ``{"users": [...]}`` frame per tick, whole namespace.
* ``channels`` — one ``presence:batch`` ``{"channel", "users": [...]}`` frame per tick and joined
  channel, holding only the users seen in that channel (those who joined it since they came
  online); on joining a channel the socket first gets that channel's current list.
* ``none``     — no pushes (``presence:list`` still answers).

Each mode is a Socket.IO room, so the bus carries the pushes to the other nodes unchanged.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Literal

import socketio

Mode = Literal["all", "batch", "channels", "none"]
NS = "/"
ROOM_ALL = "presence:all"
ROOM_BATCH = "presence:batch"


def channel_room(channel_id: str) -> str:
    """The room of the channel-scoped presence subscribers of one channel."""
    return "presence:ch:" + channel_id


@dataclass(slots=True)
class _Seen:
    """A user seen in channels: their last presence payload and those channels."""

    payload: dict[str, Any]
    channels: set[str] = field(default_factory=set)


class PresenceFeed:
    """Records presence changes and pushes them once per tick (see the module docstring)."""

    def __init__(self, sio: socketio.AsyncServer, tick_s: float, default: Mode) -> None:
        self.sio = sio
        self.tick_s = tick_s
        self.default: Mode = default
        #: Only sockets whose mode differs from the default (most sockets cost nothing here).
        self.modes: dict[str, Mode] = {}
        self.pending: dict[str, dict[str, Any]] = {}
        self.seen: dict[str, _Seen] = {}
        self.members: dict[str, set[str]] = {}
        self._channel_pending: dict[str, dict[str, dict[str, Any]]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._flushes: set[asyncio.Task[None]] = set()
        self.ticks = 0

    # sockets -------------------------------------------------------------------------------
    def mode(self, sid: str) -> Mode:
        """The socket's presence mode."""
        return self.modes.get(sid, self.default)

    async def attach(self, sid: str) -> None:
        """A new socket gets the default mode."""
        await self._enter(sid, self.default)

    async def subscribe(self, sid: str, mode: Mode, channels: list[str]) -> None:
        """Switch a socket's mode; ``channels`` are the channel rooms it is in now."""
        old = self.mode(sid)
        if old == mode:
            return
        if old == "channels":
            for channel in channels:
                await self.sio.leave_room(sid, channel_room(channel), namespace=NS)
        elif old != "none":
            await self.sio.leave_room(sid, ROOM_ALL if old == "all" else ROOM_BATCH,
                                      namespace=NS)
        if mode == self.default:
            self.modes.pop(sid, None)
        else:
            self.modes[sid] = mode
        await self._enter(sid, mode)
        if mode == "channels":
            for channel in channels:
                await self._enter_channel(sid, channel)

    async def _enter(self, sid: str, mode: Mode) -> None:
        if mode in ("all", "batch"):
            await self.sio.enter_room(sid, ROOM_ALL if mode == "all" else ROOM_BATCH,
                                      namespace=NS)

    async def _enter_channel(self, sid: str, channel: str) -> None:
        await self.sio.enter_room(sid, channel_room(channel), namespace=NS)
        users = [self.seen[uid].payload for uid in sorted(self.members.get(channel, ()))]
        await self.sio.emit("presence:batch", {"channel": channel, "users": users}, to=sid,
                            namespace=NS)

    def detach(self, sid: str) -> None:
        """Forget a closed socket (its rooms are left by python-socketio)."""
        self.modes.pop(sid, None)

    # channels ------------------------------------------------------------------------------
    async def joined(self, sid: str, user: dict[str, Any], status: str, channel: str) -> None:
        """``user`` (online with ``status``) joined ``channel`` on socket ``sid``."""
        seen = self.seen.get(user["id"])
        if seen is None:
            seen = self.seen[user["id"]] = _Seen({"user": user, "status": status})
        if channel not in seen.channels:
            seen.channels.add(channel)
            self.members.setdefault(channel, set()).add(user["id"])
            self._channel_change(channel, seen.payload)
        if self.mode(sid) == "channels":
            await self._enter_channel(sid, channel)

    async def left(self, sid: str, channel: str) -> None:
        """Socket ``sid`` left ``channel``: stop its channel-scoped pushes there."""
        if self.mode(sid) == "channels":
            await self.sio.leave_room(sid, channel_room(channel), namespace=NS)

    # changes -------------------------------------------------------------------------------
    def announce(self, user: dict[str, Any], status: str) -> None:
        """Record a change; it goes out with the next tick."""
        payload = {"user": user, "status": status}
        self.pending[user["id"]] = payload
        seen = self.seen.get(user["id"])
        if seen is not None:
            seen.payload = payload
        self._schedule()

    def _channel_change(self, channel: str, payload: dict[str, Any]) -> None:
        self._channel_pending.setdefault(channel, {})[payload["user"]["id"]] = payload
        self._schedule()

    def _schedule(self) -> None:
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.tick_s, self._tick)

    def _tick(self) -> None:
        self._timer = None
        task = asyncio.get_running_loop().create_task(self.flush())
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def flush(self) -> None:
        """Send what changed since the last tick."""
        changes, self.pending = self.pending, {}
        by_channel, self._channel_pending = self._channel_pending, {}
        self.ticks += 1
        if changes:
            payloads = list(changes.values())
            await emit_many(self.sio, "presence", payloads, ROOM_ALL)
            await self.sio.emit("presence:batch", {"users": payloads}, to=ROOM_BATCH,
                                namespace=NS)
        for uid, payload in changes.items():
            seen = self.seen.get(uid)
            if seen is None:
                continue
            for channel in seen.channels:
                by_channel.setdefault(channel, {})[uid] = payload
            if payload["status"] == "offline":
                self._forget(uid, seen)
        for channel, users in by_channel.items():
            await self.sio.emit("presence:batch", {"channel": channel,
                                                   "users": list(users.values())},
                                to=channel_room(channel), namespace=NS)

    def _forget(self, uid: str, seen: _Seen) -> None:
        del self.seen[uid]
        for channel in seen.channels:
            members = self.members.get(channel)
            if members is not None:
                members.discard(uid)
                if not members:
                    del self.members[channel]

    async def aclose(self) -> None:
        """Stop ticking; wait for a running flush."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._flushes:
            await asyncio.gather(*self._flushes, return_exceptions=True)


async def emit_many(sio: socketio.AsyncServer, event: str, payloads: list[Any],
                    room: str) -> None:
    """Emit ``event`` once per payload to ``room``: through the fan-out manager's multi-packet
    path when it has one (one buffer per recipient), else one emit each."""
    many = getattr(sio.manager, "emit_many", None)
    if many is not None:
        await many(event, payloads, NS, room)
        return
    for payload in payloads:
        await sio.emit(event, payload, to=room, namespace=NS)
