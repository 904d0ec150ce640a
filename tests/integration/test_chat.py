"""Community chat over real sockets: join, send, receive, edit, delete, react, threads, DMs."""

from __future__ import annotations

from tests.helpers import LiveServer


async def test_join_send_receive(server: LiveServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    joined = await bob.ok("channel:join", {"channel": "general"})
    assert joined["channel"] == "general" and joined["messages"] == []
    assert joined["has_more"] is False and joined["last_seq"] == 0
    await alice.ok("channel:join", {"channel": "general"})
    sent = await alice.ok("message:send", {"channel": "general", "text": "hi bob",
                                           "client_id": "c1"})
    assert sent["seq"] == 1 and sent["author"] == {"id": "alice", "name": "Alice"}
    assert sent["deleted"] is False and sent["reactions"] == {}
    got = await bob.wait_for("message:new", lambda m: m["id"] == sent["id"])
    assert got == sent


async def test_idempotent_retry_returns_first_message(server: LiveServer) -> None:
    alice = await server.client("alice")
    first = await alice.ok("message:send", {"channel": "general", "text": "x", "client_id": "k"})
    again = await alice.ok("message:send", {"channel": "general", "text": "x", "client_id": "k"})
    assert again == first
    third = await alice.ok("message:send", {"channel": "general", "text": "y", "client_id": "k2"})
    assert third["seq"] == first["seq"] + 1


async def test_edit_delete_react_and_permissions(server: LiveServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    await bob.ok("channel:join", {"channel": "general"})
    msg = await alice.ok("message:send", {"channel": "general", "text": "typo"})
    edited = await alice.ok("message:edit", {"id": msg["id"], "text": "fixed"})
    assert edited["text"] == "fixed" and edited["edited_at"]
    await bob.wait_for("message:updated", lambda m: m["text"] == "fixed")
    refused = await bob.call("message:edit", {"id": msg["id"], "text": "hijack"})
    assert refused["error"]["code"] == "forbidden"
    reacted = await bob.ok("reaction:add", {"id": msg["id"], "emoji": "👍"})
    assert reacted["reactions"] == {"👍": ["bob"]}
    unreacted = await bob.ok("reaction:remove", {"id": msg["id"], "emoji": "👍"})
    assert unreacted["reactions"] == {}
    assert (await bob.call("message:delete", {"id": msg["id"]}))["error"]["code"] == "forbidden"
    assert await alice.ok("message:delete", {"id": msg["id"]}) == {}
    gone = await bob.wait_for("message:deleted", lambda m: m["id"] == msg["id"])
    assert gone["deleted"] is True and gone["text"] == ""
    again = await alice.call("message:edit", {"id": msg["id"], "text": "back"})
    assert again["error"]["code"] == "not_found"


async def test_moderator_may_delete_any_message(server: LiveServer) -> None:
    alice = await server.client("alice")
    mod = await server.client("mo", roles="member,moderator")
    msg = await alice.ok("message:send", {"channel": "general", "text": "spam"})
    assert await mod.ok("message:delete", {"id": msg["id"]}) == {}


async def test_threads(server: LiveServer) -> None:
    alice = await server.client("alice")
    root = await alice.ok("message:send", {"channel": "general", "text": "root"})
    reply = await alice.ok("message:send", {"channel": "general", "text": "reply",
                                            "thread_id": root["id"]})
    nested = await alice.ok("message:send", {"channel": "general", "text": "nested",
                                             "thread_id": reply["id"]})
    assert reply["thread_id"] == root["id"] and nested["thread_id"] == root["id"]
    bad = await alice.call("message:send", {"channel": "help", "text": "x",
                                            "thread_id": root["id"]})
    assert bad["error"]["code"] == "not_found"


async def test_typing_presence_and_read(server: LiveServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    await alice.wait_for("presence", lambda p: p["user"]["id"] == "bob"
                         and p["status"] == "online")
    await bob.ok("channel:join", {"channel": "general"})
    await alice.ok("channel:join", {"channel": "general"})
    assert await alice.ok("typing", {"channel": "general", "typing": True}) == {}
    typing = await bob.wait_for("typing")
    assert typing == {"channel": "general", "user": {"id": "alice", "name": "Alice"},
                      "typing": True}
    assert alice.events["typing"] == []  # not echoed to the typist
    await alice.ok("presence:set", {"status": "away"})
    await bob.wait_for("presence", lambda p: p["status"] == "away")
    online = await bob.ok("presence:list")
    assert {u["user"]["id"] for u in online["users"]} == {"alice", "bob"}
    await alice.ok("message:send", {"channel": "general", "text": "one"})
    await alice.ok("message:send", {"channel": "general", "text": "two"})
    assert (await bob.ok("read", {"channel": "general", "seq": 1}))["seq"] == 1
    assert (await bob.ok("read", {"channel": "general", "seq": 99}))["seq"] == 2
    channels = {c["id"]: c for c in (await bob.ok("channel:list"))["channels"]}
    assert channels["general"]["read_seq"] == 2 and channels["general"]["last_seq"] == 2
    await alice.close()
    await bob.wait_for("presence", lambda p: p["user"]["id"] == "alice"
                       and p["status"] == "offline")


async def test_presence_counts_tabs(server: LiveServer) -> None:
    watcher = await server.client("watcher")
    tab1 = await server.client("carol")
    tab2 = await server.client("carol")
    await tab1.close()
    await tab2.ok("presence:list")
    assert not [p for p in watcher.events["presence"] if p["status"] == "offline"]
    await tab2.close()
    await watcher.wait_for("presence", lambda p: p["status"] == "offline")


async def test_direct_messages(server: LiveServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    eve = await server.client("eve")
    dm = await alice.ok("dm:open", {"user_id": "bob", "name": "Bob"})
    assert dm["kind"] == "dm" and sorted(dm["members"]) == ["alice", "bob"]
    announced = await bob.wait_for("channel:new")
    assert announced["id"] == dm["id"]
    await bob.ok("channel:join", {"channel": dm["id"]})
    await alice.ok("message:send", {"channel": dm["id"], "text": "psst"})
    await bob.wait_for("message:new", lambda m: m["text"] == "psst")
    denied = await eve.call("channel:join", {"channel": dm["id"]})
    assert denied["error"]["code"] == "forbidden"
    assert (await alice.ok("dm:open", {"user_id": "bob"}))["id"] == dm["id"]


async def test_announcements_need_staff(server: LiveServer) -> None:
    member = await server.client("alice")
    admin = await server.client("root", roles="admin")
    refused = await member.call("message:send", {"channel": "announcements", "text": "hey"})
    assert refused["error"]["code"] == "forbidden"
    await member.ok("channel:join", {"channel": "announcements"})
    await admin.ok("message:send", {"channel": "announcements", "text": "release"})
    await member.wait_for("message:new", lambda m: m["channel"] == "announcements")
