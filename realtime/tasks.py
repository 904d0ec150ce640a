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


async def resume(coro: Coroutine[Any, Any, Any], awaited: Any) -> Any:
    """Finish a coroutine that was stepped by hand (``coro.send(None)``) and suspended on
    ``awaited`` — the future it yielded, or ``None`` for a bare yield — in the current task:
    wait for what it waits for and resume it, until it returns; its value or exception is ours.

    Hot paths step a coroutine by hand when it usually finishes without suspending (a hook
    whose rules are synchronous, a packet handler that only starts a task): that saves a task
    or a timer per call, and this finishes the rare one that does suspend. A cancellation of the
    current task reaches the coroutine where it waits, as it would in its own task."""
    while True:
        try:
            if awaited is None:
                await asyncio.sleep(0)
            else:  # as a task does with what its coroutine yields: take over the wait
                # (awaiting a future already marked as awaited raises in the C implementation)
                awaited._asyncio_future_blocking = False
                await awaited
        except asyncio.CancelledError as cancel:
            try:
                awaited = coro.throw(cancel)
            except StopIteration as done:
                return done.value
            continue
        except Exception:  # the coroutine gets the future's error when it resumes
            pass
        try:
            awaited = coro.send(None)
        except StopIteration as done:
            return done.value
