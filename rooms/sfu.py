"""Peer connections of the SFU: one per direction, offers and answers with their candidates.

A participant publishes on one peer connection (client offer → server answer) and subscribes to
each publisher on its own peer connection (server offer → client answer). Every connection uses
``RTCBundlePolicy.MAX_BUNDLE`` (aiortc#868: with the default policy an aiortc answerer loses the
2nd+ track of a kind in mixed audio/video offers). aiortc's ``setLocalDescription`` gathers
every candidate before it returns, so descriptions carry them (no trickle).
"""

from __future__ import annotations

import itertools
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamTrack

from realtime.errors import AppError
from realtime.tasks import TaskOwner
from rooms.backend import MediaSample
from rooms.media import (
    Forwarding,
    ForwardTrack,
    TrackRelay,
    cap_bitrate_sdp,
    cap_remb,
    close_quietly,
    codec_preferences,
    negotiated_codec,
    route_keyframe_requests,
    tap_receiver,
)
from rooms.telemetry import MediaSampler

log = logging.getLogger(__name__)
_ids = itertools.count(1)


@dataclass(frozen=True, slots=True)
class SfuSettings:
    """How peer connections are built."""

    forwarding: Forwarding = "passthrough"
    ice_servers: tuple[dict[str, Any], ...] = ()
    max_video_kbps: int = 1500
    max_audio_kbps: int = 64


@dataclass(slots=True)
class Publication:
    """A participant's publish connection and the relays of its tracks (m-line order)."""

    participant_id: str
    pc: RTCPeerConnection
    relays: list[TrackRelay] = field(default_factory=list)

    @property
    def kinds(self) -> list[str]:
        """The published kinds, in m-line order."""
        return [relay.kind for relay in self.relays]


@dataclass(slots=True)
class Subscription:
    """One subscriber's connection to one publisher's tracks."""

    id: str
    subscriber_id: str
    publisher_id: str
    pc: RTCPeerConnection
    tracks: list[ForwardTrack] = field(default_factory=list)
    answered: bool = False

    @property
    def failed(self) -> bool:
        """The connection failed (aiortc has no ICE restart: the client rebuilds it)."""
        return bool(self.pc.connectionState == "failed")


def ice_servers(raw: Any) -> list[RTCIceServer]:
    """``[{"urls": ..., "username"?, "credential"?}]`` as aiortc objects (aiortc uses only the
    first STUN and the first TURN server)."""
    return [RTCIceServer(urls=s["urls"], username=s.get("username"),
                         credential=s.get("credential")) for s in raw or []]


