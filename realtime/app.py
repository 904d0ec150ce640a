"""``create_app(settings)``: the one place the server is assembled.

Boot order is the order of ``app.cleanup_ctx`` (store → chat → plugins → workers → ready);
shutdown runs it in reverse, and only for what was set up.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import socketio
from aiohttp import web

from realtime.chat import NS, ChatService, room, user_room
from realtime.chat_events import ChatEvents
from realtime.cluster import Cluster, ClusterCollector, build_cluster, redis_check, wait_subscribed
from realtime.config import Settings, resolve_jwt_secret
from realtime.eio_direct import DirectWebSocket, defer_first_ping
from realtime.fanout import Fanout, FanoutManager, OrjsonPacket
from realtime.health import CheckResult, HealthCheck, run_checks
from realtime.hub import Hub
from realtime.identity import TokenService
from realtime.lifecycle import Lifecycle, drain
from realtime.limits import TypingThrottle
from realtime.observability import Metrics
from realtime.ops_http import OpsViews, authenticate, make_middlewares
from realtime.plugins import (
    BOOT_HOOK_TIMEOUT_S,
    HookRunner,
    PluginContext,
    build_plugin_manager,
)
from realtime.presence import RedisPresence
from realtime.presence_feed import PresenceFeed
from realtime.repair import DeliveryTracker
from realtime.tasks import TaskOwner, supervise
from storage import Message, Store, open_store
from storage.moderation import ModerationRecords
from storage.sqlite import SQLiteStore

log = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", Metrics)
LIFECYCLE = web.AppKey("lifecycle", Lifecycle)
TOKENS = web.AppKey("tokens", TokenService)
SIO = web.AppKey("sio", socketio.AsyncServer)
HUB = web.AppKey("hub", Hub)
FANOUT = web.AppKey("fanout", Fanout)
HOOKS = web.AppKey("hooks", HookRunner)
CHAT = web.AppKey("chat", ChatService)
STORE = web.AppKey("store", Store)  # type: ignore[type-abstract]
TASKS = web.AppKey("tasks", TaskOwner)
PLUGIN_CTX = web.AppKey("plugin_ctx", PluginContext)
LOOP_LAG = web.AppKey("loop_lag", list)
CLUSTER = web.AppKey("cluster", Cluster)
FEED = web.AppKey("presence_feed", PresenceFeed)
#: Engine.IO frame ceiling: any frame up to 64 KiB gets an answer (field limits are tighter).
MAX_FRAME_BYTES = 128 * 1024


def _socketio(settings: Settings, fanout: Fanout, metrics: Metrics, cluster: Cluster
              ) -> socketio.AsyncServer:
    manager = FanoutManager(fanout, metrics.fanout_deliveries.inc, cluster.bus)
    cors: Any = settings.cors_origins or None  # None: same origin only
    sio = socketio.AsyncServer(async_mode="aiohttp", client_manager=manager,
                               serializer=OrjsonPacket,
                               cors_allowed_origins=cors, max_http_buffer_size=MAX_FRAME_BYTES,
                               ping_interval=settings.ping_interval_s,
                               ping_timeout=settings.ping_timeout_s, logger=False,
                               engineio_logger=False, http_compression=False)
    sio.eio._async = {**sio.eio._async, "websocket": DirectWebSocket}
    defer_first_ping(sio.eio)
    sio.eio.gigvora_fanout = fanout
    return sio


def create_app(settings: Settings, *, plugins: list[Any] | None = None) -> web.Application:
    """Assemble the server for ``settings`` (plus explicit ``plugins``, for tests)."""
    metrics = Metrics()
    app = web.Application(middlewares=make_middlewares(metrics), client_max_size=1024 * 1024)
    tokens = TokenService(resolve_jwt_secret(settings),
                          settings.jwt_previous_secret.get_secret_value()
                          if settings.jwt_previous_secret else None)
    fanout = Fanout(settings.max_outbound_bytes, metrics.slow_consumers.inc)
    cluster = build_cluster(settings)
    metrics.registry.register(ClusterCollector(cluster))
    sio = _socketio(settings, fanout, metrics, cluster)
    tasks = TaskOwner("app")
    hub = Hub(sio, tokens, metrics, cluster.limiter, settings.max_connections, tasks)
    hooks = HookRunner(build_plugin_manager(settings, plugins), settings.hook_timeout_s, metrics,
                       settings.checks_concurrency, settings.checks_queue)
    for key, value in ((SETTINGS, settings), (METRICS, metrics), (LIFECYCLE, Lifecycle()),
                       (TOKENS, tokens), (SIO, sio), (HUB, hub), (FANOUT, fanout),
                       (HOOKS, hooks), (TASKS, tasks), (LOOP_LAG, [0.0]), (CLUSTER, cluster)):
        app[key] = value  # type: ignore[index]
    sio.attach(app)
    _wire_plugins(app)
    app.router.add_routes(OpsViews(tokens, metrics, lambda: readiness(app),
                                   lambda: refresh_gauges(app)).routes())
    app.cleanup_ctx.extend([store_ctx, redis_ctx, chat_ctx, plugins_ctx, workers_ctx,
                            ready_ctx])
    app.on_shutdown.append(_drain_on_shutdown)
    return app


def _wire_plugins(app: web.Application) -> None:
    """Give plugins their context; add their routes and namespaces (before the app freezes)."""
    hooks, sio = app[HOOKS], app[SIO]

    async def emit(event: str, data: Any, to: str | None = None, namespace: str = NS) -> None:
        await sio.emit(event, data, to=to, namespace=namespace)

    hub = app[HUB]

    async def disconnect_user(user_id: str, namespace: str = NS) -> int:
        sio.manager.disconnect_remote(namespace, user_room(user_id))  # other nodes, if any
        sids = [sid for sid, _ in sio.manager.get_participants(namespace, user_room(user_id))]
        for sid in sids:
            await sio.disconnect(sid, namespace=namespace)
        return len(sids)

    async def leave_room(user_id: str, room_name: str, namespace: str = NS) -> int:
        sids = [sid for sid, _ in sio.manager.get_participants(namespace, user_room(user_id))]
        for sid in sids:
            await sio.leave_room(sid, room_name, namespace=namespace)
        return len(sids)

    async def enter_room(sid: str, room_name: str, namespace: str = NS) -> None:
        await sio.enter_room(sid, room_name, namespace=namespace)

    def on_connect(namespace: str, listener: Any) -> None:
        async def contained(sid: str, principal: Any, ns: str) -> None:
            try:
                await listener(sid, principal, ns)
            except Exception:  # a plugin's listener never refuses the connection
                log.exception("plugin connect listener failed", extra={"sid": sid,
                                                                      "namespace": ns})
        hub.on_connect(namespace, contained)

    ctx = PluginContext(settings=app[SETTINGS], log=logging.getLogger("gigvora.plugins"),
                        metrics=app[METRICS].registry, store=None,
                        authenticate=lambda request: authenticate(app[TOKENS], request),
                        emit=emit, add_event=hub.on, add_namespace=hub.namespace,
                        disconnect_user=disconnect_user, leave_room=leave_room,
                        on_connect=on_connect, enter_room=enter_room,
                        on_disconnect=hub.on_disconnect)
    ctx.extra["hub"] = app[HUB]
    hooks.ctx = app[PLUGIN_CTX] = ctx
    app.router.add_routes(hooks.collect("gigvora_http_routes"))
    ctx.openapi_parts = hooks.gather("gigvora_openapi")  # after routes: plugins know if they serve
    for namespace in hooks.collect("gigvora_socket_namespaces"):
        sio.register_namespace(namespace)


def audit_trail(store: Store) -> Any:
    """The store's audit append, or a no-op where the store keeps no audit chain."""
    if isinstance(store, SQLiteStore):
        return ModerationRecords(store).audit

    async def unrecorded(*args: Any, **kwargs: Any) -> None:
        log.debug("audit entry not recorded: this store keeps no audit trail")
    return unrecorded


