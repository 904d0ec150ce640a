"""The moderation REST API's part of the OpenAPI document (hook ``gigvora_openapi``), from the
models ``moderation/plugin.py``'s views validate with."""

from __future__ import annotations

from typing import Any

from moderation import models as m
from realtime.openapi_parts import (
    BEARER,
    OBJECT,
    body,
    errors,
    linked,
    model_schemas,
    ok,
    path_param,
    query_params,
)

BASE = "/api/v1/moderation"
STAFF = "Roles: moderator or admin."


def _op(summary: str, description: str, responses: tuple[int, ...], *, status: int = 200,
        request: str | None = None, params: list[dict[str, Any]] | None = None,
        result: dict[str, Any] | None = None) -> dict[str, Any]:
    """An operation answering ``result`` (an object) with ``status``, or the ``Error`` body
    with each of ``responses`` (401 and 503 always: token, and moderation starting)."""
    op: dict[str, Any] = {"summary": summary, "description": description, "security": BEARER,
                          "tags": ["moderation"],
                          "responses": {**ok(result or OBJECT, status),
                                        **errors(401, 503, *responses)}}
    if request:
        op["requestBody"] = body(request)
    if params:
        op["parameters"] = params
    return op


def _decision(summary: str, subject: str, description: str = STAFF) -> dict[str, Any]:
    """A staff decision on the path's ``{id}`` with a ``reason`` body."""
    return {"post": _op(summary, description, (400, 403, 404, 409, 413), request="ReasonIn",
                        params=[path_param("id")] + ([
                            path_param("decision", {"type": "string",
                                                    "enum": ["approve", "reject"]})]
                            if subject == "hold" else []))}


def openapi_part() -> dict[str, Any]:
    """``{"paths", "schemas"}`` of ``/api/v1/moderation/...``."""
    entries = {"type": "object", "required": ["entries"], "properties": {
        "entries": {"type": "array", "items": OBJECT}}}
    sanctions = {"type": "object", "required": ["sanctions"], "properties": {
        "sanctions": {"type": "array", "items": OBJECT}}}
    paths: dict[str, Any] = {
        f"{BASE}/queue": {"get": _op(
            "Moderation queue: pending holds, open reports and appeals", STAFF, (403,))},
        f"{BASE}/mine": {"get": _op(
            "The caller's own held messages, active sanctions and open appeals",
            "Any signed-in user.", ())},
        f"{BASE}/reports": {"post": _op(
            "Report a message", "Any signed-in user.", (400, 404, 409, 413), status=201,
            request="ReportIn")},
        f"{BASE}/appeals": {"post": _op(
            "Appeal one's own sanction or held message", "Any signed-in user (the subject's "
            "owner).", (400, 403, 404, 409, 413), status=201, request="AppealIn")},
        f"{BASE}/holds/{{id}}/{{decision}}": _decision(
            "Approve or reject a held message", "hold"),
        f"{BASE}/holds/{{id}}/erase": _decision(
            "Erase a held message's content (personal-data requests)", "erase",
            "Role: admin."),
        f"{BASE}/reports/{{id}}/resolve": _decision("Close a report", "report"),
        f"{BASE}/messages/{{id}}/delete": _decision("Delete a message", "message"),
        f"{BASE}/sanctions": {
            "post": _op("Mute, ban or kick a user", STAFF + " 400 `invalid` also for oneself, "
                        "or a kick without a channel.", (400, 403, 404, 409, 413),
                        status=201, request="SanctionIn"),
            "get": _op("Sanctions, newest first", STAFF, (403,), result=sanctions, params=[
                {"name": "user_id", "in": "query", "required": False,
                 "schema": {"type": "string"}}])},
        f"{BASE}/sanctions/{{id}}/lift": _decision("Lift a sanction", "sanction"),
        f"{BASE}/appeals/{{id}}/decide": {"post": _op(
            "Decide an appeal (a moderator other than the sanctioning one)", STAFF,
            (400, 403, 404, 409, 413), request="AppealDecisionIn",
            params=[path_param("id")])},
        f"{BASE}/policies": {"get": _op(
            "Every stored moderation policy, by channel (`*` is the default)", STAFF, (403,),
            result={"type": "object", "additionalProperties": {
                "$ref": "#/components/schemas/PolicyDoc"}})},
        f"{BASE}/policies/{{channel}}": {"put": _op(
            "Set a channel's moderation policy (`*` = the default)", STAFF,
            (400, 403, 413), request="PolicyDoc", params=[path_param("channel")],
            result={"$ref": "#/components/schemas/PolicyDoc"})},
        f"{BASE}/audit": {"get": _op(
            "The tamper-evident audit log, newest first, with filters", STAFF, (400, 403, 413),
            result=entries, params=query_params(m.AuditQuery))},
        f"{BASE}/audit/verify": {"get": _op(
            "Recompute the audit chain", STAFF, (403,))},
    }
    for source, target, operation_id in (
            ("reports", "reports/{id}/resolve", "resolveModerationReport"),
            ("sanctions", "sanctions/{id}/lift", "liftModerationSanction")):
        paths[f"{BASE}/{target}"]["post"]["operationId"] = operation_id
        linked(paths[f"{BASE}/{source}"]["post"]["responses"], 201, operation_id, "id")
    schemas = model_schemas(m.ReportIn, m.AppealIn, m.ReasonIn, m.SanctionIn, m.PolicyDoc)
    decision = m.AppealDecision.model_json_schema()
    schemas["AppealDecisionIn"] = {  # the path names the appeal
        **decision, "title": "AppealDecisionIn",
        "properties": {k: v for k, v in decision["properties"].items() if k != "id"},
        "required": [k for k in decision["required"] if k != "id"]}
    return {"paths": paths, "schemas": schemas}
