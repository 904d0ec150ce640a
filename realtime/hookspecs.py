"""Every hook of Gigvora Live, as documented pluggy stubs (the plugin authors' reference).

Implement a hook by decorating a function (or method) of your plugin with
``@realtime.hookspecs.hookimpl`` and naming it exactly like the spec. Hooks may be ``async def``;
each call is timed, bounded by ``GIGVORA_HOOK_TIMEOUT_S``, logged and counted per plugin. A
plugin that raises or times out never takes the hub down; veto hooks (``gigvora_message_pre_store``)
fail closed: the message is refused with ``unavailable``.

Every hook receives ``ctx``, a :class:`realtime.plugins.PluginContext`: the narrow façade a plugin
may use (settings, logger, metrics registry, emit, store façade). Plugins never get the app.
"""

from __future__ import annotations

from typing import Any

import pluggy

PROJECT = "gigvora"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def gigvora_startup(ctx: Any) -> Any:
    """Called once at boot after the store is open, before the server is ready.

    Args: ``ctx``. Returns: nothing (may be async). May not veto: a raising plugin is logged,
    counted and boot continues without it.
    """


@hookspec
def gigvora_shutdown(ctx: Any) -> Any:
    """Called once while the server stops, before the store closes.

    Args: ``ctx``. Returns: nothing (may be async). May not veto.
    """


@hookspec
def gigvora_http_routes(ctx: Any) -> Any:
    """Contribute HTTP routes.

    Args: ``ctx``. Returns: a list of ``aiohttp.web.RouteDef`` (``web.get(...)`` etc.), added to
    the app at boot. Sync only. May not veto.
    """


@hookspec
def gigvora_openapi(ctx: Any) -> Any:
    """Document the plugin's HTTP routes in ``GET /api/v1/openapi.json``.

    Args: ``ctx``. Returns: ``{"paths": {...}, "schemas": {...}}`` (OpenAPI 3.1 path items and
    the component schemas they reference; ``realtime.openapi_parts`` builds them from the
    views' pydantic models), or ``None`` when the plugin serves no routes (e.g. unconfigured).
    Called once at boot, after ``gigvora_http_routes``; the parts are kept on
    ``ctx.openapi_parts``. Every route a plugin adds under ``/api/`` or ``/integrations/`` must
    be documented (``tests/ops/test_openapi_paths.py``). Sync only. May not veto.
    """


@hookspec
def gigvora_socket_namespaces(ctx: Any) -> Any:
    """Contribute Socket.IO namespaces.

    Args: ``ctx``. Returns: a list of ``socketio.AsyncNamespace`` instances registered on the
    server at boot. Sync only. May not veto.
    """


@hookspec
def gigvora_background_workers(ctx: Any) -> Any:
    """Contribute long-running background workers.

    Args: ``ctx``. Returns: a list of zero-argument async callables. Each runs as a task owned by
    the app from boot until shutdown, when it is cancelled and awaited; a worker that crashes is
    logged, counted and restarted after a back-off. Sync only. May not veto.
    """


@hookspec
def gigvora_health_checks(ctx: Any) -> Any:
    """Contribute readiness checks shown in ``/readyz`` detail.

    Args: ``ctx``. Returns: a list of ``realtime.health.HealthCheck``. Sync only. May not veto.
    """


@hookspec
def gigvora_client_connect(ctx: Any, user: dict[str, Any], sid: str, namespace: str) -> Any:
    """A client connected (after authentication).

    Args: ``user`` ``{"id", "name", "roles"}``, the Socket.IO ``sid`` and ``namespace``.
    Returns: nothing (may be async). May not veto.
    """


@hookspec
def gigvora_client_disconnect(ctx: Any, user: dict[str, Any], sid: str, namespace: str) -> Any:
    """A client disconnected.

    Args: as ``gigvora_client_connect``. Returns: nothing (may be async). May not veto.
    """


@hookspec
def gigvora_channel_join(ctx: Any, user: dict[str, Any], channel: str) -> Any:
    """A user joined a channel room (permission already checked).

    Args: ``user`` ``{"id", "name", "roles"}``, the channel id. Returns: nothing (may be async).
    May not veto.
    """


@hookspec
def gigvora_channel_leave(ctx: Any, user: dict[str, Any], channel: str) -> Any:
    """A user left a channel room.

    Args: ``user`` ``{"id", "name", "roles"}``, the channel id. Returns: nothing (may be async).
    May not veto.
    """


@hookspec
def gigvora_message_pre_store(ctx: Any, draft: dict[str, Any], user: dict[str, Any]) -> Any:
    """Inspect a message before it is stored; may veto or transform it. **Fails closed.**

    Args: ``draft`` ``{"channel", "text", "client_id", "thread_id"}``, ``user``
    ``{"id", "name", "roles"}``. Returns: ``None`` to allow unchanged, or a
    ``realtime.plugins.Verdict``: ``allow``; ``transform`` (store ``text`` instead, e.g. masked);
    ``hold`` (not stored in the channel; the sender's ack is ``{"status": "held", ...}``); ``block``
    (refused with ``code``, default ``moderation_blocked``). Implementations run in registration
    order; a transform feeds the next; the first hold or block wins. Raising or timing out refuses
    the message with ``unavailable``. May be async.
    """


@hookspec
def gigvora_message_stored(ctx: Any, message: dict[str, Any]) -> Any:
    """A message was durably stored and is being fanned out.

    Args: ``message``, the message object of the protocol. Returns: nothing (may be async).
    May not veto (the message is stored already).
    """
