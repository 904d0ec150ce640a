"""Reconciliation: what Chatwoot's webhooks could not deliver (Gigvora restarting, down or
unreachable; Chatwoot never retries) is read back from the Application API and ingested through
the webhook's own path — live to the member and the agents, exactly once, private notes kept from
members — and late webhooks for what was already recovered change nothing."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp

from chatwoot_bridge.plugin import reconcile_result
from chatwoot_bridge.reconcile import Reconciler, ReconcileTuning
from tests.chatwoot.conftest import Stack, start_stack
from tests.chatwoot.fake_chatwoot import FakeChatwoot
from tests.chatwoot.test_flow import eventually, settle
from tests.chatwoot.test_outage import open_conversation


async def reconcile_check(stack: Stack) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(
            stack.live.url + "/readyz", headers=stack.live.headers("op", "operator")) as r:
        assert r.status == 200  # non-critical
        return dict((await r.json())["checks"]["chatwoot:reconcile"][0])


def reconciler(stack: Stack) -> Reconciler:
    assert stack.plugin.reconciler is not None
    return stack.plugin.reconciler


def lose_webhooks_while_agents_work(fake: FakeChatwoot, conv_id: int) -> None:
    """In Chatwoot's dashboard, while its webhooks cannot reach Gigvora."""
    fake.webhooks_down = True
    fake.agent_reply(conv_id, "Refund issued: 3-5 working days")
    fake.agent_reply(conv_id, "ledger entry 4471, double-check Friday", private=True)
    fake.dashboard_status(conv_id, "pending")
    fake.dashboard_labels(conv_id, ["billing"])


def list_queries(fake: FakeChatwoot) -> list[dict[str, list[str]]]:
    return [parse_qs(urlsplit(p).query) for m, p, _ in fake.requests
            if m == "GET" and urlsplit(p).path.endswith("/conversations")]


async def test_lost_webhooks_reach_member_and_agents_once(tmp_path: Path,
                                                          fake: FakeChatwoot) -> None:
    stack = await start_stack(tmp_path, fake, chatwoot_reconcile_s=0.3)
    try:
        agent, member = await stack.agent(), await stack.member("dmitri")
        conv_id = await open_conversation(stack, member, agent)
        lose_webhooks_while_agents_work(fake, conv_id)
        fake.webhooks_down = False  # Gigvora is reachable again; nothing is sent again
        await fake.drain()
        assert {d.event for d in fake.failed_deliveries()} == {
            "message_created", "conversation_status_changed", "conversation_updated"}
        # Chatwoot marks a reply whose webhook failed as failed (CONTRACT.md §4)
        assert {m["status"] for m in fake.messages.values()
                if m["message_type"] == "outgoing"} == {"failed"}

        reply = await member.wait_for("support:message", timeout=10)
        assert reply["text"] == "Refund issued: 3-5 working days" and reply["from"] == "agent"
        assert reply["status"] == "sent"
        await agent.wait_for("inbox:conversation", lambda c: c["id"] == conv_id and
                             c["status"] == "pending" and c["labels"] == ["billing"])
        note = await agent.wait_for("inbox:message", lambda m: m["private"])
        assert note["text"] == "ledger entry 4471, double-check Friday"
        await settle(stack)
        assert [m["text"] for m in member.events["support:message"]] == [reply["text"]]
        history = await member.ok("support:history", {})
        assert [m["text"] for m in history["messages"]] == ["hello", reply["text"]]
        assert "ledger entry" not in str(history) + str(member.events)
        seen = await agent.ok("inbox:messages", {"conversation_id": conv_id},
                              namespace="/inbox")
        assert [(m["text"][:6], m["private"]) for m in seen["messages"]] == [
            ("hello", False), ("Refund", False), ("ledger", True)]
        assert len(agent.events["inbox:message"]) == 3  # hello, the reply, the note: once each
        # Chatwoot is told they arrived: its agents no longer see them failed
        assert {m["status"] for m in fake.messages.values()} == {"sent"}
        assert fake.calls("PATCH", "/messages/" + str(note["chatwoot_id"])) == [
            {"status": "sent"}]
        queries = list_queries(fake)
        assert queries and all(q["inbox_id"] == ["14"] and q["status"] == ["all"] and
                               q["sort_by"] == ["last_activity_at_desc"] for q in queries)

        # running it again changes nothing
        before = {k: len(v) for k, v in (*member.events.items(), *agent.events.items())}
        again = await reconciler(stack).run_once()
        assert (again.outcome, again.conversations, again.messages) == ("ok", 0, 0)
        # webhooks arriving late (a delayed proxy) for what was recovered: nothing twice
        for delivery in fake.failed_deliveries():
            assert await fake.redeliver(delivery) == 202
        await settle(stack)
        after = {k: len(v) for k, v in (*member.events.items(), *agent.events.items())}
        assert after == before
        listing = await agent.ok("inbox:list", {}, namespace="/inbox")
        assert [(c["status"], c["labels"]) for c in listing["conversations"]] == [
            ("pending", ["billing"])]  # older snapshots never roll the mirror back
        check = await reconcile_check(stack)
        assert check["status"] == "pass" and check["lastOutcome"] == "ok"
        assert check["totalMessagesRecovered"] == 2
        async with aiohttp.ClientSession() as http, http.get(
                stack.live.url + "/metrics", headers=stack.live.headers("op", "operator")) as r:
            metrics = await r.text()
        assert 'gigvora_chatwoot_reconcile_runs_total{outcome="ok"}' in metrics
        assert 'gigvora_chatwoot_reconciled_total{kind="message"} 2.0' in metrics
    finally:
        await fake.drain()
        await stack.live.stop()


