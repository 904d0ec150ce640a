"""The façade the live core calls from its pre-store hook: ``await service.check(...)``."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager

from moderation.pipeline import ModerationSettings, PipelineStats, build_async_pipeline
from moderation.policy import Policy, Verdict
from moderation.spam import SpamTracker


class ModerationService:
    """Owns one pipeline, its spam tracker and (optionally) the ML batch scorer.

    Create it in the app's ``cleanup_ctx`` with :func:`moderation_service`, which warms
    the ML model up in its worker thread and closes everything on shutdown.
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
        self.pipeline, self._scorer, self._model = build_async_pipeline(
            self.settings, self.tracker, policy
        )
        self._clock = clock

    @property
    def stats(self) -> PipelineStats:
        """Per-stage timing, failures and disabled stages."""
        return self.pipeline.stats

    async def start(self) -> None:
        """Load the ML model in its worker thread (so the first message does not wait)."""
        if self._scorer is not None and self._model is not None:
            await self._scorer.warm_up(self._model.load)

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

    async def aclose(self) -> None:
        """Stop the ML worker; pending checks are cancelled."""
        if self._scorer is not None:
            await self._scorer.aclose()


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
