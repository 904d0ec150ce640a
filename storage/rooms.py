"""Rooms records on the embedded store: scheduled live sessions.

A session is a room open for a time window (``starts_at`` .. ``ends_at``, UTC epoch seconds),
hosted by one member and linked to a chat channel. The scheduler marks each lifecycle step
(``reminded_at``, ``opened_at``, ``closed_at``) once, with a conditional update on the writer
thread, so every step happens once even with a restart in between.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any, Literal

from storage.base import Conflict, NotFound, new_id, now_iso
from storage.sqlite import SQLiteStore

Step = Literal["reminded_at", "opened_at", "closed_at"]
STEPS: tuple[Step, ...] = ("reminded_at", "opened_at", "closed_at")


def iso(epoch: float) -> str:
    """Epoch seconds as the store's ISO 8601 (UTC, milliseconds, ``Z``)."""
    return (datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"))


def public(row: dict[str, Any]) -> dict[str, Any]:
    """A session as clients see it (ISO times)."""
    return {"id": row["id"], "room": row["room"], "title": row["title"],
            "description": row["description"], "channel": row["channel_id"],
            "host": {"id": row["host_id"], "name": row["host_name"]},
            "starts_at": iso(row["starts_at"]), "ends_at": iso(row["ends_at"]),
            "status": row["status"], "created_by": row["created_by"],
            "created_at": row["created_at"], "cancelled_by": row["cancelled_by"],
            "cancelled_at": row["cancelled_at"], "reminded_at": row["reminded_at"],
            "opened_at": row["opened_at"], "closed_at": row["closed_at"]}


def _rows(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...] = ()
          ) -> list[dict[str, Any]]:
    cursor = conn.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _one(conn: sqlite3.Connection, session_id: str) -> dict[str, Any]:
    rows = _rows(conn, "SELECT * FROM room_sessions WHERE id = ?", (session_id,))
    if not rows:
        raise NotFound(f"no session {session_id}")
    return rows[0]


def _insert(conn: sqlite3.Connection, row: dict[str, Any]) -> dict[str, Any]:
    clash = conn.execute("SELECT id FROM room_sessions WHERE room = ? AND status = 'scheduled' "
                         "AND starts_at < ? AND ends_at > ? LIMIT 1",
                         (row["room"], row["ends_at"], row["starts_at"])).fetchone()
    if clash is not None:
        raise Conflict(f"room {row['room']} already has session {clash[0]} at that time")
    columns = ", ".join(row)
    conn.execute(f"INSERT INTO room_sessions ({columns}) VALUES ({', '.join('?' * len(row))})",
                 tuple(row.values()))
    return _one(conn, row["id"])


class RoomRecords:
    """Session persistence on top of the SQLite store's writer and readers."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store

    async def create(self, *, room: str, title: str, channel_id: str, host_id: str,
                     host_name: str, starts_at: float, ends_at: float, created_by: str,
                     description: str = "", session_id: str | None = None) -> dict[str, Any]:
        """Store a scheduled session; ``Conflict`` if its room already has one overlapping."""
        return await self.store.run_write(_insert, {
            "id": session_id or new_id(), "room": room, "title": title,
            "description": description, "channel_id": channel_id, "host_id": host_id,
            "host_name": host_name, "starts_at": starts_at, "ends_at": ends_at,
            "created_by": created_by, "created_at": now_iso()})

    async def get(self, session_id: str) -> dict[str, Any]:
        """One session; ``NotFound`` otherwise."""
        return await self.store.run_read(_one, session_id)

    async def upcoming(self, now: float, *, channel_id: str | None = None,
                       include_cancelled: bool = False, limit: int = 100
                       ) -> list[dict[str, Any]]:
        """Sessions not over yet (running or to come), soonest first."""
        sql = "SELECT * FROM room_sessions WHERE ends_at > ?"
        params: list[Any] = [now]
        if not include_cancelled:
            sql += " AND status = 'scheduled'"
        if channel_id is not None:
            sql += " AND channel_id = ?"
            params.append(channel_id)
        return await self.store.run_read(_rows, sql + " ORDER BY starts_at LIMIT ?",
                                         (*params, limit))

    async def of_room(self, room: str, since: float) -> list[dict[str, Any]]:
        """The room's scheduled (not cancelled) sessions ending after ``since``."""
        return await self.store.run_read(_rows, "SELECT * FROM room_sessions WHERE room = ? AND "
                                         "status = 'scheduled' AND ends_at > ? "
                                         "ORDER BY starts_at", (room, since))

    async def cancel(self, session_id: str, by: str) -> dict[str, Any]:
        """Cancel a session that has not ended; ``Conflict`` if already cancelled or over."""
        def write(conn: sqlite3.Connection) -> dict[str, Any]:
            row = _one(conn, session_id)
            if row["status"] == "cancelled":
                raise Conflict("already cancelled")
            if row["closed_at"] is not None:
                raise Conflict("the session is over")
            conn.execute("UPDATE room_sessions SET status = 'cancelled', cancelled_by = ?, "
                         "cancelled_at = ? WHERE id = ?", (by, now_iso(), session_id))
            return _one(conn, session_id)
        return await self.store.run_write(write)

    async def due(self, step: Step, before: float) -> list[dict[str, Any]]:
        """Scheduled sessions whose ``step`` is not done and whose trigger time (reminder and
        open: ``starts_at``; close: ``ends_at``) is at or before ``before``."""
        column = "ends_at" if step == "closed_at" else "starts_at"
        return await self.store.run_read(_rows, f"SELECT * FROM room_sessions WHERE status = "
                                         f"'scheduled' AND {step} IS NULL AND {column} <= ? "
                                         f"ORDER BY {column} LIMIT 100", (before,))

    async def mark(self, session_id: str, step: Step, message_id: str | None = None) -> bool:
        """Record ``step`` as done; False if it already was (another node or an earlier run)."""
        if step not in STEPS:
            raise ValueError(step)

        def write(conn: sqlite3.Connection) -> bool:
            extra = ", reminder_message_id = ?" if step == "reminded_at" else ""
            params: tuple[Any, ...] = (now_iso(), message_id) if extra else (now_iso(),)
            return conn.execute(f"UPDATE room_sessions SET {step} = ?{extra} WHERE id = ? AND "
                                f"{step} IS NULL", (*params, session_id)).rowcount == 1
        return await self.store.run_write(write)


async def seed_scheduled_session(store: Any, session: Any) -> bool:
    """The seed packs' hook (``storage.seed.SESSION_HOOK``): store ``session`` (a
    ``storage.seed.ScheduledSession``) linked to ``general``, idempotent on its id. Returns
    True if stored now; False if it exists or the store keeps no room records."""
    if not isinstance(store, SQLiteStore):
        return False
    records = RoomRecords(store)
    try:
        await records.get(session.id)
        return False
    except NotFound:
        pass
    starts = datetime.fromisoformat(session.starts_at.replace("Z", "+00:00")).timestamp()
    try:
        await records.create(room=session.room, title=session.title, channel_id="general",
                             host_id=session.host, host_name=session.host,
                             starts_at=starts, ends_at=starts + session.duration_min * 60,
                             created_by="seed", description=session.description,
                             session_id=session.id)
    except Conflict:
        return False
    return True
