"""The media backend the rooms service drives, and what it hands back.

Two implementations: :class:`rooms.sfu.Sfu` holds the peer connections on this event loop
(``GIGVORA_ROOMS_MEDIA_WORKERS=0``); :class:`rooms.workers.WorkerPool` forwards the same calls
to media worker processes, each owning whole rooms. The service only sees handles: a
publication's participant and kinds, a subscription's ids and whether it failed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, TypeVar

P = TypeVar("P", bound="PublicationHandle")
S = TypeVar("S", bound="SubscriptionHandle")


class PublicationHandle(Protocol):
    """A participant's publication, wherever its connection lives."""

    @property
    def participant_id(self) -> str:
        """The publisher."""

    @property
    def kinds(self) -> list[str]:
        """The published kinds, in m-line order."""


class SubscriptionHandle(Protocol):
    """One subscriber's connection to one publisher."""

    @property
    def id(self) -> str:
        """The subscription id (``rtc:answer``, ``rtc:unsubscribe``)."""

    @property
    def subscriber_id(self) -> str:
        """The subscribing participant."""

    @property
    def publisher_id(self) -> str:
        """The participant whose tracks it carries."""

    @property
    def failed(self) -> bool:
        """Its connection failed (or its media worker died)."""


@dataclass(slots=True)
class MediaSample:
    """One telemetry pass over a backend's connections: figures per publication (by
    participant id) and per subscription (by id), histogram observations ``(direction,
    track)``, and counter increments since the previous pass."""

    publications: dict[str, dict[str, Any]] = field(default_factory=dict)
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    observations: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    forwarded: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    keyframes: int = 0

    def merge(self, other: MediaSample) -> None:
        """Add another backend's (another worker's) pass to this one."""
        self.publications.update(other.publications)
        self.subscriptions.update(other.subscriptions)
        self.observations += other.observations
        for mine, theirs in ((self.forwarded, other.forwarded), (self.dropped, other.dropped)):
            for kind, count in theirs.items():
                mine[kind] = mine.get(kind, 0) + count
        self.keyframes += other.keyframes

    def to_wire(self) -> dict[str, Any]:
        """As JSON-ready data (a worker's reply)."""
        return asdict(self)

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> MediaSample:
        """Back from :meth:`to_wire`."""
        return cls(data["publications"], data["subscriptions"],
                   [(str(d), dict(t)) for d, t in data["observations"]],
                   data["forwarded"], data["dropped"], int(data["keyframes"]))


class MediaBackend(Protocol[P, S]):
    """Peer connections: offers, answers, forwarding, closing, sampling. Callbacks
    ``on_failed`` run on the service's loop when a connection fails for good."""

    async def publish(self, room: str, participant_id: str, offer_sdp: str,
                      on_failed: Callable[[], None]) -> tuple[P, str]:
        """Answer a publisher's offer. Returns the publication and the answer SDP."""

    async def subscribe(self, subscriber_id: str, publication: P,
                        on_failed: Callable[[], None]) -> tuple[S, str]:
        """A server offer carrying the publication's tracks. Returns it and the offer SDP."""

    async def accept_answer(self, subscription: S, answer_sdp: str) -> None:
        """The subscriber's answer: media starts flowing."""

    async def close_publication(self, publication: P) -> None:
        """End the publication's copies and close its connection."""

    async def close_subscription(self, subscription: S) -> None:
        """Close one subscription."""

    async def set_forwarding(self, publication: P, forwarding: dict[str, bool]) -> None:
        """Mute (``False``) or unmute kinds of a publication."""

    async def start(self) -> None:
        """Boot (media workers: spawned and ready)."""

    async def sample(self, publications: Sequence[P], subscriptions: Sequence[S]
                     ) -> MediaSample:
        """Telemetry figures of these connections."""

    def status(self) -> dict[str, Any]:
        """Readiness detail (``rooms:media``)."""

    async def close(self) -> None:
        """Shutdown (after every publication and subscription was closed)."""