async def store_ctx(app: web.Application) -> AsyncIterator[None]:
    """Open the store (migrations applied) and close it last."""
    store = open_store(app[SETTINGS].effective_store_url)
    await store.open()
    metrics = app[METRICS]

    def observe(ops: int, seconds: float) -> None:
        metrics.store_commit_seconds.observe(seconds)
        metrics.store_batch_ops.observe(ops)
    if hasattr(store, "commit_observer"):
        store.commit_observer = observe
    app[STORE] = store
    app[PLUGIN_CTX].store = store
    app[PLUGIN_CTX].audit = audit_trail(store)
    yield
    await store.close()


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    """With Redis: run the bus, wait for the first subscription, share presence; close last."""
    cluster = app[CLUSTER]
    bus = cluster.bus
    if bus is None:
        yield
        return
    owner = TaskOwner("redis")
    owner.spawn(bus.run_publisher(), name="bus-publisher")
    owner.spawn(bus.run_listener(), name="bus-listener")

    async def announce(user: dict[str, str], status: str) -> None:
        app[FEED].announce(user, status)
    cluster.presence = RedisPresence(bus.redis, bus.node_id, announce)
    try:
        await wait_subscribed(bus)
        yield
    finally:
        if isinstance(cluster.presence, RedisPresence):
            await cluster.presence.leave()
        await owner.close()
        await bus.close()


