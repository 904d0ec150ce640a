"""Spam heuristics: per-user rate, burst and duplicates, plus per-message content cues.

Per-user state lives in a :class:`SpamTracker` that the caller creates and owns (one per
application, never a module global). Its memory is bounded: at most
``SpamSettings.max_users`` users (least recently seen evicted first), each with at most
``history_per_user`` recent messages. Time is passed in (``StageContext.now``), so tests
drive it directly.

Content cues (no state): link floods, unknown / suspicious / look-alike domains and URL
shorteners, mention floods, caps floods, emoji floods, a phrase repeated inside one
message, and known scam patterns (see :mod:`moderation.scam`). Every cue has a weight;
the ``spam`` score is their noisy-OR.
"""

from __future__ import annotations

import functools
import itertools
import re
import unicodedata
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from moderation.base import Label, StageContext, StageResult, combine_scores, labels_over
from moderation.normalize import NormalizedText
from moderation.scam import ScamPattern, default_scam_patterns, domain_cues, wallet_cues

DEFAULT_ALLOWED_DOMAINS = frozenset(
    {
        "gigvora.com",
        "github.com",
        "gitlab.com",
        "bitbucket.org",
        "stackoverflow.com",
        "python.org",
        "pypi.org",
        "readthedocs.io",
        "readthedocs.org",
        "mozilla.org",
        "google.com",
        "youtube.com",
        "youtu.be",
        "figma.com",
        "notion.so",
        "linkedin.com",
        "medium.com",
        "dev.to",
        "wikipedia.org",
        "microsoft.com",
        "apple.com",
        "npmjs.com",
        "docker.com",
        "aws.amazon.com",
        "cloudflare.com",
        "behance.net",
        "dribbble.com",
        "unsplash.com",
        "vercel.app",
        "netlify.app",
        "example.com",
        "example.org",
    }
)

_URL = re.compile(
    r"(?:https?://|www\.)[^\s<>\"')\]]+"
    r"|\b(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+(?:com|net|org|io|xyz|top|click|gift|ru|biz|"
    r"info|co|me|ly|gg|link|site|online|shop|live|app|dev|tk|ml|ga|cf|gq|su|pw|icu|buzz|"
    r"win|bid|loan|work|fun|space|store|tech|cn|us|uk|de|at|so|to)\b(?:/[^\s]*)?",
    re.IGNORECASE,
)
_WALLETISH = re.compile(r"0x|bc1|\b[13][a-km-zA-HJ-NP-Z1-9]{25}")
_LINKISH = re.compile(r"[a-zA-Z0-9]\.[a-zA-Z]{2}|://")
_MENTION = re.compile(r"(?<![\w@])@[\w.\-]{1,64}")
_TRIGRAM_MIN_WORDS = 6


@dataclass(frozen=True)
class SpamSettings:
    """Thresholds of the spam stage. A count limit of ``0`` disables that rule."""

    rate_window_s: float = 10.0
    rate_max: int = 8
    burst_window_s: float = 2.0
    burst_max: int = 4
    duplicate_window_s: float = 120.0
    duplicate_max: int = 2
    duplicate_min_chars: int = 8
    near_duplicate_jaccard: float = 0.8
    max_links: int = 3
    allowed_domains: frozenset[str] = DEFAULT_ALLOWED_DOMAINS
    max_mentions: int = 5
    caps_min_letters: int = 24
    caps_ratio: float = 0.85
    max_emoji: int = 9
    max_users: int = 10_000
    history_per_user: int = 16
    scam_patterns: tuple[ScamPattern, ...] = field(default_factory=default_scam_patterns)

    @functools.cached_property
    def scam_triggers(self) -> frozenset[str]:
        """Every trigger word of :attr:`scam_patterns` (one set look-up skips them all)."""
        return frozenset().union(*(pattern.triggers for pattern in self.scam_patterns))


@dataclass(frozen=True, slots=True)
class _Seen:
    at: float
    fingerprint: int
    shingles: frozenset[int]


def fingerprint(text: NormalizedText) -> tuple[int, frozenset[int]]:
    """Exact-duplicate hash and near-duplicate shingles (word bigrams) of a message."""
    tokens = text.words.split()
    exact = hash(" ".join(tokens))
    if len(tokens) < 3:
        return exact, frozenset({exact})
    return exact, frozenset(hash(pair) for pair in itertools.pairwise(tokens))