class Sfu:
    """Builds and closes the peer connections; knows nothing about rooms or roles. The
    in-process :class:`rooms.backend.MediaBackend` (and what each media worker runs)."""

    def __init__(self, settings: SfuSettings, tasks: TaskOwner,
                 on_drop: Callable[[str], None] = lambda kind: None,
                 on_keyframe: Callable[[], None] = lambda: None) -> None:
        self.settings = settings
        self.tasks = tasks
        self._on_drop = on_drop
        self._on_keyframe = on_keyframe
        self.sampler = MediaSampler()

    def _pc(self) -> RTCPeerConnection:
        config = RTCConfiguration(iceServers=ice_servers(self.settings.ice_servers),
                                  bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        return RTCPeerConnection(configuration=config)

    async def publish(self, room: str, participant_id: str, offer_sdp: str,
                      on_failed: Callable[[], None]) -> tuple[Publication, str]:
        """Answer a publisher's offer; its tracks feed new relays. Returns the answer SDP."""
        pc = self._pc()
        publication = Publication(participant_id, pc)
        pc.on("track", lambda track: self._attach(publication, track))
        _watch(pc, on_failed)
        try:
            await pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
            await pc.setLocalDescription(await pc.createAnswer())
        except AppError:
            await close_quietly(pc.close)
            raise
        except Exception as error:
            await close_quietly(pc.close)
            raise AppError("invalid", f"the offer was refused: {error}"[:300]) from None
        self._fix_codecs(publication)
        answer = pc.localDescription.sdp
        if self.settings.forwarding == "passthrough":
            answer = cap_bitrate_sdp(answer, self.settings.max_video_kbps,
                                     self.settings.max_audio_kbps)
        return publication, answer

    def _attach(self, publication: Publication, track: MediaStreamTrack) -> None:
        """``track`` event (fires inside setRemoteDescription, before the receiver starts)."""
        transceiver = next(t for t in publication.pc.getTransceivers()
                           if t.receiver.track is track)
        relay = TrackRelay(track.kind, transceiver, self.settings.forwarding,
                           self.tasks, self._on_drop, self._on_keyframe)
        if self.settings.forwarding == "passthrough":
            tap_receiver(transceiver.receiver, relay.on_encoded)
            if track.kind == "video":
                cap_remb(transceiver.receiver, self.settings.max_video_kbps * 1000)
        else:
            relay.start_stock(track)
        publication.relays.append(relay)

    @staticmethod
    def _fix_codecs(publication: Publication) -> None:
        order = {id(t): i for i, t in enumerate(publication.pc.getTransceivers())}
        publication.relays.sort(key=lambda r: order[id(r.transceiver)])
        for relay in publication.relays:
            relay.codec = negotiated_codec(relay.transceiver)

    async def subscribe(self, subscriber_id: str, publication: Publication,
                        on_failed: Callable[[], None]) -> tuple[Subscription, str]:
        """A server offer carrying the publisher's tracks. Returns the offer SDP."""
        pc = self._pc()
        subscription = Subscription(f"s_{next(_ids)}_{secrets.token_urlsafe(6)}",
                                    subscriber_id, publication.participant_id, pc)
        _watch(pc, on_failed)
        for relay in publication.relays:
            track = relay.subscribe()
            transceiver = pc.addTransceiver(track, direction="sendonly")
            if self.settings.forwarding == "passthrough" and relay.codec is not None:
                transceiver.setCodecPreferences(codec_preferences(relay.kind, relay.codec))
            route_keyframe_requests(transceiver.sender, relay)
            subscription.tracks.append(track)
        await pc.setLocalDescription(await pc.createOffer())
        return subscription, pc.localDescription.sdp

    async def accept_answer(self, subscription: Subscription, answer_sdp: str) -> None:
        """The subscriber's answer: media starts flowing."""
        if subscription.answered:
            raise AppError("conflict", "this subscription is already answered")
        try:
            await subscription.pc.setRemoteDescription(
                RTCSessionDescription(answer_sdp, "answer"))
        except Exception as error:
            raise AppError("invalid", f"the answer was refused: {error}"[:300]) from None
        subscription.answered = True

    @staticmethod
    async def close_publication(publication: Publication) -> None:
        """Stop the relays (their copies end) and close the connection."""
        for relay in publication.relays:
            relay.close()
        await close_quietly(publication.pc.close)

    @staticmethod
    async def close_subscription(subscription: Subscription) -> None:
        """Stop the copies and close the connection."""
        for track in subscription.tracks:
            track.stop()
        await close_quietly(subscription.pc.close)


    @staticmethod
    async def set_forwarding(publication: Publication, forwarding: dict[str, bool]) -> None:
        """Mute (``False``) or unmute kinds of a publication (video resumes at a keyframe)."""
        for relay in publication.relays:
            if relay.kind in forwarding:
                relay.set_forwarding(forwarding[relay.kind])

    async def start(self) -> None:
        """Nothing to start: media runs on this event loop."""

    async def sample(self, publications: Sequence[Publication],
                     subscriptions: Sequence[Subscription]) -> MediaSample:
        """Telemetry figures of these connections."""
        return await self.sampler.sample(publications, subscriptions)

    def status(self) -> dict[str, Any]:
        """Readiness detail: media runs on this event loop."""
        return {"media_workers": 0}

    async def close(self) -> None:
        """Nothing of its own to close (the service closes every connection first)."""


def _watch(pc: RTCPeerConnection, on_failed: Callable[[], None]) -> None:
    """Report a failed connection (aiortc has no ICE restart: the client rebuilds it)."""
    def changed() -> None:
        if pc.connectionState == "failed":
            on_failed()
    pc.on("connectionstatechange", changed)
