"""What changes when ``GIGVORA_REDIS_URL`` is set: the bus, shared presence and limits, and the
delivery tracker. Without Redis every part is its in-process twin."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from realtime.bus import RedisBus
from realtime.config import Settings
from realtime.health import CheckResult
from realtime.limits import LocalLimiter, RedisLimiter, TokenBucket
from realtime.presence import Presence, RedisPresence
from realtime.repair import DeliveryTracker

#: How long boot waits for the first Redis subscription before giving up.
SUBSCRIBE_TIMEOUT_S = 10.0


@dataclass
class Cluster:
    """The node's view of its peers (all ``None``/local on a single node)."""

    bus: RedisBus | None
    presence: Presence | RedisPresence
    limiter: LocalLimiter | RedisLimiter
    tracker: DeliveryTracker | None = None


def build_cluster(settings: Settings) -> Cluster:
    """The bus and limiter (presence's announcer is bound later, when the server exists)."""
    bucket = TokenBucket(settings.message_rate_per_s, settings.message_burst)
    if not settings.redis_url:
        return Cluster(None, Presence(), LocalLimiter(bucket))
    bus = RedisBus(settings.redis_url)
    return Cluster(bus, Presence(), RedisLimiter(bus.redis, bucket))


async def wait_subscribed(bus: RedisBus) -> None:
    """Boot gate: readiness waits for the first subscription (bounded)."""
    try:
        await asyncio.wait_for(bus.subscribed.wait(), SUBSCRIBE_TIMEOUT_S)
    except TimeoutError:
        raise RuntimeError("GIGVORA_REDIS_URL: could not subscribe to Redis within "
                           f"{SUBSCRIBE_TIMEOUT_S:.0f}s") from None


async def redis_check(cluster: Cluster) -> CheckResult:
    """``redis:pubsub``: subscription and publishing state, with outage codes."""
    bus = cluster.bus
    assert bus is not None
    status = bus.status()
    result: CheckResult = {"observedValue": "up" if bus.healthy else "down",
                           "pendingPublishes": status["pending"], "outages": status["outages"],
                           "publishFailures": status["publish_failures"],
                           "status": "pass" if bus.healthy else "fail"}
    if not bus.subscribed.is_set():
        result["gvCode"] = "REDIS_UNREACHABLE"
    elif bus.publish_error_at is not None:
        result["gvCode"] = "REDIS_PUBLISH_FAILING"
    degraded = [name for name, part in (("presence", cluster.presence),
                                         ("rate_limits", cluster.limiter))
                if getattr(part, "failed_at", None) is not None]
    if degraded:
        result["degraded"] = degraded
    if cluster.tracker is not None:
        result.update(cluster.tracker.status())
    return result


class ClusterCollector(Collector):
    """Exports bus and repair counters at scrape time."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    def collect(self) -> Iterator[Any]:
        """The metric families."""
        bus = self.cluster.bus
        if bus is None:
            return
        status = bus.status()
        yield GaugeMetricFamily("gigvora_redis_up", "1 while subscribed and publishing",
                                value=1.0 if bus.healthy else 0.0)
        yield GaugeMetricFamily("gigvora_bus_pending", "Broadcasts waiting to be published",
                                value=status["pending"])
        for name, key in (("published", "published"), ("received", "received"),
                          ("dropped", "dropped"), ("publish_failures", "publish_failures"),
                          ("outages", "outages")):
            yield CounterMetricFamily(f"gigvora_bus_{name}", f"Bus {name}", value=status[key])
        tracker = self.cluster.tracker
        if tracker is not None:
            yield CounterMetricFamily("gigvora_delivery_repaired",
                                      "Messages delivered from the store after a pub/sub loss",
                                      value=tracker.repaired)
            yield CounterMetricFamily("gigvora_delivery_duplicates_dropped",
                                      "Remote broadcasts dropped as already delivered",
                                      value=tracker.duplicates_dropped)