class SpamTracker:
    """Bounded per-user history used for rate, burst and duplicate rules (caller-owned)."""

    def __init__(self, settings: SpamSettings | None = None) -> None:
        self.settings = settings or SpamSettings()
        self._users: OrderedDict[str, deque[_Seen]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._users)

    def observe(self, user_id: str, text: NormalizedText, now: float) -> list[tuple[str, float]]:
        """Record one message from ``user_id`` at ``now`` and return the cues it triggers."""
        settings = self.settings
        history = self._history(user_id)
        exact, shingles = fingerprint(text)
        check_copies = (
            bool(settings.duplicate_max) and len(text.words) >= settings.duplicate_min_chars
        )
        in_rate = in_burst = copies = 0
        for seen in history:
            age = now - seen.at
            in_rate += age <= settings.rate_window_s
            in_burst += age <= settings.burst_window_s
            if check_copies and age <= settings.duplicate_window_s:
                copies += seen.fingerprint == exact or _similar(
                    seen.shingles, shingles, settings.near_duplicate_jaccard
                )
        history.append(_Seen(now, exact, shingles))
        cues: list[tuple[str, float]] = []
        if settings.rate_max and in_rate >= settings.rate_max:
            cues.append(("rate", 0.96))
        if settings.burst_max and in_burst >= settings.burst_max:
            cues.append(("burst", 0.96))
        if check_copies and copies >= settings.duplicate_max:
            cues.append(("duplicate", 0.85))
        return cues

    def forget(self, user_id: str) -> None:
        """Drop everything remembered about ``user_id``."""
        self._users.pop(user_id, None)

    def _history(self, user_id: str) -> deque[_Seen]:
        history = self._users.get(user_id)
        if history is None:
            history = deque(maxlen=self.settings.history_per_user)
            self._users[user_id] = history
            while len(self._users) > self.settings.max_users:
                self._users.popitem(last=False)
        else:
            self._users.move_to_end(user_id)
        return history


def _similar(a: frozenset[int], b: frozenset[int], threshold: float) -> bool:
    """Jaccard similarity >= ``threshold`` (cheap size check first)."""
    small, large = sorted((len(a), len(b)))
    if not small or small < threshold * large:
        return False
    common = len(a & b)
    return common / (len(a) + len(b) - common) >= threshold


def _is_emoji(ch: str) -> bool:
    if ch.isascii():
        return False
    code = ord(ch)
    return code >= 0x1F000 or 0x2600 <= code <= 0x27BF or unicodedata.category(ch) == "So"


def content_cues(
    text: str, normalized: NormalizedText, settings: SpamSettings
) -> list[tuple[str, float]]:
    """Stateless spam cues of one message as ``(reason, weight)`` pairs."""
    cues = _link_cues(text, settings)
    if (
        settings.max_mentions
        and text.count("@") >= settings.max_mentions
        and len(set(_MENTION.findall(text))) >= settings.max_mentions
    ):
        cues.append(("mention_flood", 0.75))
    cues.extend(_shape_cues(text, settings))
    cues.extend(_repeat_cues(normalized))
    if _WALLETISH.search(text) is not None:
        cues.extend(wallet_cues(text))
    tokens = normalized.tokens
    if not settings.scam_triggers.isdisjoint(tokens):
        for pattern in settings.scam_patterns:
            if pattern.search(normalized.words, tokens):
                cues.append((f"scam:{pattern.reason}", pattern.weight))
    return cues


def _link_cues(text: str, settings: SpamSettings) -> list[tuple[str, float]]:
    if _LINKISH.search(text) is None:
        return []
    links = _URL.findall(text)
    if not links:
        return []
    cues: list[tuple[str, float]] = []
    if settings.max_links and len(links) > settings.max_links:
        cues.append(("link_flood", 0.75))
    for link in links:
        cues.extend(domain_cues(link, settings.allowed_domains))
    return cues


def _shape_cues(text: str, settings: SpamSettings) -> list[tuple[str, float]]:
    cues: list[tuple[str, float]] = []
    if settings.caps_min_letters and len(text) >= settings.caps_min_letters:
        upper = sum(map(str.isupper, text))
        if upper >= settings.caps_min_letters * settings.caps_ratio:
            letters = sum(map(str.isalpha, text))
            if letters >= settings.caps_min_letters and upper / letters >= settings.caps_ratio:
                cues.append(("caps_flood", 0.4))
    emoji = 0 if text.isascii() else sum(map(_is_emoji, text))
    if settings.max_emoji and emoji > settings.max_emoji:
        cues.append(("emoji_flood", 0.7))
    return cues


def _repeat_cues(normalized: NormalizedText) -> list[tuple[str, float]]:
    tokens = normalized.words.split()
    if len(tokens) < _TRIGRAM_MIN_WORDS:
        return []
    trigrams = list(zip(tokens, tokens[1:], tokens[2:], strict=False))
    if len(trigrams) - len(set(trigrams)) >= 2:
        return [("repeated_phrase", 0.4)]
    return []


class SpamStage:
    """The spam :class:`~moderation.base.Stage`; ``tracker`` (caller-owned) adds per-user rules."""

    name = "spam"

    def __init__(
        self, settings: SpamSettings | None = None, tracker: SpamTracker | None = None
    ) -> None:
        self.settings = settings or (tracker.settings if tracker else SpamSettings())
        self.tracker = tracker

    def classify(self, text: str, ctx: StageContext) -> StageResult:
        """Score ``text`` for spam; records it in the tracker when ``ctx.user_id`` is set."""
        cues = content_cues(text, ctx.normalized, self.settings)
        if self.tracker is not None and ctx.user_id is not None:
            cues.extend(self.tracker.observe(ctx.user_id, ctx.normalized, ctx.now))
        if not cues:
            return StageResult()
        scores: dict[Label, float] = {"spam": combine_scores(*(weight for _, weight in cues))}
        reasons = tuple(dict.fromkeys(f"spam:{reason}" for reason, _ in cues))
        return StageResult(labels_over(scores), scores, (), reasons)
