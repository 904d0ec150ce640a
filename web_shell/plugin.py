"""The web shell as a plugin: its routes on the documented ``gigvora_http_routes`` hook.

Each app gets its own :class:`~web_shell.shell.Shell` (kept in ``ctx.extra["web_shell"]``), so two
apps in one process share nothing.
"""

from __future__ import annotations

from aiohttp import web

from realtime.hookspecs import hookimpl
from realtime.plugins import PluginContext
from web_shell.assets import StaticFiles
from web_shell.rendering import STATIC_PREFIX
from web_shell.shell import Shell
from web_shell.views_auth import AuthViews
from web_shell.views_consoles import ConsoleViews
from web_shell.views_pages import PageViews
from web_shell.views_rooms import RoomPageViews
from web_shell.views_support import SupportViews


@hookimpl
def gigvora_http_routes(ctx: PluginContext) -> list[web.RouteDef]:
    """The pages, the staff consoles, the session endpoints and the static files."""
    shell = Shell(ctx)
    ctx.extra["web_shell"] = shell
    static = StaticFiles()
    return [*PageViews(shell).routes(), *AuthViews(shell).routes(),
            *ConsoleViews(shell).routes(), *SupportViews(shell).routes(),
            *RoomPageViews(shell).routes(),
            web.get(STATIC_PREFIX + "{path:.+}", static.handle)]
