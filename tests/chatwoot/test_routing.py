"""Routing rules assign new conversations through Chatwoot's assignments endpoint (by member
language, persona, role …), once, never over an existing assignment; the rules themselves."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import jwt
import orjson
import pytest

from chatwoot_bridge.rules import BusinessHours, Facts, Match, SupportRules
from realtime.config import ConfigError, load_settings
from tests.chatwoot.conftest import Stack, bridge_settings, start_stack
from tests.chatwoot.fake_chatwoot import FakeChatwoot
from tests.chatwoot.test_flow import eventually, settle
from tests.chatwoot.test_outage import readiness
from tests.helpers import SECRET

RULES = [{"name": "german", "match": {"languages": ["de"]}, "team_id": 4, "assignee_id": 24},
         {"name": "creators", "match": {"personas": ["creator"], "roles": ["member"]},
          "assignee_id": 21}]


def member_token(sub: str, **claims: Any) -> str:
    """A member token with extra claims (persona, locale) like the identity provider's."""
    now = int(time.time())
    return jwt.encode({"sub": sub, "name": sub.title(), "roles": ["member"], "iat": now,
                       "exp": now + 3600, **claims}, SECRET, algorithm="HS256")


async def conversation_of(stack: Stack, sub: str, token: str) -> dict[str, Any]:
    member = await stack.live.client(sub, token=token)
    await member.ok("support:send", {"text": f"hello from {sub}"})
    fake = stack.fake
    return await eventually(lambda: next(
        (c for c in fake.conversations.values()
         if fake.contacts.get(c["contact_id"], {}).get("identifier") == "gv_user_" + sub),
        None))


@pytest.fixture
async def routed(tmp_path: Path, fake: FakeChatwoot) -> Any:
    stack = await start_stack(tmp_path, fake, chatwoot_routing_rules=RULES)
    yield stack
    await fake.drain()
    await stack.live.stop()


async def test_rules_assign_new_conversations(routed: Stack) -> None:
    agent = await routed.agent()
    german = await conversation_of(routed, "hanna", member_token("hanna", locale="de-AT"))
    await eventually(lambda: german["assignee_id"] == 24 and german["team_id"] == 4)
    shown = await agent.wait_for("inbox:conversation", lambda c: c["id"] == german["id"]
                                 and c["event"] == "conversation_routed")
    assert shown["assignee"]["id"] == 24 and shown["team"]["id"] == 4

    creator = await conversation_of(routed, "cara", member_token("cara", persona="creator"))
    await eventually(lambda: creator["assignee_id"] == 21)
    assert creator["team_id"] is None

    plain = await conversation_of(routed, "pat", member_token("pat"))
    await settle(routed)
    assert plain["assignee_id"] is None and plain["team_id"] is None
    # one team call and one agent call for hanna, one agent call for cara; nothing for pat
    assert sorted(map(str, routed.fake.calls("POST", "/assignments"))) == sorted(
        map(str, [{"team_id": 4}, {"assignee_id": 24}, {"assignee_id": 21}]))


async def test_routing_never_overrides_an_assignment(routed: Stack) -> None:
    fake = routed.fake
    agent = await routed.agent()
    conv = fake.visitor_conversation("Visitor", assignee_id=21,
                                     additional_attributes={"browser_language": "de-CH"})
    shown = await agent.wait_for("inbox:conversation", lambda c: c["id"] == conv["id"]
                                 and c["event"] == "conversation_routed")
    assert shown["team"]["id"] == 4 and shown["assignee"]["id"] == 21  # the person's choice
    assert fake.calls("POST", "/assignments") == [{"team_id": 4}]
    assert conv["assignee_id"] == 21 and conv["team_id"] == 4


def test_match_semantics() -> None:
    facts = Facts(inbox_id=3, labels=frozenset({"billing"}), language="de-AT",
                  persona="creator", roles=frozenset({"member"}))
    assert Match().fits(facts)
    assert Match(languages=["de"], labels=["billing", "x"], inbox_ids=[3]).fits(facts)
    assert not Match(languages=["d"]).fits(facts)  # a prefix is a whole subtag
    assert not Match(personas=["buyer"]).fits(facts)
    assert not Match(team_ids=[4]).fits(facts)


