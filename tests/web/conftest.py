"""Fixtures of the web shell tests: a live server with the shell plugin, and Debian's chromium."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import web_shell.plugin
from realtime.plugins import BUILTIN_PLUGINS
from tests.helpers import LiveServer, make_settings, start_server
from tests.web.support_stack import support, support_breaching  # noqa: F401 (fixtures)

#: The shell's plugin, passed explicitly until it is a built-in (registering it twice fails).
SHELL_PLUGINS: list[Any] = ([] if "web_shell" in BUILTIN_PLUGINS else [web_shell.plugin])
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-gpu"]


@pytest.fixture
async def shell(tmp_path: Path) -> AsyncIterator[LiveServer]:
    """A live server with the web shell and moderation on (the ML tier off for speed; rate
    limits and rate-based spam cues off, as for load tests)."""
    live = await start_server(make_settings(tmp_path, message_rate_per_s=0,
                                            message_burst=1000, moderation_ml="off"),
                              plugins=SHELL_PLUGINS)
    yield live
    await live.stop()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """Headless Debian chromium driven by Playwright (never a downloaded browser)."""
    if not os.path.exists(CHROMIUM):  # noqa: ASYNC240 (one stat, before any I/O starts)
        pytest.skip("browser tests need Debian's chromium at /usr/bin/chromium "
                    "(apt-get install -y chromium)")
    playwright_api = pytest.importorskip("playwright.async_api")
    async with playwright_api.async_playwright() as playwright:
        playwright_api.expect.set_options(timeout=5_000)
        chromium = await playwright.chromium.launch(executable_path=str(CHROMIUM),
                                                    headless=True, args=CHROMIUM_FLAGS)
        yield chromium
        await chromium.close()
