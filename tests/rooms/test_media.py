"""The media layer and the aiortc internals it relies on (aiortc is pinned: 1.16.0).

The receiver/sender tests drive real ``RTCRtpReceiver``/``RTCRtpSender`` objects over a stub
transport, so an aiortc upgrade that moves a patched internal fails here, not in a call."""

from __future__ import annotations

import asyncio
import importlib.metadata
from fractions import Fraction
from types import SimpleNamespace
from typing import Any

import av
import pytest
from aiortc import RTCRtpReceiver, RTCRtpSender, clock
from aiortc.codecs.vpx import Vp8Encoder, vp8_depayload
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpReceiveParameters
from aiortc.rtcrtpreceiver import RemoteStreamTrack
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_PLI,
    RtcpPacket,
    RtcpPsfbPacket,
    RtpPacket,
    pack_remb_fci,
    unpack_remb_fci,
)

from realtime.tasks import TaskOwner
from rooms.media import (
    ForwardTrack,
    KeyframeRequester,
    PacketTap,
    TrackRelay,
    cap_bitrate_sdp,
    cap_remb,
    check_aiortc_internals,
    codec_preferences,
    is_keyframe,
    route_keyframe_requests,
    tap_receiver,
)

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=97)
OPUS = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2,
                             payloadType=96)


class StubTransport:
    """Enough of an ``RTCDtlsTransport`` for a receiver or sender: records what is sent."""

    state = "connected"
    _stats_id = "transport_stub"

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def _register_rtp_receiver(self, *_: Any) -> None: ...
    def _unregister_rtp_receiver(self, *_: Any) -> None: ...
    def _register_rtp_sender(self, *_: Any) -> None: ...
    def _unregister_rtp_sender(self, *_: Any) -> None: ...
    def _get_stats(self) -> dict[str, Any]:
        return {}

    async def _send_rtp(self, data: bytes) -> None:
        self.sent.append(data)


def test_aiortc_is_the_pinned_version_and_internals_are_present() -> None:
    assert importlib.metadata.version("aiortc") == "1.16.0"
    check_aiortc_internals()


def test_keyframe_detection() -> None:
    assert is_keyframe("VP8", bytes([0x10, 0x02, 0x00]))  # P bit clear
    assert not is_keyframe("VP8", bytes([0x11, 0x02, 0x00]))
    assert not is_keyframe("VP8", b"")
    assert is_keyframe("H264", b"\x00\x00\x00\x01\x67\x42" + b"\x00\x00\x01\x65\x88")
    assert not is_keyframe("H264", b"\x00\x00\x00\x01\x41\x9a")
    assert is_keyframe("opus", b"\x01")


async def test_keyframe_requests_are_throttled_and_coalesced() -> None:
    now = [10.0]
    sent: list[float] = []
    requester = KeyframeRequester(lambda: sent.append(now[0]), interval=0.2,
                                  clock=lambda: now[0])
    requester.request()
    assert sent == [10.0]
    now[0] = 10.05
    requester.request()
    requester.request()
    requester.request()
    assert sent == [10.0] and requester.coalesced == 2
    now[0] = 10.2
    await asyncio.sleep(0.25)  # the deferred one fires once
    assert len(sent) == 2 and requester.sent == 2
    requester.close()


def fake_relay(kind: str) -> TrackRelay:
    return TrackRelay(kind, SimpleNamespace(receiver=None), "passthrough",  # type: ignore[arg-type]
                      TaskOwner("test"))


async def test_forward_track_is_bounded_and_resumes_video_at_keyframes() -> None:
    audio = ForwardTrack(fake_relay("audio"), limit=3)
    for index in range(5):
        audio.push(index, True, 1)
    assert [await audio.recv() for _ in range(3)] == [2, 3, 4]  # oldest dropped
    assert audio.dropped == 2

    relay = fake_relay("video")
    asked: list[int] = []
    relay.request_keyframe = lambda: asked.append(1)  # type: ignore[method-assign]
    video = ForwardTrack(relay, limit=2)
    video.push("delta", False, 1)  # a new subscriber waits for a keyframe
    video.push("key", True, 1)
    video.push("d1", False, 1)
    video.push("d2", False, 1)  # overflow: drop all, wait for the next keyframe
    assert asked == [1] and video.need_keyframe
    video.push("d3", False, 1)
    video.push("key2", True, 1)
    assert await video.recv() == "key2"
    video.stop()
    with pytest.raises(MediaStreamError):
        await video.recv()


async def test_receiver_tap_hands_encoded_frames_and_stops_cleanly() -> None:
    """A real receiver, real VP8 RTP packets: encoded frames reach the sink, the decoder
    thread idles (no frame reaches the track) and ``stop()`` ends it."""
    receiver = RTCRtpReceiver("video", StubTransport())  # type: ignore[arg-type]
    receiver._track = RemoteStreamTrack(kind="video")
    got: list[tuple[Any, JitterFrame]] = []
    tap_receiver(receiver, lambda codec, frame: got.append((codec, frame)))
    await receiver.receive(RTCRtpReceiveParameters(codecs=[VP8]))
    frames = [bytes([0x10]) + b"key" * 500, bytes([0x11]) + b"delta" * 10]
    seq = 1000
    for index, data in enumerate([*frames, bytes([0x11])]):
        for payload in Vp8Encoder._packetize(data, picture_id=index):
            packet = RtpPacket(payload_type=97, sequence_number=seq, timestamp=3000 * index,
                               ssrc=1234)
            packet.payload = payload
            await receiver._handle_rtp_packet(packet, arrival_time_ms=0)
            seq += 1
    assert [frame.data for _, frame in got] == frames
    assert got[0][0].name == "VP8" and got[1][1].timestamp == 3000
    assert receiver._track._queue.qsize() == 0  # nothing decoded
    with pytest.raises(RuntimeError):
        tap_receiver(receiver, lambda *_: None)  # too late: the thread runs
    await receiver.stop()
    assert receiver._track._queue.get_nowait() is None  # the track ends


