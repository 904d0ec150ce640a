"""A live server with the web shell and the Chatwoot bridge pointing at the fake Chatwoot
(``tests/chatwoot/fake_chatwoot.py``), for the support bubble and inbox tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chatwoot_bridge import plugin as bridge_plugin
from chatwoot_bridge.webhook import PATH
from tests.chatwoot.conftest import FAST_QUEUE, FAST_RETRY, bridge_settings
from tests.chatwoot.fake_chatwoot import FakeChatwoot
from tests.helpers import LiveServer, start_server


@dataclass
class SupportStack:
    """The fake Chatwoot and the server of one test."""

    fake: FakeChatwoot
    live: LiveServer

    @property
    def url(self) -> str:
        """The server's base URL."""
        return self.live.url


#: An SLA policy for every conversation: first response within an hour, resolution in a day.
SLA_POLICY = {"name": "standard", "first_response_s": 3600, "resolution_s": 86400}


async def start_support(tmp_path: Path, **overrides: Any) -> AsyncIterator[SupportStack]:
    """The fake Chatwoot, then a server whose bridge (fast-timed) points at it and whose
    webhooks the fake signs and posts back (rate limits and the moderation ML tier off)."""
    fake = await FakeChatwoot().start()
    plugin = bridge_plugin.make_plugin(FAST_QUEUE, FAST_RETRY, timeout_s=2.0)
    try:
        settings = bridge_settings(tmp_path, fake, **{
            "message_rate_per_s": 0, "moderation_ml": "off",
            "plugins_disable": ["chatwoot_bridge"],  # the fast-timed instance instead
            "chatwoot_sla_policies": [SLA_POLICY], "chatwoot_sla_tick_s": 0.1, **overrides})
        live = await start_server(settings, plugins=[plugin])
        fake.webhook_url = live.url + PATH
        yield SupportStack(fake, live)
        await fake.drain()
        await live.stop()
    finally:
        await fake.stop()


@pytest.fixture
async def support(tmp_path: Path) -> AsyncIterator[SupportStack]:
    """The stack with an hour to the first response (no breach during a test)."""
    async for stack in start_support(tmp_path):
        yield stack


@pytest.fixture
async def support_breaching(tmp_path: Path) -> AsyncIterator[SupportStack]:
    """The stack with a first-response target that is missed within a second."""
    async for stack in start_support(tmp_path, chatwoot_sla_policies=[
            {**SLA_POLICY, "first_response_s": 0.5}]):
        yield stack
