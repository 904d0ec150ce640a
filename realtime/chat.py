"""Community chat (namespace ``/``): channels, permissions, messages, reactions, read state, DMs.

``ChatService`` holds the logic and is shared with the REST API; ``register_chat`` binds the
socket events to it through the hub.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import socketio

from realtime import chat_models as m
from realtime.errors import AppError
from realtime.identity import Principal
from realtime.plugins import HookRunner
from realtime.repair import DeliveryTracker
from realtime.tasks import TaskOwner
from storage.base import Channel, Conflict, Message, MessageDraft, NotFound, Store
from storage.seed import seed_channels

log = logging.getLogger(__name__)
NS = "/"
STAFF = frozenset({"admin", "moderator"})
def room(channel_id: str) -> str:
    """The Socket.IO room of a channel."""
    return "ch:" + channel_id


def user_room(user_id: str) -> str:
    """The Socket.IO room every socket of one user is in."""
    return "user:" + user_id


def can_read(channel: Channel, who: Principal) -> bool:
    """Members list first (DMs), then admins, then the channel's read roles."""
    if channel.members is not None:
        return who.sub in channel.members
    if "admin" in who.roles:
        return True
    if channel.kind == "private" and not channel.read_roles:
        return who.has_any(STAFF)
    return not channel.read_roles or who.has_any(channel.read_roles)


def can_post(channel: Channel, who: Principal) -> bool:
    """Readers may post unless the channel restricts posting to roles."""
    if not can_read(channel, who):
        return False
    if channel.members is not None or "admin" in who.roles:
        return True
    roles = channel.post_roles or (list(STAFF) if channel.kind == "announcement" else [])
    return not roles or who.has_any(roles)


def user_dict(who: Principal) -> dict[str, Any]:
    """A principal as plugins see it."""
    return {"id": who.sub, "name": who.name, "roles": sorted(who.roles)}


