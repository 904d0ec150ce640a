"""The bridge's two background workers (run and supervised by the app through
``gigvora_background_workers``; nothing else creates tasks).

- :class:`OutboxWorker` posts queued messages to Chatwoot. Jobs are leased head-of-line per
  conversation, so a conversation's messages go out in order; an outage or a 429 only delays
  them (retried with exponential back-off, or after ``Retry-After``), nothing is dropped.
  A request Chatwoot keeps refusing (404/422 …) fails for good after ``max_rejections`` tries
  and is marked ``failed`` for its author, so one poisoned message cannot block the rest.
- :class:`DeliveryWorker` processes stored webhook deliveries in the order received and purges
  expired delivery ids.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from chatwoot_bridge.client import ChatwootError, ChatwootRateLimited, ChatwootRejected
from chatwoot_bridge.service import SupportBridge
from storage.chatwoot import ChatwootRecords

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class QueueTuning:
    """Timings of the workers (tests shrink them)."""

    poll_s: float = 1.0
    #: a claimed job is someone else's again after this (longer than one client call can take)
    lease_s: float = 90.0
    backoff_s: float = 1.0
    max_backoff_s: float = 60.0
    max_rejections: int = 5
    webhook_lease_s: float = 10.0
    webhook_attempts: int = 3
    purge_every_s: float = 600.0

    def backoff(self, attempts: int) -> float:
        """Exponential back-off with jitter after ``attempts`` tries."""
        ceiling = min(self.max_backoff_s, self.backoff_s * 2 ** max(attempts - 1, 0))
        return random.uniform(ceiling / 2, ceiling)


class Signal:
    """A wake-up flag a worker sleeps on (set by producers; cleared by the sleeper)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        """Wake the worker."""
        self._event.set()

    async def sleep(self, timeout: float) -> None:
        """Wait until set or ``timeout``; then clear."""
        try:
            async with asyncio.timeout(timeout):
                await self._event.wait()
        except TimeoutError:
            pass
        self._event.clear()


class OutboxWorker:
    """Posts the durable outbound queue to Chatwoot (see the module docstring)."""

    def __init__(self, records: ChatwootRecords, bridge: SupportBridge, tuning: QueueTuning,
                 signal: Signal,
                 handlers: Mapping[str, Callable[[dict[str, Any]], Awaitable[None]]] | None = None
                 ) -> None:
        self.records = records
        self.bridge = bridge
        self.tuning = tuning
        self.signal = signal
        #: other job kinds (``route``, ``sla_webhook``) → ``await handler(payload)``
        self.handlers = handlers or {}

    async def run(self) -> None:
        """Forever: claim due head jobs, deliver them (different conversations concurrently)."""
        while True:
            jobs = await self.records.claim_jobs(self.tuning.lease_s)
            if not jobs:
                await self.signal.sleep(self.tuning.poll_s)
                continue
            await asyncio.gather(*(self._run(job) for job in jobs))

    async def _run(self, job: dict[str, Any]) -> None:
        seq, attempts = job["seq"], job["attempts"]
        try:
            await self._dispatch(job)
        except ChatwootRateLimited as error:
            delay = max(error.retry_after, self.tuning.backoff(attempts))
            await self.records.job_retry(seq, delay, str(error))
        except ChatwootRejected as error:
            if error.status in (401, 403) or attempts < self.tuning.max_rejections:
                await self.records.job_retry(seq, self.tuning.backoff(attempts), str(error))
            else:
                await self._give_up(job, str(error))
        except ChatwootError as error:
            await self.records.job_retry(seq, self.tuning.backoff(attempts), str(error))
        except asyncio.CancelledError:
            raise
        except Exception as error:  # a bug or the store: keep the job, try again later
            log.exception("chatwoot outbound job failed", extra={"seq": seq})
            await self.records.job_retry(seq, self.tuning.backoff(attempts), repr(error))
        else:
            await self.records.job_done(seq)
            return
        log.info("chatwoot outbound job deferred", extra={"seq": seq, "attempts": attempts,
                                                          "key": job["order_key"]})

    async def _dispatch(self, job: dict[str, Any]) -> None:
        if job["kind"] == "message":
            await self.bridge.deliver(job["payload"]["message_id"])
        elif job["kind"] in self.handlers:
            await self.handlers[job["kind"]](job["payload"])
        else:
            log.error("unknown chatwoot job kind", extra={"kind": job["kind"]})

    async def _give_up(self, job: dict[str, Any], error: str) -> None:
        log.error("chatwoot outbound job failed for good", extra={"seq": job["seq"],
                                                                  "error": error})
        await self.records.job_failed(job["seq"], error)
        if job["kind"] == "message":
            await self.bridge.delivery_failed(job["payload"]["message_id"], error)


class DeliveryWorker:
    """Processes stored webhook deliveries after their 2xx (see the module docstring)."""

    def __init__(self, records: ChatwootRecords, bridge: SupportBridge, tuning: QueueTuning,
                 signal: Signal) -> None:
        self.records = records
        self.bridge = bridge
        self.tuning = tuning
        self.signal = signal
        self._purged_at = 0.0

    async def run(self) -> None:
        """Forever: claim pending deliveries and apply them in the order received."""
        while True:
            rows = await self.records.claim_deliveries(self.tuning.webhook_lease_s)
            if not rows:
                await self._purge()
                await self.signal.sleep(self.tuning.poll_s)
                continue
            for row in rows:
                await self._process(row)

    async def _process(self, row: dict[str, Any]) -> None:
        delivery_id = row["delivery_id"]
        try:
            await self.bridge.handle_event(row["event"], orjson.loads(row["body"]))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("chatwoot webhook processing failed",
                          extra={"delivery": delivery_id, "attempt": row["attempts"] + 1})
            if row["attempts"] + 1 >= self.tuning.webhook_attempts:
                await self.records.delivery_done(delivery_id, failed=True)
            return  # otherwise its lease expires and it is tried again
        await self.records.delivery_done(delivery_id)

    async def _purge(self) -> None:
        if time.monotonic() - self._purged_at >= self.tuning.purge_every_s:
            self._purged_at = time.monotonic()
            await self.records.purge_deliveries()
