"""Types shared by every moderation stage: labels, spans, results, the stage protocol."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from moderation.normalize import NormalizedText

Label = Literal["profanity", "toxic", "spam"]
LABELS: tuple[Label, ...] = ("profanity", "toxic", "spam")


class StageUnavailable(RuntimeError):
    """An optional stage cannot run here (package missing, model path not configured)."""


@dataclass(frozen=True, slots=True)
class Span:
    """A flagged region of the ORIGINAL text, ``text[start:end]``, with the label it supports."""

    start: int
    end: int
    label: Label
    score: float
    term: str = ""


@dataclass(frozen=True, slots=True)
class StageResult:
    """What one stage found: labels it is confident about, per-label scores, spans, reasons.

    ``scores`` holds probabilities-like values in ``[0, 1]``; the policy, not the stage,
    decides what a score means for the message. ``reasons`` are short machine-readable
    strings such as ``"spam:mention_flood"``.
    """

    labels: tuple[Label, ...] = ()
    scores: Mapping[Label, float] = field(default_factory=dict)
    spans: tuple[Span, ...] = ()
    reasons: tuple[str, ...] = ()


# "Nothing found", shared by every stage (a fresh StageResult costs a frozen-dataclass
# __init__ and a dict per message); its scores mapping is read-only.
EMPTY_RESULT = StageResult((), MappingProxyType({}))


@dataclass(slots=True)
class StageContext:
    """Everything a stage may use besides the raw text.

    ``normalized`` is computed once by the pipeline and shared by all stages;
    ``now`` is a monotonic timestamp in seconds supplied by the caller (tests inject it).
    """

    normalized: NormalizedText
    user_id: str | None = None
    roles: frozenset[str] = frozenset()
    channel: str | None = None
    now: float = 0.0


@runtime_checkable
class Stage(Protocol):
    """A synchronous classifier stage. It must be fast enough to run on the event loop."""

    name: str

    def classify(self, text: str, ctx: StageContext) -> StageResult:
        """Classify ``text`` (the original message); ``ctx.normalized`` is its normalised form."""
        ...


@runtime_checkable
class AsyncStage(Protocol):
    """An asynchronous stage (ML tiers): the work runs off the event loop."""

    name: str

    async def classify_async(self, text: str, ctx: StageContext) -> StageResult:
        """Classify ``text`` without blocking the running event loop."""
        ...


def combine_scores(*scores: float) -> float:
    """Combine independent pieces of evidence as ``1 - prod(1 - s)`` (noisy-OR)."""
    remaining = 1.0
    for score in scores:
        remaining *= 1.0 - min(max(score, 0.0), 1.0)
    return 1.0 - remaining


def labels_over(scores: Mapping[Label, float], threshold: float = 0.5) -> tuple[Label, ...]:
    """Return the labels whose score reaches ``threshold``, in canonical order."""
    return tuple(label for label in LABELS if scores.get(label, 0.0) >= threshold)
