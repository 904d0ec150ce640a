"""Moderation benchmark: hot-path speed vs better-profanity, and label quality.

Run: ``python benchmarks/moderation.py [--seconds 2] [--no-ml]``

(a) messages/s of our hot path (normalise + word list + spam, one core, no ML) and of
    better-profanity's ``contains_profanity`` on the same messages, in one run;
    also the full rule pipeline (adds the toxicity lexicon and the policy).
(b) precision/recall per label and the false-positive rate on clean messages for our
    pipeline (rules, and rules + alt-profanity-check if installed) and for
    better-profanity alone (which only knows "profanity"), on
    ``tests/data/moderation_eval.jsonl`` and the smaller ``moderation_holdout.jsonl``.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from moderation.base import StageContext  # noqa: E402
from moderation.evaluation import EvalItem, evaluate, load_eval  # noqa: E402
from moderation.normalize import Normalizer  # noqa: E402
from moderation.pipeline import ModerationSettings, build_pipeline  # noqa: E402
from moderation.spam import SpamSettings, SpamStage, SpamTracker  # noqa: E402
from moderation.wordlist import WordList, WordListStage  # noqa: E402

DATA = ROOT / "tests" / "data"


def throughput(fn: Callable[[str], object], texts: Sequence[str], seconds: float) -> float:
    """Messages per second of ``fn`` over ``texts``, repeated for about ``seconds``."""
    done = 0
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        for text in texts:
            fn(text)
        done += len(texts)
    return done / (time.perf_counter() - started)


def hot_path() -> Callable[[str], object]:
    """normalise + word list + spam (with a per-user tracker), as the server runs them."""
    normalizer = Normalizer()
    wordlist = WordListStage(WordList.build())
    settings = SpamSettings()
    spam = SpamStage(settings, SpamTracker(settings))
    clock = iter(range(10**12))

    def run(text: str) -> object:
        ctx = StageContext(
            normalizer.normalize(text),
            f"user{hash(text) % 500}",
            frozenset(),
            None,
            float(next(clock)),
        )
        return wordlist.classify(text, ctx), spam.classify(text, ctx)

    return run


def better_profanity_fn() -> Callable[[str], bool] | None:
    """better-profanity's ``contains_profanity``, or ``None`` when it is not installed."""
    if importlib.util.find_spec("better_profanity") is None:
        return None
    from better_profanity import profanity

    profanity.load_censor_words()
    return profanity.contains_profanity


def run_speed(items: Sequence[EvalItem], seconds: float) -> None:
    """Print part (a)."""
    texts = [item.text for item in items]
    ours = throughput(hot_path(), texts, seconds)
    rules = build_pipeline(include_ml=False)
    full = throughput(rules.classify, texts, seconds)
    print(
        f"== speed ({len(texts)} messages, "
        f"mean {sum(map(len, texts)) / len(texts):.0f} chars, one core)"
    )
    print(f"  hot path (normalise+wordlist+spam)   {ours:>12,.0f} msg/s")
    print(f"  rule pipeline (+toxicity, policy)     {full:>12,.0f} msg/s")
    reference = better_profanity_fn()
    if reference is None:
        print("  better-profanity not installed: no comparison")
        return
    theirs = throughput(reference, texts, max(seconds / 4, 0.5))
    print(f"  better-profanity contains_profanity   {theirs:>12,.0f} msg/s")
    print(f"  ratio hot path / better-profanity     {ours / theirs:>12,.1f}x")


def run_quality(use_ml: bool) -> None:
    """Print part (b) for each labelled file."""
    settings = ModerationSettings(ml="auto" if use_ml else "off")
    rules = build_pipeline(settings, include_ml=False)
    predictors: list[tuple[str, Callable[[str], Sequence[str]]]] = [
        ("ours: rules", lambda text: rules.classify(text).labels),
    ]
    if use_ml:
        with_ml = build_pipeline(settings, include_ml=True)
        if "ml_profanity_check" not in with_ml.stats.disabled:
            predictors.append(
                ("ours: rules + alt-profanity-check", lambda text: with_ml.classify(text).labels)
            )
    reference = better_profanity_fn()
    if reference is not None:
        predictors.append(
            ("better-profanity alone", lambda text: ["profanity"] if reference(text) else [])
        )
    for name in ("moderation_eval", "moderation_holdout"):
        path = DATA / f"{name}.jsonl"
        if not path.exists():
            continue
        items = load_eval(path)
        for title, predict in predictors:
            print(
                "\n".join(evaluate(predict, items).lines(f"{name}.jsonl ({len(items)}) — {title}"))
            )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per speed measurement")
    parser.add_argument("--no-ml", action="store_true", help="skip the alt-profanity-check tier")
    args = parser.parse_args(argv)
    run_speed(load_eval(DATA / "moderation_eval.jsonl"), args.seconds)
    run_quality(not args.no_ml)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
