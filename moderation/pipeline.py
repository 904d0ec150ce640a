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
    EMPTY_RESULT,
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


#: Sync stages (and the normaliser) are timed on one message in this many; call and failure
#: counts stay exact. Timing every message cost more than some of the stages it timed.
TIMING_EVERY = 16


@dataclass(slots=True)
class StageTiming:
    """Accumulated timing of one stage: ``calls`` and ``failures`` count every call,
    ``total_ns`` and ``max_ns`` cover the ``timed`` ones (every call of an async stage, one
    message in :data:`TIMING_EVERY` for the sync stages)."""

    calls: int = 0
    total_ns: int = 0
    max_ns: int = 0
    failures: int = 0
    timed: int = 0

    def add(self, elapsed_ns: int, failed: bool) -> None:
        """Account one timed call."""
        self.calls += 1
        self.timed += 1
        self.total_ns += elapsed_ns
        self.max_ns = max(self.max_ns, elapsed_ns)
        self.failures += int(failed)


@dataclass
class PipelineStats:
    """Per-stage call counts, time (``perf_counter_ns``) and failures; plus disabled stages."""

    stages: dict[str, StageTiming] = field(default_factory=dict)
    disabled: dict[str, str] = field(default_factory=dict)

    def timing(self, name: str) -> StageTiming:
        """The accumulator of stage ``name`` (created on first use)."""
        timing = self.stages.get(name)
        if timing is None:
            timing = self.stages[name] = StageTiming()
        return timing

    def record(self, name: str, elapsed_ns: int, failed: bool = False) -> None:
        """Account one timed call of stage ``name``."""
        self.timing(name).add(elapsed_ns, failed)

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready copy: ``{"stages": {name: {...}}, "disabled": {name: why}}``.

        ``mean_us`` and ``max_us`` are over the timed calls (``timed``); ``total_ms`` is
        ``mean_us`` times ``calls`` (exact when every call was timed)."""
        stages = {}
        for name, t in self.stages.items():
            mean_ns = t.total_ns / t.timed if t.timed else 0.0
            stages[name] = {
                "calls": t.calls,
                "failures": t.failures,
                "total_ms": mean_ns * t.calls / 1e6,
                "mean_us": mean_ns / 1e3,
                "max_us": t.max_ns / 1e3,
                "timed": t.timed,
            }
        return {"stages": stages, "disabled": dict(self.disabled)}


def _log_failure(name: str, error: BaseException) -> str:
    logger.error(
        "moderation stage failed",
        extra={"stage": name, "error": repr(error)},
        exc_info=error,
    )
    return f"stage_failed:{name}:{type(error).__name__}"


class Pipeline:
    """Normaliser + sync stages (+ async stages) + a default policy. Owns its stats.

    A message whose sync stages all return :data:`~moderation.base.EMPTY_RESULT` (and
    without async stages) is decided by :meth:`Policy.decide_clean`: the verdict that
    :meth:`Policy.decide` gives for no scores, spans or reasons, without building them.
    """

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
        self._messages = 0
        # (stages, stats) the bound accumulators below belong to; rebound when either changes
        self._bound_to: tuple[tuple[Stage, ...], PipelineStats] | None = None
        self._bound: tuple[tuple[Stage, StageTiming], ...] = ()
        self._normalize_timing = StageTiming()

    def _bind(self) -> tuple[tuple[Stage, StageTiming], ...]:
        """Each sync stage with its accumulator (looked up once, not per message)."""
        stats = self.stats
        self._normalize_timing = stats.timing(NORMALIZE)
        self._bound = tuple((stage, stats.timing(stage.name)) for stage in self.stages)
        self._bound_to = (self.stages, stats)
        return self._bound

    def _timed_now(self) -> bool:
        """Whether this message's sync stages are timed (one in :data:`TIMING_EVERY`)."""
        count = self._messages
        self._messages = count + 1
        return count % TIMING_EVERY == 0

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
        bound_to = self._bound_to
        if bound_to is None or bound_to[0] is not self.stages or bound_to[1] is not self.stats:
            bound = self._bind()
        else:
            bound = self._bound
        if self._timed_now():
            ctx = self.context(text, user_id=user_id, roles=roles, channel=channel, now=now)
            found, failures = self._run_timed(text, ctx)
        else:
            self._normalize_timing.calls += 1
            ctx = StageContext(
                self.normalizer.normalize(text),
                user_id,
                frozenset(roles),
                channel,
                time.monotonic() if now is None else now,
            )
            found, failures = self._run(bound, text, ctx)
        if not found and not failures:
            return (policy or self.policy).decide_clean(ctx.roles)
        return self._decide(text, ctx, _merge(found), failures, policy)

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
        if not self.async_stages:
            return self.classify(
                text, user_id=user_id, roles=roles, channel=channel, now=now, policy=policy
            )
        ctx = self.context(text, user_id=user_id, roles=roles, channel=channel, now=now)
        found, failures = self._run_timed(text, ctx)
        results = await asyncio.gather(*(self._run_async(s, text, ctx) for s in self.async_stages))
        for name, outcome in results:
            if isinstance(outcome, BaseException):
                failures.append(_log_failure(name, outcome))
            else:
                found.append(outcome)
        return self._decide(text, ctx, _merge(found), failures, policy)

    @staticmethod
    def _run(
        bound: tuple[tuple[Stage, StageTiming], ...], text: str, ctx: StageContext
    ) -> tuple[list[StageResult], list[str]]:
        """Every sync stage, untimed: the results that found something, and the failures."""
        found: list[StageResult] = []
        failures: list[str] = []
        for stage, timing in bound:
            timing.calls += 1
            try:
                outcome = stage.classify(text, ctx)
            except Exception as exc:
                timing.failures += 1
                failures.append(_log_failure(stage.name, exc))
                continue
            if outcome is not EMPTY_RESULT:
                found.append(outcome)
        return found, failures

    def _run_timed(self, text: str, ctx: StageContext) -> tuple[list[StageResult], list[str]]:
        """:meth:`_run` with each stage timed."""
        found: list[StageResult] = []
        failures: list[str] = []
        for stage in self.stages:
            started = time.perf_counter_ns()
            try:
                outcome: StageResult | BaseException = stage.classify(text, ctx)
            except Exception as exc:
                outcome = exc
            failed = isinstance(outcome, BaseException)
            self.stats.record(stage.name, time.perf_counter_ns() - started, failed)
            if isinstance(outcome, BaseException):
                failures.append(_log_failure(stage.name, outcome))
            elif outcome is not EMPTY_RESULT:
                found.append(outcome)
        return found, failures

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

    def _decide(
        self,
        text: str,
        ctx: StageContext,
        merged: tuple[dict[Label, float], list[Span], list[str]],
        failures: list[str],
        policy: Policy | None,
    ) -> Verdict:
        chosen = policy or self.policy
        scores, spans, reasons = merged
        return chosen.decide(text, scores, spans, reasons, ctx.roles, failures)


def _merge(results: list[StageResult]) -> tuple[dict[Label, float], list[Span], list[str]]:
    """Scores (the highest per label), spans and reasons of ``results``, in order."""
    scores: dict[Label, float] = {}
    spans: list[Span] = []
    reasons: list[str] = []
    for result in results:
        for label, score in result.scores.items():
            scores[label] = max(scores.get(label, 0.0), score)
        spans.extend(result.spans)
        reasons.extend(result.reasons)
    return scores, spans, reasons


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
