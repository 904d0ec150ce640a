"""Templates (Jinja2, autoescaped) and the navigation every page shares.

Later pages (rooms, inbox, moderation, ops) add a ``NavItem`` here and a template extending
``base.html``; the header shows each user only the pages their roles open.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jinja2
from aiohttp import web

from realtime.identity import Principal
from web_shell.security import harden

STATIC_PREFIX = "/static/"


@dataclass(frozen=True, slots=True)
class NavItem:
    """A page in the main navigation, shown to holders of any of ``roles`` (None: everyone)."""

    path: str
    label: str
    roles: frozenset[str] | None = None

    def visible_to(self, who: Principal) -> bool:
        """True if ``who`` may open the page."""
        return self.roles is None or who.has_any(self.roles)


#: Who may open the staff consoles (the header links and the pages check the same sets).
MODERATION_ROLES = frozenset({"moderator", "admin"})
OPS_ROLES = frozenset({"operator", "admin"})
#: Who may open the support inbox (the bridge's ``/inbox`` namespace admits the same).
INBOX_ROLES = frozenset({"agent", "admin"})

#: The pages built so far, in header order.
NAV: tuple[NavItem, ...] = (
    NavItem("/", "Community"),
    NavItem("/rooms", "Live rooms"),
    NavItem("/moderation", "Moderation", MODERATION_ROLES),
    NavItem("/ops", "Operations", OPS_ROLES),
    NavItem("/inbox", "Inbox", INBOX_ROLES),
)


def static_url(path: str) -> str:
    """The URL of a file under ``web_shell/static``."""
    return STATIC_PREFIX + path.lstrip("/")


class Renderer:
    """Renders page templates into hardened HTML responses."""

    def __init__(self) -> None:
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader("web_shell", "templates"), autoescape=True,
            undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        self.env.globals["static"] = static_url

    def page(self, template: str, request: web.Request, context: Mapping[str, Any],
             *, status: int = 200) -> web.Response:
        """The rendered ``template`` as a ``text/html`` response with the shell's headers."""
        who: Principal | None = context.get("user")
        base = {"nav": [item for item in NAV if who and item.visible_to(who)],
                "current_path": request.path, "user": None, "csrf_token": "",
                "support_bubble": None}
        html = self.env.get_template(template).render({**base, **context})
        response = web.Response(text=html, content_type="text/html", status=status)
        harden(response)
        return response
