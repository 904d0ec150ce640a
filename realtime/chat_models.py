"""Payload models of namespace ``/`` (community chat): validated at the edge, strict."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

#: Transport-level ceiling per text field; the configurable GIGVORA_MAX_TEXT_CHARS is tighter.
HARD_TEXT_CAP = 65_536
ChannelId = Annotated[str, StringConstraints(min_length=1, max_length=80,
                                             pattern=r"^[a-z0-9][a-z0-9_:-]*$")]
NewChannelId = Annotated[str, StringConstraints(min_length=1, max_length=64,
                                                pattern=r"^[a-z0-9][a-z0-9_-]*$")]
MessageId = Annotated[str, StringConstraints(min_length=1, max_length=64)]
ClientId = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Emoji = Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=r"^\S+$")]
UserId = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Role = Literal["member", "agent", "moderator", "admin", "operator"]
#: a short label people read (a channel category, an API key's name): 1-64 characters, no
#: control characters, no space at either end — refused, not stripped, so the JSON Schema and
#: the server agree on what is valid
Label = Annotated[str, StringConstraints(
    min_length=1, max_length=64,
    pattern=r"^[^\u0000-\u0020\u007f-\u00a0]([^\u0000-\u001f\u007f-\u009f]*"
            r"[^\u0000-\u0020\u007f-\u00a0])?$")]
Category = Label


class Payload(BaseModel):
    """Base of every client→server payload: strict about unknown fields."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class ChannelJoin(Payload):
    """``channel:join``: join a channel; ``since_seq`` recovers what was missed."""

    channel: ChannelId
    since_seq: int | None = Field(None, ge=0)
    limit: int | None = Field(None, ge=1, le=500)


class ChannelRef(Payload):
    """``channel:leave``."""

    channel: ChannelId


class MessageSend(Payload):
    """``message:send``."""

    channel: ChannelId
    text: str = Field(max_length=HARD_TEXT_CAP)
    client_id: ClientId | None = None
    thread_id: MessageId | None = None


class MessageEdit(Payload):
    """``message:edit``."""

    id: MessageId
    text: str = Field(max_length=HARD_TEXT_CAP)


class MessageRef(Payload):
    """``message:delete``."""

    id: MessageId


class Reaction(Payload):
    """``reaction:add`` / ``reaction:remove``."""

    id: MessageId
    emoji: Emoji


class Typing(Payload):
    """``typing``."""

    channel: ChannelId
    typing: bool


class Read(Payload):
    """``read``: the highest seq the user has seen in a channel."""

    channel: ChannelId
    seq: int = Field(ge=0)


class DmOpen(Payload):
    """``dm:open``: the direct-message channel with another user."""

    user_id: UserId
    name: Annotated[str, StringConstraints(max_length=128)] | None = None


class PresenceSet(Payload):
    """``presence:set``."""

    status: Literal["online", "away"]


class PresenceSubscribe(Payload):
    """``presence:subscribe``: the presence pushes this socket wants."""

    mode: Literal["all", "batch", "channels", "none"]


class ChannelCreate(Payload):
    """``POST /api/v1/channels`` (role admin)."""

    id: NewChannelId
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    kind: Literal["public", "private", "announcement"] = "public"
    read_roles: list[Role] | None = None
    post_roles: list[Role] | None = None
    category: Category | None = None


class ChannelUpdate(Payload):
    """``PATCH /api/v1/channels/{channel}`` (role admin): ``category`` null uncategorises."""

    category: Category | None