async def test_a_restart_recovers_what_happened_while_gigvora_was_down(
        tmp_path: Path, fake: FakeChatwoot) -> None:
    first = await start_stack(tmp_path, fake)
    agent, member = await first.agent(), await first.member("priya")
    conv_id = await open_conversation(first, member, agent)
    await first.live.stop()  # the webhook target is now refusing connections
    fake.agent_reply(conv_id, "Your payout was released")
    fake.agent_reply(conv_id, "escalated to finance", private=True)
    fake.dashboard_status(conv_id, "resolved")
    fake.dashboard_labels(conv_id, ["billing", "vip"])
    walk_in = fake.visitor_conversation("Walk-in visitor")
    fake.add_message(walk_in, "do you ship to Norway?", "incoming")
    await fake.drain()
    assert fake.failed_deliveries() and not any(d.status for d in fake.failed_deliveries())

    second = await start_stack(tmp_path, fake)  # reconciles at boot
    try:
        await eventually(lambda: reconciler(second).last is not None, timeout=10)
        assert reconciler(second).last is not None
        assert reconciler(second).last.outcome == "ok"
        assert reconciler(second).last.messages == 3
        member = await second.member("priya")
        agent = await second.agent()
        history = await member.ok("support:history", {})
        assert [m["text"] for m in history["messages"]] == ["hello", "Your payout was released"]
        listing = await agent.ok("inbox:list", {}, namespace="/inbox")
        by_id = {c["id"]: c for c in listing["conversations"]}
        assert by_id[conv_id]["status"] == "resolved"
        assert by_id[conv_id]["labels"] == ["billing", "vip"]
        assert by_id[walk_in["id"]]["contact"]["name"] == "Walk-in visitor"
        walk = await agent.ok("inbox:messages", {"conversation_id": walk_in["id"]},
                              namespace="/inbox")
        assert [m["text"] for m in walk["messages"]] == ["do you ship to Norway?"]
        check = await reconcile_check(second)
        assert check["lastOutcome"] == "ok" and check["messagesRecovered"] == 3
    finally:
        await fake.drain()
        await second.live.stop()


async def test_bounded_runs_page_through_and_finish(tmp_path: Path, fake: FakeChatwoot) -> None:
    tuning = ReconcileTuning(max_calls=10)
    stack = await start_stack(tmp_path, fake, chatwoot_reconcile_s=0, reconcile=tuning)
    try:
        fake.webhooks_down = True
        convs = [fake.visitor_conversation(f"visitor {i}") for i in range(30)]
        for conv in convs:
            fake.add_message(conv, f"question of {conv['id']}", "incoming")
        long = convs[0]
        for i in range(45):
            fake.agent_reply(long["id"], f"part {i}")
        await fake.drain()
        records = stack.plugin.records
        assert records is not None
        outcomes = []
        for _ in range(40):
            report = await reconciler(stack).run_once()
            outcomes.append(report.outcome)
            assert report.calls <= 10
            if report.outcome == "ok":
                break
            assert (await records.reconcile_state() or {})["watermark"] is None
        assert outcomes[0] == "partial" and outcomes[-1] == "ok"
        state = await records.reconcile_state()
        assert state is not None and state["watermark"] is not None
        assert state["total_conversations"] == 30 and state["total_messages"] == 75
        rows = await records.conversation_messages(long["id"], limit=200)
        assert [r["text"] for r in rows] == [f"question of {long['id']}"] + [
            f"part {i}" for i in range(45)]
        befores = [p for m, p, _ in fake.requests
                   if m == "GET" and f"/conversations/{long['id']}/messages" in p]
        assert any("before=" in p for p in befores)  # paged back by cursor
        again = await reconciler(stack).run_once()
        assert (again.outcome, again.messages) == ("ok", 0)
        assert again.calls == 2  # the two list pages: every conversation's messages were read
    finally:
        await fake.drain()
        await stack.live.stop()


