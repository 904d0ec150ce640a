"""Reconciliation: what missed webhooks would have brought is read back from Chatwoot.

Chatwoot POSTs each webhook once, gives up after 5 s and never retries (CONTRACT.md §5). While
Gigvora restarts, is down or unreachable, agent replies, status/assignee/team/label changes and
new conversations would never reach the mirror. So, at boot and then every
``GIGVORA_CHATWOOT_RECONCILE_S``, one run:

1. takes the lease in the store (one run at a time across processes; a crashed holder's lease
   expires) — and ingestion is idempotent anyway;
2. lists the inbox's conversations most recently active first (``GET /conversations?inbox_id=
   &status=all&assignee_type=all&sort_by=last_activity_at_desc&page=``, 25 a page) and stops at
   the first one last active before the watermark (the start of the last complete run, less
   ``slack_s`` for clock skew). Chatwoot's activity messages ("marked resolved", "added
   billing", "assigned to …") move ``last_activity_at`` too, so changes without a reply are
   found as well;
3. stores each snapshot through the webhook's path (an older ``updated_at`` than stored is
   ignored; a change is announced as ``inbox:conversation``);
4. for a conversation whose last message (the listing's ``messages[0]``, any type) is newer
   than the newest one read back before (``chatwoot_reconciled``), reads what it has not read:
   the first time from the newest back (``before=<oldest id>``, 20 a page) to the watermark,
   afterwards forward from that id (``after=<id>``, 100 a page, progress kept page by page) —
   and ingests those the mirror lacks through the webhook's own ``ingest_message``, so dedupe
   by Chatwoot id, echo suppression by ``source_id``, private notes kept from members and the
   exactly-once announcement flags all hold as for a webhook. Activity messages are skipped
   (webhooks never carry them). On a first read a message edited or deleted meanwhile is
   updated like a ``message_updated``;
5. sets a recovered message Chatwoot marked ``failed`` (its webhook failed) back to ``sent``.

Calls are bounded per run (``max_calls``): a run that hits the bound is ``partial``, keeps the
watermark, and the conversations and pages it finished are not read again, so the next run
goes on from there. A 429 or an outage ends the run (``failed``; the client's retry policy applies
to each call, a long ``Retry-After`` is not waited out), and the next run starts over from the
same watermark.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Any

from chatwoot_bridge import mirror
from chatwoot_bridge.client import (
    CONVERSATIONS_PER_PAGE,
    MESSAGES_AFTER_PER_PAGE,
    MESSAGES_PER_PAGE,
    ChatwootError,
    ChatwootRejected,
)
from chatwoot_bridge.service import SupportBridge
from chatwoot_bridge.support import FRESH_S
from storage.chatwoot import ChatwootRecords

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReconcileTuning:
    """Bounds of one run (tests shrink them)."""

    #: Chatwoot calls per run at most (list pages, message pages, status PATCHes)
    max_calls: int = 120
    #: tolerated clock skew between Chatwoot and Gigvora
    slack_s: float = 120.0
    #: how far back the very first run looks (no watermark yet)
    first_lookback_s: float = 86_400.0
    #: a conversation read for the first time: at most this many pages back (20 messages each)
    max_first_pages: int = 10
    #: the lease is renewed while a run lasts; a crashed holder's expires after this
    lease_s: float = 120.0


@dataclass(slots=True)
class RunReport:
    """What one run did; ``outcome``: ok, partial (call budget spent), failed, busy (another
    process holds the lease)."""

    outcome: str = "ok"
    conversations: int = 0
    messages: int = 0
    calls: int = 0
    error: str = ""


class _BudgetSpent(Exception):
    """The run used its ``max_calls``."""


class Reconciler:
    """Reads back from Chatwoot what the mirror missed (see the module docstring)."""

    def __init__(self, bridge: SupportBridge, records: ChatwootRecords,
                 tuning: ReconcileTuning | None = None, metrics: Any = None) -> None:
        self.bridge = bridge
        self.records = records
        self.tuning = tuning or ReconcileTuning()
        #: ``(runs, recovered)`` Prometheus counters, or None
        self.metrics = metrics
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.last: RunReport | None = None
        self._lock = asyncio.Lock()
        self._renewed = 0.0

    async def run_once(self) -> RunReport:
        """One reconciliation (one at a time in this process; ``busy`` if another holds the
        store's lease)."""
        async with self._lock:
            started = self._renewed = time.time()
            state = await self.records.reconcile_lease(self.owner, self.tuning.lease_s)
            if state is None:
                report = RunReport("busy")
            else:
                report = await self._run(state, started)
            self.last = report
            self._count(report)
            return report

    async def _run(self, state: dict[str, Any], started: float) -> RunReport:
        report = RunReport()
        try:
            await self._sweep(state, started, report)
        except _BudgetSpent:
            report.outcome = "partial"
        except ChatwootError as error:
            report.outcome, report.error = "failed", str(error)
        except asyncio.CancelledError:
            await asyncio.shield(self.records.reconcile_release(self.owner))
            raise
        except Exception as error:  # a bug or the store: reported, the next run tries again
            log.exception("chatwoot reconciliation failed")
            report.outcome, report.error = "failed", repr(error)
        await self.records.reconcile_finish(
            self.owner, started, report.outcome, report.conversations, report.messages,
            report.error, watermark=started if report.outcome == "ok" else None)
        log.info("chatwoot reconciliation", extra={
            "outcome": report.outcome, "conversations": report.conversations,
            "messages": report.messages, "calls": report.calls, "error": report.error})
        return report

    def _count(self, report: RunReport) -> None:
        if self.metrics is None:
            return
        runs, recovered = self.metrics
        runs.labels(report.outcome).inc()
        recovered.labels("conversation").inc(report.conversations)
        recovered.labels("message").inc(report.messages)

    async def _call(self, report: RunReport, call: Any) -> Any:
        if report.calls >= self.tuning.max_calls:
            call.close()  # the coroutine is never awaited
            raise _BudgetSpent
        report.calls += 1
        if time.time() - self._renewed > self.tuning.lease_s / 3:  # a long run keeps its lease
            self._renewed = time.time()
            await self.records.reconcile_lease(self.owner, self.tuning.lease_s)
        return await call

    async def _sweep(self, state: dict[str, Any], started: float, report: RunReport) -> None:
        watermark = state["watermark"] or started - self.tuning.first_lookback_s
        floor = watermark - self.tuning.slack_s
        client = self.bridge.client
        page = 1
        while True:
            body = await self._call(report, client.list_conversations(
                status="all", assignee_type="all", inbox_id=self.bridge.config.inbox_id,
                page=page, sort_by="last_activity_at_desc"))
            items = (body.get("data") or {}).get("payload") or []
            for conv in items:
                if float(conv.get("last_activity_at") or 0) < floor:
                    return  # older than what the last complete run covered
                await self._conversation(conv, floor, report)
            if len(items) < CONVERSATIONS_PER_PAGE:
                return
            page += 1

    async def _conversation(self, conv: dict[str, Any], floor: float,
                            report: RunReport) -> None:
        """A conversation the mirror did not know is stored first (tracked for routing and
        SLA); a known one after its missing messages, so they meet its SLA timers as they
        would have before a status change that came later (e.g. resolved)."""
        conversation_id = int(conv["id"])
        row = await self.records.conversation(conversation_id)
        mirrored = row is not None
        if row is None:
            fresh = time.time() - float(conv.get("created_at") or 0) < FRESH_S
            row = await self._snapshot(conv, "conversation_created" if fresh
                                       else "conversation_updated", report)
        newest = _last_message_id(conv)
        seen = await self.records.reconciled_message(conversation_id)
        if newest is not None and seen is None:
            await self._first_read(conversation_id, row, newest, floor, report)
        elif newest is not None and seen is not None and newest > seen:
            await self._read_on(conversation_id, row, seen, report)
        if mirrored:
            await self._snapshot(conv, "conversation_updated", report)

    async def _snapshot(self, conv: dict[str, Any], event: str, report: RunReport
                        ) -> dict[str, Any]:
        row, changed = await self.bridge.store_conversation(conv, event)
        report.conversations += int(changed)
        return row

    async def _first_read(self, conversation_id: int, row: dict[str, Any], newest: int,
                          floor: float, report: RunReport) -> None:
        """The first time: from the newest message back (``before=<oldest id>``, 20 a page)
        to ``floor``, at most ``max_first_pages`` pages; then ingested oldest first."""
        found: dict[int, dict[str, Any]] = {}
        before: int | None = None
        for _ in range(self.tuning.max_first_pages):
            body = await self._call(report, self.bridge.client.list_messages(
                conversation_id, before=before))
            page = [m for m in (body.get("payload") or []) if isinstance(m, dict)]
            found.update((int(m["id"]), m) for m in page)
            if len(page) < MESSAGES_PER_PAGE:
                break
            oldest = min(page, key=lambda m: int(m["id"]))
            if float(oldest.get("created_at") or 0) < floor:
                break
            before = int(oldest["id"])
        await self._ingest_page(conversation_id, row, [found[i] for i in sorted(found)],
                                report)
        await self.records.mark_reconciled(conversation_id, max([newest, *found]))

    async def _read_on(self, conversation_id: int, row: dict[str, Any], seen: int,
                       report: RunReport) -> None:
        """After the newest message read before (``after=<id>``, up to 100 a page, oldest
        first); progress is kept page by page, so a run cut short goes on from there."""
        after = seen
        while True:
            body = await self._call(report, self.bridge.client.list_messages(
                conversation_id, after=after))
            page = sorted((m for m in (body.get("payload") or []) if isinstance(m, dict)
                           and int(m["id"]) > after), key=lambda m: int(m["id"]))
            if not page:
                return
            await self._ingest_page(conversation_id, row, page, report)
            after = int(page[-1]["id"])
            await self.records.mark_reconciled(conversation_id, after)
            if len(page) < MESSAGES_AFTER_PER_PAGE:
                return

    async def _ingest_page(self, conversation_id: int, row: dict[str, Any],
                           messages: list[dict[str, Any]], report: RunReport) -> None:
        known = await self.records.messages_by_chatwoot_id([int(m["id"]) for m in messages])
        for message in messages:
            if await self._ingest(message, row, known.get(int(message["id"]))):
                report.messages += 1
                await self._mark_arrived(conversation_id, message, report)

    async def _ingest(self, message: dict[str, Any], conv: dict[str, Any],
                      stored: dict[str, Any] | None) -> bool:
        """Mirror one API message unless the mirror has it (``stored``); True if it was
        missing."""
        if mirror.api_message_type(message) not in ("incoming", "outgoing", "template"):
            return False  # activity messages never arrive as webhooks either
        payload = mirror.api_message_payload(message, int(conv["id"]))
        if stored is None:
            written = message.get("created_at")
            await self.bridge.ingest_message(
                payload, conv["user_id"], created=True,
                at=float(written) if isinstance(written, int | float) else None)
            return True
        if stored["origin"] == "chatwoot" and stored["text"] != str(message.get("content")
                                                                    or ""):
            await self.bridge.ingest_message(payload, conv["user_id"], created=False)
        return False

    async def _mark_arrived(self, conversation_id: int, message: dict[str, Any],
                            report: RunReport) -> None:
        """Chatwoot marks a message ``failed`` when its webhook to us failed (CONTRACT.md §4).
        A message recovered here is set back to ``sent`` (once: it is known afterwards), or
        its agent sees the reply failed in the dashboard and may send it again. The
        ``message_updated`` that follows changes nothing in the mirror."""
        if message.get("status") != "failed" or report.calls >= self.tuning.max_calls:
            return  # (with the run's calls spent it is skipped, never retried: cosmetic)
        try:
            await self._call(report, self.bridge.client.update_message_status(
                conversation_id, int(message["id"]), "sent"))
        except ChatwootRejected as error:  # cosmetic: never fails the run
            log.warning("chatwoot message status not restored",
                        extra={"conversation": conversation_id, "error": str(error)})


def _last_message_id(conv: dict[str, Any]) -> int | None:
    """The id of a listed conversation's last message (its ``messages``: 0 or 1, the last of
    any type; else ``last_non_activity_message``). Every new message has a higher id."""
    found = [*(conv.get("messages") or []), conv.get("last_non_activity_message")]
    ids = [int(m["id"]) for m in found if isinstance(m, dict) and isinstance(m.get("id"), int)]
    return max(ids) if ids else None


class ReconcileWorker:
    """Runs the reconciliation at boot, then every ``interval_s`` (a background worker of the
    app); while another process holds the lease it tries again after the lease time."""

    def __init__(self, reconciler: Reconciler, interval_s: float) -> None:
        self.reconciler = reconciler
        self.interval_s = interval_s

    async def run(self) -> None:
        """Forever: reconcile, sleep (never into a rate limit Chatwoot announced)."""
        while True:
            health = self.reconciler.bridge.client.health
            if health.state == "rate_limited" and health.retry_at > time.time():
                await asyncio.sleep(health.retry_at - time.time())
            report = await self.reconciler.run_once()
            wait = self.interval_s
            if report.outcome == "busy":
                wait = min(wait, self.reconciler.tuning.lease_s)
            await asyncio.sleep(wait)
