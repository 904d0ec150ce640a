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
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from moderation.base import (
    EMPTY_RESULT,
    Label,
    StageContext,
    StageResult,
    combine_scores,
    labels_over,
)
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
# "[a-zA-Z0-9]\.[a-zA-Z]{2}" written to start with its literal "." (the regex engine then
# skips ahead to each "." instead of trying every position); "://" is a substring test.
_DOT_LINKISH = re.compile(r"\.(?<=[a-zA-Z0-9]\.)[a-zA-Z]{2}")
_MENTION = re.compile(r"(?<![\w@])@[\w.\-]{1,64}")
_TRIGRAM_MIN_WORDS = 6
# bytes.translate table: A-Z -> "U", anything else -> " " (then count the "U"s).
_MARK_ASCII_UPPER = bytes(0x55 if 0x41 <= code <= 0x5A else 0x20 for code in range(256))


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

    @functools.cached_property
    def scam_index(self) -> dict[str, tuple[int, ...]]:
        """Trigger word -> indices (into :attr:`scam_patterns`) of the patterns it can fire."""
        index: dict[str, list[int]] = {}
        for position, pattern in enumerate(self.scam_patterns):
            for word in pattern.triggers:
                index.setdefault(word, []).append(position)
        return {word: tuple(positions) for word, positions in index.items()}

    @functools.cached_property
    def history_horizon_s(self) -> float:
        """Age beyond which a remembered message can no longer count for any rule."""
        return max(self.rate_window_s, self.burst_window_s, self.duplicate_window_s)


# One remembered message: [time seen, exact-duplicate hash, its tokens, its shingles or
# None until a near-duplicate comparison first needs them]. A plain list: building it
# costs a fraction of a (frozen) dataclass instance, and the shingles fill in later.
_Seen = list[Any]


def _shingles(tokens: list[str], exact: int) -> frozenset[int]:
    """Near-duplicate shingles of a message: hashes of its word bigrams."""
    if len(tokens) < 3:
        return frozenset((exact,))
    return frozenset(map(hash, itertools.pairwise(tokens)))


def fingerprint(text: NormalizedText) -> tuple[int, frozenset[int]]:
    """Exact-duplicate hash and near-duplicate shingles (word bigrams) of a message."""
    tokens = text.token_list
    exact = hash(" ".join(tokens))
    return exact, _shingles(tokens, exact)


class SpamTracker:
    """Bounded per-user history used for rate, burst and duplicate rules (caller-owned)."""

    def __init__(self, settings: SpamSettings | None = None) -> None:
        self.settings = settings or SpamSettings()
        self._users: OrderedDict[str, deque[_Seen]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._users)

    def observe(self, user_id: str, text: NormalizedText, now: float) -> list[tuple[str, float]]:
        """Record one message from ``user_id`` at ``now`` and return the cues it triggers.

        ``now`` comes from a monotonic clock: remembered messages older than every rule's
        window are dropped here, so the loop below only sees messages that can count.
        """
        settings = self.settings
        history = self._users.get(user_id)
        if history is None:
            history = self._history(user_id)
        else:
            self._users.move_to_end(user_id)
            horizon = settings.history_horizon_s
            while history and now - history[0][0] > horizon:
                history.popleft()
        # fingerprint(text), with the shingles computed only if a comparison needs them
        tokens = text.token_list
        exact = hash(" ".join(tokens))
        shingles: frozenset[int] | None = None
        check_copies = (
            bool(settings.duplicate_max) and len(text.words) >= settings.duplicate_min_chars
        )
        in_rate = in_burst = copies = 0
        if history:
            rate_window = settings.rate_window_s
            burst_window = settings.burst_window_s
            duplicate_window = settings.duplicate_window_s
            jaccard = settings.near_duplicate_jaccard
            for seen in history:
                age = now - seen[0]
                in_rate += age <= rate_window
                in_burst += age <= burst_window
                if check_copies and age <= duplicate_window:
                    if seen[1] == exact:
                        copies += 1
                        continue
                    if shingles is None:
                        shingles = _shingles(tokens, exact)
                    seen_shingles = seen[3]
                    if seen_shingles is None:
                        seen_shingles = seen[3] = _shingles(seen[2], seen[1])
                    # _similar(seen_shingles, shingles, jaccard), its size check inline
                    a, b = len(seen_shingles), len(shingles)
                    if a and b and (a if a <= b else b) >= jaccard * (b if a <= b else a):
                        copies += _similar(seen_shingles, shingles, jaccard)
        history.append([now, exact, tokens, shingles])
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
    small, large = (len(a), len(b)) if len(a) <= len(b) else (len(b), len(a))
    if not small or small < threshold * large:
        return False
    common = len(a & b)
    return common / (len(a) + len(b) - common) >= threshold


