"""Optional ML tiers, always run off the event loop.

* alt-profanity-check (``profanity_check.predict_prob``): a bag-of-words linear model
  shipped inside its wheel, offline. It is imported lazily, in a worker thread, on first
  use (the import takes ~2 s because of scikit-learn). One call scores a whole batch:
  :class:`BatchScorer` gathers texts for a few milliseconds and runs one
  ``predict_prob`` in its own single-thread executor. If the package is not installed
  the tier is *disabled* (:func:`profanity_check_status` says why) — not an error.
* Detoxify (:mod:`moderation.detox`): a transformer checkpoint loaded from local files
  only, scored through a :class:`BatchScorer` with a per-batch timeout and a bounded queue.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from moderation.base import (
    AsyncStage,
    Label,
    StageContext,
    StageResult,
    StageUnavailable,
    labels_over,
)

PROFANITY_CHECK_MODULE = "profanity_check"

PredictMany = Callable[[Sequence[str]], Sequence[float]]
T = TypeVar("T")


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


class BatchOverloaded(RuntimeError):
    """A text was refused because ``max_waiting`` texts already wait for a busy model."""


class BatchScorer(Generic[T]):
    """Micro-batches texts and scores each batch with one call in a worker thread.

    The first text of a batch arms a timer of ``max_delay_s``; the batch is flushed when
    the timer fires or when ``max_batch`` texts are waiting. The scorer owns its
    single-thread executor and every flush task; :meth:`aclose` cancels waiters and
    shuts the executor down.

    Bounded mode (``max_waiting`` set; the Detoxify tier): one batch at a time goes to the
    model; texts arriving meanwhile gather and go together (up to ``max_batch``) when it
    returns, so batches grow with the load. A text arriving while ``max_waiting`` already
    wait is refused at once with :class:`BatchOverloaded`, and waiters that gave up are
    dropped. ``batch_timeout_s`` fails a batch whose model call takes longer (its texts
    get :class:`TimeoutError`; the call cannot be interrupted: the worker finishes it,
    counted as busy until then, so a stuck model ends in refusals, not a growing queue).
    """

    def __init__(
        self,
        predict_many: Callable[[Sequence[str]], Sequence[T]],
        *,
        max_batch: int = 64,
        max_delay_s: float = 0.005,
        batch_timeout_s: float | None = None,
        max_waiting: int | None = None,
        thread_name: str = "moderation-ml",
    ) -> None:
        self._predict_many = predict_many
        self._max_batch = max_batch
        self._max_delay_s = max_delay_s
        self._batch_timeout_s = batch_timeout_s
        self._max_waiting = max_waiting
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=thread_name)
        self._pending: list[tuple[str, asyncio.Future[T]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._flushes: set[asyncio.Task[None]] = set()
        self._busy = 0  # batches flushed whose model call has not returned
        self._closed = False
        self.batches = 0
        self.model_calls = 0  # model calls that returned (a timed-out one may, later)
        self.batch_ns = 0  # their total wall time

    async def warm_up(self, load: Callable[[], None]) -> None:
        """Run ``load`` (e.g. the model import) in the worker thread."""
        await asyncio.get_running_loop().run_in_executor(self._executor, load)

    async def score(self, text: str) -> T:
        """Queue ``text`` and wait for its score."""
        if self._closed:
            raise RuntimeError("BatchScorer is closed")
        if self._max_waiting is not None and len(self._pending) >= self._max_waiting:
            raise BatchOverloaded(f"{len(self._pending)} texts already wait for the model")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
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
        bounded = self._max_waiting is not None
        if bounded:
            self._pending = [(t, f) for t, f in self._pending if not f.done()]
            if self._busy:
                return  # the model is busy: keep gathering, _finished flushes
        batch = self._pending[: self._max_batch]
        self._pending = self._pending[self._max_batch :]
        if not batch:
            return
        self._busy += 1
        task = asyncio.get_running_loop().create_task(self._run(batch))
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    def _finished(self) -> None:
        self._busy -= 1
        if self._max_waiting is not None and self._pending and not self._closed:
            self._flush()

    def _submit(self, texts: list[str]) -> asyncio.Future[Sequence[T]]:
        loop = asyncio.get_running_loop()
        done = self._executor.submit(self._timed_predict, texts)
        done.add_done_callback(lambda _: _call_soon(loop, self._finished))
        return asyncio.wrap_future(done, loop=loop)

    def _timed_predict(self, texts: list[str]) -> Sequence[T]:
        started = time.perf_counter_ns()
        scores = self._predict_many(texts)
        self.batch_ns += time.perf_counter_ns() - started  # only this thread writes these
        self.model_calls += 1
        return scores

    async def _run(self, batch: list[tuple[str, asyncio.Future[T]]]) -> None:
        texts = [text for text, _ in batch]
        try:
            scores = await asyncio.wait_for(self._submit(texts), self._batch_timeout_s)
        except asyncio.CancelledError:
            _fail_all(batch, asyncio.CancelledError())
            raise
        except Exception as exc:
            _fail_all(batch, exc)
            return
        self.batches += 1
        for (_, future), value in zip(batch, scores, strict=True):
            if not future.done():
                future.set_result(value)

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


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
    """``callback`` on ``loop`` from any thread; nothing if the loop is already closed (a
    timed-out model call that finishes after shutdown)."""
    try:
        loop.call_soon_threadsafe(callback)
    except RuntimeError:
        pass


def _fail_all(batch: Sequence[tuple[str, asyncio.Future[Any]]], exc: BaseException) -> None:
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
        scorer: BatchScorer[float],
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
        return self._mapping.result(float(probability))


class WorkerTier:
    """One ML tier the server runs in a worker: its stage, its batch scorer, how to load
    its model and what readiness shows about it.

    ``required`` tiers (asked for with ``=on``) fail the boot when their model does not
    load; the others are then dropped from the pipeline and listed as disabled.
    """

    def __init__(
        self,
        stage: AsyncStage,
        scorer: BatchScorer[Any],
        load: Callable[[], None],
        *,
        required: bool,
        describe: Callable[[], dict[str, Any]] = dict,
    ) -> None:
        self.stage = stage
        self.scorer = scorer
        self._load = load
        self.required = required
        self._describe = describe
        self.state = "loading"
        self.error: str | None = None

    @property
    def name(self) -> str:
        """The stage name (``ml_profanity_check``, ``ml_detoxify``)."""
        return self.stage.name

    async def start(self) -> bool:
        """Load the model in the worker thread; ``False`` if an optional tier failed to."""
        try:
            await self.scorer.warm_up(self._load)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.state, self.error = "failed", f"{type(exc).__name__}: {exc}"
            if self.required:
                raise
            return False
        self.state = "ready"
        return True

    def snapshot(self) -> dict[str, Any]:
        """State, batches, mean model time per batch, and the tier's own details."""
        batches, calls = self.scorer.batches, self.scorer.model_calls
        mean_ms = self.scorer.batch_ns / calls / 1e6 if calls else 0.0
        shown: dict[str, Any] = {"state": self.state, "batches": batches,
                                 "mean_batch_ms": round(mean_ms, 3), **self._describe()}
        if self.error:
            shown["error"] = self.error
        return shown

    async def aclose(self) -> None:
        """Stop the worker."""
        await self.scorer.aclose()
