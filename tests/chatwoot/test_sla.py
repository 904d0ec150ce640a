"""SLA timers (short ones, set by settings): a breach escalates to the supervisors on ``/inbox``
(role ``admin``; plain agents only see the conversation update) and to the signed outgoing
webhook exactly once, also across a restart; replies meet the targets; conversation payloads
carry the ``sla`` field."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from chatwoot_bridge.support import webhook_signature
from realtime import contract_models as out
from tests.chatwoot.conftest import Stack, start_stack
from tests.chatwoot.fake_chatwoot import FakeChatwoot
from tests.chatwoot.test_flow import eventually, settle

HOOK_SECRET = "sla-hook-secret-0123456789"


class HookSink:
    """The operators' endpoint for the outgoing webhook (answers 503 while ``down``)."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.down = False
        self.refused = 0
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> HookSink:
        app = web.Application()
        app.router.add_post("/hooks/sla", self.receive)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}/hooks/sla"
        return self

    async def receive(self, request: web.Request) -> web.Response:
        if self.down:
            self.refused += 1
            return web.Response(status=503)
        self.received.append((dict(request.headers), await request.read()))
        return web.Response(status=204)

    def bodies(self) -> list[dict[str, Any]]:
        return [orjson.loads(raw) for _, raw in self.received]


@pytest.fixture
async def sink() -> AsyncIterator[HookSink]:
    server = await HookSink().start()
    yield server
    assert server.runner is not None
    await server.runner.cleanup()


def sla_settings(sink: HookSink, **policy: Any) -> dict[str, Any]:
    return {"chatwoot_sla_policies": [{"name": "standard", "resolution_s": 3600, **policy}],
            "chatwoot_sla_tick_s": 0.05, "chatwoot_sla_webhook_url": sink.url,
            "chatwoot_sla_webhook_secret": HOOK_SECRET}


async def test_first_response_breach_escalates_once_across_a_restart(
        tmp_path: Path, fake: FakeChatwoot, sink: HookSink) -> None:
    settings = sla_settings(sink, first_response_s=0.4)
    first = await start_stack(tmp_path, fake, **settings)
    sink.down = True  # the first webhook attempt fails: it is retried, not lost
    agent = await first.live.client("marco", roles="agent,admin", namespaces=["/inbox"])
    plain = await first.agent()
    member = await first.member("dmitri")
    await member.ok("support:send", {"text": "Is anyone there?"})
    conv = await agent.wait_for("inbox:conversation")
    sla = conv["sla"]
    assert set(sla) == {"policy", "first_response_due_at", "next_response_due_at",
                        "resolution_due_at", "breached"}
    assert sla["policy"] == "standard" and sla["breached"] == []
    assert sla["first_response_due_at"].endswith("Z") and sla["next_response_due_at"] is None
    assert sla["resolution_due_at"] > sla["first_response_due_at"]
    out.InboxConversation.model_validate(conv, strict=True)

    breach = await agent.wait_for("inbox:sla_breach")
    assert breach["conversation_id"] == conv["id"] and breach["kind"] == "first_response"
    assert breach["policy"] == "standard" and breach["due_at"] == sla["first_response_due_at"]
    out.InboxSlaBreach.model_validate(breach, strict=True)
    updated = await agent.wait_for("inbox:conversation", lambda c: c["event"] == "sla_breached")
    assert updated["sla"]["breached"] == ["first_response"]
    seen = await plain.wait_for("inbox:conversation", lambda c: c["event"] == "sla_breached")
    assert seen["sla"]["breached"] == ["first_response"]  # agents see the conversation update,
    assert plain.events["inbox:sla_breach"] == []  # the escalation is for supervisors only
    await eventually(lambda: sink.refused >= 1)
    sink.down = False
    await eventually(lambda: sink.received)

    headers, raw = sink.received[0]
    stamp = headers["X-Gigvora-Timestamp"]
    assert headers["X-Gigvora-Signature"] == webhook_signature(HOOK_SECRET, stamp, raw)
    assert headers["X-Gigvora-Delivery"] == breach["id"]
    assert headers["X-Gigvora-Event"] == "support.sla_breach"
    assert sink.bodies()[0] == {"event": "support.sla_breach", "breach": breach}
    await first.live.stop()

    second = await start_stack(tmp_path, fake, **settings)
    try:
        again = await second.live.client("marco", roles="agent,admin", namespaces=["/inbox"])
        listed = await again.ok("inbox:list", {}, namespace="/inbox")
        assert listed["conversations"][0]["sla"]["breached"] == ["first_response"]
        await asyncio.sleep(0.5)  # ten ticks of the restarted timers
        assert again.events["inbox:sla_breach"] == [] and len(sink.received) == 1
    finally:
        await fake.drain()
        await second.live.stop()


