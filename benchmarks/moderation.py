"""Moderation benchmark: hot-path speed vs better-profanity, and label quality.

Run: ``python benchmarks/moderation.py [--seconds 1] [--runs 5] [--no-ml]``

(a) messages/s of our hot path (normalise + word list + spam, one core, no ML) and of
    better-profanity's ``contains_profanity`` on the same messages, in one run;
    also the full rule pipeline (adds the toxicity lexicon and the policy).
    Each figure is the median of ``--runs`` runs (interleaved, so load changes hit every
    candidate alike), as messages per CPU-second of this process (``time.process_time``:
    "per core", and much less sensitive than wall time to other processes sharing the
    machine); the min-max range and the wall-clock median are printed too. The hot path
    is also measured with the word list's clean-token memo disabled, i.e. as if every
    message used words never seen before.
    Then the whole pre-store check as the server runs it per ``message:send``
    (``ModerationDesk.pre_store``: sanctions, hold look-up, ``ModerationService.check``,
    the channel's policy, audit/hold for flagged ones; records in memory, so only
    moderation's own CPU is counted) on a clean chat mix and the flagged/clean eval mixes.
(b) precision/recall per label and the false-positive rate on clean messages for our
    pipeline (rules, and rules + alt-profanity-check if installed) and for
    better-profanity alone (which only knows "profanity"), on
    ``tests/data/moderation_eval.jsonl`` and the smaller ``moderation_holdout.jsonl``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from moderation.base import StageContext  # noqa: E402
from moderation.desk import ModerationDesk  # noqa: E402
from moderation.evaluation import EvalItem, evaluate, load_eval  # noqa: E402
from moderation.normalize import Normalizer  # noqa: E402
from moderation.pipeline import ModerationSettings, build_pipeline  # noqa: E402
from moderation.service import ModerationService  # noqa: E402
from moderation.spam import SpamSettings, SpamStage, SpamTracker  # noqa: E402
from moderation.wordlist import WordList, WordListStage  # noqa: E402

DATA = ROOT / "tests" / "data"


def throughput(
    fn: Callable[[str], object], texts: Sequence[str], seconds: float
) -> tuple[float, float]:
    """Messages per CPU-second and per wall-second of ``fn`` over ``texts`` (~``seconds``)."""
    done = 0
    cpu_started = time.process_time()
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        for text in texts:
            fn(text)
        done += len(texts)
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    return done / max(cpu, 1e-9), done / wall


def hot_path(clean_cache: int | None = None) -> Callable[[str], object]:
    """normalise + word list + spam (with a per-user tracker), as the server runs them.

    ``clean_cache=0`` disables the word list's memo of clean tokens.
    """
    normalizer = Normalizer()
    wordlist = WordListStage(
        WordList.build() if clean_cache is None else WordList.build(clean_cache=clean_cache)
    )
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


class MemoryRecords:
    """``ModerationRecords`` in memory, answering at once (no store, no round trips)."""

    def __init__(self) -> None:
        self.audits = 0
        self.holds = 0

    async def policies(self) -> dict[str, Any]:
        return {}

    async def find_hold(self, channel: str, author: str, client_id: str) -> None:
        return None

    async def active_sanctions(self, user_id: str) -> list[dict[str, Any]]:
        return []

    async def audit(self, *args: Any) -> dict[str, Any]:
        self.audits += 1
        return {}

    async def hold(self, row: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        self.holds += 1
        return {"id": f"h{self.holds}", **row}, True


CHAT_WORDS = ("river", "orange", "tuesday", "meeting", "lamp", "garden", "seven", "window",
              "quick", "paper", "music", "bridge", "coffee", "yellow", "travel", "ticket",
              "summer", "friend")


def chat_sentences(count: int) -> list[str]:
    """Harmless, all different (as ``cpu_per_message.py`` sends them)."""
    return [" ".join(CHAT_WORDS[(i * 7 + n * 3 + k * 5) % len(CHAT_WORDS)] for k in range(6))
            + f" {n}.{i}" for n in range(8) for i in range(count // 8)]


def pre_store_throughput(texts: Sequence[str], seconds: float) -> tuple[float, float]:
    """Messages per CPU-second and wall-second of ``ModerationDesk.pre_store`` over ``texts``,
    one coroutine awaiting each check in turn (the server awaits one per ``message:send``).

    Users rotate over 500 and the clock advances so that a pass over ``texts`` spans more
    than the duplicate window: spam verdicts come from the text, not from the replay."""
    async def run() -> tuple[float, float]:
        step = 130.0 / len(texts) + 0.001
        clock = iter(range(10**12))
        service = ModerationService(ModerationSettings(ml="off"),
                                    clock=lambda: next(clock) * step)
        await service.start()
        ctx = SimpleNamespace(
            settings=SimpleNamespace(moderation_escalate_after=0, moderation_escalate_window_s=600,
                                     moderation_auto_mute_s=600),
            emit=_ignore)
        desk = ModerationDesk(ctx, MemoryRecords(), service)  # type: ignore[arg-type]
        await desk.load()
        users = [{"id": f"user{n}", "name": f"User {n}", "roles": ["member"]} for n in range(500)]
        drafts = [{"channel": "general", "text": text, "client_id": f"k{i}", "thread_id": None}
                  for i, text in enumerate(texts)]
        pairs = [(draft, users[i % len(users)]) for i, draft in enumerate(drafts)]
        for draft, user in pairs:  # warm-up
            await desk.pre_store(draft, user)
        done = 0
        cpu_started = time.process_time()
        started = time.perf_counter()
        deadline = started + seconds
        while time.perf_counter() < deadline:
            for draft, user in pairs:
                await desk.pre_store(draft, user)
            done += len(pairs)
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        await service.aclose()
        return done / max(cpu, 1e-9), done / wall

    return asyncio.run(run())


async def _ignore(*args: Any, **kwargs: Any) -> None:
    return None


def run_pre_store(items: Sequence[EvalItem], seconds: float, runs: int) -> None:
    """Print the pre-store figures: medians of ``runs`` interleaved runs per mix."""
    mixes = {
        "clean chat (all different)": chat_sentences(4000),
        "eval set, clean messages": [i.text for i in items if not i.labels],
        "eval set, flagged messages": [i.text for i in items if i.labels],
        "eval set, all": [i.text for i in items],
    }
    cpu: dict[str, list[float]] = {name: [] for name in mixes}
    wall: dict[str, list[float]] = {name: [] for name in mixes}
    for _ in range(runs):
        for name, texts in mixes.items():
            per_cpu, per_wall = pre_store_throughput(texts, seconds)
            cpu[name].append(per_cpu)
            wall[name].append(per_wall)
    print(f"== pre-store check (ModerationDesk.pre_store, records in memory; median of {runs} "
          "runs, msg per CPU-second [min-max], wall median, CPU µs per message)")
    for name in mixes:
        median = statistics.median(cpu[name])
        print(f"  {name:<38}{median:>10,.0f} msg/s  [{min(cpu[name]):,.0f}-"
              f"{max(cpu[name]):,.0f}]  wall {statistics.median(wall[name]):,.0f}"
              f"  {1e6 / median:.1f} µs")


def better_profanity_fn() -> Callable[[str], bool] | None:
    """better-profanity's ``contains_profanity``, or ``None`` when it is not installed."""
    if importlib.util.find_spec("better_profanity") is None:
        return None
    from better_profanity import profanity

    profanity.load_censor_words()
    return profanity.contains_profanity


