"""Optional ML tiers, always run off the event loop.

* alt-profanity-check (``profanity_check.predict_prob``): a bag-of-words linear model
  shipped inside its wheel, offline. It is imported lazily, in a worker thread, on first
  use (the import takes ~2 s because of scikit-learn). One call scores a whole batch:
  :class:`BatchScorer` gathers texts for a few milliseconds and runs one
  ``predict_prob`` in its own single-thread executor. If the package is not installed
  the tier is *disabled* (:func:`profanity_check_status` says why) — not an error.
* Detoxify: :class:`DetoxifyStage` is a placeholder. It reads its local paths from
  ``GIGVORA_DETOXIFY_CHECKPOINT`` / ``GIGVORA_DETOXIFY_CONFIG_DIR`` and raises
  :class:`DetoxifyNotImplemented`; see its docstring for the plan.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moderation.base import Label, StageContext, StageResult, StageUnavailable, labels_over

PROFANITY_CHECK_MODULE = "profanity_check"

PredictMany = Callable[[Sequence[str]], Sequence[float]]


def profanity_check_status() -> tuple[bool, str]:
    """``(available, explanation)`` for the alt-profanity-check tier; never imports it."""
    if importlib.util.find_spec(PROFANITY_CHECK_MODULE) is None:
        return False, "alt-profanity-check is not installed (pip install 'gigvora-live[ml]')"
    return True, "alt-profanity-check installed"


class ProfanityCheckModel:
    """Lazy, thread-safe handle on ``profanity_check.predict_prob``."""

    def __init__(self) -> None:
        self._predict: Callable[[list[str]], Any] | None = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Import the model now (blocking: call it from a worker thread)."""
        with self._lock:
            if self._predict is None:
                available, why = profanity_check_status()
                if not available:
                    raise StageUnavailable(why)
                module = importlib.import_module(PROFANITY_CHECK_MODULE)
                self._predict = module.predict_prob

    def predict_many(self, texts: Sequence[str]) -> list[float]:
        """Offensive-language probabilities for ``texts`` (blocking; loads on first call)."""
        if self._predict is None:
            self.load()
        assert self._predict is not None
        return [float(p) for p in self._predict(list(texts))]


@dataclass(frozen=True)
class MLScoreMapping:
    """How a model probability becomes a stage score: its label, and a floor below which
    it is ignored.

    alt-profanity-check is a bag-of-words model: it cannot point at the words (so a
    profanity verdict it alone raises cannot be masked and the policy holds instead), and
    it leans on identity words ("gay", "queer" score ~0.8 on our set). Only confident
    probabilities (>= 0.97 by default) count.
    """

    label: Label = "profanity"
    min_probability: float = 0.97
    scale: float = 1.0

    def result(self, probability: float) -> StageResult:
        """The :class:`StageResult` for one probability."""
        if probability < self.min_probability:
            return StageResult(scores={self.label: 0.0})
        scores: dict[Label, float] = {self.label: probability * self.scale}
        reason = f"{self.label}:ml:{probability:.2f}"
        return StageResult(labels_over(scores), scores, (), (reason,))


class ProfanityCheckStage:
    """Synchronous alt-profanity-check stage, for the CLI and benchmarks (never on the loop)."""

    name = "ml_profanity_check"

    def __init__(
        self, model: ProfanityCheckModel | None = None, mapping: MLScoreMapping | None = None
    ) -> None:
        self._model = model or ProfanityCheckModel()
        self._mapping = mapping or MLScoreMapping()

    def classify(self, text: str, ctx: StageContext) -> StageResult:
        """Score one text with a blocking model call."""
        return self._mapping.result(self._model.predict_many([text])[0])


