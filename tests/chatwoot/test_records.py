"""ChatwootRecords on a real SQLite store: head-of-line leases, retries, CAS flags, deliveries."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from storage.chatwoot import ChatwootRecords
from storage.sqlite import SQLiteStore


@pytest.fixture
async def records(tmp_path: Path) -> AsyncIterator[ChatwootRecords]:
    store = SQLiteStore(str(tmp_path / "t.db"))
    await store.open()
    yield ChatwootRecords(store)
    await store.close()


def message(i: int, **extra: Any) -> dict[str, Any]:
    return {"id": f"m{i}", "conversation_id": 5, "user_id": "u", "message_type": "outgoing",
            "private": False, "text": f"t{i}", "origin": "agent", "author_id": "a",
            "author_name": "A", "author_kind": "agent", "client_id": None, "status": "queued",
            **extra}


async def test_only_the_head_of_each_key_is_claimed(records: ChatwootRecords) -> None:
    for i in range(3):
        await records.queue_message(message(i), "conversation:5")
    await records.queue_message(message(9, conversation_id=6), "conversation:6")
    first = await records.claim_jobs(lease_s=30)
    assert [j["payload"]["message_id"] for j in first] == ["m0", "m9"]
    assert await records.claim_jobs(lease_s=30) == []  # heads are leased; the rest wait
    await records.job_retry(first[0]["seq"], 0.0, "down")
    again = await records.claim_jobs(lease_s=30)
    assert [j["payload"]["message_id"] for j in again] == ["m0"]
    assert again[0]["attempts"] == 2
    await records.job_done(again[0]["seq"])
    assert [j["payload"]["message_id"] for j in await records.claim_jobs(30)] == ["m1"]


async def test_expired_leases_are_claimed_again(records: ChatwootRecords) -> None:
    await records.queue_message(message(1), "k")
    assert len(await records.claim_jobs(lease_s=0.01)) == 1
    await asyncio.sleep(0.02)
    assert len(await records.claim_jobs(lease_s=30)) == 1


async def test_failed_jobs_unblock_the_key(records: ChatwootRecords) -> None:
    await records.queue_message(message(1), "k")
    await records.queue_message(message(2), "k")
    head = (await records.claim_jobs(30))[0]
    await records.job_failed(head["seq"], "422")
    assert [j["payload"]["message_id"] for j in await records.claim_jobs(30)] == ["m2"]
    assert (await records.queue_stats())["failed"] == 1


async def test_client_id_is_idempotent_and_flags_are_set_once(records: ChatwootRecords) -> None:
    first, created = await records.queue_message(message(1, client_id="c"), "k")
    again, created_again = await records.queue_message(message(2, client_id="c"), "k")
    assert created and not created_again and again["id"] == first["id"]
    assert (await records.queue_stats())["pending"] == 1
    assert await records.mark_notified("m1", "member") is True
    assert await records.mark_notified("m1", "member") is False
    assert await records.mark_notified("m1", "agents") is True


async def test_echo_attaches_to_the_local_message(records: ChatwootRecords) -> None:
    await records.queue_message(message(1), "k")
    echo = {**message(99), "chatwoot_id": 500, "origin": "chatwoot", "text": "changed",
            "status": "sent", "attachments": []}
    stored, created = await records.mirror_message(echo, echo_of="m1")
    assert not created and stored["id"] == "m1" and stored["chatwoot_id"] == 500
    assert stored["text"] == "t1"  # ours: the local text stays
    dup, created = await records.mirror_message({**echo, "id": "m100"})
    assert not created and dup["id"] == "m1"


async def test_deliveries_are_remembered_and_purged(records: ChatwootRecords) -> None:
    assert await records.accept_delivery("d1", "message_created", b"{}", ttl_s=0.01)
    assert not await records.accept_delivery("d1", "message_created", b"{}", ttl_s=60)
    claimed = await records.claim_deliveries(lease_s=30)
    assert [d["delivery_id"] for d in claimed] == ["d1"]
    await records.delivery_done("d1")
    await asyncio.sleep(0.02)
    assert await records.purge_deliveries() == 1
    assert await records.accept_delivery("d1", "message_created", b"{}", ttl_s=60)


async def test_stale_conversation_snapshots_are_ignored(records: ChatwootRecords) -> None:
    base = {"id": 7, "inbox_id": 14, "user_id": "u", "status": "open", "labels": [],
            "contact": {}, "source_updated_at": 10.0}
    await records.upsert_conversation(base)
    _, changed = await records.upsert_conversation({**base, "status": "resolved",
                                                    "source_updated_at": 5.0})
    assert not changed
    row, changed = await records.upsert_conversation({**base, "status": "pending",
                                                      "user_id": None,
                                                      "source_updated_at": 11.0})
    assert changed and row["status"] == "pending" and row["user_id"] == "u"
