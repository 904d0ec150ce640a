"""A fake Chatwoot and a live Gigvora server with the bridge, wired to each other."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chatwoot_bridge import plugin as bridge_plugin
from chatwoot_bridge.client import RetryPolicy
from chatwoot_bridge.reconcile import ReconcileTuning
from chatwoot_bridge.webhook import PATH
from chatwoot_bridge.workers import QueueTuning
from tests.chatwoot.fake_chatwoot import FakeChatwoot
from tests.helpers import Client, LiveServer, make_settings, start_server

FAST_QUEUE = QueueTuning(poll_s=0.05, lease_s=5.0, backoff_s=0.05, max_backoff_s=0.2,
                         max_rejections=3, webhook_lease_s=1.0)
FAST_RETRY = RetryPolicy(attempts=2, backoff_s=0.01, max_backoff_s=0.02, max_inline_wait_s=0.0)
HMAC_TOKEN = "kP2qW8eR4tY6uI1oA3sD5fG7"


@dataclass
class Stack:
    """The fake, the server and the bridge plugin of one test."""

    fake: FakeChatwoot
    live: LiveServer
    plugin: bridge_plugin.ChatwootBridgePlugin

    @property
    def webhook_url(self) -> str:
        """Gigvora's webhook endpoint."""
        return self.live.url + PATH

    async def member(self, sub: str = "dmitri") -> Client:
        """A signed-in member on ``/``."""
        return await self.live.client(sub, roles="member")

    async def agent(self, sub: str = "aiko") -> Client:
        """A support agent on ``/inbox``."""
        return await self.live.client(sub, roles="agent", namespaces=["/inbox"])


def bridge_settings(tmp_path: Path, fake: FakeChatwoot, **overrides: Any) -> Any:
    """Settings with the bridge on, pointing at ``fake``."""
    values: dict[str, Any] = {
        "chatwoot_base_url": fake.url, "chatwoot_api_token": fake.token,
        "chatwoot_account_id": fake.account_id, "chatwoot_inbox_id": fake.inbox_id,
        "chatwoot_webhook_secret": fake.webhook_secret, "chatwoot_hmac_token": HMAC_TOKEN,
        # the built-in instance (once registered) is replaced by the test-timed one
        "plugins_disable": ["moderation", "chatwoot_bridge"], "message_rate_per_s": 1000,
        "message_burst": 1000}
    values.update(overrides)
    return make_settings(tmp_path, **values)


async def start_stack(tmp_path: Path, fake: FakeChatwoot, *,
                      reconcile: ReconcileTuning | None = None, **overrides: Any) -> Stack:
    """Boot a server with a fast-timed bridge and point the fake's webhooks at it."""
    plugin = bridge_plugin.make_plugin(FAST_QUEUE, FAST_RETRY, timeout_s=2.0,
                                       reconcile=reconcile)
    live = await start_server(bridge_settings(tmp_path, fake, **overrides), plugins=[plugin])
    fake.webhook_url = live.url + PATH
    return Stack(fake, live, plugin)


@pytest.fixture
async def fake() -> AsyncIterator[FakeChatwoot]:
    server = await FakeChatwoot().start()
    yield server
    await server.stop()


@pytest.fixture
async def stack(tmp_path: Path, fake: FakeChatwoot) -> AsyncIterator[Stack]:
    s = await start_stack(tmp_path, fake)
    yield s
    await fake.drain()
    await s.live.stop()
