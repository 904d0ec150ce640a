"""The classifier pipeline: normalise once, run every stage (timed), apply the policy.

Failure contract: a stage that raises (or an async stage that times out) does not raise
out of the pipeline. The error is logged, counted in :class:`PipelineStats`, and the
returned :class:`~moderation.policy.Verdict` has ``failed=True`` and
``verdict=policy.on_failure`` (``"block"`` by default), so a veto hook fails closed
without crashing the hub. ``asyncio.CancelledError`` is always re-raised.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from moderation.base import (
    LABELS,
    AsyncStage,
    Label,
    Span,
    Stage,
    StageContext,
    StageResult,
    StageUnavailable,
)
from moderation.detox import (
    BatchedDetoxifyStage,
    DetoxifyModel,
    DetoxifySettings,
    DetoxifyStage,
    DetoxifyThresholds,
    detoxify_status,
)
from moderation.ml import (
    BatchedMLStage,
    BatchScorer,
    MLScoreMapping,
    ProfanityCheckModel,
    ProfanityCheckStage,
    WorkerTier,
    profanity_check_status,
)
from moderation.normalize import Normalizer
from moderation.policy import Policy, Verdict
from moderation.spam import SpamSettings, SpamStage, SpamTracker
from moderation.toxic import ToxicityStage
from moderation.wordlist import WordList, WordListConfig, WordListStage

logger = logging.getLogger(__name__)

NORMALIZE = "normalize"


@dataclass(slots=True)
class StageTiming:
    """Accumulated timing of one stage."""

    calls: int = 0
    total_ns: int = 0
    max_ns: int = 0
    failures: int = 0

    def add(self, elapsed_ns: int, failed: bool) -> None:
        """Account one call."""
        self.calls += 1
        self.total_ns += elapsed_ns
        self.max_ns = max(self.max_ns, elapsed_ns)
        self.failures += int(failed)


@dataclass
class PipelineStats:
    """Per-stage call counts, time (``perf_counter_ns``) and failures; plus disabled stages."""

    stages: dict[str, StageTiming] = field(default_factory=dict)
    disabled: dict[str, str] = field(default_factory=dict)

    def record(self, name: str, elapsed_ns: int, failed: bool = False) -> None:
        """Account one call of stage ``name``."""
        timing = self.stages.get(name)
        if timing is None:
            timing = self.stages[name] = StageTiming()
        timing.add(elapsed_ns, failed)

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready copy: ``{"stages": {name: {...}}, "disabled": {name: why}}``."""
        stages = {
            name: {
                "calls": t.calls,
                "failures": t.failures,
                "total_ms": t.total_ns / 1e6,
                "mean_us": t.total_ns / t.calls / 1e3 if t.calls else 0.0,
                "max_us": t.max_ns / 1e3,
            }
            for name, t in self.stages.items()
        }
        return {"stages": stages, "disabled": dict(self.disabled)}


@dataclass(slots=True)
class _Merged:
    scores: dict[Label, float] = field(default_factory=dict)
    spans: list[Span] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def add(self, result: StageResult) -> None:
        for label, score in result.scores.items():
            self.scores[label] = max(self.scores.get(label, 0.0), score)
        self.spans.extend(result.spans)
        self.reasons.extend(result.reasons)


