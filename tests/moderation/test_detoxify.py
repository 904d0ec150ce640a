"""The Detoxify tier on a tiny randomly initialised checkpoint built here: loading from local
files only (sockets blocked), scoring, thresholds → hold/block/allow through the live server,
and a slow or broken model failing closed without taking the hub down."""

from __future__ import annotations

import asyncio
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from moderation.cli import run_classify  # noqa: E402
from moderation.detox import DetoxifyModel, DetoxifySettings  # noqa: E402
from moderation.pipeline import ModerationSettings, build_pipeline  # noqa: E402
from moderation.service import ModerationService  # noqa: E402
from tests.helpers import LiveServer, make_settings, mint, start_server  # noqa: E402

CLASSES = ["toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate"]
LABELS = {"toxicity", "severe_toxicity", "obscene", "threat", "insult", "identity_attack"}
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "you", "are", "a",
         "nice", "person", "i", "will", "find", "the", "team", "ship", "it", "today"]


def build_tiny_checkpoint(root: Path) -> tuple[Path, Path]:
    """A Detoxify-format checkpoint of a 1-layer, 8-wide BERT with random weights, and a
    folder with its config and a 20-word tokenizer vocabulary."""
    config_dir = root / "detoxify-config"
    config_dir.mkdir()
    (config_dir / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    (config_dir / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "BertTokenizer", "do_lower_case": True, "model_max_length": 32}))
    config = transformers.BertConfig(
        vocab_size=len(VOCAB), hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=16, max_position_embeddings=32, num_labels=len(CLASSES))
    config.save_pretrained(str(config_dir))
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(config)
    checkpoint = root / "tiny-detoxify.ckpt"
    torch.save({"config": {"arch": {"args": {
        "model_type": "bert-base-uncased",  # a hub name, as in Detoxify's releases: never used
        "model_name": "BertForSequenceClassification", "tokenizer_name": "BertTokenizer",
        "num_classes": len(CLASSES)}}, "dataset": {"args": {"classes": CLASSES}}},
        "state_dict": model.state_dict()}, checkpoint)
    return checkpoint, config_dir


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return build_tiny_checkpoint(tmp_path_factory.mktemp("detoxify"))


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Every outbound connection or name lookup raises, and is recorded."""
    attempts: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args)
        raise OSError("network blocked by the test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    yield attempts


def test_loads_from_local_files_without_touching_the_network(
        tiny: tuple[Path, Path], no_network: list[Any]) -> None:
    model = DetoxifyModel(*tiny)
    model.load()
    scores = model.predict_many(["hello world", "you are a nice person", "zzz unknown words"])
    assert no_network == [] and os.environ["HF_HUB_OFFLINE"] == "1"
    assert len(scores) == 3 and all(set(row) == LABELS for row in scores)
    assert all(0.0 < p < 1.0 for row in scores for p in row.values())
    assert scores[0] != scores[1]  # the words reach the model (not all [UNK])
    assert model.describe()["labels"] == sorted(LABELS, key=[
        "toxicity", "severe_toxicity", "obscene", "threat", "insult", "identity_attack"].index)


def test_detoxifys_own_loader_would_go_to_the_hub(
        tiny: tuple[Path, Path], no_network: list[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Why the tier bypasses ``Detoxify(checkpoint=..., huggingface_config_path=...)``: it
    asks for the checkpoint's hub model type first, which offline means an error."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    detoxify = pytest.importorskip("detoxify")
    with pytest.raises(OSError):
        detoxify.Detoxify(checkpoint=str(tiny[0]), huggingface_config_path=str(tiny[1]))


def test_loader_refuses_foreign_classes_and_incomplete_weights(
        tiny: tuple[Path, Path], tmp_path: Path) -> None:
    loaded = torch.load(tiny[0], weights_only=True)
    loaded["config"]["arch"]["args"]["model_name"] = "AutoModel"
    torch.save(loaded, tmp_path / "foreign.ckpt")
    with pytest.raises(ValueError, match="unsupported class"):
        DetoxifyModel(tmp_path / "foreign.ckpt", tiny[1]).load()
    loaded = torch.load(tiny[0], weights_only=True)
    loaded["state_dict"] = {k: v for k, v in loaded["state_dict"].items() if "classifier" not in k}
    torch.save(loaded, tmp_path / "partial.ckpt")
    with pytest.raises(ValueError, match="lacks 2 weights"):
        DetoxifyModel(tmp_path / "partial.ckpt", tiny[1]).load()


def test_cli_prints_the_tiers_scores(tiny: tuple[Path, Path]) -> None:
    settings = ModerationSettings(ml="off", detoxify=DetoxifySettings(
        *tiny, mode="on", hold_at=0.0, block_at=1.0))
    out = io.StringIO()
    assert run_classify(io.StringIO("hello world\n"), out, build_pipeline(settings)) == 0
    line = json.loads(out.getvalue())
    assert set(line["detoxify"]) == LABELS and line["verdict"] == "hold"
    assert line["labels"] == ["toxic"]


def test_gigvora_moderation_classify_reads_the_detoxify_settings(
        tiny: tuple[Path, Path], tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIGVORA_")}
    env.update({"GIGVORA_DETOXIFY_CHECKPOINT": str(tiny[0]),
                "GIGVORA_DETOXIFY_CONFIG_DIR": str(tiny[1]), "GIGVORA_MODERATION_ML": "off",
                "GIGVORA_MODERATION_DETOXIFY_HOLD_AT": "0", "GIGVORA_DATA_DIR": str(tmp_path)})
    done = subprocess.run([sys.executable, "-m", "realtime.cli", "moderation", "classify"],
                          input="ship it today\n", capture_output=True, text=True, env=env,
                          timeout=90, check=False)
    assert done.returncode == 0, done.stderr
    line = json.loads(done.stdout)
    assert line["verdict"] == "hold" and set(line["detoxify"]) == LABELS


async def test_optional_tier_that_fails_to_load_is_dropped_and_required_one_raises(
        tiny: tuple[Path, Path], tmp_path: Path) -> None:
    broken = tmp_path / "broken.ckpt"
    broken.write_bytes(b"not a checkpoint")
    service = ModerationService(ModerationSettings(ml="off", detoxify=DetoxifySettings(
        broken, tiny[1], mode="auto")))
    await service.start()
    try:
        assert "failed to load" in service.stats.disabled["ml_detoxify"]
        assert service.pipeline.async_stages == ()
        assert (await service.check("hello", user_id="u")).verdict == "allow"
    finally:
        await service.aclose()
    required = ModerationService(ModerationSettings(ml="off", detoxify=DetoxifySettings(
        broken, tiny[1], mode="on")))
    try:
        with pytest.raises(Exception, match=r"Detoxify checkpoint|pickle|load"):
            await required.start()
    finally:
        await required.aclose()


# through the live server ------------------------------------------------------------------


async def boot(tmp_path: Path, tiny: tuple[Path, Path], **overrides: Any) -> LiveServer:
    return await start_server(make_settings(
        tmp_path, message_rate_per_s=50, message_burst=50, moderation_ml="off",
        moderation_detoxify="on", detoxify_checkpoint=tiny[0], detoxify_config_dir=tiny[1],
        **overrides))


@pytest.fixture
async def servers() -> AsyncIterator[list[LiveServer]]:
    started: list[LiveServer] = []
    yield started
    for server in started:
        await server.stop()


async def readiness(live: LiveServer) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {mint('ops', roles='operator')}"}
    async with aiohttp.ClientSession() as http, \
            http.get(live.url + "/readyz", headers=headers) as response:
        body: dict[str, Any] = await response.json(content_type=None)
        return body["checks"]["moderation:pipeline"][0]


async def audit(live: LiveServer, action: str) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {mint('mod1', roles='moderator')}"}
    async with aiohttp.ClientSession() as http, \
            http.get(f"{live.url}/api/v1/moderation/audit?action={action}",
                     headers=headers) as response:
        entries: list[dict[str, Any]] = (await response.json())["entries"]
        return entries


async def test_threshold_zero_holds_and_audits_the_detoxify_reasons(
        tmp_path: Path, tiny: tuple[Path, Path], servers: list[LiveServer]) -> None:
    live = await boot(tmp_path, tiny, moderation_detoxify_hold_at=0.0,
                      moderation_detoxify_block_at=1.0)
    servers.append(live)
    tier = (await readiness(live))["tiers"]["ml_detoxify"]
    assert tier["state"] == "ready" and set(tier["labels"]) == LABELS and tier["load_s"] > 0
    alice = await live.client("alice")
    held = await alice.ok("message:send", {"channel": "general", "text": "hello world"})
    assert held["status"] == "held" and held["labels"] == ["toxic"]
    [entry] = await audit(live, "auto_hold")
    reasons = entry["details"]["reasons"]
    assert {r.split(":")[2] for r in reasons if r.startswith("toxic:detoxify:")} == LABELS
    tier = (await readiness(live))["tiers"]["ml_detoxify"]
    assert tier["batches"] == 1 and tier["mean_batch_ms"] > 0


async def test_threshold_zero_for_block_blocks(
        tmp_path: Path, tiny: tuple[Path, Path], servers: list[LiveServer]) -> None:
    live = await boot(tmp_path, tiny, moderation_detoxify_hold_at=0.0,
                      moderation_detoxify_block_at=0.0)
    servers.append(live)
    alice = await live.client("alice")
    blocked = await alice.call("message:send", {"channel": "general", "text": "hello world"})
    assert blocked["error"]["code"] == "moderation_blocked"
    assert "toxic" in blocked["error"]["message"]
    [entry] = await audit(live, "auto_block")
    assert any(r.startswith("toxic:detoxify:") for r in entry["details"]["reasons"])


async def test_threshold_one_lets_clean_chat_through_in_batches(
        tmp_path: Path, tiny: tuple[Path, Path], servers: list[LiveServer]) -> None:
    live = await boot(tmp_path, tiny, moderation_detoxify_hold_at=1.0,
                      moderation_detoxify_block_at=1.0)
    servers.append(live)
    members = [await live.client(f"member{i}") for i in range(8)]
    texts = [f"{word} the team will ship it today" for word in VOCAB[5:13]]
    sent = await asyncio.gather(*(member.ok("message:send", {"channel": "general", "text": text})
                                  for member, text in zip(members, texts, strict=True)))
    assert [m["text"] for m in sent] == texts
    stats = await readiness(live)
    tier = stats["tiers"]["ml_detoxify"]
    assert stats["status"] == "pass" and 1 <= tier["batches"] < 8  # batched, not one by one


async def test_slow_or_broken_model_fails_closed_and_the_hub_recovers(
        tmp_path: Path, tiny: tuple[Path, Path], servers: list[LiveServer],
        monkeypatch: pytest.MonkeyPatch) -> None:
    live = await boot(tmp_path, tiny, moderation_detoxify_hold_at=1.0,
                      moderation_detoxify_block_at=1.0, moderation_detoxify_timeout_s=0.2)
    servers.append(live)
    alice = await live.client("alice")
    release = threading.Event()
    model_class = transformers.BertForSequenceClassification
    real_forward = model_class.forward

    def stuck(self: Any, *args: Any, **kwargs: Any) -> Any:
        release.wait(5)
        return real_forward(self, *args, **kwargs)

    monkeypatch.setattr(model_class, "forward", stuck)
    started = time.monotonic()
    slow = await alice.call("message:send", {"channel": "general", "text": "hello world"})
    assert slow["error"]["code"] == "unavailable" and time.monotonic() - started < 1.5
    release.set()

    def broken(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("model exploded")

    monkeypatch.setattr(model_class, "forward", broken)
    failed = await alice.call("message:send", {"channel": "general", "text": "hello world"})
    assert failed["error"]["code"] == "unavailable"
    check = await readiness(live)
    assert check["gvCode"] == "MODERATION_STAGE_FAILURES" and check["observedValue"] == 2
    monkeypatch.setattr(model_class, "forward", real_forward)
    ok = await alice.ok("message:send", {"channel": "general", "text": "ship it today"})
    assert ok["text"] == "ship it today", ok  # the hub and the tier carry on
