"""Socket events of namespace ``/``, bound to the chat service through the hub."""

from __future__ import annotations

from typing import Any

import socketio

from realtime import chat_models as m
from realtime.chat import NS, ChatService, user_dict
from realtime.errors import AppError
from realtime.hub import Hub
from realtime.identity import Principal
from realtime.limits import TypingThrottle
from realtime.plugins import HookRunner
from realtime.presence import Presence, RedisPresence
from realtime.presence_feed import PresenceFeed

MEMBERS = ("member", "agent", "moderator", "admin", "operator")


class ChatEvents:
    """The handlers of namespace ``/``; each one is short: parse happened in the hub."""

    def __init__(self, hub: Hub, chat: ChatService, presence: Presence | RedisPresence,
                 typing: TypingThrottle, hooks: HookRunner, feed: PresenceFeed) -> None:
        self.hub = hub
        self.chat = chat
        self.presence = presence
        self.feed = feed
        self.typing_throttle = typing
        self.hooks = hooks
        self.sio: socketio.AsyncServer = hub.sio

    def register(self) -> None:
        """Bind every event of namespace ``/``."""
        hub = self.hub
        hub.namespace(NS)
        hub.on_connect(NS, self.connected)
        hub.on_disconnect(NS, self.disconnected)
        on = hub.on
        on(NS, "channel:join", self.join, m.ChannelJoin, MEMBERS)
        on(NS, "channel:leave", self.leave, m.ChannelRef, MEMBERS)
        on(NS, "channel:list", self.list_channels, None, MEMBERS)
        on(NS, "message:send", self.send, m.MessageSend, MEMBERS, limited=True)
        on(NS, "message:edit", self.edit, m.MessageEdit, MEMBERS, limited=True)
        on(NS, "message:delete", self.delete, m.MessageRef, MEMBERS, limited=True)
        on(NS, "reaction:add", self.react_add, m.Reaction, MEMBERS, limited=True)
        on(NS, "reaction:remove", self.react_remove, m.Reaction, MEMBERS, limited=True)
        on(NS, "typing", self.typing, m.Typing, MEMBERS)
        on(NS, "read", self.read, m.Read, MEMBERS)
        on(NS, "dm:open", self.dm_open, m.DmOpen, MEMBERS, limited=True)
        on(NS, "presence:set", self.presence_set, m.PresenceSet, MEMBERS)
        on(NS, "presence:list", self.presence_list, None, MEMBERS)
        on(NS, "presence:subscribe", self.presence_subscribe, m.PresenceSubscribe, MEMBERS)

    # connection ----------------------------------------------------------------------------
    async def connected(self, sid: str, who: Principal, namespace: str) -> None:
        """Subscribe the socket to presence pushes; announce the user if this is their first
        tab (the announcement goes out with the feed's next tick, after the CONNECT packet)."""
        await self.feed.attach(sid)
        if await self.presence.connect(who.sub, who.name, sid):
            self._announce(who, "online")
        if self.hooks.has("gigvora_client_connect"):
            await self.hooks.notify("gigvora_client_connect", user=user_dict(who), sid=sid,
                                    namespace=namespace)

    async def disconnected(self, sid: str, who: Principal, namespace: str) -> None:
        """Announce the user offline when their last tab closed."""
        self.feed.detach(sid)
        if await self.presence.disconnect(who.sub, sid):
            self._announce(who, "offline")
        if self.hooks.has("gigvora_client_disconnect"):
            await self.hooks.notify("gigvora_client_disconnect", user=user_dict(who), sid=sid,
                                    namespace=namespace)

    def _announce(self, who: Principal, status: str) -> None:
        self.feed.announce(who.public(), status)

    # events --------------------------------------------------------------------------------
    async def join(self, sid: str, who: Principal, body: m.ChannelJoin) -> Any:
        """``channel:join``; the user becomes visible to the channel's presence subscribers."""
        joined = await self.chat.join(sid, who, body)
        status = "online" if who.sub in self.feed.seen else await self.presence.status(who.sub)
        await self.feed.joined(sid, who.public(), status, joined["channel"])
        return joined

    async def leave(self, sid: str, who: Principal, body: m.ChannelRef) -> Any:
        """``channel:leave``."""
        left = await self.chat.leave(sid, who, body)
        await self.feed.left(sid, body.channel)
        return left

    async def list_channels(self, sid: str, who: Principal, _: Any) -> Any:
        """``channel:list``: the channels the caller may read."""
        return {"channels": await self.chat.visible_channels(who)}

    async def send(self, sid: str, who: Principal, body: m.MessageSend) -> Any:
        """``message:send``: acked after the message is durably stored."""
        return await self.chat.send(who, body)

    async def edit(self, sid: str, who: Principal, body: m.MessageEdit) -> Any:
        """``message:edit``."""
        return await self.chat.edit(who, body)

    async def delete(self, sid: str, who: Principal, body: m.MessageRef) -> Any:
        """``message:delete``."""
        return await self.chat.delete(who, body)

    async def react_add(self, sid: str, who: Principal, body: m.Reaction) -> Any:
        """``reaction:add``."""
        return await self.chat.react(who, body, True)

    async def react_remove(self, sid: str, who: Principal, body: m.Reaction) -> Any:
        """``reaction:remove``."""
        return await self.chat.react(who, body, False)

    async def typing(self, sid: str, who: Principal, body: m.Typing) -> Any:
        """``typing``: throttled per user and channel, sent to the channel's other sockets."""
        channel = await self.chat.readable(body.channel, who)
        if self.typing_throttle.allow(who.sub, channel.id, body.typing):
            await self.sio.emit("typing", {"channel": channel.id, "user": who.public(),
                                           "typing": body.typing},
                                to="ch:" + channel.id, skip_sid=sid, namespace=NS)
        return {}

    async def read(self, sid: str, who: Principal, body: m.Read) -> Any:
        """``read``: move the read marker."""
        return await self.chat.mark_read(who, body)

    async def dm_open(self, sid: str, who: Principal, body: m.DmOpen) -> Any:
        """``dm:open``: the DM channel with another user (created on first use)."""
        channel = await self.chat.open_dm(who, body.user_id, body.name)
        return channel.public()

    async def presence_set(self, sid: str, who: Principal, body: m.PresenceSet) -> Any:
        """``presence:set``: online or away."""
        if await self.presence.status(who.sub) == "offline":
            raise AppError("not_found", "not connected")
        if await self.presence.set_status(who.sub, body.status):
            self._announce(who, body.status)
        return {"status": body.status}

    async def presence_list(self, sid: str, who: Principal, _: Any) -> Any:
        """``presence:list``: who is online now."""
        return {"users": await self.presence.online()}

    async def presence_subscribe(self, sid: str, who: Principal,
                                 body: m.PresenceSubscribe) -> Any:
        """``presence:subscribe``: which presence pushes this socket gets (see presence_feed)."""
        channels = [r[3:] for r in self.sio.rooms(sid, namespace=NS) if r.startswith("ch:")]
        await self.feed.subscribe(sid, body.mode, channels)
        return {"mode": body.mode}
