"""Fixtures: a live server with the rooms plugin, and room participants (socket + aiortc)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

import rooms.plugin
from rooms.service import NS, RoomService, RoomsSettings
from rooms.sfu import SfuSettings
from rooms.state import RoomLimits
from tests.helpers import Client, LiveServer, make_settings, start_server
from tests.rooms.peers import ClientPeers, Counter

ROOM = "lounge"


class Member:
    """A room participant: a ``/rooms`` socket and its aiortc peers."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.peers = ClientPeers()
        self.participant_id = ""
        self.subscriptions: dict[str, str] = {}  # publisher participant id -> subscription id

    async def call(self, event: str, data: dict[str, Any]) -> Any:
        """The raw ack."""
        return await self.client.call(event, data, namespace=NS, timeout=10)

    async def ok(self, event: str, data: dict[str, Any]) -> Any:
        """The ack's data (asserting ``ok``)."""
        ack = await self.call(event, data)
        assert ack["ok"] is True, ack
        return ack["data"]

    async def join(self, room: str = ROOM, **extra: Any) -> dict[str, Any]:
        """Join; remember the participant id."""
        data = await self.ok("room:join", {"room": room, **extra})
        self.participant_id = data["participant_id"]
        return dict(data)

    async def publish(self, kinds: Sequence[str] = ("audio", "video"), room: str = ROOM
                      ) -> dict[str, Any]:
        """Publish synthetic tracks."""
        offer = await self.peers.offer(kinds)
        data = await self.ok("rtc:publish", {"room": room, "sdp": offer, "type": "offer"})
        await self.peers.accept(data["sdp"])
        return dict(data)

    async def subscribe(self, publisher: str, room: str = ROOM) -> str:
        """Subscribe to a publisher; returns the subscription id."""
        data = await self.ok("rtc:subscribe", {"room": room, "publisher": publisher})
        answer = await self.peers.answer(data["subscription_id"], data["sdp"])
        await self.ok("rtc:answer", {"subscription_id": data["subscription_id"],
                                     "sdp": answer, "type": "answer"})
        self.subscriptions[publisher] = data["subscription_id"]
        return str(data["subscription_id"])

    def counters(self, publisher: str) -> list[Counter]:
        """The frame counters of the subscription to ``publisher``."""
        return self.peers.counters[self.subscriptions[publisher]]

    async def close(self) -> None:
        """Close the peers (the socket is closed by the server fixture)."""
        await self.peers.close()


class Rooms:
    """The live server plus a factory of members."""

    def __init__(self, live: LiveServer, plugin: rooms.plugin.RoomsPlugin) -> None:
        self.live = live
        self.plugin = plugin
        self.members: list[Member] = []
        self.stopped = False

    async def stop(self) -> None:
        """Stop the server now (a restart test starts another on the same data)."""
        for member in self.members:
            await member.close()
        await self.live.stop()
        self.stopped = True

    @property
    def service(self) -> RoomService:
        """The server-side rooms service."""
        assert self.plugin.service is not None
        return self.plugin.service

    async def member(self, sub: str, roles: str = "member") -> Member:
        """A connected member."""
        member = Member(await self.live.client(sub, roles, namespaces=[NS]))
        self.members.append(member)
        return member


StartRooms = Callable[..., Awaitable[Rooms]]


@pytest.fixture
async def start_rooms(tmp_path: Path) -> AsyncIterator[StartRooms]:
    """Boot a server with the rooms plugin (``start_rooms(max_publishers=2, ...)``;
    ``media_workers=2`` runs the media in worker processes)."""
    started: list[Rooms] = []

    async def start(forwarding: str = "passthrough", telemetry_interval_s: float = 1.0,
                    reminder_lead_s: float = 600.0, scheduler_interval_s: float = 0.1,
                    media_workers: int = 0, **limits: Any) -> Rooms:
        settings = RoomsSettings(RoomLimits(**limits), SfuSettings(forwarding=forwarding),  # type: ignore[arg-type]
                                 telemetry_interval_s, reminder_lead_s, scheduler_interval_s,
                                 media_workers)
        plugin = rooms.plugin.make_plugin(settings)
        # "rooms" is disabled as a built-in so the explicit instance is the only one
        core = make_settings(tmp_path, moderation_ml="off",
                             plugins_disable=["moderation", "web_shell", "rooms"])
        live = await start_server(core, plugins=[plugin])
        started.append(Rooms(live, plugin))
        return started[-1]

    yield start
    for room in [r for r in started if not r.stopped]:
        for member in room.members:
            await member.close()
        await room.live.stop()


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll until ``predicate()`` holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def flowing(member: Member, publisher: str, timeout: float = 8) -> list[Counter]:
    """Wait until both tracks of ``publisher`` arrive at ``member``; the counters."""
    counters = member.counters(publisher)
    await wait_until(lambda: len(counters) == 2 and all(c.stamps for c in counters),
                     timeout=timeout)
    return sorted(counters, key=lambda c: c.kind)


async def measure(counters: Sequence[Counter], seconds: float = 3.0) -> list[float]:
    """Frames per second of each counter over the next ``seconds``."""
    start = time.monotonic()
    await asyncio.sleep(seconds)
    end = time.monotonic()
    return [round(c.rate(start, end), 1) for c in counters]