async def chat_ctx(app: web.Application) -> AsyncIterator[None]:
    """Seed and cache channels; bind the events of namespace ``/``; track cross-node delivery."""
    settings, cluster, sio = app[SETTINGS], app[CLUSTER], app[SIO]
    chat = ChatService(app[STORE], sio, app[HOOKS], app[TASKS], settings.max_text_chars,
                       settings.history_limit)
    await chat.load(seed=settings.seed_channels)
    if cluster.bus is not None:
        cluster.tracker = chat.tracker = _tracker(app, chat)
        sio.manager.remote_filter = cluster.tracker.accept_room
        cluster.bus.on_recovered(lambda: _recovered(app))
    app[CHAT] = chat
    app[PLUGIN_CTX].extra["chat"] = chat
    feed = app[FEED] = PresenceFeed(sio, settings.presence_tick_s, settings.presence_default)
    ChatEvents(app[HUB], chat, cluster.presence, TypingThrottle(settings.typing_throttle_s),
               app[HOOKS], feed).register()
    yield
    await feed.aclose()


def _tracker(app: web.Application, chat: ChatService) -> DeliveryTracker:
    sio = app[SIO]

    def has_local_members(channel: str) -> bool:
        return bool(sio.manager.rooms.get(NS, {}).get(room(channel)))

    async def deliver(message: Message) -> None:
        await sio.manager.emit("message:new", message.public(), NS, room=room(message.channel),
                               ignore_queue=True)
    return DeliveryTracker(app[STORE], has_local_members, deliver)


async def _recovered(app: web.Application) -> None:
    """After a Redis outage: repair channel gaps now and tell clients to refresh the rest."""
    cluster = app[CLUSTER]
    if cluster.tracker is not None:
        await cluster.tracker.sweep(urgent=True)
    await app[SIO].manager.emit("resync", {"reason": "fanout_outage"}, NS, ignore_queue=True)


async def plugins_ctx(app: web.Application) -> AsyncIterator[None]:
    """Tell plugins the server starts, and stops."""
    await app[HOOKS].notify("gigvora_startup", timeout=BOOT_HOOK_TIMEOUT_S)
    yield
    await app[HOOKS].notify("gigvora_shutdown", timeout=BOOT_HOOK_TIMEOUT_S)


async def workers_ctx(app: web.Application) -> AsyncIterator[None]:
    """Start the loop-lag sampler and the plugins' workers; cancel and await them at stop."""
    owner = TaskOwner("workers")
    crashed = app[METRICS].worker_crashes

    def on_crash(name: str) -> None:
        crashed.labels(name).inc()
    owner.spawn(supervise("loop-lag", lambda: _sample_loop_lag(app[LOOP_LAG]), on_crash))
    owner.spawn(supervise("token-expiry", app[HUB].disconnect_expired, on_crash))
    tick = min(1.0, app[SETTINGS].ping_interval_s / 5)  # pings late by at most one tick
    owner.spawn(supervise("engineio-pinger", lambda: app[FANOUT].run_pinger(tick), on_crash))
    cluster = app[CLUSTER]
    if cluster.tracker is not None:
        owner.spawn(supervise("delivery-repair", cluster.tracker.run, on_crash))
    if isinstance(cluster.presence, RedisPresence):
        owner.spawn(supervise("presence-heartbeat", cluster.presence.run, on_crash))
    for worker in app[HOOKS].collect("gigvora_background_workers"):
        name = getattr(worker, "__qualname__", "plugin-worker")
        owner.spawn(supervise(name, worker, on_crash), name=name)
    yield
    await owner.close()
    await app[TASKS].close()


