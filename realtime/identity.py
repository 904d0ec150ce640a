"""Access tokens (JWT) and the authenticated principal.

Only allow-listed algorithms are accepted, ``exp`` is required, and HS256 keys must be long enough.
A previous key may be configured during key rotation and is accepted for verification only.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import jwt

from realtime.errors import AppError

ALGORITHMS = ["HS256"]
ROLES = frozenset({"member", "agent", "moderator", "admin", "operator"})
MAX_TOKEN_CHARS = 8192


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: user id, display name, roles and token expiry (epoch seconds)."""

    sub: str
    name: str
    roles: frozenset[str]
    exp: float
    claims: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def has_any(self, roles: Iterable[str]) -> bool:
        """True if the principal holds at least one of ``roles``."""
        return not self.roles.isdisjoint(roles)

    @property
    def expired(self) -> bool:
        """True once the token's ``exp`` has passed."""
        return time.time() >= self.exp

    def public(self) -> dict[str, str]:
        """The ``{"id", "name"}`` shape used in events."""
        return {"id": self.sub, "name": self.name}


class TokenService:
    """Mints and verifies access tokens with the configured key(s)."""

    def __init__(self, secret: str, previous_secret: str | None = None) -> None:
        self._keys = [secret] + ([previous_secret] if previous_secret else [])

    def mint(self, sub: str, name: str, roles: list[str], ttl: int = 3600) -> str:
        """A signed token for ``sub`` valid for ``ttl`` seconds."""
        unknown = set(roles) - ROLES
        if unknown:
            raise AppError("invalid", f"unknown roles: {', '.join(sorted(unknown))}")
        now = int(time.time())
        claims = {"sub": sub, "name": name, "roles": roles, "iat": now, "exp": now + ttl}
        return jwt.encode(claims, self._keys[0], algorithm="HS256")

    def verify(self, token: Any) -> Principal:
        """The principal of a valid token; AppError('unauthorized') otherwise."""
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
            raise AppError("unauthorized", "a bearer token is required")
        claims = self._decode(token)
        return _principal(claims)

    def _decode(self, token: str) -> dict[str, Any]:
        last: Exception | None = None
        for key in self._keys:
            try:
                return jwt.decode(token, key, algorithms=ALGORITHMS,
                                  options={"require": ["exp", "sub"]}, leeway=5)
            except jwt.InvalidSignatureError as error:
                last = error
            except jwt.ExpiredSignatureError:
                raise AppError("unauthorized", "token expired") from None
            except jwt.PyJWTError as error:
                raise AppError("unauthorized", f"invalid token: {error}") from None
        raise AppError("unauthorized", f"invalid token: {last}")


def _principal(claims: dict[str, Any]) -> Principal:
    roles = claims.get("roles", ["member"])
    name = claims.get("name") or claims["sub"]
    if (not isinstance(roles, list) or not all(isinstance(r, str) for r in roles)
            or not isinstance(claims["sub"], str) or not isinstance(name, str)
            or not 0 < len(claims["sub"]) <= 128):
        raise AppError("unauthorized", "invalid token claims")
    return Principal(sub=claims["sub"], name=name[:128], roles=frozenset(roles) & ROLES,
                     exp=float(claims["exp"]), claims=claims)


def bearer_token(header: str | None) -> str | None:
    """The token from an ``Authorization: Bearer …`` header value, or None."""
    if header and header[:7].lower() == "bearer ":
        return header[7:].strip()
    return None
