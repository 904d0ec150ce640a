"""Telemetry: a sampler over aiortc's ``getStats()`` plus our relay counters, normalised units
(jitter in seconds, loss as a fraction 0-1, RTT in seconds, bitrate in bit/s), browser reports,
and Prometheus metrics without user ids in labels.

aiortc units (``aiortc/stats.py``): ``inbound-rtp.jitter`` and ``remote-inbound-rtp.jitter`` are
in RTP clock units (÷ clock rate = seconds); ``remote-inbound-rtp.fractionLost`` is 0-255
(÷ 256); ``roundTripTime`` is in seconds and is only known for what we send (aiortc#815). aiortc
reports no frame counts: fps comes from the frames our relays forward.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from rooms.backend import MediaSample
from rooms.media import negotiated_codec

if TYPE_CHECKING:
    from rooms.service import RoomService
    from rooms.sfu import Publication, Subscription
    from rooms.state import Participant

DEFAULT_CLOCK = {"audio": 48_000, "video": 90_000}
#: Browser reports accepted per participant per this many seconds (more are ignored).
CLIENT_REPORT_MIN_INTERVAL_S = 1.0


def jitter_seconds(units: float | None, clock_rate: int) -> float | None:
    """RTP-clock jitter as seconds."""
    return None if units is None or clock_rate <= 0 else round(units / clock_rate, 6)


def fraction_from_rtcp(fraction_lost: int | None) -> float | None:
    """RTCP ``fraction lost`` (0-255, a fixed-point fraction of 256) as 0-1."""
    return None if fraction_lost is None else round(min(max(fraction_lost, 0), 255) / 256, 4)


def interval_loss(lost: int, received: int) -> float:
    """Loss over an interval from packet deltas (reordering can make ``lost`` negative)."""
    lost = max(lost, 0)
    total = lost + max(received, 0)
    return round(lost / total, 4) if total else 0.0


def rate(delta: float, seconds: float) -> float:
    """A per-second rate (0 on a zero interval)."""
    return round(delta / seconds, 2) if seconds > 0 else 0.0


@dataclass(slots=True)
class Previous:
    """Counters at the previous sample, per stream."""

    at: float
    values: dict[str, float] = field(default_factory=dict)


class RoomMetrics:
    """The rooms' Prometheus metrics, in the app's registry."""

    def __init__(self, registry: Any, service: RoomService) -> None:
        def hist(name: str, doc: str, labels: list[str], buckets: tuple[float, ...]
                 ) -> Histogram:
            return Histogram(name, doc, labels, registry=registry, buckets=buckets)
        self.joins = Counter("gigvora_rooms_joins_total", "room:join outcomes", ["outcome"],
                             registry=registry)
        self.kicks = Counter("gigvora_rooms_kicks_total", "Participants kicked",
                             registry=registry)
        self.forwarded = Counter("gigvora_rooms_forwarded_frames_total",
                                 "Frames handed to subscribers' senders", ["kind"],
                                 registry=registry)
        self.dropped = Counter("gigvora_rooms_dropped_frames_total",
                               "Frames dropped by lagging subscribers' bounded queues",
                               ["kind"], registry=registry)
        self.keyframes = Counter("gigvora_rooms_keyframe_requests_total",
                                 "Keyframe requests forwarded upstream", registry=registry)
        self.loss = hist("gigvora_rooms_packet_loss_ratio", "Per-stream packet loss, 0-1",
                         ["direction", "source"], (0, .005, .01, .02, .05, .1, .2, .5, 1))
        self.jitter = hist("gigvora_rooms_jitter_seconds", "Per-stream jitter",
                           ["direction", "source"], (.001, .005, .01, .02, .03, .05, .1, .3))
        self.rtt = hist("gigvora_rooms_rtt_seconds", "Round-trip time to subscribers",
                        ["source"], (.005, .01, .025, .05, .1, .2, .4, 1))
        self.fps = hist("gigvora_rooms_video_fps", "Video frames per second per stream",
                        ["direction", "source"], (1, 5, 10, 15, 20, 25, 28, 31, 61))
        registry.register(RoomsCollector(service))


class RoomsCollector(Collector):
    """Gauges read at scrape time from the live state (aggregates: room ids are unbounded)."""

    def __init__(self, service: RoomService) -> None:
        self.service = service

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """Rooms, participants by role, published tracks and forwarded streams by kind,
        throughput of the last sample."""
        service = self.service
        rooms = list(service.registry)
        yield GaugeMetricFamily("gigvora_rooms_active", "Open rooms", value=len(rooms))
        roles = GaugeMetricFamily("gigvora_rooms_participants", "Participants", labels=["role"])
        for role in ("host", "publisher", "listener"):
            roles.add_metric([role], sum(1 for r in rooms for p in r.participants.values()
                                         if p.role == role))
        yield roles
        tracks = GaugeMetricFamily("gigvora_rooms_published_tracks", "Published tracks",
                                   labels=["kind"])
        streams = GaugeMetricFamily("gigvora_rooms_forwarded_streams",
                                    "Subscriber copies being forwarded", labels=["kind"])
        publications = dict(service.publications)
        for kind in ("audio", "video"):
            tracks.add_metric([kind], sum(p.kinds.count(kind) for p in publications.values()))
            streams.add_metric([kind], sum(publications[s.publisher_id].kinds.count(kind)
                                           for s in list(service.subscriptions.values())
                                           if s.publisher_id in publications))
        yield tracks
        yield streams
        bitrate = GaugeMetricFamily("gigvora_rooms_bitrate_bps",
                                    "Media bitrate at the last sample", labels=["direction"])
        totals = service.telemetry.totals
        bitrate.add_metric(["in"], totals.get("bitrate_in_bps", 0.0))
        bitrate.add_metric(["out"], totals.get("bitrate_out_bps", 0.0))
        yield bitrate
        workers = service.sfu.status().get("workers", [])
        states = GaugeMetricFamily("gigvora_rooms_media_workers",
                                   "Media worker processes by state", labels=["state"])
        restarts = GaugeMetricFamily("gigvora_rooms_media_worker_restarts",
                                     "Media worker restarts since boot")
        for state in ("running", "starting", "restarting", "stopped"):
            states.add_metric([state], sum(1 for w in workers if w["state"] == state))
        restarts.add_metric([], sum(w["restarts"] for w in workers))
        yield states
        yield restarts


class MediaSampler:
    """Figures of one backend's peer connections (it runs where they live: this process, or a
    media worker); histogram observations and counter increments travel in the sample, so
    the metrics are fed in the main process either way."""

    def __init__(self) -> None:
        self._previous: dict[str, Previous] = {}

    async def sample(self, publications: Iterable[Publication],
                     subscriptions: Iterable[Subscription]) -> MediaSample:
        """One pass over these connections."""
        out = MediaSample()
        seen: set[str] = set()
        for publication in publications:
            out.publications[publication.participant_id] = await self._publication(
                publication, seen, out)
        for sub in subscriptions:
            out.subscriptions[sub.id] = await self._subscription(sub, seen, out)
        for key in set(self._previous) - seen:
            del self._previous[key]
        return out

    def _delta(self, key: str, seen: set[str], values: dict[str, float]
               ) -> tuple[float, dict[str, float]]:
        """Seconds since the last sample of ``key`` and the increase of each value."""
        now = time.monotonic()
        seen.add(key)
        previous = self._previous.get(key)
        self._previous[key] = Previous(now, dict(values))
        if previous is None:
            return 0.0, {name: 0.0 for name in values}
        return now - previous.at, {name: value - previous.values.get(name, 0.0)
                                   for name, value in values.items()}

    async def _publication(self, publication: Publication, seen: set[str], out: MediaSample
                           ) -> dict[str, Any]:
        tracks = []
        for index, relay in enumerate(publication.relays):
            report = await relay.receiver.getStats()
            inbound = next((s for s in report.values() if s.type == "inbound-rtp"), None)
            clock = relay.codec.clockRate if relay.codec else DEFAULT_CLOCK[relay.kind]
            counters = {"frames": relay.frames, "bytes": relay.bytes,
                        "received": getattr(inbound, "packetsReceived", 0),
                        "lost": getattr(inbound, "packetsLost", 0)}
            seconds, delta = self._delta(f"{publication.participant_id}/pub/{index}/{id(relay)}",
                                         seen, counters)
            track = {"kind": relay.kind, "codec": relay.codec.name if relay.codec else None,
                     "forwarding": relay.forwarding, "subscribers": len(relay.subscribers),
                     "bitrate_bps": rate(delta["bytes"] * 8, seconds),
                     "packet_loss": interval_loss(int(delta["lost"]), int(delta["received"])),
                     "jitter_s": jitter_seconds(getattr(inbound, "jitter", None), clock),
                     "packets_received": counters["received"], "packets_lost": counters["lost"]}
            if relay.kind == "video":
                track["fps"] = rate(delta["frames"], seconds)
            if seconds > 0:
                out.observations.append(("in", track))
            tracks.append(track)
        return {"connection": publication.pc.connectionState, "tracks": tracks}

    async def _subscription(self, sub: Subscription, seen: set[str], out: MediaSample
                            ) -> dict[str, Any]:
        tracks = []
        for index, (transceiver, copy) in enumerate(zip(sub.pc.getTransceivers(), sub.tracks,
                                                         strict=False)):
            report = await transceiver.sender.getStats()
            sent = next((s for s in report.values() if s.type == "outbound-rtp"), None)
            remote = next((s for s in report.values() if s.type == "remote-inbound-rtp"), None)
            codec = negotiated_codec(transceiver)
            clock = codec.clockRate if codec else DEFAULT_CLOCK[copy.kind]
            counters = {"bytes": getattr(sent, "bytesSent", 0), "frames": copy.frames,
                        "dropped": copy.dropped}
            seconds, delta = self._delta(f"{sub.id}/{index}", seen, counters)
            track = {"kind": copy.kind, "bitrate_bps": rate(delta["bytes"] * 8, seconds),
                     "packet_loss": fraction_from_rtcp(getattr(remote, "fractionLost", None)),
                     "jitter_s": jitter_seconds(getattr(remote, "jitter", None), clock),
                     "rtt_s": _round(getattr(remote, "roundTripTime", None)),
                     "dropped_frames": copy.dropped}
            if copy.kind == "video":
                track["fps"] = rate(delta["frames"], seconds)
            out.forwarded[copy.kind] = (out.forwarded.get(copy.kind, 0)
                                        + max(int(delta["frames"]), 0))
            if seconds > 0:
                out.observations.append(("out", track))
            tracks.append(track)
        return {"subscription_id": sub.id, "publisher": sub.publisher_id,
                "connection": sub.pc.connectionState, "tracks": tracks}


class TelemetrySampler:
    """Every ``interval`` seconds: per participant, upstream and downstream figures (from the
    media backend: this process's connections or the media workers')."""

    def __init__(self, service: RoomService, metrics: RoomMetrics | None,
                 interval: float = 2.0) -> None:
        self.service = service
        self.metrics = metrics
        self.interval = interval
        self.latest: dict[str, dict[str, Any]] = {}
        self.client: dict[str, dict[str, Any]] = {}
        self.totals: dict[str, float] = {}

    async def run(self) -> None:
        """Forever (a supervised background worker)."""
        while True:
            await asyncio.sleep(self.interval)
            await self.sample()

    async def sample(self) -> None:
        """One pass over every participant."""
        service = self.service
        media = await service.sfu.sample(list(service.publications.values()),
                                         list(service.subscriptions.values()))
        self._count(media)
        totals = {"bitrate_in_bps": 0.0, "bitrate_out_bps": 0.0}
        for room in service.registry:
            for participant in list(room.participants.values()):
                figures = self._participant(participant, media)
                self.latest[participant.id] = figures
                totals["bitrate_in_bps"] += sum(t["bitrate_bps"] for t in
                                                (figures["publish"] or {}).get("tracks", []))
                totals["bitrate_out_bps"] += sum(t["bitrate_bps"] for s in
                                                 figures["subscriptions"] for t in s["tracks"])
        self.totals = totals
        for pid in set(self.latest) - {p.id for r in service.registry
                                       for p in r.participants.values()}:
            self.latest.pop(pid, None)
            self.client.pop(pid, None)

    def _participant(self, participant: Participant, media: MediaSample) -> dict[str, Any]:
        subs = [media.subscriptions[s.id] for s in list(self.service.subscriptions.values())
                if s.subscriber_id == participant.id and s.id in media.subscriptions]
        return {"participant_id": participant.id, "user": participant.user(),
                "role": participant.role,
                "muted": sorted(k for k in ("audio", "video") if participant.muted(k)),
                "sampled_at": time.time(),
                "publish": media.publications.get(participant.id),
                "subscriptions": subs}

    def _count(self, media: MediaSample) -> None:
        """Feed the metrics from a pass (wherever it was taken)."""
        metrics = self.metrics
        if metrics is None:
            return
        for direction, track in media.observations:
            self._observe(direction, track)
        for kind, count in media.forwarded.items():
            metrics.forwarded.labels(kind).inc(count)
        for kind, count in media.dropped.items():
            metrics.dropped.labels(kind).inc(count)
        if media.keyframes:
            metrics.keyframes.inc(media.keyframes)

    def _observe(self, direction: str, track: dict[str, Any]) -> None:
        metrics = self.metrics
        if metrics is None:
            return
        if track.get("packet_loss") is not None:
            metrics.loss.labels(direction, "server").observe(track["packet_loss"])
        if track.get("jitter_s") is not None:
            metrics.jitter.labels(direction, "server").observe(track["jitter_s"])
        if track.get("rtt_s") is not None:
            metrics.rtt.labels("server").observe(track["rtt_s"])
        if "fps" in track:
            metrics.fps.labels(direction, "server").observe(track["fps"])

    # browser reports ---------------------------------------------------------------------------
    def client_report(self, participant_id: str, reports: Iterable[Any]) -> bool:
        """Keep a browser's own figures (at most one report per second is taken)."""
        now = time.monotonic()
        previous = self.client.get(participant_id)
        if previous and now - previous["_at"] < CLIENT_REPORT_MIN_INTERVAL_S:
            return False
        before = {(r["direction"], r["kind"]): r for r in previous["reports"]} if previous else {}
        items = [normalise(r.model_dump(exclude_none=True),
                           before.get((r.direction, r.kind))) for r in reports]
        self.client[participant_id] = {"_at": now, "reported_at": time.time(),
                                       "reports": items}
        for item in items:
            self._observe_client(item)
        return True

    def _observe_client(self, item: dict[str, Any]) -> None:
        metrics = self.metrics
        if metrics is None:
            return
        direction = "in" if item["direction"] == "inbound" else "out"
        if "jitter" in item:
            metrics.jitter.labels(direction, "client").observe(item["jitter"])
        if "packet_loss" in item:
            metrics.loss.labels(direction, "client").observe(item["packet_loss"])
        if "round_trip_time" in item:
            metrics.rtt.labels("client").observe(item["round_trip_time"])
        if "frames_per_second" in item and item["kind"] == "video":
            metrics.fps.labels(direction, "client").observe(item["frames_per_second"])

    def room_view(self, room_id: str) -> dict[str, Any]:
        """The telemetry document of one room (``GET /api/v1/rooms/{room}/telemetry``)."""
        room = self.service.registry.room(room_id)
        participants = []
        for participant in room.participants.values():
            figures = dict(self.latest.get(participant.id) or
                           {"participant_id": participant.id, "user": participant.user(),
                            "role": participant.role, "publish": None, "subscriptions": []})
            client = self.client.get(participant.id)
            figures["client"] = ({k: v for k, v in client.items() if k != "_at"}
                                 if client else None)
            participants.append(figures)
        inbound = sum(t["bitrate_bps"] for p in participants
                      for t in (p.get("publish") or {}).get("tracks", []))
        outbound = sum(t["bitrate_bps"] for p in participants
                       for s in p.get("subscriptions", []) for t in s["tracks"])
        return {"room": room_id, "interval_s": self.interval,
                "units": {"bitrate": "bit/s", "packet_loss": "fraction 0-1",
                          "jitter": "seconds", "rtt": "seconds", "fps": "frames/s"},
                **room.summary(), "bitrate_in_bps": inbound, "bitrate_out_bps": outbound,
                "participants": participants}


def normalise(item: dict[str, Any], previous: dict[str, Any] | None) -> dict[str, Any]:
    """A browser report with the server's units added: ``packet_loss`` (fraction 0-1: the
    remote-inbound ``fraction_lost`` if given, else lost ÷ (received + lost) since the previous
    report of the same stream, else since the stream began), ``jitter_s``, ``rtt_s``, ``fps``."""
    out = dict(item)
    if "fraction_lost" in item:
        out["packet_loss"] = item["fraction_lost"]
    elif "packets" in item and "packets_lost" in item:
        lost, received = max(0, item["packets_lost"]), item["packets"]
        if previous and "packets" in previous and "packets_lost" in previous \
                and received >= previous["packets"]:
            lost = max(0, lost - max(0, previous["packets_lost"]))
            received -= previous["packets"]
        out["packet_loss"] = round(lost / (lost + received), 6) if lost + received else 0.0
    for source, target in (("jitter", "jitter_s"), ("round_trip_time", "rtt_s"),
                           ("frames_per_second", "fps")):
        if source in item:
            out[target] = item[source]
    return out


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)
