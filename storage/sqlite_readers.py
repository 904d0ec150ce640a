"""The SQLite reader threads (each owns a read-only connection and takes work from one queue)
and the checkpoint thread.

Cheaper per read than ``loop.run_in_executor`` on a ``ThreadPoolExecutor`` (which the profile of
``message:send`` showed as the event loop's largest Python cost): a read is one
``SimpleQueue.put`` of ``(fn, args, future)`` — no ``concurrent.futures.Future``, no work item,
no thread-count bookkeeping, no second future chained onto the loop — and the reader resolves the
loop's own future with a single ``call_soon_threadsafe``. Reads submitted during one iteration of
the loop are handed over together (in chunks of ``CHUNK``: one ``put``, one thread wake-up, one
``call_soon_threadsafe`` per chunk), so under load a read costs a fraction of a thread hand-off.

The writer's connection does not checkpoint the WAL itself (``wal_autocheckpoint = 0``): an
automatic checkpoint runs inside the commit that crosses 1,000 WAL pages, copying pages and
fsyncing the database file while every caller of that batch (and the batches queued behind it)
waits — the p99 of durable acks. ``Checkpointer`` runs ``PRAGMA wal_checkpoint(PASSIVE)`` on its
own connection every second instead; in WAL mode that runs alongside the writer. Under steady
writes it never catches up (the writer appends meanwhile), and SQLite only restarts the WAL from
its start once every frame is checkpointed: the WAL grew without bound (~140 MB in 6,000 single
commits) and every commit's fsync extended the file. So after each of its checkpoints the writer
checkpoints what was appended since (a few frames, between two batches): the next transaction
restarts the WAL, which then stays at the size of about one interval's writes and is overwritten.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from storage.base import StoreUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")
Read = tuple[Callable[..., Any], tuple[Any, ...], asyncio.Future[Any]]
Outcome = tuple[asyncio.Future[Any], Any, BaseException | None]
#: Reads per hand-off: large enough to amortise a wake-up, small enough that both readers
#: share a burst (e.g. a join storm's history reads).
CHUNK = 16


def settle_reads(outcomes: list[Outcome]) -> None:
    """Resolve the futures of finished reads (on the loop's thread)."""
    for future, value, error in outcomes:
        if future.done():  # the caller was cancelled meanwhile
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)


def run_read(conn: sqlite3.Connection, read: Read) -> Outcome:
    """Run one read on ``conn``; its outcome for ``settle_reads`` (errors are handed over)."""
    fn, args, future = read
    try:
        return future, fn(conn, *args), None
    except sqlite3.Error as failure:
        return future, None, StoreUnavailable(f"store read failed: {failure}")
    except Exception as failure:  # handed to the awaiting caller
        return future, None, failure


class ReaderPool:
    """``threads`` reader threads over ``connect()``-made connections (see module docstring)."""

    def __init__(self, connect: Callable[[], sqlite3.Connection],
                 loop: asyncio.AbstractEventLoop, threads: int) -> None:
        self._connect = connect
        self._loop = loop
        self._queue: queue.SimpleQueue[list[Read] | None] = queue.SimpleQueue()
        self._pending: list[Read] = []
        self._threads = [threading.Thread(target=self._run, daemon=True,
                                          name=f"gigvora-sqlite-reader_{n}")
                         for n in range(max(1, threads))]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[..., T], args: tuple[Any, ...]) -> asyncio.Future[T]:
        """Queue ``fn(conn, *args)``; the future resolves on the loop with its result (the read
        is handed to a reader at the end of this loop iteration, with the others made in it)."""
        future: asyncio.Future[T] = self._loop.create_future()
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append((fn, args, future))
        return future

    def flush(self) -> None:
        """Hand the reads submitted so far to the reader threads (on the loop's thread)."""
        pending, self._pending = self._pending, []
        for start in range(0, len(pending), CHUNK):
            self._queue.put(pending[start:start + CHUNK])

    def _run(self) -> None:
        conn = self._connect()
        try:
            while (reads := self._queue.get()) is not None:
                outcomes = [run_read(conn, read) for read in reads]
                try:
                    self._loop.call_soon_threadsafe(settle_reads, outcomes)
                except RuntimeError:  # the loop is closed: nobody is waiting any more
                    return
        finally:
            conn.close()

    def close(self) -> None:
        """Finish queued reads, stop the threads and close their connections (blocks; call
        ``flush`` on the loop first so that reads submitted in this iteration run too)."""
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()


class Checkpointer(threading.Thread):
    """Checkpoints the WAL every ``interval`` seconds, off the writer's commit path."""

    def __init__(self, connect: Callable[[], sqlite3.Connection], interval: float = 1.0) -> None:
        super().__init__(name="gigvora-sqlite-checkpoint", daemon=True)
        self._connect = connect
        self._interval = interval
        self._halt = threading.Event()
        self.checkpoints = 0
        self._done = False

    def take_done(self) -> bool:
        """True once after each checkpoint this thread completed (for the writer's catch-up)."""
        done, self._done = self._done, False
        return done

    def run(self) -> None:
        conn = self._connect()
        try:
            while not self._halt.wait(self._interval):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    self.checkpoints += 1
                    self._done = True
                except sqlite3.Error as error:  # busy or I/O: the next round retries
                    log.warning("wal checkpoint failed", extra={"why": str(error)})
        finally:
            conn.close()

    def stop(self) -> None:
        """Stop after the current checkpoint (blocks until the thread has exited)."""
        self._halt.set()
        self.join()
