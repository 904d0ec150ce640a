"""Moderation records on the embedded store: holds, reports, sanctions, appeals, policies, and
the append-only, hash-chained audit log.

Each audit entry's ``hash`` is SHA-256 over its canonical JSON including the previous entry's hash,
computed on the writer thread inside the same transaction as the insert, so the chain stays linear
even with several processes. Message content is referenced (ids) and hashed, never copied into the
log, so personal data can be erased elsewhere without breaking the chain.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from typing import Any, cast

import orjson

from storage.base import Conflict, NotFound, new_id, now_iso
from storage.sqlite import SQLiteStore
from storage.sqlite_keys import Key, flat, keys_cte

GENESIS = "0" * 64
HOLD_PROBE = "moderation_hold"
JSON_COLUMNS = {"labels", "scores", "reasons", "details", "policy"}


def content_hash(text: str) -> str:
    """The hash under which audit entries refer to message content."""
    return hashlib.sha256(text.encode()).hexdigest()


def _rows(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...] = ()
          ) -> list[dict[str, Any]]:
    cursor = conn.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [{n: (orjson.loads(v) if n in JSON_COLUMNS and v is not None else v)
             for n, v in zip(names, row, strict=True)} for row in cursor.fetchall()]


def _hold_by_key(conn: sqlite3.Connection, channel_id: str, author_id: str, client_id: str
                 ) -> dict[str, Any] | None:
    return _holds_by_keys(conn, [(channel_id, author_id, client_id)]).get(
        (channel_id, author_id, client_id))


def _holds_by_keys(conn: sqlite3.Connection, keys: list[Key]) -> dict[Key, dict[str, Any]]:
    """The holds of these idempotency keys, in one statement (a key probe of the store)."""
    rows = _rows(conn, keys_cte(len(keys)) + "SELECT h.* FROM k JOIN moderation_holds AS h ON "
                 "h.channel_id = k.c AND h.author_id = k.a AND h.client_id = k.i",
                 tuple(flat(keys)))
    return {(row["channel_id"], row["author_id"], row["client_id"]): row for row in rows}


def _one(conn: sqlite3.Connection, table: str, key: str, value: str) -> dict[str, Any]:
    rows = _rows(conn, f"SELECT * FROM {table} WHERE {key} = ?", (value,))
    if not rows:
        raise NotFound(f"no {table.removeprefix('moderation_').rstrip('s')} {value}")
    return rows[0]


def entry_hash(entry: dict[str, Any]) -> str:
    """SHA-256 over the entry's canonical JSON (every field but ``hash``)."""
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _insert(conn: sqlite3.Connection, table: str, row: dict[str, Any]) -> None:
    columns = ", ".join(row)
    marks = ", ".join("?" * len(row))
    values = tuple(orjson.dumps(v).decode() if k in JSON_COLUMNS else v for k, v in row.items())
    conn.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", values)


def _audit_append(conn: sqlite3.Connection, entry: dict[str, Any]) -> dict[str, Any]:
    last = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    full = {"seq": (last[0] + 1) if last else 1, "at": now_iso(), **entry,
            "prev_hash": last[1] if last else GENESIS}
    full["hash"] = entry_hash(full)
    _insert(conn, "audit_log", full)
    return full


def _audit_verify(conn: sqlite3.Connection) -> dict[str, Any]:
    previous, expected_seq, count = GENESIS, 1, 0
    for entry in _rows(conn, "SELECT * FROM audit_log ORDER BY seq"):
        count += 1
        problem = None
        if entry["seq"] != expected_seq:
            problem = f"entry {expected_seq} is missing"
        elif entry["prev_hash"] != previous:
            problem = f"entry {entry['seq']} does not follow entry {entry['seq'] - 1}"
        elif entry_hash(entry) != entry["hash"]:
            problem = f"entry {entry['seq']} was altered"
        if problem:
            return {"ok": False, "entries": count, "first_bad_seq": entry["seq"],
                    "problem": problem}
        previous, expected_seq = entry["hash"], expected_seq + 1
    return {"ok": True, "entries": count, "head": previous}


def _decide(conn: sqlite3.Connection, table: str, item_id: str, open_status: str,
            changes: dict[str, Any]) -> dict[str, Any]:
    item = _one(conn, table, "id", item_id)
    if item["status"] != open_status:
        raise Conflict(f"already {item['status']}")
    assignments = ", ".join(f"{k} = ?" for k in changes)
    conn.execute(f"UPDATE {table} SET {assignments} WHERE id = ?", (*changes.values(), item_id))
    return _one(conn, table, "id", item_id)


