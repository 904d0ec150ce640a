"""Gig matching: record gigs from stored chat messages, keep skill subscriptions, tell the
subscribers whose skills a new gig carries."""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

from plugins.matching.models import GigQuery, SubscribeIn
from plugins.matching.parse import looks_like_gig, parse_gig
from realtime.chat import can_read, user_room
from realtime.errors import AppError
from realtime.identity import Principal
from storage.base import Channel
from storage.gigs import GigRecords

log = logging.getLogger(__name__)
MATCH_EVENT = "gigs:match"
Emit = Callable[..., Awaitable[None]]
ChannelLookup = Callable[[str], Awaitable[Channel]]


class MatchingService:
    """One per app: the gig channel, the records, and how to emit and find channels."""

    def __init__(self, channel: str, records: GigRecords, emit: Emit,
                 channel_of: ChannelLookup, metrics: Any = None) -> None:
        self.channel = channel
        self.records = records
        self.emit = emit
        self.channel_of = channel_of
        self.metrics = metrics

    def is_candidate(self, message: dict[str, Any]) -> bool:
        """The cheap test every stored message goes through (no I/O): the gig channel, a
        top-level message, text starting with ``Gig:``."""
        return (message.get("channel") == self.channel and not message.get("thread_id")
                and looks_like_gig(message.get("text", "")))

    async def message_stored(self, message: dict[str, Any]) -> dict[str, Any] | None:
        """Record the gig ``message`` carries and tell its matching subscribers; the gig (None
        if the message is not a gig or was recorded already)."""
        if not self.is_candidate(message):
            return None
        parsed = parse_gig(message["text"])
        if parsed is None:
            return None
        gig = await self.records.add_gig(message, parsed.title, parsed.skills)
        if gig is None:
            return None
        sent = await self.notify(gig)
        if self.metrics is not None:
            self.metrics.gigs.inc()
            self.metrics.matches.inc(sent)
        log.info("gig recorded", extra={"gig": gig["id"], "skills": len(gig["skills"]),
                                        "matched": sent})
        return gig

    async def notify(self, gig: dict[str, Any]) -> int:
        """Emit ``gigs:match`` to every subscriber of one of the gig's skills who may read its
        channel, on all their sockets (every node), the author excepted; how many users."""
        channel = await self.channel_of(gig["channel"])
        sent = 0
        for user_id, (skills, roles) in (await self.records.subscribers(gig["skills"])).items():
            reader = Principal(user_id, "", frozenset(roles), math.inf)
            if user_id == gig["author"]["id"] or not can_read(channel, reader):
                continue
            await self.emit(MATCH_EVENT, {"gig": gig, "skills": skills}, to=user_room(user_id))
            sent += 1
        return sent

    async def subscribe(self, who: Principal, body: SubscribeIn) -> dict[str, Any]:
        """Replace the caller's skill set; the stored set."""
        skills = sorted(set(body.skills))
        return {"skills": await self.records.subscribe(who.sub, sorted(who.roles), skills)}

    async def subscription(self, who: Principal) -> dict[str, Any]:
        """The caller's current skill set."""
        return {"skills": await self.records.skills(who.sub)}

    async def listing(self, who: Principal, query: GigQuery) -> dict[str, Any]:
        """Recent gigs of channels the caller may read, newest first."""
        readable: dict[str, bool] = {}
        gigs = []
        for gig in await self.records.recent(query.skill, query.limit):
            if gig["channel"] not in readable:
                readable[gig["channel"]] = await self._readable(gig["channel"], who)
            if readable[gig["channel"]]:
                gigs.append(gig)
        return {"gigs": gigs}

    async def _readable(self, channel_id: str, who: Principal) -> bool:
        try:
            return can_read(await self.channel_of(channel_id), who)
        except AppError:  # the channel is gone
            return False
