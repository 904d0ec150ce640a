"""Per-user rate limits (token buckets) and the typing throttle, in process memory."""

from __future__ import annotations

import time
from collections.abc import Callable

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