def test_business_hours_count_only_open_time() -> None:
    hours = BusinessHours.model_validate({"timezone": "Europe/Berlin",
                                          "days": {"mon": ["09:00", "17:00"],
                                                   "tue": ["09:00", "17:00"]}})
    berlin = dt.timezone(dt.timedelta(hours=1))  # CET (no DST in late November)
    monday_4pm = dt.datetime(2026, 11, 23, 16, 0, tzinfo=berlin).timestamp()
    due = hours.add(monday_4pm, 2 * 3600)  # 1 h on Monday, 1 h on Tuesday
    assert due == dt.datetime(2026, 11, 24, 10, 0, tzinfo=berlin).timestamp()
    friday = dt.datetime(2026, 11, 27, 12, 0, tzinfo=berlin).timestamp()
    assert hours.add(friday, 60) == dt.datetime(2026, 11, 30, 9, 1, tzinfo=berlin).timestamp()
    assert BusinessHours().add(friday, 60) == friday + 60  # no days: always open


@pytest.mark.parametrize("overrides", [
    {"chatwoot_routing_rules": [{"name": "x", "match": {"langs": ["de"]}, "team_id": 1}]},
    {"chatwoot_routing_rules": [{"name": "x"}]},
    {"chatwoot_sla_policies": [{"name": "p", "first_response_s": -1}]},
    {"chatwoot_business_hours": {"timezone": "Mars/Olympus"}},
])
def test_invalid_rules_are_refused(tmp_path: Path, overrides: dict[str, Any]) -> None:
    fake = FakeChatwoot()
    with pytest.raises(ValueError):
        SupportRules.from_settings(bridge_settings(tmp_path, fake, **overrides))


def test_settings_read_from_the_environment(tmp_path: Path) -> None:
    base = {"GIGVORA_DATA_DIR": str(tmp_path), "GIGVORA_JWT_SECRET": SECRET,
            "GIGVORA_CHATWOOT_ROUTING_RULES": orjson.dumps(RULES).decode(),
            "GIGVORA_CHATWOOT_SLA_POLICIES": '[{"name": "p", "first_response_s": 60}]',
            "GIGVORA_CHATWOOT_BUSINESS_HOURS": '{"days": {"mon": ["09:00", "17:30"]}}',
            "GIGVORA_CHATWOOT_SLA_TICK_S": "2.5"}
    settings = load_settings(environ=base)
    rules = SupportRules.from_settings(settings)
    assert [r.name for r in rules.routing] == ["german", "creators"]
    assert rules.policies[0].first_response_s == 60 and settings.chatwoot_sla_tick_s == 2.5
    assert rules.hours.days["mon"] == (dt.time(9), dt.time(17, 30))
    assert load_settings(environ={**base, "GIGVORA_CHATWOOT_ROUTING_RULES": ""}
                         ).chatwoot_routing_rules == []
    with pytest.raises(ConfigError) as bad_json:
        load_settings(environ={**base, "GIGVORA_CHATWOOT_SLA_POLICIES": "[{"})
    assert "CHATWOOT_SLA_POLICIES" in str(bad_json.value.problems)
    with pytest.raises(ConfigError) as unsigned:
        load_settings(environ={**base, "GIGVORA_ENV": "production",
                               "GIGVORA_JWT_SECRET": "p" * 40,
                               "GIGVORA_CHATWOOT_SLA_WEBHOOK_URL": "https://hooks.example/sla"})
    assert any("CHATWOOT_SLA_WEBHOOK_SECRET" in p for p in unsigned.value.problems)


async def test_routing_waits_out_an_outage_and_keeps_order(routed: Stack) -> None:
    fake = routed.fake
    fake.mode = "down"
    member = await routed.live.client("hanna", token=member_token("hanna", locale="de"))
    for text in ("eins", "zwei", "drei"):
        await member.ok("support:send", {"text": text})
    # (the boot reconciliation may be refused too: wait for a call that gave up)
    await eventually(lambda: routed.plugin.client is not None
                     and routed.plugin.client.health.state == "unreachable")
    _, check = await readiness(routed)
    assert check["gvCode"] == "CHATWOOT_UNREACHABLE" and check["observedValue"] == 3
    fake.mode = "ok"
    conv = await eventually(lambda: next(iter(fake.conversations.values()), None))
    await eventually(lambda: conv["assignee_id"] == 24 and conv["team_id"] == 4, timeout=10)
    await eventually(lambda: len(fake.calls("POST", "/messages")) == 3, timeout=10)
    assert [b["content"] for b in fake.calls("POST", "/messages")] == ["eins", "zwei", "drei"]
    await settle(routed)
    _, check = await readiness(routed)
    assert check["status"] == "pass" and check["observedValue"] == 0
