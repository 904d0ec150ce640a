"""The bridge's logic: members' support messages, agents' actions, webhook events, and the
delivery of queued messages to Chatwoot.

Who is told what, exactly once: each stored message carries two compare-and-set flags
(``agents_notified``, ``member_notified``). A message the bridge posted is announced from
whichever comes first — the API answer or its webhook echo (recognised by ``source_id``) — and
the other path finds the flag set. Private notes and the member's own messages are never relayed
to the member.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from chatwoot_bridge import mirror
from chatwoot_bridge import models as m
from chatwoot_bridge.client import (
    ChatwootClient,
    ChatwootError,
    ChatwootRateLimited,
    ChatwootRejected,
    identifier_hash,
)
from realtime.errors import AppError
from realtime.identity import Principal
from storage.base import new_id
from storage.chatwoot import ChatwootRecords

log = logging.getLogger(__name__)
INBOX_NS = "/inbox"
MEMBER_NS = "/"
Emit = Callable[..., Awaitable[None]]
CONVERSATION_EVENTS = frozenset({"conversation_created", "conversation_updated",
                                 "conversation_status_changed", "conversation_opened",
                                 "conversation_resolved"})


@dataclass(frozen=True, slots=True)
class BridgeConfig:
    """What the service needs from the settings."""

    inbox_id: int
    hmac_token: str | None
    max_text_chars: int


def member_room(user_id: str) -> str:
    """The Socket.IO room of every socket of one user (joined by the hub on connect)."""
    return "user:" + user_id


def contact_identifier(user_id: str) -> str:
    """The Chatwoot contact ``identifier`` of a Gigvora member."""
    return "gv_user_" + user_id


def api_error(error: ChatwootError) -> AppError:
    """A Chatwoot failure as the answer to a synchronous agent action."""
    if isinstance(error, ChatwootRateLimited):
        return AppError("rate_limited", "Chatwoot is rate limiting; retry later",
                        retry_after_ms=int(error.retry_after * 1000))
    if isinstance(error, ChatwootRejected) and error.status == 404:
        return AppError("not_found", "Chatwoot does not know this conversation")
    if isinstance(error, ChatwootRejected) and error.status in (400, 422):
        return AppError("invalid", f"Chatwoot refused: {error}")
    return AppError("unavailable", "Chatwoot is unreachable; retry later", retry_after_ms=5000)


class SupportBridge:
    """Members ↔ Chatwoot ↔ agents (see the module docstring)."""

    def __init__(self, config: BridgeConfig, records: ChatwootRecords, client: ChatwootClient,
                 emit: Emit, wake_outbox: Callable[[], None]) -> None:
        self.config = config
        self.records = records
        self.client = client
        self.emit = emit
        self.wake_outbox = wake_outbox
        #: routing and SLA (``chatwoot_bridge.support.SupportDesk``), set by the plugin
        self.support: Any = None

    # members ----------------------------------------------------------------------------------
    def _text(self, text: str) -> str:
        text = text.strip()
        if not text:
            raise AppError("invalid", "text is empty")
        if len(text) > self.config.max_text_chars:
            raise AppError("too_large", "text is too long", max_chars=self.config.max_text_chars)
        return text

    async def member_send(self, who: Principal, body: m.SupportSend) -> dict[str, Any]:
        """``support:send``: stored and queued for Chatwoot; acked with the stored message."""
        if self.support is not None:
            await self.support.remember(who)
        mapping = await self.records.contact_for_user(who.sub)
        row = {"id": new_id(), "conversation_id": mapping["conversation_id"] if mapping else None,
               "user_id": who.sub, "message_type": "incoming", "private": False,
               "text": self._text(body.text), "origin": "member", "author_id": who.sub,
               "author_name": who.name, "author_kind": "member", "client_id": body.client_id,
               "status": "queued"}
        stored, created = await self.records.queue_message(row, "member:" + who.sub)
        if created:
            self.wake_outbox()
        return mirror.member_view(stored)

    async def member_history(self, who: Principal, body: m.SupportHistory) -> dict[str, Any]:
        """``support:history``: the member's support messages, never private notes."""
        rows = await self.records.member_history(who.sub, before_seq=body.before_seq,
                                                 limit=body.limit)
        return {"messages": [mirror.member_view(r) for r in rows],
                "has_more": len(rows) == body.limit}

    # agents -----------------------------------------------------------------------------------
    async def _known(self, conversation_id: int) -> dict[str, Any]:
        conv = await self.records.conversation(conversation_id)
        if conv is None:
            raise AppError("not_found", f"no conversation {conversation_id}")
        return conv

    async def agent_reply(self, who: Principal, body: m.InboxReply) -> dict[str, Any]:
        """``inbox:reply``: a reply or private note, queued durably; acked with the stored
        (``queued``) message and shown to every agent at once."""
        conv = await self._known(body.conversation_id)
        row = {"id": new_id(), "conversation_id": conv["id"], "user_id": conv["user_id"],
               "message_type": "outgoing", "private": body.private,
               "text": self._text(body.text), "origin": "agent", "author_id": who.sub,
               "author_name": who.name, "author_kind": "agent", "client_id": body.client_id,
               "status": "queued"}
        stored, created = await self.records.queue_message(row, f"conversation:{conv['id']}")
        if created:
            self.wake_outbox()
            await self._tell_agents(stored, new=True)
        return mirror.message_view(stored)

    async def agent_assign(self, who: Principal, body: m.InboxAssign) -> dict[str, Any]:
        """``inbox:assign``: an agent (``assignee_id``, null unassigns) and/or a team."""
        await self._known(body.conversation_id)
        try:
            if "assignee_id" in body.model_fields_set:
                await self.client.assign(body.conversation_id, assignee_id=body.assignee_id,
                                         unassign=body.assignee_id is None)
            if "team_id" in body.model_fields_set:
                await self.client.assign(body.conversation_id, team_id=body.team_id)
        except ChatwootError as error:
            raise api_error(error) from None
        return await self.refresh_conversation(body.conversation_id)

    async def agent_status(self, who: Principal, body: m.InboxStatus) -> dict[str, Any]:
        """``inbox:status``: open, pending, snoozed (``snoozed_until``) or resolved."""
        await self._known(body.conversation_id)
        try:
            await self.client.toggle_status(body.conversation_id, body.status,
                                            body.snoozed_until)
        except ChatwootError as error:
            raise api_error(error) from None
        return await self.refresh_conversation(body.conversation_id)

    async def agent_typing(self, who: Principal, body: m.InboxTyping) -> dict[str, Any]:
        """``inbox:typing``: passed to Chatwoot, whose webhook brings it back to the member
        (not for private notes) and to the other agents. Best effort: never queued."""
        await self._known(body.conversation_id)
        try:
            await self.client.toggle_typing(body.conversation_id, body.typing, body.private)
        except ChatwootError as error:
            raise api_error(error) from None
        return {"conversation_id": body.conversation_id, "typing": body.typing}

    async def agent_labels(self, who: Principal, body: m.InboxLabels) -> dict[str, Any]:
        """``inbox:labels``: replace the conversation's labels."""
        await self._known(body.conversation_id)
        try:
            await self.client.set_labels(body.conversation_id, list(body.labels))
        except ChatwootError as error:
            raise api_error(error) from None
        return await self.refresh_conversation(body.conversation_id)

    async def agent_list(self, who: Principal, body: m.InboxList) -> dict[str, Any]:
        """``inbox:list``: mirrored conversations (``refresh``: page through Chatwoot first)."""
        if body.refresh:
            try:
                async for conv in self.client.iter_conversations(status="all"):
                    await self._store_conversation(conv)
            except ChatwootError as error:
                raise api_error(error) from None
        rows = await self.records.conversations(status=body.status, limit=body.limit)
        slas = await self.support.slas([r["id"] for r in rows]) if self.support else {}
        return {"conversations": [{**mirror.conversation_view(r), "sla": slas.get(r["id"])}
                                  for r in rows]}

    async def agent_messages(self, who: Principal, body: m.InboxMessages) -> dict[str, Any]:
        """``inbox:messages``: a conversation's mirrored messages, private notes included."""
        await self._known(body.conversation_id)
        rows = await self.records.conversation_messages(
            body.conversation_id, before_seq=body.before_seq, limit=body.limit)
        return {"messages": [mirror.message_view(r) for r in rows],
                "has_more": len(rows) == body.limit}

    async def refresh_conversation(self, conversation_id: int,
                                   event: str = "conversation_updated") -> dict[str, Any]:
        """Read the conversation back from Chatwoot, store it, announce it; its view."""
        try:
            conv = await self.client.get_conversation(conversation_id)
        except ChatwootError as error:
            raise api_error(error) from None
        row = await self._store_conversation(conv, event)
        return await self.view(row)

    async def view(self, row: dict[str, Any]) -> dict[str, Any]:
        """A conversation's ``/inbox`` shape, with its ``sla`` (null: no policy applies)."""
        sla = await self.support.sla(row["id"]) if self.support is not None else None
        return {**mirror.conversation_view(row), "sla": sla}

    async def announce_conversation(self, row: dict[str, Any], event: str) -> None:
        """``inbox:conversation`` to every agent."""
        await self.emit("inbox:conversation", {**await self.view(row), "event": event},
                        namespace=INBOX_NS)

    # announcements ----------------------------------------------------------------------------
    async def _tell_agents(self, message: dict[str, Any], new: bool) -> None:
        if await self.records.mark_notified(message["id"], "agents"):
            await self.emit("inbox:message", mirror.message_view(message), namespace=INBOX_NS)
        elif not new:
            await self.emit("inbox:message:updated", mirror.message_view(message),
                            namespace=INBOX_NS)

    async def _tell_member(self, message: dict[str, Any], updated: bool = False) -> None:
        if not mirror.relayable(message):
            return
        room = member_room(message["user_id"])
        if await self.records.mark_notified(message["id"], "member"):
            await self.emit("support:message", mirror.member_view(message), to=room,
                            namespace=MEMBER_NS)
        elif updated:
            await self.emit("support:message:updated", mirror.member_view(message), to=room,
                            namespace=MEMBER_NS)

    async def _store_conversation(self, conv: dict[str, Any], event: str = "conversation_updated"
                                  ) -> dict[str, Any]:
        return (await self.store_conversation(conv, event))[0]

    async def store_conversation(self, conv: dict[str, Any], event: str = "conversation_updated"
                                 ) -> tuple[dict[str, Any], bool]:
        """Mirror a conversation snapshot (webhook or API object; an older one than stored is
        ignored), track it for routing/SLA and announce a change to agents. Returns the stored
        row and whether it changed."""
        user_id = None
        contact_id = mirror.conversation_row(conv)["contact_id"]
        if conv.get("inbox_id") == self.config.inbox_id and contact_id is not None:
            user_id = await self.records.user_for_contact(int(contact_id))
        row, changed = await self.records.upsert_conversation(
            mirror.conversation_row(conv, user_id))
        if self.support is not None:
            await self.support.seen(conv, row, event)
        if changed or event in ("conversation_created", "conversation_routed"):
            await self.announce_conversation(row, event)
        return row, changed

    # webhooks ---------------------------------------------------------------------------------
    async def handle_event(self, event: str, payload: dict[str, Any]) -> None:
        """Apply one verified webhook delivery to the mirror and tell who should know."""
        if event in CONVERSATION_EVENTS:
            await self._store_conversation(payload, event)
        elif event in ("message_created", "message_updated"):
            await self._on_message(event, payload)
        elif event in ("conversation_typing_on", "conversation_typing_off"):
            await self._on_typing(event == "conversation_typing_on", payload)
        else:
            log.debug("chatwoot event ignored", extra={"event": event})

    async def _on_message(self, event: str, payload: dict[str, Any]) -> None:
        conv = payload.get("conversation")
        user_id = None
        if isinstance(conv, dict) and "id" in conv:
            user_id = (await self._store_conversation(conv))["user_id"]
        await self.ingest_message(payload, user_id, created=event == "message_created")

    async def ingest_message(self, payload: dict[str, Any], user_id: str | None, *,
                             created: bool = True, at: float | None = None) -> dict[str, Any]:
        """Mirror one message (a ``message_created``/``message_updated`` payload, or an API
        message shaped like one by ``mirror.api_message_payload``) and tell who should know:
        a Chatwoot id seen before or the echo of a message the bridge posted updates the
        stored one, and the compare-and-set flags tell agents and the member once. The
        webhook worker and the reconciliation both come through here; ``at`` (epoch seconds,
        default now) is when it happened, for the SLA timers."""
        row = mirror.message_row(payload, user_id)
        stored, _, changed = await self.records.mirror_message_changes(
            row, mirror.echo_of(payload))
        await self._timers(stored, at)
        if created or changed:  # an update that changes nothing is not announced
            await self._tell_agents(stored, new=created)
            await self._tell_member(stored, updated=not created)
        return stored

    async def _timers(self, message: dict[str, Any], at: float | None = None) -> None:
        """Meet or start SLA timers; when they moved, agents get the conversation again
        (``event: "sla_updated"``) so their countdowns are never stale."""
        if self.support is None or not await self.support.on_message(message, at):
            return
        row = await self.records.conversation(int(message["conversation_id"]))
        if row is not None:
            await self.announce_conversation(row, "sla_updated")

    async def _on_typing(self, typing: bool, payload: dict[str, Any]) -> None:
        conv = payload.get("conversation") or {}
        user = payload.get("user") or {}
        private = bool(payload.get("is_private"))
        await self.emit("inbox:typing", {"conversation_id": conv.get("id"), "typing": typing,
                                         "private": private,
                                         "user": {"id": user.get("id"),
                                                  "name": user.get("name"),
                                                  "type": user.get("type")}},
                        namespace=INBOX_NS)
        if private or user.get("type") != "user" or "id" not in conv:
            return
        row = await self.records.conversation(int(conv["id"]))
        if row is not None and row["user_id"]:
            await self.emit("support:typing", {"typing": typing}, to=member_room(row["user_id"]),
                            namespace=MEMBER_NS)

    # delivery (called by the outbound worker) -------------------------------------------------
    async def deliver(self, message_id: str) -> None:
        """Post one queued message to Chatwoot; raise ``ChatwootError`` to retry later."""
        message = await self.records.message(message_id)
        if message is None or message["chatwoot_id"] is not None:
            return  # gone, or its echo already attached Chatwoot's id
        message_type: Literal["incoming", "outgoing"]
        if message["origin"] == "member":
            conversation_id = await self.ensure_conversation(message["user_id"],
                                                             message["author_name"])
            message_type = "incoming"
        else:
            conversation_id = int(message["conversation_id"])
            message_type = "outgoing"
        try:
            posted = await self.client.create_message(
                conversation_id, message["text"], message_type=message_type,
                private=message["private"], source_id=mirror.echo_source_id(message["id"]),
                echo_id=message["id"])
        except ChatwootRejected as error:
            if error.status == 404 and message["origin"] == "member":
                await self.records.link_conversation(message["user_id"], None)  # deleted
            raise
        conv = await self.records.conversation(conversation_id)
        stored = await self.records.message_posted(message["id"], int(posted["id"]),
                                                   conversation_id,
                                                   conv["user_id"] if conv else None)
        await self._timers(stored)
        await self._tell_agents(stored, new=False)
        await self._tell_member(stored)

    async def delivery_failed(self, message_id: str, error: str) -> None:
        """The message could not be posted for good: mark it and tell its author's side."""
        stored = await self.records.message_failed(message_id, error)
        await self.emit("inbox:message:updated", mirror.message_view(stored),
                        namespace=INBOX_NS)
        if stored["origin"] == "member":
            await self.emit("support:message:updated", mirror.member_view(stored),
                            to=member_room(stored["user_id"]), namespace=MEMBER_NS)

    async def ensure_conversation(self, user_id: str, name: str) -> int:
        """The member's support conversation; contact, contact_inbox and conversation are
        created in Chatwoot on first use."""
        mapping = await self.records.contact_for_user(user_id)
        if mapping is None or mapping["contact_id"] is None or mapping["source_id"] is None:
            mapping = await self._ensure_contact(user_id, name)
        if mapping["conversation_id"] is not None:
            return int(mapping["conversation_id"])
        conv = await self.client.create_conversation(
            inbox_id=self.config.inbox_id, contact_id=int(mapping["contact_id"]),
            source_id=mapping["source_id"])
        await self.records.upsert_conversation(mirror.conversation_row(conv, user_id))
        await self.records.link_conversation(user_id, int(conv["id"]))
        await self._store_conversation(conv, "conversation_created")
        return int(conv["id"])

    async def _ensure_contact(self, user_id: str, name: str) -> dict[str, Any]:
        identifier = contact_identifier(user_id)
        token = self.config.hmac_token
        digest = identifier_hash(token, identifier) if token else None
        contact = await self.client.find_contact(identifier)
        if contact is None:
            try:
                contact = await self.client.create_contact(
                    name=name, identifier=identifier,
                    custom_attributes={"gigvora_user_id": user_id})
            except ChatwootRejected as error:
                contact = await self.client.find_contact(identifier)  # created meanwhile?
                if error.status != 422 or contact is None:
                    raise
        source_id = next((ci.get("source_id") for ci in contact.get("contact_inboxes") or []
                          if (ci.get("inbox") or {}).get("id") == self.config.inbox_id), None)
        if source_id is None:
            # The member signed in to Gigvora (JWT); with the inbox's hmac_token configured the
            # identity is asserted as verified, like a widget's valid identifier_hash would.
            made = await self.client.create_contact_inbox(
                int(contact["id"]), self.config.inbox_id,
                hmac_verified=True if digest else None)
            source_id = made["source_id"]
        return await self.records.save_contact({
            "user_id": user_id, "user_name": name, "identifier": identifier,
            "identifier_hash": digest, "contact_id": int(contact["id"]),
            "source_id": source_id})
