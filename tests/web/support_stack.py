"""A live server with the web shell and the Chatwoot bridge pointing at the fake Chatwoot
(``tests/chatwoot/fake_chatwoot.py``), for the support bubble and inbox tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from chatwoot_bridge import plugin as bridge_plugin
from chatwoot_bridge.webhook import PATH
from tests.chatwoot.conftest import FAST_QUEUE, FAST_RETRY, bridge_settings
from tests.chatwoot.fake_chatwoot import FakeChatwoot
from tests.helpers import LiveServer, start_server
from tests.web.conftest import SHELL_PLUGINS


@dataclass
class SupportStack:
    """The fake Chatwoot and the server of one test."""

    fake: FakeChatwoot
    live: LiveServer

    @property
    def url(self) -> str:
        """The server's base URL."""
        return self.live.url


@pytest.fixture
async def support(tmp_path: Path) -> AsyncIterator[SupportStack]:
    """The fake Chatwoot, then a server whose bridge (fast-timed) points at it and whose
    webhooks the fake signs and posts back (rate limits and the moderation ML tier off)."""
    fake = await FakeChatwoot().start()
    plugin = bridge_plugin.make_plugin(FAST_QUEUE, FAST_RETRY, timeout_s=2.0)
    try:
        settings = bridge_settings(tmp_path, fake, message_rate_per_s=0, moderation_ml="off",
                                   plugins_disable=["chatwoot_bridge"])  # the fast one instead
        live = await start_server(settings, plugins=[plugin, *SHELL_PLUGINS])
        fake.webhook_url = live.url + PATH
        yield SupportStack(fake, live)
        await fake.drain()
        await live.stop()
    finally:
        await fake.stop()
