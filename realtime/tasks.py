"""Owned background tasks: nothing is created without somebody to cancel and await it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)


class TaskOwner:
    """Holds tasks until they finish; ``close()`` cancels and awaits what is left."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str | None = None) -> asyncio.Task[Any]:
        """Run ``coro`` as a task owned by this owner; its failure is logged, not lost."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed", extra={"owner": self.name,
                                                       "task": task.get_name()},
                      exc_info=task.exception())

    def __len__(self) -> int:
        return len(self._tasks)

    async def close(self, timeout: float = 5.0) -> None:
        """Cancel every task and wait for them (bounded)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)


async def supervise(name: str, worker: Callable[[], Awaitable[None]],
                    on_crash: Callable[[str], None], backoff: float = 1.0) -> None:
    """Run ``worker`` forever, restarting it after a crash with a capped back-off."""
    delay = backoff
    while True:
        try:
            await worker()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background worker crashed", extra={"worker": name})
            on_crash(name)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 60.0)
