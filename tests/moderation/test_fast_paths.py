"""The hot path's shortcuts (memos, guards, C-level rewrites) must not change any result."""

# Look-alike characters are part of the inputs here:
# ruff: noqa: RUF001
from __future__ import annotations

import random
import re

import pytest

from moderation.base import StageContext
from moderation.normalize import Normalizer
from moderation.scam import _allowed
from moderation.spam import (
    SpamSettings,
    SpamStage,
    SpamTracker,
    _count_emoji,
    _is_emoji,
    content_cues,
)
from moderation.wordlist import WordList, WordListStage, _token_spans

MESSAGES = [
    "Hey everyone, just joined as a freelance UX designer!",
    "the class will assess the bass player",
    "fuuuuck this, all good though",  # a run of three next to doubled letters
    "bass fuuun",
    "all good, see you in a week",
    "f u c k off",
    "what the f*ck",
    "sh1t happens",
    "Dick Smith is our new PM",
    "that's a cocktail in Scunthorpe",
    "ѕhіt in Cyrillic",
    "go to www.free-nitro.xyz/claim now",
    "check out my channel!!! link in bio",
    "hello hello hello hello hello hello hello",
    "I will find you and hurt you",
    "send 0.1 btc to 1BoatSLRHtKNngkdXEeobR76b53LETtpyT",
]


def _signature(stage: WordListStage, text: str) -> tuple[object, ...]:
    result = stage.classify(text, StageContext(Normalizer().normalize(text)))
    spans = sorted((s.start, s.end, s.label, s.score, s.term) for s in result.spans)
    return result.labels, dict(result.scores), spans, result.reasons


def test_clean_token_memo_changes_nothing(wordlist: WordList) -> None:
    memo = WordListStage(WordList.build(clean_cache=1000))
    plain = WordListStage(WordList.build(clean_cache=0))
    rng = random.Random(5)
    words = " ".join(MESSAGES).split()
    texts = MESSAGES + [" ".join(rng.sample(words, rng.randint(1, 8))) for _ in range(300)]
    for _ in range(2):  # the second pass runs on a warm memo
        for text in texts:
            assert _signature(memo, text) == _signature(plain, text), text


def test_clean_token_memo_is_bounded() -> None:
    wordlist = WordList.build(clean_cache=50)
    stage = WordListStage(wordlist)
    for index in range(200):
        stage.classify("x", StageContext(Normalizer().normalize(f"word{index} plain text")))
    assert len(wordlist._clean) <= 50


def test_token_spans_match_the_regex_they_replace() -> None:
    rng = random.Random(9)
    for _ in range(2000):
        words = "".join(rng.choice("ab *") for _ in range(rng.randint(0, 14)))
        token = "".join(rng.choice("ab*") for _ in range(rng.randint(1, 3)))
        expected = [
            m.span() for m in re.finditer(r"(?<!\S)" + re.escape(token) + r"(?!\S)", words)
        ]
        assert list(_token_spans(words, token)) == expected, (words, token)


def test_emoji_count_matches_per_character_test() -> None:
    rng = random.Random(3)
    ranges = [(0, 0x7F), (0x80, 0x3000), (0x2500, 0x2800), (0x1F000, 0x1FAFF), (0x10000, 0x10FFFF)]
    for _ in range(3000):
        text = "".join(
            chr(rng.randint(*rng.choice(ranges))) for _ in range(rng.randint(0, 20))
        )
        assert _count_emoji(text) == sum(map(_is_emoji, text))


@pytest.mark.parametrize(
    ("domain", "expected"),
    [("github.com", True), ("gist.github.com", True), ("evilgithub.com", False), ("com", False)],
)
def test_allowed_domain_suffix_lookup(domain: str, expected: bool) -> None:
    allowed = frozenset({"github.com", "example.org"})
    assert _allowed(domain, allowed) is expected
    assert any(domain == a or domain.endswith("." + a) for a in allowed) is expected


def test_content_cue_guards_keep_results() -> None:
    settings = SpamSettings()
    normalizer = Normalizer()
    cases = {
        "THIS IS A VERY LOUD MESSAGE FOR EVERYONE": ["caps_flood"],
        "🔥" * 10: ["emoji_flood"],
        "buy buy now now buy buy now now buy buy now now": ["repeated_phrase"],
        "hi there, see you at 3": [],
    }
    for text, reasons in cases.items():
        cues = content_cues(text, normalizer.normalize(text), settings)
        assert [reason for reason, _ in cues] == reasons, text


def test_tracker_forgets_only_messages_outside_every_window() -> None:
    settings = SpamSettings()
    tracker = SpamTracker(settings)
    stage = SpamStage(settings, tracker)
    normalizer = Normalizer()
    text = "the same long message again"

    def reasons(now: float) -> tuple[str, ...]:
        return stage.classify(text, StageContext(normalizer.normalize(text), "u1", now=now)).reasons

    assert reasons(0.0) == ()
    assert reasons(60.0) == ()
    assert "spam:duplicate" in reasons(120.0)  # 0 s and 60 s are both within 120 s
    assert reasons(1000.0) == ()  # all three pruned: older than every window
    assert len(tracker._users["u1"]) == 1
