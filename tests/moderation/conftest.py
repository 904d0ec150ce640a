"""Shared fixtures: the word list is built once per session (it is immutable)."""

from __future__ import annotations

import pytest

from moderation.normalize import Normalizer
from moderation.pipeline import ModerationSettings, Pipeline, build_pipeline
from moderation.wordlist import WordList


@pytest.fixture(scope="session")
def wordlist() -> WordList:
    return WordList.build()


@pytest.fixture()
def normalizer() -> Normalizer:
    return Normalizer()


@pytest.fixture()
def rules() -> Pipeline:
    """The rule pipeline without the ML tier (deterministic, fast)."""
    return build_pipeline(ModerationSettings(ml="off"), include_ml=False)
