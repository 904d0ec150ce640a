from __future__ import annotations

import asyncio
import io
import json
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from moderation.base import Span, StageContext, StageResult, StageUnavailable
from moderation.cli import run_classify
from moderation.detox import DetoxifySettings, detoxify_status
from moderation.evaluation import evaluate, load_eval
from moderation.ml import BatchOverloaded, BatchScorer, MLScoreMapping
from moderation.pipeline import Pipeline, classify_text
from moderation.policy import LabelRule, Policy, mask_text
from moderation.service import ModerationService

DATA = Path(__file__).resolve().parents[1] / "data"


def test_clean_chat_is_allowed(rules: Pipeline) -> None:
    verdict = rules.classify("Does anyone have a template for a statement of work?")
    assert verdict.verdict == "allow" and verdict.labels == () and verdict.masked_text is None


def test_profanity_is_masked_and_clean_words_kept(rules: Pipeline) -> None:
    verdict = rules.classify("this fücking client, seriously")
    assert verdict.verdict == "mask"
    assert verdict.masked_text == "this f****** client, seriously"


def test_masking_spaced_and_invisible() -> None:
    text = "a f u c k b fu\u200bck"
    spans = [Span(2, 9, "profanity", 0.9), Span(12, 17, "profanity", 0.9)]
    assert mask_text(text, spans) == "a f * * * b f***"


def test_toxic_is_held_and_self_harm_blocked(rules: Pipeline) -> None:
    assert rules.classify("you are worthless").verdict == "hold"
    assert rules.classify("kys").verdict == "block"


def test_scam_is_blocked(rules: Pipeline) -> None:
    verdict = rules.classify("Free nitro! Claim here: http://discord-gift.xyz/claim")
    assert verdict.verdict == "block" and "spam" in verdict.labels


def test_exempt_roles_are_allowed_but_labelled(rules: Pipeline) -> None:
    verdict = rules.classify("fuck this", roles=["moderator"])
    assert verdict.verdict == "allow" and verdict.exempt and "profanity" in verdict.labels


def test_channel_policy_can_block_profanity(rules: Pipeline) -> None:
    strict = replace(
        Policy(), rules={**Policy().rules, "profanity": LabelRule(0.3, ((0.3, "block"),))}
    )
    assert rules.classify("damn it", policy=strict).verdict == "block"
    assert rules.classify("damn it").verdict == "allow"


class Exploding:
    name = "exploding"

    def classify(self, text: str, ctx: StageContext) -> StageResult:
        raise RuntimeError("boom")


def test_a_raising_stage_fails_closed(rules: Pipeline) -> None:
    pipeline = Pipeline([*rules.stages, Exploding()])
    verdict = pipeline.classify("hello there")
    assert verdict.failed and verdict.verdict == "block"
    assert "stage_failed:exploding:RuntimeError" in verdict.reasons
    assert pipeline.stats.snapshot()["stages"]["exploding"]["failures"] == 1


def test_stats_time_every_stage(rules: Pipeline) -> None:
    rules.classify("hello")
    stages = rules.stats.snapshot()["stages"]
    assert {"normalize", "wordlist", "toxicity", "spam"} <= set(stages)
    assert all(s["calls"] == 1 for s in stages.values())


def test_classify_text_protocol_shape(rules: Pipeline) -> None:
    result = classify_text("fuck off", rules)
    assert set(result) == {"text", "verdict", "labels", "scores"}
    assert result["text"] == "fuck off" and result["verdict"] == "mask"
    assert set(result["scores"]) == {"profanity", "toxic", "spam"}


def test_cli_round_trip(rules: Pipeline) -> None:
    stdin = io.StringIO('hello world\n{"text": "you are worthless"}\n\n{"nope": 1}\nsh!t\n')
    stdout = io.StringIO()
    status = run_classify(stdin, stdout, rules)
    lines = [json.loads(line) for line in stdout.getvalue().splitlines()]
    assert status == 1
    assert [line.get("verdict") for line in lines] == ["allow", "hold", None, "mask"]
    assert lines[1]["labels"] == ["toxic"] and lines[2]["line"] == 4


