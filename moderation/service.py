"""The façade the live core calls from its pre-store hook: ``await service.check(...)``."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from moderation.pipeline import ModerationSettings, PipelineStats, build_async_pipeline
from moderation.policy import Policy, Verdict
from moderation.spam import SpamTracker

log = logging.getLogger(__name__)


class ModerationService:
    """Owns one pipeline, its spam tracker and the ML tiers (each with its worker).

    Create it in the app's ``cleanup_ctx`` with :func:`moderation_service`, which warms
    the ML models up in their worker threads and closes everything on shutdown.
    """

    def __init__(
        self,
        settings: ModerationSettings | None = None,
        *,
        policy: Policy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings or ModerationSettings()
        self.tracker = SpamTracker(self.settings.spam)
        self.pipeline, self.tiers = build_async_pipeline(self.settings, self.tracker, policy)
        self._clock = clock

    @property
    def stats(self) -> PipelineStats:
        """Per-stage timing, failures and disabled stages."""
        return self.pipeline.stats

    async def start(self) -> None:
        """Load the ML models in their worker threads (so the first message does not wait).

        A required tier (``=on``) that fails to load raises; an optional one is dropped from
        the pipeline and listed in ``stats.disabled`` with its error.
        """
        for tier in self.tiers:
            if not await tier.start():
                log.error("moderation tier failed to load; running without it",
                          extra={"stage": tier.name, "error": tier.error})
                self.pipeline.async_stages = tuple(
                    s for s in self.pipeline.async_stages if s is not tier.stage)
                self.stats.disabled[tier.name] = f"failed to load: {tier.error}"

    def tier_states(self) -> dict[str, Any]:
        """Each ML tier's state, batches and timing, for readiness."""
        return {tier.name: tier.snapshot() for tier in self.tiers}

    async def check(
        self,
        text: str,
        *,
        user_id: str,
        roles: Iterable[str] = (),
        channel: str | None = None,
        policy: Policy | None = None,
    ) -> Verdict:
        """Classify a message before it is stored. Never blocks the loop on ML work.

        ``policy`` is the channel's policy (default: the service's). The verdict has
        ``failed=True`` (and the policy's ``on_failure`` action) when a stage failed.
        """
        return await self.pipeline.aclassify(
            text, user_id=user_id, roles=roles, channel=channel, now=self._clock(), policy=policy
        )

    @property
    def inline(self) -> bool:
        """True when no async (ML) stage runs: :meth:`check_inline` then decides at once."""
        return not self.pipeline.async_stages

    def check_inline(
        self,
        text: str,
        *,
        user_id: str,
        roles: Iterable[str] = (),
        channel: str | None = None,
        policy: Policy | None = None,
    ) -> Verdict:
        """:meth:`check` without a coroutine, for when :attr:`inline` is true (the rule
        stages take microseconds on the loop; there is nothing to await)."""
        return self.pipeline.classify(
            text, user_id=user_id, roles=roles, channel=channel, now=self._clock(), policy=policy
        )

    async def aclose(self) -> None:
        """Stop the ML workers; pending checks are cancelled."""
        for tier in self.tiers:
            await tier.aclose()


@asynccontextmanager
async def moderation_service(
    env: Mapping[str, str] | None = None,
    settings: ModerationSettings | None = None,
    policy: Policy | None = None,
) -> AsyncIterator[ModerationService]:
    """Build, warm up and finally close a :class:`ModerationService` (for ``cleanup_ctx``)."""
    if settings is None:
        settings = ModerationSettings.from_env(env or {})
    service = ModerationService(settings, policy=policy)
    try:
        await service.start()
        yield service
    finally:
        await service.aclose()
