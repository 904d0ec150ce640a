"""Models of the payloads the server emits (server → client), for the exported client contract.

Client → server payloads are the pydantic models registered on the hub; what the server emits is
built from dicts, so these models describe it for the React and Flutter SDK generators. They allow
extra fields: the server may add fields (clients must ignore what they do not know), never drop or
rename one without a new ``CONTRACT_VERSION`` (realtime/contracts.py). Feature events are described
here as data only; the core still never imports a feature.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Out(BaseModel):
    """Base of every server → client payload: open to additive fields."""

    model_config = ConfigDict(extra="allow")


class UserRef(Out):
    """A user as other users see them."""

    id: str
    name: str


class MessageOut(Out):
    """The message object (``message:new``, ``message:updated``, ``message:deleted``)."""

    id: str
    channel: str
    seq: int
    author: UserRef
    text: str
    created_at: str
    client_id: str | None = None
    thread_id: str | None = None
    edited_at: str | None = None
    deleted: bool
    reactions: dict[str, list[str]]


class ChannelOut(Out):
    """A channel (``channel:new`` when a DM is opened with you)."""

    id: str
    name: str
    kind: Literal["public", "private", "announcement", "dm"]
    read_roles: list[str]
    post_roles: list[str]
    members: list[str] | None
    created_at: str
    last_seq: int
    category: str | None


class TypingOut(Out):
    """``typing``: someone in a joined channel started or stopped typing."""

    channel: str
    user: UserRef
    typing: bool


class PresenceOut(Out):
    """``presence``: a user came online, went away or offline."""

    user: UserRef
    status: Literal["online", "away", "offline"]


class PresenceBatchOut(Out):
    """``presence:batch``: the presence changes of one tick (``presence:subscribe`` modes
    ``batch`` and ``channels``; with ``channel`` in the latter)."""

    channel: str | None = None
    users: list[PresenceOut]


class ReadOut(Out):
    """``read``: your read marker moved (sent to all your tabs)."""

    channel: str
    seq: int


class ResyncOut(Out):
    """``resync``: live delivery had an outage; refresh joined channels with ``since_seq``."""

    reason: str


# rooms (/rooms) ---------------------------------------------------------------------------------
class Participant(Out):
    """A participant of a room."""

    room: str
    participant_id: str
    user: UserRef | None = None
    role: str | None = None
    kinds: list[str] = []
    muted: list[str] = []
    host_muted: list[str] = []


class RoomLeft(Out):
    """``room:left``."""

    room: str
    participant_id: str
    reason: str | None = None
    by: str | None = None


class RoomParticipantRef(Out):
    """``room:host`` (the new host), ``room:unpublished``."""

    room: str
    participant_id: str


class RoomMuted(Out):
    """``room:muted``."""

    room: str
    participant_id: str
    kinds: list[str]
    muted: bool
    by: str
    state: list[str]
    host_muted: list[str]


class RoomKicked(Out):
    """``room:kicked`` (to the removed participant)."""

    room: str
    participant_id: str
    by: str
    reason: str | None = None


class RoomLocked(Out):
    """``room:locked``."""

    room: str
    locked: bool
    by: str


class RoomClosed(Out):
    """``room:closed`` (to every participant): a scheduled session ended or was cancelled."""

    room: str
    reason: str
    session_id: str | None = None


class RoomSession(Out):
    """``room:session`` (namespace ``/``, to the linked channel's room): a scheduled live
    session was ``scheduled``, ``reminder``, ``open``, ``ended`` or ``cancelled``."""

    state: str
    session: dict[str, Any]


class SubscriptionClosed(Out):
    """``rtc:subscription_closed``."""

    subscription_id: str
    reason: str


# moderation (/moderation and notifications on /) ----------------------------------------------
class Record(Out):
    """A moderation record (hold, report, sanction, appeal): its id and status fields."""

    id: str


class HoldDecided(Out):
    """``moderation:hold_decided`` (to the author): ``message`` once approved (then stored and
    delivered), ``reason`` when rejected."""

    hold_id: str
    status: Literal["approved", "rejected"]
    reason: str | None = None
    message: MessageOut | None = None


class AuditEntry(Out):
    """``moderation:action``: one entry of the hash-chained audit log."""

    seq: int
    at: str
    actor_id: str
    action: str
    target_type: str
    target_id: str
    reason: str
    details: dict[str, Any]
    correlation_id: str | None = None
    prev_hash: str
    hash: str


# support (/inbox and the member's support events on /) -----------------------------------------
class SupportAuthor(Out):
    """The author of a support message."""

    id: str | None
    name: str
    kind: str | None = None


class InboxMessage(Out):
    """``inbox:message`` / ``inbox:message:updated`` (agents; private notes flagged)."""

    id: str
    seq: int
    conversation_id: int | None
    type: Literal["incoming", "outgoing", "template"]
    private: bool
    text: str
    author: SupportAuthor
    status: str
    attachments: list[Any]
    created_at: str


class InboxSla(Out):
    """A conversation's SLA state (docs/chatwoot.md "SLA"); due times are ISO 8601 UTC."""

    policy: str
    first_response_due_at: str | None
    next_response_due_at: str | None
    resolution_due_at: str | None
    breached: list[Literal["first_response", "next_response", "resolution"]]


class InboxConversation(Out):
    """``inbox:conversation``: a conversation changed (``event`` names the Chatwoot event, or
    ``conversation_routed`` / ``sla_breached``); ``sla`` is null when no SLA policy applies."""

    id: int
    status: str
    member: dict[str, str] | None = None
    event: str | None = None
    sla: InboxSla | None = None


class InboxSlaBreach(Out):
    """``inbox:sla_breach``: an SLA target was missed (once per breach); sent to supervisors'
    connections only (role ``admin``)."""

    id: str
    conversation_id: int
    kind: Literal["first_response", "next_response", "resolution"]
    policy: str
    due_at: str
    breached_at: str
    assignee: dict[str, Any] | None
    team: dict[str, Any] | None


class InboxTyping(Out):
    """``inbox:typing``."""

    conversation_id: int | None
    typing: bool


class SupportMessage(Out):
    """``support:message`` / ``support:message:updated`` (the member's own conversation)."""

    id: str
    seq: int
    sender: Literal["member", "agent"] = Field(alias="from")
    text: str
    author: SupportAuthor
    status: str
    attachments: list[Any]
    created_at: str


class SupportTyping(Out):
    """``support:typing``: an agent is typing in the member's conversation."""

    typing: bool


class GigOut(Out):
    """A gig of the matching marketplace plugin (``plugins/matching``): a chat message of the
    gig channel starting with ``Gig:``, its title and its lower-case ``#skill`` tags."""

    id: str
    message_id: str
    channel: str
    seq: int
    author: UserRef
    title: str
    skills: list[str]
    created_at: str


class GigMatchOut(Out):
    """``gigs:match``: a new gig, and which of the receiver's subscribed skills it carries."""

    gig: GigOut
    skills: list[str]


@dataclass(frozen=True, slots=True)
class Emitted:
    """One server → client event; exported when ``requires`` (a client event of the same
    namespace, i.e. the feature is loaded) is registered, or always when it is None."""

    namespace: str
    event: str
    model: type[BaseModel]
    requires: str | None = None


EMITTED: tuple[Emitted, ...] = (
    Emitted("/", "message:new", MessageOut),
    Emitted("/", "message:updated", MessageOut),
    Emitted("/", "message:deleted", MessageOut),
    Emitted("/", "typing", TypingOut),
    Emitted("/", "presence", PresenceOut),
    Emitted("/", "presence:batch", PresenceBatchOut),
    Emitted("/", "read", ReadOut),
    Emitted("/", "channel:new", ChannelOut),
    Emitted("/", "resync", ResyncOut),
    Emitted("/", "moderation:hold_decided", HoldDecided, "message:report"),
    *(Emitted("/", event, Record, "message:report") for event in (
        "moderation:sanctioned", "moderation:sanction_lifted", "moderation:appeal_decided")),
    Emitted("/", "support:message", SupportMessage, "support:send"),
    Emitted("/", "support:message:updated", SupportMessage, "support:send"),
    Emitted("/", "support:typing", SupportTyping, "support:send"),
    Emitted("/rooms", "room:joined", Participant, "room:join"),
    Emitted("/rooms", "room:published", Participant, "room:join"),
    Emitted("/rooms", "room:unpublished", RoomParticipantRef, "room:join"),
    Emitted("/rooms", "room:left", RoomLeft, "room:join"),
    Emitted("/rooms", "room:host", RoomParticipantRef, "room:join"),
    Emitted("/rooms", "room:muted", RoomMuted, "room:join"),
    Emitted("/rooms", "room:kicked", RoomKicked, "room:join"),
    Emitted("/rooms", "room:locked", RoomLocked, "room:join"),
    Emitted("/rooms", "rtc:subscription_closed", SubscriptionClosed, "room:join"),
    Emitted("/rooms", "room:closed", RoomClosed, "room:join"),
    Emitted("/", "room:session", RoomSession),
    Emitted("/moderation", "moderation:held", Record),
    Emitted("/moderation", "moderation:report", Record),
    Emitted("/moderation", "moderation:appeal", Record),
    Emitted("/moderation", "moderation:action", AuditEntry),
    Emitted("/inbox", "inbox:message", InboxMessage),
    Emitted("/inbox", "inbox:message:updated", InboxMessage),
    Emitted("/inbox", "inbox:conversation", InboxConversation),
    Emitted("/inbox", "inbox:typing", InboxTyping),
    Emitted("/inbox", "inbox:sla_breach", InboxSlaBreach),
    # marketplace plugins (entry points, GIGVORA_PLUGINS_ALLOW): exported when loaded
    Emitted("/", "gigs:match", GigMatchOut, "gigs:subscribe"),
)
