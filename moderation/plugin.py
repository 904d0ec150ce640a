"""Moderation as a built-in plugin: the pre-store veto, the ``/moderation`` namespace, member
events on ``/`` and the REST API under ``/api/v1/moderation``. Switch it off with
``GIGVORA_PLUGINS_DISABLE=moderation``."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from aiohttp import web

from moderation import models as m
from moderation import queue as views
from moderation.desk import NS, ModerationDesk
from moderation.detox import DetoxifySettings
from moderation.openapi import openapi_part
from moderation.pipeline import ModerationSettings
from moderation.service import ModerationService
from moderation.spam import SpamSettings
from realtime.errors import AppError
from realtime.health import CheckResult, HealthCheck
from realtime.hookspecs import hookimpl
from realtime.identity import Principal
from realtime.ops_http import json_response, parse, read_json
from storage.moderation import ModerationRecords

log = logging.getLogger(__name__)
MEMBERS = ("member", "agent", "moderator", "admin", "operator")
STAFF = ("moderator", "admin")


def classifier_settings(settings: Any) -> ModerationSettings:
    """The pipeline's settings from Gigvora's. ``GIGVORA_MESSAGE_RATE_PER_S=0`` (load tests)
    turns the rate-based spam cues off too: rate, burst and repeated-message floods."""
    spam = SpamSettings()
    if settings.message_rate_per_s <= 0:
        spam = replace(spam, rate_max=0, burst_max=0, duplicate_max=0)
    return ModerationSettings(
        ml=settings.moderation_ml, ml_min_probability=settings.moderation_ml_min_probability,
        ml_timeout_s=settings.moderation_ml_timeout_s, spam=spam,
        detoxify=detoxify_settings(settings))


def detoxify_settings(settings: Any) -> DetoxifySettings:
    """The Detoxify tier's settings from Gigvora's."""
    return DetoxifySettings(
        settings.detoxify_checkpoint, settings.detoxify_config_dir,
        mode=settings.moderation_detoxify, hold_at=settings.moderation_detoxify_hold_at,
        block_at=settings.moderation_detoxify_block_at,
        timeout_s=settings.moderation_detoxify_timeout_s,
        max_batch=settings.moderation_detoxify_max_batch)


class ModerationPlugin:
    """One instance per app (see ``make_plugin``)."""

    def __init__(self) -> None:
        self.desk: ModerationDesk | None = None
        self.service: ModerationService | None = None
        #: starting → ready; "off" when the store cannot hold moderation records (messages
        #: pass unchecked, readiness warns); a startup that never finished fails closed.
        self.state = "starting"

    def _desk(self) -> ModerationDesk:
        if self.desk is None:
            raise AppError("unavailable", "moderation is starting")
        return self.desk

    # lifecycle --------------------------------------------------------------------------------
    @hookimpl
    async def gigvora_startup(self, ctx: Any) -> None:
        """Open the records, warm the classifiers, bind the socket events."""
        if not hasattr(ctx.store, "run_write"):
            log.warning("moderation needs the embedded store; it is off for this store")
            self.state = "off"
            return
        self.service = ModerationService(classifier_settings(ctx.settings))
        await self.service.start()
        desk = ModerationDesk(ctx, ModerationRecords(ctx.store), self.service)
        await desk.load()
        self.desk = desk
        self._bind_events(ctx)
        self.state = "ready"

    @hookimpl
    async def gigvora_shutdown(self, ctx: Any) -> None:
        """Stop the ML worker."""
        if self.service is not None:
            await self.service.aclose()

    def _bind_events(self, ctx: Any) -> None:
        desk = self._desk()
        on = ctx.add_event

        async def report(sid: str, who: Principal, body: m.ReportIn) -> Any:
            return await desk.report(who, body.id, body.reason)

        async def appeal(sid: str, who: Principal, body: m.AppealIn) -> Any:
            return await desk.appeal(who, body.subject_type, body.subject_id, body.text)

        on("/", "message:report", report, m.ReportIn, MEMBERS, limited=True)
        on("/", "moderation:appeal", appeal, m.AppealIn, MEMBERS, limited=True)
        ctx.add_namespace(NS, STAFF)
        for name, handler, model in self._staff_events(desk):
            on(NS, name, handler, model, STAFF)

    @staticmethod
    def _staff_events(desk: ModerationDesk) -> list[tuple[str, Any, Any]]:
        async def approve(sid: str, who: Principal, b: m.Decision) -> Any:
            return await desk.approve(who, b.id, b.reason)

        async def reject(sid: str, who: Principal, b: m.Decision) -> Any:
            return await desk.reject(who, b.id, b.reason)

        async def resolve(sid: str, who: Principal, b: m.Decision) -> Any:
            return await desk.resolve_report(who, b.id, b.reason)

        async def delete(sid: str, who: Principal, b: m.Decision) -> Any:
            return await desk.delete_message(who, b.id, b.reason)

        async def sanction(sid: str, who: Principal, b: m.SanctionIn) -> Any:
            return await desk.sanction(who, b.user_id, b.kind, b.channel, b.duration_s,
                                       b.reason)

        async def lift(sid: str, who: Principal, b: m.Decision) -> Any:
            return await desk.lift(who, b.id, b.reason)

        async def decide(sid: str, who: Principal, b: m.AppealDecision) -> Any:
            return await desk.decide_appeal(who, b.id, b.outcome, b.reason)

        async def queue(sid: str, who: Principal, _: Any) -> Any:
            return await views.queue(desk)

        return [("moderation:hold:approve", approve, m.Decision),
                ("moderation:hold:reject", reject, m.Decision),
                ("moderation:report:resolve", resolve, m.Decision),
                ("moderation:message:delete", delete, m.Decision),
                ("moderation:sanction", sanction, m.SanctionIn),
                ("moderation:sanction:lift", lift, m.Decision),
                ("moderation:appeal:decide", decide, m.AppealDecision),
                ("moderation:queue", queue, None)]

    # hooks ------------------------------------------------------------------------------------
    @hookimpl
    async def gigvora_message_pre_store(self, draft: dict[str, Any], user: dict[str, Any]
                                        ) -> Any:
        """The veto: sanctions, classifiers, the channel's policy."""
        if self.state == "off":
            return None
        if self.desk is None:
            raise RuntimeError("moderation not started")  # fails closed
        return await self.desk.pre_store(draft, user)

    @hookimpl
    def gigvora_health_checks(self) -> list[HealthCheck]:
        """``moderation:pipeline``: not started (fail: messages are refused), off (warn),
        stage failures, disabled stages and the ML tiers' state (``tiers``)."""
        async def probe() -> CheckResult:
            if self.state == "off":
                return {"status": "warn", "gvCode": "MODERATION_OFF",
                        "output": "moderation needs the embedded store"}
            if self.service is None or self.desk is None:
                return {"status": "fail", "gvCode": "MODERATION_NOT_STARTED"}
            stats = self.service.stats.snapshot()
            failures = sum(s.get("failures", 0) for s in stats["stages"].values())
            return {"status": "pass" if not failures else "warn", "observedValue": failures,
                    "observedUnit": "stage failures", "disabled": stats["disabled"],
                    "tiers": self.service.tier_states(),
                    **({"gvCode": "MODERATION_STAGE_FAILURES"} if failures else {})}
        return [HealthCheck("moderation:pipeline", "component", probe)]

    @hookimpl
    def gigvora_http_routes(self, ctx: Any) -> list[web.RouteDef]:
        """``/api/v1/moderation/...``."""
        return ModerationViews(ctx, self).routes()

    @hookimpl
    def gigvora_openapi(self) -> dict[str, Any]:
        """Those routes in the OpenAPI document."""
        return openapi_part()


