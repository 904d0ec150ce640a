"""End to end over real sockets, a real server and the fake Chatwoot: member → Chatwoot →
agents' inbox → agent reply → Chatwoot → member, once; private notes stay with agents."""

from __future__ import annotations

import asyncio
from typing import Any

from chatwoot_bridge.client import identifier_hash
from tests.chatwoot.conftest import HMAC_TOKEN, Stack


async def eventually(check: Any, timeout: float = 5.0) -> Any:
    """Poll ``check()`` until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def settle(stack: Stack) -> None:
    """Let webhooks in flight arrive and be processed."""
    await stack.fake.drain()
    await asyncio.sleep(0.3)


async def test_member_to_agent_and_back_exactly_once(stack: Stack) -> None:
    fake = stack.fake
    agent = await stack.agent()
    member = await stack.member("dmitri")
    sent = await member.ok("support:send", {"text": "Can I change my delivery date?",
                                            "client_id": "c1"})
    assert sent["from"] == "member" and sent["status"] == "queued" and sent["client_id"] == "c1"

    # the fake received contact, contact_inbox, conversation and the incoming message
    posted = await eventually(lambda: fake.calls("POST", "/messages"))
    assert posted[0]["message_type"] == "incoming"
    assert posted[0]["source_id"] == "gigvora:" + sent["id"]
    contact = fake.calls("POST", "/contacts")[0]
    assert contact["identifier"] == "gv_user_dmitri"
    assert fake.calls("POST", "/contact_inboxes")[0]["hmac_verified"] is True

    # the agent sees the conversation and the member's message, once
    conv = await agent.wait_for("inbox:conversation")
    incoming = await agent.wait_for("inbox:message")
    assert incoming["id"] == sent["id"] and incoming["type"] == "incoming"
    assert incoming["conversation_id"] == conv["id"] and conv["member"] == {"id": "dmitri"}

    reply = await agent.ok("inbox:reply", {"conversation_id": conv["id"],
                                           "text": "Sure! Which date works best?"},
                           namespace="/inbox")
    assert reply["status"] == "queued" and reply["private"] is False
    got = await member.wait_for("support:message")
    assert got["text"] == "Sure! Which date works best?" and got["from"] == "agent"
    out = fake.calls("POST", "/messages")[1]
    assert out == {"content": "Sure! Which date works best?", "message_type": "outgoing",
                   "private": False, "content_type": "text",
                   "source_id": "gigvora:" + reply["id"], "echo_id": reply["id"]}

    await settle(stack)  # the outgoing message_created echo has come back by now
    assert [d.status for d in fake.deliveries if d.event == "message_created"] == [202, 202]
    assert len(member.events["support:message"]) == 1  # not relayed twice
    assert [m["id"] for m in agent.events["inbox:message"]] == [sent["id"], reply["id"]]
    history = await member.ok("support:history", {})
    assert [m["text"] for m in history["messages"]] == ["Can I change my delivery date?",
                                                        "Sure! Which date works best?"]
    again = await member.ok("support:send", {"text": "Can I change my delivery date?",
                                             "client_id": "c1"})
    assert again["id"] == sent["id"]  # idempotent retry


async def test_private_notes_never_reach_the_member(stack: Stack) -> None:
    fake = stack.fake
    agent = await stack.agent()
    member = await stack.member("priya")
    await member.ok("support:send", {"text": "my payout is late"})
    conv = await agent.wait_for("inbox:conversation")
    note = await agent.ok("inbox:reply", {"conversation_id": conv["id"], "private": True,
                                          "text": "check payout batch 44 first"},
                          namespace="/inbox")
    assert note["private"] is True
    await eventually(lambda: len(fake.calls("POST", "/messages")) == 2)
    fake.agent_reply(conv["id"], "dashboard note", private=True)
    fake.agent_reply(conv["id"], "We are on it", attachments=[{
        "id": 5, "message_id": 0, "file_type": "image", "account_id": 7, "extension": "png",
        "data_url": "https://chat.example.com/a.png", "thumb_url": "", "file_size": 1200,
        "width": 10, "height": 10}])
    await settle(stack)
    texts = [m["text"] for m in member.events["support:message"]]
    assert texts == ["We are on it"]
    assert member.events["support:message"][0]["attachments"][0]["data_url"].endswith("a.png")
    history = await member.ok("support:history", {})
    assert "check payout batch 44 first" not in str(history)
    assert "dashboard note" not in str(history)
    seen = await agent.ok("inbox:messages", {"conversation_id": conv["id"]}, namespace="/inbox")
    assert [m["private"] for m in seen["messages"]] == [False, True, True, False]


async def test_agent_actions_status_assign_labels_list(stack: Stack) -> None:
    agent = await stack.agent()
    member = await stack.member("lena")
    await member.ok("support:send", {"text": "hi"})
    conv = await agent.wait_for("inbox:conversation")
    done = await agent.ok("inbox:status", {"conversation_id": conv["id"], "status": "pending"},
                          namespace="/inbox")
    assert done["status"] == "pending"
    assigned = await agent.ok("inbox:assign", {"conversation_id": conv["id"],
                                               "assignee_id": 24, "team_id": 4},
                              namespace="/inbox")
    assert assigned["assignee"]["id"] == 24 and assigned["team"]["name"] == "tier-2 support"
    labelled = await agent.ok("inbox:labels", {"conversation_id": conv["id"],
                                               "labels": ["orders"]}, namespace="/inbox")
    assert labelled["labels"] == ["orders"]
    await settle(stack)
    updates = agent.events["inbox:conversation"]
    assert updates[-1]["labels"] == ["orders"] and updates[-1]["assignee"]["id"] == 24
    listing = await agent.ok("inbox:list", {"refresh": True}, namespace="/inbox")
    assert [c["id"] for c in listing["conversations"]] == [conv["id"]]
    missing = await agent.call("inbox:status", {"conversation_id": 99, "status": "open"},
                               namespace="/inbox")
    assert missing["error"]["code"] == "not_found"
    bad = await agent.call("inbox:status", {"conversation_id": conv["id"], "status": "gone"},
                           namespace="/inbox")
    assert bad["error"]["code"] == "invalid"


async def test_members_cannot_use_the_inbox(stack: Stack) -> None:
    import pytest
    import socketio

    client = await stack.live.client("eve", roles="member", connect=False,
                                     namespaces=["/inbox"])
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect()


async def test_agent_typing_reaches_the_member_but_not_note_typing(stack: Stack) -> None:
    agent = await stack.agent()
    member = await stack.member("tom")
    await member.ok("support:send", {"text": "hello"})
    conv = await agent.wait_for("inbox:conversation")
    await settle(stack)
    stack.fake.typing(conv["id"], on=True, private=True)
    stack.fake.typing(conv["id"], on=True)
    await settle(stack)
    assert member.events["support:typing"] == [{"typing": True}]
    assert len(agent.events["inbox:typing"]) == 2


async def test_agents_typing_goes_through_chatwoot_to_the_member(stack: Stack) -> None:
    agent = await stack.agent()
    member = await stack.member("ines")
    await member.ok("support:send", {"text": "is anyone there?"})
    conv = await agent.wait_for("inbox:conversation")
    await settle(stack)
    note = await agent.ok("inbox:typing", {"conversation_id": conv["id"], "typing": True,
                                           "private": True}, namespace="/inbox")
    assert note == {"conversation_id": conv["id"], "typing": True}
    await agent.ok("inbox:typing", {"conversation_id": conv["id"], "typing": True},
                   namespace="/inbox")
    await settle(stack)
    assert stack.fake.calls("POST", "/toggle_typing_status") == [
        {"typing_status": "on", "is_private": True}, {"typing_status": "on", "is_private": False}]
    # a private note's typing stays with the agents
    assert member.events["support:typing"] == [{"typing": True}]
    await agent.ok("inbox:typing", {"conversation_id": conv["id"], "typing": False},
                   namespace="/inbox")
    await eventually(lambda: member.events["support:typing"][-1] == {"typing": False})
    refused = await agent.call("inbox:typing", {"conversation_id": 999_999, "typing": True},
                               namespace="/inbox")
    assert refused["ok"] is False


async def test_identity_hash_stored_with_the_mapping(stack: Stack) -> None:
    member = await stack.member("ana")
    await member.ok("support:send", {"text": "hello"})
    await eventually(lambda: stack.fake.calls("POST", "/messages"))
    records = stack.plugin.records
    assert records is not None
    mapping = await records.contact_for_user("ana")
    assert mapping is not None
    assert mapping["identifier_hash"] == identifier_hash(HMAC_TOKEN, "gv_user_ana")
    assert mapping["identifier_hash"] not in str(member.events)  # never shown to the member
