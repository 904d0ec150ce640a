"""aiortc client peers for the rooms tests: synthetic audio+video and frame counters."""

from __future__ import annotations

import asyncio
import fractions
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import av
from aiortc import (
    AudioStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

WIDTH, HEIGHT = 320, 240


class SyntheticVideo(VideoStreamTrack):
    """30 fps 320x240 frames whose brightness changes every frame (so every frame encodes)."""

    def __init__(self, width: int = WIDTH, height: int = HEIGHT) -> None:
        super().__init__()
        self._size = (width, height)
        self._count = 0

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame(*self._size, "yuv420p")
        level = 16 + (self._count * 3) % 200
        for index, plane in enumerate(frame.planes):
            plane.update(bytes([level if index == 0 else 128]) * plane.buffer_size)
        self._count += 1
        frame.pts, frame.time_base = pts, time_base
        return frame


class SyntheticAudio(AudioStreamTrack):
    """20 ms frames of a square wave (aiortc's base track is silence)."""

    async def recv(self) -> av.AudioFrame:
        frame = await super().recv()
        samples = frame.samples
        wave = b"".join((4000 if (i // 20) % 2 else -4000).to_bytes(2, "little", signed=True)
                        for i in range(samples))
        frame.planes[0].update(wave)
        frame.time_base = fractions.Fraction(1, frame.sample_rate)
        return frame


def config() -> RTCConfiguration:
    """Clients use MAX_BUNDLE too (aiortc#868)."""
    return RTCConfiguration(bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)


@dataclass
class Counter:
    """Frames received on one remote track (decoded by the client: the stream is valid)."""

    kind: str
    stamps: list[float] = field(default_factory=list)
    ended: bool = False

    def rate(self, since: float, until: float) -> float:
        """Frames per second within [since, until]."""
        count = sum(1 for t in self.stamps if since <= t <= until)
        return count / max(until - since, 1e-9)

    def count_after(self, since: float) -> int:
        """Frames received after ``since``."""
        return sum(1 for t in self.stamps if t > since)


async def consume(track: MediaStreamTrack, counter: Counter) -> None:
    """Read a remote track until it ends, timestamping each frame."""
    try:
        while True:
            await track.recv()
            counter.stamps.append(time.monotonic())
    except MediaStreamError:
        counter.ended = True


class ClientPeers:
    """One participant's client side: a publish connection and subscription connections."""

    def __init__(self) -> None:
        self.publisher: RTCPeerConnection | None = None
        self.subscriptions: dict[str, RTCPeerConnection] = {}
        self.counters: dict[str, list[Counter]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    async def offer(self, kinds: Sequence[str] = ("audio", "video")) -> str:
        """A publish offer with synthetic tracks in ``kinds`` order (candidates included)."""
        self.publisher = pc = RTCPeerConnection(config())
        for kind in kinds:
            pc.addTrack(SyntheticAudio() if kind == "audio" else SyntheticVideo())
        await pc.setLocalDescription(await pc.createOffer())
        return pc.localDescription.sdp

    async def accept(self, answer_sdp: str) -> None:
        """The server's answer to our publish offer."""
        assert self.publisher is not None
        await self.publisher.setRemoteDescription(RTCSessionDescription(answer_sdp, "answer"))

    async def answer(self, subscription_id: str, offer_sdp: str) -> str:
        """Answer a server subscription offer; start counting the tracks it carries."""
        pc = RTCPeerConnection(config())
        counters: list[Counter] = []
        self.subscriptions[subscription_id] = pc
        self.counters[subscription_id] = counters

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            counter = Counter(track.kind)
            counters.append(counter)
            task = asyncio.get_running_loop().create_task(consume(track, counter))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        await pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        return pc.localDescription.sdp

    async def close(self) -> None:
        """Close every connection and counting task."""
        for pc in [self.publisher, *self.subscriptions.values()]:
            if pc is not None:
                await pc.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2)