class ModerationViews:
    """REST: parse and authorise, then call the desk."""

    def __init__(self, ctx: Any, plugin: ModerationPlugin) -> None:
        self.ctx = ctx
        self.plugin = plugin

    def routes(self) -> list[web.RouteDef]:
        """The route table."""
        base = "/api/v1/moderation"
        return [web.get(f"{base}/queue", self.queue),
                web.get(f"{base}/mine", self.mine),
                web.post(f"{base}/reports", self.report),
                web.post(f"{base}/appeals", self.appeal),
                web.post(f"{base}/holds/{{id}}/{{decision:approve|reject}}", self.hold),
                web.post(f"{base}/holds/{{id}}/erase", self.erase),
                web.post(f"{base}/reports/{{id}}/resolve", self.resolve),
                web.post(f"{base}/messages/{{id}}/delete", self.delete),
                web.post(f"{base}/sanctions", self.sanction),
                web.get(f"{base}/sanctions", self.sanctions),
                web.post(f"{base}/sanctions/{{id}}/lift", self.lift),
                web.post(f"{base}/appeals/{{id}}/decide", self.decide),
                web.get(f"{base}/policies", self.policies),
                web.put(f"{base}/policies/{{channel}}", self.set_policy),
                web.get(f"{base}/audit", self.audit),
                web.get(f"{base}/audit/verify", self.verify)]

    def _staff(self, request: web.Request) -> Principal:
        who: Principal = self.ctx.authenticate(request)
        if not who.has_any(STAFF):
            raise AppError("forbidden", "moderators only")
        return who

    async def _reason(self, request: web.Request) -> str:
        body = await read_json(request)
        if not isinstance(body, dict) or not isinstance(body.get("reason"), str) \
                or not body["reason"].strip() or len(body["reason"]) > 512:
            raise AppError("invalid", "a reason (1-512 characters) is required")
        return str(body["reason"])

    async def queue(self, request: web.Request) -> web.Response:
        """Pending holds, open reports and appeals."""
        self._staff(request)
        return json_response(await views.queue(self.plugin._desk()))

    async def mine(self, request: web.Request) -> web.Response:
        """The caller's own held messages, active sanctions and open appeals."""
        who: Principal = self.ctx.authenticate(request)
        return json_response(await views.mine(self.plugin._desk(), who.sub))

    async def report(self, request: web.Request) -> web.Response:
        """A member reports a message."""
        who = self.ctx.authenticate(request)
        body = parse(m.ReportIn, await read_json(request))
        return json_response(await self.plugin._desk().report(who, body.id, body.reason), 201)

    async def appeal(self, request: web.Request) -> web.Response:
        """A member appeals."""
        who = self.ctx.authenticate(request)
        body = parse(m.AppealIn, await read_json(request))
        return json_response(await self.plugin._desk().appeal(
            who, body.subject_type, body.subject_id, body.text), 201)

    async def hold(self, request: web.Request) -> web.Response:
        """Approve or reject a held message."""
        who, reason = self._staff(request), await self._reason(request)
        desk, hold_id = self.plugin._desk(), request.match_info["id"]
        if request.match_info["decision"] == "approve":
            return json_response(await desk.approve(who, hold_id, reason))
        return json_response(await desk.reject(who, hold_id, reason))

    async def erase(self, request: web.Request) -> web.Response:
        """Erase a held message's content (admins: personal-data requests)."""
        who: Principal = self.ctx.authenticate(request)
        if "admin" not in who.roles:
            raise AppError("forbidden", "admins only")
        reason = await self._reason(request)
        return json_response(await self.plugin._desk().erase(who, request.match_info["id"],
                                                            reason))

    async def resolve(self, request: web.Request) -> web.Response:
        """Close a report."""
        who, reason = self._staff(request), await self._reason(request)
        return json_response(await self.plugin._desk().resolve_report(
            who, request.match_info["id"], reason))

    async def delete(self, request: web.Request) -> web.Response:
        """Delete a message."""
        who, reason = self._staff(request), await self._reason(request)
        return json_response(await self.plugin._desk().delete_message(
            who, request.match_info["id"], reason))

    async def sanction(self, request: web.Request) -> web.Response:
        """Mute, ban or kick."""
        who = self._staff(request)
        b = parse(m.SanctionIn, await read_json(request))
        return json_response(await self.plugin._desk().sanction(
            who, b.user_id, b.kind, b.channel, b.duration_s, b.reason), 201)

    async def sanctions(self, request: web.Request) -> web.Response:
        """Sanctions, newest first (``?user_id=``)."""
        self._staff(request)
        user_id = request.query.get("user_id")
        return json_response({"sanctions": await self.plugin._desk().records.sanctions(
            user_id)})

    async def lift(self, request: web.Request) -> web.Response:
        """Lift a sanction."""
        who, reason = self._staff(request), await self._reason(request)
        return json_response(await self.plugin._desk().lift(who, request.match_info["id"],
                                                            reason))

    async def decide(self, request: web.Request) -> web.Response:
        """Decide an appeal (a different moderator)."""
        who = self._staff(request)
        body = await read_json(request)
        if isinstance(body, dict):
            body = {**body, "id": request.match_info["id"]}
        b = parse(m.AppealDecision, body)
        return json_response(await self.plugin._desk().decide_appeal(who, b.id, b.outcome,
                                                                     b.reason))

    async def policies(self, request: web.Request) -> web.Response:
        """Every stored policy."""
        self._staff(request)
        desk = self.plugin._desk()
        return json_response({c: p.model_dump() for c, p in desk.policies.items()})

    async def set_policy(self, request: web.Request) -> web.Response:
        """Set a channel's policy (``*`` = default)."""
        who = self._staff(request)
        doc = parse(m.PolicyDoc, await read_json(request))
        return json_response(await self.plugin._desk().set_policy(
            who, request.match_info["channel"], doc))

    async def audit(self, request: web.Request) -> web.Response:
        """The audit log, newest first, with filters."""
        self._staff(request)
        q = parse(m.AuditQuery, dict(request.query))
        entries = await self.plugin._desk().records.audit_entries(
            actor_id=q.actor, action=q.action, target_id=q.target, limit=q.limit,
            before_seq=q.before_seq)
        return json_response({"entries": entries})

    async def verify(self, request: web.Request) -> web.Response:
        """Recompute the audit chain."""
        self._staff(request)
        return json_response(await self.plugin._desk().records.audit_verify())


def make_plugin() -> ModerationPlugin:
    """A fresh plugin instance for one app."""
    return ModerationPlugin()
