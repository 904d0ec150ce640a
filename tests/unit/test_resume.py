"""``realtime.tasks.resume``: a coroutine stepped by hand and suspended is finished in the
current task exactly as if it had been awaited (value, errors, cancellation, task APIs)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from realtime.tasks import resume


async def step_then_resume(coro: Any) -> Any:
    try:
        awaited = coro.send(None)
    except StopIteration as done:
        return ("sync", done.value)
    return ("resumed", await resume(coro, awaited))


async def test_a_coroutine_that_never_suspends_finishes_on_its_first_step() -> None:
    async def sync() -> int:
        return 7
    assert await step_then_resume(sync()) == ("sync", 7)


async def test_futures_sleeps_and_task_apis_work_after_the_first_step() -> None:
    loop = asyncio.get_running_loop()

    async def waits() -> tuple[Any, ...]:
        future = loop.create_future()
        loop.call_later(0.01, future.set_result, "f")
        got = await future
        await asyncio.sleep(0)  # a bare yield
        async with asyncio.timeout(5):  # needs the current task
            await asyncio.sleep(0.01)
        return got, asyncio.current_task() is outer
    outer = asyncio.current_task()
    assert await step_then_resume(waits()) == ("resumed", ("f", True))


async def test_errors_of_awaited_futures_reach_the_coroutine_and_then_the_caller() -> None:
    loop = asyncio.get_running_loop()

    async def caught() -> str:
        future = loop.create_future()
        loop.call_soon(future.set_exception, KeyError("k"))
        try:
            await future
        except KeyError:
            return "handled"
        return "not reached"

    async def uncaught() -> None:
        future = loop.create_future()
        loop.call_soon(future.set_exception, ValueError("v"))
        await future
    assert await step_then_resume(caught()) == ("resumed", "handled")
    with pytest.raises(ValueError, match="v"):
        await step_then_resume(uncaught())


async def test_a_timeout_cancels_the_coroutine_where_it_waits() -> None:
    cleaned: list[str] = []

    async def slow() -> None:
        try:
            await asyncio.sleep(10)
        finally:
            cleaned.append("finally")
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await step_then_resume(slow())
    assert cleaned == ["finally"]
