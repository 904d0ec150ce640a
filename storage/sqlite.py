"""SQLite backend: one writer thread with group commit, a small pool of reader threads.

Every write is queued to the writer thread, which drains whatever is queued (idempotency-key
lookups queued there too run first, outside the transaction: see ``_WriterThread``), runs it in one
``BEGIN IMMEDIATE`` transaction (a SAVEPOINT per operation, so one failing operation does not
poison its batch — except message appends, which cannot leave anything behind when they fail and
skip it), commits once (WAL, ``synchronous=FULL``: one fsync for the whole batch) and
only then resolves the callers' futures. ``BEGIN IMMEDIATE`` plus a busy timeout makes it safe
for several processes to share one file on one host.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import orjson

from storage import schema
from storage.base import (
    Channel,
    Conflict,
    Message,
    MessageDraft,
    NotFound,
    RecentMessages,
    StoreUnavailable,
    new_id,
    now_iso,
)
from storage.sqlite_keys import Found, Key, KeyLookups, KeyProbe, flat, keys_cte
from storage.sqlite_readers import Checkpointer, ReaderPool, run_read, settle_reads

T = TypeVar("T")
MAX_BATCH = 512
#: Answers of key probes (see ``SQLiteStore.key_probes``) kept at most this many, this long.
PROBED_MAX = 4096
PROBED_TTL_S = 2.0
MESSAGE_COLUMNS = ("id, channel_id, seq, author_id, author_name, text, client_id, thread_id, "
                   "created_at, edited_at, deleted, reactions")
_BY_KEYS_COLUMNS = ", ".join("m." + column.strip() for column in MESSAGE_COLUMNS.split(","))
Op = tuple[Callable[..., Any], tuple[Any, ...], asyncio.Future[Any]]


class _Read(tuple):  # type: ignore[type-arg]
    """An ``Op`` that only reads (see ``_WriterThread.submit_read``)."""


def connect(path: str, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection with the pragmas every Gigvora connection uses."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
    conn.execute("PRAGMA busy_timeout = 10000")
    conn.execute("PRAGMA foreign_keys = ON")
    if readonly:
        conn.execute("PRAGMA query_only = ON")
    else:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
    return conn


def take_lock(db: Path, shared: bool) -> int | None:
    """A ``flock`` on ``<db>.lock``: servers share it, ``db restore`` needs it alone.
    Returns the descriptor, or None if it is held incompatibly."""
    db.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(f"{db}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def release_lock(fd: int) -> None:
    """Release a lock taken by ``take_lock``."""
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


def _message(row: tuple[Any, ...]) -> Message:
    return Message(id=row[0], channel=row[1], seq=row[2], author_id=row[3], author_name=row[4],
                   text=row[5], client_id=row[6], thread_id=row[7], created_at=row[8],
                   edited_at=row[9], deleted=bool(row[10]), reactions=orjson.loads(row[11]))


def _channel(row: tuple[Any, ...]) -> Channel:
    return Channel(id=row[0], name=row[1], kind=row[2], read_roles=orjson.loads(row[3]),
                   post_roles=orjson.loads(row[4]),
                   members=orjson.loads(row[5]) if row[5] is not None else None,
                   created_at=row[6], last_seq=row[7], category=row[8])


class _WriterThread(threading.Thread):
    """Runs queued write operations in batches: one transaction and one fsync per batch.

    It also takes the idempotency-key lookups of new messages (``submit_read``): every message
    needs one before it is checked and one write after, and waking a reader thread for the
    first cost the event loop more than the lookup itself (a sleeping thread's wake-up, a GIL
    hand-off and one more loop iteration per batch). Queued here they mostly ride on a wake-up
    the writes need anyway: the writer runs the reads it drained first, outside any transaction
    (so they see everything committed), resolves them, then commits the writes."""

    def __init__(self, path: str, loop: asyncio.AbstractEventLoop,
                 on_commit: Callable[[int, float], None]) -> None:
        super().__init__(name="gigvora-sqlite-writer", daemon=True)
        self._path = path
        self._loop = loop
        self._queue: queue.SimpleQueue[Op | None] = queue.SimpleQueue()
        self._on_commit = on_commit
        self.pending = 0
        #: True when the WAL should be caught up (see ``storage.sqlite_readers.Checkpointer``).
        self.catch_up: Callable[[], bool] = lambda: False

    def submit(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Queue ``fn(conn, *args)``; the future resolves after the batch commits."""
        future: asyncio.Future[T] = self._loop.create_future()
        self.pending += 1
        self._queue.put((fn, args, future))
        return future

    def submit_read(self, fn: Callable[..., T], args: tuple[Any, ...]) -> asyncio.Future[T]:
        """Queue ``fn(conn, *args)``, which must not write; resolved before the writes drained
        with it commit."""
        future: asyncio.Future[T] = self._loop.create_future()
        self._queue.put(_Read((fn, args, future)))
        return future

    def stop(self) -> None:
        """Ask the thread to finish the queue and exit."""
        self._queue.put(None)

    def run(self) -> None:
        conn = connect(self._path)
        conn.execute("PRAGMA wal_autocheckpoint = 0")  # the Checkpointer does it, off this path
        try:
            while (batch := self._next_batch()) is not None:
                if any(type(op) is _Read for op in batch):
                    self._run_reads(conn, [op for op in batch if type(op) is _Read])
                    batch = [op for op in batch if type(op) is not _Read]
                if batch:
                    self._run_batch(conn, batch)
                if self.catch_up():
                    _checkpoint(conn)
        finally:
            conn.close()

    def _next_batch(self) -> list[Op] | None:
        first = self._queue.get()
        if first is None:
            return None
        batch = [first]
        while len(batch) < MAX_BATCH:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._queue.put(None)
                break
            batch.append(item)
        return batch

    def _run_reads(self, conn: sqlite3.Connection, reads: list[Op]) -> None:
        outcomes = [run_read(conn, read) for read in reads]
        try:
            self._loop.call_soon_threadsafe(settle_reads, outcomes)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass

    def _run_batch(self, conn: sqlite3.Connection, batch: list[Op]) -> None:
        started = time.perf_counter()
        results: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for fn, args, future in batch:
                results.append((future, *self._run_one(conn, fn, args)))
            conn.execute("COMMIT")
        except sqlite3.Error as error:
            _rollback(conn)
            failure = StoreUnavailable(f"store write failed: {error}")
            results = [(future, None, failure) for _, _, future in batch]
        self._on_commit(len(batch), time.perf_counter() - started)
        self._resolve(results)

    @staticmethod
    def _run_one(conn: sqlite3.Connection, fn: Callable[..., Any],
                 args: tuple[Any, ...]) -> tuple[Any, BaseException | None]:
        if fn in SAVEPOINT_FREE:
            try:
                return fn(conn, *args), None
            except (Conflict, NotFound, ValueError, PermissionError,
                    sqlite3.IntegrityError) as error:
                return None, error
        conn.execute("SAVEPOINT op")
        try:
            value = fn(conn, *args)
        except (Conflict, NotFound, ValueError, PermissionError, sqlite3.IntegrityError) as error:
            conn.execute("ROLLBACK TO op")
            conn.execute("RELEASE op")
            return None, error
        conn.execute("RELEASE op")
        return value, None

    def _resolve(self, results: list[tuple[asyncio.Future[Any], Any, BaseException | None]]
                 ) -> None:
        def settle() -> None:
            self.pending -= len(results)
            for future, value, error in results:
                if future.done():
                    continue
                if error is not None:
                    future.set_exception(error)
                else:
                    future.set_result(value)
        try:
            self._loop.call_soon_threadsafe(settle)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass


