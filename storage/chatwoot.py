"""Chatwoot bridge records on the embedded store (``0003_chatwoot.sql``).

- ``chatwoot_contacts``: a Gigvora member ↔ the Chatwoot contact, its contact_inbox ``source_id``
  and the member's support conversation (display id).
- ``chatwoot_conversations`` / ``chatwoot_messages``: the mirror the agents' inbox and the members'
  history read. Messages the bridge posts get a local id first; Chatwoot's id is attached when the
  post succeeds or its webhook echo arrives (whichever comes first), so a message exists once.
  ``agents_notified`` / ``member_notified`` are set by compare-and-set, so each audience is told
  about a message exactly once, whichever path tells it.
- ``chatwoot_deliveries``: webhook ``X-Chatwoot-Delivery`` ids with an expiry (replays are refused)
  and the raw body until it is processed (processing happens after the 2xx, and survives a crash).
- ``chatwoot_outbox``: the durable outbound queue. Only the oldest pending job of each
  ``order_key`` (one per conversation / member) can be claimed, and a claim is a lease, so order
  per conversation holds even with several workers or processes.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import orjson

from storage.base import NotFound, now_iso
from storage.sqlite import SQLiteStore

JSON_COLUMNS = {"contact", "assignee", "team", "labels", "attachments", "payload"}
BOOL_COLUMNS = {"private", "agents_notified", "member_notified"}
CONVERSATION_FIELDS = ("inbox_id", "user_id", "contact_id", "contact", "status", "assignee",
                       "team", "labels", "priority", "snoozed_until", "created_at",
                       "last_activity_at", "source_updated_at")


def _decode(name: str, value: Any) -> Any:
    if name in JSON_COLUMNS and value is not None:
        return orjson.loads(value)
    if name in BOOL_COLUMNS:
        return bool(value)
    return value


def _encode(name: str, value: Any) -> Any:
    if name in JSON_COLUMNS and value is not None:
        return orjson.dumps(value).decode()
    if name in BOOL_COLUMNS:
        return int(bool(value))
    return value


def _rows(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...] = ()
          ) -> list[dict[str, Any]]:
    cursor = conn.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [{n: _decode(n, v) for n, v in zip(names, row, strict=True)}
            for row in cursor.fetchall()]


def _first(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...] = ()
           ) -> dict[str, Any] | None:
    rows = _rows(conn, sql, params)
    return rows[0] if rows else None


def _insert(conn: sqlite3.Connection, table: str, row: dict[str, Any]) -> int:
    columns = ", ".join(row)
    marks = ", ".join("?" * len(row))
    cursor = conn.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})",
                          tuple(_encode(k, v) for k, v in row.items()))
    return int(cursor.lastrowid or 0)


def _update(conn: sqlite3.Connection, table: str, key: str, value: Any,
            changes: dict[str, Any]) -> int:
    assignments = ", ".join(f"{k} = ?" for k in changes)
    cursor = conn.execute(f"UPDATE {table} SET {assignments} WHERE {key} = ?",
                          (*(_encode(k, v) for k, v in changes.items()), value))
    return cursor.rowcount


class ChatwootRecords:
    """The bridge's persistence (see the module docstring)."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store

    # contacts ---------------------------------------------------------------------------------
    async def contact_for_user(self, user_id: str) -> dict[str, Any] | None:
        """The member's Chatwoot mapping, or None."""
        return await self.store.run_read(_first, "SELECT * FROM chatwoot_contacts WHERE "
                                         "user_id = ?", (user_id,))

    async def user_for_contact(self, contact_id: int) -> str | None:
        """The member mapped to a Chatwoot contact, or None."""
        row = await self.store.run_read(_first, "SELECT user_id FROM chatwoot_contacts WHERE "
                                        "contact_id = ?", (contact_id,))
        return row["user_id"] if row else None

    async def save_contact(self, row: dict[str, Any]) -> dict[str, Any]:
        """Create or update a member's mapping (``user_id`` is the key)."""
        def put(conn: sqlite3.Connection) -> dict[str, Any]:
            now = now_iso()
            if _first(conn, "SELECT 1 AS x FROM chatwoot_contacts WHERE user_id = ?",
                      (row["user_id"],)) is None:
                _insert(conn, "chatwoot_contacts", {**row, "created_at": now,
                                                    "updated_at": now})
            else:
                _update(conn, "chatwoot_contacts", "user_id", row["user_id"],
                        {**{k: v for k, v in row.items() if k != "user_id"},
                         "updated_at": now})
            return _required(conn, "chatwoot_contacts", "user_id", row["user_id"])
        return await self.store.run_write(put)

    async def link_conversation(self, user_id: str, conversation_id: int | None) -> None:
        """Make ``conversation_id`` the member's support conversation (None: forget it) and
        attach the mirrored conversation and its messages to the member."""
        def link(conn: sqlite3.Connection) -> None:
            _update(conn, "chatwoot_contacts", "user_id", user_id,
                    {"conversation_id": conversation_id, "updated_at": now_iso()})
            if conversation_id is None:
                return
            conn.execute("UPDATE chatwoot_conversations SET user_id = ? WHERE id = ?",
                         (user_id, conversation_id))
            conn.execute("UPDATE chatwoot_messages SET user_id = ? WHERE conversation_id = ? "
                         "AND user_id IS NULL", (user_id, conversation_id))
        await self.store.run_write(link)

    # conversations ----------------------------------------------------------------------------
    async def upsert_conversation(self, row: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Store a conversation snapshot unless a newer one is stored (``source_updated_at``,
        Chatwoot's ``updated_at``); a known member link is never cleared. Returns the stored
        row and whether it changed."""
        def put(conn: sqlite3.Connection) -> tuple[dict[str, Any], bool]:
            old = _first(conn, "SELECT * FROM chatwoot_conversations WHERE id = ?",
                         (row["id"],))
            fields = {k: row[k] for k in CONVERSATION_FIELDS if k in row}
            if old is None:
                _insert(conn, "chatwoot_conversations", {"id": row["id"], **fields,
                                                         "updated_at": now_iso()})
            elif fields.get("source_updated_at", 0) >= old["source_updated_at"]:
                if fields.get("user_id") is None:
                    fields.pop("user_id", None)
                _update(conn, "chatwoot_conversations", "id", row["id"],
                        {**fields, "updated_at": now_iso()})
            else:
                return old, False
            new = _required(conn, "chatwoot_conversations", "id", row["id"])
            return new, old is None or _differs(old, new)
        return await self.store.run_write(put)

    async def conversation(self, conversation_id: int) -> dict[str, Any] | None:
        """One mirrored conversation, or None."""
        return await self.store.run_read(_first, "SELECT * FROM chatwoot_conversations "
                                         "WHERE id = ?", (conversation_id,))

    async def conversations(self, *, status: str | None = None, user_id: str | None = None,
                            limit: int = 50) -> list[dict[str, Any]]:
        """Mirrored conversations, most recently active first."""
        where, params = ["1 = 1"], []
        if status is not None:
            where.append("status = ?")
            params.append(status)
        if user_id is not None:
            where.append("user_id = ?")
            params.append(user_id)
        sql = (f"SELECT * FROM chatwoot_conversations WHERE {' AND '.join(where)} "
               "ORDER BY last_activity_at DESC, id DESC LIMIT ?")
        return await self.store.run_read(_rows, sql, (*params, limit))

    # messages ---------------------------------------------------------------------------------
    async def queue_message(self, row: dict[str, Any], order_key: str
                            ) -> tuple[dict[str, Any], bool]:
        """Store a message the bridge will post and its outbound job, in one transaction.
        A repeated ``client_id`` (same origin and author) returns the first message."""
        def put(conn: sqlite3.Connection) -> tuple[dict[str, Any], bool]:
            if row.get("client_id"):
                found = _first(conn, "SELECT * FROM chatwoot_messages WHERE origin = ? AND "
                               "author_id = ? AND client_id = ?",
                               (row["origin"], row["author_id"], row["client_id"]))
                if found is not None:
                    return found, False
            now = now_iso()
            _insert(conn, "chatwoot_messages", {**row, "created_at": now, "updated_at": now})
            _insert(conn, "chatwoot_outbox", {
                "order_key": order_key, "kind": "message", "payload": {"message_id": row["id"]},
                "next_attempt_at": time.time(), "created_at": time.time()})
            return _message(conn, row["id"]), True
        return await self.store.run_write(put)

    async def message(self, message_id: str) -> dict[str, Any] | None:
        """One message by local id."""
        return await self.store.run_read(_first, "SELECT * FROM chatwoot_messages WHERE id = ?",
                                         (message_id,))

    async def mirror_message(self, row: dict[str, Any], echo_of: str | None = None
                             ) -> tuple[dict[str, Any], bool]:
        """Store a message seen in a webhook. An echo of a message the bridge posted
        (``echo_of``, its local id) or a message already mirrored (same Chatwoot id) is
        updated, not copied; returns ``(message, created)``."""
        stored, created, _ = await self.mirror_message_changes(row, echo_of)
        return stored, created

    async def mirror_message_changes(self, row: dict[str, Any], echo_of: str | None = None
                                     ) -> tuple[dict[str, Any], bool, bool]:
        """:meth:`mirror_message`, and whether a stored message changed (``created`` implies
        it): ``(message, created, changed)``."""
        def put(conn: sqlite3.Connection) -> tuple[dict[str, Any], bool, bool]:
            found = None
            if echo_of is not None:
                found = _first(conn, "SELECT * FROM chatwoot_messages WHERE id = ?", (echo_of,))
            if found is None:
                found = _first(conn, "SELECT * FROM chatwoot_messages WHERE chatwoot_id = ?",
                               (row["chatwoot_id"],))
            if found is None:
                now = now_iso()
                _insert(conn, "chatwoot_messages", {**row, "updated_at": now})
                return _message(conn, row["id"]), True, True
            changes = {k: row[k] for k in ("chatwoot_id", "conversation_id", "text",
                                           "attachments", "status") if row.get(k) is not None}
            if found["origin"] != "chatwoot":
                changes.pop("text", None)  # ours: the local text and author stay
            if found["user_id"] is None and row.get("user_id"):
                changes["user_id"] = row["user_id"]
            _update(conn, "chatwoot_messages", "id", found["id"],
                    {**changes, "updated_at": now_iso()})
            stored = _message(conn, found["id"])
            return stored, False, any(found[k] != stored[k] for k in changes)
        return await self.store.run_write(put)

    async def message_posted(self, message_id: str, chatwoot_id: int, conversation_id: int,
                             user_id: str | None) -> dict[str, Any]:
        """The post succeeded: attach Chatwoot's id; ``queued`` becomes ``sent``."""
        def put(conn: sqlite3.Connection) -> dict[str, Any]:
            conn.execute("UPDATE chatwoot_messages SET chatwoot_id = ?, conversation_id = ?, "
                         "user_id = COALESCE(user_id, ?), error = NULL, updated_at = ?, "
                         "status = CASE WHEN status IN ('queued', 'failed') THEN 'sent' "
                         "ELSE status END WHERE id = ?",
                         (chatwoot_id, conversation_id, user_id, now_iso(), message_id))
            return _message(conn, message_id)
        return await self.store.run_write(put)

    async def message_failed(self, message_id: str, error: str) -> dict[str, Any]:
        """The post was refused for good."""
        def put(conn: sqlite3.Connection) -> dict[str, Any]:
            _update(conn, "chatwoot_messages", "id", message_id,
                    {"status": "failed", "error": error[:500], "updated_at": now_iso()})
            return _message(conn, message_id)
        return await self.store.run_write(put)

    async def mark_notified(self, message_id: str, audience: str) -> bool:
        """Compare-and-set: True only the first time ``audience`` (``agents``/``member``) is
        marked told about this message."""
        column = {"agents": "agents_notified", "member": "member_notified"}[audience]

        def cas(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(f"UPDATE chatwoot_messages SET {column} = 1 WHERE id = ? "
                                  f"AND {column} = 0", (message_id,))
            return cursor.rowcount == 1
        return await self.store.run_write(cas)

    async def member_history(self, user_id: str, *, before_seq: int | None = None,
                             limit: int = 50) -> list[dict[str, Any]]:
        """The member's support messages, oldest first; private notes are never included."""
        sql = ("SELECT * FROM chatwoot_messages WHERE user_id = ? AND private = 0 "
               "AND (? IS NULL OR seq < ?) ORDER BY seq DESC LIMIT ?")
        rows = await self.store.run_read(_rows, sql, (user_id, before_seq, before_seq, limit))
        return rows[::-1]

    async def conversation_messages(self, conversation_id: int, *,
                                    before_seq: int | None = None, limit: int = 50
                                    ) -> list[dict[str, Any]]:
        """A conversation's messages for agents (private notes included), oldest first."""
        sql = ("SELECT * FROM chatwoot_messages WHERE conversation_id = ? "
               "AND (? IS NULL OR seq < ?) ORDER BY seq DESC LIMIT ?")
        rows = await self.store.run_read(_rows, sql, (conversation_id, before_seq, before_seq,
                                                      limit))
        return rows[::-1]

    # webhook deliveries -----------------------------------------------------------------------
    async def accept_delivery(self, delivery_id: str, event: str, body: bytes, ttl_s: float
                              ) -> bool:
        """Remember a delivery and keep its body for processing; False if the id was seen."""
        def put(conn: sqlite3.Connection) -> bool:
            now = time.time()
            cursor = conn.execute(
                "INSERT OR IGNORE INTO chatwoot_deliveries (delivery_id, event, body, "
                "received_at, expires_at) VALUES (?, ?, ?, ?, ?)",
                (delivery_id, event, body, now, now + ttl_s))
            return cursor.rowcount == 1
        return await self.store.run_write(put)

    async def claim_deliveries(self, lease_s: float, limit: int = 32) -> list[dict[str, Any]]:
        """Lease pending deliveries, oldest first."""
        def claim(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            now = time.time()
            rows = _rows(conn, "SELECT * FROM chatwoot_deliveries WHERE state = 'pending' AND "
                         "(locked_until IS NULL OR locked_until < ?) ORDER BY received_at "
                         "LIMIT ?", (now, limit))
            for row in rows:
                _update(conn, "chatwoot_deliveries", "delivery_id", row["delivery_id"],
                        {"locked_until": now + lease_s, "attempts": row["attempts"] + 1})
            return rows
        return await self.store.run_write(claim)

    async def delivery_done(self, delivery_id: str, failed: bool = False) -> None:
        """Processed (or given up): the body is dropped, the id stays until it expires."""
        changes: dict[str, Any] = {"state": "failed" if failed else "done",
                                   "locked_until": None}
        if not failed:  # a failed body is kept for operators until it expires
            changes["body"] = None
        await self.store.run_write(lambda conn: _update(conn, "chatwoot_deliveries",
                                                        "delivery_id", delivery_id, changes))

    async def purge_deliveries(self) -> int:
        """Forget processed delivery ids past their expiry."""
        return await self.store.run_write(lambda conn: conn.execute(
            "DELETE FROM chatwoot_deliveries WHERE expires_at < ? AND state != 'pending'",
            (time.time(),)).rowcount)

    # outbound queue ---------------------------------------------------------------------------
    async def enqueue(self, order_key: str, kind: str, payload: dict[str, Any]) -> int:
        """Queue a job behind the others of ``order_key``; its seq."""
        return await self.store.run_write(lambda conn: _insert(conn, "chatwoot_outbox", {
            "order_key": order_key, "kind": kind, "payload": payload,
            "next_attempt_at": time.time(), "created_at": time.time()}))

    async def claim_jobs(self, lease_s: float, limit: int = 16) -> list[dict[str, Any]]:
        """Lease due jobs that head their ``order_key`` (at most one per key)."""
        def claim(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            now = time.time()
            rows = _rows(conn, "SELECT o.* FROM chatwoot_outbox o WHERE o.state = 'pending' "
                         "AND o.seq = (SELECT MIN(seq) FROM chatwoot_outbox h WHERE "
                         "h.order_key = o.order_key AND h.state = 'pending') "
                         "AND o.next_attempt_at <= ? AND (o.locked_until IS NULL OR "
                         "o.locked_until < ?) ORDER BY o.seq LIMIT ?", (now, now, limit))
            for row in rows:
                _update(conn, "chatwoot_outbox", "seq", row["seq"],
                        {"locked_until": now + lease_s, "attempts": row["attempts"] + 1})
                row["attempts"] += 1
            return rows
        return await self.store.run_write(claim)

    async def job_done(self, seq: int) -> None:
        """The job succeeded: drop it (the next of its key becomes the head)."""
        await self.store.run_write(lambda conn: conn.execute(
            "DELETE FROM chatwoot_outbox WHERE seq = ?", (seq,)))

    async def job_retry(self, seq: int, delay_s: float, error: str) -> None:
        """Try the job again in ``delay_s`` (it stays the head of its key)."""
        await self.store.run_write(lambda conn: _update(conn, "chatwoot_outbox", "seq", seq, {
            "next_attempt_at": time.time() + delay_s, "locked_until": None,
            "last_error": error[:500]}))

    async def job_failed(self, seq: int, error: str) -> None:
        """Give up on the job (kept for operators); the next of its key proceeds."""
        await self.store.run_write(lambda conn: _update(conn, "chatwoot_outbox", "seq", seq, {
            "state": "failed", "locked_until": None, "last_error": error[:500]}))

    async def queue_stats(self) -> dict[str, Any]:
        """Pending and failed jobs, the oldest pending one's age, unprocessed deliveries."""
        def stats(conn: sqlite3.Connection) -> dict[str, Any]:
            pending, oldest = conn.execute(
                "SELECT COUNT(*), MIN(created_at) FROM chatwoot_outbox WHERE state = 'pending'"
            ).fetchone()
            failed = conn.execute("SELECT COUNT(*) FROM chatwoot_outbox WHERE state = 'failed'"
                                  ).fetchone()[0]
            webhooks = conn.execute("SELECT COUNT(*) FROM chatwoot_deliveries WHERE "
                                    "state = 'pending'").fetchone()[0]
            return {"pending": pending, "failed": failed, "webhooks_pending": webhooks,
                    "oldest_age_s": round(time.time() - oldest, 1) if oldest else 0.0}
        return await self.store.run_read(stats)


    # reconciliation ---------------------------------------------------------------------------
    async def messages_by_chatwoot_id(self, chatwoot_ids: list[int]) -> dict[int, dict[str, Any]]:
        """Mirrored messages among ``chatwoot_ids``, by Chatwoot id."""
        if not chatwoot_ids:
            return {}
        marks = ", ".join("?" * len(chatwoot_ids))
        rows = await self.store.run_read(
            _rows, f"SELECT * FROM chatwoot_messages WHERE chatwoot_id IN ({marks})",
            tuple(chatwoot_ids))
        return {int(r["chatwoot_id"]): r for r in rows}

    async def reconciled_message(self, conversation_id: int) -> int | None:
        """The newest Chatwoot message id up to which a reconciliation read this
        conversation's messages back, or None."""
        row = await self.store.run_read(_first, "SELECT message_id FROM chatwoot_reconciled "
                                        "WHERE conversation_id = ?", (conversation_id,))
        return int(row["message_id"]) if row else None

    async def mark_reconciled(self, conversation_id: int, message_id: int) -> None:
        """Its messages up to ``message_id`` are mirrored (never moves back)."""
        await self.store.run_write(lambda conn: conn.execute(
            "INSERT INTO chatwoot_reconciled (conversation_id, message_id, updated_at) "
            "VALUES (?, ?, ?) ON CONFLICT (conversation_id) DO UPDATE SET message_id = "
            "MAX(message_id, excluded.message_id), updated_at = excluded.updated_at",
            (conversation_id, message_id, now_iso())))

    async def reconcile_state(self) -> dict[str, Any] | None:
        """The reconciliation's run state (None before the first run)."""
        return await self.store.run_read(_first, "SELECT * FROM chatwoot_reconcile WHERE id = 1")

    async def reconcile_lease(self, owner: str, lease_s: float) -> dict[str, Any] | None:
        """Take (or renew) the reconciliation lease: the run state, or None while another
        process holds an unexpired lease."""
        def take(conn: sqlite3.Connection) -> dict[str, Any] | None:
            now = time.time()
            conn.execute("INSERT OR IGNORE INTO chatwoot_reconcile (id) VALUES (1)")
            cursor = conn.execute(
                "UPDATE chatwoot_reconcile SET lease_owner = ?, lease_until = ? WHERE id = 1 "
                "AND (lease_owner IS NULL OR lease_owner = ? OR lease_until < ?)",
                (owner, now + lease_s, owner, now))
            if cursor.rowcount != 1:
                return None
            return _first(conn, "SELECT * FROM chatwoot_reconcile WHERE id = 1")
        return await self.store.run_write(take)

    async def reconcile_release(self, owner: str) -> None:
        """Give the lease up (a crashed holder's lease simply expires)."""
        await self.store.run_write(lambda conn: conn.execute(
            "UPDATE chatwoot_reconcile SET lease_owner = NULL, lease_until = NULL WHERE id = 1 "
            "AND lease_owner = ?", (owner,)))

    async def reconcile_finish(self, owner: str, started_at: float, outcome: str,
                               conversations: int, messages: int, error: str = "",
                               watermark: float | None = None) -> None:
        """Record a run and release the lease; ``watermark`` (a complete run's start) moves
        the point later runs list back to."""
        def put(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE chatwoot_reconcile SET lease_owner = NULL, lease_until = NULL, "
                "last_run_at = ?, last_outcome = ?, last_error = ?, last_conversations = ?, "
                "last_messages = ?, total_conversations = total_conversations + ?, "
                "total_messages = total_messages + ?, watermark = COALESCE(?, watermark), "
                "last_success_at = CASE WHEN ? IS NULL THEN last_success_at ELSE ? END "
                "WHERE id = 1 AND lease_owner = ?",
                (started_at, outcome, error[:500] or None, conversations, messages,
                 conversations, messages, watermark, watermark, time.time(), owner))
        await self.store.run_write(put)


def _required(conn: sqlite3.Connection, table: str, key: str, value: Any) -> dict[str, Any]:
    # NotFound (not an assert): the writer thread turns it into the caller's exception
    found = _first(conn, f"SELECT * FROM {table} WHERE {key} = ?", (value,))
    if found is None:
        raise NotFound(f"no {table} row {value}")
    return found


def _message(conn: sqlite3.Connection, message_id: str) -> dict[str, Any]:
    return _required(conn, "chatwoot_messages", "id", message_id)


def _differs(old: dict[str, Any], new: dict[str, Any]) -> bool:
    return any(old.get(k) != new.get(k) for k in CONVERSATION_FIELDS
               if k not in ("source_updated_at", "last_activity_at"))
