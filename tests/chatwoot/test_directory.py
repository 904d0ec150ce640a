"""Agents pick an assignee and labels from Chatwoot's lists: ``inbox:agents`` (cached, served
stale while Chatwoot is down, ``unavailable`` with nothing cached), assigning by a listed id and
setting labels, mirrored to every agent; payloads are checked at the edge."""

from __future__ import annotations

from tests.chatwoot.conftest import Stack
from tests.chatwoot.test_flow import settle
from tests.chatwoot.test_outage import open_conversation

INBOX = "/inbox"


def advance(stack: Stack, seconds: float) -> None:
    """Move the directory's clock forward (its cache and back-off)."""
    directory = stack.plugin.directory
    assert directory is not None
    now = directory.clock()
    directory.clock = lambda: now + seconds


async def test_agents_and_labels_are_listed_and_cached(stack: Stack) -> None:
    agent = await stack.agent()
    listed = await agent.ok("inbox:agents", {}, namespace=INBOX)
    assert listed["agents"] == [
        {"id": 24, "name": "Aiko Tanaka", "email": "aiko@gigvora.example",
         "availability_status": "busy"},
        {"id": 21, "name": "Marco Silva", "email": "marco@gigvora.example",
         "availability_status": "online"}]
    assert listed["labels"] == ["billing", "orders", "vip"]
    assert listed["stale"] is False and listed["fetched_at"].endswith("Z")
    again = await agent.ok("inbox:agents", {"refresh": True}, namespace=INBOX)
    assert again["agents"] == listed["agents"]
    assert len(stack.fake.calls("GET", "/agents")) == 1  # cached (refresh: at most every 5 s)
    stack.fake.labels.append({"id": 9, "title": "refunds", "description": "", "color": "#000",
                              "show_on_sidebar": True})
    advance(stack, 61)
    later = await agent.ok("inbox:agents", {}, namespace=INBOX)
    assert later["labels"] == ["billing", "orders", "refunds", "vip"]
    assert len(stack.fake.calls("GET", "/labels")) == 2


async def test_agents_list_while_chatwoot_is_down(stack: Stack) -> None:
    agent = await stack.agent()
    stack.fake.mode = "down"
    down = await agent.call("inbox:agents", {}, namespace=INBOX)
    assert down["ok"] is False and down["error"]["code"] == "unavailable"
    assert down["error"]["retry_after_ms"] > 0
    stack.fake.mode = "rate_limited"
    advance(stack, 6)  # past the back-off after a failure
    limited = await agent.call("inbox:agents", {}, namespace=INBOX)
    assert limited["error"]["code"] == "rate_limited"
    stack.fake.mode = "ok"
    advance(stack, 12)
    fresh = await agent.ok("inbox:agents", {}, namespace=INBOX)
    stack.fake.mode = "down"
    advance(stack, 80)  # the cache is old and Chatwoot is gone: the last lists, marked stale
    stale = await agent.ok("inbox:agents", {"refresh": True}, namespace=INBOX)
    assert stale["stale"] is True and stale["agents"] == fresh["agents"]
    assert stale["labels"] == fresh["labels"]
    stack.fake.mode = "ok"


async def test_payloads_are_checked_at_the_edge(stack: Stack) -> None:
    agent, member = await stack.agent(), await stack.member("lena")
    conv_id = await open_conversation(stack, member, agent)
    for payload in ({"refresh": "yes"}, {"refresh": False, "all": True}, []):
        answer = await agent.call("inbox:agents", payload, namespace=INBOX)
        assert answer["error"]["code"] == "invalid", payload
    for labels, code in ((["a,b"], "invalid"), ([" padded"], "invalid"), (["x\n"], "invalid"),
                         (["vip", "VIP"], "invalid"), ([""], "invalid"),
                         (["l" * 65], "too_large"), ([f"l{i}" for i in range(51)], "too_large"),
                         ("vip", "invalid"), ([7], "invalid")):
        answer = await agent.call("inbox:labels", {"conversation_id": conv_id,
                                                   "labels": labels}, namespace=INBOX)
        assert answer["ok"] is False and answer["error"]["code"] == code, (labels, answer)
        assert "Traceback" not in str(answer)
    assert stack.fake.calls("POST", "/labels") == []


async def test_assign_from_the_list_and_labels_reach_every_agent(stack: Stack) -> None:
    aiko, marco = await stack.agent("aiko"), await stack.agent("marco")
    member = await stack.member("lena")
    conv_id = await open_conversation(stack, member, aiko)
    listed = await aiko.ok("inbox:agents", {}, namespace=INBOX)
    pick = next(a for a in listed["agents"] if a["name"] == "Marco Silva")
    assigned = await aiko.ok("inbox:assign", {"conversation_id": conv_id,
                                              "assignee_id": pick["id"]}, namespace=INBOX)
    assert assigned["assignee"] == {"id": 21, "name": "Marco Silva", "type": "user"}
    labelled = await aiko.ok("inbox:labels", {"conversation_id": conv_id,
                                              "labels": ["billing", "vip"]}, namespace=INBOX)
    assert labelled["labels"] == ["billing", "vip"] and labelled["id"] == conv_id
    assert stack.fake.calls("POST", f"/conversations/{conv_id}/labels") == [
        {"labels": ["billing", "vip"]}]
    seen = await marco.wait_for("inbox:conversation", lambda c: c["id"] == conv_id
                                and c["labels"] == ["billing", "vip"])
    assert seen["assignee"]["id"] == 21
    removed = await marco.ok("inbox:labels", {"conversation_id": conv_id, "labels": ["vip"]},
                             namespace=INBOX)
    assert removed["labels"] == ["vip"]
    await aiko.wait_for("inbox:conversation", lambda c: c["labels"] == ["vip"])
    await settle(stack)
    listing = await marco.ok("inbox:list", {}, namespace=INBOX)
    assert listing["conversations"][0]["labels"] == ["vip"]
