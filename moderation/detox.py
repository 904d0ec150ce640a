"""The optional Detoxify tier: a transformer toxicity classifier loaded from local files only.

Detoxify's own loader (``detoxify.Detoxify(checkpoint=..., huggingface_config_path=...)``)
still asks the Hugging Face hub for the config of the checkpoint's ``model_type`` (e.g.
``bert-base-uncased``) before it looks at the local path, so it is not used. Instead
:func:`load_checkpoint` reads the same checkpoint format — ``{"config": {"arch": {"args":
{"model_name", "tokenizer_name", "num_classes", ...}}, "dataset": {"args": {"classes"}}},
"state_dict": ...}`` — with ``torch.load(weights_only=True)``, builds the model class from
the config in ``GIGVORA_DETOXIFY_CONFIG_DIR`` and its tokenizer from the same folder, every
call with ``local_files_only=True`` and ``HF_HUB_OFFLINE=1``. Nothing reaches the network.

Inference runs in the tier's own worker thread through a
:class:`~moderation.ml.BatchScorer` (micro-batches, a per-batch timeout, a bounded queue);
torch and transformers are imported there, lazily, never on the event loop.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from moderation.base import StageContext, StageResult, StageUnavailable
from moderation.ml import BatchScorer

Mode = Literal["auto", "on", "off"]
STAGE = "ml_detoxify"
INSTALL_HINT = "pip install 'gigvora-live[detoxify]'"
# Detoxify's own renaming, so every checkpoint reports the same label names
STANDARD_NAMES = {
    "toxic": "toxicity",
    "identity_hate": "identity_attack",
    "severe_toxic": "severe_toxicity",
}
# the tier's verdict as a ``toxic`` score: HOLD lands on the channel's toxic action (its
# threshold is 0.5), BLOCK on its block threshold (block_toxic_at, at most 1)
HOLD_SCORE = 0.5
BLOCK_SCORE = 1.0
ROBERTA_LIKE = ("roberta", "xlm-roberta", "camembert")


@dataclass(frozen=True)
class DetoxifySettings:
    """The tier's settings (``GIGVORA_MODERATION_DETOXIFY*``, ``GIGVORA_DETOXIFY_*``)."""

    checkpoint: Path | None = None
    config_dir: Path | None = None
    mode: Mode = "auto"
    hold_at: float = 0.8
    block_at: float = 0.98
    timeout_s: float = 1.5
    max_batch: int = 16
    max_delay_ms: float = 5.0
    max_waiting_batches: int = 2  # texts waiting for a busy model: this many max_batch
    threads: int = 1

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> DetoxifySettings:
        """Read the paths and ``GIGVORA_MODERATION_DETOXIFY`` (auto|on|off) from ``env``."""
        checkpoint = env.get("GIGVORA_DETOXIFY_CHECKPOINT") or None
        config_dir = env.get("GIGVORA_DETOXIFY_CONFIG_DIR") or None
        mode = env.get("GIGVORA_MODERATION_DETOXIFY", "auto").strip().lower()
        if mode not in ("auto", "on", "off"):
            raise ValueError(f"GIGVORA_MODERATION_DETOXIFY must be auto, on or off, not {mode!r}")
        return cls(
            Path(checkpoint) if checkpoint else None,
            Path(config_dir) if config_dir else None,
            mode,  # type: ignore[arg-type]
        )

    @property
    def configured(self) -> bool:
        """Both paths are set."""
        return self.checkpoint is not None and self.config_dir is not None


def detoxify_installed() -> tuple[bool, str]:
    """``(installed, explanation)`` for the extra's packages; never imports them."""
    missing = [name for name in ("torch", "transformers") if importlib.util.find_spec(name) is None]
    if missing:
        return False, f"{' and '.join(missing)} not installed ({INSTALL_HINT})"
    return True, "torch and transformers installed"


