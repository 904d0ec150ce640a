"""The Store conformance suite: every backend runs these. MongoDB runs against the fake server
(tests/fakes/mongo), or against a real replica set when ``GIGVORA_TEST_MONGO_URL`` is set."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage import Channel, MessageDraft, Store, open_store
from storage.base import Conflict, NotFound
from tests.mongo_fixtures import drop_database, fresh_database

BACKENDS = ["sqlite", "mongodb"]


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    # (an async fixture cannot be requested with getfixturevalue: the database is made here)
    mongo = request.param == "mongodb"
    url = (fresh_database(request.getfixturevalue("mongo_server_url")) if mongo
           else f"sqlite:///{tmp_path}/conformance.db")
    backend = open_store(url)
    await backend.open()
    await backend.ensure_channel(Channel(id="c", name="C"))
    yield backend
    await backend.close()
    if mongo:
        await drop_database(url)


def draft(text: str, client_id: str | None = None, author: str = "u") -> MessageDraft:
    return MessageDraft("c", author, author.upper(), text, client_id)


async def test_seqs_are_gap_free_under_concurrency(store: Store) -> None:
    results = await asyncio.gather(*(store.append_message(draft(str(i))) for i in range(300)))
    assert sorted(m.seq for m, _ in results) == list(range(1, 301))
    assert len({m.id for m, _ in results}) == 300


async def test_client_id_idempotency(store: Store) -> None:
    first, created = await store.append_message(draft("a", "k"))
    again, created_again = await store.append_message(draft("different text", "k"))
    other_author, _ = await store.append_message(draft("a", "k", author="v"))
    assert created and not created_again and again == first
    assert other_author.seq == first.seq + 1
    concurrent = await asyncio.gather(*(store.append_message(draft("x", "same"))
                                        for _ in range(20)))
    assert len({m.id for m, _ in concurrent}) == 1
    assert sum(created for _, created in concurrent) == 1


async def test_unknown_channel_is_not_found_and_consumes_nothing(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.append_message(MessageDraft("nope", "u", "U", "x"))
    message, _ = await store.append_message(draft("ok"))
    assert message.seq == 1


async def test_history_windows(store: Store) -> None:
    for i in range(10):
        await store.append_message(draft(str(i)))
    assert [m.seq for m in await store.history("c", limit=3)] == [8, 9, 10]
    assert [m.seq for m in await store.history("c", before_seq=4, limit=5)] == [1, 2, 3]
    assert [m.seq for m in await store.history("c", after_seq=7, limit=5)] == [8, 9, 10]
    assert await store.history("c", after_seq=10) == []


async def test_edit_delete_reactions(store: Store) -> None:
    message, _ = await store.append_message(draft("hello"))
    edited = await store.edit_message(message.id, "hello!")
    assert edited.text == "hello!" and edited.edited_at is not None
    reacted = await store.set_reaction(message.id, "🎉", "a", True)
    reacted = await store.set_reaction(message.id, "🎉", "b", True)
    assert reacted.reactions == {"🎉": ["a", "b"]}
    assert (await store.set_reaction(message.id, "🎉", "a", True)).reactions == {"🎉": ["a", "b"]}
    assert (await store.set_reaction(message.id, "🎉", "a", False)).reactions == {"🎉": ["b"]}
    deleted = await store.delete_message(message.id)
    assert deleted.deleted and deleted.text == "" and deleted.reactions == {}
    with pytest.raises(NotFound):
        await store.set_reaction(message.id, "🎉", "a", True)
    with pytest.raises(NotFound):
        await store.edit_message("missing", "x")


async def test_threads_in_history(store: Store) -> None:
    root, _ = await store.append_message(draft("root"))
    await store.append_message(draft("other"))
    reply, _ = await store.append_message(MessageDraft("c", "u", "U", "reply", None, root.id))
    thread = await store.history("c", thread_id=root.id)
    assert [m.id for m in thread] == [root.id, reply.id]


async def test_channels_and_read_state(store: Store) -> None:
    with pytest.raises(Conflict):
        await store.create_channel(Channel(id="c", name="again"))
    created = await store.create_channel(Channel(id="d", name="D", kind="private",
                                                 read_roles=["moderator"]))
    assert (await store.get_channel("d")) == created
    assert [c.id for c in await store.list_channels()] == ["c", "d"]  # before "e" below
    assert (await store.ensure_channel(Channel(id="d", name="ignored"))).name == "D"
    assert (await store.create_channel(Channel(id="e", name="E", category="Work"))).category \
        == "Work"
    assert (await store.get_channel("e")).category == "Work"  # type: ignore[union-attr]
    assert (await store.set_channel_category("d", "Staff")).category == "Staff"
    assert (await store.set_channel_category("e", None)).category is None
    assert {c.id: c.category for c in await store.list_channels()} == {
        "c": None, "d": "Staff", "e": None}
    with pytest.raises(NotFound):
        await store.set_channel_category("zz", "X")
    assert await store.set_read("u", "c", 5) == 5
    assert await store.set_read("u", "c", 2) == 5
    assert await store.read_state("u") == {"c": 5}
    await store.append_message(draft("x"))
    assert (await store.get_channel("c")).last_seq == 1  # type: ignore[union-attr]


async def test_ping_and_stats(store: Store) -> None:
    await store.ping()
    assert "write_queue_depth" in store.stats()


async def test_channel_last_seqs(store: Store) -> None:
    await store.append_message(draft("a"))
    await store.append_message(draft("b"))
    assert await store.channel_last_seqs(["c", "missing"]) == {"c": 2}


async def test_find_by_client_id(store: Store) -> None:
    first, _ = await store.append_message(draft("a", "key"))
    assert await store.find_by_client_id("c", "u", "key") == first
    assert await store.find_by_client_id("c", "u", "other") is None
    assert await store.find_by_client_id("c", "v", "key") is None


async def test_history_edges(store: Store) -> None:
    root, _ = await store.append_message(draft("root"))
    for i in range(6):
        await store.append_message(MessageDraft("c", "u", "U", f"r{i}", None,
                                                root.id if i % 2 else None))
    assert [m.seq for m in await store.history("c", after_seq=1, before_seq=5, limit=10)] \
        == [2, 3, 4]
    assert [m.seq for m in await store.history("c", thread_id=root.id, before_seq=6)] \
        == [1, 3, 5]
    assert [m.seq for m in await store.history("c", thread_id=root.id, after_seq=1,
                                               limit=2)] == [3, 5]
    assert [m.seq for m in await store.history("c", limit=1)] == [7]
    assert await store.history("missing") == []
    await store.delete_message(root.id)
    oldest = (await store.history("c", after_seq=0, limit=1))[0]
    assert oldest.deleted and oldest.text == "" and oldest.id == root.id
    assert (await store.ensure_channel(Channel(id="c", name="other"))).last_seq == 7
