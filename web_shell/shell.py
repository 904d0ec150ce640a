"""The web shell of one app: its sessions, templates and acknowledgements, plus the helpers
every view uses (render a page, require a signed-in user, check a form's CSRF token)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from realtime.identity import Principal
from realtime.plugins import PluginContext
from web_shell.bubble import bubble_context
from web_shell.guidelines import ACKS_FILE, POLICY_VERSION, GuidelineAcks
from web_shell.rendering import Renderer
from web_shell.security import same_origin
from web_shell.sessions import Sessions

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


class Shell:
    """Everything the views share; one per app (plugins keep no module-level state)."""

    def __init__(self, ctx: PluginContext, policy_version: str = POLICY_VERSION) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.sessions = Sessions(ctx.settings)
        self.renderer = Renderer()
        self.acks = GuidelineAcks(ctx.settings.data_dir / ACKS_FILE, policy_version)

    @property
    def chat(self) -> Any:
        """The chat service, or None while the server is still booting."""
        return self.ctx.extra.get("chat")

    def page(self, request: web.Request, template: str, context: Mapping[str, Any],
             *, status: int = 200) -> web.Response:
        """Render ``template`` with the user's CSRF token (setting its nonce cookie if new)."""
        token, fresh_nonce = self.sessions.csrf_token(request)
        bubble = bubble_context(self.ctx, template, context.get("user"))
        response = self.renderer.page(template, request, {**context, "csrf_token": token,
                                                          "support_bubble": bubble},
                                      status=status)
        if fresh_nonce:
            self.sessions.set_csrf_nonce(response, fresh_nonce)
        return response

    def user_or_redirect(self, request: web.Request) -> Principal:
        """The signed-in user; otherwise redirect to ``/login`` (coming back here after)."""
        who = self.sessions.principal(request)
        if who is None:
            target = request.path_qs
            query = "" if target == "/" else "?" + urlencode({"next": target})
            raise web.HTTPSeeOther("/login" + query)
        return who

    def user_with_role(self, request: web.Request, roles: Iterable[str], page: str
                       ) -> Principal | web.Response:
        """The signed-in user if they hold any of ``roles``; a redirect to ``/login`` when
        signed out; otherwise the 403 page (a response to return) naming who may open it."""
        who = self.user_or_redirect(request)
        if not who.has_any(roles):
            return self.page(request, "error.html", {
                "user": who, "title": "Not allowed",
                "message": f"The {page} is only open to {' and '.join(sorted(roles))}s. "
                           "Ask an administrator if you need access."}, status=403)
        return who

    async def form(self, request: web.Request) -> Mapping[str, Any] | None:
        """The posted form if it carries a valid CSRF token and comes from this site."""
        form = await request.post()
        given = request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD)
        if not same_origin(request, self.settings.cors_origins):
            return None
        if not self.sessions.csrf_ok(request, given if isinstance(given, str) else None):
            return None
        return form

    def forbidden_form(self, request: web.Request) -> web.Response:
        """The page answered to a form without a valid CSRF token."""
        who = self.sessions.principal(request)
        return self.page(request, "error.html", {
            "user": who, "title": "Form expired",
            "message": "This form has expired or did not come from this site. "
                       "Go back, reload the page and try again."}, status=403)


def safe_next(target: str | None) -> str:
    """A local path to return to after sign-in (never another site)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