class Pipeline:
    """Normaliser + sync stages (+ async stages) + a default policy. Owns its stats."""

    def __init__(
        self,
        stages: Sequence[Stage],
        async_stages: Sequence[AsyncStage] = (),
        policy: Policy | None = None,
        normalizer: Normalizer | None = None,
        stats: PipelineStats | None = None,
    ) -> None:
        self.stages = tuple(stages)
        self.async_stages = tuple(async_stages)
        self.policy = policy or Policy()
        self.normalizer = normalizer or Normalizer()
        self.stats = stats or PipelineStats()

    def context(
        self,
        text: str,
        *,
        user_id: str | None = None,
        roles: Iterable[str] = (),
        channel: str | None = None,
        now: float | None = None,
    ) -> StageContext:
        """Normalise ``text`` (timed as stage ``normalize``) and build the stage context."""
        started = time.perf_counter_ns()
        normalized = self.normalizer.normalize(text)
        self.stats.record(NORMALIZE, time.perf_counter_ns() - started)
        return StageContext(
            normalized, user_id, frozenset(roles), channel, time.monotonic() if now is None else now
        )

    def classify(
        self,
        text: str,
        *,
        user_id: str | None = None,
        roles: Iterable[str] = (),
        channel: str | None = None,
        now: float | None = None,
        policy: Policy | None = None,
    ) -> Verdict:
        """Run the sync stages only and decide (async stages are skipped)."""
        ctx = self.context(text, user_id=user_id, roles=roles, channel=channel, now=now)
        merged = self._run_sync(text, ctx)
        return self._decide(text, ctx, merged, policy)

    async def aclassify(
        self,
        text: str,
        *,
        user_id: str | None = None,
        roles: Iterable[str] = (),
        channel: str | None = None,
        now: float | None = None,
        policy: Policy | None = None,
    ) -> Verdict:
        """Run the sync stages inline (microseconds) and await the async ones concurrently."""
        ctx = self.context(text, user_id=user_id, roles=roles, channel=channel, now=now)
        merged = self._run_sync(text, ctx)
        if self.async_stages:
            results = await asyncio.gather(
                *(self._run_async(s, text, ctx) for s in self.async_stages)
            )
            for name, outcome in results:
                self._absorb(merged, name, outcome)
        return self._decide(text, ctx, merged, policy)

    def _run_sync(self, text: str, ctx: StageContext) -> _Merged:
        merged = _Merged()
        for stage in self.stages:
            started = time.perf_counter_ns()
            try:
                outcome: StageResult | BaseException = stage.classify(text, ctx)
            except Exception as exc:
                outcome = exc
            self.stats.record(
                stage.name, time.perf_counter_ns() - started, isinstance(outcome, BaseException)
            )
            self._absorb(merged, stage.name, outcome)
        return merged

    async def _run_async(
        self, stage: AsyncStage, text: str, ctx: StageContext
    ) -> tuple[str, StageResult | BaseException]:
        started = time.perf_counter_ns()
        try:
            outcome: StageResult | BaseException = await stage.classify_async(text, ctx)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            outcome = exc
        self.stats.record(
            stage.name, time.perf_counter_ns() - started, isinstance(outcome, BaseException)
        )
        return stage.name, outcome

    @staticmethod
    def _absorb(merged: _Merged, name: str, outcome: StageResult | BaseException) -> None:
        if isinstance(outcome, BaseException):
            logger.error(
                "moderation stage failed",
                extra={"stage": name, "error": repr(outcome)},
                exc_info=outcome,
            )
            merged.failures.append(f"stage_failed:{name}:{type(outcome).__name__}")
        else:
            merged.add(outcome)

    def _decide(
        self, text: str, ctx: StageContext, merged: _Merged, policy: Policy | None
    ) -> Verdict:
        chosen = policy or self.policy
        return chosen.decide(
            text, merged.scores, merged.spans, merged.reasons, ctx.roles, merged.failures
        )


@dataclass(frozen=True)
class ModerationSettings:
    """Settings of the default pipeline (see :meth:`from_env` for the variables)."""

    ml: str = "auto"
    ml_min_probability: float = 0.97
    ml_max_batch: int = 64
    ml_max_delay_ms: float = 5.0
    ml_timeout_s: float = 1.0
    use_upstream_wordlist: bool = True
    detoxify: DetoxifySettings = field(default_factory=DetoxifySettings)
    spam: SpamSettings = field(default_factory=SpamSettings)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ModerationSettings:
        """Read ``GIGVORA_MODERATION_ML`` (auto|on|off), ``GIGVORA_MODERATION_ML_MIN_PROBABILITY``,
        ``GIGVORA_MODERATION_ML_TIMEOUT_S`` and the Detoxify paths; errors name the variable."""
        ml = env.get("GIGVORA_MODERATION_ML", "auto").strip().lower()
        if ml not in ("auto", "on", "off"):
            raise ValueError(f"GIGVORA_MODERATION_ML must be auto, on or off, not {ml!r}")
        return cls(
            ml=ml,
            ml_min_probability=_env_float(env, "GIGVORA_MODERATION_ML_MIN_PROBABILITY", 0.97),
            ml_timeout_s=_env_float(env, "GIGVORA_MODERATION_ML_TIMEOUT_S", 1.0),
            detoxify=DetoxifySettings.from_env(env),
        )


def _env_float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, not {raw!r}") from None


def build_sync_stages(
    settings: ModerationSettings, tracker: SpamTracker | None, wordlist: WordList | None = None
) -> list[Stage]:
    """The fast rule stages: word list, toxicity lexicon, spam."""
    wordlist = wordlist or WordList.build(
        WordListConfig(use_upstream=settings.use_upstream_wordlist)
    )
    return [WordListStage(wordlist), ToxicityStage(), SpamStage(settings.spam, tracker)]


def ml_wanted(settings: ModerationSettings, stats: PipelineStats) -> bool:
    """Whether to add the alt-profanity-check tier; records why not in ``stats.disabled``."""
    if settings.ml == "off":
        stats.disabled["ml_profanity_check"] = "disabled by GIGVORA_MODERATION_ML=off"
        return False
    available, why = profanity_check_status()
    if not available:
        if settings.ml == "on":
            raise StageUnavailable(f"GIGVORA_MODERATION_ML=on but {why}")
        stats.disabled["ml_profanity_check"] = why
    return available