# _is_emoji, as two character classes: always emoji / non-ASCII, to ask unicodedata.
_EMOJI_BLOCK = re.compile("[\u2600-\u27bf\U0001f000-\U0010ffff]")
_OTHER_NON_ASCII = re.compile("[^\x00-\x7f\u2600-\u27bf\U0001f000-\U0010ffff]")


def _count_emoji(text: str) -> int:
    """``sum(map(_is_emoji, text))`` with the per-character work done by the regex engine."""
    count = len(_EMOJI_BLOCK.findall(text))
    for ch in _OTHER_NON_ASCII.findall(text):
        count += unicodedata.category(ch) == "So"
    return count


def _is_emoji(ch: str) -> bool:
    if ch.isascii():
        return False
    code = ord(ch)
    return code >= 0x1F000 or 0x2600 <= code <= 0x27BF or unicodedata.category(ch) == "So"


def content_cues(
    text: str, normalized: NormalizedText, settings: SpamSettings
) -> list[tuple[str, float]]:
    """Stateless spam cues of one message as ``(reason, weight)`` pairs.

    Every cue sits behind a guard that costs a substring test, a length or a set
    operation, so a plain chat message runs at most the small ``_DOT_LINKISH`` regex here.
    """
    # A link needs "." or "://" (see _link_cues).
    cues = _link_cues(text, settings) if "." in text or "://" in text else []
    if (
        settings.max_mentions
        and text.count("@") >= settings.max_mentions
        and len(set(_MENTION.findall(text))) >= settings.max_mentions
    ):
        cues.append(("mention_flood", 0.75))
    size = len(text)
    # Caps need a long text; emoji need a non-ASCII one (a negative limit is always over).
    if size >= settings.caps_min_letters or settings.max_emoji < 0 or not text.isascii():
        _shape_cues(text, settings, cues)
    tokens = normalized.tokens
    token_list = normalized.token_list
    # One repeated trigram means three repeated tokens (see _repeat_cues).
    if len(token_list) >= _TRIGRAM_MIN_WORDS and len(token_list) - len(tokens) >= 3:
        cues.extend(_repeat_cues(normalized))
    # _WALLETISH needs "0x", "bc1", or 26 characters starting with "1" or "3".
    if (
        "0x" in text or "bc1" in text or (size >= 26 and ("1" in text or "3" in text))
    ) and _WALLETISH.search(text) is not None:
        cues.extend(wallet_cues(text))
    present = settings.scam_triggers.intersection(tokens)
    if present:
        _scam_cues(normalized, settings, present, cues)
    return cues


def _scam_cues(
    normalized: NormalizedText,
    settings: SpamSettings,
    present: frozenset[str],
    cues: list[tuple[str, float]],
) -> None:
    """Run only the scam patterns one of whose trigger words (``present``) is in the text."""
    index = settings.scam_index
    if len(present) == 1:
        (word,) = present
        candidates: Iterable[int] = index[word]
    else:
        candidates = sorted(set().union(*(index[word] for word in present)))
    patterns = settings.scam_patterns
    words, tokens = normalized.words, normalized.tokens
    for position in candidates:
        pattern = patterns[position]
        if pattern.search(words, tokens):
            cues.append((f"scam:{pattern.reason}", pattern.weight))


def _link_cues(text: str, settings: SpamSettings) -> list[tuple[str, float]]:
    if "://" not in text and _DOT_LINKISH.search(text) is None:
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


def _shape_cues(text: str, settings: SpamSettings, cues: list[tuple[str, float]]) -> None:
    """Caps flood and emoji flood, appended to ``cues``."""
    if settings.caps_min_letters and len(text) >= settings.caps_min_letters:
        if text.isascii():  # count A-Z in C
            upper = text.encode("ascii").translate(_MARK_ASCII_UPPER).count(b"U")
        else:
            upper = sum(map(str.isupper, text))
        if upper >= settings.caps_min_letters * settings.caps_ratio:
            letters = sum(map(str.isalpha, text))
            if letters >= settings.caps_min_letters and upper / letters >= settings.caps_ratio:
                cues.append(("caps_flood", 0.4))
    limit = settings.max_emoji
    if limit:
        # An emoji is non-ASCII, so it takes 2+ bytes in UTF-8: at most one per extra byte.
        extra = 0 if text.isascii() else len(text.encode("utf-8", "surrogatepass")) - len(text)
        emoji = _count_emoji(text) if extra > limit else 0
        if emoji > limit:
            cues.append(("emoji_flood", 0.7))


def _repeat_cues(normalized: NormalizedText) -> list[tuple[str, float]]:
    """Two repeated word trigrams. A trigram seen again at position ``j`` makes tokens
    ``j..j+2`` repeats of earlier ones, so this needs three repeated tokens at least."""
    tokens = normalized.token_list
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
            return EMPTY_RESULT
        scores: dict[Label, float] = {"spam": combine_scores(*(weight for _, weight in cues))}
        reasons = tuple(dict.fromkeys(f"spam:{reason}" for reason, _ in cues))
        return StageResult(labels_over(scores), scores, (), reasons)