@pytest.fixture
async def timed(tmp_path: Path, fake: FakeChatwoot, sink: HookSink) -> AsyncIterator[Stack]:
    stack = await start_stack(tmp_path, fake, **sla_settings(
        sink, first_response_s=3600, next_response_s=0.3))
    yield stack
    await fake.drain()
    await stack.live.stop()


async def test_replies_meet_targets_and_next_response_restarts(timed: Stack) -> None:
    agent = await timed.live.client("marco", roles="agent,admin", namespaces=["/inbox"])
    member = await timed.member("dmitri")
    await member.ok("support:send", {"text": "Hi"})
    conv = await agent.wait_for("inbox:conversation")
    await eventually(lambda: timed.fake.calls("POST", "/messages"))
    await agent.ok("inbox:reply", {"conversation_id": conv["id"], "text": "a note",
                                   "private": True}, namespace="/inbox")
    await settle(timed)
    listed = await agent.ok("inbox:list", {}, namespace="/inbox")
    assert listed["conversations"][0]["sla"]["first_response_due_at"] is not None  # a note

    await agent.ok("inbox:reply", {"conversation_id": conv["id"], "text": "Hello!"},
                   namespace="/inbox")
    await member.wait_for("support:message")
    await settle(timed)
    listed = await agent.ok("inbox:list", {}, namespace="/inbox")
    sla = listed["conversations"][0]["sla"]
    assert sla["first_response_due_at"] is None and sla["next_response_due_at"] is None
    # the agents' countdowns are told at once, without a reload
    updates = [c for c in agent.events["inbox:conversation"] if c["event"] == "sla_updated"]
    assert updates[-1]["sla"]["first_response_due_at"] is None

    await member.ok("support:send", {"text": "One more thing"})
    breach = await agent.wait_for("inbox:sla_breach")
    assert breach["kind"] == "next_response"
    started = [c for c in agent.events["inbox:conversation"] if c["event"] == "sla_updated"]
    assert any(c["sla"]["next_response_due_at"] for c in started)
    listed = await agent.ok("inbox:list", {}, namespace="/inbox")
    assert listed["conversations"][0]["sla"]["breached"] == ["next_response"]

    await agent.ok("inbox:status", {"conversation_id": conv["id"], "status": "resolved"},
                   namespace="/inbox")
    await settle(timed)
    listed = await agent.ok("inbox:list", {}, namespace="/inbox")
    sla = listed["conversations"][0]["sla"]
    assert sla["resolution_due_at"] is None and sla["next_response_due_at"] is None
    assert [b["kind"] for b in agent.events["inbox:sla_breach"]] == ["next_response"]


async def test_breach_reaches_supervisors_only(tmp_path: Path, fake: FakeChatwoot,
                                              sink: HookSink) -> None:
    stack = await start_stack(tmp_path, fake, **sla_settings(sink, first_response_s=0.3))
    try:
        admin = await stack.live.client("ines", roles="admin", namespaces=["/inbox"])
        lead = await stack.live.client("marco", roles="agent,admin", namespaces=["/inbox"])
        agents = [await stack.agent("aiko"), await stack.agent("tomas")]
        member = await stack.member("dmitri")
        await member.ok("support:send", {"text": "Hello?"})
        breaches = [await who.wait_for("inbox:sla_breach") for who in (admin, lead)]
        assert breaches[0] == breaches[1] and breaches[0]["kind"] == "first_response"
        for agent in agents:
            update = await agent.wait_for("inbox:conversation",
                                          lambda c: c["event"] == "sla_breached")
            assert update["id"] == breaches[0]["conversation_id"]
        await eventually(lambda: sink.received)  # the webhook went out as well
        await asyncio.sleep(0.2)  # a few more ticks: nothing reaches the plain agents
        assert all(agent.events["inbox:sla_breach"] == [] for agent in agents)
        assert [len(who.events["inbox:sla_breach"]) for who in (admin, lead)] == [1, 1]
        # a supervisor who reconnects is a supervisor again (the room is joined per connection)
        await admin.close()
        again = await stack.live.client("ines", roles="admin", namespaces=["/inbox"])
        other = await stack.member("olga")
        await other.ok("support:send", {"text": "Anyone?"})
        second = await again.wait_for("inbox:sla_breach")
        assert second["conversation_id"] != breaches[0]["conversation_id"]
        await agents[0].wait_for("inbox:conversation", lambda c: c["event"] == "sla_breached"
                                 and c["id"] == second["conversation_id"])
        assert all(agent.events["inbox:sla_breach"] == [] for agent in agents)
    finally:
        await fake.drain()
        await stack.live.stop()
