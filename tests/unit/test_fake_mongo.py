"""The MongoDB contract our backend relies on, through the real PyMongo driver. Against the fake
server by default (so the fake is checked to follow it), and against a real replica set when
``GIGVORA_TEST_MONGO_URL`` is set (so the same assertions check the fake's model of MongoDB)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import pytest

pytest.importorskip("pymongo", reason="pymongo not installed: pip install -e '.[mongodb]'")

from pymongo import AsyncMongoClient, IndexModel, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure

Doc = dict[str, Any]


@pytest.fixture
async def client(mongo_server_url: str) -> AsyncIterator[AsyncMongoClient[Doc]]:
    made: AsyncMongoClient[Doc] = AsyncMongoClient(mongo_server_url)
    yield made
    await made.close()


@pytest.fixture
async def db(client: AsyncMongoClient[Doc], mongo_url: str) -> AsyncDatabase[Doc]:
    return client[urlsplit(mongo_url).path.lstrip("/")]


async def test_hello_is_a_replica_set_primary_with_sessions(client: AsyncMongoClient[Doc]
                                                            ) -> None:
    hello = await client.admin.command("hello")
    assert hello["isWritablePrimary"] is True and hello["setName"]
    assert hello["maxWireVersion"] >= 17 and hello["logicalSessionTimeoutMinutes"] > 0
    assert (await client.admin.command("ping"))["ok"] == 1


async def test_unique_indexes_raise_duplicate_key_with_mongodb_details(db: AsyncDatabase[Doc]
                                                                       ) -> None:
    await db.m.create_indexes([
        IndexModel([("c", 1), ("k", 1)], unique=True, name="c_k",
                   partialFilterExpression={"k": {"$exists": True}})])
    await db.m.insert_many([{"c": 1}, {"c": 1}, {"c": 1, "k": "a"}])  # partial: no k, no entry
    with pytest.raises(DuplicateKeyError) as caught:
        await db.m.insert_one({"c": 1, "k": "a"})
    details = caught.value.details
    assert details is not None and details["code"] == 11000
    assert details["keyPattern"] == {"c": 1, "k": 1} and details["keyValue"] == {"c": 1, "k": "a"}
    assert "c_k dup key" in details["errmsg"]
    with pytest.raises(BulkWriteError) as bulk:
        await db.m.insert_many([{"c": 2, "k": "a"}, {"c": 1, "k": "a"}, {"c": 3, "k": "a"}])
    assert bulk.value.details["nInserted"] == 1  # ordered: stops at the duplicate
    assert [e["code"] for e in bulk.value.details["writeErrors"]] == [11000]
    with pytest.raises(DuplicateKeyError):
        await db.m.find_one_and_update({"c": 1, "k": "b"}, {"$set": {"k": "a"}}, upsert=True)
    with pytest.raises(DuplicateKeyError):
        await db.m.insert_one({"_id": (await db.m.find_one({"k": "a"}))["_id"]})  # type: ignore[index]


async def test_indexes_are_listed_and_recreated_idempotently(db: AsyncDatabase[Doc]) -> None:
    model = IndexModel([("a", 1), ("b", -1)], unique=True, name="a_b")
    assert await db.x.create_indexes([model]) == ["a_b"]
    assert await db.x.create_indexes([model]) == ["a_b"]
    listed = {doc["name"]: doc async for doc in await db.x.list_indexes()}
    assert set(listed) == {"_id_", "a_b"}
    assert listed["a_b"]["key"] == {"a": 1, "b": -1} and listed["a_b"]["unique"] is True
    with pytest.raises(OperationFailure) as conflict:
        await db.x.create_indexes([IndexModel([("a", 1)], name="a_b")])
    assert conflict.value.code == 86  # IndexKeySpecsConflict
    assert [doc async for doc in await db.missing.list_indexes()] == []


async def test_updates_upserts_and_find_and_modify(db: AsyncDatabase[Doc]) -> None:
    doc = await db.c.find_one_and_update({"_id": "c"}, {"$setOnInsert": {"n": 0, "name": "C"}},
                                         upsert=True, return_document=ReturnDocument.AFTER)
    assert doc == {"_id": "c", "n": 0, "name": "C"}
    again = await db.c.find_one_and_update({"_id": "c"}, {"$setOnInsert": {"name": "x"},
                                                          "$inc": {"n": 3}},
                                           upsert=True, return_document=ReturnDocument.AFTER)
    assert again == {"_id": "c", "n": 3, "name": "C"}
    marker = await db.r.find_one_and_update({"u": "a", "ch": "c"}, {"$max": {"seq": 5}},
                                            upsert=True, return_document=ReturnDocument.AFTER)
    assert marker is not None and marker["seq"] == 5 and next(iter(marker)) == "_id"
    lower = await db.r.find_one_and_update({"u": "a", "ch": "c"}, {"$max": {"seq": 2}},
                                           return_document=ReturnDocument.AFTER)
    assert lower is not None and lower["seq"] == 5
    result = await db.c.update_one({"_id": "c", "n": 99}, {"$inc": {"n": 1}})
    assert (result.matched_count, result.modified_count) == (0, 0)
    assert await db.c.find_one_and_update({"_id": "none"}, {"$set": {"a": 1}}) is None
    projected = await db.c.find_one({"_id": "c"}, {"n": 1})
    assert projected == {"_id": "c", "n": 3}


async def test_find_sort_limit_and_cursor_batches(db: AsyncDatabase[Doc]) -> None:
    await db.h.insert_many([{"seq": i, "even": i % 2 == 0} for i in range(250)])
    everything = [d["seq"] async for d in db.h.find({}, batch_size=40).sort("seq", -1)]
    assert everything == list(range(249, -1, -1))
    window = [d["seq"] async for d in db.h.find({"seq": {"$gt": 100, "$lt": 110},
                                                 "even": True}).sort("seq", 1).limit(3)]
    assert window == [102, 104, 106]
    either = db.h.find({"$or": [{"seq": 3}, {"seq": {"$in": [7, 8]}}]}, {"_id": 0, "seq": 1})
    assert sorted([d async for d in either], key=lambda d: d["seq"]) == [
        {"seq": 3}, {"seq": 7}, {"seq": 8}]
    assert await db.h.count_documents({"even": True}) == 125


async def test_an_aborted_transaction_leaves_nothing(client: AsyncMongoClient[Doc],
                                                     db: AsyncDatabase[Doc]) -> None:
    await db.t.insert_one({"_id": "counter", "n": 0})
    async with client.start_session() as session:
        await session.start_transaction()
        await db.t.update_one({"_id": "counter"}, {"$inc": {"n": 1}}, session=session)
        await db.t.insert_one({"_id": "new"}, session=session)
        assert await db.t.count_documents({}, session=session) == 2  # its own writes
        assert await db.t.find_one({"_id": "new"}) is None  # invisible outside
        await session.abort_transaction()

        async def failing(s: Any) -> None:
            await db.t.update_one({"_id": "counter"}, {"$inc": {"n": 1}}, session=s)
            await db.t.insert_one({"_id": "counter"}, session=s)  # duplicate _id
        with pytest.raises(DuplicateKeyError):
            await session.with_transaction(failing)
    assert [d async for d in db.t.find()] == [{"_id": "counter", "n": 0}]


async def test_conflicting_transactions_get_transient_write_conflicts(
        client: AsyncMongoClient[Doc], db: AsyncDatabase[Doc]) -> None:
    await db.t.insert_one({"_id": "counter", "n": 0})
    async with client.start_session() as first, client.start_session() as second:
        await first.start_transaction()
        await second.start_transaction()
        await db.t.update_one({"_id": "counter"}, {"$inc": {"n": 1}}, session=first)
        with pytest.raises(OperationFailure) as caught:
            await db.t.update_one({"_id": "counter"}, {"$inc": {"n": 1}}, session=second)
        assert caught.value.code == 112
        assert caught.value.has_error_label("TransientTransactionError")
        await first.commit_transaction()
        await second.abort_transaction()
    assert (await db.t.find_one({"_id": "counter"})) == {"_id": "counter", "n": 1}


async def test_a_snapshot_is_stable_and_a_stale_write_conflicts(client: AsyncMongoClient[Doc],
                                                                db: AsyncDatabase[Doc]) -> None:
    await db.t.insert_one({"_id": "x", "n": 0})
    async with client.start_session() as session:
        await session.start_transaction()
        assert (await db.t.find_one({"_id": "x"}, session=session))["n"] == 0  # type: ignore[index]
        await db.t.update_one({"_id": "x"}, {"$set": {"n": 5}})  # committed outside
        assert (await db.t.find_one({"_id": "x"}, session=session))["n"] == 0  # type: ignore[index]
        with pytest.raises(OperationFailure) as caught:
            await db.t.update_one({"_id": "x"}, {"$inc": {"n": 1}}, session=session)
        assert caught.value.has_error_label("TransientTransactionError")
        await session.abort_transaction()


async def test_with_transaction_retries_conflicts_until_every_increment_lands(
        client: AsyncMongoClient[Doc], db: AsyncDatabase[Doc]) -> None:
    await db.t.insert_one({"_id": "counter", "n": 0})

    async def increment() -> None:
        async def body(s: Any) -> None:
            await db.t.find_one({"_id": "counter"}, session=s)
            await asyncio.sleep(0.001)  # let the others start their transactions
            await db.t.update_one({"_id": "counter"}, {"$inc": {"n": 1}}, session=s)
            await db.t.insert_one({}, session=s)
        async with client.start_session() as session:
            await session.with_transaction(body)
    await asyncio.gather(*(increment() for _ in range(20)))
    assert (await db.t.find_one({"_id": "counter"}))["n"] == 20  # type: ignore[index]
    assert await db.t.count_documents({}) == 21


async def test_a_write_outside_waits_for_the_transaction_holding_its_document(
        client: AsyncMongoClient[Doc], db: AsyncDatabase[Doc]) -> None:
    await db.t.insert_one({"_id": "x", "n": 0})
    async with client.start_session() as session:
        await session.start_transaction()
        await db.t.update_one({"_id": "x"}, {"$inc": {"n": 10}}, session=session)
        outside = asyncio.ensure_future(db.t.update_one({"_id": "x"}, {"$inc": {"n": 1}}))
        await asyncio.sleep(0.3)
        assert not outside.done()
        await session.commit_transaction()
        await asyncio.wait_for(outside, 5)
    assert (await db.t.find_one({"_id": "x"}))["n"] == 11  # type: ignore[index]


async def test_a_retried_write_is_answered_not_applied_again(client: AsyncMongoClient[Doc],
                                                             db: AsyncDatabase[Doc]) -> None:
    from bson import Int64

    statement = {"update": "r", "updates": [{"q": {"_id": 1}, "u": {"$inc": {"n": 1}},
                                             "upsert": True}], "txnNumber": Int64(7)}
    async with client.start_session() as session:
        first = await db.command(dict(statement), session=session)
        again = await db.command(dict(statement), session=session)  # same lsid and txnNumber
        assert first["n"] == again["n"] == 1
        await db.command({**statement, "txnNumber": Int64(8)}, session=session)
    assert await db.r.find_one({"_id": 1}) == {"_id": 1, "n": 2}
