"""Support inbox records on the embedded store (``0005_support.sql``).

- ``support_profiles``: what routing may know of a member (roles, persona, language), refreshed
  from their token each time they write to support.
- ``support_conversations``: one row per conversation the bridge has seen: its SLA policy and
  due times (epoch seconds), first response / resolution times, the routing rule that applied and
  the current assignee and team (the analytics' facts). The row is created once, together with
  the routing job, so a conversation is routed once.
- ``support_breaches``: one row per SLA breach, unique per (conversation, kind, due time), written
  in the same transaction as its outgoing-webhook job: a breach is recorded, escalated and posted
  once, even across restarts. ``announced`` is set once the ``/inbox`` event went out.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import orjson

from storage.base import new_id, now_iso
from storage.chatwoot import _first, _insert, _rows, _update
from storage.sqlite import SQLiteStore

KINDS = ("first_response", "next_response", "resolution")


def _decode(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is not None:
        for name in ("breached", "roles"):
            if isinstance(row.get(name), str):
                row[name] = orjson.loads(row[name])
    return row


class SupportRecords:
    """Routing, SLA and analytics persistence (see the module docstring)."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store

    # profiles ---------------------------------------------------------------------------------
    async def save_profile(self, user_id: str, roles: list[str], persona: str | None,
                           language: str | None) -> None:
        """Remember the member's roles, persona and language."""
        await self.store.run_write(lambda conn: conn.execute(
            "INSERT INTO support_profiles (user_id, roles, persona, language, updated_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET roles = excluded.roles, "
            "persona = excluded.persona, language = excluded.language, "
            "updated_at = excluded.updated_at",
            (user_id, orjson.dumps(sorted(roles)).decode(), persona, language, now_iso())))

    async def profile(self, user_id: str) -> dict[str, Any] | None:
        """A member's profile, or None."""
        return _decode(await self.store.run_read(
            _first, "SELECT * FROM support_profiles WHERE user_id = ?", (user_id,)))

    # conversations ----------------------------------------------------------------------------
    async def track(self, row: dict[str, Any], route: bool) -> bool:
        """Start tracking a conversation (``row``: its first SLA state) and, with ``route``,
        queue its routing job; both once. True if it was new."""
        def put(conn: sqlite3.Connection) -> bool:
            if _first(conn, "SELECT 1 AS x FROM support_conversations WHERE conversation_id = ?",
                      (row["conversation_id"],)) is not None:
                return False
            _insert(conn, "support_conversations", {
                **row, "breached": orjson.dumps(row.get("breached", [])).decode(),
                "updated_at": now_iso()})
            if route:
                _insert(conn, "chatwoot_outbox", {
                    "order_key": f"conversation:{row['conversation_id']}", "kind": "route",
                    "payload": {"conversation_id": row["conversation_id"]},
                    "next_attempt_at": time.time(), "created_at": time.time()})
            return True
        return await self.store.run_write(put)

    async def state(self, conversation_id: int) -> dict[str, Any] | None:
        """One conversation's routing/SLA row."""
        return _decode(await self.store.run_read(
            _first, "SELECT * FROM support_conversations WHERE conversation_id = ?",
            (conversation_id,)))

    async def states(self, ids: list[int]) -> dict[int, dict[str, Any]]:
        """Several conversations' rows by id."""
        if not ids:
            return {}
        marks = ", ".join("?" * len(ids))
        rows = await self.store.run_read(
            _rows, f"SELECT * FROM support_conversations WHERE conversation_id IN ({marks})",
            tuple(ids))
        return {r["conversation_id"]: _decode(r) for r in rows}  # type: ignore[misc]

    async def update(self, conversation_id: int, changes: dict[str, Any]) -> dict[str, Any] | None:
        """Apply ``changes`` to a tracked conversation; the new row (None if untracked)."""
        if isinstance(changes.get("breached"), list):
            changes = {**changes, "breached": orjson.dumps(changes["breached"]).decode()}

        def put(conn: sqlite3.Connection) -> dict[str, Any] | None:
            if changes:
                _update(conn, "support_conversations", "conversation_id", conversation_id,
                        {**changes, "updated_at": now_iso()})
            return _first(conn, "SELECT * FROM support_conversations WHERE "
                          "conversation_id = ?", (conversation_id,))
        return _decode(await self.store.run_write(put))

    # breaches ---------------------------------------------------------------------------------
    async def record_breaches(self, now: float, webhook: bool) -> int:
        """Record every due target not yet breached (and its webhook job); how many."""
        def put(conn: sqlite3.Connection) -> int:
            count = 0
            for kind in KINDS:
                column = f"{kind}_due_at"
                for conv in _rows(conn, f"SELECT * FROM support_conversations c WHERE "
                                  f"{column} IS NOT NULL AND {column} <= ? AND NOT EXISTS "
                                  "(SELECT 1 FROM support_breaches b WHERE b.conversation_id = "
                                  f"c.conversation_id AND b.kind = ? AND b.due_at = c.{column})",
                                  (now, kind)):
                    breach = {"id": new_id(), "conversation_id": conv["conversation_id"],
                              "kind": kind, "policy": conv["policy"] or "",
                              "due_at": conv[column], "breached_at": now,
                              **{k: conv[k] for k in ("assignee_id", "assignee_name",
                                                      "team_id", "team_name")}}
                    cursor = conn.execute(
                        "INSERT OR IGNORE INTO support_breaches (id, conversation_id, kind, "
                        "policy, due_at, breached_at, assignee_id, assignee_name, team_id, "
                        "team_name) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", tuple(breach.values()))
                    breached = orjson.loads(conv["breached"])
                    if kind not in breached:
                        breached.append(kind)
                        _update(conn, "support_conversations", "conversation_id",
                                conv["conversation_id"], {"updated_at": now_iso(),
                                "breached": orjson.dumps(breached).decode()})
                    if cursor.rowcount != 1:  # recorded by another process meanwhile
                        continue
                    count += 1
                    if webhook:
                        _insert(conn, "chatwoot_outbox", {
                            "order_key": "sla:" + breach["id"], "kind": "sla_webhook",
                            "payload": {"breach_id": breach["id"]},
                            "next_attempt_at": now, "created_at": now})
            return count
        return await self.store.run_write(put)

    async def unannounced(self, limit: int = 100) -> list[dict[str, Any]]:
        """Breaches whose ``/inbox`` event has not gone out yet, oldest first."""
        return await self.store.run_read(_rows, "SELECT * FROM support_breaches WHERE "
                                         "announced = 0 ORDER BY breached_at LIMIT ?", (limit,))

    async def mark_announced(self, breach_id: str) -> bool:
        """Compare-and-set: True only the first time."""
        return await self.store.run_write(lambda conn: conn.execute(
            "UPDATE support_breaches SET announced = 1 WHERE id = ? AND announced = 0",
            (breach_id,)).rowcount == 1)

    async def breach(self, breach_id: str) -> dict[str, Any] | None:
        """One breach."""
        return await self.store.run_read(_first, "SELECT * FROM support_breaches WHERE id = ?",
                                         (breach_id,))

    # analytics --------------------------------------------------------------------------------
    async def opened_between(self, start: float, end: float) -> list[dict[str, Any]]:
        """Conversations opened in ``[start, end)``."""
        return await self.store.run_read(_rows, "SELECT * FROM support_conversations WHERE "
                                         "opened_at >= ? AND opened_at < ?", (start, end))

    async def breaches_between(self, start: float, end: float) -> list[dict[str, Any]]:
        """Breaches that happened in ``[start, end)``."""
        return await self.store.run_read(_rows, "SELECT * FROM support_breaches WHERE "
                                         "breached_at >= ? AND breached_at < ?", (start, end))
