"""The pages: the community chat (``/``), the policy pages and the guidelines acknowledgement."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from realtime.identity import Principal
from web_shell.shell import Shell
from web_shell.views_auth import json_reply

DEFAULT_CHANNEL = "general"



def channel_groups(channels: list[dict[str, Any]]) -> list[tuple[str | None, list[dict[str, Any]]]]:
    """Non-DM channels grouped by category: uncategorised first, then categories by name (the
    same order as ``renderChannels`` in community-view.js)."""
    groups: dict[str | None, list[dict[str, Any]]] = {}
    for channel in channels:
        if channel["kind"] != "dm":
            groups.setdefault(channel.get("category"), []).append(channel)
    return sorted(groups.items(), key=lambda item: (item[0] is not None, (item[0] or "").lower()))

class PageViews:
    """Community and policy pages."""

    def __init__(self, shell: Shell) -> None:
        self.shell = shell

    def routes(self) -> list[web.RouteDef]:
        """The route table."""
        return [web.get("/", self.community), web.get("/guidelines", self.guidelines),
                web.get("/privacy", self.privacy),
                web.post("/guidelines/accept", self.accept_guidelines)]

    async def community(self, request: web.Request) -> web.Response:
        """``GET /``: channels, messages, people; the scripts take over once loaded."""
        who = self.shell.user_or_redirect(request)
        channels = await self._channels(who)
        active = pick_channel(channels, request.query.get("channel"))
        return self.shell.page(request, "community.html", {
            "user": who, "channels": channels, "active": active,
            "channel_groups": channel_groups(channels),
            "guidelines_accepted": await self.shell.acks.accepted(who.sub),
            "policy_version": self.shell.acks.version,
            "moderation_on": self._serves("/", "message:report"),
            "max_text_chars": self.shell.settings.max_text_chars})

    def _serves(self, namespace: str, event: str) -> bool:
        """True while some plugin serves this event (features can be switched off)."""
        hub = self.shell.ctx.extra.get("hub")
        return hub is not None and (namespace, event) in getattr(hub, "events", {})

    async def _channels(self, who: Principal) -> list[dict[str, Any]]:
        chat = self.shell.chat
        if chat is None:
            return []
        channels: list[dict[str, Any]] = await chat.visible_channels(who)
        return [{**c, "unread": max(0, c["last_seq"] - c["read_seq"])} for c in channels]

    async def guidelines(self, request: web.Request) -> web.Response:
        """``GET /guidelines``: the community guidelines (public)."""
        who = self.shell.sessions.principal(request)
        accepted = who is not None and await self.shell.acks.accepted(who.sub)
        return self.shell.page(request, "guidelines.html", {
            "user": who, "policy_version": self.shell.acks.version, "accepted": accepted})

    async def privacy(self, request: web.Request) -> web.Response:
        """``GET /privacy``: the privacy notice (public)."""
        return self.shell.page(request, "privacy.html",
                               {"user": self.shell.sessions.principal(request)})

    async def accept_guidelines(self, request: web.Request) -> web.Response:
        """``POST /guidelines/accept`` (CSRF): record the acknowledgement of this version."""
        form = await self.shell.form(request)
        if form is None:
            return self.shell.forbidden_form(request)
        who = self.shell.user_or_redirect(request)
        record = await self.shell.acks.accept(who.sub)
        if "application/json" in request.headers.get("Accept", ""):
            return json_reply(record)
        raise web.HTTPSeeOther("/")


def pick_channel(channels: list[dict[str, Any]], wanted: str | None) -> dict[str, Any] | None:
    """The channel to open: the requested one if visible, else general, else the first."""
    by_id = {c["id"]: c for c in channels}
    for candidate in (wanted, DEFAULT_CHANNEL):
        if candidate in by_id:
            return by_id[candidate]
    return channels[0] if channels else None