def detoxify_wanted(settings: ModerationSettings, stats: PipelineStats) -> bool:
    """Whether to add the Detoxify tier; records why not in ``stats.disabled``. Raises
    :class:`StageUnavailable` when it was asked for but cannot run."""
    wanted, why = detoxify_status(settings.detoxify)
    if not wanted:
        stats.disabled["ml_detoxify"] = why
    return wanted


def _detoxify_parts(settings: DetoxifySettings) -> tuple[DetoxifyModel, DetoxifyThresholds]:
    assert settings.checkpoint is not None and settings.config_dir is not None
    model = DetoxifyModel(settings.checkpoint, settings.config_dir, settings.threads)
    return model, DetoxifyThresholds(settings.hold_at, settings.block_at)


def build_pipeline(
    settings: ModerationSettings | None = None,
    *,
    tracker: SpamTracker | None = None,
    include_ml: bool = True,
    policy: Policy | None = None,
) -> Pipeline:
    """A synchronous pipeline (ML, if enabled, runs inline): for the CLI and benchmarks."""
    settings = settings or ModerationSettings()
    stats = PipelineStats()
    stages = build_sync_stages(settings, tracker)
    if include_ml and ml_wanted(settings, stats):
        mapping = MLScoreMapping(min_probability=settings.ml_min_probability)
        stages.append(ProfanityCheckStage(ProfanityCheckModel(), mapping))
    if include_ml and detoxify_wanted(settings, stats):
        stages.append(DetoxifyStage(*_detoxify_parts(settings.detoxify)))
    return Pipeline(stages, policy=policy, stats=stats)


def build_async_pipeline(
    settings: ModerationSettings, tracker: SpamTracker, policy: Policy | None = None
) -> tuple[Pipeline, list[WorkerTier]]:
    """Pipeline for the server: rule stages inline, each ML tier batched in its own worker
    thread. The tiers are returned for the owner to start (load) and close."""
    stats = PipelineStats()
    stages = build_sync_stages(settings, tracker)
    tiers: list[WorkerTier] = []
    if ml_wanted(settings, stats):
        model = ProfanityCheckModel()
        scorer: BatchScorer[Any] = BatchScorer(
            model.predict_many,
            max_batch=settings.ml_max_batch,
            max_delay_s=settings.ml_max_delay_ms / 1000,
        )
        mapping = MLScoreMapping(min_probability=settings.ml_min_probability)
        stage = BatchedMLStage("ml_profanity_check", scorer, mapping, settings.ml_timeout_s)
        tiers.append(WorkerTier(stage, scorer, model.load, required=settings.ml == "on"))
    if detoxify_wanted(settings, stats):
        tiers.append(detoxify_tier(settings.detoxify))
    pipeline = Pipeline(stages, [t.stage for t in tiers], policy, stats=stats)
    return pipeline, tiers


def detoxify_tier(settings: DetoxifySettings, model: DetoxifyModel | None = None) -> WorkerTier:
    """The Detoxify stage over its own bounded batch worker (``model`` for tests)."""
    default_model, thresholds = _detoxify_parts(settings)
    model = model or default_model
    scorer: BatchScorer[dict[str, float]] = BatchScorer(
        model.predict_many,
        max_batch=settings.max_batch,
        max_delay_s=settings.max_delay_ms / 1000,
        batch_timeout_s=settings.timeout_s,
        max_waiting=settings.max_batch * settings.max_waiting_batches,
        thread_name="moderation-detoxify",
    )
    stage = BatchedDetoxifyStage(scorer, thresholds, settings.timeout_s)
    return WorkerTier(stage, scorer, model.load, required=settings.mode == "on",
                      describe=model.describe)


def classify_text(text: str, pipeline: Pipeline | None = None) -> dict[str, Any]:
    """Classify one text; returns ``{"text", "verdict", "labels", "scores"}`` (PROTOCOL.md),
    plus ``"detoxify": {label: probability}`` when the Detoxify tier is on.

    ``text`` in the result is the input unchanged. Without ``pipeline`` a default one is
    built for this call (tens of ms; seconds with ML): pass one to classify many texts.
    """
    pipeline = pipeline or build_pipeline()
    verdict = pipeline.classify(text)
    result = verdict.as_protocol(text)
    result["scores"] = {label: result["scores"].get(label, 0.0) for label in LABELS}
    for stage in pipeline.stages:
        if isinstance(stage, DetoxifyStage):  # the tier's raw per-label probabilities
            result["detoxify"] = {k: round(v, 4) for k, v in stage.probabilities(text).items()}
    return result