class BatchScorer:
    """Micro-batches texts and scores each batch with one call in a worker thread.

    The first text of a batch arms a timer of ``max_delay_s``; the batch is flushed when
    the timer fires or when ``max_batch`` texts are waiting. The scorer owns its
    single-thread executor and every flush task; :meth:`aclose` cancels waiters and
    shuts the executor down.
    """

    def __init__(
        self, predict_many: PredictMany, *, max_batch: int = 64, max_delay_s: float = 0.005
    ) -> None:
        self._predict_many = predict_many
        self._max_batch = max_batch
        self._max_delay_s = max_delay_s
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="moderation-ml")
        self._pending: list[tuple[str, asyncio.Future[float]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._flushes: set[asyncio.Task[None]] = set()
        self._closed = False
        self.batches = 0

    async def warm_up(self, load: Callable[[], None]) -> None:
        """Run ``load`` (e.g. the model import) in the worker thread."""
        await asyncio.get_running_loop().run_in_executor(self._executor, load)

    async def score(self, text: str) -> float:
        """Queue ``text`` and wait for its score."""
        if self._closed:
            raise RuntimeError("BatchScorer is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[float] = loop.create_future()
        self._pending.append((text, future))
        if len(self._pending) >= self._max_batch:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(self._max_delay_s, self._flush)
        return await future

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._pending = self._pending, []
        if batch:
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._flushes.add(task)
            task.add_done_callback(self._flushes.discard)

    async def _run(self, batch: list[tuple[str, asyncio.Future[float]]]) -> None:
        loop = asyncio.get_running_loop()
        texts = [text for text, _ in batch]
        try:
            scores = await loop.run_in_executor(self._executor, self._predict_many, texts)
        except asyncio.CancelledError:
            _fail_all(batch, asyncio.CancelledError())
            raise
        except Exception as exc:
            _fail_all(batch, exc)
            return
        self.batches += 1
        for (_, future), value in zip(batch, scores, strict=True):
            if not future.done():
                future.set_result(float(value))

    async def aclose(self) -> None:
        """Cancel queued work, wait for running flushes, stop the worker thread."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        _fail_all(self._pending, asyncio.CancelledError())
        self._pending = []
        for task in list(self._flushes):
            task.cancel()
        await asyncio.gather(*self._flushes, return_exceptions=True)
        self._executor.shutdown(wait=False, cancel_futures=True)


def _fail_all(batch: Sequence[tuple[str, asyncio.Future[float]]], exc: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            if isinstance(exc, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(exc)


class BatchedMLStage:
    """Async stage over a :class:`BatchScorer`: ``await`` never blocks the event loop."""

    def __init__(
        self,
        name: str,
        scorer: BatchScorer,
        mapping: MLScoreMapping | None = None,
        timeout_s: float = 1.0,
    ) -> None:
        self.name = name
        self._scorer = scorer
        self._mapping = mapping or MLScoreMapping()
        self._timeout_s = timeout_s

    async def classify_async(self, text: str, ctx: StageContext) -> StageResult:
        """Score ``text`` in the next batch; a timeout raises :class:`TimeoutError`."""
        probability = await asyncio.wait_for(self._scorer.score(text), self._timeout_s)
        return self._mapping.result(probability)


@dataclass(frozen=True)
class DetoxifySettings:
    """Local-only Detoxify files: a checkpoint and a folder with the tokenizer and config."""

    checkpoint: Path | None = None
    config_dir: Path | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> DetoxifySettings:
        """Read ``GIGVORA_DETOXIFY_CHECKPOINT`` and ``GIGVORA_DETOXIFY_CONFIG_DIR``."""
        checkpoint = env.get("GIGVORA_DETOXIFY_CHECKPOINT") or None
        config_dir = env.get("GIGVORA_DETOXIFY_CONFIG_DIR") or None
        return cls(
            Path(checkpoint) if checkpoint else None, Path(config_dir) if config_dir else None
        )

    @property
    def configured(self) -> bool:
        """Both paths are set."""
        return self.checkpoint is not None and self.config_dir is not None


class DetoxifyNotImplemented(StageUnavailable):
    """The Detoxify tier is not implemented yet (see :class:`DetoxifyStage`)."""


class DetoxifyStage:
    """TODO: Detoxify tier (toxicity, threats, insults, identity attacks) — not implemented.

    Plan, from the research notes: never call ``detoxify.Detoxify(...)`` with hub names
    (its loader fetches the config by hub name even with ``checkpoint=``); instead load the
    checkpoint with ``torch.load(map_location="cpu")``, point its ``model_type`` at
    ``config_dir`` (local tokenizer + config), set ``HF_HUB_OFFLINE=1``, and run
    inference in a :class:`BatchScorer` worker (≈34 ms/message on CPU, so batch). Tests
    would build a tiny randomly initialised checkpoint. Until then constructing this
    stage raises :class:`DetoxifyNotImplemented` (or :class:`StageUnavailable` when the
    paths are missing), which the pipeline builder reports as a disabled stage.
    """

    name = "ml_detoxify"

    def __init__(self, settings: DetoxifySettings) -> None:
        if not settings.configured:
            raise StageUnavailable(
                "Detoxify needs GIGVORA_DETOXIFY_CHECKPOINT and "
                "GIGVORA_DETOXIFY_CONFIG_DIR (local paths)"
            )
        for path in (settings.checkpoint, settings.config_dir):
            if path is not None and not path.exists():
                raise StageUnavailable(f"Detoxify path does not exist: {path}")
        raise DetoxifyNotImplemented(
            "the Detoxify tier is not implemented yet (TODO in moderation/ml.py)"
        )

    def classify(
        self, text: str, ctx: StageContext
    ) -> StageResult:  # pragma: no cover - unreachable
        """Not implemented."""
        raise DetoxifyNotImplemented("the Detoxify tier is not implemented yet")
