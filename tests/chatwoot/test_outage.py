"""Chatwoot down or rate limiting: replies stay queued durably (also across a restart), are
retried, and arrive in order, once; readiness reports the outage and the queue depth."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp

from tests.chatwoot.conftest import Stack, start_stack
from tests.chatwoot.fake_chatwoot import FakeChatwoot
from tests.chatwoot.test_flow import eventually, settle


async def readiness(stack: Stack) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.get(
            stack.live.url + "/readyz", headers=stack.live.headers("op", "operator")) as r:
        return r.status, (await r.json())["checks"]["chatwoot:api"][0]


async def open_conversation(stack: Stack, member: Any, agent: Any) -> int:
    await member.ok("support:send", {"text": "hello"})
    conv = await agent.wait_for("inbox:conversation")
    await eventually(lambda: stack.fake.calls("POST", "/messages"))
    await settle(stack)
    return int(conv["id"])


def outgoing(fake: FakeChatwoot) -> list[str]:
    return [b["content"] for b in fake.calls("POST", "/messages")
            if b["message_type"] == "outgoing"]


async def test_outage_queues_then_delivers_in_order_once(stack: Stack) -> None:
    fake = stack.fake
    agent, member = await stack.agent(), await stack.member("dmitri")
    conv_id = await open_conversation(stack, member, agent)
    fake.mode = "down"
    texts = [f"reply {i}" for i in range(5)]
    acks = [await agent.ok("inbox:reply", {"conversation_id": conv_id, "text": t},
                           namespace="/inbox") for t in texts]
    assert {a["status"] for a in acks} == {"queued"}
    late = await member.ok("support:send", {"text": "are you there?"})
    assert late["status"] == "queued"
    await eventually(lambda: fake.refused >= 4)
    status, check = await readiness(stack)
    assert status == 200  # non-critical: the hub stays ready
    assert check["gvCode"] == "CHATWOOT_UNREACHABLE" and check["observedValue"] == 6
    assert member.events["support:message"] == []

    fake.mode = "ok"
    await eventually(lambda: len(outgoing(fake)) == 5, timeout=10)
    assert outgoing(fake) == texts  # order kept
    await eventually(lambda: len(member.events["support:message"]) == 5)
    await settle(stack)
    assert [m["text"] for m in member.events["support:message"]] == texts  # once, in order
    incoming = [b["content"] for b in fake.calls("POST", "/messages")
                if b["message_type"] == "incoming"]
    assert incoming == ["hello", "are you there?"]
    status, check = await readiness(stack)
    assert check["status"] == "pass" and check["observedValue"] == 0


async def test_rate_limited_replies_wait_for_retry_after(stack: Stack) -> None:
    fake = stack.fake
    agent, member = await stack.agent(), await stack.member("priya")
    conv_id = await open_conversation(stack, member, agent)
    fake.mode, fake.retry_after = "rate_limited", 1
    await agent.ok("inbox:reply", {"conversation_id": conv_id, "text": "first"},
                   namespace="/inbox")
    await agent.ok("inbox:reply", {"conversation_id": conv_id, "text": "second"},
                   namespace="/inbox")
    await eventually(lambda: fake.refused >= 1)
    _, check = await readiness(stack)
    assert check["gvCode"] == "CHATWOOT_RATE_LIMITED" and check["observedValue"] == 2
    refused_at = fake.refused
    await asyncio.sleep(0.5)
    assert fake.refused == refused_at  # nobody hammers Chatwoot inside Retry-After
    fake.mode = "ok"
    await eventually(lambda: outgoing(fake) == ["first", "second"], timeout=5)
    sync = await agent.call("inbox:status", {"conversation_id": conv_id, "status": "resolved"},
                            namespace="/inbox")
    assert sync["ok"] is True


async def test_sync_actions_answer_unavailable_during_an_outage(stack: Stack) -> None:
    agent, member = await stack.agent(), await stack.member("kim")
    conv_id = await open_conversation(stack, member, agent)
    stack.fake.mode = "down"
    answer = await agent.call("inbox:status", {"conversation_id": conv_id,
                                               "status": "resolved"}, namespace="/inbox")
    assert answer["error"]["code"] == "unavailable" and answer["error"]["retry_after_ms"]
    stack.fake.mode = "rate_limited"
    answer = await agent.call("inbox:assign", {"conversation_id": conv_id, "assignee_id": 21},
                              namespace="/inbox")
    assert answer["error"]["code"] == "rate_limited"


async def test_queue_survives_a_restart(tmp_path: Path, fake: FakeChatwoot) -> None:
    first = await start_stack(tmp_path, fake)
    agent, member = await first.agent(), await first.member("dmitri")
    conv_id = await open_conversation(first, member, agent)
    fake.mode = "down"
    for text in ("one", "two", "three"):
        await agent.ok("inbox:reply", {"conversation_id": conv_id, "text": text},
                       namespace="/inbox")
    await eventually(lambda: fake.refused >= 1)
    await first.live.stop()
    fake.mode = "ok"
    second = await start_stack(tmp_path, fake)
    try:
        member = await second.member("dmitri")
        await eventually(lambda: outgoing(fake) == ["one", "two", "three"], timeout=10)
        await settle(second)
        history = await member.ok("support:history", {})
        assert [m["text"] for m in history["messages"]] == ["hello", "one", "two", "three"]
        assert [m["status"] for m in history["messages"]][1:] == ["sent"] * 3
    finally:
        await fake.drain()
        await second.live.stop()


async def test_a_refused_message_fails_for_good_without_blocking_the_rest(stack: Stack
                                                                          ) -> None:
    fake = stack.fake
    agent, member = await stack.agent(), await stack.member("zoe")
    conv_id = await open_conversation(stack, member, agent)
    del fake.conversations[conv_id]  # deleted in Chatwoot: every reply answers 404
    doomed = await agent.ok("inbox:reply", {"conversation_id": conv_id, "text": "lost"},
                            namespace="/inbox")
    failed = await agent.wait_for("inbox:message:updated",
                                  lambda m: m["id"] == doomed["id"] and m["status"] == "failed")
    assert "404" in failed["error"]
    _, check = await readiness(stack)
    assert check["failedJobs"] == 1 and check["observedValue"] == 0
    # the member writes again: the deleted conversation is replaced by a new one
    await member.ok("support:send", {"text": "still there?"})
    fresh = await agent.wait_for("inbox:conversation", lambda c: c["id"] != conv_id)
    assert fresh["member"] == {"id": "zoe"}
    await eventually(lambda: fake.calls("POST", f"/conversations/{fresh['id']}/messages"))
