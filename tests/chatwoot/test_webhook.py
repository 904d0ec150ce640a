"""The webhook endpoint: signatures over raw bytes, freshness, replays, the contract's samples,
and the bridge being off without a base URL."""

from __future__ import annotations

import json
import time
from pathlib import Path

import aiohttp
import pytest

from chatwoot_bridge import plugin as bridge_plugin
from chatwoot_bridge.webhook import PATH, signature, verify
from realtime.errors import AppError
from tests.chatwoot.conftest import Stack
from tests.chatwoot.fake_chatwoot import FakeChatwoot, rails_json
from tests.chatwoot.test_flow import eventually, settle
from tests.helpers import make_settings, start_server

SAMPLES = Path("/work/shared/chatwoot-contract/samples")


def sample(name: str) -> dict:
    return json.loads((SAMPLES / name).read_text())


async def post(url: str, raw: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http, http.post(url, data=raw,
                                                          headers=headers) as response:
        return response.status, await response.json()


def test_signature_matches_the_contract_vector() -> None:
    vector = sample("signed_delivery_account_webhook.json")
    raw = vector["raw_body"].encode()
    headers = vector["headers"]
    assert signature(vector["secret"], headers["X-Chatwoot-Timestamp"], raw) == \
        headers["X-Chatwoot-Signature"]
    verify(vector["secret"], headers, raw, now=int(headers["X-Chatwoot-Timestamp"]) + 10)
    with pytest.raises(AppError) as stale:
        verify(vector["secret"], headers, raw)  # the vector is from 2026-05-14: stale now
    assert stale.value.code == "unauthorized" and "stale" in stale.value.message
    reserialised = json.dumps(json.loads(raw)).encode()
    with pytest.raises(AppError):
        verify(vector["secret"], headers, reserialised,
               now=int(headers["X-Chatwoot-Timestamp"]))


async def test_forged_stale_replayed_and_malformed_deliveries_are_refused(stack: Stack) -> None:
    fake, url = stack.fake, stack.webhook_url
    body = {**sample("webhook_message_created_incoming.json"), "content": "a <b> & c"}
    raw, headers = fake.signed_request(body)
    assert b"\\u003cb\\u003e \\u0026 c" in raw  # Rails escaping: raw bytes are what is signed
    assert (await post(url, raw, headers))[0] == 202
    status, answer = await post(url, raw, headers)  # the very same delivery again
    assert status == 409 and answer["error"]["code"] == "conflict"
    forged_raw, forged = fake.signed_request(body, secret="not-the-secret")
    status, answer = await post(url, forged_raw, forged)
    assert status == 401 and answer["error"]["code"] == "unauthorized"
    tampered = raw.replace(b"a \\u003cb", b"x \\u003cb")
    status, _ = await post(url, tampered, {**headers, "X-Chatwoot-Delivery": "other-id"})
    assert status == 401
    old_raw, old = fake.signed_request(body, timestamp=int(time.time()) - 301)
    status, answer = await post(url, old_raw, old)
    assert status == 401 and "stale" in answer["error"]["message"]
    unsigned = {k: v for k, v in headers.items() if k != "X-Chatwoot-Signature"}
    assert (await post(url, raw, unsigned))[0] == 401
    no_id_raw, no_id = fake.signed_request(body)
    del no_id["X-Chatwoot-Delivery"]
    assert (await post(url, no_id_raw, no_id))[0] == 400
    junk_raw = b"[1, 2"
    ts = str(int(time.time()))
    junk = {"X-Chatwoot-Timestamp": ts, "X-Chatwoot-Delivery": "j1",
            "X-Chatwoot-Signature": signature(fake.webhook_secret, ts, junk_raw)}
    status, answer = await post(url, junk_raw, junk)
    assert status == 400 and answer["error"]["code"] == "invalid"


async def test_contract_samples_are_mirrored_for_agents(stack: Stack) -> None:
    """The samples as Chatwoot would send them (widget inbox 12 through an account webhook):
    agents see them; nobody in Gigvora is the contact, so no member is told anything."""
    agent = await stack.agent()
    for name in ("webhook_conversation_created.json", "webhook_message_created_incoming.json",
                 "webhook_conversation_updated_assignee.json",
                 "webhook_conversation_status_changed_open.json",
                 "webhook_message_created_outgoing_api_inbox.json",
                 "webhook_message_updated_status_read.json",
                 "webhook_conversation_typing_on_agent.json", "webhook_contact_created.json",
                 "webhook_webwidget_triggered.json"):
        raw, headers = stack.fake.signed_request(sample(name))
        assert (await post(stack.webhook_url, raw, headers))[0] == 202, name
    await eventually(lambda: len(agent.events["inbox:message"]) == 2)
    await settle(stack)
    convs = {c["id"]: c for c in agent.events["inbox:conversation"]}
    assert convs[1187]["assignee"] == {"id": 21, "name": "Marco Silva", "type": "user"}
    assert convs[1190]["team"] == {"id": 4, "name": "tier-2 support"}
    assert convs[1190]["labels"] == ["orders"]
    first, second = agent.events["inbox:message"]
    assert first["chatwoot_id"] == 90211 and first["author"]["kind"] == "contact"
    assert second["chatwoot_id"] == 90234 and second["author"]["name"] == "Marco Silva"
    updated = agent.events["inbox:message:updated"]
    assert updated[-1]["chatwoot_id"] == 90234 and updated[-1]["status"] == "read"
    assert agent.events["inbox:typing"][0]["conversation_id"] == 1187


async def test_fake_webhooks_have_the_samples_shape(stack: Stack) -> None:
    member = await stack.member("shape")
    await member.ok("support:send", {"text": "x"})
    await eventually(lambda: any(d.event == "message_created" for d in stack.fake.deliveries))
    await settle(stack)
    by_event = {d.event: json.loads(d.raw) for d in stack.fake.deliveries}
    for event, name in (("conversation_created", "webhook_conversation_created.json"),
                        ("message_created", "webhook_message_created_incoming.json")):
        expected = sample(name)
        assert list(by_event[event]) == list(expected), event
        assert set(by_event[event].get("conversation", {})) == \
            set(expected.get("conversation", {}))
    assert all(d.timestamp.isdigit() for d in stack.fake.deliveries)


async def test_the_bridge_is_off_without_a_base_url(tmp_path: Path) -> None:
    plugin = bridge_plugin.make_plugin()
    live = await start_server(make_settings(tmp_path, plugins_disable=["moderation",
                                                                       "chatwoot_bridge"]),
                              plugins=[plugin])
    try:
        raw = rails_json({"event": "message_created"})
        status, _ = await post(live.url + PATH, raw, {"X-Chatwoot-Delivery": "d"})
        assert status == 404
        member = await live.client("m1")
        answer = await member.call("support:send", {"text": "hi"})
        assert answer["error"]["code"] == "not_found"  # no such event
        async with aiohttp.ClientSession() as http, http.get(
                live.url + "/readyz", headers=live.headers("op", "operator")) as response:
            assert "chatwoot:api" not in (await response.json())["checks"]
        assert plugin.state == "off"
    finally:
        await live.stop()


async def test_misconfigured_bridge_stays_off_and_says_so(tmp_path: Path,
                                                          fake: FakeChatwoot) -> None:
    plugin = bridge_plugin.make_plugin()
    live = await start_server(make_settings(tmp_path, chatwoot_base_url=fake.url,
                                            plugins_disable=["moderation", "chatwoot_bridge"]),
                              plugins=[plugin])
    try:
        async with aiohttp.ClientSession() as http, http.get(
                live.url + "/readyz", headers=live.headers("op", "operator")) as response:
            check = (await response.json())["checks"]["chatwoot:api"][0]
        assert response.status == 200 and check["gvCode"] == "CHATWOOT_MISCONFIGURED"
        status, _ = await post(live.url + PATH, b"{}", {})
        assert status == 404
    finally:
        await live.stop()
