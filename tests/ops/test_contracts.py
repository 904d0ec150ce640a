"""``gigvora contracts export``: the committed contract matches the code, and what the server
really emits matches the server → client models the contract is made from."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from realtime import contract_models as out
from realtime.contracts import CONTRACT_VERSION, REGENERATE, build, files
from tests.helpers import REPO, LiveServer, make_settings, mint, start_server
from tests.ops.helpers import gigvora

COMMITTED = REPO / "docs" / "contracts"


def _committed() -> dict[str, str]:
    return {str(p.relative_to(COMMITTED)): p.read_text() for p in COMMITTED.rglob("*.json")}


async def test_committed_contract_matches_the_code() -> None:
    fresh = files(await build())
    committed = _committed()
    missing = sorted(fresh.keys() - committed.keys())
    stale = sorted(committed.keys() - fresh.keys())
    changed = sorted(k for k in fresh.keys() & committed.keys() if fresh[k] != committed[k])
    assert not (missing or stale or changed), (
        f"docs/contracts drifted from the code (new: {missing}, removed: {stale}, changed: "
        f"{changed}): {REGENERATE}; bump CONTRACT_VERSION in realtime/contracts.py for a "
        "breaking change")


def test_export_command_writes_versioned_documents(tmp_path: Path) -> None:
    (tmp_path / "schemas" / "gone").mkdir(parents=True)
    (tmp_path / "schemas" / "gone" / "old.json").write_text("{}")
    done = gigvora("contracts", "export", str(tmp_path / "."), data_dir=tmp_path / "data")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["contract_version"] == CONTRACT_VERSION
    openapi = json.loads((tmp_path / "openapi.json").read_text())
    socketio = json.loads((tmp_path / "socketio.json").read_text())
    assert openapi["info"]["x-contract-version"] == socketio["contract_version"]
    assert not (tmp_path / "schemas" / "gone").exists()
    send = socketio["namespaces"]["/"]["client_to_server"]["message:send"]
    assert send["rate_limited"] is True and "member" in send["roles"]
    assert set(send["payload"]["required"]) == {"channel", "text"}
    # plugin events (bound at startup) are there, both directions
    assert "room:join" in socketio["namespaces"]["/rooms"]["client_to_server"]
    assert "moderation:held" in socketio["namespaces"]["/moderation"]["server_to_client"]
    assert (tmp_path / "schemas/root/server_to_client/message.new.json").exists()


async def test_emitted_payloads_match_their_models(server: LiveServer) -> None:
    ada = await server.client("ada")
    bob = await server.client("bob")
    for client in (ada, bob):
        await client.ok("channel:join", {"channel": "general"})
    sent = await ada.ok("message:send", {"channel": "general", "text": "hi", "client_id": "1"})
    await ada.ok("message:edit", {"id": sent["id"], "text": "hello"})
    await ada.ok("reaction:add", {"id": sent["id"], "emoji": "👍"})
    await ada.ok("typing", {"channel": "general", "typing": True})
    await ada.ok("read", {"channel": "general", "seq": sent["seq"]})
    await ada.ok("presence:set", {"status": "away"})
    await ada.ok("dm:open", {"user_id": "bob", "name": "Bob"})
    await ada.ok("message:delete", {"id": sent["id"]})
    checks: dict[str, type[BaseModel]] = {
        "message:new": out.MessageOut, "message:updated": out.MessageOut,
        "message:deleted": out.MessageOut, "typing": out.TypingOut,
        "presence": out.PresenceOut, "channel:new": out.ChannelOut}
    for event, model in checks.items():
        model.model_validate(await bob.wait_for(event), strict=True)
    out.ReadOut.model_validate(await ada.wait_for("read"), strict=True)
    other = await server.client("carol", token=mint("carol"))
    out.PresenceOut.model_validate(await ada.wait_for(
        "presence", lambda p: p["user"]["id"] == "carol"), strict=True)
    await other.close()


async def test_feature_payloads_match_their_models(tmp_path: Path) -> None:
    live = await start_server(make_settings(tmp_path, moderation_ml="off",
                                            message_rate_per_s=1000, message_burst=1000))
    try:
        alice = await live.client("alice")
        mod = await live.client("mod1", roles="member,moderator",
                                namespaces=["/", "/moderation"])
        held = await alice.ok("message:send", {"channel": "general",
                                               "text": "nobody wants you here, just leave"})
        await mod.ok("moderation:hold:approve", {"id": held["hold_id"], "reason": "a quote"},
                     namespace="/moderation")
        out.Record.model_validate(await mod.wait_for("moderation:held"))
        out.AuditEntry.model_validate(await mod.wait_for("moderation:action"), strict=True)
        out.HoldDecided.model_validate(await alice.wait_for("moderation:hold_decided"),
                                       strict=True)
        rooms = ["/rooms"]
        ada = await live.client("ada", namespaces=rooms)
        bob = await live.client("bob", namespaces=rooms)
        await ada.ok("room:join", {"room": "standup"}, namespace="/rooms")
        await bob.ok("room:join", {"room": "standup"}, namespace="/rooms")
        out.Participant.model_validate(await ada.wait_for("room:joined"), strict=True)
        await bob.ok("room:leave", {"room": "standup"}, namespace="/rooms")
        out.RoomLeft.model_validate(await ada.wait_for("room:left"), strict=True)
    finally:
        await live.stop()


async def test_support_payloads_match_their_models(tmp_path: Path) -> None:
    from tests.chatwoot.conftest import start_stack
    from tests.chatwoot.fake_chatwoot import FakeChatwoot

    fake = await FakeChatwoot().start()
    stack = await start_stack(tmp_path, fake)
    try:
        agent = await stack.agent()
        member = await stack.member("dmitri")
        await member.ok("support:send", {"text": "Can I move my booking?", "client_id": "c1"})
        conv = out.InboxConversation.model_validate(await agent.wait_for("inbox:conversation"),
                                                    strict=True)
        out.InboxMessage.model_validate(await agent.wait_for("inbox:message"), strict=True)
        await agent.ok("inbox:reply", {"conversation_id": conv.id, "text": "Sure, when?"},
                       namespace="/inbox")
        out.SupportMessage.model_validate(await member.wait_for("support:message"), strict=True)
    finally:
        await fake.drain()
        await stack.live.stop()
        await fake.stop()