async def test_relay_to_sender_repacketises_without_encoding() -> None:
    """The sender handed our ``av.Packet`` only packs it (same bytes, timestamp kept)."""
    relay = fake_relay("video")
    relay.request_keyframe = lambda: None  # type: ignore[method-assign]
    sender_transport = StubTransport()
    copy = relay.subscribe()
    sender = RTCRtpSender(copy, sender_transport)  # type: ignore[arg-type]
    relay.on_encoded(VP8, JitterFrame(bytes([0x10]) + b"k" * 3000, 9000))
    encoded = await sender._next_encoded_frame(VP8)
    assert encoded is not None and encoded.timestamp == 9000
    assert b"".join(vp8_depayload(p) for p in encoded.payloads) == bytes([0x10]) + b"k" * 3000
    assert isinstance(copy.frames, int) and copy.frames == 1
    copy.stop()
    assert copy not in relay.subscribers


async def test_subscriber_pli_is_forwarded_upstream() -> None:
    relay = fake_relay("video")
    asked: list[int] = []
    relay.request_keyframe = lambda: asked.append(1)  # type: ignore[method-assign]
    sender = RTCRtpSender("video", StubTransport())  # type: ignore[arg-type]
    route_keyframe_requests(sender, relay)
    await sender._handle_rtcp_packet(RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=1,
                                                    media_ssrc=sender._ssrc))
    assert asked == [1]


async def test_relay_sends_pli_to_the_publishers_media_ssrc() -> None:
    transport = StubTransport()
    receiver = RTCRtpReceiver("video", transport)  # type: ignore[arg-type]
    receiver._set_rtcp_ssrc(42)
    relay = TrackRelay("video", SimpleNamespace(receiver=receiver), "passthrough",  # type: ignore[arg-type]
                       TaskOwner("test"))
    receiver._RTCRtpReceiver__active_ssrc[777] = clock.current_datetime()  # type: ignore[attr-defined]
    relay.request_keyframe()
    await asyncio.sleep(0.01)
    [pli] = RtcpPacket.parse(transport.sent[-1])
    assert isinstance(pli, RtcpPsfbPacket) and pli.fmt == RTCP_PSFB_PLI
    assert pli.media_ssrc == 777


async def test_remb_is_capped() -> None:
    transport = StubTransport()
    receiver = RTCRtpReceiver("video", transport)  # type: ignore[arg-type]
    cap_remb(receiver, 800_000)
    for bitrate in (5_000_000, 300_000):
        await receiver._send_rtcp(RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=1, media_ssrc=0,
                                                 fci=pack_remb_fci(bitrate, [99])))
    sent = [unpack_remb_fci(RtcpPacket.parse(b)[0].fci) for b in transport.sent]
    assert sent[0][0] <= 800_000 and sent[0][1] == [99]
    assert sent[1][0] == pytest.approx(300_000, rel=0.01)


def test_bitrate_lines_in_answers() -> None:
    sdp = "v=0\r\nm=audio 9 UDP\r\nc=IN IP4 0.0.0.0\r\nb=AS:500\r\nm=video 9 UDP\r\n" \
          "c=IN IP4 0.0.0.0\r\na=mid:1\r\n"
    capped = cap_bitrate_sdp(sdp, 1500, 64).split("\r\n")
    assert capped[3:5] == ["b=AS:64", "b=TIAS:64000"] and "b=AS:500" not in capped
    assert capped[capped.index("m=video 9 UDP") + 2] == "b=AS:1500"


def test_codec_preferences_pin_the_publishers_codec() -> None:
    vp8 = [c.mimeType for c in codec_preferences("video", VP8)]
    assert vp8 == ["video/VP8", "video/rtx"]
    h264 = RTCRtpCodecParameters(mimeType="video/H264", clockRate=90000, payloadType=102,
                                 parameters={"packetization-mode": "1",
                                             "profile-level-id": "42e01f"})
    [chosen, _] = codec_preferences("video", h264)
    assert chosen.parameters["profile-level-id"] == "42e01f"
    assert [c.mimeType for c in codec_preferences("audio", OPUS)] == ["audio/opus"]


def test_packet_tap_survives_a_failing_sink() -> None:
    def boom(*_: Any) -> None:
        raise ValueError("boom")
    tap = PacketTap(boom)
    tap.put((VP8, JitterFrame(b"x", 0)))  # logged, not raised into aiortc
    tap.put(None)
    assert tap.get() is None


def test_packets_carry_the_codec_time_base() -> None:
    relay = fake_relay("audio")
    copy = relay.subscribe()
    relay.on_encoded(OPUS, JitterFrame(b"\x01\x02", 960))
    packet = copy._items[0][0]
    assert isinstance(packet, av.Packet) and packet.pts == 960
    assert packet.time_base == Fraction(1, 48000)
