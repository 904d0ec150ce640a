"""Cross-node fan-out over Redis pub/sub, built for outages.

Each broadcast is published **once, already encoded**, on one channel, with a tiny header
(origin node, namespace, room, skipped sid, optional channel seq) in front of the Socket.IO
packet bytes. A node reads only the header: it drops its own messages and rooms it has no local
members in without decoding anything, and writes the packet bytes, framed once, to its local
sockets.

Redis pub/sub is best effort, so the bus never blocks chat on it: ``publish`` appends to a bounded
queue drained by a publisher task that pipelines everything pending in one round trip, with short
timeouts; the listener task reconnects with back-off. Outages are counted, logged and shown in
readiness (``REDIS_UNREACHABLE``); losses are repaired by the chat layer from the store, by seq.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)
SEP = b"\x1f"
END = b"\x1e"
MAX_PENDING = 20_000
#: Silence (no message, no pong to our pings) after which the subscription is deemed stalled.
STALL_S = 3.0
Deliver = Callable[["BusMessage"], None]


@dataclass(frozen=True, slots=True)
class BusMessage:
    """One broadcast as it travels between nodes."""

    origin: str
    namespace: str
    room: str
    skip_sid: str
    seq: int
    packet: bytes

    def encode(self) -> bytes:
        """Header fields, then the packet bytes untouched."""
        return SEP.join([self.origin.encode(), self.namespace.encode(), self.room.encode(),
                         self.skip_sid.encode(), str(self.seq).encode()]) + END + self.packet

    @classmethod
    def decode(cls, raw: bytes) -> BusMessage:
        """Parse the header only."""
        header, _, packet = raw.partition(END)
        origin, namespace, room, skip, seq = header.split(SEP)
        return cls(origin.decode(), namespace.decode(), room.decode(), skip.decode(),
                   int(seq), packet)


def redis_client(url: str) -> aioredis.Redis:
    """A client whose calls fail fast instead of hanging on a stalled Redis."""
    return aioredis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2,
                                   health_check_interval=5, retry_on_timeout=False)


class RedisBus:
    """Publisher and listener of the fan-out channel (see the module docstring)."""

    def __init__(self, url: str, channel: str = "gigvora:fanout", node_id: str | None = None
                 ) -> None:
        self.url = url
        self.channel = channel
        self.node_id = node_id or os.urandom(6).hex()
        self.redis = redis_client(url)
        self._pending: collections.deque[bytes] = collections.deque()
        self._wakeup = asyncio.Event()
        self._deliver: Deliver | None = None
        self._on_recovered: list[Callable[[], Awaitable[None]]] = []
        self.subscribed = asyncio.Event()
        self.down_since: float | None = None
        self.publish_error_at: float | None = None
        self.published = 0
        self.received = 0
        self.dropped = 0
        self.publish_failures = 0
        self.outages = 0

    def on_deliver(self, deliver: Deliver) -> None:
        """Where messages from other nodes go."""
        self._deliver = deliver

    def on_recovered(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Called after the listener resubscribed following an outage."""
        self._on_recovered.append(callback)

    # publishing ----------------------------------------------------------------------------
    def publish(self, message: BusMessage) -> None:
        """Queue a broadcast for the other nodes; never blocks."""
        if len(self._pending) >= MAX_PENDING:
            self._pending.popleft()
            self.dropped += 1
        self._pending.append(message.encode())
        self._wakeup.set()

    async def run_publisher(self) -> None:
        """Drain the queue: one pipelined round trip per batch, bounded by timeouts."""
        while True:
            if self.publish_error_at is None:
                await self._wakeup.wait()
            else:  # failing and idle: probe, so the outage report clears without traffic
                try:
                    await asyncio.wait_for(self._wakeup.wait(), 1.0)
                except TimeoutError:
                    await self._probe()
                    continue
            self._wakeup.clear()
            while self._pending:
                batch = [self._pending.popleft() for _ in range(min(len(self._pending), 512))]
                try:
                    async with asyncio.timeout(2.0):
                        pipe = self.redis.pipeline(transaction=False)
                        for raw in batch:
                            pipe.publish(self.channel, raw)
                        await pipe.execute()
                    self.published += len(batch)
                    self.publish_error_at = None
                except (RedisError, OSError, TimeoutError) as error:
                    self.publish_failures += len(batch)
                    if self.publish_error_at is None:
                        self.outages += 1
                        log.warning("redis publish failed", extra={"why": repr(error)})
                    self.publish_error_at = time.time()
                    await asyncio.sleep(0.5)  # the store-backed repair covers what was lost

    async def _probe(self) -> None:
        try:
            async with asyncio.timeout(2.0):
                await self.redis.ping()
            self.publish_error_at = None
        except (RedisError, OSError, TimeoutError):
            self.publish_error_at = time.time()

    # listening -----------------------------------------------------------------------------
    async def run_listener(self) -> None:
        """Subscribe and deliver; reconnect with back-off; report recoveries."""
        delay = 0.2
        while True:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError, TimeoutError) as error:
                self._mark_down(f"listener failed: {error!r}")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _listen(self) -> None:
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self.channel)
            recovered = self.down_since is not None
            self._mark_up()
            if recovered:
                for callback in self._on_recovered:
                    await callback()
            last_heard = time.monotonic()
            while True:
                message = await pubsub.get_message(timeout=1.0)
                now = time.monotonic()
                if message is not None:
                    last_heard = now
                    if message.get("type") == "message":
                        self._handle(message["data"])
                    continue
                if now - last_heard > STALL_S:  # no data and no pong: Redis is stalled
                    raise TimeoutError(f"no answer from redis for {STALL_S}s")
                await pubsub.ping()  # answered by a "pong" message, read above
        finally:
            try:
                await asyncio.wait_for(pubsub.aclose(), 1.0)
            except (RedisError, OSError, TimeoutError):
                pass

    def _handle(self, raw: bytes) -> None:
        self.received += 1
        try:
            message = BusMessage.decode(raw)
        except ValueError:
            log.warning("malformed bus message dropped")
            return
        if message.origin != self.node_id and self._deliver is not None:
            self._deliver(message)

    @property
    def healthy(self) -> bool:
        """Subscribed, and the last publish went through."""
        return self.subscribed.is_set() and self.publish_error_at is None

    def _mark_down(self, why: str) -> None:
        if self.down_since is None:
            self.outages += 1
            self.down_since = time.time()
            log.warning("redis subscription lost", extra={"why": why})
        self.subscribed.clear()

    def _mark_up(self) -> None:
        if self.down_since is not None:
            log.info("redis subscription back", extra={
                "down_seconds": round(time.time() - self.down_since, 2)})
        self.down_since = None
        self.subscribed.set()

    def status(self) -> dict[str, Any]:
        """For readiness and metrics."""
        return {"healthy": self.healthy, "pending": len(self._pending),
                "published": self.published, "received": self.received,
                "dropped": self.dropped, "publish_failures": self.publish_failures,
                "outages": self.outages, "down_since": self.down_since}

    async def close(self) -> None:
        """Close the Redis connections."""
        await self.redis.aclose()
