"""Operations endpoints of the core: ``/healthz``, ``/readyz``, ``/metrics``; and the HTTP
middlewares (correlation ids, the one error shape)."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ValidationError

from realtime.errors import AppError
from realtime.hub import validation_error
from realtime.identity import Principal, TokenService, bearer_token
from realtime.observability import Metrics, correlation_id, new_correlation_id
from storage.base import StoreUnavailable

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: Who reads the readiness detail and the metrics: operators, and admins (who hold every other
#: staff power and reach the operator console; neither document carries user data or secrets).
OPS_ROLES = frozenset({"operator", "admin"})


def json_response(body: Any, status: int = 200, content_type: str = "application/json"
                  ) -> web.Response:
    """A JSON response encoded with orjson."""
    return web.Response(body=orjson.dumps(body), status=status, content_type=content_type)


def error_response(error: AppError) -> web.Response:
    """The one error shape of every endpoint: ``{"error": {"code", "message", ...}}``."""
    return json_response({"error": error.to_dict()}, status=error.http_status)


def authenticate(tokens: TokenService, request: web.Request) -> Principal:
    """The caller of an HTTP request (Bearer token); ``unauthorized`` otherwise."""
    return tokens.verify(bearer_token(request.headers.get("Authorization")))


def require(tokens: TokenService, request: web.Request, role: str | frozenset[str]
            ) -> Principal:
    """The caller, who must hold ``role`` (or one of a set of roles)."""
    who = authenticate(tokens, request)
    roles = frozenset({role}) if isinstance(role, str) else role
    if not who.has_any(roles):
        raise AppError("forbidden", "this endpoint needs the "
                       + " or ".join(sorted(roles)) + " role")
    return who


def make_middlewares(metrics: Metrics) -> list[Any]:
    """Correlation ids and the error shape, as aiohttp middlewares."""

    @web.middleware
    async def correlate(request: web.Request, handler: Handler) -> web.StreamResponse:
        cid = new_correlation_id(request.headers.get("X-Request-ID"))
        token = correlation_id.set(cid)
        try:
            response = await handler(request)
            response.headers["X-Request-ID"] = cid
            return response
        finally:
            correlation_id.reset(token)

    @web.middleware
    async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except AppError as error:
            status = error.http_status
            return error_response(error)
        except web.HTTPException as http:
            status = http.status
            if http.status < 400:
                raise
            code = {404: "not_found", 405: "invalid", 413: "too_large"}.get(http.status,
                                                                            "invalid")
            return error_response(AppError(code, http.reason))
        except StoreUnavailable as error:  # e.g. the disk is full
            status = 503
            log.warning("store refused a request", extra={"path": request.path,
                                                           "why": str(error)})
            return error_response(AppError("unavailable", "the store is unavailable; retry later"))
        except Exception:
            log.exception("request failed", extra={"path": request.path})
            return error_response(AppError("internal", "internal error"))
        finally:
            route = request.match_info.route.resource
            name = route.canonical if route is not None else "unmatched"
            metrics.http_requests.labels(request.method, name, str(status)).inc()

    return [correlate, errors]


class OpsViews:
    """``/healthz``, ``/readyz`` and ``/metrics``."""

    def __init__(self, tokens: TokenService, metrics: Metrics,
                 readiness: Callable[[], Awaitable[dict[str, Any]]],
                 refresh_gauges: Callable[[], None]) -> None:
        self.tokens = tokens
        self.metrics = metrics
        self.readiness = readiness
        self.refresh_gauges = refresh_gauges
        self.started = time.time()

    def routes(self) -> list[web.RouteDef]:
        """The route table."""
        return [web.get("/healthz", self.healthz), web.get("/readyz", self.readyz),
                web.get("/metrics", self.metrics_view)]

    async def healthz(self, request: web.Request) -> web.Response:
        """Liveness: the loop answers."""
        return json_response({"status": "pass"})

    async def readyz(self, request: web.Request) -> web.Response:
        """Readiness: status only, or the health+json detail for operators and admins."""
        detail = await self.readiness()
        status = 200 if detail["status"] in ("pass", "warn") else 503
        headers = {"Cache-Control": "no-store"}
        if not self._is_operator(request):
            return web.Response(body=orjson.dumps({"status": detail["status"]}), status=status,
                                content_type="application/json", headers=headers)
        detail["uptimeSeconds"] = round(time.time() - self.started, 1)
        return web.Response(body=orjson.dumps(detail), status=status, headers=headers,
                            content_type="application/health+json")

    def _is_operator(self, request: web.Request) -> bool:
        if "Authorization" not in request.headers:
            return False
        return authenticate(self.tokens, request).has_any(OPS_ROLES)

    async def metrics_view(self, request: web.Request) -> web.Response:
        """Prometheus text format (operator or admin token)."""
        require(self.tokens, request, OPS_ROLES)
        self.refresh_gauges()
        body = generate_latest(self.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def read_json(request: web.Request) -> Any:
    """The request body as JSON; ``invalid`` for anything else (including non-UTF-8)."""
    raw = await request.read()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise AppError("invalid", "body must be a JSON object") from None


def parse(model: type[BaseModel], data: Any) -> Any:
    """Validate ``data`` against ``model``; ``invalid``/``too_large`` with the fields."""
    if not isinstance(data, dict):
        raise AppError("invalid", "expected a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise validation_error(error) from None
