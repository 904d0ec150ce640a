"""Pass-through forwarding of encoded media on top of aiortc (no decode, no re-encode).

aiortc is not an SFU: its receiver decodes every frame in a thread and every sender encodes its
own copy. Here the receiver's decoder queue is replaced (per receiver) by a :class:`PacketTap`
that hands each reassembled *encoded* frame to a :class:`TrackRelay`; the relay fans it out as
``av.Packet`` objects to bounded :class:`ForwardTrack` queues, and a sender handed an
``av.Packet`` only re-packetises it (``Encoder.pack``). Keyframe requests (PLI/FIR) that
subscribers send to our senders are forwarded upstream to the publisher, throttled.

This relies on aiortc internals (pinned: ``aiortc==1.16.0``), each checked by
:func:`check_aiortc_internals` at start-up and covered by ``tests/rooms/test_media.py``:

- ``RTCRtpReceiver._RTCRtpReceiver__decoder_queue``: the queue the receiver's decoder thread
  reads ``(codec, JitterFrame)`` tasks from (``None`` stops it);
- ``RTCRtpReceiver._send_rtcp`` / ``_send_rtcp_pli``: RTCP out of the receiver;
- ``RTCRtpSender._send_keyframe``: called when a subscriber sends PLI/FIR;
- ``RTCRtpTransceiver._codecs``: the negotiated codecs.

The stock path (``MediaRelay``: decode once, re-encode per subscriber) stays available with
``GIGVORA_ROOMS_FORWARDING=relay`` as a fallback and for processing (e.g. a recorder).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from fractions import Fraction
from typing import Any, Literal

import av
from aiortc import RTCRtpReceiver, RTCRtpSender
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpparameters import RTCRtpCodecCapability, RTCRtpCodecParameters
from aiortc.rtcrtptransceiver import RTCRtpTransceiver
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, pack_remb_fci, unpack_remb_fci

from realtime.tasks import TaskOwner

log = logging.getLogger(__name__)

Forwarding = Literal["passthrough", "relay"]
#: Bound of each subscriber's queue, in frames (~1 s): beyond it the oldest are dropped.
QUEUE_FRAMES = {"audio": 50, "video": 30}
#: At most one keyframe request upstream per this many seconds (per published track).
PLI_INTERVAL_S = 0.5
_DECODER_QUEUE = "_RTCRtpReceiver__decoder_queue"
_DECODER_THREAD = "_RTCRtpReceiver__decoder_thread"
_RTX_SSRC = "_RTCRtpReceiver__rtx_ssrc"


def check_aiortc_internals() -> None:
    """Fail loudly (at boot, not mid-call) if the aiortc internals we patch have moved."""
    missing = [name for name, owner in (("_send_rtcp", RTCRtpReceiver),
                                        ("_send_rtcp_pli", RTCRtpReceiver),
                                        ("_handle_rtp_packet", RTCRtpReceiver),
                                        ("_send_keyframe", RTCRtpSender),
                                        ("_next_encoded_frame", RTCRtpSender))
               if not callable(getattr(owner, name, None))]
    init = RTCRtpReceiver.__init__.__code__.co_names
    missing += [name for name in ("_RTCRtpReceiver__decoder_queue",
                                  "_RTCRtpReceiver__decoder_thread") if name not in init]
    if missing:
        raise RuntimeError("aiortc internals changed (pin aiortc==1.16.0): "
                           + ", ".join(missing))


# keyframes ---------------------------------------------------------------------------------------
def is_keyframe(codec_name: str, data: bytes) -> bool:
    """True if an encoded frame can be decoded on its own (VP8 key frame, H.264 IDR/SPS)."""
    name = codec_name.upper()
    if name == "VP8":
        return bool(data) and not data[0] & 0x01  # P bit clear = key frame (RFC 6386 9.1)
    if name == "H264":
        for match in re.finditer(b"\x00\x00\x01", data):
            index = match.end()
            if index < len(data) and data[index] & 0x1F in (5, 7):
                return True
        return False
    return True  # audio: every frame stands alone


class KeyframeRequester:
    """Forwards keyframe requests upstream, at most one per ``interval``; a request inside the
    window is not lost but coalesced into one sent when the window ends."""

    def __init__(self, send: Callable[[], None], interval: float = PLI_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._send = send
        self._interval = interval
        self._clock = clock
        self._last = -interval
        self._pending: asyncio.TimerHandle | None = None
        self.sent = 0
        self.coalesced = 0

    def request(self) -> None:
        """Ask the publisher for a keyframe (now, or when the throttle window ends)."""
        wait = self._last + self._interval - self._clock()
        if wait <= 0:
            self._fire()
        elif self._pending is None:
            self._pending = asyncio.get_running_loop().call_later(wait, self._fire)
        else:
            self.coalesced += 1

    def _fire(self) -> None:
        self._pending = None
        self._last = self._clock()
        self.sent += 1
        self._send()

    def close(self) -> None:
        """Drop a pending request."""
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None


# the receiver side ---------------------------------------------------------------------------
class PacketTap:
    """Stands in for the receiver's decoder queue: encoded frames go to ``sink`` on the event
    loop (``_handle_rtp_packet`` runs there); only the stop marker reaches the idle thread."""

    def __init__(self, sink: Callable[[RTCRtpCodecParameters, Any], None]) -> None:
        self._sink = sink
        self._stop: queue.SimpleQueue[None] = queue.SimpleQueue()

    def put(self, task: tuple[RTCRtpCodecParameters, Any] | None) -> None:
        """Called by the receiver with ``(codec, JitterFrame)``, or ``None`` to stop."""
        if task is None:
            self._stop.put(None)
            return
        try:
            self._sink(*task)
        except Exception:
            log.exception("forwarding an encoded frame failed")

    def get(self) -> None:
        """Called by the receiver's (now idle) decoder thread: blocks until stopped."""
        return self._stop.get()