def test_eval_set_quality(rules: Pipeline) -> None:
    items = load_eval(DATA / "moderation_eval.jsonl")
    assert len(items) >= 240
    report = evaluate(lambda text: rules.classify(text).labels, items)
    assert report.flagged_recall >= 0.9
    assert report.clean_fp_rate <= 0.03
    for label in ("profanity", "toxic", "spam"):
        assert report.per_label[label].recall >= 0.9


def test_holdout_set_quality(rules: Pipeline) -> None:
    report = evaluate(
        lambda text: rules.classify(text).labels, load_eval(DATA / "moderation_holdout.jsonl")
    )
    assert report.flagged_recall >= 0.9 and report.clean_fp_rate <= 0.03


def test_batch_scorer_batches_off_the_loop() -> None:
    calls: list[int] = []

    def predict(texts: list[str]) -> list[float]:
        calls.append(len(texts))
        return [0.99 if "bad" in t else 0.01 for t in texts]

    async def main() -> list[float]:
        scorer = BatchScorer(predict, max_batch=64, max_delay_s=0.01)
        try:
            return await asyncio.gather(*(scorer.score(t) for t in ["bad", "good", "bad", "ok"]))
        finally:
            await scorer.aclose()

    assert asyncio.run(main()) == [0.99, 0.01, 0.99, 0.01]
    assert calls == [4]


def test_batch_scorer_propagates_model_errors() -> None:
    def predict(texts: list[str]) -> list[float]:
        raise ValueError("model broken")

    async def main() -> None:
        scorer = BatchScorer(predict, max_delay_s=0.001)
        try:
            await scorer.score("x")
        finally:
            await scorer.aclose()

    with pytest.raises(ValueError):
        asyncio.run(main())


def test_batch_scorer_times_out_a_stuck_batch_and_bounds_its_queue() -> None:
    release = threading.Event()
    calls: list[list[str]] = []

    def stuck(texts: list[str]) -> list[float]:
        calls.append(list(texts))
        release.wait(5)
        return [0.0 for _ in texts]

    async def main() -> tuple[Any, Any, Any]:
        scorer = BatchScorer(stuck, max_batch=1, batch_timeout_s=0.1, max_waiting=1)
        try:
            first = asyncio.ensure_future(scorer.score("a"))
            await asyncio.sleep(0.01)  # "a" is at the model
            second = asyncio.ensure_future(scorer.score("b"))  # waits for the busy model
            await asyncio.sleep(0)
            with pytest.raises(BatchOverloaded):
                await scorer.score("c")  # refused at once: one already waits
            outcome = await asyncio.gather(first, return_exceptions=True)
            release.set()  # the worker finishes "a", then takes "b"
            return outcome[0], await second, calls
        finally:
            await scorer.aclose()

    first, second, seen = asyncio.run(main())
    assert isinstance(first, TimeoutError) and second == 0.0
    assert seen == [["a"], ["b"]]


def test_ml_mapping_ignores_unconfident_scores() -> None:
    mapping = MLScoreMapping()
    assert mapping.result(0.5).labels == ()
    assert mapping.result(0.99).labels == ("profanity",)


def test_detoxify_needs_both_local_paths(tmp_path: Path) -> None:
    assert detoxify_status(DetoxifySettings())[0] is False  # auto, nothing set: just off
    with pytest.raises(StageUnavailable, match="GIGVORA_DETOXIFY_CHECKPOINT"):
        detoxify_status(DetoxifySettings(mode="on"))
    with pytest.raises(StageUnavailable, match="no such file"):
        detoxify_status(DetoxifySettings(tmp_path / "missing.ckpt", tmp_path))


def test_service_check_is_async_and_tracks_users() -> None:
    from moderation.pipeline import ModerationSettings

    clock = iter(float(i) * 0.01 for i in range(100))

    async def main() -> list[str]:
        service = ModerationService(ModerationSettings(ml="off"), clock=lambda: next(clock))
        try:
            verdicts = [await service.check(f"message {i}", user_id="u1") for i in range(6)]
            return [v.verdict for v in verdicts]
        finally:
            await service.aclose()

    verdicts = asyncio.run(main())
    assert verdicts[0] == "allow" and verdicts[-1] == "block"
