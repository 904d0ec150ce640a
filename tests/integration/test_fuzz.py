"""Hypothesis-generated payloads for every socket event: never a crash, never a hung ack.

Each example sends a batch of ``BATCH`` payloads concurrently (their writes share the store's
group commits, so 10,000 payloads take about as long as 1,000 sequential ones);
``GIGVORA_FUZZ_PAYLOADS`` (default 10,000) sets the total, and the last test checks it was
reached."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import Client, LiveServer, make_settings, start_server

EVENTS = ["channel:join", "channel:leave", "channel:list", "message:send", "message:edit",
          "message:delete", "reaction:add", "reaction:remove", "typing", "read", "dm:open",
          "presence:set", "presence:list", "message:report", "moderation:appeal", "no:such"]
CODES = {"invalid", "too_large", "not_found", "forbidden", "rate_limited", "conflict",
         "moderation_blocked", "unavailable"}
FIELDS = ["channel", "text", "id", "emoji", "seq", "since_seq", "limit", "typing", "client_id",
          "thread_id", "user_id", "name", "status", "reason", "subject_type", "subject_id"]

scalars = (st.none() | st.booleans() | st.integers(-2**63, 2**64) | st.floats(allow_nan=False)
           | st.text(max_size=300) | st.sampled_from(["general", "help", "", "x" * 5000]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
payloads = (st.dictionaries(st.sampled_from(FIELDS), values, max_size=6) | values)
BATCH = 10
TARGET = int(os.environ.get("GIGVORA_FUZZ_PAYLOADS", "10000"))


class Harness:
    """A live server and one client on a loop in a background thread (Hypothesis is sync)."""

    def __init__(self, tmp: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server: LiveServer = self.run(start_server(make_settings(
            tmp, message_rate_per_s=0, moderation_ml="off")))
        self.client: Client = self.run(self.server.client("fuzzer"))
        self.sent = 0

    def run(self, coro: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.run(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    made = Harness(tmp_path_factory.mktemp("fuzz"))
    yield made
    made.close()


@pytest.mark.timeout(900)  # ~40 s of CPU for 10,000 payloads; minutes on a loaded machine
@settings(max_examples=max(1, TARGET // BATCH), deadline=None,
          suppress_health_check=list(HealthCheck))
@given(calls=st.lists(st.tuples(st.sampled_from(EVENTS), payloads), min_size=BATCH,
                      max_size=BATCH))
def test_any_payload_gets_a_well_formed_answer(harness: Harness, calls: list[tuple[str, Any]]
                                               ) -> None:
    async def send_all() -> list[Any]:
        return await asyncio.gather(*(harness.client.call(event, payload, timeout=5)
                                      for event, payload in calls))
    acks = harness.run(send_all(), timeout=15)
    harness.sent += len(calls)
    for (event, payload), ack in zip(calls, acks, strict=True):
        assert isinstance(ack, dict) and isinstance(ack.get("ok"), bool), (event, payload, ack)
        if not ack["ok"]:
            assert ack["error"]["code"] in CODES, (event, payload, ack)
            assert isinstance(ack["error"]["message"], str)
    assert harness.client.sio.connected


def test_enough_payloads_were_generated(harness: Harness) -> None:
    if harness.sent == 0:
        pytest.skip("the fuzz test was deselected")
    assert harness.sent >= TARGET, f"only {harness.sent} of {TARGET} payloads were sent"