def tap_receiver(receiver: RTCRtpReceiver,
                 sink: Callable[[RTCRtpCodecParameters, Any], None]) -> None:
    """Make ``receiver`` hand encoded frames to ``sink`` instead of decoding them. Must run
    before ``receiver.receive()`` starts the decoder thread (i.e. in the ``track`` event)."""
    if getattr(receiver, _DECODER_THREAD, "missing") is not None \
            or not hasattr(receiver, _DECODER_QUEUE):
        raise RuntimeError("receiver already started or aiortc internals changed")
    setattr(receiver, _DECODER_QUEUE, PacketTap(sink))


def cap_remb(receiver: RTCRtpReceiver, max_bps: int) -> None:
    """Clamp the bandwidth estimate (REMB) this receiver sends to the publisher: the publisher
    never encodes above ``max_bps`` (aiortc and browsers honour REMB)."""
    send = receiver._send_rtcp

    async def send_capped(packet: Any) -> None:
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            try:
                bitrate, ssrcs = unpack_remb_fci(packet.fci)
            except ValueError:
                bitrate, ssrcs = 0, []
            if bitrate > max_bps:
                packet.fci = pack_remb_fci(max_bps, ssrcs)
        await send(packet)

    receiver._send_rtcp = send_capped  # type: ignore[method-assign]


def media_ssrc(receiver: RTCRtpReceiver) -> int | None:
    """The publisher's media SSRC (not its retransmission SSRC), once packets arrived."""
    rtx = getattr(receiver, _RTX_SSRC, {})
    sources = [s for s in receiver.getSynchronizationSources() if s.source not in rtx]
    return max(sources, key=lambda s: s.timestamp).source if sources else None


def cap_bitrate_sdp(sdp: str, video_kbps: int, audio_kbps: int) -> str:
    """Add ``b=AS``/``b=TIAS`` bandwidth lines to each audio and video section (browsers
    honour them in an answer as the upper bound of what they send)."""
    out: list[str] = []
    kind = ""
    for line in sdp.splitlines():
        if line.startswith("m="):
            kind = line[2:].split(" ", 1)[0]
        if line.startswith("b=") and kind in ("audio", "video"):
            continue  # ours replace any
        out.append(line)
        if line.startswith("c=") and kind in ("audio", "video"):
            kbps = video_kbps if kind == "video" else audio_kbps
            out += [f"b=AS:{kbps}", f"b=TIAS:{kbps * 1000}"]
    return "\r\n".join(out) + "\r\n"


