"""The rooms REST API's part of the OpenAPI document (hook ``gigvora_openapi``), from the models
``rooms/plugin.py``'s views validate with."""

from __future__ import annotations

from typing import Any

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
from rooms.sessions import SessionCreate, SessionQuery


def _op(summary: str, description: str, result: dict[str, Any], codes: tuple[int, ...],
        status: int = 200, **extra: Any) -> dict[str, Any]:
    return {"summary": summary, "description": description, "security": BEARER,
            "tags": ["rooms"], "responses": {**ok(result, status), **errors(401, 503, *codes)},
            **extra}


def openapi_part() -> dict[str, Any]:
    """``{"paths", "schemas"}`` of ``/api/v1/rooms...``."""
    def listing(key: str) -> dict[str, Any]:
        return {"type": "object", "required": [key], "properties": {
            key: {"type": "array", "items": OBJECT}}}
    room_id = {"type": "string", "minLength": 1, "maxLength": 64}
    paths: dict[str, Any] = {
        "/api/v1/rooms": {"get": _op(
            "Open rooms with their participant counts",
            "Roles: moderator, admin or operator.", listing("rooms"), (403,))},
        "/api/v1/rooms/sessions": {
            "get": _op("Scheduled sessions not over yet, in channels the caller reads",
                       "Any signed-in user.", listing("sessions"), (400, 403, 404, 413),
                       parameters=query_params(SessionQuery)),
            "post": _op("Schedule a session (its room opens at starts_at for its host)",
                        "Roles: member (hosts their own), moderator or admin (anyone's, with "
                        "`host`). 400 `invalid` also when the window is over already or "
                        "starts more than a year ahead; 409 `conflict` when the room is "
                        "taken then; 404 for an unknown channel.", OBJECT,
                        (400, 403, 404, 409, 413), 201,
                        requestBody=body("SessionCreate"))},
        "/api/v1/rooms/sessions/{session}": {"delete": _op(
            "Cancel a session", "Its host or creator, a moderator or an admin.", OBJECT,
            (403, 404, 409), parameters=[path_param("session", {**room_id})])},
        "/api/v1/rooms/{room}/telemetry": {"get": _op(
            "Live telemetry of one open room",
            "The room's hosts; roles moderator, admin or operator.", OBJECT, (403, 404),
            parameters=[path_param("room", room_id)])},
    }
    paths["/api/v1/rooms/sessions/{session}"]["delete"]["operationId"] = "cancelRoomSession"
    linked(paths["/api/v1/rooms/sessions"]["post"]["responses"], 201, "cancelRoomSession",
           "session")
    return {"paths": paths, "schemas": model_schemas(SessionCreate)}