def detoxify_status(settings: DetoxifySettings) -> tuple[bool, str]:
    """Whether the tier runs, and why not. Raises :class:`StageUnavailable` when it was
    asked for (``on``, or paths given) but cannot run: the server must not boot then."""
    if settings.mode == "off":
        return False, "disabled by GIGVORA_MODERATION_DETOXIFY=off"
    if not settings.configured:
        why = "needs GIGVORA_DETOXIFY_CHECKPOINT and GIGVORA_DETOXIFY_CONFIG_DIR (local paths)"
        if settings.mode == "on" or settings.checkpoint or settings.config_dir:
            raise StageUnavailable(f"Detoxify {why}")
        return False, f"not configured: {why}"
    assert settings.checkpoint is not None and settings.config_dir is not None
    if not settings.checkpoint.is_file():
        raise StageUnavailable(f"GIGVORA_DETOXIFY_CHECKPOINT: no such file {settings.checkpoint}")
    if not settings.config_dir.is_dir():
        raise StageUnavailable(f"GIGVORA_DETOXIFY_CONFIG_DIR: no such folder {settings.config_dir}")
    installed, why = detoxify_installed()
    if not installed:
        raise StageUnavailable(f"Detoxify is configured but {why}")
    return True, "configured"


def force_offline() -> None:
    """Forbid every Hugging Face download in this process (read by huggingface_hub at import,
    and patched into its constants in case it was imported already)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        setattr(constants, "HF_HUB_OFFLINE", True)  # noqa: B010 - an attribute of a module


@dataclass
class LoadedModel:
    """A model, its tokenizer, its label names and the longest input it takes."""

    model: Any
    tokenizer: Any
    labels: tuple[str, ...]
    max_tokens: int


def load_checkpoint(checkpoint: Path, config_dir: Path) -> LoadedModel:
    """Build a Detoxify checkpoint's model from local files only (blocking; worker thread)."""
    force_offline()
    import torch
    import transformers

    loaded = torch.load(checkpoint, map_location="cpu", weights_only=True)
    if not isinstance(loaded, dict) or "config" not in loaded or "state_dict" not in loaded:
        raise ValueError(f"{checkpoint}: not a Detoxify checkpoint (needs config and state_dict)")
    arch = loaded["config"]["arch"]["args"]
    classes = [STANDARD_NAMES.get(c, c) for c in loaded["config"]["dataset"]["args"]["classes"]]
    model_class = _transformers_class(
        transformers, arch["model_name"], ("ForSequenceClassification",)
    )
    tokenizer_class = _transformers_class(
        transformers, arch["tokenizer_name"], ("Tokenizer", "TokenizerFast")
    )
    config = model_class.config_class.from_pretrained(
        str(config_dir), num_labels=int(arch["num_classes"]), local_files_only=True
    )
    model = model_class(config)
    _load_weights(model, loaded["state_dict"], checkpoint)
    model.eval()
    tokenizer = tokenizer_class.from_pretrained(str(config_dir), local_files_only=True)
    return LoadedModel(model, tokenizer, tuple(classes), _max_tokens(config, tokenizer))


def _transformers_class(module: Any, name: str, suffixes: tuple[str, ...]) -> Any:
    """``transformers.<name>``, only for the class kinds a Detoxify checkpoint names."""
    if not isinstance(name, str) or not name.endswith(suffixes) or not hasattr(module, name):
        raise ValueError(f"unsupported class in the Detoxify checkpoint: {name!r}")
    return getattr(module, name)


def _load_weights(model: Any, state_dict: Mapping[str, Any], checkpoint: Path) -> None:
    expected = set(model.state_dict())
    if not expected & set(state_dict) and all(k.startswith("model.") for k in state_dict):
        state_dict = {k.removeprefix("model."): v for k, v in state_dict.items()}
    result = model.load_state_dict(dict(state_dict), strict=False)
    missing = [k for k in result.missing_keys if not k.endswith("position_ids")]
    if missing:
        raise ValueError(f"{checkpoint}: the state_dict lacks {len(missing)} weights of the "
                         f"model, e.g. {missing[:3]}")


def _max_tokens(config: Any, tokenizer: Any) -> int:
    positions = int(getattr(config, "max_position_embeddings", 512))
    if getattr(config, "model_type", "") in ROBERTA_LIKE:
        positions -= 2  # their positions start after the padding index
    return max(8, min(positions, 512, int(getattr(tokenizer, "model_max_length", 512))))