# the fan-out -----------------------------------------------------------------------------------
class ForwardTrack(MediaStreamTrack):
    """One subscriber's copy of a published track: a bounded queue of encoded packets (or, in
    relay mode, of decoded frames). A lagging video subscriber drops its queue and waits for
    the next keyframe (requested upstream) instead of decoding garbage."""

    def __init__(self, relay: TrackRelay, limit: int) -> None:
        super().__init__()
        self.kind = relay.kind
        self._relay = relay
        self._limit = limit
        self._items: deque[Any] = deque()
        self._ready = asyncio.Event()
        self.need_keyframe = relay.kind == "video"
        self.frames = 0
        self.bytes = 0
        self.dropped = 0

    def push(self, item: Any, keyframe: bool, size: int) -> None:
        """Queue one frame (called by the relay)."""
        if self.need_keyframe:
            if not keyframe:
                self.dropped += 1
                return
            self.need_keyframe = False
        if len(self._items) >= self._limit:
            self._overflow()
            if self.need_keyframe and not keyframe:
                return
            self.need_keyframe = False
        self._items.append((item, size))
        self._ready.set()

    def _overflow(self) -> None:
        if self.kind == "video":  # a gap breaks the decode chain: resume at a keyframe
            self.dropped += len(self._items)
            self._items.clear()
            self.need_keyframe = True
            self._relay.request_keyframe()
        else:
            self._items.popleft()
            self.dropped += 1
        self._relay.metrics_drop(self.kind)

    async def recv(self) -> Any:
        """The next packet (the sender re-packetises it)."""
        while not self._items:
            if self.readyState != "live":
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        item, size = self._items.popleft()
        self.frames += 1
        self.bytes += size
        return item

    def stop(self) -> None:
        """End this copy: the sender stops, the relay forgets it."""
        if self.readyState == "live":
            super().stop()
            self._relay.unsubscribe(self)
        self._ready.set()


