"""The storage protocol every backend implements, and the records it stores."""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

ChannelKind = Literal["public", "private", "announcement", "dm"]


class StoreUnavailable(Exception):
    """The store could not complete a write or read (disk full, locked, corrupt, gone)."""


class NotFound(Exception):
    """The record addressed does not exist."""


class Conflict(Exception):
    """A record with that key exists already."""


def now_iso() -> str:
    """The current UTC time as ISO 8601 with milliseconds and a ``Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


#: Random bits for ids: seeded from the OS once (ids are unique, not secret; ``os.urandom`` per
#: id was a system call on every stored message). Reseeded in a forked child.
_RANDOM = random.Random(os.urandom(16))
os.register_at_fork(after_in_child=lambda: _RANDOM.seed(os.urandom(16)))


class RecentMessages:
    """A bounded map of recently stored messages by idempotency key ``(channel, author,
    client_id)``, in front of the store's lookup: a hit answers a retry without a database
    round trip; a miss (evicted, stored before a restart, or by another process) falls back to
    the store, so idempotency stays exact. Writers must call ``changed(id)`` when a message
    changes and ``clear()`` after writes they cannot attribute."""

    __slots__ = ("_by_id", "_by_key", "capacity")

    def __init__(self, capacity: int = 8192) -> None:
        self.capacity = capacity
        self._by_key: dict[tuple[str, str, str], Message] = {}
        self._by_id: dict[str, tuple[str, str, str]] = {}

    def get(self, channel: str, author_id: str, client_id: str) -> Message | None:
        """The remembered message with this key, or None."""
        return self._by_key.get((channel, author_id, client_id))

    def remember(self, message: Message) -> None:
        """Keep a stored message that has a ``client_id`` (the oldest one is evicted)."""
        if message.client_id is None or self.capacity <= 0:
            return
        key = (message.channel, message.author_id, message.client_id)
        self._by_key[key] = message
        self._by_id[message.id] = key
        if len(self._by_key) > self.capacity:
            old_key = next(iter(self._by_key))
            old = self._by_key.pop(old_key)
            self._by_id.pop(old.id, None)

    def changed(self, message_id: str) -> None:
        """Forget a message that was edited, deleted or reacted to."""
        key = self._by_id.pop(message_id, None)
        if key is not None:
            self._by_key.pop(key, None)

    def clear(self) -> None:
        """Forget everything."""
        self._by_key.clear()
        self._by_id.clear()

    def __len__(self) -> int:
        return len(self._by_key)


def new_id() -> str:
    """A time-ordered, unique 24-hex-char id (48-bit ms clock + 48 random bits)."""
    return f"{int(time.time() * 1000):012x}{_RANDOM.getrandbits(48):012x}"


@dataclass(slots=True)
class Channel:
    """A chat channel and the role rules for who may read and post."""

    id: str
    name: str
    kind: ChannelKind = "public"
    read_roles: list[str] = field(default_factory=list)
    post_roles: list[str] = field(default_factory=list)
    members: list[str] | None = None
    created_at: str = field(default_factory=now_iso)
    last_seq: int = 0
    category: str | None = None

    def public(self) -> dict[str, Any]:
        """The channel as the API shows it."""
        return {"id": self.id, "name": self.name, "kind": self.kind,
                "read_roles": self.read_roles, "post_roles": self.post_roles,
                "members": self.members, "created_at": self.created_at,
                "last_seq": self.last_seq, "category": self.category}


@dataclass(slots=True)
class MessageDraft:
    """A message about to be stored: everything but the seq and id the store assigns."""

    channel: str
    author_id: str
    author_name: str
    text: str
    client_id: str | None = None
    thread_id: str | None = None


@dataclass(slots=True)
class Message:
    """A stored message; ``public()`` is the message object of the protocol."""

    id: str
    channel: str
    seq: int
    author_id: str
    author_name: str
    text: str
    created_at: str
    client_id: str | None = None
    thread_id: str | None = None
    edited_at: str | None = None
    deleted: bool = False
    reactions: dict[str, list[str]] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        """The message object of PROTOCOL.md."""
        body: dict[str, Any] = {
            "id": self.id, "channel": self.channel, "seq": self.seq,
            "author": {"id": self.author_id, "name": self.author_name},
            "text": self.text, "created_at": self.created_at,
            "deleted": self.deleted, "reactions": self.reactions,
        }
        if self.client_id is not None:
            body["client_id"] = self.client_id
        if self.thread_id is not None:
            body["thread_id"] = self.thread_id
        if self.edited_at is not None:
            body["edited_at"] = self.edited_at
        return body


class Store(Protocol):
    """What the live core needs from a store. Every write returns only after it is durable."""

    async def open(self) -> None:
        """Connect, apply pending migrations, start background writers."""

    async def close(self) -> None:
        """Finish queued writes and release every resource."""

    async def ping(self) -> None:
        """Raise StoreUnavailable unless a read round-trip succeeds."""

    def stats(self) -> dict[str, float]:
        """Queue depths and counters for readiness and metrics."""

    async def ensure_channel(self, channel: Channel) -> Channel:
        """Create the channel unless it exists; return the stored one."""

    async def create_channel(self, channel: Channel) -> Channel:
        """Create a channel; raise Conflict if the id is taken."""

    async def get_channel(self, channel_id: str) -> Channel | None:
        """One channel, or None."""

    async def list_channels(self) -> list[Channel]:
        """Every channel, ordered by id."""

    async def set_channel_category(self, channel_id: str, category: str | None) -> Channel:
        """Set (or clear, with None) a channel's category; NotFound if it does not exist."""

    async def channel_last_seqs(self, channel_ids: list[str]) -> dict[str, int]:
        """The current ``last_seq`` of each existing channel named."""

    async def append_message(self, draft: MessageDraft) -> tuple[Message, bool]:
        """Store a message with the next seq; ``(message, created)``. A repeated
        ``client_id`` from the same author in the same channel returns the first message and
        ``created=False``."""

    async def get_message(self, message_id: str) -> Message | None:
        """One message, or None."""

    async def find_by_client_id(self, channel_id: str, author_id: str, client_id: str
                                ) -> Message | None:
        """The message an author sent to a channel with this ``client_id``, or None."""

    async def edit_message(self, message_id: str, text: str) -> Message:
        """Replace a message's text and set ``edited_at``; NotFound if absent."""

    async def delete_message(self, message_id: str) -> Message:
        """Mark a message deleted and clear its text; NotFound if absent."""

    async def set_reaction(self, message_id: str, emoji: str, user_id: str,
                           present: bool) -> Message:
        """Add (present=True) or remove a user's reaction; NotFound if absent."""

    async def history(self, channel_id: str, *, before_seq: int | None = None,
                      after_seq: int | None = None, limit: int = 50,
                      thread_id: str | None = None) -> list[Message]:
        """Messages ordered by seq: after ``after_seq`` (oldest first), else the latest
        ``limit`` before ``before_seq``."""

    async def set_read(self, user_id: str, channel_id: str, seq: int) -> int:
        """Move the user's read marker forward (never back); return the stored seq."""

    async def read_state(self, user_id: str) -> dict[str, int]:
        """The user's read markers by channel id."""


def open_store(url: str) -> Store:
    """The backend for a store URL (``sqlite:///…``, ``mongodb://…`` or ``mongodb+srv://…``)."""
    if url.startswith("sqlite:///"):
        from storage.sqlite import SQLiteStore

        return SQLiteStore(url.removeprefix("sqlite:///"))
    if url.startswith(("mongodb://", "mongodb+srv://")):
        try:
            from storage.mongo import MongoStore
        except ImportError as error:
            raise StoreUnavailable("the MongoDB store needs pymongo: "
                                   "pip install 'gigvora-live[mongodb]'") from error
        return MongoStore(url)
    raise StoreUnavailable(f"no store backend for {url.split('://')[0]}://")
