"""The MongoDB backend beyond the conformance suite: URL routing, bounded failures against an
unreachable address, the append batching logic against in-memory fakes; then, against a server
(the fake of tests/fakes/mongo, or a real replica set with ``GIGVORA_TEST_MONGO_URL``): two
stores as two nodes, a standalone server refused, deadlines, and the failure paths through
mongod's ``failCommand`` fail point."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

pytest.importorskip("pymongo", reason="pymongo not installed: pip install -e '.[mongodb]'")

from storage import MessageDraft, open_store
from storage.base import NotFound, StoreUnavailable
from storage.mongo import MongoStore, _append_batch, _op_timeout, _uri_options

UNREACHABLE = "mongodb://localhost:1/?serverSelectionTimeoutMS=200"


def test_open_store_routes_mongodb_urls() -> None:
    assert isinstance(open_store(UNREACHABLE), MongoStore)
    assert isinstance(open_store("mongodb+srv://cluster.example.com/gigvora"), MongoStore)


def test_uri_options_and_deadline() -> None:
    options = _uri_options("mongodb://a:1,b:2/db?replicaSet=rs0&timeoutMS=2500")
    assert options == {"replicaset": "rs0", "timeoutms": "2500"}
    assert _op_timeout(options) == 2.5
    assert _op_timeout({"timeoutms": "0"}) is None
    assert _op_timeout({}) == 10.0


async def test_open_against_unreachable_server_fails_fast() -> None:
    store = open_store(UNREACHABLE)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="cannot open the MongoDB store"):
        await asyncio.wait_for(store.open(), 10)
    assert time.monotonic() - started < 5
    with pytest.raises(StoreUnavailable, match="closed"):
        await store.ping()
    await store.close()


async def test_ping_and_reads_are_bounded_when_the_server_is_gone() -> None:
    store = MongoStore(UNREACHABLE)
    store._client = store._new_client()  # as if open() had succeeded before the outage
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match="ping failed"):
            await asyncio.wait_for(store.ping(), 10)
        assert time.monotonic() - started < 2  # under the readiness probe's 2 s
    finally:
        await store.close()


# the append transaction body, against in-memory collections ---------------------------------
class FakeCursor:
    def __init__(self, docs: list[dict[str, Any]]) -> None:
        self.docs = docs

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        async def iterate() -> AsyncIterator[dict[str, Any]]:
            for doc in self.docs:
                yield doc
        return iterate()


class FakeMessages:
    def __init__(self) -> None:
        self.docs: list[dict[str, Any]] = []

    def find(self, query: dict[str, Any], session: Any = None) -> FakeCursor:
        keys = {(o["author_id"], o["client_id"]) for o in query["$or"]}
        return FakeCursor([d for d in self.docs if d["channel_id"] == query["channel_id"]
                           and (d["author_id"], d.get("client_id")) in keys])

    async def insert_many(self, docs: list[dict[str, Any]], ordered: bool = True,
                          session: Any = None) -> None:
        self.docs.extend(docs)


class FakeChannels:
    def __init__(self, **last_seqs: int) -> None:
        self.last_seqs = last_seqs

    async def find_one_and_update(self, query: dict[str, Any], update: dict[str, Any],
                                  **_: Any) -> dict[str, Any] | None:
        if query["_id"] not in self.last_seqs:
            return None
        self.last_seqs[query["_id"]] += update["$inc"]["last_seq"]
        return {"_id": query["_id"], "last_seq": self.last_seqs[query["_id"]]}


def draft(text: str, client_id: str | None = None, author: str = "u") -> MessageDraft:
    return MessageDraft("c", author, author.upper(), text, client_id)


async def run_batch(messages: FakeMessages, channels: FakeChannels,
                    drafts: list[MessageDraft]) -> list[Any]:
    return await _append_batch(messages, channels, "c", drafts, None)  # type: ignore[arg-type]


async def test_batch_allocates_consecutive_seqs_and_dedupes_client_ids() -> None:
    messages, channels = FakeMessages(), FakeChannels(c=4)
    outcomes = await run_batch(messages, channels, [
        draft("a"), draft("b", "k"), draft("b again", "k"), draft("c", "k", author="v")])
    assert [(m.seq, created) for m, created in outcomes] == [
        (5, True), (6, True), (6, False), (7, True)]
    assert outcomes[2][0] == outcomes[1][0]
    assert channels.last_seqs["c"] == 7 and len(messages.docs) == 3
    assert "client_id" not in messages.docs[0]  # omitted, so the partial unique index skips it
    again = await run_batch(messages, channels, [draft("retry", "k"), draft("d")])
    assert [(m.seq, created) for m, created in again] == [(6, False), (8, True)]
    assert again[0][0].text == "b"


async def test_batch_on_a_missing_channel_consumes_nothing() -> None:
    messages, channels = FakeMessages(), FakeChannels()
    outcomes = await run_batch(messages, channels, [draft("a"), draft("b", "k"),
                                                    draft("b", "k")])
    assert all(isinstance(outcome, NotFound) for outcome in outcomes)
    assert messages.docs == []


# group commit: every caller is answered, batches form, failures fail fast --------------------
def batching_store(fail: bool = False) -> tuple[MongoStore, list[int]]:
    store = MongoStore(UNREACHABLE)
    store._client = object()  # type: ignore[assignment]
    sizes: list[int] = []
    messages, channels = FakeMessages(), FakeChannels(c=0)

    async def fake_append(channel_id: str, drafts: list[MessageDraft]) -> list[Any]:
        sizes.append(len(drafts))
        await asyncio.sleep(0.01)
        if fail:
            raise StoreUnavailable("no primary")
        return await run_batch(messages, channels, drafts)
    store._append_with_retries = fake_append  # type: ignore[method-assign]
    return store, sizes


async def test_concurrent_appends_are_group_committed() -> None:
    store, sizes = batching_store()
    results = await asyncio.gather(*(store.append_message(draft(str(i))) for i in range(200)))
    assert sorted(m.seq for m, _ in results) == list(range(1, 201))
    assert sum(sizes) == 200 and len(sizes) < 10
    assert store._queues == {} and store.stats()["write_queue_depth"] == 0
    assert store.committed_ops == 200


async def test_a_failed_batch_fails_the_queue_behind_it_at_once() -> None:
    store, sizes = batching_store(fail=True)
    started = time.monotonic()
    results = await asyncio.gather(*(store.append_message(draft(str(i))) for i in range(50)),
                                   return_exceptions=True)
    assert all(isinstance(r, StoreUnavailable) for r in results)
    assert len(sizes) == 1 and time.monotonic() - started < 1
    assert store._queues == {}


async def test_a_cancelled_leader_does_not_strand_the_batch() -> None:
    store, _ = batching_store()
    leader = asyncio.ensure_future(store.append_message(draft("leader")))
    await asyncio.sleep(0)  # the leader takes its batch and starts the transaction
    followers = [asyncio.ensure_future(store.append_message(draft(str(i)))) for i in range(5)]
    leader.cancel()
    results = await asyncio.gather(*followers)
    assert sorted(m.seq for m, _ in results) == [2, 3, 4, 5, 6]  # the leader's seq 1 committed
    assert leader.cancelled() and store.committed_ops == 6
    assert not store._batches and store._queues == {}


# against a server: the fake (tests/fakes/mongo) or GIGVORA_TEST_MONGO_URL ---------------------
@pytest.fixture
async def two_nodes(mongo_url: str) -> AsyncIterator[tuple[MongoStore, MongoStore]]:
    """Two stores on one database, as two nodes share it (each with its own client)."""
    from storage import Channel

    first, second = MongoStore(mongo_url), MongoStore(mongo_url)
    await first.open()
    await second.open()
    await first.ensure_channel(Channel(id="c", name="C"))
    yield first, second
    await first.close()
    await second.close()


async def test_two_nodes_appending_to_one_channel_get_gap_free_seqs(
        two_nodes: tuple[MongoStore, MongoStore]) -> None:
    first, second = two_nodes
    results = await asyncio.gather(*(
        (first if i % 2 else second).append_message(draft(str(i))) for i in range(200)))
    assert sorted(m.seq for m, _ in results) == list(range(1, 201))
    history = await first.history("c", after_seq=0, limit=500)
    assert [m.seq for m in history] == list(range(1, 201))
    assert {m.text for m in history} == {str(i) for i in range(200)}


async def test_two_nodes_racing_one_client_id_store_one_message(
        two_nodes: tuple[MongoStore, MongoStore]) -> None:
    first, second = two_nodes
    results = await asyncio.gather(*(
        store.append_message(draft(f"try {i}", "same-key"))
        for i in range(10) for store in (first, second)))
    assert len({m.id for m, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert [m.seq for m in await second.history("c")] == [1]


async def test_concurrent_reactions_from_two_nodes_all_land(
        two_nodes: tuple[MongoStore, MongoStore]) -> None:
    first, second = two_nodes
    message, _ = await first.append_message(draft("react to me"))
    await asyncio.gather(*((first if i % 2 else second).set_reaction(message.id, "👍", f"u{i}",
                                                                      True)
                           for i in range(12)))
    stored = await second.get_message(message.id)
    assert stored is not None and sorted(stored.reactions["👍"]) == sorted(
        f"u{i}" for i in range(12))


async def test_a_failed_append_leaves_no_gap(two_nodes: tuple[MongoStore, MongoStore]) -> None:
    first, _ = two_nodes
    await first.append_message(draft("one"))
    messages = first._collection("messages")
    await messages.insert_one({"_id": "squatter", "channel_id": "c", "seq": 2})  # seq 2 taken
    with pytest.raises(StoreUnavailable):
        await first.append_message(draft("two"))
    assert (await first.channel_last_seqs(["c"])) == {"c": 1}  # the counter rolled back
    await messages.delete_one({"_id": "squatter"})
    message, _ = await first.append_message(draft("two again"))
    assert message.seq == 2


async def test_a_standalone_server_is_refused() -> None:
    pytest.importorskip("mongomock")
    from tests.fakes.mongo import FakeMongo

    standalone = await FakeMongo(set_name=None).start()
    store = MongoStore(standalone.url)
    try:
        with pytest.raises(StoreUnavailable, match="must be a replica set"):
            await store.open()
    finally:
        await store.close()
        await standalone.stop()


async def test_store_operations_fail_within_the_deadline_when_the_server_goes() -> None:
    pytest.importorskip("mongomock")
    from storage import Channel
    from tests.fakes.mongo import FakeMongo

    server = await FakeMongo().start()
    store = MongoStore(server.url + "?timeoutMS=1000")
    try:
        await store.open()
        await store.ensure_channel(Channel(id="c", name="C"))
        assert (await store.append_message(draft("before")))[0].seq == 1
        await server.stop()
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            await store.append_message(draft("during"))
        with pytest.raises(StoreUnavailable):
            await store.ping()
        assert time.monotonic() - started < 4
    finally:
        await store.close()


# failure paths, through mongod's failCommand fail point (the fake has it; a real server needs
# enableTestCommands=1) ------------------------------------------------------------------------
@asynccontextmanager
async def fail_command(url: str, times: int, **data: Any) -> AsyncIterator[None]:
    """Fail the store's next ``times`` matching commands (only the store's: by appName)."""
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url)
    try:
        await client.admin.command({"configureFailPoint": "failCommand",
                                    "mode": {"times": times},
                                    "data": {"appName": "gigvora-live", **data}})
        yield
    finally:
        await client.admin.command({"configureFailPoint": "failCommand", "mode": "off"})
        await client.close()


async def test_an_append_survives_a_connection_dropped_mid_transaction(
        two_nodes: tuple[MongoStore, MongoStore], mongo_url: str) -> None:
    store, _ = two_nodes
    async with fail_command(mongo_url, 1, failCommands=["insert"], closeConnection=True):
        message, created = await store.append_message(draft("through a network error", "k"))
    assert created and message.seq == 1
    again, created_again = await store.append_message(draft("retry", "k"))
    assert again == message and not created_again
    assert [m.seq for m in await store.history("c")] == [1]


async def test_a_commit_with_an_unknown_outcome_is_retried_not_repeated(
        two_nodes: tuple[MongoStore, MongoStore], mongo_url: str) -> None:
    store, _ = two_nodes
    timeout = {"code": 64, "codeName": "WriteConcernFailed", "errInfo": {"wtimeout": True},
               "errmsg": "waiting for replication timed out"}
    async with fail_command(mongo_url, 1, failCommands=["commitTransaction"],
                            writeConcernError=timeout):
        message, _ = await store.append_message(draft("committed once"))
    assert message.seq == 1
    assert [m.text for m in await store.history("c")] == ["committed once"]
    assert (await store.append_message(draft("next")))[0].seq == 2


async def test_retryable_writes_ride_out_a_step_down(
        two_nodes: tuple[MongoStore, MongoStore], mongo_url: str) -> None:
    store, _ = two_nodes
    message, _ = await store.append_message(draft("typo"))
    async with fail_command(mongo_url, 1, failCommands=["findAndModify"], errorCode=10107):
        edited = await store.edit_message(message.id, "fixed")  # NotWritablePrimary, retried
    assert edited.text == "fixed"
    async with fail_command(mongo_url, 1, failCommands=["find"], errorCode=11600):
        assert [m.text for m in await store.history("c")] == ["fixed"]  # retryable read
    async with fail_command(mongo_url, 1, failCommands=["findAndModify"], errorCode=91):
        assert await store.set_read("u", "c", 1) == 1


async def test_a_failed_transaction_statement_is_store_unavailable_and_consumes_nothing(
        two_nodes: tuple[MongoStore, MongoStore], mongo_url: str) -> None:
    store, _ = two_nodes
    async with fail_command(mongo_url, 1, failCommands=["insert"], errorCode=50):
        with pytest.raises(StoreUnavailable):
            await store.append_message(draft("refused"))
    assert await store.channel_last_seqs(["c"]) == {"c": 0}
    assert (await store.append_message(draft("accepted")))[0].seq == 1


async def test_a_timed_out_append_does_not_leave_the_channel_blocked(mongo_url: str) -> None:
    """An append that misses its deadline mid-transaction leaves the transaction open on the
    server (its abort cannot be sent past the deadline), holding the channel's counter: every
    later append to the channel would meet a write conflict until the server's transaction
    lifetime ends (60 s). The store kills the session instead."""
    from storage import Channel

    store = MongoStore(mongo_url + ("&" if "?" in mongo_url else "?") + "timeoutMS=1000")
    await store.open()
    try:
        await store.ensure_channel(Channel(id="c", name="C"))
        async with fail_command(mongo_url, 1, failCommands=["insert"], blockConnection=True,
                                blockTimeMS=1500):
            with pytest.raises(StoreUnavailable):
                await store.append_message(draft("too slow"))
        started = time.monotonic()
        message, _ = await store.append_message(draft("next"))
        assert message.seq == 1 and time.monotonic() - started < 3  # not the 60 s lifetime
        assert [m.text for m in await store.history("c")] == ["next"]
    finally:
        await store.close()


async def test_a_crashed_nodes_transaction_blocks_its_channel_only_for_its_lifetime() -> None:
    """A node killed between its counter update and its commit leaves the transaction open: the
    server aborts it after ``transactionLifetimeLimitSeconds`` (60 s by default; 1 s here). Until
    then appends to that channel retry their write conflicts (and fail at their deadline); then
    they succeed, and the dead transaction's seq is not consumed."""
    pytest.importorskip("mongomock")
    from pymongo import AsyncMongoClient

    from storage import Channel
    from tests.fakes.mongo import FakeMongo

    server = await FakeMongo(transaction_lifetime_s=1.0).start()
    store = MongoStore(server.url + "?timeoutMS=5000")
    crashed: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(server.url)
    try:
        await store.open()
        await store.ensure_channel(Channel(id="c", name="C"))
        session = crashed.start_session()
        await session.start_transaction()
        await crashed.get_default_database()["channels"].update_one(
            {"_id": "c"}, {"$inc": {"last_seq": 1}}, session=session)  # ... and never commits
        started = time.monotonic()
        message, _ = await store.append_message(draft("after the crash"))
        assert message.seq == 1 and 0.9 < time.monotonic() - started < 4
    finally:
        await crashed.close()
        await store.close()
        await server.stop()
