"""Plugin loading, the narrow context plugins get, and contained hook calls.

Built-in features (the REST API, moderation, the Chatwoot bridge, ...) are plugins on the same
hooks as third-party ones; the core names them only as dotted module paths, so it never imports a
feature and any of them can be switched off with ``GIGVORA_PLUGINS_DISABLE``. Third-party plugins
load from the entry-point group ``gigvora.plugins`` when their name is in ``GIGVORA_PLUGINS_ALLOW``.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Literal

import pluggy

from realtime import hookspecs
from realtime.config import Settings
from realtime.errors import AppError
from realtime.tasks import resume

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "gigvora.plugins"
#: Bound of ``gigvora_startup``/``gigvora_shutdown`` calls (they may load models or connect).
BOOT_HOOK_TIMEOUT_S = 60.0
#: Built-in features, by plugin name → module. Order is registration order.
BUILTIN_PLUGINS: dict[str, str] = {
    "api": "api.plugin",
    "moderation": "moderation.plugin",
    "rooms": "rooms.plugin",
    "chatwoot_bridge": "chatwoot_bridge.plugin",
    "web_shell": "web_shell.plugin",
}


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a pre-store hook decided about a message (see ``gigvora_message_pre_store``)."""

    action: Literal["allow", "transform", "hold", "block"]
    text: str | None = None
    code: str = "moderation_blocked"
    reason: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class PluginContext:
    """The façade a plugin may use. Nothing else of the server is reachable from a plugin."""

    settings: Settings
    log: logging.Logger
    metrics: Any
    store: Any
    authenticate: Callable[[Any], Any]
    emit: Callable[..., Awaitable[None]]
    add_event: Callable[..., None] = field(default=lambda *a, **k: None)
    add_namespace: Callable[..., None] = field(default=lambda *a, **k: None)
    disconnect_user: Callable[..., Awaitable[int]] = field(default=None)  # type: ignore[assignment]
    leave_room: Callable[..., Awaitable[int]] = field(default=None)  # type: ignore[assignment]
    #: ``on_connect(namespace, listener)``: ``await listener(sid, principal, namespace)``
    #: after each accepted connection of that namespace (a failing listener is logged; the
    #: connection stays).
    on_connect: Callable[..., None] = field(default=lambda *a, **k: None)
    #: ``await enter_room(sid, room, namespace="/")``: put one connection in a Socket.IO room
    #: (e.g. from an ``on_connect`` listener); ``emit(..., to=room)`` reaches it on every node.
    enter_room: Callable[..., Awaitable[None]] = field(default=None)  # type: ignore[assignment]
    #: ``on_disconnect(namespace, listener)``: ``await listener(sid, principal, namespace)``
    #: after a connection of that namespace is gone (any cause).
    on_disconnect: Callable[..., None] = field(default=lambda *a, **k: None)
    #: ``await audit(actor_id, action, target_type, target_id, reason="", details=None)``:
    #: append to the tamper-evident audit trail (no-op on a store without one).
    audit: Callable[..., Awaitable[Any]] = field(default=None)  # type: ignore[assignment]
    #: The plugins' parts of the OpenAPI document (hook ``gigvora_openapi``), set at boot.
    openapi_parts: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def build_plugin_manager(settings: Settings, extra_plugins: list[Any] | None = None
                         ) -> pluggy.PluginManager:
    """A plugin manager with the built-in, allowed third-party and explicit plugins."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for name, module_path in BUILTIN_PLUGINS.items():
        if name not in settings.plugins_disable:
            module = importlib.import_module(module_path)
            # A module with ``make_plugin()`` gets one fresh instance per app (no shared state).
            factory = getattr(module, "make_plugin", None)
            pm.register(factory() if factory else module, name=name)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in settings.plugins_allow and ep.name not in settings.plugins_disable:
            pm.register(ep.load(), name=ep.name)
        else:
            log.info("plugin not allowed, skipped", extra={"plugin": ep.name})
    for plugin in extra_plugins or []:
        pm.register(plugin)
    return pm


class HookRunner:
    """Calls hook implementations one by one, timed, bounded, logged and counted."""

    def __init__(self, pm: pluggy.PluginManager, timeout: float, metrics: Any,
                 checks_concurrency: int = 1024, checks_queue: int = 1024) -> None:
        self._pm = pm
        self._timeout = timeout
        self._metrics = metrics
        #: Admission to the pre-store chain: at most ``checks_concurrency`` messages in it, at
        #: most ``checks_queue`` waiting; beyond that ``unavailable`` at once. The hook timeout
        #: starts when a message is admitted, so waiting in line is not counted as a failure
        #: (past saturation the admitted keep finishing in time: goodput holds).
        self._checks_concurrency = checks_concurrency
        self._checks_queue = checks_queue
        self._checks_slots: asyncio.Semaphore | None = None
        self.checks_waiting = 0
        self._impls: dict[str, list[Any]] = {}
        self._timers: dict[tuple[str, str], Any] = {}
        self.ctx: PluginContext | None = None

    def impls(self, hook: str) -> list[Any]:
        """The implementations of ``hook`` (cached: plugins are fixed after boot)."""
        found = self._impls.get(hook)
        if found is None:
            found = list(reversed(getattr(self._pm.hook, hook).get_hookimpls()))
            self._impls[hook] = found
        return found

    def has(self, hook: str) -> bool:
        """True if any plugin implements ``hook``."""
        return bool(self.impls(hook))

    def collect(self, hook: str, **kwargs: Any) -> list[Any]:
        """Call a sync list-returning hook on every plugin; concatenate what they return."""
        items: list[Any] = []
        for impl in self.impls(hook):
            try:
                items.extend(impl.function(**self._args(impl, kwargs)) or [])
            except Exception:
                self._failed(impl, hook, "error")
        return items

    def gather(self, hook: str, **kwargs: Any) -> list[Any]:
        """Call a sync hook on every plugin; what each returns (``None`` left out)."""
        items: list[Any] = []
        for impl in self.impls(hook):
            try:
                found = impl.function(**self._args(impl, kwargs))
            except Exception:
                self._failed(impl, hook, "error")
                continue
            if found is not None:
                items.append(found)
        return items

    async def notify(self, hook: str, timeout: float | None = None, **kwargs: Any) -> None:
        """Call every implementation; failures and timeouts are contained. ``timeout``
        overrides the per-call bound (boot hooks get longer: they may load models)."""
        for impl in self.impls(hook):
            try:
                await self._call(impl, hook, kwargs, timeout)
            except (TimeoutError, Exception) as error:
                self._failed(impl, hook, "timeout" if isinstance(error, TimeoutError) else "error")

    async def pre_store(self, draft: dict[str, Any], user: dict[str, Any]) -> Verdict:
        """Run the veto chain once admitted (see ``__init__``): transforms feed forward,
        hold/block win, failure refuses."""
        if self._checks_slots is None:
            self._checks_slots = asyncio.Semaphore(self._checks_concurrency)
        slots = self._checks_slots
        if slots.locked() and self.checks_waiting >= self._checks_queue:
            self._metrics.plugin_failures.labels("core", "gigvora_message_pre_store",
                                                 "saturated").inc()
            raise AppError("unavailable", "message checks are saturated, retry later",
                           retry_after_ms=250)
        self.checks_waiting += 1
        try:
            await slots.acquire()
        finally:
            self.checks_waiting -= 1
        try:
            return await self._pre_store(draft, user)
        finally:
            slots.release()

    async def _pre_store(self, draft: dict[str, Any], user: dict[str, Any]) -> Verdict:
        final: Verdict = Verdict("allow")
        for impl in self.impls("gigvora_message_pre_store"):
            try:
                verdict = await self._call(impl, "gigvora_message_pre_store",
                                           {"draft": draft, "user": user})
            except AppError:
                raise  # a deliberate refusal with its own code, not a failure
            except (TimeoutError, Exception) as error:
                kind = "timeout" if isinstance(error, TimeoutError) else "error"
                self._failed(impl, "gigvora_message_pre_store", kind)
                raise AppError("unavailable", "message checks are unavailable, retry later",
                               retry_after_ms=1000) from None
            if verdict is None or verdict.action == "allow":
                continue
            if verdict.action == "transform" and verdict.text is not None:
                draft = {**draft, "text": verdict.text}
                final = verdict
                continue
            return verdict
        return final

    async def _call(self, impl: Any, hook: str, kwargs: dict[str, Any],
                    timeout: float | None = None) -> Any:
        started = time.perf_counter()
        try:
            result = impl.function(**self._args(impl, kwargs))
            if inspect.iscoroutine(result):
                # stepped by hand first: most calls (moderation's rules without an ML tier)
                # finish without suspending and need no timer; one that suspends is finished
                # under the timeout, in this task
                try:
                    awaited = result.send(None)
                except StopIteration as done:
                    return done.value
                async with asyncio.timeout(timeout or self._timeout):
                    return await resume(result, awaited)
            if inspect.isawaitable(result):
                async with asyncio.timeout(timeout or self._timeout):
                    result = await result
            return result
        finally:
            self._timer(impl.plugin_name, hook).observe(time.perf_counter() - started)

    def _timer(self, plugin: str, hook: str) -> Any:
        """The hook-duration histogram child of ``(plugin, hook)`` (looked up once)."""
        timer = self._timers.get((plugin, hook))
        if timer is None:
            timer = self._timers[(plugin, hook)] = self._metrics.plugin_hook_seconds.labels(
                plugin, hook)
        return timer

    def _failed(self, impl: Any, hook: str, kind: str) -> None:
        log.exception("plugin hook failed", extra={"plugin": impl.plugin_name, "hook": hook,
                                                   "kind": kind})
        self._metrics.plugin_failures.labels(impl.plugin_name, hook, kind).inc()


    def _args(self, impl: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Only the arguments the implementation asks for (pluggy's own convention)."""
        kwargs = {"ctx": self.ctx, **kwargs}
        return {name: kwargs[name] for name in impl.argnames if name in kwargs}
