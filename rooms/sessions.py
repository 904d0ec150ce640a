"""Scheduled live sessions: a room open for a time window, hosted by one member, announced in a
linked chat channel.

``SessionGate`` decides joins from the known windows (pure, no I/O). ``Sessions`` schedules,
lists and cancels (REST), and its ``run`` loop is the scheduler: one reminder message per
session in the channel ``reminder_lead_s`` before the start, ``room:session`` events to the
channel, and the room closed at the end. Each step is marked once in the store
(``storage.rooms``) and the reminder message carries a fixed ``client_id``, so a reminder is
posted exactly once even when a node restarts between posting and marking.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from realtime.chat import can_post
from realtime.chat import room as channel_room
from realtime.errors import AppError
from realtime.identity import Principal
from storage.base import Conflict, MessageDraft, NotFound, new_id
from storage.rooms import RoomRecords, iso, public

log = logging.getLogger(__name__)
STAFF = ("moderator", "admin")
#: Who may schedule sessions they host (staff schedule for anyone and manage every session).
SCHEDULERS = ("member", *STAFF)
#: How long after its end a session's room still refuses joins (``session_ended``).
ENDED_GRACE_S = 3600.0
MAX_DURATION_S = 12 * 3600.0
MAX_AHEAD_S = 366 * 86400.0
#: The author of the reminder messages.
AUTHOR_ID, AUTHOR_NAME = "system:rooms", "Live sessions"


class SessionCreate(BaseModel):
    """``POST /api/v1/rooms/sessions``. ``room`` defaults to ``session-<id>``; ``host`` (staff
    only) schedules for someone else; times are ISO 8601 with a zone."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    channel: str = Field(min_length=1, max_length=64)
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    room: str | None = Field(default=None, min_length=1, max_length=64,
                             pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
    host: str | None = Field(default=None, min_length=1, max_length=128)
    host_name: str | None = Field(default=None, min_length=1, max_length=128)

    @model_validator(mode="after")
    def _window(self) -> SessionCreate:
        duration = (self.ends_at - self.starts_at).total_seconds()
        if duration <= 0:
            raise ValueError("ends_at must be after starts_at")
        if duration > MAX_DURATION_S:
            raise ValueError("a session lasts at most 12 hours")
        return self


class SessionQuery(BaseModel):
    """``GET /api/v1/rooms/sessions?channel=&limit=``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    channel: str | None = Field(default=None, min_length=1, max_length=64)
    limit: int = Field(default=50, ge=1, le=200)


@dataclass(frozen=True, slots=True)
class Window:
    """When a session's room is open, and who hosts it."""

    id: str
    room: str
    host_id: str
    starts_at: float
    ends_at: float

    @classmethod
    def of(cls, row: dict[str, Any]) -> Window:
        """From a stored session row."""
        return cls(row["id"], row["room"], row["host_id"], row["starts_at"], row["ends_at"])


class SessionGate:
    """Joins of session rooms: open from the start to the end; before the start only the host
    and staff enter; after the end (for ``ENDED_GRACE_S``) nobody. Rooms without a session
    are ad-hoc and always open."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.rooms: dict[str, list[Window]] = {}

    def replace(self, windows: Iterable[Window]) -> None:
        """The current windows (the scheduler reloads them from the store every tick)."""
        rooms: dict[str, list[Window]] = {}
        for window in windows:
            rooms.setdefault(window.room, []).append(window)
        self.rooms = rooms

    def put(self, window: Window) -> None:
        """Add or replace one window."""
        self.drop(window.id)
        self.rooms.setdefault(window.room, []).append(window)

    def drop(self, session_id: str) -> None:
        """Forget a (cancelled) session."""
        for room, windows in list(self.rooms.items()):
            kept = [w for w in windows if w.id != session_id]
            if kept:
                self.rooms[room] = kept
            else:
                del self.rooms[room]

    def ended(self) -> list[Window]:
        """Windows that are over (their rooms must be closed)."""
        now = self.clock()
        return [w for ws in self.rooms.values() for w in ws if w.ends_at <= now]

    def check(self, room: str, user_id: str, staff: bool) -> Window | None:
        """The session the join belongs to (None: an ad-hoc room), or refuse: ``forbidden``
        with reason ``session_not_started`` (``starts_at``, ``retry_after_ms``) or
        ``session_ended``."""
        windows = self.rooms.get(room)
        if not windows:
            return None
        now = self.clock()
        for window in windows:
            if window.starts_at <= now < window.ends_at:
                return window
        upcoming = sorted((w for w in windows if w.starts_at > now), key=lambda w: w.starts_at)
        if upcoming:
            first = upcoming[0]
            if staff or user_id == first.host_id:
                return first
            raise AppError("forbidden", "the session has not started yet", room=room,
                           reason="session_not_started", session_id=first.id,
                           starts_at=iso(first.starts_at),
                           retry_after_ms=int((first.starts_at - now) * 1000))
        last = max(windows, key=lambda w: w.ends_at)
        if now - last.ends_at < ENDED_GRACE_S:
            raise AppError("forbidden", "the session is over", room=room,
                           reason="session_ended", session_id=last.id)
        return None


CloseRoom = Callable[[str, str, dict[str, Any]], Awaitable[int]]


class Sessions:
    """Scheduling (REST) and the scheduler loop, over the plugin context."""

    def __init__(self, ctx: Any, records: RoomRecords, gate: SessionGate, close_room: CloseRoom,
                 reminder_lead_s: float, interval_s: float) -> None:
        self.ctx = ctx
        self.records = records
        self.gate = gate
        self.close_room = close_room
        self.reminder_lead_s = reminder_lead_s
        self.interval_s = interval_s
        self.clock = gate.clock
        self._wake = asyncio.Event()
        #: Ended sessions whose room this node closed already.
        self._closed: set[str] = set()

    # REST --------------------------------------------------------------------------------------
    async def schedule(self, who: Principal, body: SessionCreate) -> dict[str, Any]:
        """Store a session the caller hosts (staff: anyone); announce it to the channel."""
        if not who.has_any(SCHEDULERS):
            raise AppError("forbidden", "members schedule sessions")
        staff = who.has_any(STAFF)
        host_id, host_name = who.sub, who.name
        if body.host is not None and body.host != who.sub:
            if not staff:
                raise AppError("forbidden", "only moderators and admins schedule for others",
                               reason="not_staff")
            host_id, host_name = body.host, body.host_name or body.host
        chat = self.ctx.extra["chat"]
        channel = await chat.channel(body.channel)
        if not staff and not can_post(channel, who):
            raise AppError("forbidden", f"you may not post in {body.channel}")
        starts, ends = body.starts_at.timestamp(), body.ends_at.timestamp()
        now = self.clock()
        if ends <= now:
            raise AppError("invalid", "the session would be over already")
        if starts > now + MAX_AHEAD_S:
            raise AppError("invalid", "schedule at most a year ahead")
        session_id = new_id()
        try:
            row = await self.records.create(
                room=body.room or f"session-{session_id}", title=body.title,
                channel_id=channel.id, host_id=host_id, host_name=host_name, starts_at=starts,
                ends_at=ends, created_by=who.sub, description=body.description,
                session_id=session_id)
        except Conflict as error:
            raise AppError("conflict", str(error), reason="room_taken") from None
        self.gate.put(Window.of(row))
        await self.ctx.audit(who.sub, "session_schedule", "room_session", row["id"],
                             details={"room": row["room"], "channel": row["channel_id"],
                                      "host": host_id, "starts_at": iso(starts),
                                      "ends_at": iso(ends)})
        await self._announce(row, "scheduled")
        self._wake.set()
        return public(row)

    async def listing(self, who: Principal, query: SessionQuery) -> list[dict[str, Any]]:
        """Sessions not over yet, in the channels the caller may read."""
        rows = await self.records.upcoming(self.clock(), channel_id=query.channel,
                                           limit=query.limit)
        chat, readable = self.ctx.extra["chat"], {}
        for channel_id in {r["channel_id"] for r in rows}:
            try:
                await chat.readable(channel_id, who)
                readable[channel_id] = True
            except AppError:
                readable[channel_id] = False
        return [public(r) for r in rows if readable[r["channel_id"]]]

    async def cancel(self, who: Principal, session_id: str) -> dict[str, Any]:
        """Cancel (its host or creator; staff any); a running session's room closes."""
        try:
            row = await self.records.get(session_id)
        except NotFound:
            raise AppError("not_found", "no such session", session_id=session_id) from None
        if who.sub not in (row["host_id"], row["created_by"]) and not who.has_any(STAFF):
            raise AppError("forbidden", "only the host, the creator or staff cancel a session",
                           reason="not_host")
        try:
            row = await self.records.cancel(session_id, who.sub)
        except Conflict as error:
            raise AppError("conflict", str(error), session_id=session_id) from None
        self.gate.drop(session_id)
        await self.close_room(row["room"], "session_cancelled", {"session_id": session_id})
        await self.ctx.audit(who.sub, "session_cancel", "room_session", session_id,
                             details={"room": row["room"]})
        await self._announce(row, "cancelled")
        return public(row)

    # scheduler ---------------------------------------------------------------------------------
    async def run(self) -> None:
        """The background worker: a tick every ``interval_s`` (sooner after a schedule)."""
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("session scheduler tick failed")
            self._wake.clear()
            try:
                async with asyncio.timeout(self.interval_s):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def tick(self) -> None:
        """Reload the windows; remind, open and close what is due."""
        now = self.clock()
        self.gate.replace(Window.of(r) for r in await self.records.upcoming(
            now - ENDED_GRACE_S, limit=10_000))
        live = {w.room for ws in self.gate.rooms.values() for w in ws
                if w.starts_at <= now < w.ends_at}
        ended = [w for w in self.gate.ended() if w.id not in self._closed]
        self._closed &= {w.id for w in self.gate.ended()}
        for window in ended:
            self._closed.add(window.id)
            if window.room not in live:  # a back-to-back session keeps the room
                await self.close_room(window.room, "session_ended", {"session_id": window.id})
        for row in await self.records.due("reminded_at", now + self.reminder_lead_s):
            await self._remind(row, now)
        for row in await self.records.due("opened_at", now):
            # one that started and ended while no node ran is marked without an event
            if await self.records.mark(row["id"], "opened_at") and row["ends_at"] > now:
                await self._announce(row, "open")
        for row in await self.records.due("closed_at", now):
            if await self.records.mark(row["id"], "closed_at"):
                await self._announce(row, "ended")

    async def _remind(self, row: dict[str, Any], now: float) -> None:
        if row["starts_at"] <= now:  # missed (the server was down): the open event says it
            await self.records.mark(row["id"], "reminded_at")
            return
        minutes = max(1, round((row["starts_at"] - now) / 60))
        text = (f"Reminder: the live session \u201c{row['title']}\u201d with {row['host_name']} "
                f"starts in {minutes} minute{'s' if minutes != 1 else ''} "
                f"({iso(row['starts_at'])}). Join the room {row['room']}.")
        try:
            # The fixed client_id makes the store return the first message on a repeat.
            message = await self.ctx.extra["chat"].store_and_publish(MessageDraft(
                row["channel_id"], AUTHOR_ID, AUTHOR_NAME, text,
                f"room-session:{row['id']}:reminder"))
        except AppError as error:  # the channel was deleted: skip, once
            log.warning("session reminder not posted", extra={"session": row["id"],
                                                               "code": error.code})
            await self.records.mark(row["id"], "reminded_at")
            return
        if await self.records.mark(row["id"], "reminded_at", message["id"]):
            await self._announce(row, "reminder")

    async def _announce(self, row: dict[str, Any], state: str) -> None:
        """``room:session`` to the linked channel's sockets."""
        await self.ctx.emit("room:session", {"state": state, "session": public(row)},
                            to=channel_room(row["channel_id"]), namespace="/")