def run_speed(items: Sequence[EvalItem], seconds: float, runs: int) -> None:
    """Print part (a): medians of ``runs`` interleaved runs."""
    texts = [item.text for item in items]
    candidates: dict[str, tuple[Callable[[str], object], float]] = {
        "hot path (normalise+wordlist+spam)": (hot_path(), seconds),
        "  same, clean-token memo off": (hot_path(clean_cache=0), seconds),
        "rule pipeline (+toxicity, policy)": (build_pipeline(include_ml=False).classify, seconds),
    }
    reference = better_profanity_fn()
    if reference is not None:
        candidates["better-profanity contains_profanity"] = (reference, max(seconds / 4, 0.25))
    cpu: dict[str, list[float]] = {name: [] for name in candidates}
    wall: dict[str, list[float]] = {name: [] for name in candidates}
    for fn, _ in candidates.values():  # warm-up: lazy imports, memo fill, caches
        for text in texts:
            fn(text)
    for _ in range(runs):
        for name, (fn, budget) in candidates.items():
            per_cpu, per_wall = throughput(fn, texts, budget)
            cpu[name].append(per_cpu)
            wall[name].append(per_wall)
    print(
        f"== speed ({len(texts)} messages, mean {sum(map(len, texts)) / len(texts):.0f} chars, "
        f"one core; median of {runs} runs, msg per CPU-second [min-max], wall median)"
    )
    for name in candidates:
        low, high = min(cpu[name]), max(cpu[name])
        print(
            f"  {name:<38}{statistics.median(cpu[name]):>10,.0f} msg/s"
            f"  [{low:,.0f}-{high:,.0f}]  wall {statistics.median(wall[name]):,.0f}"
        )
    if reference is None:
        print("  better-profanity not installed: no comparison")
        return
    ours = statistics.median(cpu["hot path (normalise+wordlist+spam)"])
    theirs = statistics.median(cpu["better-profanity contains_profanity"])
    print(f"  {'ratio hot path / better-profanity':<38}{ours / theirs:>10,.1f}x")


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
    parser.add_argument("--seconds", type=float, default=1.0, help="time per speed measurement")
    parser.add_argument("--runs", type=int, default=5, help="runs per measurement (median)")
    parser.add_argument("--no-ml", action="store_true", help="skip the alt-profanity-check tier")
    parser.add_argument("--only", choices=("speed", "pre-store", "quality"), action="append",
                        help="run only these parts (repeatable; default: all)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    parts = set(args.only or ("speed", "pre-store", "quality"))
    items = load_eval(DATA / "moderation_eval.jsonl")
    if "speed" in parts:
        run_speed(items, args.seconds, args.runs)
    if "pre-store" in parts:
        run_pre_store(items, args.seconds, args.runs)
    if "quality" in parts:
        run_quality(not args.no_ml)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
