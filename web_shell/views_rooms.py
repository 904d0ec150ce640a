"""Live rooms in the web shell: the room list (``/rooms``) and the live room page
(``/rooms/{room}``).

Both pages are shells around the rooms plugin's contract (the ``/rooms`` Socket.IO namespace,
``GET /api/v1/rooms`` and ``GET /api/v1/rooms/{room}/telemetry``). The shell never imports the
plugin: rooms are on when the hub serves ``room:join`` on ``/rooms``.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from aiohttp import web

from web_shell.shell import Shell

#: The rooms plugin's room id rule (``rooms.models.RoomId``), checked before rendering.
ROOM_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
#: The event whose presence means the rooms plugin is running.
ROOMS_EVENT = ("/rooms", "room:join")
#: Roles that moderate every room (and may list open rooms and read any room's telemetry).
ROOM_STAFF = frozenset({"moderator", "admin"})
ROOM_OBSERVERS = frozenset({"moderator", "admin", "operator"})


def rooms_enabled(shell: Shell) -> bool:
    """True while the hub serves the rooms plugin's events."""
    hub = shell.ctx.extra.get("hub")
    return hub is not None and ROOMS_EVENT in getattr(hub, "events", {})


class RoomPageViews:
    """``GET /rooms`` and ``GET /rooms/{room}``."""

    def __init__(self, shell: Shell) -> None:
        self.shell = shell

    def routes(self) -> list[web.RouteDef]:
        """The route table."""
        return [web.get("/rooms", self.index), web.get("/rooms/{room}", self.room)]

    async def index(self, request: web.Request) -> web.Response:
        """``GET /rooms[?room=name]``: open or join a room by name; staff also see the open
        rooms (the page reads ``GET /api/v1/rooms``)."""
        who = self.shell.user_or_redirect(request)
        wanted = request.query.get("room", "").strip()
        if wanted and ROOM_ID.match(wanted):
            raise web.HTTPSeeOther("/rooms/" + quote(wanted, safe=""))
        return self.shell.page(request, "rooms.html", {
            "user": who, "rooms_on": rooms_enabled(self.shell), "wanted": wanted,
            "invalid": bool(wanted), "can_list": who.has_any(ROOM_OBSERVERS)})

    async def room(self, request: web.Request) -> web.Response:
        """``GET /rooms/{room}``: the live room; its script joins over ``/rooms``."""
        who = self.shell.user_or_redirect(request)
        room = request.match_info["room"]
        if not ROOM_ID.match(room):
            return self.shell.page(request, "error.html", {
                "user": who, "title": "No such room",
                "message": "Room names use letters, digits, '.', '_', ':' and '-' "
                           "(at most 64 characters)."}, status=404)
        return self.shell.page(request, "room.html", {
            "user": who, "room": room, "rooms_on": rooms_enabled(self.shell),
            "staff": who.has_any(ROOM_STAFF), "observer": who.has_any(ROOM_OBSERVERS)})
