"""The agents' support inbox (``/inbox``): a shell around the Chatwoot bridge's ``/inbox``
namespace (the page's script does the rest). The member's bubble is in ``base.html``, shown
where :func:`web_shell.bubble.bubble_context` says so."""

from __future__ import annotations

from aiohttp import web

from web_shell.bubble import support_enabled
from web_shell.rendering import INBOX_ROLES
from web_shell.shell import Shell


class SupportViews:
    """``GET /inbox``."""

    def __init__(self, shell: Shell) -> None:
        self.shell = shell

    def routes(self) -> list[web.RouteDef]:
        """The route table."""
        return [web.get("/inbox", self.inbox)]

    async def inbox(self, request: web.Request) -> web.Response:
        """``GET /inbox``: the agents' live support inbox (agents and admins)."""
        who = self.shell.user_with_role(request, INBOX_ROLES, "support inbox")
        if isinstance(who, web.Response):
            return who
        return self.shell.page(request, "inbox.html", {
            "user": who, "support_on": support_enabled(self.shell.ctx),
            "max_text_chars": self.shell.settings.max_text_chars})
