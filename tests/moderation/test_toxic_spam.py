from __future__ import annotations

import pytest

from moderation.base import StageContext
from moderation.normalize import Normalizer
from moderation.spam import SpamSettings, SpamStage, SpamTracker
from moderation.toxic import ToxicityStage


def toxic_score(text: str) -> float:
    ctx = StageContext(Normalizer().normalize(text))
    return ToxicityStage().classify(text, ctx).scores.get("toxic", 0.0)


@pytest.mark.parametrize(
    "text",
    [
        "nobody wants you here, just leave",
        "you are worthless",
        "kys",
        "k y s",
        "I will find you",
        "Y0u are w0rthless",
        "you should just die",
        "I know where you live",
        "you fool",
    ],
)
def test_harassment_without_swear_words(text: str) -> None:
    assert toxic_score(text) >= 0.5


@pytest.mark.parametrize(
    "text",
    [
        "kill the process",
        "this bug is killing me",
        "I felt worthless after that",
        "I'll find you a designer",
        "I will find you the invoice",
        "you are not worthless",
        "You're killing it!",
        "shut up and take my money",
        "Go away for a weekend",
    ],
)
def test_clean_lookalikes_are_not_toxic(text: str) -> None:
    assert toxic_score(text) < 0.5


def test_self_harm_incitement_scores_for_block() -> None:
    assert toxic_score("go kill yourself") >= 0.95


def spam_stage(**overrides: object) -> tuple[SpamStage, Normalizer]:
    settings = SpamSettings(**overrides)  # type: ignore[arg-type]
    return SpamStage(settings, SpamTracker(settings)), Normalizer()


def spam_score(
    stage: SpamStage, normalizer: Normalizer, text: str, user: str = "u1", now: float = 0.0
) -> tuple[float, tuple[str, ...]]:
    result = stage.classify(text, StageContext(normalizer.normalize(text), user, now=now))
    return result.scores.get("spam", 0.0), result.reasons


def test_burst_is_detected_with_injected_time() -> None:
    stage, normalizer = spam_stage()
    scores = [
        spam_score(stage, normalizer, f"message number {i}", now=i * 0.1)[0] for i in range(6)
    ]
    assert scores[0] == 0.0
    assert scores[-1] >= 0.9


def test_rate_rules_disabled_by_zero() -> None:
    stage, normalizer = spam_stage(rate_max=0, burst_max=0)
    scores = [
        spam_score(stage, normalizer, f"message number {i}", now=i * 0.1)[0] for i in range(20)
    ]
    assert max(scores) == 0.0


def test_near_duplicates_are_detected() -> None:
    stage, normalizer = spam_stage(burst_max=0, rate_max=0)
    texts = [
        "check out my new design portfolio please",
        "check out my new design portfolio please!!",
        "Check out my new design portfolio, please",
    ]
    scores = [spam_score(stage, normalizer, text, now=i * 5.0) for i, text in enumerate(texts)]
    assert scores[-1][0] >= 0.5 and "spam:duplicate" in scores[-1][1]


def test_users_do_not_share_state() -> None:
    stage, normalizer = spam_stage()
    for i in range(5):
        spam_score(stage, normalizer, f"hello {i}", user="a", now=i * 0.1)
    assert spam_score(stage, normalizer, "hello", user="b", now=0.6)[0] == 0.0


def test_tracker_memory_is_bounded() -> None:
    settings = SpamSettings(max_users=3)
    tracker = SpamTracker(settings)
    normalizer = Normalizer()
    for user in range(10):
        tracker.observe(str(user), normalizer.normalize("hi"), 0.0)
    assert len(tracker) == 3


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("@a @b @c @d @e @f look", "spam:mention_flood"),
        ("http://a.xyz http://b.xyz http://c.xyz http://d.xyz", "spam:link_flood"),
        ("🔥" * 12, "spam:emoji_flood"),
        ("Free nitro at https://dlscord-gift.ru/x", "spam:lookalike_domain"),
        ("DM me on telegram for guaranteed returns", "spam:scam:guaranteed_returns"),
        ("send 1 btc and get 2 btc back", "spam:scam:crypto_giveaway"),
    ],
)
def test_content_cues(text: str, reason: str) -> None:
    stage, normalizer = spam_stage()
    score, reasons = spam_score(stage, normalizer, text)
    assert reason in reasons and score >= 0.5


@pytest.mark.parametrize(
    "text",
    [
        "Here's the repo: https://github.com/aio-libs/aiohttp",
        "We pay 40 USD an hour, DM me",
        "I built a Telegram bot for a client",
        "THANK YOU ALL",
        "Great job @maria and @tom!",
    ],
)
def test_clean_messages_are_not_spam(text: str) -> None:
    stage, normalizer = spam_stage()
    assert spam_score(stage, normalizer, text)[0] < 0.5