async def test_listing_stops_at_the_watermark(tmp_path: Path, fake: FakeChatwoot) -> None:
    tuning = ReconcileTuning(slack_s=0)
    stack = await start_stack(tmp_path, fake, chatwoot_reconcile_s=0, reconcile=tuning)
    try:
        fake.webhooks_down = True
        convs = [fake.visitor_conversation(f"visitor {i}") for i in range(27)]
        for conv in convs:
            fake.add_message(conv, "hi", "incoming")
        first = await reconciler(stack).run_once()
        # two list pages, one message page and one PATCH (failed → sent) per conversation
        assert (first.outcome, first.messages, first.calls) == ("ok", 27, 2 + 27 + 27)
        await asyncio.sleep(1.1)  # last_activity_at is in whole seconds
        fake.dashboard_status(convs[3]["id"], "resolved")
        fake.agent_reply(convs[5]["id"], "we ship to Norway")
        second = await reconciler(stack).run_once()
        # one list page (stopped at the first conversation older than the watermark), then
        # the new messages of the two conversations that moved (the activity is not mirrored)
        # and the reply's PATCH
        assert (second.outcome, second.calls, second.messages) == ("ok", 4, 1)
        assert second.conversations == 1  # the status change (a new reply changes no field)
    finally:
        await fake.drain()
        await stack.live.stop()


async def test_one_run_at_a_time_and_failures_are_reported(tmp_path: Path,
                                                           fake: FakeChatwoot) -> None:
    stack = await start_stack(tmp_path, fake, chatwoot_reconcile_s=300)
    try:
        agent, member = await stack.agent(), await stack.member("kim")
        conv_id = await open_conversation(stack, member, agent)
        records = stack.plugin.records
        assert records is not None
        await eventually(lambda: reconciler(stack).last is not None)
        # another process holds the lease: this one does not run
        assert await records.reconcile_lease("other-node", 60) is not None
        assert (await reconciler(stack).run_once()).outcome == "busy"
        await records.reconcile_release("other-node")
        # concurrent runs in one process are serialised, never interleaved
        both = await asyncio.gather(reconciler(stack).run_once(), reconciler(stack).run_once())
        assert [r.outcome for r in both] == ["ok", "ok"]

        fake.webhooks_down = True
        fake.agent_reply(conv_id, "are you still there?")
        fake.mode, fake.retry_after = "rate_limited", 30
        failed = await reconciler(stack).run_once()
        assert failed.outcome == "failed" and "rate limited" in failed.error
        check = await reconcile_check(stack)
        assert check["status"] == "warn" and check["gvCode"] == "CHATWOOT_RECONCILE_FAILED"
        assert member.events["support:message"] == []
        fake.mode = "ok"
        recovered = await reconciler(stack).run_once()
        assert (recovered.outcome, recovered.messages) == ("ok", 1)
        got = await member.wait_for("support:message")
        assert got["text"] == "are you still there?"
        assert (await reconcile_check(stack))["status"] == "pass"
    finally:
        await fake.drain()
        await stack.live.stop()


async def test_reconciliation_off(tmp_path: Path, fake: FakeChatwoot) -> None:
    stack = await start_stack(tmp_path, fake, chatwoot_reconcile_s=0)
    try:
        await asyncio.sleep(0.3)
        assert reconciler(stack).last is None and not list_queries(fake)
        check = await reconcile_check(stack)
        assert check["status"] == "pass" and check["observedValue"] == "off"
    finally:
        await stack.live.stop()


async def test_a_recovered_reply_meets_the_sla_when_it_was_written(tmp_path: Path,
                                                                  fake: FakeChatwoot) -> None:
    policies = [{"name": "std", "first_response_s": 3600, "resolution_s": 86400}]
    stack = await start_stack(tmp_path, fake, chatwoot_reconcile_s=0,
                              chatwoot_sla_policies=policies)
    try:
        agent, member = await stack.agent(), await stack.member("ana")
        conv_id = await open_conversation(stack, member, agent)
        fake.webhooks_down = True
        reply = fake.agent_reply(conv_id, "Sorted, sorry for the wait")
        fake.dashboard_status(conv_id, "resolved")
        await fake.drain()
        await asyncio.sleep(1.1)
        assert (await reconciler(stack).run_once()).messages == 1
        desk = stack.plugin.desk
        assert desk is not None
        state = await desk.records.state(conv_id)
        assert state is not None and state["resolved_at"] is not None
        # the reply was read back after the resolution, yet counts when it was written
        assert state["first_response_at"] == int(reply["created_at"])
        listing = await agent.ok("inbox:list", {}, namespace="/inbox")
        assert listing["conversations"][0]["status"] == "resolved"
    finally:
        await fake.drain()
        await stack.live.stop()


