"""Policy: turn per-label scores into a verdict (allow / mask / hold / block) and mask text."""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from moderation.base import LABELS, Label, Span

Action = Literal["allow", "mask", "hold", "block"]
SEVERITY: Mapping[Action, int] = MappingProxyType({"allow": 0, "mask": 1, "hold": 2, "block": 3})
_BY_SEVERITY: tuple[Action, ...] = ("allow", "mask", "hold", "block")


@dataclass(frozen=True)
class LabelRule:
    """Thresholds for one label: when it is reported, and which action each score earns.

    ``actions`` are ``(threshold, action)`` pairs; the most severe action whose
    threshold the score reaches wins.
    """

    flag: float
    actions: tuple[tuple[float, Action], ...]

    def action_for(self, score: float) -> Action:
        """The most severe action whose threshold ``score`` reaches (``allow`` if none)."""
        chosen: Action = "allow"
        for threshold, action in self.actions:
            if score >= threshold and SEVERITY[action] > SEVERITY[chosen]:
                chosen = action
        return chosen


def default_rules() -> Mapping[Label, LabelRule]:
    """profanity -> mask; toxic and spam -> hold; very high toxic or scam -> block."""
    return MappingProxyType(
        {
            "profanity": LabelRule(0.5, ((0.5, "mask"),)),
            "toxic": LabelRule(0.5, ((0.5, "hold"), (0.95, "block"))),
            "spam": LabelRule(0.5, ((0.5, "hold"), (0.9, "block"))),
        }
    )


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome for one message.

    ``failed`` is ``True`` when a stage raised or timed out: ``verdict`` is then the
    policy's ``on_failure`` action (``block`` by default — moderation fails closed) and
    ``reasons`` contain ``stage_failed:<stage>:<error>``. ``masked_text`` is set only for
    the ``mask`` verdict. ``exempt`` means the sender's role bypassed enforcement (the
    labels and scores are still reported, e.g. for the audit log).
    """

    verdict: Action
    labels: tuple[Label, ...]
    scores: Mapping[Label, float]
    masked_text: str | None = None
    reasons: tuple[str, ...] = ()
    failed: bool = False
    exempt: bool = False
    spans: tuple[Span, ...] = field(default=(), compare=False)

    def as_protocol(self, text: str) -> dict[str, Any]:
        """The ``gigvora moderation classify`` line: text, verdict, labels, scores."""
        return {
            "text": text,
            "verdict": self.verdict,
            "labels": list(self.labels),
            "scores": {label: round(score, 4) for label, score in self.scores.items()},
        }


@dataclass(frozen=True)
class Policy:
    """Per-channel (or default) moderation policy. Immutable; build variants with ``replace``.

    What :meth:`decide` needs from ``rules`` is derived once per policy (cached on first
    use), so ``rules`` must not be changed in place after the policy is used.
    """

    rules: Mapping[Label, LabelRule] = field(default_factory=default_rules)
    exempt_roles: frozenset[str] = frozenset({"moderator", "admin"})
    on_failure: Action = "block"
    mask_char: str = "*"

    @functools.cached_property
    def _flags(self) -> tuple[tuple[Label, float], ...]:
        """``(label, flag threshold)`` of every ruled label, in canonical order."""
        return tuple((label, self.rules[label].flag) for label in LABELS if label in self.rules)

    @functools.cached_property
    def _ladders(self) -> tuple[tuple[Label, tuple[tuple[float, int], ...]], ...]:
        """Each rule's ``(threshold, severity)`` steps, most severe first."""
        return tuple(
            (
                label,
                tuple(sorted(((t, SEVERITY[a]) for t, a in rule.actions if SEVERITY[a] > 0),
                             key=lambda step: -step[1])),
            )
            for label, rule in self.rules.items()
        )

    @functools.cached_property
    def _clean(self) -> tuple[tuple[Label, ...], Action, tuple[str, ...]]:
        """Labels, action and reasons of :meth:`decide` for a message that scored nothing."""
        labels = tuple(label for label, flag in self._flags if 0.0 >= flag)
        action = self._action({})
        if action == "mask":  # nothing to mask
            return labels, "hold", ("policy:nothing_to_mask",)
        return labels, action, ()

    def decide_clean(self, roles: Iterable[str] = ()) -> Verdict:
        """``decide(text, {}, (), (), roles)``: the verdict for a message no stage flagged."""
        labels, action, reasons = self._clean
        if not self.exempt_roles.isdisjoint(roles):
            return Verdict("allow", labels, {}, None, ("policy:exempt_role",), False, True, ())
        return Verdict(action, labels, {}, None, reasons, False, False, ())

    def decide(
        self,
        text: str,
        scores: Mapping[Label, float],
        spans: Iterable[Span],
        reasons: Iterable[str],
        roles: Iterable[str] = (),
        failures: Iterable[str] = (),
    ) -> Verdict:
        """Apply the thresholds to ``scores`` and build the :class:`Verdict`."""
        spans = tuple(spans)
        reasons = tuple(reasons)
        failures = tuple(failures)
        labels = tuple(label for label, flag in self._flags if scores.get(label, 0.0) >= flag)
        clean_scores = {label: float(scores[label]) for label in LABELS if label in scores}
        if failures:
            return Verdict(
                self.on_failure, labels, clean_scores, None, reasons + failures, True, False, spans
            )
        if not self.exempt_roles.isdisjoint(roles):
            return Verdict(
                "allow",
                labels,
                clean_scores,
                None,
                (*reasons, "policy:exempt_role"),
                False,
                True,
                spans,
            )
        action = self._action(scores)
        masked = None
        if action == "mask":
            threshold = self._mask_threshold
            maskable = [s for s in spans if s.label == "profanity" and s.score >= threshold]
            if maskable:
                masked = mask_text(text, maskable, self.mask_char)
            else:
                action, reasons = "hold", (*reasons, "policy:nothing_to_mask")
        return Verdict(action, labels, clean_scores, masked, reasons, False, False, spans)

    def _action(self, scores: Mapping[Label, float]) -> Action:
        """The most severe action any rule's threshold earns (``allow`` if none)."""
        chosen = 0
        for label, steps in self._ladders:
            score = scores.get(label, 0.0)
            for threshold, severity in steps:
                if severity <= chosen:
                    break
                if score >= threshold:
                    chosen = severity
                    break
        return _BY_SEVERITY[chosen]

    @functools.cached_property
    def _mask_threshold(self) -> float:
        rule = self.rules.get("profanity")
        if rule is None:
            return 1.0
        thresholds = [t for t, action in rule.actions if action == "mask"]
        return min(thresholds, default=rule.flag)


def mask_text(text: str, spans: Iterable[Span], mask_char: str = "*") -> str:
    """Replace each span of ``text`` by its first character and ``mask_char`` for the rest.

    Whitespace inside a span is kept (``f u c k`` -> ``f * * *``) and invisible format
    characters inside it are dropped. Overlapping spans are merged.
    """
    merged: list[list[int]] = []
    for span in sorted(spans, key=lambda s: s.start):
        if merged and span.start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], span.end)
        else:
            merged.append([span.start, span.end])
    pieces: list[str] = []
    cursor = 0
    for start, end in merged:
        pieces.append(text[cursor:start])
        pieces.append(_mask_piece(text[start:end], mask_char))
        cursor = end
    pieces.append(text[cursor:])
    return "".join(pieces)


def _mask_piece(piece: str, mask_char: str) -> str:
    out: list[str] = []
    for ch in piece:
        if unicodedata.category(ch) in ("Cf", "Mn"):
            continue
        out.append(ch if not out or ch.isspace() else mask_char)
    return "".join(out)