class ChatService:
    """Chat logic over a store, a Socket.IO server and the hook runner."""

    def __init__(self, store: Store, sio: socketio.AsyncServer, hooks: HookRunner,
                 tasks: TaskOwner, max_text_chars: int, history_limit: int) -> None:
        self.store = store
        self.sio = sio
        self.hooks = hooks
        self.tasks = tasks
        self.max_text_chars = max_text_chars
        self.history_limit = history_limit
        self.channels: dict[str, Channel] = {}
        #: Set when several nodes share the channels (see realtime.repair).
        self.tracker: DeliveryTracker | None = None

    async def load(self, seed: bool) -> None:
        """Seed the default channels (idempotent) and cache every channel."""
        if seed:
            await seed_channels(self.store)
        self.channels = {c.id: c for c in await self.store.list_channels()}

    # channels ------------------------------------------------------------------------------
    async def channel(self, channel_id: str) -> Channel:
        """A channel by id (cache first, then the store); ``not_found`` otherwise."""
        channel = self.channels.get(channel_id)
        if channel is None:
            channel = await self.store.get_channel(channel_id)
            if channel is None:
                raise AppError("not_found", f"no channel {channel_id}")
            self.channels[channel_id] = channel
        return channel

    async def readable(self, channel_id: str, who: Principal) -> Channel:
        """The channel if ``who`` may read it; ``forbidden`` otherwise."""
        channel = await self.channel(channel_id)
        if not can_read(channel, who):
            raise AppError("forbidden", f"you may not read {channel_id}")
        return channel

    async def visible_channels(self, who: Principal) -> list[dict[str, Any]]:
        """The channels ``who`` may read, with their last seq and the user's read seq."""
        self.channels.update({c.id: c for c in await self.store.list_channels()})
        reads = await self.store.read_state(who.sub)
        return [{**c.public(), "read_seq": reads.get(c.id, 0), "can_post": can_post(c, who)}
                for c in sorted(self.channels.values(), key=lambda c: c.id) if can_read(c, who)]

    async def create_channel(self, body: m.ChannelCreate) -> Channel:
        """Create a channel (the caller's admin role is checked by the API)."""
        channel = Channel(id=body.id, name=body.name or body.id, kind=body.kind,
                          read_roles=list(body.read_roles or []),
                          post_roles=list(body.post_roles or []), category=body.category)
        try:
            channel = await self.store.create_channel(channel)
        except Conflict:
            raise AppError("conflict", f"channel {body.id} exists") from None
        self.channels[channel.id] = channel
        return channel

    async def set_category(self, channel_id: str, category: str | None) -> Channel:
        """Set or clear a channel's category (the caller's admin role is checked by the API)."""
        try:
            channel = await self.store.set_channel_category(channel_id, category)
        except NotFound:
            raise AppError("not_found", f"unknown channel {channel_id[:80]!r}") from None
        self.channels[channel.id] = channel
        return channel

    async def open_dm(self, who: Principal, other_id: str, other_name: str | None) -> Channel:
        """The DM channel of ``who`` and ``other_id``, created on first use."""
        if other_id == who.sub:
            raise AppError("invalid", "a direct message needs another user")
        pair = sorted([who.sub, other_id])
        digest = hashlib.sha256("\x00".join(pair).encode()).hexdigest()[:20]
        name = f"{who.name} & {other_name or other_id}"
        channel = await self.store.ensure_channel(
            Channel(id=f"dm-{digest}", name=name, kind="dm", members=pair))
        self.channels[channel.id] = channel
        await self.sio.emit("channel:new", channel.public(), to=user_room(other_id), namespace=NS)
        return channel

    # history -------------------------------------------------------------------------------
    async def history(self, channel: Channel, *, before_seq: int | None = None,
                      after_seq: int | None = None, limit: int | None = None,
                      thread_id: str | None = None) -> tuple[list[Message], bool]:
        """A page of messages and whether more lie beyond it."""
        limit = min(limit or self.history_limit, 500)
        page = await self.store.history(channel.id, before_seq=before_seq, after_seq=after_seq,
                                        limit=limit + 1, thread_id=thread_id)
        if len(page) <= limit:
            return page, False
        return (page[:limit] if after_seq is not None else page[1:]), True

    # messages ------------------------------------------------------------------------------
    def _check_text(self, text: str) -> None:
        if len(text) > self.max_text_chars:
            raise AppError("too_large", f"text is longer than {self.max_text_chars} characters",
                           max_chars=self.max_text_chars)
        if not text.strip():
            raise AppError("invalid", "text is empty")

    async def send(self, who: Principal, body: m.MessageSend) -> dict[str, Any]:
        """Check, moderate, store durably, fan out; return the stored message (or a hold)."""
        channel = await self.channel(body.channel)
        if not can_post(channel, who):
            raise AppError("forbidden", f"you may not post in {body.channel}")
        self._check_text(body.text)
        thread_id = await self._thread_root(channel, body.thread_id)
        draft = {"channel": channel.id, "text": body.text, "client_id": body.client_id,
                 "thread_id": thread_id}
        text = body.text
        if self.hooks.has("gigvora_message_pre_store"):
            if body.client_id is not None:  # a retry returns the first message, unchecked
                first = await self.store.find_by_client_id(channel.id, who.sub, body.client_id)
                if first is not None:
                    return first.public()
            verdict = await self.hooks.pre_store(draft, user_dict(who))
            if verdict.action == "block":
                raise AppError(verdict.code, verdict.reason or "message refused by moderation")
            if verdict.action == "hold":
                return {"status": "held", "reason": verdict.reason, **verdict.data}
            if verdict.action == "transform" and verdict.text is not None:
                text = verdict.text
        message, created = await self._store(MessageDraft(channel.id, who.sub, who.name, text,
                                                          body.client_id, thread_id))
        public = message.public()
        if created:
            await self.publish(public)
        return public

    async def store_and_publish(self, draft: MessageDraft) -> dict[str, Any]:
        """Store a message that was already checked (e.g. a held message a moderator
        approved) and fan it out; returns the message object."""
        message, created = await self._store(draft)
        public = message.public()
        if created:
            await self.publish(public)
        return public

    async def _store(self, draft: MessageDraft) -> tuple[Message, bool]:
        try:
            return await self.store.append_message(draft)
        except NotFound:
            raise AppError("not_found", f"no channel {draft.channel}") from None

    async def publish(self, public: dict[str, Any]) -> None:
        """Fan a stored message out to its channel and tell the plugins."""
        if self.tracker is not None:
            self.tracker.accept(public["channel"], public["seq"])
        await self.sio.manager.emit("message:new", public, NS, room=room(public["channel"]),
                                    seq=public["seq"])
        if self.hooks.has("gigvora_message_stored"):
            self.tasks.spawn(self.hooks.notify("gigvora_message_stored", message=public),
                             name="hook:message_stored")

    async def _thread_root(self, channel: Channel, thread_id: str | None) -> str | None:
        if thread_id is None:
            return None
        root = await self.store.get_message(thread_id)
        if root is None or root.channel != channel.id or root.deleted:
            raise AppError("not_found", f"no message {thread_id} in {channel.id}")
        return root.thread_id or root.id

    async def _own_message(self, who: Principal, message_id: str, *, staff_ok: bool
                           ) -> tuple[Message, Channel]:
        message = await self.store.get_message(message_id)
        if message is None or message.deleted:
            raise AppError("not_found", f"no message {message_id}")
        channel = await self.readable(message.channel, who)
        if message.author_id != who.sub and not (staff_ok and who.has_any(STAFF)):
            raise AppError("forbidden", "only the author may change this message")
        return message, channel

    async def edit(self, who: Principal, body: m.MessageEdit) -> dict[str, Any]:
        """Replace the text of one's own message (moderated like a new one)."""
        message, channel = await self._own_message(who, body.id, staff_ok=False)
        self._check_text(body.text)
        text = body.text
        if self.hooks.has("gigvora_message_pre_store"):
            draft = {"channel": channel.id, "text": text, "client_id": None,
                     "thread_id": message.thread_id, "edit_of": message.id}
            verdict = await self.hooks.pre_store(draft, user_dict(who))
            if verdict.action in ("block", "hold"):
                raise AppError("moderation_blocked", verdict.reason or "edit refused")
            text = verdict.text if verdict.action == "transform" and verdict.text else text
        updated = (await self._mutate(self.store.edit_message(body.id, text))).public()
        await self.sio.emit("message:updated", updated, to=room(channel.id), namespace=NS)
        return updated

    async def delete(self, who: Principal, body: m.MessageRef) -> dict[str, Any]:
        """Delete one's own message (moderators and admins: any message)."""
        _, channel = await self._own_message(who, body.id, staff_ok=True)
        deleted = (await self._mutate(self.store.delete_message(body.id))).public()
        await self.sio.emit("message:deleted", deleted, to=room(channel.id), namespace=NS)
        return {}

    async def react(self, who: Principal, body: m.Reaction, present: bool) -> dict[str, Any]:
        """Add or remove the caller's reaction."""
        message = await self.store.get_message(body.id)
        if message is None or message.deleted:
            raise AppError("not_found", f"no message {body.id}")
        await self.readable(message.channel, who)
        updated = (await self._mutate(self.store.set_reaction(body.id, body.emoji, who.sub,
                                                              present))).public()
        await self.sio.emit("message:updated", updated, to=room(message.channel), namespace=NS)
        return updated

    @staticmethod
    async def _mutate(write: Any) -> Message:
        try:
            result: Message = await write
        except NotFound as error:
            raise AppError("not_found", str(error)) from None
        return result

    async def mark_read(self, who: Principal, body: m.Read) -> dict[str, Any]:
        """Move the caller's read marker (clamped to the channel's last seq)."""
        channel = await self.readable(body.channel, who)
        last = (await self._fresh(channel.id)).last_seq
        seq = await self.store.set_read(who.sub, channel.id, min(body.seq, last))
        await self.sio.emit("read", {"channel": channel.id, "seq": seq},
                            to=user_room(who.sub), namespace=NS)
        return {"channel": channel.id, "seq": seq}

    async def join(self, sid: str, who: Principal, body: m.ChannelJoin) -> dict[str, Any]:
        """Enter the channel's room, then read history: nothing committed in between is lost
        (a message may arrive both live and in the ack; clients deduplicate by seq)."""
        channel = await self.readable(body.channel, who)
        await self.sio.enter_room(sid, room(channel.id), namespace=NS)
        fresh = await self._fresh(channel.id)
        if self.tracker is not None:
            self.tracker.track(channel.id, fresh.last_seq)
        messages, has_more = await self.history(fresh, after_seq=body.since_seq, limit=body.limit)
        reads = await self.store.read_state(who.sub)
        if self.hooks.has("gigvora_channel_join"):
            self.tasks.spawn(self.hooks.notify("gigvora_channel_join", user=user_dict(who),
                                               channel=channel.id), name="hook:channel_join")
        last_seq = max([fresh.last_seq, *(msg.seq for msg in messages)])
        return {"channel": channel.id, "last_seq": last_seq,
                "messages": [msg.public() for msg in messages], "has_more": has_more,
                "read_seq": reads.get(channel.id, 0), "kind": fresh.kind, "name": fresh.name,
                "can_post": can_post(fresh, who)}

    async def leave(self, sid: str, who: Principal, body: m.ChannelRef) -> dict[str, Any]:
        """Leave the channel's room (no error if not in it)."""
        await self.channel(body.channel)
        await self.sio.leave_room(sid, room(body.channel), namespace=NS)
        if self.hooks.has("gigvora_channel_leave"):
            self.tasks.spawn(self.hooks.notify("gigvora_channel_leave", user=user_dict(who),
                                               channel=body.channel), name="hook:channel_leave")
        return {}

    async def _fresh(self, channel_id: str) -> Channel:
        channel = await self.store.get_channel(channel_id)
        if channel is None:
            raise AppError("not_found", f"no channel {channel_id}")
        self.channels[channel_id] = channel
        return channel