class DetoxifyModel:
    """Lazy, thread-safe handle on a local checkpoint: :meth:`predict_many` gives, for each
    text, ``{label: probability}`` over the labels the checkpoint declares."""

    def __init__(self, checkpoint: Path, config_dir: Path, threads: int = 1) -> None:
        self.checkpoint = checkpoint
        self.config_dir = config_dir
        self.threads = threads
        self.loaded: LoadedModel | None = None
        self.load_s: float | None = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Load now (blocking: call it from the tier's worker thread)."""
        with self._lock:
            if self.loaded is None:
                started = time.perf_counter()
                self.loaded = load_checkpoint(self.checkpoint, self.config_dir)
                import torch

                torch.set_num_threads(self.threads)  # the other core stays with the loop
                self.load_s = time.perf_counter() - started

    def predict_many(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """Per-label probabilities for ``texts`` (blocking; loads on first call)."""
        if self.loaded is None:
            self.load()
        assert self.loaded is not None
        import torch

        loaded = self.loaded
        with torch.inference_mode():
            inputs = loaded.tokenizer(list(texts), return_tensors="pt", truncation=True,
                                      padding=True, max_length=loaded.max_tokens)
            logits = loaded.model(**inputs)[0]
            rows = torch.sigmoid(logits).tolist()
        return [dict(zip(loaded.labels, row, strict=True)) for row in rows]

    def describe(self) -> dict[str, Any]:
        """What readiness shows: labels and load time once loaded."""
        if self.loaded is None:
            return {"loaded": False}
        return {"loaded": True, "labels": list(self.loaded.labels),
                "load_s": round(self.load_s or 0.0, 3), "max_tokens": self.loaded.max_tokens}


@dataclass(frozen=True)
class DetoxifyThresholds:
    """Probabilities → the pipeline's ``toxic`` score. The highest label probability at or
    above ``hold_at`` gives :data:`HOLD_SCORE` (the channel's toxic action, hold by
    default), at or above ``block_at`` :data:`BLOCK_SCORE` (the channel's block). Every
    label at or above ``hold_at`` is named in the reasons: ``toxic:detoxify:threat:0.93``."""

    hold_at: float = 0.8
    block_at: float = 0.98

    def result(self, probabilities: Mapping[str, float]) -> StageResult:
        """The :class:`StageResult` for one text's probabilities."""
        top = max(probabilities.values(), default=0.0)
        if top < self.hold_at:
            return StageResult(scores={"toxic": 0.0})
        score = BLOCK_SCORE if top >= self.block_at else HOLD_SCORE
        reasons = tuple(f"toxic:detoxify:{label}:{p:.2f}"
                        for label, p in probabilities.items() if p >= self.hold_at)
        return StageResult(("toxic",), {"toxic": score}, (), reasons)


class DetoxifyStage:
    """Synchronous Detoxify stage for ``gigvora moderation classify`` (never on the loop).

    :meth:`probabilities` returns the raw scores of the text classified last, so the CLI can
    print them without a second model call.
    """

    name = STAGE

    def __init__(self, model: DetoxifyModel, thresholds: DetoxifyThresholds) -> None:
        self.model = model
        self.thresholds = thresholds
        self._last: tuple[str, dict[str, float]] | None = None

    def classify(self, text: str, ctx: StageContext) -> StageResult:
        """Score one text with a blocking model call."""
        probabilities = self.model.predict_many([text])[0]
        self._last = (text, probabilities)
        return self.thresholds.result(probabilities)

    def probabilities(self, text: str) -> dict[str, float]:
        """The raw per-label scores of ``text`` (from the last call when it was this text)."""
        if self._last is not None and self._last[0] == text:
            return self._last[1]
        return self.model.predict_many([text])[0]


class BatchedDetoxifyStage:
    """Async Detoxify stage over a batch scorer: ``await`` never blocks the event loop.

    A message waits at most ``timeout_s`` (for a busy model, then for its own batch); a
    timeout, a full queue or a model error raises, and the pipeline fails closed.
    """

    name = STAGE

    def __init__(
        self,
        scorer: BatchScorer[dict[str, float]],
        thresholds: DetoxifyThresholds,
        timeout_s: float,
    ) -> None:
        self._scorer = scorer
        self._thresholds = thresholds
        self._timeout_s = timeout_s

    async def classify_async(self, text: str, ctx: StageContext) -> StageResult:
        """Score ``text`` in the next batch; waiting included, at most ``timeout_s``."""
        probabilities = await asyncio.wait_for(self._scorer.score(text), self._timeout_s)
        return self._thresholds.result(probabilities)
