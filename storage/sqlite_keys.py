"""Idempotency-key lookups for the SQLite store, batched: one thread hand-off and one SQL statement
per batch of keys, however many messages asked.

Every new message with a ``client_id`` is looked up before the pre-store checks (a retry returns
the first message unchecked). Under load one read per message was the store's bottleneck: each
read is a thread hand-off, and each SQLite step on another thread gives the GIL back and must win
it again from a busy event loop (up to the 5 ms switch interval each time). ``KeyLookups`` gathers
the keys asked for during one loop iteration and looks them all up with one
``WITH k(c, a, i) AS (VALUES …) … JOIN`` on the unique index, on the writer thread (see
``storage.sqlite._WriterThread``: the hand-off mostly rides on the writes' own); key probes (e.g.
moderation's holds, see ``SQLiteStore.key_probes``) answer the keys without a message in the same
call, batched the same way. Results are exact: a key that is not found had no row when the
statement ran.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from collections.abc import Callable
from typing import Any

from storage.base import Message, StoreUnavailable

Key = tuple[str, str, str]  # channel id, author id, client id
#: ``probe(conn, keys) -> {key: answer}`` for keys that have an answer (others get None).
KeyProbe = Callable[[sqlite3.Connection, list[Key]], dict[Key, Any]]
Found = tuple[Message | None, dict[str, Any]]
Submit = Callable[..., "asyncio.Future[dict[Key, Found]]"]
#: Keys per statement (3 bound variables each; far below SQLite's limit).
CHUNK = 64


def keys_cte(count: int) -> str:
    """``WITH k(c, a, i) AS (VALUES (?, ?, ?), …)`` for ``count`` keys."""
    return "WITH k(c, a, i) AS (VALUES " + ",".join(["(?,?,?)"] * count) + ") "


def flat(keys: list[Key]) -> list[str]:
    """The bound parameters of ``keys_cte(len(keys))``."""
    return [part for key in keys for part in key]


class KeyLookups:
    """Gathers ``find`` calls made during one loop iteration into batched lookups."""

    def __init__(self, submit: Submit, lookup: Callable[..., dict[Key, Found]],
                 probes: dict[str, KeyProbe]) -> None:
        self._submit = submit
        self._lookup = lookup
        self._probes = probes
        self._pending: list[tuple[Key, asyncio.Future[Found]]] = []

    def find(self, key: Key) -> asyncio.Future[Found]:
        """The first message stored under ``key`` (or None) and, when None, the probes'
        answers; resolved after the batch this key joins has been read."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Found] = loop.create_future()
        if not self._pending:
            loop.call_soon(self.flush)
        self._pending.append((key, future))
        return future

    def flush(self) -> None:
        """Hand every pending key over (on the loop's thread)."""
        pending, self._pending = self._pending, []
        probes = tuple(self._probes.items())
        for start in range(0, len(pending), CHUNK):
            chunk = pending[start:start + CHUNK]
            try:
                read = self._submit(self._lookup, [key for key, _ in chunk], probes)
            except StoreUnavailable as error:
                _fail(chunk, error)
                continue
            read.add_done_callback(functools.partial(_settle, chunk))


def _settle(chunk: list[tuple[Key, asyncio.Future[Found]]],
            done: asyncio.Future[dict[Key, Found]]) -> None:
    if done.cancelled() or done.exception() is not None:
        _fail(chunk, done.exception() or StoreUnavailable("store read cancelled"))
        return
    found = done.result()
    for key, future in chunk:
        if not future.done():
            future.set_result(found.get(key, (None, {})))


def _fail(chunk: list[tuple[Key, asyncio.Future[Found]]], error: BaseException) -> None:
    for _, future in chunk:
        if not future.done():
            future.set_exception(error)