async def ready_ctx(app: web.Application) -> AsyncIterator[None]:
    """Last in boot: the server is ready. First in shutdown: drain."""
    app[LIFECYCLE].set("ready")
    yield
    await _drain_on_shutdown(app)
    app[LIFECYCLE].set("stopped")


async def _drain_on_shutdown(app: web.Application) -> None:
    settings = app[SETTINGS]
    await drain(app[LIFECYCLE], app[HUB], app[SIO], app[FANOUT], 0.0, settings.drain_timeout_s)


async def _sample_loop_lag(lag: list[float], interval: float = 0.5) -> None:
    loop = asyncio.get_running_loop()
    while True:
        expected = loop.time() + interval
        await asyncio.sleep(interval)
        lag[0] = max(0.0, loop.time() - expected)


def refresh_gauges(app: web.Application) -> None:
    """Update the sampled gauges before a scrape."""
    metrics = app[METRICS]
    metrics.outbound_bytes.set(app[FANOUT].buffered_bytes())
    if STORE in app:
        metrics.store_queue_depth.set(app[STORE].stats().get("write_queue_depth", 0))


async def readiness(app: web.Application) -> dict[str, Any]:
    """The health+json document: lifecycle, store, fan-out, loop, plugins."""
    checks = [HealthCheck("lifecycle:state", "system", lambda: _lifecycle_check(app)),
              HealthCheck("store:roundtrip", "datastore", lambda: _store_check(app)),
              HealthCheck("fanout:outbound", "component", lambda: _fanout_check(app),
                          critical=False),
              HealthCheck("eventloop:lag", "system", lambda: _loop_check(app), critical=False),
              *_cluster_checks(app), *app[HOOKS].collect("gigvora_health_checks")]
    return await run_checks(checks)


def _cluster_checks(app: web.Application) -> list[HealthCheck]:
    cluster = app[CLUSTER]
    if cluster.bus is None:
        return []
    return [HealthCheck("redis:pubsub", "cache", lambda: redis_check(cluster), critical=False)]


async def _lifecycle_check(app: web.Application) -> CheckResult:
    lifecycle = app[LIFECYCLE]
    ok = lifecycle.state == "ready"
    return {"observedValue": lifecycle.state, "status": "pass" if ok else "fail",
            **({} if ok else {"gvCode": f"LIFECYCLE_{lifecycle.state.upper()}"})}


async def _store_check(app: web.Application) -> CheckResult:
    if STORE not in app:
        return {"status": "fail", "gvCode": "STORE_NOT_OPEN"}
    store = app[STORE]
    started = time.perf_counter()
    await store.ping()
    stats = store.stats()
    depth = stats.get("write_queue_depth", 0)
    return {"observedValue": round((time.perf_counter() - started) * 1000, 2),
            "observedUnit": "ms", "writeQueueDepth": depth,
            "lastCommitMs": round(stats.get("last_commit_seconds", 0) * 1000, 2),
            "status": "pass" if depth < 5000 else "warn",
            **({} if depth < 5000 else {"gvCode": "STORE_BACKLOG"})}


async def _fanout_check(app: web.Application) -> CheckResult:
    fanout, hub = app[FANOUT], app[HUB]
    return {"observedValue": len(hub.sessions), "observedUnit": "connections",
            "directConnections": len(fanout.connections),
            "outboundBufferedBytes": fanout.buffered_bytes(), "inflightEvents": hub.inflight,
            "status": "pass"}


async def _loop_check(app: web.Application) -> CheckResult:
    lag = app[LOOP_LAG][0]
    slow = lag > 0.25
    return {"observedValue": round(lag * 1000, 1), "observedUnit": "ms",
            "status": "warn" if slow else "pass", **({"gvCode": "LOOP_LAG"} if slow else {})}
