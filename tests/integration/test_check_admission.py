"""Admission to the pre-store checks: waiting in line does not count against the hook timeout,
and beyond the queue a message is refused at once (``unavailable``) instead of timing out."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from realtime.app import HOOKS
from realtime.hookspecs import hookimpl
from tests.helpers import make_settings, start_server


class GatedChecks:
    """A pre-store check that holds messages whose text starts with ``wait`` until released."""

    def __init__(self, hold_s: float = 0.0) -> None:
        self.gate = asyncio.Event()
        self.hold_s = hold_s
        self.entered = 0

    @hookimpl
    async def gigvora_message_pre_store(self, draft: dict[str, Any], user: dict[str, Any]
                                        ) -> None:
        self.entered += 1
        if draft["text"].startswith("wait"):
            await self.gate.wait()
        elif draft["text"].startswith("slow"):
            await asyncio.sleep(self.hold_s)


async def test_full_queue_refuses_at_once_and_admitted_ones_finish(tmp_path: Path) -> None:
    checks = GatedChecks()
    live = await start_server(make_settings(tmp_path, plugins_disable=["moderation"],
                                            checks_concurrency=1, checks_queue=1,
                                            message_rate_per_s=0), plugins=[checks])
    try:
        alice = await live.client("alice")
        first = asyncio.create_task(alice.call("message:send", {"channel": "general",
                                                                "text": "wait one"}))
        while checks.entered < 1:
            await asyncio.sleep(0.01)
        queued = asyncio.create_task(alice.call("message:send", {"channel": "general",
                                                                 "text": "queued two"}))
        while live.app[HOOKS].checks_waiting < 1:
            await asyncio.sleep(0.01)
        refused = await alice.call("message:send", {"channel": "general", "text": "three"})
        assert refused["error"]["code"] == "unavailable" and refused["error"]["retry_after_ms"]
        checks.gate.set()
        assert (await first)["data"]["seq"] == 1
        assert (await queued)["data"]["seq"] == 2
    finally:
        await live.stop()


async def test_waiting_in_line_is_not_a_timeout(tmp_path: Path) -> None:
    """Three checks of 0.6 s one after another: the last waits 1.2 s in line, longer than the
    1 s hook timeout, and still succeeds (its own check takes 0.6 s)."""
    checks = GatedChecks(hold_s=0.6)
    live = await start_server(make_settings(tmp_path, plugins_disable=["moderation"],
                                            checks_concurrency=1, hook_timeout_s=1.0,
                                            message_rate_per_s=0), plugins=[checks])
    try:
        alice = await live.client("alice")
        answers = await asyncio.gather(*(alice.call("message:send", {
            "channel": "general", "text": f"slow {n}"}) for n in range(3)))
        assert [a["ok"] for a in answers] == [True, True, True], answers
        assert sorted(a["data"]["seq"] for a in answers) == [1, 2, 3]
    finally:
        await live.stop()
