"""Secrets Gigvora issues, at rest: API keys and one-time codes, stored only as argon2id hashes.

An API key reads ``gvk_<id>_<secret>``: the id finds the row, the secret is checked against its
argon2 hash, so the key itself is shown once (at creation) and never stored or logged. One-time
codes (room PINs, invite codes) belong to a ``(purpose, subject)`` pair, expire, are single-use
(the redeeming UPDATE only succeeds while ``used_at`` is NULL) and lock after
``MAX_FAILED_ATTEMPTS`` wrong guesses, so a short numeric PIN cannot be brute-forced.

Hashing costs tens of milliseconds of CPU by design: it runs in a worker thread, never on the
event loop; rows are written by the store's writer thread like every other write.
"""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
import time
from typing import Any, Literal

import orjson
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from storage.base import Conflict, NotFound, new_id, now_iso
from storage.sqlite import SQLiteStore

KEY_PREFIX = "gvk_"
#: wrong guesses after which an open one-time code stops accepting anything
MAX_FAILED_ATTEMPTS = 5
#: open codes per ``(purpose, subject)``: a redeem checks each, so this bounds its argon2 work
MAX_OPEN_CODES = 10
CodeKind = Literal["pin", "token"]

_hasher = PasswordHasher()
#: verified against when the key id is unknown, so a miss costs the same time as a wrong secret
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def _verify(hashed: str, secret: str) -> bool:
    try:
        return _hasher.verify(hashed, secret)
    except (VerificationError, InvalidHashError):
        return False


def _public_key(row: tuple[Any, ...]) -> dict[str, Any]:
    key_id, name, roles, created_by, created_at, last_used_at, revoked_at = row
    return {"id": key_id, "name": name, "roles": orjson.loads(roles), "created_by": created_by,
            "created_at": created_at, "last_used_at": last_used_at, "revoked_at": revoked_at}


KEY_COLUMNS = "id, name, roles, created_by, created_at, last_used_at, revoked_at"
OPEN = ("purpose = ? AND subject = ? AND used_at IS NULL AND expires_at > ? "
        "AND failed_attempts < ?")


def split_key(key: str) -> tuple[str, str] | None:
    """``(id, secret)`` of a well-formed API key, or None."""
    if not key.startswith(KEY_PREFIX) or len(key) < len(KEY_PREFIX) + 26:
        return None
    key_id, sep, secret = key[len(KEY_PREFIX):].partition("_")
    if len(key_id) != 24 or not sep or not secret or len(secret) > 128:
        return None
    return key_id, secret


