"""Browser sessions: the HttpOnly cookie holding a verified access token, dev personas, the
short-lived socket token and the CSRF cookie.

The cookie holds the access token itself (it is HttpOnly, so page scripts never see it); it
expires with the token, and an expired or tampered cookie simply means "signed out". Page
scripts get a separate token for the Socket.IO ``auth`` payload, valid for minutes only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from aiohttp import web

from realtime.config import Settings, resolve_jwt_secret
from realtime.errors import AppError
from realtime.identity import Principal, TokenService
from web_shell.security import CsrfTokens, binding_of, derive_key

#: Lifetime of a dev persona's session, and of the token page scripts use for sockets.
PERSONA_TTL_S = 8 * 3600
SOCKET_TOKEN_TTL_S = 600


@dataclass(frozen=True, slots=True)
class Persona:
    """A seeded dev identity offered on ``/login`` when ``GIGVORA_ENV=dev``."""

    id: str
    name: str
    roles: tuple[str, ...]
    summary: str


PERSONAS: tuple[Persona, ...] = (
    Persona("member-ada", "Ada Lovelace", ("member",), "Community member"),
    Persona("member-alan", "Alan Turing", ("member",), "Community member"),
    Persona("agent-grace", "Grace Hopper", ("member", "agent"), "Support agent"),
    Persona("moderator-katherine", "Katherine Johnson", ("member", "moderator"), "Moderator"),
    Persona("admin-margaret", "Margaret Hamilton", ("member", "admin"), "Administrator"),
    Persona("operator-radia", "Radia Perlman", ("member", "operator"), "Operator"),
)


class Sessions:
    """Reads, starts and ends browser sessions; mints socket tokens; issues CSRF tokens."""

    def __init__(self, settings: Settings) -> None:
        secret = resolve_jwt_secret(settings)
        previous = settings.jwt_previous_secret
        self.tokens = TokenService(secret, previous.get_secret_value() if previous else None)
        self.csrf = CsrfTokens(derive_key(secret, "csrf"))
        self.secure = settings.is_production
        # __Host- cookies must be Secure, host-only and Path=/ (production is served over TLS).
        prefix = "__Host-" if self.secure else ""
        self.cookie_name = prefix + "gv_session"
        self.csrf_cookie_name = prefix + "gv_csrf"
        self.personas = {p.id: p for p in PERSONAS} if settings.env == "dev" else {}

    # sessions ------------------------------------------------------------------------------
    def principal(self, request: web.Request) -> Principal | None:
        """The signed-in user of a request, or None (no, expired or invalid cookie)."""
        try:
            return self.tokens.verify(request.cookies.get(self.cookie_name))
        except AppError:
            return None

    def start(self, response: web.StreamResponse, token: str) -> Principal:
        """Verify ``token`` and store it in the session cookie; ``unauthorized`` if invalid."""
        who = self.tokens.verify(token)
        max_age = int(who.exp - time.time())
        if max_age <= 0:
            raise AppError("unauthorized", "token expired")
        response.set_cookie(self.cookie_name, token, max_age=max_age, path="/", httponly=True,
                            secure=self.secure, samesite="Lax")
        return who

    def end(self, response: web.StreamResponse) -> None:
        """Clear the session cookie."""
        response.del_cookie(self.cookie_name, path="/", secure=self.secure, httponly=True,
                            samesite="Lax")

    def persona_token(self, persona_id: str) -> str:
        """A fresh access token for a dev persona; ``not_found`` outside dev or if unknown."""
        persona = self.personas.get(persona_id)
        if persona is None:
            raise AppError("not_found", "no such persona")
        return self.tokens.mint(persona.id, persona.name, list(persona.roles),
                                ttl=PERSONA_TTL_S)

    def socket_token(self, who: Principal) -> tuple[str, int]:
        """A short-lived token for the session's user (never outliving the session)."""
        ttl = max(1, min(SOCKET_TOKEN_TTL_S, int(who.exp - time.time())))
        token = self.tokens.mint(who.sub, who.name, sorted(who.roles), ttl=ttl)
        return token, int(time.time()) + ttl

    # CSRF ----------------------------------------------------------------------------------
    def csrf_token(self, request: web.Request) -> tuple[str, str | None]:
        """The CSRF token for this page's forms, and the new nonce to set (None: keep the
        cookie's)."""
        nonce = request.cookies.get(self.csrf_cookie_name)
        fresh = None if nonce else self.csrf.new_nonce()
        token = self.csrf.token(nonce or fresh or "",
                                binding_of(request.cookies.get(self.cookie_name)))
        return token, fresh

    def set_csrf_nonce(self, response: web.StreamResponse, nonce: str) -> None:
        """Store a CSRF nonce cookie (HttpOnly: the server embeds tokens in its pages)."""
        response.set_cookie(self.csrf_cookie_name, nonce, path="/", httponly=True,
                            secure=self.secure, samesite="Lax")

    def csrf_ok(self, request: web.Request, given: str | None) -> bool:
        """True when ``given`` matches this browser's CSRF cookie and session."""
        return self.csrf.valid(given, request.cookies.get(self.csrf_cookie_name),
                               binding_of(request.cookies.get(self.cookie_name)))
