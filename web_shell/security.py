"""Response hardening, CSRF tokens and Origin checks for the web shell's own responses.

The headers are set per response by the shell's views, never globally: the JSON API and the
Socket.IO endpoint keep their own policies.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from urllib.parse import urlsplit

from aiohttp import web

#: No inline script or style anywhere: every script and stylesheet is a file under /static.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; frame-ancestors 'none'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'")
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "geolocation=(), payment=(), usb=()",
}


def harden(response: web.StreamResponse, *, cache: str = "no-store") -> web.StreamResponse:
    """Add the shell's security headers (and a cache policy) to one of its own responses."""
    response.headers.update(PAGE_HEADERS)
    response.headers["Cache-Control"] = cache
    return response


class CsrfTokens:
    """Signed double-submit tokens (OWASP): ``HMAC(key, nonce | session binding)``.

    The nonce lives in its own cookie; the binding is a digest of the session cookie (empty when
    signed out), so a token minted for one session is useless in another and a token planted
    without knowing the key is refused.
    """

    def __init__(self, key: bytes) -> None:
        self._key = key

    @staticmethod
    def new_nonce() -> str:
        """A fresh random nonce for the CSRF cookie."""
        return secrets.token_urlsafe(24)

    def token(self, nonce: str, binding: str) -> str:
        """The form token for ``nonce`` and the session ``binding``."""
        mac = hmac.new(self._key, f"{nonce}|{binding}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def valid(self, given: str | None, nonce: str | None, binding: str) -> bool:
        """True when ``given`` is the token of ``nonce`` and ``binding`` (constant time)."""
        if not given or not nonce:
            return False
        return hmac.compare_digest(given.encode(), self.token(nonce, binding).encode())


def derive_key(secret: str, purpose: str) -> bytes:
    """A key for one purpose derived from the server secret (never the secret itself)."""
    return hmac.new(secret.encode(), f"gigvora web shell: {purpose}".encode(),
                    hashlib.sha256).digest()


def binding_of(session_value: str | None) -> str:
    """What a CSRF token is tied to: a digest of the session cookie ("" when signed out)."""
    if not session_value:
        return ""
    return hashlib.sha256(session_value.encode()).hexdigest()


def same_origin(request: web.Request, allowed: Iterable[str] = ()) -> bool:
    """False when the browser says the request comes from another site.

    Checks ``Origin`` (sent on cross-origin requests and on same-origin non-GET ones) against
    the request's own host and the configured allowed origins, then ``Sec-Fetch-Site`` when no
    Origin was sent. A request with neither header (curl, old browsers) passes; callers that
    change state also need a CSRF token or a JSON content type.
    """
    origin = request.headers.get("Origin")
    if origin is not None:
        if origin in allowed:
            return True
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and parts.netloc == request.host
    return request.headers.get("Sec-Fetch-Site", "same-origin") in ("same-origin", "none")