class TrackRelay:
    """One published track fanned out to its subscribers."""

    def __init__(self, kind: str, transceiver: RTCRtpTransceiver, mode: Forwarding,
                 tasks: TaskOwner, on_drop: Callable[[str], None] = lambda kind: None,
                 on_keyframe: Callable[[], None] = lambda: None) -> None:
        self.kind = kind
        self.mode = mode
        self.transceiver = transceiver
        self.receiver = transceiver.receiver
        self.codec: RTCRtpCodecParameters | None = None
        self.subscribers: set[ForwardTrack] = set()
        self.forwarding = True
        self.frames = 0
        self.bytes = 0
        self.closed = False
        self._tasks = tasks
        self._on_drop = on_drop
        self._on_keyframe = on_keyframe
        self.keyframes = KeyframeRequester(self._send_pli)
        self._stock: MediaRelay | None = None
        self._source: MediaStreamTrack | None = None

    # passthrough input -------------------------------------------------------------------------
    def on_encoded(self, codec: RTCRtpCodecParameters, frame: Any) -> None:
        """An encoded frame from the publisher (via :class:`PacketTap`)."""
        self.codec = codec
        data: bytes = frame.data
        self.frames += 1
        self.bytes += len(data)
        if not self.forwarding or not self.subscribers:
            return
        packet = av.Packet(data)
        packet.pts = frame.timestamp
        packet.time_base = Fraction(1, codec.clockRate)
        keyframe = is_keyframe(codec.name, data)
        for subscriber in list(self.subscribers):
            subscriber.push(packet, keyframe, len(data))

    # stock (decode / re-encode) input ----------------------------------------------------------
    def start_stock(self, track: MediaStreamTrack) -> None:
        """Relay mode: decode once and let each subscriber's sender re-encode."""
        self._stock = MediaRelay()
        self._source = track
        self._tasks.spawn(self._pump_stock(), name=f"stock-relay-{self.kind}")

    async def _pump_stock(self) -> None:
        """Read the decoded track (the remote queue is unbounded otherwise) into the copies."""
        assert self._stock is not None and self._source is not None
        reader = self._stock.subscribe(self._source, buffered=False)
        try:
            while True:
                frame = await reader.recv()
                self.frames += 1
                if self.forwarding:
                    for subscriber in list(self.subscribers):
                        subscriber.push(frame, True, 0)
        except MediaStreamError:
            return

    # subscribers -------------------------------------------------------------------------------
    def subscribe(self) -> ForwardTrack:
        """A new bounded copy for one subscriber (a keyframe is requested for it)."""
        track = ForwardTrack(self, QUEUE_FRAMES.get(self.kind, 50))
        if self.closed:
            track.stop()
            return track
        self.subscribers.add(track)
        if self.kind == "video":
            self.request_keyframe()
        return track

    def unsubscribe(self, track: ForwardTrack) -> None:
        """Forget a copy (its sender stopped)."""
        self.subscribers.discard(track)

    def set_forwarding(self, forwarding: bool) -> None:
        """Mute (stop forwarding) or unmute; video resumes at a fresh keyframe."""
        if forwarding and not self.forwarding and self.kind == "video":
            for subscriber in self.subscribers:
                subscriber.need_keyframe = True
            self.request_keyframe()
        self.forwarding = forwarding

    def request_keyframe(self) -> None:
        """Ask the publisher for a keyframe (throttled); also wired to subscribers' PLIs."""
        if self.kind == "video" and not self.closed and self.mode == "passthrough":
            self.keyframes.request()

    def metrics_drop(self, kind: str) -> None:
        """A subscriber dropped frames under lag."""
        self._on_drop(kind)

    def _send_pli(self) -> None:
        ssrc = media_ssrc(self.receiver)
        if ssrc is not None:
            self._on_keyframe()
            self._tasks.spawn(self.receiver._send_rtcp_pli(ssrc), name="pli-upstream")

    def close(self) -> None:
        """The publication ended: end every copy."""
        self.closed = True
        self.keyframes.close()
        for subscriber in list(self.subscribers):
            subscriber.stop()


def route_keyframe_requests(sender: RTCRtpSender, relay: TrackRelay) -> None:
    """PLI/FIR from a subscriber reach ``sender._send_keyframe``, which would only flag an
    encoder we never run: forward them to the publisher instead."""
    sender._send_keyframe = relay.request_keyframe  # type: ignore[method-assign]


def negotiated_codec(transceiver: RTCRtpTransceiver) -> RTCRtpCodecParameters | None:
    """The codec the publisher sends on ``transceiver`` (first negotiated, not RTX)."""
    codecs = [c for c in getattr(transceiver, "_codecs", []) if c.name.lower() != "rtx"]
    return codecs[0] if codecs else None


def codec_preferences(kind: str, codec: RTCRtpCodecParameters) -> list[RTCRtpCodecCapability]:
    """Capabilities that let a subscriber negotiate exactly the publisher's codec (plus RTX):
    packets are forwarded as they are, so the codecs must match."""
    wanted = codec.mimeType.lower()
    fixed = {k: v for k, v in codec.parameters.items()
             if k in ("profile-level-id", "packetization-mode")}
    chosen = []
    for cap in RTCRtpSender.getCapabilities(kind).codecs:
        name = cap.mimeType.lower()
        if name == wanted and all(cap.parameters.get(k) == v for k, v in fixed.items()):
            chosen.append(cap)
    chosen += [c for c in RTCRtpSender.getCapabilities(kind).codecs
               if c.mimeType.lower().endswith("/rtx")][:1 if chosen else 0]
    return chosen


async def close_quietly(closer: Callable[[], Awaitable[None]], timeout: float = 5.0) -> None:
    """Close a peer connection, bounded; errors are logged, cancellation is re-raised."""
    try:
        async with asyncio.timeout(timeout):
            await closer()
    except asyncio.CancelledError:
        raise
    except Exception:
        log.warning("closing a peer connection failed", exc_info=True)
