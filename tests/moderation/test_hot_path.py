"""The pre-store hot path's shortcuts decide exactly what the long way decides."""

from __future__ import annotations

from types import MappingProxyType, SimpleNamespace
from typing import Any

import pytest

from moderation.base import StageContext, StageResult
from moderation.desk import ModerationDesk
from moderation.models import PolicyDoc
from moderation.pipeline import TIMING_EVERY, ModerationSettings, Pipeline
from moderation.policy import LabelRule, Policy
from moderation.service import ModerationService

POLICIES = [
    Policy(),
    PolicyDoc(profanity="hold", toxic="allow", spam="block").to_policy(),
    PolicyDoc(toxic="mask", block_toxic_at=0.0).to_policy(),
    Policy(rules=MappingProxyType({"spam": LabelRule(0.0, ((0.0, "mask"),))})),
    Policy(rules=MappingProxyType({"toxic": LabelRule(0.2, ((0.0, "hold"), (0.1, "allow")))}),
           exempt_roles=frozenset()),
]


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("roles", [(), ("member",), ("moderator",), ("admin", "member")])
def test_decide_clean_is_decide_without_findings(policy: Policy, roles: tuple[str, ...]) -> None:
    assert policy.decide_clean(roles) == policy.decide("text", {}, (), (), roles)


@pytest.mark.parametrize("policy", POLICIES)
def test_action_is_the_most_severe_rule(policy: Policy) -> None:
    for toxic in (0.0, 0.1, 0.5, 0.95, 1.0):
        for spam in (0.0, 0.5, 0.9):
            scores = {"toxic": toxic, "spam": spam, "profanity": spam}
            expected = "allow"
            for label, rule in policy.rules.items():
                action = rule.action_for(scores.get(label, 0.0))
                if ("allow", "mask", "hold", "block").index(action) > \
                        ("allow", "mask", "hold", "block").index(expected):
                    expected = action
            assert policy._action(scores) == expected


class Exploding:
    name = "exploding"

    def classify(self, text: str, ctx: StageContext) -> StageResult:
        raise RuntimeError("boom")


def test_stage_calls_and_failures_are_exact_while_timing_is_sampled(rules: Pipeline) -> None:
    pipeline = Pipeline([*rules.stages, Exploding()])
    messages = 3 * TIMING_EVERY + 1
    for index in range(messages):
        verdict = pipeline.classify(f"hello there {index}")
        assert verdict.failed and "stage_failed:exploding:RuntimeError" in verdict.reasons
    stages = pipeline.stats.snapshot()["stages"]
    assert list(stages) == ["normalize", "wordlist", "toxicity", "spam", "exploding"]
    for name, stage in stages.items():
        assert stage["calls"] == messages, name
        assert stage["timed"] == 4  # messages 0, 16, 32, 48
    assert stages["exploding"]["failures"] == messages


def _desk(policies: dict[str, Any]) -> ModerationDesk:
    ctx = SimpleNamespace(settings=SimpleNamespace(
        moderation_escalate_after=0, moderation_escalate_window_s=600, moderation_auto_mute_s=0))
    service = ModerationService(ModerationSettings(ml="off"))
    desk = ModerationDesk(ctx, records=None, service=service)  # type: ignore[arg-type]
    desk.policies = {c: PolicyDoc.model_validate(p, strict=False) for c, p in policies.items()}
    return desk


def test_policies_are_built_once_and_follow_changes() -> None:
    desk = _desk({"strict": {"profanity": "block"}})
    assert desk.policy_for("general") is desk.policy_for("random") == Policy()
    strict = desk.policy_for("strict")
    assert strict is desk.policy_for("strict") and strict.rules["profanity"].actions == (
        (0.5, "block"),)
    desk.policies["strict"] = PolicyDoc(profanity="hold")
    assert desk.policy_for("strict").rules["profanity"].actions == ((0.5, "hold"),)
    desk.policies["*"] = PolicyDoc(spam="allow")
    assert desk.policy_for("general") == PolicyDoc(spam="allow").to_policy()
    del desk.policies["*"]
    assert desk.policy_for("general") == Policy()


def test_policy_cache_stays_bounded() -> None:
    desk = _desk({})
    for index in range(100):
        desk.policies["c"] = PolicyDoc(block_spam_at=index / 100)
        assert desk.policy_for("c").rules["spam"].actions[1] == (index / 100, "block")
    assert len(desk._built) <= 2 * len(desk.policies) + 9