class SecretRecords:
    """API keys and one-time codes on top of the SQLite store's writer and readers."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store

    # API keys ---------------------------------------------------------------------------------
    async def create_key(self, name: str, roles: list[str], created_by: str
                         ) -> tuple[dict[str, Any], str]:
        """A new key: its public record and the key itself (the only time it exists in full)."""
        key_id, secret = new_id(), secrets.token_urlsafe(32)
        hashed = await asyncio.to_thread(_hasher.hash, secret)
        row = (key_id, name, orjson.dumps(sorted(set(roles))).decode(), hashed, created_by,
               now_iso())

        def insert(conn: sqlite3.Connection) -> tuple[Any, ...]:
            conn.execute("INSERT INTO api_keys (id, name, roles, hash, created_by, created_at) "
                         "VALUES (?, ?, ?, ?, ?, ?)", row)
            return conn.execute(f"SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ?",
                                (key_id,)).fetchone()
        record = _public_key(await self.store.run_write(insert))
        return record, f"{KEY_PREFIX}{key_id}_{secret}"

    async def keys(self) -> list[dict[str, Any]]:
        """Every key's public record (never a hash), newest first."""
        rows = await self.store.run_read(lambda conn: conn.execute(
            f"SELECT {KEY_COLUMNS} FROM api_keys ORDER BY id DESC").fetchall())
        return [_public_key(row) for row in rows]

    async def revoke_key(self, key_id: str, by: str) -> dict[str, Any]:
        """Revoke a key (idempotent); ``NotFound`` for an unknown id."""
        def revoke(conn: sqlite3.Connection) -> tuple[Any, ...]:
            conn.execute("UPDATE api_keys SET revoked_at = ?, revoked_by = ? "
                         "WHERE id = ? AND revoked_at IS NULL", (now_iso(), by, key_id))
            row = conn.execute(f"SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ?",
                               (key_id,)).fetchone()
            if row is None:
                raise NotFound(f"no api key {key_id}")
            return row  # type: ignore[no-any-return]
        return _public_key(await self.store.run_write(revoke))

    async def verify_key(self, key: str) -> dict[str, Any] | None:
        """The public record of a valid, unrevoked key (its use recorded), or None."""
        parts = split_key(key)
        row = None
        if parts is not None:
            row = await self.store.run_read(lambda conn: conn.execute(
                f"SELECT {KEY_COLUMNS}, hash FROM api_keys WHERE id = ?", (parts[0],)).fetchone())
        hashed = row[-1] if row is not None else _DUMMY_HASH
        matched = await asyncio.to_thread(_verify, hashed, parts[1] if parts else key)
        if row is None or not matched or row[6] is not None:
            return None
        await self.store.run_write(lambda conn: conn.execute(
            "UPDATE api_keys SET last_used_at = ? WHERE id = ?", (now_iso(), row[0])))
        return _public_key(row[:-1])

    # one-time codes ---------------------------------------------------------------------------
    async def issue_code(self, purpose: str, subject: str, created_by: str, ttl_s: float,
                         kind: CodeKind = "token") -> tuple[dict[str, Any], str]:
        """A new single-use code for ``(purpose, subject)``: its record and the code itself
        (an 8-digit PIN or a URL-safe token)."""
        code = (f"{secrets.randbelow(10**8):08d}" if kind == "pin"
                else secrets.token_urlsafe(16))
        hashed = await asyncio.to_thread(_hasher.hash, code)
        record = {"id": new_id(), "purpose": purpose, "subject": subject,
                  "created_by": created_by, "created_at": now_iso(),
                  "expires_at": time.time() + ttl_s}

        def insert(conn: sqlite3.Connection) -> None:
            (open_codes,) = conn.execute(
                f"SELECT count(*) FROM one_time_codes WHERE {OPEN}",
                (purpose, subject, time.time(), MAX_FAILED_ATTEMPTS)).fetchone()
            if open_codes >= MAX_OPEN_CODES:
                raise Conflict(f"{MAX_OPEN_CODES} codes are open for this subject already")
            conn.execute(
                "INSERT INTO one_time_codes (id, purpose, subject, hash, created_by, "
                "created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (record["id"], purpose, subject, hashed, created_by, record["created_at"],
                 record["expires_at"]))
        await self.store.run_write(insert)
        return record, code

    async def redeem_code(self, purpose: str, subject: str, code: str, by: str
                          ) -> dict[str, Any] | None:
        """Use the open code matching ``code`` (once); None when none matches — a wrong,
        expired, used or locked code alike. A wrong guess counts against every open code of
        ``(purpose, subject)``."""
        now = time.time()
        candidates = await self.store.run_read(lambda conn: conn.execute(
            f"SELECT id, hash FROM one_time_codes WHERE {OPEN} LIMIT ?",
            (purpose, subject, now, MAX_FAILED_ATTEMPTS, MAX_OPEN_CODES)).fetchall())
        matched = None
        for code_id, hashed in candidates:
            if await asyncio.to_thread(_verify, hashed, code):
                matched = code_id
                break
        if matched is None:
            if candidates:
                ids = [row[0] for row in candidates]
                await self.store.run_write(lambda conn: conn.execute(
                    "UPDATE one_time_codes SET failed_attempts = failed_attempts + 1 "
                    f"WHERE id IN ({', '.join('?' * len(ids))})", ids))
            return None

        def use(conn: sqlite3.Connection) -> bool:
            return conn.execute(  # type: ignore[no-any-return]
                "UPDATE one_time_codes SET used_at = ?, used_by = ? WHERE id = ? "
                "AND used_at IS NULL AND expires_at > ?",
                (now_iso(), by, matched, time.time())).rowcount == 1
        if not await self.store.run_write(use):
            return None  # redeemed concurrently, or expired meanwhile
        return {"id": matched, "purpose": purpose, "subject": subject, "used_by": by}

    async def access(self, purpose: str, subject: str, user_id: str, now: float) -> str:
        """``open`` when ``(purpose, subject)`` has no unexpired code, ``granted`` when
        ``user_id`` used one of them, else ``protected`` (one indexed read)."""
        def read(conn: sqlite3.Connection) -> str:
            row = conn.execute(
                "SELECT count(*), coalesce(sum(used_by = ?), 0) FROM one_time_codes "
                "WHERE purpose = ? AND subject = ? AND expires_at > ?",
                (user_id, purpose, subject, now)).fetchone()
            if not row[0]:
                return "open"
            return "granted" if row[1] else "protected"
        return await self.store.run_read(read)  # type: ignore[no-any-return]

    async def purge_codes(self, older_than_s: float = 86_400.0) -> int:
        """Delete codes expired more than ``older_than_s`` ago; return how many."""
        cutoff = time.time() - older_than_s
        return await self.store.run_write(lambda conn: conn.execute(  # type: ignore[no-any-return]
            "DELETE FROM one_time_codes WHERE expires_at < ?", (cutoff,)).rowcount)
