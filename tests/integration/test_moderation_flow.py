"""Moderation through the real server: pre-store verdicts, holds, reports, sanctions,
escalation, appeals by a different moderator, policies, and the tamper-evident audit log."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from realtime.app import HOOKS
from tests.helpers import SECRET, LiveServer, make_settings, start_server

MOD_NS = ["/", "/moderation"]


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[LiveServer]:
    server = await start_server(make_settings(tmp_path, message_rate_per_s=50,
                                              message_burst=50, moderation_ml="off",
                                              moderation_escalate_after=3))
    yield server
    await server.stop()


async def moderator(live: LiveServer, sub: str = "mod1") -> Any:
    return await live.client(sub, roles="member,moderator", namespaces=MOD_NS)


async def rest(live: LiveServer, method: str, path: str, who: str = "mod1",
               roles: str = "moderator", body: Any = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http:
        async with http.request(method, live.url + path, json=body,
                                headers=live.headers(who, roles)) as r:
            return r.status, await r.json()


async def test_clean_masked_blocked_and_held(live: LiveServer) -> None:
    alice = await live.client("alice")
    mod = await moderator(live)
    clean = await alice.ok("message:send", {"channel": "general", "text": "Shipping the invoice "
                                            "module for the Scunthorpe client today"})
    assert clean["text"].startswith("Shipping the invoice")
    masked = await alice.ok("message:send", {"channel": "general", "text": "this sh1t works"})
    assert "sh1t" not in masked["text"] and "works" in masked["text"]
    blocked = await alice.call("message:send", {"channel": "general", "text":
                                                "FREE crypto giveaway!! send 1 BTC to get 2 "
                                                "back, DM me on telegram"})
    assert blocked["error"]["code"] == "moderation_blocked"
    held = await alice.ok("message:send", {"channel": "general", "client_id": "h1",
                                           "text": "nobody wants you here, just leave"})
    assert held["status"] == "held" and held["hold_id"]
    again = await alice.ok("message:send", {"channel": "general", "client_id": "h1",
                                            "text": "nobody wants you here, just leave"})
    assert again["hold_id"] == held["hold_id"]  # idempotent retry, one hold
    live_hold = await mod.wait_for("moderation:held")
    assert live_hold["id"] == held["hold_id"] and "toxic" in live_hold["labels"]
    history = await alice.ok("channel:join", {"channel": "general"})
    assert len(history["messages"]) == 2  # clean + masked; nothing held or blocked stored


async def test_hold_approve_and_reject_over_sockets(live: LiveServer) -> None:
    alice = await live.client("alice")
    bob = await live.client("bob")
    await bob.ok("channel:join", {"channel": "general"})
    mod = await moderator(live)
    held = await alice.ok("message:send", {"channel": "general",
                                           "text": "you are worthless and everyone hates you"})
    approved = await mod.ok("moderation:hold:approve", {"id": held["hold_id"],
                                                        "reason": "context: a quote"},
                            namespace="/moderation")
    assert approved["status"] == "approved" and approved["decided_by"] == "mod1"
    decided = await alice.wait_for("moderation:hold_decided")
    assert decided["status"] == "approved"
    shown = await bob.wait_for("message:new")
    assert shown["id"] == decided["message"]["id"] and shown["author"]["id"] == "alice"
    twice = await mod.call("moderation:hold:approve", {"id": held["hold_id"], "reason": "x"},
                           namespace="/moderation")
    assert twice["error"]["code"] == "conflict"
    second = await alice.ok("message:send", {"channel": "general",
                                             "text": "nobody wants you here, just leave"})
    await mod.ok("moderation:hold:reject", {"id": second["hold_id"], "reason": "harassment"},
                 namespace="/moderation")
    rejected = await alice.wait_for("moderation:hold_decided",
                                    lambda d: d["status"] == "rejected")
    assert rejected["reason"] == "harassment"
    member_tries = await alice.call("moderation:queue", namespace="/")
    assert member_tries["error"]["code"] == "not_found"  # no such event for members on "/"


async def test_members_cannot_join_the_moderation_namespace(live: LiveServer) -> None:
    import socketio

    client = await live.client("alice", connect=False, namespaces=MOD_NS)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect()


async def test_reports_reach_moderators_live_and_over_rest(live: LiveServer) -> None:
    alice = await live.client("alice")
    bob = await live.client("bob")
    mod = await moderator(live)
    msg = await alice.ok("message:send", {"channel": "general", "text": "buy my course"})
    report = await bob.ok("message:report", {"id": msg["id"], "reason": "advertising"})
    again = await bob.call("message:report", {"id": msg["id"], "reason": "advertising"})
    assert again["error"]["code"] == "conflict"
    seen = await mod.wait_for("moderation:report")
    assert seen["id"] == report["id"] and seen["message"]["text"] == "buy my course"
    status, queue = await rest(live, "GET", "/api/v1/moderation/queue")
    assert status == 200 and [r["id"] for r in queue["reports"]] == [report["id"]]
    status, _ = await rest(live, "GET", "/api/v1/moderation/queue", who="bob", roles="member")
    assert status == 403
    status, deleted = await rest(live, "POST", f"/api/v1/moderation/messages/{msg['id']}/delete",
                                 body={"reason": "ads"})
    assert status == 200 and deleted["deleted"]
    status, resolved = await rest(live, "POST",
                                  f"/api/v1/moderation/reports/{report['id']}/resolve",
                                  body={"reason": "removed"})
    assert status == 200 and resolved["status"] == "resolved"


async def test_mute_ban_escalation_and_appeal_by_another_moderator(live: LiveServer) -> None:
    alice = await live.client("alice")
    mod1 = await moderator(live, "mod1")
    mod2 = await moderator(live, "mod2")
    mute = await mod1.ok("moderation:sanction", {"user_id": "alice", "kind": "mute",
                                                 "duration_s": 600, "reason": "cool down"},
                         namespace="/moderation")
    told = await alice.wait_for("moderation:sanctioned")
    assert told["id"] == mute["id"]
    muted = await alice.call("message:send", {"channel": "general", "text": "hello?"})
    assert muted["error"]["code"] == "moderation_blocked" and "muted" in muted["error"]["message"]
    appeal = await alice.ok("moderation:appeal", {"subject_type": "sanction",
                                                  "subject_id": mute["id"],
                                                  "text": "I was quoting someone"})
    await mod2.wait_for("moderation:appeal")
    same = await mod1.call("moderation:appeal:decide", {"id": appeal["id"],
                                                        "outcome": "overturned",
                                                        "reason": "fine"},
                           namespace="/moderation")
    assert same["error"]["code"] == "forbidden"
    decided = await mod2.ok("moderation:appeal:decide", {"id": appeal["id"],
                                                         "outcome": "overturned",
                                                         "reason": "quote, not abuse"},
                            namespace="/moderation")
    assert decided["status"] == "overturned"
    outcome = await alice.wait_for("moderation:appeal_decided")
    assert outcome["status"] == "overturned"
    assert (await alice.ok("message:send", {"channel": "general", "text": "thanks"}))["seq"]
    for text in ("nobody wants you here, just leave", "you are worthless trash",
                 "everyone would be happier if you left"):
        await alice.call("message:send", {"channel": "general", "text": text})
    auto = await alice.wait_for("moderation:sanctioned", lambda s: s["issued_by"]
                                == "system:moderation")
    assert auto["kind"] == "mute"
    status, _ = await rest(live, "POST", "/api/v1/moderation/sanctions", body={
        "user_id": "alice", "kind": "ban", "reason": "repeat"})
    assert status == 201
    for _ in range(100):
        if not alice.sio.connected:
            break
        await asyncio.sleep(0.02)
    assert not alice.sio.connected


async def test_policy_per_channel_and_audit_chain(live: LiveServer, tmp_path: Path) -> None:
    alice = await live.client("alice")
    status, _ = await rest(live, "PUT", "/api/v1/moderation/policies/help",
                           body={"profanity": "block"})
    assert status == 200
    status, _ = await rest(live, "PUT", "/api/v1/moderation/policies/help", who="alice",
                           roles="member", body={"profanity": "allow"})
    assert status == 403
    refused = await alice.call("message:send", {"channel": "help", "text": "this sh1t"})
    assert refused["error"]["code"] == "moderation_blocked"
    masked = await alice.ok("message:send", {"channel": "general", "text": "this sh1t"})
    assert "sh1t" not in masked["text"]
    status, log = await rest(live, "GET", "/api/v1/moderation/audit?action=policy_change")
    change = log["entries"][0]
    assert change["details"]["after"]["profanity"] == "block" and change["actor_id"] == "mod1"
    status, log = await rest(live, "GET", "/api/v1/moderation/audit")
    actions = [e["action"] for e in log["entries"]]
    assert {"policy_change", "auto_block", "auto_mask"} <= set(actions)
    assert all("sh1t" not in str(e) for e in log["entries"])  # content by hash only
    status, verdict = await rest(live, "GET", "/api/v1/moderation/audit/verify")
    assert verdict["ok"] and verdict["entries"] == len(log["entries"])
    held = await alice.ok("message:send", {"channel": "general",
                                           "text": "nobody wants you here, just leave"})
    status, _ = await rest(live, "POST", f"/api/v1/moderation/holds/{held['hold_id']}/erase",
                           who="root", roles="admin", body={"reason": "GDPR request"})
    assert status == 200
    status, queue = await rest(live, "GET", "/api/v1/moderation/queue")
    assert [h["text"] for h in queue["holds"]] == [None]
    status, verdict = await rest(live, "GET", "/api/v1/moderation/audit/verify")
    assert verdict["ok"], verdict  # erasing content does not break the chain
    db = sqlite3.connect(tmp_path / "gigvora.db")
    db.execute("UPDATE audit_log SET reason = 'nothing to see' WHERE seq = 2")
    db.commit()
    db.close()
    status, verdict = await rest(live, "GET", "/api/v1/moderation/audit/verify")
    assert not verdict["ok"] and verdict["first_bad_seq"] == 2
    env = {"GIGVORA_DATA_DIR": str(tmp_path), "GIGVORA_JWT_SECRET": SECRET, "PATH": "/usr/bin"}
    done = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "realtime.cli",
                                                    "audit", "verify"],
                                   env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and '"first_bad_seq": 2' in done.stdout


class _Broken:
    name = "broken"

    def classify(self, text: str, ctx: Any) -> Any:
        raise RuntimeError("classifier crashed")


async def test_a_failing_stage_fails_closed_without_crashing(live: LiveServer) -> None:
    plugin = live.app[HOOKS]._pm.get_plugin("moderation")
    pipeline = plugin.service.pipeline
    pipeline.stages = (*pipeline.stages, _Broken())
    alice = await live.client("alice")
    refused = await alice.call("message:send", {"channel": "general", "text": "hello"})
    assert refused["error"]["code"] == "unavailable"
    assert (await alice.ok("channel:join", {"channel": "general"}))["messages"] == []
    pipeline.stages = pipeline.stages[:-1]
    assert (await alice.ok("message:send", {"channel": "general", "text": "hello"}))["seq"] == 1


async def test_queue_carries_reported_messages_names_and_appeal_subjects(live: LiveServer
                                                                         ) -> None:
    alice = await live.client("alice")
    bob = await live.client("bob")
    mod1 = await moderator(live, "mod1")
    msg = await alice.ok("message:send", {"channel": "general", "text": "buy my course"})
    await bob.ok("message:send", {"channel": "general", "text": "hi all"})
    report = await bob.ok("message:report", {"id": msg["id"], "reason": "advertising"})
    assert (await mod1.wait_for("moderation:report"))["reporter_name"] == "Bob"
    held = await alice.ok("message:send", {"channel": "general",
                                           "text": "nobody wants you here, just leave"})
    await mod1.ok("moderation:hold:reject", {"id": held["hold_id"], "reason": "harassment"},
                  namespace="/moderation")
    mute = await mod1.ok("moderation:sanction", {"user_id": "alice", "kind": "mute",
                                                 "reason": "cool down"}, namespace="/moderation")
    on_hold = await alice.ok("moderation:appeal", {"subject_type": "hold",
                                                   "subject_id": held["hold_id"],
                                                   "text": "it was a quote"})
    on_mute = await alice.ok("moderation:appeal", {"subject_type": "sanction",
                                                   "subject_id": mute["id"], "text": "sorry"})
    seen = await mod1.wait_for("moderation:appeal", lambda a: a["id"] == on_mute["id"])
    assert seen["user_name"] == "Alice" and seen["subject"]["kind"] == "mute"
    plugin = live.app[HOOKS]._pm.get_plugin("moderation")
    for cached in (True, False):  # names from the desk's cache, then from the store
        if not cached:
            plugin.desk.names.clear()
        queue = (await mod1.ok("moderation:queue", namespace="/moderation"))
        [queued] = queue["reports"]
        assert queued["id"] == report["id"] and queued["reporter_name"] == "Bob"
        assert queued["message"]["text"] == "buy my course"
        assert queued["message"]["author"] == {"id": "alice", "name": "Alice"}
        appeals = {a["id"]: a for a in queue["appeals"]}
        assert {a["user_name"] for a in appeals.values()} == {"Alice"}
        hold_subject = appeals[on_hold["id"]]["subject"]
        assert hold_subject["text"] == "nobody wants you here, just leave"
        assert hold_subject["status"] == "rejected"
        assert appeals[on_mute["id"]]["subject"]["reason"] == "cool down"
    status, rest_queue = await rest(live, "GET", "/api/v1/moderation/queue")
    assert status == 200 and rest_queue["reports"][0]["message"]["id"] == msg["id"]


async def test_members_read_their_own_holds_and_sanctions(live: LiveServer) -> None:
    alice = await live.client("alice")
    mod1 = await moderator(live, "mod1")
    first = await alice.ok("message:send", {"channel": "general", "client_id": "c1",
                                            "text": "nobody wants you here, just leave"})
    second = await alice.ok("message:send", {"channel": "general",
                                             "text": "you are worthless and everyone hates you"})
    status, mine = await rest(live, "GET", "/api/v1/moderation/mine", who="alice",
                              roles="member")
    assert status == 200 and mine["sanctions"] == [] and mine["appeals"] == []
    assert [h["id"] for h in mine["holds"]] == [first["hold_id"], second["hold_id"]]
    assert mine["holds"][0]["client_id"] == "c1" and mine["holds"][0]["status"] == "pending"
    assert "scores" not in mine["holds"][0] and "decided_by" not in mine["holds"][0]
    await mod1.ok("moderation:hold:reject", {"id": first["hold_id"], "reason": "harassment"},
                  namespace="/moderation")
    await mod1.ok("moderation:hold:approve", {"id": second["hold_id"], "reason": "context"},
                  namespace="/moderation")
    mute = await mod1.ok("moderation:sanction", {"user_id": "alice", "kind": "mute",
                                                 "duration_s": 600, "reason": "cool down"},
                         namespace="/moderation")
    await alice.ok("moderation:appeal", {"subject_type": "sanction", "subject_id": mute["id"],
                                         "text": "sorry"})
    status, mine = await rest(live, "GET", "/api/v1/moderation/mine", who="alice",
                              roles="member")
    [rejected] = mine["holds"]  # the approved one is published, so no longer listed
    assert rejected["status"] == "rejected" and rejected["decision_reason"] == "harassment"
    [sanction] = mine["sanctions"]
    assert sanction["id"] == mute["id"] and sanction["expires_at"] and "issued_by" not in sanction
    assert mine["appeals"][0]["subject_id"] == mute["id"]
    status, other = await rest(live, "GET", "/api/v1/moderation/mine", who="bob",
                               roles="member")
    assert status == 200 and other == {"holds": [], "sanctions": [], "appeals": []}
    async with aiohttp.ClientSession() as http:
        async with http.get(live.url + "/api/v1/moderation/mine") as r:
            assert r.status == 401