class ModerationRecords:
    """Moderation persistence on top of the SQLite store's writer and readers."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store
        # A new message's hold lookup rides on the store's idempotency read (see find_hold).
        store.key_probes.setdefault(HOLD_PROBE, _holds_by_keys)

    # audit ------------------------------------------------------------------------------------
    async def audit(self, actor_id: str, action: str, target_type: str, target_id: str,
                    reason: str = "", details: dict[str, Any] | None = None,
                    correlation_id: str | None = None) -> dict[str, Any]:
        """Append one entry to the chain; returns it with its seq and hash."""
        return await self.store.run_write(_audit_append, {
            "actor_id": actor_id, "action": action, "target_type": target_type,
            "target_id": target_id, "reason": reason, "details": details or {},
            "correlation_id": correlation_id})

    async def audit_entries(self, *, actor_id: str | None = None, action: str | None = None,
                            target_id: str | None = None, limit: int = 100,
                            before_seq: int | None = None) -> list[dict[str, Any]]:
        """Newest first, filtered."""
        where: list[str] = ["1 = 1"]
        params: list[Any] = []
        for column, value in (("actor_id", actor_id), ("action", action),
                              ("target_id", target_id)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if before_seq is not None:
            where.append("seq < ?")
            params.append(before_seq)
        sql = f"SELECT * FROM audit_log WHERE {' AND '.join(where)} ORDER BY seq DESC LIMIT ?"
        return await self.store.run_read(_rows, sql, (*params, limit))

    async def audit_verify(self) -> dict[str, Any]:
        """Recompute the chain; report the first edited, removed or reordered entry."""
        return await self.store.run_read(_audit_verify)

    # holds ------------------------------------------------------------------------------------
    async def hold(self, row: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Keep a message for review; a repeated client_id returns the first hold."""
        def create(conn: sqlite3.Connection) -> tuple[dict[str, Any], bool]:
            if row.get("client_id"):
                found = _rows(conn, "SELECT * FROM moderation_holds WHERE channel_id = ? AND "
                              "author_id = ? AND client_id = ?",
                              (row["channel_id"], row["author_id"], row["client_id"]))
                if found:
                    return found[0], False
            _insert(conn, "moderation_holds", {"id": new_id(), "created_at": now_iso(), **row})
            newest = "SELECT * FROM moderation_holds ORDER BY rowid DESC LIMIT 1"
            return _rows(conn, newest)[0], True
        return await self.store.run_write(create)

    async def find_hold(self, channel_id: str, author_id: str, client_id: str
                        ) -> dict[str, Any] | None:
        """The hold of a message with this idempotency key, or None. Answered without a round
        trip when the chat's idempotency read just looked it up (``SQLiteStore.key_probes``)."""
        known, hold = self.store.take_probed(HOLD_PROBE, channel_id, author_id, client_id)
        if known:
            return cast(dict[str, Any] | None, hold)
        return await self.store.run_read(_hold_by_key, channel_id, author_id, client_id)

    async def holds(self, status: str = "pending", limit: int = 100) -> list[dict[str, Any]]:
        """Holds by status, oldest first."""
        return await self.store.run_read(_rows, "SELECT * FROM moderation_holds WHERE status = ? "
                                         "ORDER BY created_at LIMIT ?", (status, limit))

    async def get_hold(self, hold_id: str) -> dict[str, Any]:
        """One hold; NotFound otherwise."""
        return await self.store.run_read(_one, "moderation_holds", "id", hold_id)

    async def decide_hold(self, hold_id: str, status: str, by: str, reason: str,
                          message_id: str | None = None) -> dict[str, Any]:
        """Approve or reject a pending hold; Conflict if decided already."""
        return await self.store.run_write(_decide, "moderation_holds", hold_id, "pending", {
            "status": status, "decided_by": by, "decided_at": now_iso(),
            "decision_reason": reason, "message_id": message_id})

    async def erase_hold_text(self, hold_id: str) -> None:
        """Erase a held message's content (personal data); the audit chain stays valid."""
        await self.store.run_write(lambda conn: conn.execute(
            "UPDATE moderation_holds SET text = NULL WHERE id = ?", (hold_id,)))

    async def member_holds(self, author_id: str, decided_since: str, limit: int = 50
                           ) -> list[dict[str, Any]]:
        """A member's pending holds and those rejected since ``decided_since`` (ISO), oldest
        first."""
        return await self.store.run_read(_rows, "SELECT * FROM moderation_holds WHERE "
                                         "author_id = ? AND (status = 'pending' OR "
                                         "(status = 'rejected' AND decided_at >= ?)) "
                                         "ORDER BY created_at LIMIT ?",
                                         (author_id, decided_since, limit))

    async def names(self, user_ids: list[str]) -> dict[str, str]:
        """The name each user last posted (or was held) under; users never seen are left out.
        Scans messages and holds (no author index): call it for a handful of users only."""
        def find(conn: sqlite3.Connection) -> dict[str, str]:
            found: dict[str, str] = {}
            for table in ("moderation_holds", "messages"):
                missing = [u for u in user_ids if u not in found]
                if not missing:
                    break
                marks = ", ".join("?" * len(missing))
                for user_id, name, _ in conn.execute(
                        f"SELECT author_id, author_name, MAX(rowid) FROM {table} "
                        f"WHERE author_id IN ({marks}) GROUP BY author_id", missing):
                    found[user_id] = name
            return found
        if not user_ids:
            return {}
        return await self.store.run_read(find)

    # reports ----------------------------------------------------------------------------------
    async def report(self, row: dict[str, Any]) -> dict[str, Any]:
        """File a report; Conflict if this reporter reported this message already."""
        def create(conn: sqlite3.Connection) -> dict[str, Any]:
            try:
                _insert(conn, "moderation_reports", {"id": new_id(), "created_at": now_iso(),
                                                     **row})
            except sqlite3.IntegrityError:
                raise Conflict("you reported this message already") from None
            return _rows(conn, "SELECT * FROM moderation_reports ORDER BY rowid DESC LIMIT 1")[0]
        return await self.store.run_write(create)

    async def reports(self, status: str = "open", limit: int = 100) -> list[dict[str, Any]]:
        """Reports by status, oldest first."""
        return await self.store.run_read(_rows, "SELECT * FROM moderation_reports WHERE "
                                         "status = ? ORDER BY created_at LIMIT ?",
                                         (status, limit))

    async def resolve_report(self, report_id: str, by: str, resolution: str) -> dict[str, Any]:
        """Close an open report."""
        return await self.store.run_write(_decide, "moderation_reports", report_id, "open", {
            "status": "resolved", "resolved_by": by, "resolved_at": now_iso(),
            "resolution": resolution})

    # sanctions --------------------------------------------------------------------------------
    async def sanction(self, row: dict[str, Any]) -> dict[str, Any]:
        """Record a mute, ban or kick."""
        def create(conn: sqlite3.Connection) -> dict[str, Any]:
            sanction_id = new_id()
            _insert(conn, "moderation_sanctions", {"id": sanction_id, "created_at": now_iso(),
                                                   **row})
            return _one(conn, "moderation_sanctions", "id", sanction_id)
        return await self.store.run_write(create)

    async def active_sanctions(self, user_id: str) -> list[dict[str, Any]]:
        """Unlifted, unexpired mutes and bans of a user."""
        return await self.store.run_read(_rows, "SELECT * FROM moderation_sanctions WHERE "
                                         "user_id = ? AND lifted_at IS NULL AND kind != 'kick' "
                                         "AND (expires_at IS NULL OR expires_at > ?)",
                                         (user_id, time.time()))

    async def sanctions(self, user_id: str | None = None, limit: int = 100
                        ) -> list[dict[str, Any]]:
        """Sanctions, newest first (of one user if given)."""
        if user_id is None:
            return await self.store.run_read(_rows, "SELECT * FROM moderation_sanctions ORDER "
                                             "BY created_at DESC LIMIT ?", (limit,))
        return await self.store.run_read(_rows, "SELECT * FROM moderation_sanctions WHERE "
                                         "user_id = ? ORDER BY created_at DESC LIMIT ?",
                                         (user_id, limit))

    async def get_sanction(self, sanction_id: str) -> dict[str, Any]:
        """One sanction."""
        return await self.store.run_read(_one, "moderation_sanctions", "id", sanction_id)

    async def lift_sanction(self, sanction_id: str, by: str) -> dict[str, Any]:
        """Lift a sanction (Conflict if lifted already)."""
        def lift(conn: sqlite3.Connection) -> dict[str, Any]:
            item = _one(conn, "moderation_sanctions", "id", sanction_id)
            if item["lifted_at"] is not None:
                raise Conflict("already lifted")
            conn.execute("UPDATE moderation_sanctions SET lifted_by = ?, lifted_at = ? "
                         "WHERE id = ?", (by, now_iso(), sanction_id))
            return _one(conn, "moderation_sanctions", "id", sanction_id)
        return await self.store.run_write(lift)

    async def recent_sanctions(self, user_id: str, kind: str, since: float) -> int:
        """How many sanctions of ``kind`` the user got since ``since`` (epoch seconds)."""
        rows = await self.store.run_read(_rows, "SELECT COUNT(*) AS n FROM moderation_sanctions "
                                         "WHERE user_id = ? AND kind = ? AND created_at >= ?",
                                         (user_id, kind, _iso(since)))
        return int(rows[0]["n"])

    # appeals ----------------------------------------------------------------------------------
    async def appeal(self, row: dict[str, Any]) -> dict[str, Any]:
        """File an appeal; Conflict if this subject was appealed already."""
        def create(conn: sqlite3.Connection) -> dict[str, Any]:
            try:
                appeal_id = new_id()
                _insert(conn, "moderation_appeals", {"id": appeal_id, "created_at": now_iso(),
                                                     **row})
            except sqlite3.IntegrityError:
                raise Conflict("this was appealed already") from None
            return _one(conn, "moderation_appeals", "id", appeal_id)
        return await self.store.run_write(create)

    async def appeals(self, status: str = "open", limit: int = 100) -> list[dict[str, Any]]:
        """Appeals by status, oldest first."""
        return await self.store.run_read(_rows, "SELECT * FROM moderation_appeals WHERE "
                                         "status = ? ORDER BY created_at LIMIT ?",
                                         (status, limit))

    async def member_appeals(self, user_id: str, limit: int = 50) -> list[dict[str, Any]]:
        """A member's open appeals, oldest first."""
        return await self.store.run_read(_rows, "SELECT * FROM moderation_appeals WHERE "
                                         "user_id = ? AND status = 'open' ORDER BY created_at "
                                         "LIMIT ?", (user_id, limit))

    async def get_appeal(self, appeal_id: str) -> dict[str, Any]:
        """One appeal."""
        return await self.store.run_read(_one, "moderation_appeals", "id", appeal_id)

    async def decide_appeal(self, appeal_id: str, outcome: str, by: str, reason: str
                            ) -> dict[str, Any]:
        """Uphold or overturn an open appeal."""
        return await self.store.run_write(_decide, "moderation_appeals", appeal_id, "open", {
            "status": outcome, "decided_by": by, "decided_at": now_iso(),
            "decision_reason": reason})

    # policies ---------------------------------------------------------------------------------
    async def policy(self, channel_id: str) -> dict[str, Any] | None:
        """The stored policy document of a channel (``*`` = the default), or None."""
        rows = await self.store.run_read(_rows, "SELECT * FROM moderation_policies WHERE "
                                         "channel_id = ?", (channel_id,))
        return rows[0]["policy"] if rows else None

    async def policies(self) -> dict[str, dict[str, Any]]:
        """Every stored policy by channel."""
        rows = await self.store.run_read(_rows, "SELECT * FROM moderation_policies")
        return {r["channel_id"]: r["policy"] for r in rows}

    async def set_policy(self, channel_id: str, policy: dict[str, Any], by: str
                         ) -> dict[str, Any] | None:
        """Store a channel's policy; return the previous one."""
        def put(conn: sqlite3.Connection) -> dict[str, Any] | None:
            before = _rows(conn, "SELECT policy FROM moderation_policies WHERE channel_id = ?",
                           (channel_id,))
            conn.execute("INSERT INTO moderation_policies VALUES (?, ?, ?, ?) ON CONFLICT "
                         "(channel_id) DO UPDATE SET policy = excluded.policy, "
                         "updated_by = excluded.updated_by, updated_at = excluded.updated_at",
                         (channel_id, orjson.dumps(policy).decode(), by, now_iso()))
            return before[0]["policy"] if before else None
        return await self.store.run_write(put)


def _iso(epoch: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")
