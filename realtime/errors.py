"""One error type for every refusal, mapped to Socket.IO acks and HTTP responses alike."""

from __future__ import annotations

from typing import Any

#: HTTP status per error code; the same codes appear in Socket.IO acks.
HTTP_STATUS: dict[str, int] = {
    "invalid": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "too_large": 413,
    "rate_limited": 429,
    "moderation_blocked": 422,
    "unavailable": 503,
    "internal": 500,
}


class AppError(Exception):
    """A refusal with a stable machine-readable ``code`` and a human message."""

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details

    @property
    def http_status(self) -> int:
        """The HTTP status that carries this error."""
        return HTTP_STATUS.get(self.code, 400)

    def to_dict(self) -> dict[str, Any]:
        """The error object of the public contract: ``{"code", "message", ...details}``."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        body.update(self.details)
        return body


def ok(data: Any) -> dict[str, Any]:
    """A successful Socket.IO acknowledgement."""
    return {"ok": True, "data": data}


def fail(error: AppError) -> dict[str, Any]:
    """A refused Socket.IO acknowledgement."""
    return {"ok": False, "error": error.to_dict()}
