"""Evaluate a classifier against a labelled JSONL set (``{"text", "labels"}`` per line)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from moderation.base import LABELS


@dataclass(frozen=True, slots=True)
class EvalItem:
    """One labelled message."""

    text: str
    labels: frozenset[str]


@dataclass
class LabelCounts:
    """Confusion counts of one label."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        """tp / (tp + fp); 1.0 when nothing was predicted."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        """tp / (tp + fn); 1.0 when nothing was expected."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


@dataclass
class EvalReport:
    """Per-label counts, flagged-vs-clean rates and the misclassified examples."""

    per_label: dict[str, LabelCounts] = field(
        default_factory=lambda: {label: LabelCounts() for label in LABELS}
    )
    flagged_total: int = 0
    flagged_caught: int = 0
    clean_total: int = 0
    clean_flagged: int = 0
    mistakes: list[tuple[str, list[str], list[str]]] = field(default_factory=list)

    @property
    def flagged_recall(self) -> float:
        """Share of messages that should be flagged and got at least one label."""
        return self.flagged_caught / self.flagged_total if self.flagged_total else 1.0

    @property
    def clean_fp_rate(self) -> float:
        """Share of clean messages that got any label."""
        return self.clean_flagged / self.clean_total if self.clean_total else 0.0

    def lines(self, title: str) -> list[str]:
        """A printable summary."""
        out = [f"== {title}"]
        for label, c in self.per_label.items():
            out.append(
                f"  {label:<10} precision {c.precision:.3f}  recall {c.recall:.3f}"
                f"  (tp {c.tp}, fp {c.fp}, fn {c.fn})"
            )
        out.append(
            f"  flagged recall {self.flagged_recall:.3f}"
            f" ({self.flagged_caught}/{self.flagged_total})"
        )
        out.append(
            f"  clean false-positive rate {self.clean_fp_rate:.3f}"
            f" ({self.clean_flagged}/{self.clean_total})"
        )
        return out


def load_eval(path: Path) -> list[EvalItem]:
    """Read a JSONL evaluation set."""
    items = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            items.append(EvalItem(row["text"], frozenset(row["labels"])))
    return items


def evaluate(predict: Callable[[str], Iterable[str]], items: Iterable[EvalItem]) -> EvalReport:
    """Run ``predict`` (text -> predicted labels) over ``items`` and count."""
    report = EvalReport()
    for item in items:
        predicted = frozenset(predict(item.text))
        for label, counts in report.per_label.items():
            counts.tp += label in predicted and label in item.labels
            counts.fp += label in predicted and label not in item.labels
            counts.fn += label not in predicted and label in item.labels
        if item.labels:
            report.flagged_total += 1
            report.flagged_caught += bool(predicted)
        else:
            report.clean_total += 1
            report.clean_flagged += bool(predicted)
        if predicted != item.labels:
            report.mistakes.append((item.text, sorted(item.labels), sorted(predicted)))
    return report
