"""Voice and video rooms as a built-in plugin: the ``/rooms`` namespace (signalling and
controls), the telemetry sampler, the session scheduler, ``GET /api/v1/rooms``,
``GET /api/v1/rooms/{room}/telemetry``, ``GET/POST /api/v1/rooms/sessions``,
``DELETE /api/v1/rooms/sessions/{id}``, and a readiness check. Switch it off with
``GIGVORA_PLUGINS_DISABLE=rooms``."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from realtime.errors import AppError
from realtime.health import CheckResult, HealthCheck
from realtime.hookspecs import hookimpl
from realtime.identity import Principal
from realtime.ops_http import json_response, parse, read_json
from rooms import models as m
from rooms.media import check_aiortc_internals
from rooms.openapi import openapi_part
from rooms.pins import PinGate
from rooms.service import NS, RoomService, RoomsSettings
from rooms.sessions import SessionCreate, SessionGate, SessionQuery, Sessions
from storage.rooms import RoomRecords
from storage.secrets import SecretRecords
from storage.sqlite import SQLiteStore

log = logging.getLogger(__name__)
MEMBERS = ("member", "agent", "moderator", "admin", "operator")
#: Who sees any room's telemetry (a room's hosts see their own).
OBSERVERS = ("moderator", "admin", "operator")


class RoomsPlugin:
    """One instance per app (see ``make_plugin``)."""

    def __init__(self, settings: RoomsSettings | None = None) -> None:
        #: Explicit settings (tests, embedding); otherwise read from ``GIGVORA_ROOMS_*``.
        self.settings = settings
        self.service: RoomService | None = None
        self.sessions: Sessions | None = None

    def _service(self) -> RoomService:
        if self.service is None:
            raise AppError("unavailable", "rooms are starting")
        return self.service

    def _sessions(self) -> Sessions:
        if self.sessions is None:
            raise AppError("unavailable", "scheduled sessions need the embedded store",
                           reason="no_session_store")
        return self.sessions

    # lifecycle --------------------------------------------------------------------------------
    @hookimpl
    async def gigvora_startup(self, ctx: Any) -> None:
        """Check the aiortc internals we rely on, build the service, bind the events."""
        settings = self.settings or RoomsSettings.from_settings(ctx.settings)
        if settings.sfu.forwarding == "passthrough":
            check_aiortc_internals()
        gate = SessionGate()
        log_config = (str(getattr(ctx.settings, "log_level", "info")),
                      str(getattr(ctx.settings, "log_format", "json")))
        pins = PinGate(SecretRecords(ctx.store)) if isinstance(ctx.store, SQLiteStore) else None
        service = RoomService(settings, ctx.emit, ctx.metrics, ctx.audit, gate, log_config, pins)
        await service.start()  # media workers, if any: spawned and ready
        self.service = service
        if isinstance(ctx.store, SQLiteStore):
            self.sessions = Sessions(ctx, RoomRecords(ctx.store), gate, self.service.close_room,
                                     settings.reminder_lead_s, settings.scheduler_interval_s)
        else:
            log.warning("scheduled sessions are off: they need the embedded (SQLite) store")
        self._bind_events(ctx, self.service)

    @hookimpl
    async def gigvora_shutdown(self, ctx: Any) -> None:
        """Close every peer connection (and stop the media workers)."""
        if self.service is not None:
            await self.service.close()

    def _bind_events(self, ctx: Any, service: RoomService) -> None:
        ctx.add_namespace(NS, MEMBERS)

        async def gone(sid: str, who: Principal, namespace: str) -> None:
            await service.disconnected(sid)
        ctx.on_disconnect(NS, gone)
        for name, handler, model in _events(service):
            ctx.add_event(NS, name, handler, model, MEMBERS)

    @hookimpl
    def gigvora_background_workers(self) -> list[Callable[[], Awaitable[None]]]:
        """The telemetry sampler and the session scheduler."""
        async def rooms_telemetry() -> None:
            await self._service().telemetry.run()

        async def rooms_scheduler() -> None:
            if self.sessions is not None:
                await self.sessions.run()
        return [rooms_telemetry, rooms_scheduler]

    @hookimpl
    def gigvora_health_checks(self) -> list[HealthCheck]:
        """``rooms:media``: open rooms, connections and media workers (non-critical; a media
        worker not running warns with ``ROOMS_MEDIA_WORKER_DOWN``)."""
        async def probe() -> CheckResult:
            if self.service is None:
                return {"status": "warn", "gvCode": "ROOMS_NOT_STARTED"}
            service = self.service
            backend = service.sfu.status()
            result: CheckResult = {
                "status": "pass", "observedValue": len(service.registry.rooms),
                "observedUnit": "rooms", "publications": len(service.publications),
                "subscriptions": len(service.subscriptions),
                "forwarding": service.settings.sfu.forwarding, **backend}
            if any(w["state"] != "running" for w in backend.get("workers", [])):
                result.update(status="warn", gvCode="ROOMS_MEDIA_WORKER_DOWN")
            return result
        return [HealthCheck("rooms:media", "component", probe, critical=False)]

    @hookimpl
    def gigvora_http_routes(self, ctx: Any) -> list[web.RouteDef]:
        """``/api/v1/rooms`` and ``/api/v1/rooms/{room}/telemetry``."""
        return RoomViews(ctx, self).routes()

    @hookimpl
    def gigvora_openapi(self) -> dict[str, Any]:
        """Those routes in the OpenAPI document."""
        return openapi_part()


def _events(service: RoomService) -> list[tuple[str, Any, Any]]:
    """Every client → server event of ``/rooms`` with its payload model."""
    async def join(sid: str, who: Principal, b: m.JoinIn) -> Any:
        return await service.join(sid, who, b)

    async def leave(sid: str, who: Principal, b: m.RoomIn) -> Any:
        return await service.leave(sid, b)

    async def publish(sid: str, who: Principal, b: m.PublishIn) -> Any:
        return await service.publish(sid, b)

    async def subscribe(sid: str, who: Principal, b: m.SubscribeIn) -> Any:
        return await service.subscribe(sid, b)

    async def answer(sid: str, who: Principal, b: m.AnswerIn) -> Any:
        return await service.answer(sid, b)

    async def unsubscribe(sid: str, who: Principal, b: m.UnsubscribeIn) -> Any:
        return await service.unsubscribe(sid, b)

    async def mute(sid: str, who: Principal, b: m.MuteIn) -> Any:
        return await service.mute(sid, b)

    async def kick(sid: str, who: Principal, b: m.KickIn) -> Any:
        return await service.kick(sid, b)

    async def lock(sid: str, who: Principal, b: m.LockIn) -> Any:
        return await service.lock(sid, b)

    async def stats(sid: str, who: Principal, b: m.StatsIn) -> Any:
        return await service.client_stats(sid, b)

    return [("room:join", join, m.JoinIn), ("room:leave", leave, m.RoomIn),
            ("rtc:publish", publish, m.PublishIn), ("rtc:subscribe", subscribe, m.SubscribeIn),
            ("rtc:answer", answer, m.AnswerIn), ("rtc:unsubscribe", unsubscribe,
                                                 m.UnsubscribeIn),
            ("room:mute", mute, m.MuteIn), ("room:kick", kick, m.KickIn),
            ("room:lock", lock, m.LockIn), ("rtc:stats", stats, m.StatsIn)]


class RoomViews:
    """REST: parse and authorise, then read the service."""

    def __init__(self, ctx: Any, plugin: RoomsPlugin) -> None:
        self.ctx = ctx
        self.plugin = plugin

    def routes(self) -> list[web.RouteDef]:
        """The route table."""
        return [web.get("/api/v1/rooms", self.rooms),
                web.get("/api/v1/rooms/sessions", self.list_sessions),
                web.post("/api/v1/rooms/sessions", self.schedule),
                web.delete("/api/v1/rooms/sessions/{session}", self.cancel),
                web.get("/api/v1/rooms/{room}/telemetry", self.telemetry)]

    async def list_sessions(self, request: web.Request) -> web.Response:
        """Scheduled sessions not over yet, in channels the caller reads (members)."""
        who: Principal = self.ctx.authenticate(request)
        query = parse(SessionQuery, dict(request.query))
        sessions = await self.plugin._sessions().listing(who, query)
        return json_response({"sessions": sessions})

    async def schedule(self, request: web.Request) -> web.Response:
        """Schedule a session (members host their own; moderators and admins anyone's)."""
        who: Principal = self.ctx.authenticate(request)
        body = parse(SessionCreate, await read_json(request))
        return json_response(await self.plugin._sessions().schedule(who, body), status=201)

    async def cancel(self, request: web.Request) -> web.Response:
        """Cancel a session (its host or creator, moderators, admins)."""
        who: Principal = self.ctx.authenticate(request)
        session_id = request.match_info["session"]
        if not 1 <= len(session_id) <= 64:
            raise AppError("not_found", "no such session")
        return json_response(await self.plugin._sessions().cancel(who, session_id))

    async def rooms(self, request: web.Request) -> web.Response:
        """Open rooms with their counts (moderators, admins, operators)."""
        who: Principal = self.ctx.authenticate(request)
        if not who.has_any(OBSERVERS):
            raise AppError("forbidden", "moderators, admins and operators only")
        service = self.plugin._service()
        return json_response({"rooms": [r.summary() for r in service.registry]})

    async def telemetry(self, request: web.Request) -> web.Response:
        """Live telemetry of one room (its hosts, moderators, admins, operators)."""
        who: Principal = self.ctx.authenticate(request)
        service = self.plugin._service()
        room = service.registry.room(request.match_info["room"])
        is_host = any(p.user_id == who.sub for p in room.hosts())
        if not is_host and not who.has_any(OBSERVERS):
            raise AppError("forbidden", "hosts, moderators and operators only")
        return json_response(service.telemetry.room_view(room.id))


def make_plugin(settings: RoomsSettings | None = None) -> RoomsPlugin:
    """A fresh plugin instance for one app (``settings`` override ``GIGVORA_ROOMS_*``)."""
    return RoomsPlugin(settings)
