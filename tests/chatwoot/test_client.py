"""The Chatwoot API client against the fake: paths, auth header, pagination, retries, 429."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from chatwoot_bridge.client import (
    ChatwootClient,
    ChatwootRateLimited,
    ChatwootRejected,
    ChatwootUnavailable,
    RetryPolicy,
    identifier_hash,
    retry_after_seconds,
)
from tests.chatwoot.fake_chatwoot import FakeChatwoot

SAMPLES = Path("/work/shared/chatwoot-contract/samples")
FAST = RetryPolicy(attempts=3, backoff_s=0.01, max_backoff_s=0.02, max_inline_wait_s=0.5)


@pytest.fixture
async def fake() -> AsyncIterator[FakeChatwoot]:
    server = await FakeChatwoot().start()
    yield server
    await server.stop()


@pytest.fixture
async def client(fake: FakeChatwoot) -> AsyncIterator[ChatwootClient]:
    c = ChatwootClient(fake.url, fake.token, fake.account_id, timeout=2, retry=FAST)
    yield c
    await c.aclose()


def test_identifier_hash_matches_the_contract_vector() -> None:
    vector = json.loads((SAMPLES / "identity_hmac_example.json").read_text())
    assert identifier_hash(vector["hmac_token"], vector["identifier"]) == \
        vector["identifier_hash"]


def test_retry_after_forms() -> None:
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds(None, 3.0) == 3.0
    future = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    assert 25 <= retry_after_seconds(future) <= 31
    assert retry_after_seconds("soon", 2.0) == 2.0


async def test_contact_conversation_message_round_trip(fake: FakeChatwoot,
                                                       client: ChatwootClient) -> None:
    contact = await client.create_contact(name="Dmitri", identifier="gv_user_9120",
                                          custom_attributes={"gigvora_user_id": "9120"})
    ci = await client.create_contact_inbox(contact["id"], 14, hmac_verified=True)
    conv = await client.create_conversation(inbox_id=14, contact_id=contact["id"],
                                            source_id=ci["source_id"])
    assert conv["inbox_id"] == 14 and conv["status"] == "open"
    msg = await client.create_message(conv["id"], "hello", message_type="incoming",
                                      source_id="gv:1", echo_id="1")
    assert msg["message_type"] == 0 and msg["source_id"] == "gv:1" and msg["echo_id"] == "1"
    assert fake.calls("POST", f"/conversations/{conv['id']}/messages")[0] == {
        "content": "hello", "message_type": "incoming", "private": False,
        "content_type": "text", "source_id": "gv:1", "echo_id": "1"}
    status = await client.toggle_status(conv["id"], "pending")
    assert status["current_status"] == "pending"
    agent = await client.assign(conv["id"], assignee_id=24)
    assert agent["id"] == 24
    team = await client.assign(conv["id"], team_id=4)
    assert team["name"] == "tier-2 support"
    assert await client.set_labels(conv["id"], ["orders"]) == ["orders"]
    assert await client.get_labels(conv["id"]) == ["orders"]
    assert (await client.get_conversation(conv["id"]))["meta"]["assignee"]["id"] == 24


async def test_contact_search_pages_until_has_more_is_false(fake: FakeChatwoot,
                                                            client: ChatwootClient) -> None:
    for i in range(33):
        await client.create_contact(name=f"User {i}", identifier=f"gv_user_{i:03d}")
    found = [c async for c in client.iter_contacts("gv_user_")]
    assert len(found) == 33
    pages = [p for _, p, _ in fake.requests if "/contacts/search" in p]
    assert len(pages) == 3 and "page=3" in pages[-1]
    found17 = await client.find_contact("gv_user_017")
    assert found17 is not None and found17["name"] == "User 17"
    assert await client.find_contact("gv_user_9") is None  # substring hits are filtered


async def test_conversation_and_message_pagination(fake: FakeChatwoot,
                                                   client: ChatwootClient) -> None:
    contact = await client.create_contact(name="P", identifier="gv_user_p")
    ids = []
    for _ in range(27):
        ids.append((await client.create_conversation(inbox_id=14,
                                                     contact_id=contact["id"]))["id"])
    listed = [c["id"] async for c in client.iter_conversations()]
    assert sorted(listed) == sorted(ids)
    for i in range(45):
        await client.create_message(ids[0], f"m{i}")
    pages = [page async for page in client.iter_messages_back(ids[0])]
    assert [len(p) for p in pages] == [20, 20, 5]
    texts = [m["content"] for page in reversed(pages) for m in page]
    assert texts == [f"m{i}" for i in range(45)]


async def test_auth_errors_are_rejections(fake: FakeChatwoot) -> None:
    bad = ChatwootClient(fake.url, "wrong", fake.account_id, retry=FAST)
    with pytest.raises(ChatwootRejected) as caught:
        await bad.get_labels(1)
    assert caught.value.status == 401 and bad.health.state == "unauthorized"
    await bad.aclose()


async def test_5xx_is_retried_then_unavailable(fake: FakeChatwoot,
                                               client: ChatwootClient) -> None:
    fake.mode = "down"
    with pytest.raises(ChatwootUnavailable):
        await client.search_contacts("x")
    assert fake.refused == 3 and client.health.state == "unreachable"
    fake.mode = "ok"
    await client.search_contacts("x")
    assert client.health.state == "ok"


async def test_429_short_retry_after_is_waited_long_one_surfaces(fake: FakeChatwoot) -> None:
    client = ChatwootClient(fake.url, fake.token, fake.account_id,
                            retry=RetryPolicy(attempts=3, max_inline_wait_s=0.0))
    fake.mode, fake.retry_after = "rate_limited", 5
    with pytest.raises(ChatwootRateLimited) as caught:
        await client.search_contacts("x")
    assert caught.value.retry_after == 5 and fake.refused == 1
    assert client.health.state == "rate_limited"
    await client.aclose()


async def test_connection_refused_and_timeouts(fake: FakeChatwoot) -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)
    client = ChatwootClient("http://127.0.0.1:9", "t", 7, retry=FAST)
    with pytest.raises(ChatwootUnavailable):
        await client.get_labels(1)
    await client.aclose()
    timing_out = ChatwootClient("http://cw", "t", 7, retry=FAST,
                                transport=httpx.MockTransport(slow))
    with pytest.raises(ChatwootUnavailable, match="timeout"):
        await timing_out.get_labels(1)
    await timing_out.aclose()


async def test_the_token_header_is_sent(fake: FakeChatwoot) -> None:
    seen: list[httpx.Request] = []

    async def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"payload": []})
    client = ChatwootClient("https://chat.example.com/", "tok", 7,
                            transport=httpx.MockTransport(record))
    await client.get_labels(1190)
    await client.aclose()
    assert seen[0].headers["api_access_token"] == "tok"
    assert str(seen[0].url) == "https://chat.example.com/api/v1/accounts/7/conversations/1190/labels"
