"""Per-user rate limits (token buckets) and the typing throttle, in process memory."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from redis.exceptions import RedisError

MAX_KEYS = 100_000


class TokenBucket:
    """Token buckets keyed by user: ``rate`` tokens/s, up to ``burst``. Rate 0 disables."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str, cost: float = 1.0) -> int:
        """Spend ``cost`` tokens; return 0 if allowed, else milliseconds until it would be."""
        if self.rate <= 0:
            return 0
        now = self._clock()
        tokens, last = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        if tokens < cost:
            self._buckets[key] = (tokens, now)
            return max(1, int((cost - tokens) / self.rate * 1000))
        if len(self._buckets) > MAX_KEYS:
            self._prune(now)
        self._buckets[key] = (tokens - cost, now)
        return 0

    def _prune(self, now: float) -> None:
        """Forget buckets that have refilled completely (they hold no information)."""
        full_after = self.burst / self.rate
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < full_after}


class TypingThrottle:
    """Lets a user's ``typing: true`` through at most once per ``interval`` per channel;
    ``typing: false`` passes only after a ``true`` was sent."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._last: dict[tuple[str, str], float] = {}

    def allow(self, user_id: str, channel: str, typing: bool) -> bool:
        """True if this typing change should be broadcast."""
        key = (user_id, channel)
        if not typing:
            return self._last.pop(key, None) is not None
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            return False
        if len(self._last) > MAX_KEYS:
            self._last = {k: v for k, v in self._last.items() if now - v < self.interval}
        self._last[key] = now
        return True


class LocalLimiter:
    """The per-user write limit on one node (async face of :class:`TokenBucket`)."""

    def __init__(self, bucket: TokenBucket) -> None:
        self.bucket = bucket

    async def acquire(self, key: str) -> int:
        """0 if allowed, else milliseconds to wait."""
        return self.bucket.take(key)


_BUCKET = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate, burst, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(b[1]) or burst
local ts = tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local retry = 0
if tokens < cost then
  retry = math.ceil((cost - tokens) / rate * 1000)
else
  tokens = tokens - cost
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return retry
"""


class RedisLimiter:
    """The same token bucket shared by every node (an atomic Lua script on Redis time), so N
    connections on N nodes share one budget. If Redis fails or is slow (> 200 ms) the node falls
    back to its local bucket for a few seconds instead of stalling chat."""

    def __init__(self, redis: Any, bucket: TokenBucket, prefix: str = "gv:rate") -> None:
        self.bucket = bucket
        self.prefix = prefix
        self._script = redis.register_script(_BUCKET)
        self.failed_at: float | None = None

    async def acquire(self, key: str) -> int:
        """0 if allowed, else milliseconds to wait."""
        if self.bucket.rate <= 0:
            return 0
        if self.failed_at is not None and time.monotonic() - self.failed_at < 5.0:
            return self.bucket.take(key)
        try:
            async with asyncio.timeout(0.2):
                retry = await self._script(keys=[f"{self.prefix}:{key}"],
                                           args=[self.bucket.rate, self.bucket.burst, 1])
        except (RedisError, OSError, TimeoutError):
            self.failed_at = time.monotonic()
            return self.bucket.take(key)
        self.failed_at = None
        return int(retry)
