"""The SQLite store's idempotency-key lookups, which run on the writer thread (outside its
transactions) batched with the writes queued alongside them: exact, probed, failure-contained."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from storage.base import Channel, MessageDraft, StoreUnavailable
from storage.sqlite import SQLiteStore, connect
from storage.sqlite_keys import Key


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    backend = SQLiteStore(str(tmp_path / "keys.db"))
    await backend.open()
    await backend.ensure_channel(Channel(id="c", name="C"))
    yield backend
    await backend.close()


def draft(client_id: str, author: str = "u") -> MessageDraft:
    return MessageDraft("c", author, author.upper(), "text " + client_id, client_id)


async def test_lookups_queued_with_appends_see_what_committed_before_them(
        store: SQLiteStore) -> None:
    stored = [m for m, _ in await asyncio.gather(*(store.append_message(draft(f"k{n}"))
                                                   for n in range(20)))]
    store.recent.clear()  # answer from the database, not from memory
    # lookups and appends submitted in the same loop iteration share the writer's queue
    found, appended = await asyncio.gather(
        asyncio.gather(*(store.find_by_client_id("c", "u", f"k{n}") for n in range(30))),
        asyncio.gather(*(store.append_message(draft(f"new{n}")) for n in range(10))))
    assert found[:20] == stored
    assert found[20:] == [None] * 10
    assert all(created for _, created in appended)
    store.recent.clear()
    for n in range(10):
        again = await store.find_by_client_id("c", "u", f"new{n}")
        assert again is not None and again.id == appended[n][0].id
    assert await store.find_by_client_id("c", "other", "k1") is None


async def test_probes_answer_missing_keys_once(store: SQLiteStore) -> None:
    asked: list[list[Key]] = []

    def probe(conn: sqlite3.Connection, keys: list[Key]) -> dict[Key, Any]:
        asked.append(list(keys))
        return {key: f"answer:{key[2]}" for key in keys if key[2].startswith("held")}

    store.key_probes["test"] = probe
    await store.append_message(draft("stored"))
    store.recent.clear()
    results = await asyncio.gather(store.find_by_client_id("c", "u", "stored"),
                                   store.find_by_client_id("c", "u", "held1"),
                                   store.find_by_client_id("c", "u", "fresh"))
    assert results[0] is not None and results[1:] == [None, None]
    assert asked == [[("c", "u", "held1"), ("c", "u", "fresh")]]  # one batch, missing keys only
    assert store.take_probed("test", "c", "u", "held1") == (True, "answer:held1")
    assert store.take_probed("test", "c", "u", "held1") == (False, None)
    assert store.take_probed("test", "c", "u", "fresh") == (True, None)


async def test_a_failing_lookup_fails_its_callers_not_the_writes(store: SQLiteStore) -> None:
    def broken(conn: sqlite3.Connection, keys: list[Key]) -> dict[Key, Any]:
        raise sqlite3.OperationalError("disk I/O error")

    store.key_probes["broken"] = broken
    lookup = store.find_by_client_id("c", "u", "missing")
    message, created = await store.append_message(draft("written"))
    with pytest.raises(StoreUnavailable):
        await lookup
    assert created and message.seq == 1
    del store.key_probes["broken"]
    assert await store.find_by_client_id("c", "u", "missing") is None


async def test_lookups_after_close_are_refused(tmp_path: Path) -> None:
    backend = SQLiteStore(str(tmp_path / "closed.db"))
    await backend.open()
    await backend.close()
    with pytest.raises(StoreUnavailable):
        await backend.find_by_client_id("c", "u", "k")


async def test_the_wal_restarts_under_continuous_writes(tmp_path: Path) -> None:
    """A checkpoint on another connection never catches up with a writer that never pauses; the
    writer's catch-up after each of the Checkpointer's rounds lets the next commit restart the
    WAL from its start instead of extending it."""
    path = str(tmp_path / "wal.db")
    backend = SQLiteStore(path)
    backend.checkpoint_interval = 3600.0  # this test plays the Checkpointer's rounds itself
    await backend.open()
    await backend.ensure_channel(Channel(id="c", name="C"))
    other, reader = connect(path), connect(path, readonly=True)
    try:
        for n in range(50):
            await backend.append_message(draft(f"a{n}"))
        reader.execute("BEGIN")  # a read in flight: the round below stops at its snapshot,
        reader.execute("SELECT count(*) FROM messages").fetchone()
        for n in range(50):  # as when the writer commits while a round runs
            await backend.append_message(draft(f"b{n}"))
        _, frames, done = other.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        reader.execute("COMMIT")
        assert done < frames  # the Checkpointer's round could not catch up
        assert backend._checkpointer is not None
        backend._checkpointer._done = True  # as after its round: the writer catches up
        for n in range(3):
            await backend.append_message(draft(f"c{n}"))  # the second one restarts the WAL
        _, log, _ = other.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        assert log < frames // 4
        store_again = await backend.find_by_client_id("c", "u", "a7")
        assert store_again is not None and store_again.text == "text a7"
    finally:
        other.close()
        reader.close()
        await backend.close()
