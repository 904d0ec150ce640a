"""Settings: every problem reported at once, each naming its variable; production rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from realtime.config import ConfigError, lint_environment, load_settings, resolve_jwt_secret


def test_defaults_boot_with_no_settings() -> None:
    settings = load_settings(environ={})
    assert settings.env == "dev" and settings.port == 8080 and settings.host == "127.0.0.1"
    assert settings.effective_store_url == "sqlite:///var/gigvora.db"
    assert settings.max_text_chars == 4000 and settings.message_burst == 20


def test_lint_reports_every_problem_with_its_variable() -> None:
    _, problems = lint_environment({
        "GIGVORA_PORT": "eighty", "GIGVORA_MAX_TEXT_CHARS": "-1", "GIGVORA_ENV": "production",
        "GIGVORA_CORS_ORIGINS": "*", "GIGVORA_TYPO": "1", "GIGVORA_STORE_URL": "postgres://x",
        "OTHER": "ignored"})
    joined = "\n".join(problems)
    for variable in ("GIGVORA_PORT", "GIGVORA_MAX_TEXT_CHARS", "GIGVORA_TYPO",
                     "GIGVORA_STORE_URL", "GIGVORA_JWT_SECRET", "GIGVORA_CORS_ORIGINS"):
        assert variable in joined, variable
    assert all(line.startswith("GIGVORA_") for line in problems)


def test_production_refuses_unsafe_settings() -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(environ={"GIGVORA_ENV": "production", "GIGVORA_JWT_SECRET": "short",
                               "GIGVORA_DEBUG": "true"})
    assert any("GIGVORA_JWT_SECRET" in p for p in error.value.problems)
    assert any("GIGVORA_DEBUG" in p for p in error.value.problems)
    ok = load_settings(environ={"GIGVORA_ENV": "production", "GIGVORA_JWT_SECRET": "s" * 32,
                                "GIGVORA_CORS_ORIGINS": "https://a.example,https://b.example"})
    assert ok.cors_origins == ["https://a.example", "https://b.example"]


def test_secrets_are_masked_in_repr() -> None:
    settings = load_settings(environ={"GIGVORA_JWT_SECRET": "super-secret-value-" * 3})
    assert "super-secret" not in repr(settings) and "super-secret" not in str(settings)


def test_dev_secret_is_generated_once_and_kept(tmp_path: Path) -> None:
    settings = load_settings(environ={}, data_dir=tmp_path)
    first = resolve_jwt_secret(settings)
    assert len(first) >= 32 and resolve_jwt_secret(settings) == first
    assert (tmp_path / "dev-jwt-secret").stat().st_mode & 0o777 == 0o600
