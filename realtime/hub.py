"""The one place socket events are parsed, authorised, limited, logged and answered.

Every handler is registered through :meth:`Hub.on`, which wraps it so that a missing or malformed
payload answers ``invalid``, oversized fields answer ``too_large``, a missing role answers
``forbidden``, an expired token answers ``unauthorized`` (and disconnects), limits answer
``rate_limited`` with ``retry_after_ms`` and nothing ever escapes as a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import socketio
from pydantic import BaseModel, ValidationError

from realtime.errors import AppError, fail, ok
from realtime.identity import Principal, TokenService
from realtime.limits import LocalLimiter, RedisLimiter
from realtime.observability import Metrics, correlation_id, new_correlation_id
from realtime.tasks import TaskOwner
from storage.base import StoreUnavailable

log = logging.getLogger(__name__)
_MISSING: Any = object()
Handler = Callable[[str, Principal, Any], Awaitable[Any]]
ConnectListener = Callable[[str, Principal, str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class EventSpec:
    """How one event is checked before its handler runs."""

    name: str
    model: type[BaseModel] | None
    roles: frozenset[str] | None
    limited: bool


def validation_error(error: ValidationError) -> AppError:
    """``too_large`` for over-long fields, ``invalid`` (with the failing fields) otherwise."""
    problems = error.errors(include_url=False, include_input=False, include_context=False)
    if any(p["type"] in ("string_too_long", "too_long") for p in problems):
        return AppError("too_large", "a field exceeds its size limit",
                        fields=[".".join(map(str, p["loc"])) for p in problems])
    return AppError("invalid", "payload does not match the event's schema",
                    fields=[{"field": ".".join(map(str, p["loc"])), "problem": p["msg"]}
                            for p in problems])


class Hub:
    """Sessions, connection admission and the event wrapper for every namespace."""

    def __init__(self, sio: socketio.AsyncServer, tokens: TokenService, metrics: Metrics,
                 limiter: LocalLimiter | RedisLimiter, max_connections: int,
                 tasks: TaskOwner) -> None:
        self.sio = sio
        self.tokens = tokens
        self.metrics = metrics
        self.limiter = limiter
        self.max_connections = max_connections
        self.tasks = tasks
        self.sessions: dict[tuple[str, str], Principal] = {}
        self.inflight = 0
        self.accepting = True
        self.events: dict[tuple[str, str], EventSpec] = {}
        #: Labelled metric children by event (and outcome): ``labels()`` per event is a lock,
        #: a tuple and a dict lookup in prometheus_client; these are looked up once.
        self._counted: dict[tuple[str, str], Any] = {}
        self._timed: dict[str, Any] = {}
        self._on_connect: dict[str, list[ConnectListener]] = {}
        self._on_disconnect: dict[str, list[ConnectListener]] = {}

    # connections ---------------------------------------------------------------------------
    def namespace(self, namespace: str, roles: Iterable[str] | None = None) -> None:
        """Accept authenticated connections on ``namespace`` (optionally only with ``roles``)."""
        needed = frozenset(roles) if roles else None

        async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
            principal = self._admit(auth, needed)
            self.sessions[(namespace, sid)] = principal
            await self.sio.enter_room(sid, "user:" + principal.sub, namespace=namespace)
            self.metrics.connections.labels(namespace).inc()
            for listener in self._on_connect.get(namespace, []):
                await listener(sid, principal, namespace)

        async def disconnect(sid: str, *_: Any) -> None:
            principal = self.sessions.pop((namespace, sid), None)
            if principal is None:
                return
            self.metrics.connections.labels(namespace).dec()
            for listener in self._on_disconnect.get(namespace, []):
                try:
                    await listener(sid, principal, namespace)
                except Exception:
                    log.exception("disconnect listener failed", extra={"sid": sid})

        async def unknown(event: str, sid: str, *_: Any) -> dict[str, Any]:
            self.metrics.events.labels("unknown", "not_found").inc()
            return fail(AppError("not_found", f"unknown event {event[:64]!r}"))

        self.sio.on("connect", namespace=namespace)(connect)
        self.sio.on("disconnect", namespace=namespace)(disconnect)
        self.sio.on("*", namespace=namespace)(unknown)

    def _admit(self, auth: Any, roles: frozenset[str] | None) -> Principal:
        def refuse(error: AppError) -> socketio.exceptions.ConnectionRefusedError:
            return socketio.exceptions.ConnectionRefusedError(error.code, error.to_dict())
        if not self.accepting:
            raise refuse(AppError("unavailable", "server is shutting down, reconnect elsewhere"))
        if len(self.sessions) >= self.max_connections:
            raise refuse(AppError("unavailable", "connection limit reached, retry later"))
        token = auth.get("token") if isinstance(auth, dict) else None
        try:
            principal = self.tokens.verify(token)
        except AppError as error:
            raise refuse(error) from None
        if roles is not None and not principal.has_any(roles):
            raise refuse(AppError("forbidden", "this namespace needs one of the roles "
                                  + ", ".join(sorted(roles))))
        return principal

    def on_connect(self, namespace: str, listener: ConnectListener) -> None:
        """Call ``listener(sid, principal, namespace)`` after each accepted connection."""
        self._on_connect.setdefault(namespace, []).append(listener)

    def on_disconnect(self, namespace: str, listener: ConnectListener) -> None:
        """Call ``listener(sid, principal, namespace)`` after each disconnection."""
        self._on_disconnect.setdefault(namespace, []).append(listener)

    # events --------------------------------------------------------------------------------
    def on(self, namespace: str, name: str, handler: Handler, model: type[BaseModel] | None,
           roles: Iterable[str] | None = None, limited: bool = False) -> None:
        """Register ``handler(sid, principal, payload)`` for event ``name``."""
        spec = EventSpec(name, model, frozenset(roles) if roles else None, limited)
        self.events[(namespace, name)] = spec

        async def wrapper(sid: str, data: Any = _MISSING, *extra: Any) -> dict[str, Any]:
            return await self._handle(namespace, spec, handler, sid, data, extra)

        self.sio.on(name, namespace=namespace)(wrapper)

    async def _handle(self, namespace: str, spec: EventSpec, handler: Handler, sid: str,
                      data: Any, extra: tuple[Any, ...]) -> dict[str, Any]:
        started = time.perf_counter()
        token = correlation_id.set(new_correlation_id())
        self.inflight += 1
        outcome = "ok"
        try:
            principal = self._check(namespace, spec, sid)
            payload = self._parse(spec, data, extra)
            if spec.limited:
                await self._limit(spec, principal)
            return ok(await handler(sid, principal, payload))
        except AppError as error:
            outcome = error.code
            if error.code == "unauthorized":
                self._disconnect_later(sid, namespace)
            return fail(error)
        except StoreUnavailable as error:  # e.g. the disk is full: a refusal, not a crash
            outcome = "unavailable"
            log.warning("store refused a write", extra={"event": spec.name, "why": str(error)})
            return fail(AppError("unavailable", "the store cannot take writes right now; "
                                 "nothing was changed, retry later"))
        except Exception:
            outcome = "internal"
            log.exception("event handler failed", extra={"sid": sid, "event": spec.name})
            return fail(AppError("internal", "internal error; nothing was changed"))
        finally:
            self.inflight -= 1
            self._account(spec.name, outcome, time.perf_counter() - started)
            correlation_id.reset(token)

    def _account(self, event: str, outcome: str, seconds: float) -> None:
        counter = self._counted.get((event, outcome))
        if counter is None:
            counter = self._counted[(event, outcome)] = self.metrics.events.labels(event, outcome)
        counter.inc()
        timer = self._timed.get(event)
        if timer is None:
            timer = self._timed[event] = self.metrics.ack_seconds.labels(event)
        timer.observe(seconds)

    def _check(self, namespace: str, spec: EventSpec, sid: str) -> Principal:
        principal = self.sessions.get((namespace, sid))
        if principal is None:
            raise AppError("unauthorized", "not connected")
        if principal.expired:
            raise AppError("unauthorized", "token expired; reconnect with a fresh token")
        if spec.roles is not None and not principal.has_any(spec.roles):
            raise AppError("forbidden", f"{spec.name} needs one of the roles "
                           + ", ".join(sorted(spec.roles)))
        return principal

    @staticmethod
    def _parse(spec: EventSpec, data: Any, extra: tuple[Any, ...]) -> Any:
        if spec.model is None:
            return None if data is _MISSING else data
        if data is _MISSING or extra:
            raise AppError("invalid", f"{spec.name} takes exactly one payload object")
        if not isinstance(data, dict):
            raise AppError("invalid", f"{spec.name} payload must be an object")
        try:
            return spec.model.model_validate(data)
        except ValidationError as error:
            raise validation_error(error) from None

    async def _limit(self, spec: EventSpec, principal: Principal) -> None:
        retry_after = await self.limiter.acquire(principal.sub)
        if retry_after:
            self.metrics.rate_limited.labels(spec.name).inc()
            raise AppError("rate_limited", "too many messages; slow down",
                           retry_after_ms=retry_after)

    def _disconnect_later(self, sid: str, namespace: str) -> None:
        self.tasks.spawn(self.sio.disconnect(sid, namespace=namespace), name="expired-disconnect")

    async def disconnect_expired(self, interval: float = 15.0) -> None:
        """Forever: disconnect sockets whose token expired (idle ones included)."""
        while True:
            await asyncio.sleep(interval)
            expired = [(ns, sid) for (ns, sid), who in self.sessions.items() if who.expired]
            for namespace, sid in expired:
                await self.sio.disconnect(sid, namespace=namespace)
            if expired:
                log.info("expired sessions disconnected", extra={"count": len(expired)})

    def principal(self, namespace: str, sid: str) -> Principal | None:
        """The authenticated principal of a connected socket."""
        return self.sessions.get((namespace, sid))