async def test_an_edit_missed_with_later_activity_is_updated(tmp_path: Path,
                                                             fake: FakeChatwoot) -> None:
    stack = await start_stack(tmp_path, fake, chatwoot_reconcile_s=0)
    try:
        agent, member = await stack.agent(), await stack.member("lena")
        conv_id = await open_conversation(stack, member, agent)
        sent = fake.agent_reply(conv_id, "Your order ships Monday")
        first = await member.wait_for("support:message")
        fake.webhooks_down = True
        sent["content"] = "Your order ships Tuesday"  # edited in Chatwoot; no webhook arrives
        fake.dashboard_labels(conv_id, ["orders"])  # later activity brings the conversation up
        await fake.drain()
        report = await reconciler(stack).run_once()
        assert (report.outcome, report.messages) == ("ok", 0)  # nothing missing, one edit
        edited = await member.wait_for("support:message:updated")
        assert edited["id"] == first["id"] and edited["text"] == "Your order ships Tuesday"
        assert len(member.events["support:message"]) == 1
        await agent.wait_for("inbox:message:updated",
                             lambda m: m["text"] == "Your order ships Tuesday")
    finally:
        await fake.drain()
        await stack.live.stop()


def test_readiness_detail_from_the_run_state() -> None:
    now = time.time()
    base = {"last_run_at": now - 10, "last_success_at": now - 10, "last_outcome": "ok",
            "last_error": None, "last_conversations": 1, "last_messages": 4,
            "total_conversations": 3, "total_messages": 9}
    assert reconcile_result(None, 300)["lastOutcome"] == "pending"
    ok = reconcile_result(base, 300)
    assert ok["status"] == "pass" and ok["messagesRecovered"] == 4
    assert ok["totalMessagesRecovered"] == 9 and 9 <= ok["observedValue"] <= 11
    stale = reconcile_result({**base, "last_run_at": now - 5, "last_outcome": "partial",
                              "last_success_at": now - 1000}, 300)
    assert stale["status"] == "warn" and stale["gvCode"] == "CHATWOOT_RECONCILE_STALE"
    failed = reconcile_result({**base, "last_outcome": "failed", "last_error": "timeout"}, 300)
    assert failed["gvCode"] == "CHATWOOT_RECONCILE_FAILED" and failed["output"] == "timeout"


async def test_the_worker_waits_out_a_rate_limit(tmp_path: Path, fake: FakeChatwoot) -> None:
    stack = await start_stack(tmp_path, fake, chatwoot_reconcile_s=0.1)
    try:
        await eventually(lambda: reconciler(stack).last is not None)
        fake.mode, fake.retry_after = "rate_limited", 30
        await eventually(lambda: fake.refused >= 1)
        refused = fake.refused
        await asyncio.sleep(1.0)  # ten intervals: not one call inside Retry-After
        assert fake.refused == refused
        check = await reconcile_check(stack)
        assert check["gvCode"] == "CHATWOOT_RECONCILE_FAILED"
    finally:
        fake.mode = "ok"
        await stack.live.stop()


async def test_a_long_outage_is_read_on_page_by_page(tmp_path: Path,
                                                     fake: FakeChatwoot) -> None:
    tuning = ReconcileTuning(max_calls=3)
    stack = await start_stack(tmp_path, fake, chatwoot_reconcile_s=0, reconcile=tuning)
    try:
        agent, member = await stack.agent(), await stack.member("noor")
        conv_id = await open_conversation(stack, member, agent)
        assert (await reconciler(stack).run_once()).outcome == "ok"
        fake.webhooks_down = True
        texts = [f"step {i}" for i in range(130)]
        for text in texts:
            fake.agent_reply(conv_id, text)
        await fake.drain()
        first = await reconciler(stack).run_once()
        # a list page, 100 messages after the newest one read before, one PATCH: calls spent
        assert (first.outcome, first.messages, first.calls) == ("partial", 100, 3)
        second = await reconciler(stack).run_once()
        assert (second.outcome, second.messages) == ("ok", 30)  # went on where it stopped
        await eventually(lambda: len(member.events["support:message"]) == 130)
        assert [m["text"] for m in member.events["support:message"]] == texts  # in order
        reads = [p for m, p, _ in fake.requests if m == "GET" and "/messages" in p]
        assert [p.split("?")[1].split("=")[0] for p in reads[-2:]] == ["after", "after"]
    finally:
        await fake.drain()
        await stack.live.stop()
