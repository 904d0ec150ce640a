"""The Chatwoot bridge's part of the OpenAPI document (hook ``gigvora_openapi``): the support
analytics (``chatwoot_bridge/analytics.py``) and the webhook receiver
(``chatwoot_bridge/webhook.py``). Only while the bridge is configured."""

from __future__ import annotations

from typing import Any

from chatwoot_bridge import analytics, webhook
from realtime.openapi_parts import BEARER, OBJECT, errors, ok, query_params


def _header(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": True, "description": description,
            "schema": schema}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "required": list(properties) if required is None else required,
            "properties": properties}


def _figures() -> dict[str, Any]:
    """Volumes, times and breaches (overall, and per agent / team)."""
    seconds = _nullable({"type": "number"})
    durations = _object({
        "count": {"type": "integer", "minimum": 0},
        "median_s": seconds, "p90_s": seconds,
        "business_median_s": {**seconds, "description": "open seconds of the business-hours "
                              "calendar (GIGVORA_CHATWOOT_BUSINESS_HOURS; always open: the "
                              "wall-clock figure)"},
        "business_p90_s": seconds})
    count = {"type": "integer", "minimum": 0}
    return {"conversations": count, "resolved": count, "first_response": durations,
            "resolution": durations,
            "breaches": _object({"total": count, "first_response": count,
                                 "next_response": count, "resolution": count})}


def _report() -> dict[str, Any]:
    figures = _figures()
    person = _nullable(_object({"id": {"type": "integer"},
                                "name": _nullable({"type": "string"})}))
    return _object({"from": {"type": "string", "format": "date-time"},
                    "to": {"type": "string", "format": "date-time"}, **figures,
                    "by_agent": {"type": "array", "items": _object({"assignee": person,
                                                                    **figures})},
                    "by_team": {"type": "array", "items": _object({"team": person,
                                                                   **figures})}})


def openapi_part() -> dict[str, Any]:
    """``{"paths", "schemas"}`` of ``/api/v1/support/analytics`` and the webhook."""
    report = _report()
    paths: dict[str, Any] = {
        analytics.PATH: {"get": {
            "summary": "Support volumes, first-response and resolution times (wall clock and "
                       "business hours), SLA breaches (overall, per agent, per team)",
            "description": "Role: admin (support supervisors). `from` and `to`: ISO 8601 "
                           "(naive means UTC) or epoch seconds, years 1970-9999. Default range: "
                           "the 7 days before `to` (default now); at most 366 days, `from` "
                           "before `to` (else 400 `invalid`).",
            "tags": ["support"], "security": BEARER,
            "parameters": query_params(analytics.AnalyticsQuery),
            "responses": {**ok(report), **errors(400, 401, 403, 413, 503)}}},
        webhook.PATH: {"post": {
            "summary": "Chatwoot webhook receiver (verified, deduplicated, stored; processed "
                       "after the answer)",
            "description": "Signed by Chatwoot: HMAC-SHA256 of `<timestamp>.<raw body>` with "
                           "the webhook secret, at most 5 minutes old. No bearer token.",
            "tags": ["support"], "security": [],
            "parameters": [
                _header("X-Chatwoot-Signature", "`sha256=` + hex HMAC",
                        {"type": "string", "pattern": "^sha256=[0-9a-f]{64}$"}),
                _header("X-Chatwoot-Timestamp", "unix seconds",
                        {"type": "string", "pattern": "^[0-9]{1,12}$"}),
                _header("X-Chatwoot-Delivery", "the delivery's unique id",
                        {"type": "string", "minLength": 1,
                         "maxLength": webhook.MAX_DELIVERY_ID})],
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": OBJECT}}},
            "responses": {"202": {"description": "accepted", "content": {"application/json": {
                "schema": {"type": "object", "required": ["status", "delivery"],
                           "properties": {"status": {"const": "accepted"},
                                          "delivery": {"type": "string"}}}}}},
                          **errors(400, 401, 409, 413, 503)}}},
    }
    return {"paths": paths, "schemas": {}}
