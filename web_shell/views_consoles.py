"""The staff consoles: the moderation console (``/moderation``), the operator console
(``/ops``) and its configuration report (``GET /ops/config``).

The pages are shells: their scripts fetch everything through the same contract as any other
client (the ``/moderation`` Socket.IO namespace and ``/api/v1/moderation``; ``/readyz``,
``/metrics`` and ``/api/v1/rooms`` with the operator's or admin's bearer token). Only the
configuration report is served here, because no other endpoint shows it.
"""

from __future__ import annotations

from aiohttp import web

from realtime.errors import AppError
from realtime.identity import Principal
from web_shell.config_report import config_report
from web_shell.rendering import MODERATION_ROLES, OPS_ROLES
from web_shell.security import same_origin
from web_shell.shell import Shell
from web_shell.views_auth import json_reply

#: The audit actions the moderation desk writes (the audit filter offers them).
AUDIT_ACTIONS = ("auto_hold", "auto_mask", "auto_block", "auto_block_edit", "hold_approve",
                 "hold_reject", "content_erase", "report", "report_resolve", "message_delete",
                 "mute", "ban", "kick", "sanction_lift", "appeal", "appeal_upheld",
                 "appeal_overturned", "policy_change")
#: How often the operator console refreshes (the page reads it from a data attribute).
OPS_REFRESH_S = 5


class ConsoleViews:
    """``/moderation``, ``/ops`` and ``/ops/config``."""

    def __init__(self, shell: Shell) -> None:
        self.shell = shell

    def routes(self) -> list[web.RouteDef]:
        """The route table."""
        return [web.get("/moderation", self.moderation), web.get("/ops", self.ops),
                web.get("/ops/config", self.ops_config)]

    async def moderation(self, request: web.Request) -> web.Response:
        """``GET /moderation``: the moderators' console (moderators and admins)."""
        who = self.shell.user_with_role(request, MODERATION_ROLES, "moderation console")
        if isinstance(who, web.Response):
            return who
        return self.shell.page(request, "moderation.html", {"user": who,
                                                            "audit_actions": AUDIT_ACTIONS})

    async def ops(self, request: web.Request) -> web.Response:
        """``GET /ops``: the operator console (operators and admins)."""
        who = self.shell.user_with_role(request, OPS_ROLES, "operator console")
        if isinstance(who, web.Response):
            return who
        return self.shell.page(request, "ops.html", {"user": who, "refresh_s": OPS_REFRESH_S})

    async def ops_config(self, request: web.Request) -> web.Response:
        """``GET /ops/config``: the config lint of the server's environment and the running
        settings, secrets masked (the session cookie or a bearer token; no-store)."""
        self._caller(request, OPS_ROLES)
        return json_reply(config_report(self.shell.settings))

    def _caller(self, request: web.Request, roles: frozenset[str]) -> Principal:
        if "Authorization" in request.headers:
            who: Principal = self.shell.ctx.authenticate(request)
        else:
            if not same_origin(request, self.shell.settings.cors_origins):
                raise AppError("forbidden", "cross-origin requests are refused")
            found = self.shell.sessions.principal(request)
            if found is None:
                raise AppError("unauthorized", "not signed in")
            who = found
        if not who.has_any(roles):
            raise AppError("forbidden", "this endpoint needs one of the roles "
                           + ", ".join(sorted(roles)))
        return who
