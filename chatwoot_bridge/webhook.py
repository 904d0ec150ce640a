"""``POST /integrations/chatwoot/webhook``: verify, deduplicate, store, answer fast.

Chatwoot signs ``"<X-Chatwoot-Timestamp>.<raw body>"`` with HMAC-SHA256 and the webhook's secret
(CONTRACT.md §6). The signature is checked over the RAW bytes as received: Rails escapes ``<``,
``>`` and ``&`` in JSON, so re-serialising a parsed body would not reproduce them. Timestamps more
than five minutes away are refused, and each ``X-Chatwoot-Delivery`` id is accepted once (ids are
kept a day, far beyond the freshness window). An accepted delivery is stored durably and
answered ``202``; the bridge's delivery worker processes it afterwards (Chatwoot gives up after
5 s and never retries account or API-inbox webhooks, so nothing slow happens before the answer).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from realtime.errors import AppError
from realtime.ops_http import json_response

log = logging.getLogger(__name__)

PATH = "/integrations/chatwoot/webhook"
MAX_SKEW_S = 300
DELIVERY_TTL_S = 86_400.0
MAX_DELIVERY_ID = 128


def signature(secret: str, timestamp: str, raw: bytes) -> str:
    """``sha256=`` + lowercase hex HMAC-SHA256(secret, ``"<timestamp>.<raw>"``)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + raw, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str | None, headers: Any, raw: bytes, now: float | None = None) -> None:
    """Raise ``AppError`` unless the delivery is signed by ``secret`` and fresh. With no secret
    configured (dev only: production refuses to boot without one) nothing is checked."""
    if not secret:
        return
    stamp = headers.get("X-Chatwoot-Timestamp")
    given = headers.get("X-Chatwoot-Signature")
    if not stamp or not given:
        raise AppError("unauthorized", "missing X-Chatwoot-Signature or X-Chatwoot-Timestamp")
    expected = signature(secret, stamp, raw)
    if not hmac.compare_digest(expected.encode(), given.strip().lower().encode()):
        raise AppError("unauthorized", "invalid webhook signature")
    try:
        sent = int(stamp)
    except ValueError:
        raise AppError("invalid", "X-Chatwoot-Timestamp must be unix seconds") from None
    if abs((time.time() if now is None else now) - sent) > MAX_SKEW_S:
        raise AppError("unauthorized", "stale webhook timestamp (more than 5 minutes away)")


def event_name(raw: bytes) -> str:
    """The ``event`` of a delivery body; ``invalid`` unless it is a JSON object with one."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise AppError("invalid", "body must be a JSON object") from None
    if not isinstance(body, dict) or not isinstance(body.get("event"), str):
        raise AppError("invalid", "body must be a JSON object with an event")
    return str(body["event"])[:64]


class WebhookReceiver:
    """The view. ``accept(delivery_id, event, raw)`` stores the delivery durably and returns
    False when the id was seen before; ``wake()`` nudges the delivery worker."""

    def __init__(self, secret: str | None,
                 accept: Callable[[str, str, bytes], Awaitable[bool]],
                 wake: Callable[[], None], metrics: Any = None) -> None:
        self.secret = secret
        self.accept = accept
        self.wake = wake
        self.metrics = metrics

    def routes(self) -> list[web.RouteDef]:
        """The route table."""
        return [web.post(PATH, self.receive)]

    async def receive(self, request: web.Request) -> web.Response:
        """Verify, deduplicate, store; answer 202 (processing happens after)."""
        raw = await request.read()  # the exact bytes that were signed
        try:
            verify(self.secret, request.headers, raw)
            delivery_id = request.headers.get("X-Chatwoot-Delivery", "").strip()
            if not delivery_id or len(delivery_id) > MAX_DELIVERY_ID:
                raise AppError("invalid", "missing or oversized X-Chatwoot-Delivery")
            event = event_name(raw)
            if not await self.accept(delivery_id, event, raw):
                raise AppError("conflict", "delivery already received", delivery=delivery_id)
        except AppError as error:
            self._count(error.code)
            log.warning("chatwoot webhook refused", extra={"code": error.code,
                                                           "reason": error.message})
            raise
        self._count("accepted")
        self.wake()
        return json_response({"status": "accepted", "delivery": delivery_id}, status=202)

    def _count(self, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.labels(outcome).inc()
