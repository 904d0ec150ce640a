"""Sign-in and sessions: ``/login`` (dev personas or a token), ``/session`` (the JSON token
exchange of PROTOCOL.md), ``/logout`` and ``/session/socket-token``."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from realtime.errors import AppError
from realtime.identity import Principal
from web_shell.security import same_origin
from web_shell.shell import Shell, safe_next


def user_json(who: Principal) -> dict[str, Any]:
    """The signed-in user as the session endpoints show it."""
    return {"id": who.sub, "name": who.name, "roles": sorted(who.roles)}


def json_reply(body: Any, status: int = 200) -> web.Response:
    """A JSON answer that no cache keeps and no browser sniffs."""
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json",
                        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})


class AuthViews:
    """The sign-in page and the session endpoints."""

    def __init__(self, shell: Shell) -> None:
        self.shell = shell
        self.sessions = shell.sessions

    def routes(self) -> list[web.RouteDef]:
        """The route table."""
        return [web.get("/login", self.login_page), web.post("/login", self.login_submit),
                web.post("/session", self.session_create),
                web.delete("/session", self.session_delete),
                web.get("/session/socket-token", self.socket_token),
                web.post("/logout", self.logout)]

    async def login_page(self, request: web.Request) -> web.Response:
        """``GET /login``: personas in dev, the token form always."""
        if self.sessions.principal(request) is not None:
            raise web.HTTPSeeOther(safe_next(request.query.get("next")))
        return self._login(request, error=None)

    def _login(self, request: web.Request, error: str | None, status: int = 200) -> web.Response:
        return self.shell.page(request, "login.html", {
            "personas": list(self.sessions.personas.values()), "error": error,
            "next": safe_next(request.query.get("next"))}, status=status)

    async def login_submit(self, request: web.Request) -> web.Response:
        """``POST /login`` (form): sign in as a persona (dev) or with an access token."""
        form = await self.shell.form(request)
        if form is None:
            return self.shell.forbidden_form(request)
        persona, token = form.get("persona"), form.get("token")
        try:
            if isinstance(persona, str) and persona:
                token = self.sessions.persona_token(persona)
            if not isinstance(token, str) or not token.strip():
                raise AppError("unauthorized", "enter an access token")
            response = web.HTTPSeeOther(safe_next(str(form.get("next") or "/")))
            self.sessions.start(response, token.strip())
        except AppError as error:
            message = "That access token is not valid or has expired."
            if error.code == "not_found":
                message = "That persona does not exist."
            return self._login(request, error=message, status=401)
        raise response

    async def session_create(self, request: web.Request) -> web.Response:
        """``POST /session`` ``{"token"}``: exchange an access token for the session cookie."""
        self._same_site(request)
        if request.content_type != "application/json":
            raise AppError("invalid", "send the token as application/json")
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            raise AppError("invalid", "body must be a JSON object") from None
        token = body.get("token") if isinstance(body, dict) else None
        if not isinstance(token, str):
            raise AppError("invalid", "expected {\"token\": \"<jwt>\"}")
        response = json_reply({})
        who = self.sessions.start(response, token)
        response.body = orjson.dumps({"user": user_json(who), "expires_at": int(who.exp)})
        return response

    async def session_delete(self, request: web.Request) -> web.Response:
        """``DELETE /session``: sign out."""
        self._same_site(request)
        response = web.Response(status=204, headers={"Cache-Control": "no-store"})
        self.sessions.end(response)
        return response

    async def logout(self, request: web.Request) -> web.Response:
        """``POST /logout`` (the sign-out button's form, CSRF-protected)."""
        if await self.shell.form(request) is None:
            return self.shell.forbidden_form(request)
        response = web.HTTPSeeOther("/login")
        self.sessions.end(response)
        raise response

    async def socket_token(self, request: web.Request) -> web.Response:
        """``GET /session/socket-token``: a short-lived token for the page's Socket.IO auth."""
        self._same_site(request)
        who = self.sessions.principal(request)
        if who is None:
            raise AppError("unauthorized", "not signed in")
        token, expires_at = self.sessions.socket_token(who)
        return json_reply({"token": token, "expires_at": expires_at, "user": user_json(who)})

    def _same_site(self, request: web.Request) -> None:
        if not same_origin(request, self.shell.settings.cors_origins):
            raise AppError("forbidden", "cross-origin requests are refused")
