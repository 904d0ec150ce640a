"""Exactly-once delivery of channel messages on each node, despite best-effort pub/sub.

With several nodes, a message stored on node A reaches node B's sockets through Redis pub/sub,
which may lose it (Redis restarting, stalled, a publish timing out). Every stored message has a
gap-free per-channel ``seq``, so node B can tell what it has delivered: per channel with local
members it keeps a contiguous watermark plus the set of seqs delivered above it. A remote
broadcast at or under the watermark (or already in the set) is dropped — never shown twice. A
periodic sweep compares the store's ``last_seq`` with the watermark; a gap that outlives one sweep
interval is filled from the store and delivered locally, in seq order — never lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from storage.base import Message, Store

log = logging.getLogger(__name__)
ROOM_PREFIX = "ch:"


@dataclass(slots=True)
class _Channel:
    watermark: int
    above: set[int] = field(default_factory=set)
    suspect_since: int | None = None  # the sweep number at which a gap was first seen

    def accept(self, seq: int) -> bool:
        if seq <= self.watermark or seq in self.above:
            return False
        self.above.add(seq)
        while self.watermark + 1 in self.above:
            self.watermark += 1
            self.above.discard(self.watermark)
        return True


class DeliveryTracker:
    """Per-node delivery state of the channels that have local members."""

    def __init__(self, store: Store, has_local_members: Callable[[str], bool],
                 deliver: Callable[[Message], Awaitable[None]], interval: float = 1.0) -> None:
        self.store = store
        self.has_local_members = has_local_members
        self.deliver = deliver
        self.interval = interval
        self.channels: dict[str, _Channel] = {}
        self.sweeps = 0
        self.repaired = 0
        self.duplicates_dropped = 0

    def track(self, channel: str, last_seq: int) -> None:
        """Start tracking a channel (a local socket joined it) at the store's ``last_seq``."""
        if channel not in self.channels:
            self.channels[channel] = _Channel(last_seq)

    def accept(self, channel: str, seq: int) -> bool:
        """Record ``seq`` as delivered here; False if it was delivered already."""
        state = self.channels.get(channel)
        if state is None:
            return True
        fresh = state.accept(seq)
        if not fresh:
            self.duplicates_dropped += 1
        return fresh

    def accept_room(self, room: str, seq: int) -> bool:
        """``accept`` for a Socket.IO room name (the bus filter)."""
        if not room.startswith(ROOM_PREFIX):
            return True
        return self.accept(room[len(ROOM_PREFIX):], seq)

    async def run(self) -> None:
        """Sweep forever (a supervised background worker)."""
        while True:
            await asyncio.sleep(self.interval)
            await self.sweep()

    async def sweep(self, urgent: bool = False) -> None:
        """Fill gaps that outlived one interval (all gaps at once when ``urgent``)."""
        self.sweeps += 1
        for channel in [c for c in self.channels if not self.has_local_members(c)]:
            del self.channels[channel]
        if not self.channels:
            return
        last = await self.store.channel_last_seqs(list(self.channels))
        for channel, last_seq in last.items():
            state = self.channels.get(channel)
            if state is None or last_seq <= state.watermark:
                if state is not None:
                    state.suspect_since = None
                continue
            if state.suspect_since is None and not urgent:
                state.suspect_since = self.sweeps
                continue
            await self._fill(channel, state, last_seq)

    async def _fill(self, channel: str, state: _Channel, last_seq: int) -> None:
        while state.watermark < last_seq:
            page = await self.store.history(channel, after_seq=state.watermark, limit=500)
            if not page:
                break
            for message in page:
                if state.accept(message.seq):
                    self.repaired += 1
                    await self.deliver(message)
        state.suspect_since = None
        log.info("delivery gap repaired", extra={"channel": channel, "upto": state.watermark})

    def status(self) -> dict[str, Any]:
        """Counters for readiness and metrics."""
        return {"tracked_channels": len(self.channels), "repaired": self.repaired,
                "duplicates_dropped": self.duplicates_dropped}
