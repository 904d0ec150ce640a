"""Gig matching as a marketplace plugin: the post-store hook that turns ``Gig: … #skill``
messages of the gig channel into gigs, the ``gigs:subscribe`` / ``gigs:subscription`` events of
namespace ``/``, the ``gigs:match`` push, ``GET /api/v1/gigs``, its OpenAPI part and a readiness
check. Loaded from the entry point ``matching`` only with ``GIGVORA_PLUGINS_ALLOW=matching``.

pluggy registers this module itself (an entry point loads a module), so every hook finds the
app's own :class:`Matching` on ``ctx.extra`` (:func:`state`): two apps in one process share
nothing, as with the built-ins' ``make_plugin()``.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from prometheus_client import Counter

from plugins.matching.models import GigQuery, SubscribeIn, SubscriptionIn
from plugins.matching.openapi import PATH, openapi_part
from plugins.matching.service import MatchingService
from realtime.errors import AppError
from realtime.health import CheckResult, HealthCheck
from realtime.hookspecs import hookimpl
from realtime.identity import Principal
from realtime.ops_http import json_response, parse
from storage.base import Channel
from storage.gigs import GigRecords

log = logging.getLogger(__name__)
NAME = "matching"
MEMBERS = ("member", "agent", "moderator", "admin", "operator")
DEFAULT_CHANNEL = "gigs"


class Metrics:
    """The plugin's counters, on the app's registry (``ctx.metrics``)."""

    def __init__(self, registry: Any) -> None:
        self.gigs = Counter("gigvora_gigs_recorded", "Gigs recorded from chat messages",
                            registry=registry)
        self.matches = Counter("gigvora_gig_matches", "gigs:match pushes (one per user and gig)",
                               registry=registry)


class Matching:
    """The plugin's state in one app: ``service`` once started (None while starting, or for
    good on a store without ``run_write``, i.e. MongoDB)."""

    def __init__(self) -> None:
        self.service: MatchingService | None = None
        self.state = "starting"

    def ready(self) -> MatchingService:
        """The service, or ``unavailable``."""
        if self.service is None:
            raise AppError("unavailable", "gig matching is " + (
                "off: it needs the embedded store" if self.state == "off" else "starting"),
                reason="matching_" + self.state)
        return self.service


def state(ctx: Any) -> Matching:
    """This app's :class:`Matching` (created on first use)."""
    found: Matching | None = ctx.extra.get(NAME)
    if found is None:
        found = ctx.extra[NAME] = Matching()
    return found


def gig_channel(settings: Any) -> str:
    """The channel gigs are posted in (``GIGVORA_MATCHING_CHANNEL``, default ``gigs``)."""
    return str(getattr(settings, "matching_channel", DEFAULT_CHANNEL) or DEFAULT_CHANNEL)


# lifecycle ------------------------------------------------------------------------------------
@hookimpl
async def gigvora_startup(ctx: Any) -> None:
    """Open the records, make sure the gig channel exists, bind the socket events."""
    matching = state(ctx)
    _bind_events(ctx, matching)
    if not hasattr(ctx.store, "run_write"):
        log.warning("gig matching needs the embedded store; it is off for this store")
        matching.state = "off"
        return
    channel = gig_channel(ctx.settings)
    if ctx.settings.seed_channels:  # like the core channels: only where boot seeds them
        await ctx.store.ensure_channel(Channel(id=channel, name=channel, kind="public"))
    chat = ctx.extra["chat"]
    matching.service = MatchingService(channel, GigRecords(ctx.store), ctx.emit, chat.channel,
                                       Metrics(ctx.metrics))
    matching.state = "ready"


def _bind_events(ctx: Any, matching: Matching) -> None:
    """The events exist whenever the plugin is loaded (``unavailable`` while it cannot serve)."""
    async def subscribe(sid: str, who: Principal, body: SubscribeIn) -> Any:
        return await matching.ready().subscribe(who, body)

    async def subscription(sid: str, who: Principal, body: SubscriptionIn) -> Any:
        return await matching.ready().subscription(who)

    ctx.add_event("/", "gigs:subscribe", subscribe, SubscribeIn, MEMBERS, limited=True)
    ctx.add_event("/", "gigs:subscription", subscription, SubscriptionIn, MEMBERS)


# chat -----------------------------------------------------------------------------------------
@hookimpl
async def gigvora_message_stored(ctx: Any, message: dict[str, Any]) -> None:
    """A stored message that is a gig: record it, push ``gigs:match``. Runs after the message
    was fanned out (never delays or vetoes chat); any other message costs a string test."""
    service = state(ctx).service
    if service is not None and service.is_candidate(message):
        await service.message_stored(message)


# HTTP -----------------------------------------------------------------------------------------
@hookimpl
def gigvora_http_routes(ctx: Any) -> list[web.RouteDef]:
    """``GET /api/v1/gigs``."""
    async def gigs(request: web.Request) -> web.Response:
        who: Principal = ctx.authenticate(request)
        query = parse(GigQuery, dict(request.query))
        return json_response(await state(ctx).ready().listing(who, query))
    return [web.get(PATH, gigs)]


@hookimpl
def gigvora_openapi() -> dict[str, Any]:
    """That route in the OpenAPI document."""
    return openapi_part()


@hookimpl
def gigvora_health_checks(ctx: Any) -> list[HealthCheck]:
    """``matching:store`` (non-critical): warns ``MATCHING_OFF`` on a store it cannot use."""
    async def probe() -> CheckResult:
        matching = state(ctx)
        if matching.state == "ready":
            return {"status": "pass", "observedValue": gig_channel(ctx.settings)}
        return {"status": "warn", "gvCode": "MATCHING_" + matching.state.upper()}
    return [HealthCheck("matching:store", "component", probe, critical=False)]
