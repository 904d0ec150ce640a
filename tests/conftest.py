"""Fixtures: a live server per test, on a free port, with its own data directory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.helpers import LiveServer, make_settings, start_server
from tests.mongo_fixtures import mongo_server_url, mongo_url  # noqa: F401  (fixtures)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[LiveServer]:
    """A live server on the embedded defaults (rate limits relaxed for speed; the moderation
    plugin off: core tests send deliberately repetitive text — tests/moderation cover it)."""
    live = await start_server(make_settings(tmp_path, message_rate_per_s=1000,
                                            message_burst=1000, plugins_disable=["moderation"]))
    yield live
    await live.stop()
