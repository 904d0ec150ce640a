"""The account's agents and labels, for assigning and labelling from the inbox (``inbox:agents``).

Read from Chatwoot (``GET /agents``, ``GET /labels``) and kept for ``ttl_s``; concurrent askers
share one fetch. While Chatwoot is down or rate-limits, the last lists are served with
``stale: true`` (and Chatwoot is not asked again for ``RETRY_S``); with nothing cached yet the
ask fails with ``unavailable`` / ``rate_limited``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from chatwoot_bridge.client import ChatwootClient, ChatwootError
from chatwoot_bridge.service import api_error
from chatwoot_bridge.support import iso

log = logging.getLogger(__name__)
TTL_S = 60.0
#: ``refresh: true`` re-reads at most this often; after a failure Chatwoot rests this long
RETRY_S = 5.0
MAX_ITEMS = 500
MAX_NAME = 200


def agent_view(record: dict[str, Any]) -> dict[str, Any] | None:
    """``{"id", "name", "email"?, "availability_status"?}`` of one Chatwoot agent record."""
    if not isinstance(record.get("id"), int):
        return None
    name = record.get("name") or record.get("available_name") or f"Agent {record['id']}"
    view: dict[str, Any] = {"id": record["id"], "name": str(name)[:MAX_NAME]}
    for key in ("email", "availability_status"):
        if isinstance(record.get(key), str) and record[key]:
            view[key] = record[key][:MAX_NAME]
    return view


def label_titles(records: list[dict[str, Any]]) -> list[str]:
    """The labels' titles, unique and sorted."""
    return sorted({str(r["title"]) for r in records if isinstance(r.get("title"), str)
                   and r["title"]})[:MAX_ITEMS]


class AgentDirectory:
    """The cached lists (see the module docstring)."""

    def __init__(self, client: ChatwootClient, ttl_s: float = TTL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.ttl_s = ttl_s
        self.clock = clock
        self._lock = asyncio.Lock()
        self._cached: dict[str, Any] | None = None
        self._fetched = self._failed = -float("inf")

    async def listing(self, refresh: bool = False) -> dict[str, Any]:
        """``{"agents", "labels", "fetched_at", "stale"}``."""
        async with self._lock:
            now = self.clock()
            fresh_for = RETRY_S if refresh else self.ttl_s
            if self._cached is not None and now - self._fetched < fresh_for:
                return {**self._cached, "stale": False}
            if now - self._failed < RETRY_S and self._cached is not None:
                return {**self._cached, "stale": True}
            try:
                self._cached = await self._fetch()
            except ChatwootError as error:
                self._failed = self.clock()
                log.warning("chatwoot agents/labels unavailable",
                            extra={"why": str(error)[:200], "cached": self._cached is not None})
                if self._cached is None:
                    raise api_error(error) from None
                return {**self._cached, "stale": True}
            self._fetched = self.clock()
            return {**self._cached, "stale": False}

    async def _fetch(self) -> dict[str, Any]:
        agents = [v for v in map(agent_view, await self.client.list_agents()) if v]
        labels = label_titles(await self.client.list_labels())
        agents.sort(key=lambda a: (a["name"].casefold(), a["id"]))
        return {"agents": agents[:MAX_ITEMS], "labels": labels,
                "fetched_at": iso(time.time())}
