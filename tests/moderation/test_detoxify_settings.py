"""The Detoxify tier's settings: ``gigvora config lint`` and the boot refuse a tier that was
asked for but cannot load; the thresholds map to the channel's toxic hold/block (no torch)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from moderation.detox import DetoxifySettings, DetoxifyThresholds, detoxify_status
from moderation.plugin import classifier_settings
from realtime.config import ConfigError, lint_environment, load_settings

HAS_EXTRA = all(importlib.util.find_spec(n) for n in ("torch", "transformers"))


def problems(env: dict[str, str]) -> list[str]:
    return lint_environment(env)[1]


def test_off_and_unconfigured_auto_are_clean() -> None:
    assert problems({}) == []
    assert problems({"GIGVORA_MODERATION_DETOXIFY": "off",
                     "GIGVORA_DETOXIFY_CHECKPOINT": "/nowhere"}) == []


def test_on_without_paths_names_both_variables() -> None:
    found = problems({"GIGVORA_MODERATION_DETOXIFY": "on"})
    assert any(p.startswith("GIGVORA_DETOXIFY_CHECKPOINT: required") for p in found)
    assert any(p.startswith("GIGVORA_DETOXIFY_CONFIG_DIR: required") for p in found)
    with pytest.raises(ConfigError, match="GIGVORA_DETOXIFY_CHECKPOINT"):
        load_settings(environ={"GIGVORA_MODERATION_DETOXIFY": "on"})


def test_missing_files_bad_mode_and_inverted_thresholds(tmp_path: Path) -> None:
    found = problems({"GIGVORA_DETOXIFY_CHECKPOINT": str(tmp_path / "none.ckpt"),
                      "GIGVORA_DETOXIFY_CONFIG_DIR": str(tmp_path / "none"),
                      "GIGVORA_MODERATION_DETOXIFY_HOLD_AT": "0.9",
                      "GIGVORA_MODERATION_DETOXIFY_BLOCK_AT": "0.5"})
    assert any(p.startswith("GIGVORA_DETOXIFY_CHECKPOINT: no such file") for p in found)
    assert any(p.startswith("GIGVORA_DETOXIFY_CONFIG_DIR: no such folder") for p in found)
    assert any(p.startswith("GIGVORA_MODERATION_DETOXIFY_HOLD_AT: above") for p in found)
    assert any(p.startswith("GIGVORA_MODERATION_DETOXIFY:") for p in
               problems({"GIGVORA_MODERATION_DETOXIFY": "sometimes"}))


def test_present_files_lint_clean_when_the_extra_is_installed(tmp_path: Path) -> None:
    (tmp_path / "model.ckpt").write_bytes(b"x")
    env = {"GIGVORA_DETOXIFY_CHECKPOINT": str(tmp_path / "model.ckpt"),
           "GIGVORA_DETOXIFY_CONFIG_DIR": str(tmp_path)}
    found = problems(env)
    if HAS_EXTRA:
        assert found == []
        settings = classifier_settings(load_settings(environ=env)).detoxify
        assert settings.mode == "auto" and detoxify_status(settings) == (True, "configured")
    else:
        assert found == ["GIGVORA_MODERATION_DETOXIFY: torch and transformers are not installed "
                         "(pip install 'gigvora-live[detoxify]')"]


def test_thresholds_pick_the_severity_and_name_the_labels() -> None:
    thresholds = DetoxifyThresholds(hold_at=0.8, block_at=0.98)
    calm = thresholds.result({"toxicity": 0.1, "threat": 0.79})
    assert calm.labels == () and calm.scores == {"toxic": 0.0}
    held = thresholds.result({"toxicity": 0.85, "threat": 0.9, "insult": 0.2})
    assert held.labels == ("toxic",) and held.scores == {"toxic": 0.5}
    assert held.reasons == ("toxic:detoxify:toxicity:0.85", "toxic:detoxify:threat:0.90")
    blocked = thresholds.result({"identity_attack": 0.99})
    assert blocked.scores == {"toxic": 1.0}


def test_unset_paths_with_auto_just_disable_the_tier() -> None:
    wanted, why = detoxify_status(DetoxifySettings())
    assert not wanted and "GIGVORA_DETOXIFY_CHECKPOINT" in why