def _checkpoint(conn: sqlite3.Connection) -> None:
    try:
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    except sqlite3.Error:  # busy or I/O: the Checkpointer's next round asks again
        pass


def _rollback(conn: sqlite3.Connection) -> None:
    try:
        conn.execute("ROLLBACK")
    except sqlite3.Error:
        pass


class SQLiteStore:
    """The embedded store (see module docstring)."""

    def __init__(self, path: str, readers: int = 2) -> None:
        self.path = path
        self._reader_count = readers
        self._writer: _WriterThread | None = None
        self._readers: ReaderPool | None = None
        self._checkpointer: Checkpointer | None = None
        #: Recently stored messages by idempotency key (answers retries without a round trip).
        self.recent = RecentMessages()
        #: Lookups by idempotency key that other storage modules add (moderation: its holds;
        #: ``probe(conn, keys) -> {key: answer}``); ``find_by_client_id`` runs them in the same
        #: batched reader call for keys without a message (``storage.sqlite_keys``), and
        #: ``take_probed`` hands each answer out once, within ``PROBED_TTL_S``.
        self.key_probes: dict[str, KeyProbe] = {}
        self._probed: dict[tuple[str, str, str, str], tuple[float, Any]] = {}
        self._keys = KeyLookups(self._submit_key_read, _by_keys, self.key_probes)
        self.commits = 0
        self.committed_ops = 0
        self.last_commit_seconds = 0.0
        self.commit_observer: Callable[[int, float], None] | None = None
        self._lock_fd: int | None = None
        #: Seconds between WAL checkpoints (see ``storage.sqlite_readers.Checkpointer``).
        self.checkpoint_interval = 1.0

    # lifecycle ----------------------------------------------------------------------------
    async def open(self) -> None:
        """Create the file, apply migrations, start the writer and readers."""
        loop = asyncio.get_running_loop()
        self._lock_fd = take_lock(Path(self.path), shared=True)
        if self._lock_fd is None:
            raise StoreUnavailable(f"{self.path} is being restored; try again later")
        await loop.run_in_executor(None, self._migrate)
        self._readers = ReaderPool(lambda: connect(self.path, readonly=True), loop,
                                   self._reader_count)
        self._writer = _WriterThread(self.path, loop, self._committed)
        self._writer.start()
        self._checkpointer = Checkpointer(lambda: connect(self.path), self.checkpoint_interval)
        self._writer.catch_up = self._checkpointer.take_done
        self._checkpointer.start()

    def _migrate(self) -> None:
        conn = connect(self.path)
        try:
            schema.migrate(conn)
        except sqlite3.Error as error:
            raise StoreUnavailable(f"cannot migrate {self.path}: {error}") from error
        finally:
            conn.close()

    async def close(self) -> None:
        """Drain the write queue, stop the threads, close every connection."""
        loop = asyncio.get_running_loop()
        if self._writer is not None:
            self._writer.stop()
            await loop.run_in_executor(None, self._writer.join)
            self._writer = None
        if self._readers is not None:
            self._readers.flush()
            await loop.run_in_executor(None, self._readers.close)
            self._readers = None
        if self._checkpointer is not None:
            await loop.run_in_executor(None, self._checkpointer.stop)
            self._checkpointer = None
        if self._lock_fd is not None:
            release_lock(self._lock_fd)
            self._lock_fd = None

    def _committed(self, ops: int, seconds: float) -> None:
        self.commits += 1
        self.committed_ops += ops
        self.last_commit_seconds = seconds
        if self.commit_observer is not None:
            self.commit_observer(ops, seconds)

    def stats(self) -> dict[str, float]:
        """Write queue depth and commit counters."""
        return {"write_queue_depth": float(self._writer.pending if self._writer else 0),
                "commits": float(self.commits), "committed_ops": float(self.committed_ops),
                "last_commit_seconds": self.last_commit_seconds}

    # plumbing -----------------------------------------------------------------------------
    async def run_write(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` on the writer thread in a group commit (for storage modules).
        It may change any message, so the recent-message map is dropped around it."""
        self.recent.clear()
        try:
            return await self._write(fn, *args)
        finally:
            self.recent.clear()

    async def run_read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` on a reader thread (for storage modules)."""
        return await self._read(fn, *args)

    async def _write(self, fn: Callable[..., T], *args: Any) -> T:
        if self._writer is None:
            raise StoreUnavailable("store is closed")
        return await self._writer.submit(fn, *args)

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._submit_read(fn, *args)

    def _submit_key_read(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        if self._writer is None:
            raise StoreUnavailable("store is closed")
        return self._writer.submit_read(fn, args)

    def _submit_read(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        if self._readers is None:
            raise StoreUnavailable("store is closed")
        return self._readers.submit(fn, args)

    async def ping(self) -> None:
        """A read round-trip through the reader pool."""
        await self._read(lambda conn: conn.execute("SELECT 1").fetchone())

    # channels -----------------------------------------------------------------------------
    async def ensure_channel(self, channel: Channel) -> Channel:
        """Create unless present; return the stored channel."""
        return await self._write(_ensure_channel, channel)

    async def create_channel(self, channel: Channel) -> Channel:
        """Create; Conflict if the id exists."""
        return await self._write(_create_channel, channel)

    async def get_channel(self, channel_id: str) -> Channel | None:
        """One channel or None."""
        return await self._read(_get_channel, channel_id)

    async def list_channels(self) -> list[Channel]:
        """All channels by id."""
        return await self._read(lambda conn: [_channel(r) for r in conn.execute(
            "SELECT * FROM channels ORDER BY id")])

    async def set_channel_category(self, channel_id: str, category: str | None) -> Channel:
        """Set or clear a channel's category; NotFound if it does not exist."""
        return await self._write(_set_channel_category, channel_id, category)

    async def channel_last_seqs(self, channel_ids: list[str]) -> dict[str, int]:
        """Current last seqs, in one query."""
        return await self._read(_last_seqs, channel_ids)

    # messages -----------------------------------------------------------------------------
    async def append_message(self, draft: MessageDraft) -> tuple[Message, bool]:
        """Store with the next seq, idempotent on (channel, author, client_id): a retry seen
        recently is answered from memory, any other one by the writer's own lookup."""
        if draft.client_id is not None:
            first = self.recent.get(draft.channel, draft.author_id, draft.client_id)
            if first is not None:
                return first, False
        message, created = await self._write(_append, draft)
        self.recent.remember(message)
        return message, created

    async def get_message(self, message_id: str) -> Message | None:
        """One message or None."""
        return await self._read(_get_message, message_id)

    async def find_by_client_id(self, channel_id: str, author_id: str, client_id: str
                                ) -> Message | None:
        """The first message with this idempotency key, or None (memory first, see
        ``RecentMessages``)."""
        first = self.recent.get(channel_id, author_id, client_id)
        if first is not None:
            return first
        first, answers = await self._keys.find((channel_id, author_id, client_id))
        if first is not None:
            self.recent.remember(first)
        elif answers:
            self._keep_probed(channel_id, author_id, client_id, answers)
        return first

    def _keep_probed(self, channel_id: str, author_id: str, client_id: str,
                     answers: dict[str, Any]) -> None:
        now = time.monotonic()
        for name, answer in answers.items():
            self._probed[(name, channel_id, author_id, client_id)] = (now, answer)
        while len(self._probed) > PROBED_MAX:
            del self._probed[next(iter(self._probed))]

    def take_probed(self, name: str, channel_id: str, author_id: str, client_id: str
                    ) -> tuple[bool, Any]:
        """``(True, answer)`` of key probe ``name`` if ``find_by_client_id`` ran it for this
        key within ``PROBED_TTL_S`` (each answer is handed out once), else ``(False, None)``."""
        kept = self._probed.pop((name, channel_id, author_id, client_id), None)
        if kept is None or time.monotonic() - kept[0] > PROBED_TTL_S:
            return False, None
        return True, kept[1]

    async def edit_message(self, message_id: str, text: str) -> Message:
        """New text and ``edited_at``."""
        return await self._changing(message_id, self._write(
            _update_message, message_id, "text = ?, edited_at = ?", (text, now_iso())))

    async def delete_message(self, message_id: str) -> Message:
        """Soft delete: text cleared, reactions dropped, ``deleted`` set."""
        return await self._changing(message_id, self._write(
            _update_message, message_id,
            "text = '', deleted = 1, reactions = '{}', edited_at = ?", (now_iso(),)))

    async def set_reaction(self, message_id: str, emoji: str, user_id: str,
                           present: bool) -> Message:
        """Add or remove one user's reaction."""
        return await self._changing(message_id, self._write(_set_reaction, message_id, emoji,
                                                            user_id, present))

    async def _changing(self, message_id: str, write: Awaitable[Message]) -> Message:
        """Await a write that changes one message; it is no longer served from memory."""
        self.recent.changed(message_id)
        try:
            return await write
        finally:
            self.recent.changed(message_id)

    async def history(self, channel_id: str, *, before_seq: int | None = None,
                      after_seq: int | None = None, limit: int = 50,
                      thread_id: str | None = None) -> list[Message]:
        """Messages by seq (see Store.history)."""
        return await self._read(_history, channel_id, before_seq, after_seq, limit, thread_id)

    # read state ---------------------------------------------------------------------------
    async def set_read(self, user_id: str, channel_id: str, seq: int) -> int:
        """Move the marker forward only."""
        return await self._write(_set_read, user_id, channel_id, seq)

    async def read_state(self, user_id: str) -> dict[str, int]:
        """Markers by channel."""
        return await self._read(lambda conn: dict(conn.execute(
            "SELECT channel_id, seq FROM read_state WHERE user_id = ?", (user_id,))))


# SQL, run on the writer thread or a reader thread ------------------------------------------
def _get_channel(conn: sqlite3.Connection, channel_id: str) -> Channel | None:
    row = conn.execute("SELECT * FROM channels WHERE id = ?", (channel_id,)).fetchone()
    return _channel(row) if row else None


def _insert_channel(conn: sqlite3.Connection, c: Channel) -> None:
    conn.execute("INSERT INTO channels (id, name, kind, read_roles, post_roles, members, "
                 "created_at, last_seq, category) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?)",
                 (c.id, c.name, c.kind, orjson.dumps(c.read_roles).decode(),
                  orjson.dumps(c.post_roles).decode(),
                  None if c.members is None else orjson.dumps(c.members).decode(),
                  c.created_at, c.category))


def _ensure_channel(conn: sqlite3.Connection, channel: Channel) -> Channel:
    existing = _get_channel(conn, channel.id)
    if existing is not None:
        return existing
    _insert_channel(conn, channel)
    return channel


def _set_channel_category(conn: sqlite3.Connection, channel_id: str,
                          category: str | None) -> Channel:
    if conn.execute("UPDATE channels SET category = ? WHERE id = ?",
                    (category, channel_id)).rowcount == 0:
        raise NotFound(f"channel {channel_id} does not exist")
    found = _get_channel(conn, channel_id)
    assert found is not None
    return found


def _create_channel(conn: sqlite3.Connection, channel: Channel) -> Channel:
    if _get_channel(conn, channel.id) is not None:
        raise Conflict(f"channel {channel.id} exists")
    _insert_channel(conn, channel)
    return channel


def _last_seqs(conn: sqlite3.Connection, channel_ids: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for start in range(0, len(channel_ids), 500):
        chunk = channel_ids[start:start + 500]
        marks = ",".join("?" * len(chunk))
        found.update(conn.execute(f"SELECT id, last_seq FROM channels WHERE id IN ({marks})",
                                  chunk).fetchall())
    return found


def _get_message(conn: sqlite3.Connection, message_id: str) -> Message | None:
    row = conn.execute(f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?",
                       (message_id,)).fetchone()
    return _message(row) if row else None


def _by_client_id(conn: sqlite3.Connection, channel_id: str, author_id: str,
                  client_id: str) -> Message | None:
    row = conn.execute(f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE channel_id = ? AND "
                       "author_id = ? AND client_id = ?",
                       (channel_id, author_id, client_id)).fetchone()
    return _message(row) if row else None


#: One statement: the next seq read from the channel row, nothing written when the idempotency
#: key exists (or the channel does not).
_INSERT_NEXT = (f"INSERT INTO messages ({MESSAGE_COLUMNS}) SELECT ?, id, last_seq + 1, ?, ?, ?, ?, "
                "?, ?, NULL, 0, '{}' FROM channels WHERE id = ? ON CONFLICT DO NOTHING "
                "RETURNING seq")


def _by_keys(conn: sqlite3.Connection, keys: list[Key],
             probes: tuple[tuple[str, KeyProbe], ...]) -> dict[Key, Found]:
    """The first message of each key, and for keys without one the probes' answers (all in
    one statement each; see ``storage.sqlite_keys``)."""
    rows = conn.execute(keys_cte(len(keys)) + f"SELECT {_BY_KEYS_COLUMNS} FROM k JOIN messages "
                        "AS m ON m.channel_id = k.c AND m.author_id = k.a AND m.client_id = k.i",
                        flat(keys)).fetchall()
    found: dict[Key, Found] = {}
    for row in rows:
        message = _message(row)
        assert message.client_id is not None
        found[(message.channel, message.author_id, message.client_id)] = (message, {})
    missing = [key for key in keys if key not in found]
    if missing and probes:
        answers = {name: probe(conn, missing) for name, probe in probes}
        for key in missing:
            found[key] = (None, {name: answers[name].get(key) for name, _ in probes})
    return found


def _append(conn: sqlite3.Connection, d: MessageDraft) -> tuple[Message, bool]:
    """Store a message with the channel's next seq, or return the one stored under its key.
    Statement-atomic (see ``SAVEPOINT_FREE``): either nothing is written or the INSERT is, and
    the channel's ``last_seq`` follows it in the same transaction — the seq is gap-free."""
    message_id, created_at = new_id(), now_iso()
    row = conn.execute(_INSERT_NEXT, (message_id, d.author_id, d.author_name, d.text,
                                      d.client_id, d.thread_id, created_at, d.channel)
                       ).fetchone()
    if row is None:
        return _not_inserted(conn, d), False
    conn.execute("UPDATE channels SET last_seq = ? WHERE id = ?", (row[0], d.channel))
    return Message(id=message_id, channel=d.channel, seq=row[0], author_id=d.author_id,
                   author_name=d.author_name, text=d.text, created_at=created_at,
                   client_id=d.client_id, thread_id=d.thread_id), True


def _not_inserted(conn: sqlite3.Connection, d: MessageDraft) -> Message:
    """Why ``_append``'s INSERT wrote nothing: the key's first message, or an error."""
    if d.client_id is not None:
        existing = _by_client_id(conn, d.channel, d.author_id, d.client_id)
        if existing is not None:
            return existing
    if _get_channel(conn, d.channel) is None:
        raise NotFound(f"channel {d.channel} does not exist")
    raise Conflict(f"message id or seq already taken in {d.channel}")  # not expected


#: Writes that leave the database unchanged when they raise (a failed SQLite statement is undone
#: by SQLite itself and they write with at most one statement before the last): the writer runs
#: them without a SAVEPOINT, two statements fewer per message.
SAVEPOINT_FREE: frozenset[Callable[..., Any]] = frozenset({_append})


def _update_message(conn: sqlite3.Connection, message_id: str, assignments: str,
                    params: tuple[Any, ...]) -> Message:
    cursor = conn.execute(f"UPDATE messages SET {assignments} WHERE id = ?", (*params, message_id))
    if cursor.rowcount == 0:
        raise NotFound(f"message {message_id} does not exist")
    message = _get_message(conn, message_id)
    assert message is not None
    return message


def _set_reaction(conn: sqlite3.Connection, message_id: str, emoji: str, user_id: str,
                  present: bool) -> Message:
    message = _get_message(conn, message_id)
    if message is None or message.deleted:
        raise NotFound(f"message {message_id} does not exist")
    users = message.reactions.get(emoji, [])
    if present and user_id not in users:
        users = [*users, user_id]
    elif not present:
        users = [u for u in users if u != user_id]
    reactions = {**message.reactions, emoji: users} if users else {
        k: v for k, v in message.reactions.items() if k != emoji}
    conn.execute("UPDATE messages SET reactions = ? WHERE id = ?",
                 (orjson.dumps(reactions).decode(), message_id))
    message.reactions = reactions
    return message


def _history(conn: sqlite3.Connection, channel_id: str, before_seq: int | None,
             after_seq: int | None, limit: int, thread_id: str | None) -> list[Message]:
    where: list[str] = ["channel_id = ?"]
    params: list[Any] = [channel_id]
    if thread_id is not None:
        where.append("(thread_id = ? OR id = ?)")
        params += [thread_id, thread_id]
    if after_seq is not None:
        where.append("seq > ?")
        params.append(after_seq)
    if before_seq is not None:
        where.append("seq < ?")
        params.append(before_seq)
    order = "ASC" if after_seq is not None else "DESC"
    rows = conn.execute(f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE {' AND '.join(where)} "
                        f"ORDER BY seq {order} LIMIT ?", (*params, limit)).fetchall()
    messages = [_message(r) for r in rows]
    return messages if order == "ASC" else messages[::-1]


def _set_read(conn: sqlite3.Connection, user_id: str, channel_id: str, seq: int) -> int:
    conn.execute("INSERT INTO read_state (user_id, channel_id, seq, updated_at) "
                 "VALUES (?, ?, ?, ?) ON CONFLICT (user_id, channel_id) DO UPDATE SET "
                 "seq = MAX(seq, excluded.seq), updated_at = excluded.updated_at",
                 (user_id, channel_id, seq, now_iso()))
    row = conn.execute("SELECT seq FROM read_state WHERE user_id = ? AND channel_id = ?",
                       (user_id, channel_id)).fetchone()
    return int(row[0])


__all__ = ["Conflict", "NotFound", "SQLiteStore"]
