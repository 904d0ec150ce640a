"""The Chatwoot bridge as a built-in plugin: the webhook endpoint, the member events on ``/``
(``support:*``), the agents' namespace ``/inbox``, the outbound and webhook workers and the
``chatwoot:api`` readiness check.

It is OFF — no route, no event, no namespace, no worker, no check — while
``GIGVORA_CHATWOOT_BASE_URL`` is unset. Switch it off explicitly with
``GIGVORA_PLUGINS_DISABLE=chatwoot_bridge``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from aiohttp import web
from prometheus_client import Counter

from chatwoot_bridge import models as m
from chatwoot_bridge.analytics import AnalyticsView
from chatwoot_bridge.client import ChatwootClient, RetryPolicy
from chatwoot_bridge.directory import AgentDirectory
from chatwoot_bridge.openapi import openapi_part
from chatwoot_bridge.reconcile import Reconciler, ReconcileTuning, ReconcileWorker
from chatwoot_bridge.rules import SupportRules
from chatwoot_bridge.service import INBOX_NS, BridgeConfig, SupportBridge
from chatwoot_bridge.support import SUPERVISOR_ROLES, SUPERVISORS_ROOM, SlaWorker, SupportDesk
from chatwoot_bridge.webhook import DELIVERY_TTL_S, WebhookReceiver
from chatwoot_bridge.workers import DeliveryWorker, OutboxWorker, QueueTuning, Signal
from realtime.errors import AppError
from realtime.health import CheckResult, HealthCheck
from realtime.hookspecs import hookimpl
from realtime.identity import Principal
from storage.chatwoot import ChatwootRecords
from storage.support import SupportRecords

log = logging.getLogger(__name__)
MEMBERS = ("member", "agent", "moderator", "admin", "operator")
AGENTS = ("agent", "admin")
REQUIRED = ("chatwoot_api_token", "chatwoot_account_id", "chatwoot_inbox_id")


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


class ChatwootBridgePlugin:
    """One instance per app (see ``make_plugin``)."""

    def __init__(self, tuning: QueueTuning | None = None, retry: RetryPolicy | None = None,
                 timeout_s: float = 10.0, reconcile: ReconcileTuning | None = None) -> None:
        self.tuning = tuning or QueueTuning()
        self.reconcile_tuning = reconcile or ReconcileTuning()
        self.reconciler: Reconciler | None = None
        self.reconcile_s = 0.0
        self.retry = retry
        self.timeout_s = timeout_s
        #: off (not configured) → starting → ready; "misconfigured" / "no_store" stay off
        self.state = "off"
        self.client: ChatwootClient | None = None
        self.records: ChatwootRecords | None = None
        self.bridge: SupportBridge | None = None
        self.outbox_signal = Signal()
        self.delivery_signal = Signal()
        self.webhooks: Counter | None = None
        self.rules = SupportRules()
        self.desk: SupportDesk | None = None
        self.directory: AgentDirectory | None = None

    # configuration ----------------------------------------------------------------------------
    def _configure(self, settings: Any) -> None:
        if self.state != "off" or not settings.chatwoot_base_url:
            return
        missing = [f"GIGVORA_{n.upper()}" for n in REQUIRED if getattr(settings, n) is None]
        if missing:
            log.error("chatwoot bridge misconfigured; it stays off",
                      extra={"missing": missing})
            self.state = "misconfigured"
            return
        try:
            self.rules = SupportRules.from_settings(settings)
        except ValueError as error:
            log.error("chatwoot routing/SLA settings invalid; the bridge stays off",
                      extra={"reason": str(error)[:500]})
            self.state = "misconfigured"
            return
        self.state = "starting"
        if not settings.chatwoot_webhook_secret:
            log.warning("GIGVORA_CHATWOOT_WEBHOOK_SECRET unset: webhooks are accepted unsigned "
                        "(dev only; production refuses to boot)")

    @property
    def enabled(self) -> bool:
        """True once configured (routes and checks exist; events after startup)."""
        return self.state in ("starting", "ready", "no_store")

    # hooks ------------------------------------------------------------------------------------
    @hookimpl
    def gigvora_http_routes(self, ctx: Any) -> list[web.RouteDef]:
        """``POST /integrations/chatwoot/webhook`` (only when configured)."""
        self._configure(ctx.settings)
        if not self.enabled:
            return []
        self.webhooks = Counter("gigvora_chatwoot_webhooks", "Chatwoot webhook deliveries by "
                                "outcome", ["outcome"], registry=ctx.metrics)
        receiver = WebhookReceiver(_secret(ctx.settings.chatwoot_webhook_secret),
                                   self._accept, self.delivery_signal.set, self.webhooks)
        analytics = AnalyticsView(ctx.authenticate,
                                  lambda: self.desk.records if self.desk else None,
                                  self.rules.hours)
        return receiver.routes() + analytics.routes()

    @hookimpl
    def gigvora_openapi(self) -> dict[str, Any] | None:
        """Those routes in the OpenAPI document (nothing while unconfigured)."""
        return openapi_part() if self.enabled else None

    async def _accept(self, delivery_id: str, event: str, raw: bytes) -> bool:
        if self.records is None:
            raise AppError("unavailable", "the Chatwoot bridge is not running")
        return await self.records.accept_delivery(delivery_id, event, raw, DELIVERY_TTL_S)

    @hookimpl
    async def gigvora_startup(self, ctx: Any) -> None:
        """Open the client and records, bind the socket events."""
        self._configure(ctx.settings)
        if self.state != "starting":
            return
        if not hasattr(ctx.store, "run_write"):
            log.warning("the chatwoot bridge needs the embedded store; it is off for this store")
            self.state = "no_store"
            return
        s = ctx.settings
        self.client = ChatwootClient(s.chatwoot_base_url, _secret(s.chatwoot_api_token) or "",
                                     int(s.chatwoot_account_id), timeout=self.timeout_s,
                                     retry=self.retry)
        self.records = ChatwootRecords(ctx.store)
        config = BridgeConfig(int(s.chatwoot_inbox_id), _secret(s.chatwoot_hmac_token),
                              s.max_text_chars)
        self.bridge = SupportBridge(config, self.records, self.client, ctx.emit,
                                    self.outbox_signal.set)
        self.desk = SupportDesk(self.rules, SupportRecords(ctx.store), self.bridge,
                                s.chatwoot_sla_webhook_url,
                                _secret(s.chatwoot_sla_webhook_secret), self.timeout_s)
        self.bridge.support = self.desk
        self.directory = AgentDirectory(self.client)
        self.reconcile_s = float(s.chatwoot_reconcile_s)
        self.reconciler = Reconciler(self.bridge, self.records, self.reconcile_tuning,
                                     self._reconcile_metrics(ctx.metrics))
        self._bind_events(ctx, self.bridge, self.directory)
        self.state = "ready"

    @hookimpl
    async def gigvora_shutdown(self, ctx: Any) -> None:
        """Close the HTTP client (the workers were cancelled before)."""
        if self.client is not None:
            await self.client.aclose()
        if self.desk is not None:
            await self.desk.aclose()

    @hookimpl
    def gigvora_background_workers(self, ctx: Any) -> list[Any]:
        """The outbound queue, the webhook processor and the SLA timers."""
        if self.bridge is None or self.records is None or self.desk is None:
            return []
        handlers = {"route": self.desk.route, "sla_webhook": self.desk.send_webhook}
        workers = [OutboxWorker(self.records, self.bridge, self.tuning, self.outbox_signal,
                                handlers).run,
                   DeliveryWorker(self.records, self.bridge, self.tuning,
                                  self.delivery_signal).run]
        if self.rules.policies:  # no policy, no timers
            workers.append(SlaWorker(self.desk, ctx.settings.chatwoot_sla_tick_s).run)
        if self.reconciler is not None and self.reconcile_s > 0:
            workers.append(ReconcileWorker(self.reconciler, self.reconcile_s).run)
        return workers

    @staticmethod
    def _reconcile_metrics(registry: Any) -> tuple[Counter, Counter] | None:
        if registry is None:
            return None
        return (Counter("gigvora_chatwoot_reconcile_runs", "Chatwoot reconciliation runs by "
                        "outcome (ok, partial, failed, busy)", ["outcome"], registry=registry),
                Counter("gigvora_chatwoot_reconciled", "Conversations (changed or new) and "
                        "messages recovered by reconciliation", ["kind"], registry=registry))

    @hookimpl
    def gigvora_health_checks(self, ctx: Any) -> list[HealthCheck]:
        """``chatwoot:api`` (non-critical): the last Chatwoot outcome and the queue depth."""
        if self.state == "off":
            return []
        return [HealthCheck("chatwoot:api", "component", self._probe, critical=False),
                HealthCheck("chatwoot:reconcile", "component", self._reconcile_probe,
                            critical=False)]

    async def _reconcile_probe(self) -> CheckResult:
        if self.state == "misconfigured":
            return {"status": "fail", "gvCode": "CHATWOOT_MISCONFIGURED"}
        if self.reconciler is None or self.records is None:
            return {"status": "fail", "gvCode": "CHATWOOT_NOT_STARTED"}
        if self.reconcile_s <= 0:
            return {"status": "pass", "observedValue": "off",
                    "output": "GIGVORA_CHATWOOT_RECONCILE_S=0"}
        return reconcile_result(await self.records.reconcile_state(), self.reconcile_s)

    async def _probe(self) -> CheckResult:
        if self.state == "misconfigured":
            return {"status": "fail", "gvCode": "CHATWOOT_MISCONFIGURED",
                    "output": "base URL set without token, account or inbox id, or invalid "
                              "routing/SLA settings (see the log)"}
        if self.state == "no_store" or self.client is None or self.records is None:
            return {"status": "fail", "gvCode": "CHATWOOT_NOT_STARTED"}
        stats = await self.records.queue_stats()
        health = self.client.health
        result: CheckResult = {"observedValue": stats["pending"], "observedUnit": "queued",
                               "failedJobs": stats["failed"],
                               "oldestQueuedAgeS": stats["oldest_age_s"],
                               "webhooksPending": stats["webhooks_pending"],
                               "lastOutcome": health.state, "status": "pass"}
        if health.state == "unreachable":
            result.update(status="fail", gvCode="CHATWOOT_UNREACHABLE", output=health.detail)
        elif health.state == "rate_limited":
            result.update(status="warn", gvCode="CHATWOOT_RATE_LIMITED",
                          retryAfterS=round(max(0.0, health.retry_at - time.time()), 1))
        elif health.state == "unauthorized":
            result.update(status="fail", gvCode="CHATWOOT_UNAUTHORIZED", output=health.detail)
        return result

    # socket events ----------------------------------------------------------------------------
    @staticmethod
    def _bind_events(ctx: Any, bridge: SupportBridge, directory: AgentDirectory) -> None:
        on = ctx.add_event

        async def send(sid: str, who: Principal, body: m.SupportSend) -> Any:
            return await bridge.member_send(who, body)

        async def history(sid: str, who: Principal, body: m.SupportHistory) -> Any:
            return await bridge.member_history(who, body)

        on("/", "support:send", send, m.SupportSend, MEMBERS, limited=True)
        on("/", "support:history", history, m.SupportHistory, MEMBERS)
        ctx.add_namespace(INBOX_NS, AGENTS)

        async def supervisor_joins(sid: str, who: Principal, namespace: str) -> None:
            if who.has_any(SUPERVISOR_ROLES):  # SLA escalations reach supervisors only
                await ctx.enter_room(sid, SUPERVISORS_ROOM, namespace=namespace)

        ctx.on_connect(INBOX_NS, supervisor_joins)
        for name, handler, model, limited in _agent_events(bridge):
            on(INBOX_NS, name, handler, model, AGENTS, limited=limited)

        async def agents(sid: str, who: Principal, b: m.InboxAgents) -> Any:
            return await directory.listing(refresh=b.refresh)

        on(INBOX_NS, "inbox:agents", agents, m.InboxAgents, AGENTS)


def _agent_events(bridge: SupportBridge) -> list[tuple[str, Any, Any, bool]]:
    async def reply(sid: str, who: Principal, b: m.InboxReply) -> Any:
        return await bridge.agent_reply(who, b)

    async def assign(sid: str, who: Principal, b: m.InboxAssign) -> Any:
        return await bridge.agent_assign(who, b)

    async def status(sid: str, who: Principal, b: m.InboxStatus) -> Any:
        return await bridge.agent_status(who, b)

    async def labels(sid: str, who: Principal, b: m.InboxLabels) -> Any:
        return await bridge.agent_labels(who, b)

    async def typing(sid: str, who: Principal, b: m.InboxTyping) -> Any:
        return await bridge.agent_typing(who, b)

    async def listing(sid: str, who: Principal, b: m.InboxList) -> Any:
        return await bridge.agent_list(who, b)

    async def messages(sid: str, who: Principal, b: m.InboxMessages) -> Any:
        return await bridge.agent_messages(who, b)

    return [("inbox:reply", reply, m.InboxReply, True),
            ("inbox:assign", assign, m.InboxAssign, False),
            ("inbox:status", status, m.InboxStatus, False),
            ("inbox:labels", labels, m.InboxLabels, False),
            ("inbox:typing", typing, m.InboxTyping, True),
            ("inbox:list", listing, m.InboxList, False),
            ("inbox:messages", messages, m.InboxMessages, False)]


def reconcile_result(state: dict[str, Any] | None, interval_s: float) -> CheckResult:
    """The ``chatwoot:reconcile`` check from the stored run state (any process's runs):
    ``warn`` when the last run failed or no run completed for three intervals."""
    if state is None or state["last_run_at"] is None:
        return {"status": "pass", "observedValue": None, "observedUnit": "s",
                "lastOutcome": "pending", "intervalS": interval_s}
    success = state["last_success_at"]
    result: CheckResult = {
        "status": "pass", "observedUnit": "s", "intervalS": interval_s,
        "observedValue": round(time.time() - success, 1) if success else None,
        "lastRunAt": _iso(state["last_run_at"]), "lastSuccessAt": _iso(success),
        "lastOutcome": state["last_outcome"],
        "conversationsRecovered": state["last_conversations"],
        "messagesRecovered": state["last_messages"],
        "totalConversationsRecovered": state["total_conversations"],
        "totalMessagesRecovered": state["total_messages"]}
    if state["last_outcome"] == "failed":
        result.update(status="warn", gvCode="CHATWOOT_RECONCILE_FAILED",
                      output=state["last_error"] or "")
    elif success is None or time.time() - success > 3 * interval_s:
        result.update(status="warn", gvCode="CHATWOOT_RECONCILE_STALE",
                      output="no complete reconciliation for three intervals")
    return result


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def make_plugin(tuning: QueueTuning | None = None, retry: RetryPolicy | None = None,
                timeout_s: float = 10.0, reconcile: ReconcileTuning | None = None
                ) -> ChatwootBridgePlugin:
    """A fresh plugin instance for one app (timings overridable for tests)."""
    return ChatwootBridgePlugin(tuning, retry, timeout_s, reconcile)
