"""A fake Chatwoot 4.13 (aiohttp) that follows ``chatwoot-contract/``: the Application API paths
the bridge uses, payload shapes of ``samples/``, status codes and error bodies, the
``api_access_token`` check, a 429 mode (rack-attack's plain-text ``Retry later``) and a down mode
(503, or refused connections when stopped); a webhook target that is down
(``webhooks_down``: deliveries fail, are not retried, and a message whose ``message_created``
could not be delivered is marked ``failed`` with ``content_attributes.external_error``, as
Chatwoot does); activity messages for status, assignee, team and label changes (they move
``last_activity_at`` and show in ``GET …/messages`` but are never sent as webhooks); the
dashboard's own actions (``dashboard_*``, ``agent_reply``); and SIGNED webhooks
(``X-Chatwoot-Delivery``, ``X-Chatwoot-Timestamp``, ``X-Chatwoot-Signature`` over
``"<ts>.<raw body>"``) sent like Rails sends them: compact JSON with ``<`` ``>`` ``&`` escaped.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

ACCOUNT = {"id": 7, "name": "Gigvora"}
INBOX = {"id": 14, "name": "Gigvora Live Core"}
AGENTS = {21: {"id": 21, "name": "Marco Silva", "email": "marco@gigvora.example"},
          24: {"id": 24, "name": "Aiko Tanaka", "email": "aiko@gigvora.example"}}
TEAMS = {4: {"id": 4, "name": "tier-2 support"}}
#: The account's labels (``GET /labels``: ``app/views/api/v1/accounts/labels/index.json.jbuilder``)
LABELS = ({"id": 1, "title": "billing", "description": "Invoices, VAT and payouts",
           "color": "#1f93ff", "show_on_sidebar": True},
          {"id": 2, "title": "orders", "description": "", "color": "#7cc576",
           "show_on_sidebar": True},
          {"id": 3, "title": "vip", "description": "Priority members", "color": "#ff5a5f",
           "show_on_sidebar": False})
BOT_USER = {"id": 30, "name": "Gigvora Bridge", "email": "bridge@gigvora.example"}
MESSAGE_TYPES = {"incoming": 0, "outgoing": 1, "activity": 2, "template": 3}


def rails_json(body: Any) -> bytes:
    """``payload.to_json`` as Rails writes it: compact, UTF-8, ``<>&`` escaped."""
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").encode()


def sign(secret: str, timestamp: str, raw: bytes) -> str:
    """``sha256=`` + hex HMAC-SHA256(secret, "<timestamp>.<raw body>")."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + raw, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def iso(epoch: float) -> str:
    """ISO-8601 UTC with milliseconds, like Rails."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


@dataclass
class Delivery:
    """One webhook POST the fake made."""

    event: str
    delivery_id: str
    timestamp: str
    raw: bytes
    status: int


@dataclass
class FakeChatwoot:
    """State and behaviour of the fake (see module docstring)."""

    token: str = "cw-token-123"
    webhook_secret: str = "Xb4kR9sT2vWq7LmN3pZc8HfD"
    account_id: int = 7
    inbox_id: int = 14
    webhook_url: str | None = None
    mode: str = "ok"  # ok | down | rate_limited
    #: the webhook target is unreachable: deliveries fail (status 0) and are not retried
    webhooks_down: bool = False
    retry_after: int = 1
    contacts: dict[int, dict[str, Any]] = field(default_factory=dict)
    labels: list[dict[str, Any]] = field(default_factory=lambda: [dict(x) for x in LABELS])
    availability: dict[int, str] = field(default_factory=lambda: {21: "online", 24: "busy"})
    contact_inboxes: dict[int, dict[str, Any]] = field(default_factory=dict)
    conversations: dict[int, dict[str, Any]] = field(default_factory=dict)
    messages: dict[int, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    refused: int = 0
    next_contact: int = 3077
    next_conversation: int = 1190
    next_message: int = 90230
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    runner: web.AppRunner | None = None
    url: str = ""

    # server -----------------------------------------------------------------------------------
    def app(self) -> web.Application:
        """The aiohttp application."""
        app = web.Application(middlewares=[self._gate])
        base = f"/api/v1/accounts/{self.account_id}"
        app.router.add_routes([
            web.post(f"{base}/contacts", self.create_contact),
            web.get(f"{base}/contacts/search", self.search_contacts),
            web.post(f"{base}/contacts/{{id}}/contact_inboxes", self.create_contact_inbox),
            web.post(f"{base}/conversations", self.create_conversation),
            web.get(f"{base}/conversations", self.list_conversations),
            web.get(f"{base}/conversations/{{id}}", self.show_conversation),
            web.post(f"{base}/conversations/{{id}}/messages", self.create_message),
            web.get(f"{base}/conversations/{{id}}/messages", self.list_messages),
            web.patch(f"{base}/conversations/{{id}}/messages/{{message_id}}",
                      self.update_message_status),
            web.post(f"{base}/conversations/{{id}}/toggle_status", self.toggle_status),
            web.post(f"{base}/conversations/{{id}}/toggle_typing_status", self.toggle_typing),
            web.post(f"{base}/conversations/{{id}}/assignments", self.assign),
            web.post(f"{base}/conversations/{{id}}/labels", self.set_labels),
            web.get(f"{base}/conversations/{{id}}/labels", self.get_labels),
            web.get(f"{base}/agents", self.list_agents),
            web.get(f"{base}/labels", self.list_labels)])
        return app

    async def start(self) -> FakeChatwoot:
        """Listen on a free port."""
        self.runner = web.AppRunner(self.app(), handle_signals=False)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}"
        return self

    async def stop(self) -> None:
        """Finish pending webhooks and stop listening."""
        await self.drain()
        if self.runner is not None:
            await self.runner.cleanup()

    async def drain(self) -> None:
        """Wait for every webhook the fake is sending."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    @web.middleware
    async def _gate(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self.mode == "down":
            self.refused += 1
            return web.Response(status=503, text="Service Unavailable")
        if self.mode == "rate_limited":
            self.refused += 1
            return web.Response(status=429, text="Retry later",
                                headers={"Retry-After": str(self.retry_after)})
        token = request.headers.get("api_access_token")
        if token is None:
            return web.json_response({"errors": ["You need to sign in or sign up before "
                                                 "continuing."]}, status=401)
        if token != self.token:
            return web.json_response({"error": "Invalid Access Token"}, status=401)
        body = await request.json() if request.can_read_body else None
        self.requests.append((request.method, request.path_qs, body))
        return await handler(request)

    # helpers ----------------------------------------------------------------------------------
    def calls(self, method: str, suffix: str) -> list[Any]:
        """Bodies of the requests ``method`` whose path ends with ``suffix``."""
        return [b for m, p, b in self.requests if m == method and p.split("?")[0].endswith(
            suffix)]

    def _conversation(self, request: web.Request) -> dict[str, Any]:
        conv = self.conversations.get(int(request.match_info["id"]))
        if conv is None:
            raise web.HTTPNotFound(text=json.dumps({"error": "Resource could not be found"}),
                                   content_type="application/json")
        return conv

    def contact_push(self, contact: dict[str, Any]) -> dict[str, Any]:
        """``contact.push_event_data``."""
        return {"additional_attributes": contact["additional_attributes"],
                "custom_attributes": contact["custom_attributes"], "email": contact["email"],
                "id": contact["id"], "identifier": contact["identifier"],
                "name": contact["name"], "phone_number": None, "thumbnail": "",
                "blocked": False, "type": "contact"}

    def contact_record(self, contact: dict[str, Any]) -> dict[str, Any]:
        """The contact as the API renders it."""
        return {"additional_attributes": contact["additional_attributes"],
                "availability_status": "offline", "email": contact["email"],
                "id": contact["id"], "name": contact["name"], "phone_number": None,
                "blocked": False, "identifier": contact["identifier"], "thumbnail": "",
                "custom_attributes": contact["custom_attributes"],
                "created_at": contact["created_at"],
                "contact_inboxes": [{"source_id": ci["source_id"], "inbox": self.inbox_slim()}
                                    for ci in self.contact_inboxes.values()
                                    if ci["contact_id"] == contact["id"]]}

    def inbox_slim(self) -> dict[str, Any]:
        """``_inbox_slim``."""
        return {"id": self.inbox_id, "avatar_url": "", "channel_id": 3,
                "name": INBOX["name"], "channel_type": "Channel::Api", "provider": None}

    # contacts ---------------------------------------------------------------------------------
    async def create_contact(self, request: web.Request) -> web.Response:
        """``POST /contacts``."""
        body = await request.json()
        ident = body.get("identifier")
        if ident and any(c["identifier"] == ident for c in self.contacts.values()):
            return web.json_response({"message": "Identifier has already been taken",
                                      "attributes": ["identifier"]}, status=422)
        self.next_contact += 1
        contact = {"id": self.next_contact, "name": body.get("name") or "anon",
                   "identifier": ident, "email": body.get("email"),
                   "custom_attributes": body.get("custom_attributes") or {},
                   "additional_attributes": body.get("additional_attributes") or {},
                   "created_at": int(time.time())}
        self.contacts[contact["id"]] = contact
        contact_inbox = None
        if body.get("inbox_id"):
            ci = self._add_contact_inbox(contact["id"], body.get("source_id"), False)
            contact_inbox = {"inbox": {"id": self.inbox_id}, "source_id": ci["source_id"]}
        return web.json_response({"payload": {"contact": self.contact_record(contact),
                                              "contact_inbox": contact_inbox}})

    async def search_contacts(self, request: web.Request) -> web.Response:
        """``GET /contacts/search`` (15 per page)."""
        q = request.query.get("q")
        if not q:
            return web.json_response({"error": "Specify search string with parameter q"},
                                     status=422)
        page = request.query.get("page", "1")
        found = [c for c in self.contacts.values()
                 if q in (c["identifier"] or "") or q.lower() in c["name"].lower()]
        start = (int(page) - 1) * 15
        chunk = found[start:start + 15]
        return web.json_response({"meta": {"count": len(found), "current_page": page,
                                           "has_more": start + 15 < len(found)},
                                  "payload": [self.contact_record(c) for c in chunk]})

    def _add_contact_inbox(self, contact_id: int, source_id: str | None,
                           verified: bool) -> dict[str, Any]:
        ci: dict[str, Any] = {"id": 4455 + len(self.contact_inboxes), "contact_id": contact_id,
                              "inbox_id": self.inbox_id,
                              "source_id": source_id or str(uuid.uuid4()),
                              "hmac_verified": verified, "created_at": iso(time.time()),
                              "pubsub_token": uuid.uuid4().hex[:24]}
        self.contact_inboxes[ci["id"]] = ci
        return ci

    async def create_contact_inbox(self, request: web.Request) -> web.Response:
        """``POST /contacts/{id}/contact_inboxes``."""
        body = await request.json()
        if int(request.match_info["id"]) not in self.contacts:
            return web.json_response({"error": "Resource could not be found"}, status=404)
        ci = self._add_contact_inbox(int(request.match_info["id"]), body.get("source_id"),
                                     bool(body.get("hmac_verified")))
        return web.json_response({"source_id": ci["source_id"], "inbox": self.inbox_slim()})

    # conversations ----------------------------------------------------------------------------
    def conversation_api(self, conv: dict[str, Any]) -> dict[str, Any]:
        """The conversation object of the Application API."""
        contact = self.contacts[conv["contact_id"]]
        meta: dict[str, Any] = {"sender": self.contact_record(contact),
                                "channel": "Channel::Api", "hmac_verified": conv["verified"]}
        if conv["assignee_id"]:
            meta["assignee"] = {**AGENTS[conv["assignee_id"]], "role": "agent"}
            meta["assignee_type"] = "User"
        if conv["team_id"]:
            meta["team"] = TEAMS[conv["team_id"]]
        # the last message of any type, activity included (``_conversation.json.jbuilder``)
        last = [self.message_push(m) for m in self._conv_messages(conv["id"])][-1:]
        chat = [self.message_push(m) for m in self._conv_messages(conv["id"])
                if m["message_type"] != "activity"][-1:]
        return {"meta": meta, "id": conv["id"], "messages": last,
                "account_id": self.account_id, "uuid": conv["uuid"],
                "additional_attributes": conv["additional_attributes"],
                "agent_last_seen_at": 0, "assignee_last_seen_at": 0, "can_reply": True,
                "contact_last_seen_at": 0, "custom_attributes": {}, "inbox_id": self.inbox_id,
                "labels": conv["labels"], "muted": False, "snoozed_until": None,
                "status": conv["status"], "created_at": conv["created_at"],
                "updated_at": conv["updated_at"], "timestamp": conv["last_activity_at"],
                "first_reply_created_at": 0, "unread_count": 0,
                "last_non_activity_message": chat[0] if chat else None,
                "last_activity_at": conv["last_activity_at"], "priority": None,
                "waiting_since": 0, "sla_policy_id": None}

    def conversation_webhook(self, conv: dict[str, Any]) -> dict[str, Any]:
        """``conversation.webhook_data`` (samples/webhook_conversation_*.json)."""
        contact = self.contacts[conv["contact_id"]]
        ci = self.contact_inboxes[conv["contact_inbox_id"]]
        visible = [m for m in self._conv_messages(conv["id"])
                   if not m["private"] and m["message_type"] != "activity"]
        assignee = ({**AGENTS[conv["assignee_id"]], "available_name": "", "avatar_url": "",
                     "type": "user", "availability_status": "online", "thumbnail": ""}
                    if conv["assignee_id"] else None)
        return {"additional_attributes": conv["additional_attributes"], "can_reply": True,
                "channel": "Channel::Api",
                "contact_inbox": {"id": ci["id"], "contact_id": ci["contact_id"],
                                  "inbox_id": ci["inbox_id"], "source_id": ci["source_id"],
                                  "created_at": ci["created_at"],
                                  "updated_at": ci["created_at"],
                                  "hmac_verified": ci["hmac_verified"],
                                  "pubsub_token": ci["pubsub_token"]},
                "id": conv["id"], "inbox_id": self.inbox_id,
                "messages": [self.message_push(m) for m in visible[-1:]],
                "labels": conv["labels"],
                "meta": {"sender": self.contact_push(contact), "assignee": assignee,
                         "assignee_type": "User" if assignee else None,
                         "team": TEAMS.get(conv["team_id"] or 0),
                         "hmac_verified": ci["hmac_verified"]},
                "status": conv["status"], "custom_attributes": {}, "snoozed_until": None,
                "unread_count": 0, "first_reply_created_at": None, "priority": None,
                "waiting_since": 0, "agent_last_seen_at": 0, "contact_last_seen_at": 0,
                "last_activity_at": conv["last_activity_at"],
                "timestamp": conv["last_activity_at"], "created_at": conv["created_at"],
                "updated_at": conv["updated_at"]}

    async def create_conversation(self, request: web.Request) -> web.Response:
        """``POST /conversations`` (emits ``conversation_created``)."""
        body = await request.json()
        contact_id = body.get("contact_id")
        if contact_id not in self.contacts:
            return web.json_response({"error": "Resource could not be found"}, status=404)
        ci = next((c for c in self.contact_inboxes.values() if c["contact_id"] == contact_id
                   and (not body.get("source_id") or c["source_id"] == body["source_id"])),
                  None) or self._add_contact_inbox(contact_id, body.get("source_id"), False)
        self.next_conversation += 1
        now = time.time()
        conv = {"id": self.next_conversation, "contact_id": contact_id, "uuid": str(uuid.uuid4()),
                "contact_inbox_id": ci["id"], "verified": ci["hmac_verified"],
                "status": body.get("status", "open"), "assignee_id": None, "team_id": None,
                "labels": [], "additional_attributes": body.get("additional_attributes") or {},
                "created_at": int(now), "updated_at": now, "last_activity_at": int(now)}
        self.conversations[conv["id"]] = conv
        self.webhook("conversation_created", self.conversation_webhook(conv))
        return web.json_response(self.conversation_api(conv))

    def visitor_conversation(self, name: str, assignee_id: int | None = None,
                             additional_attributes: dict[str, Any] | None = None
                             ) -> dict[str, Any]:
        """A conversation started outside Gigvora (another contact of the inbox, perhaps
        already assigned by a person): stored and announced by ``conversation_created``."""
        self.next_contact += 1
        contact_id = self.next_contact
        self.contacts[contact_id] = {"id": contact_id, "name": name, "identifier": None,
                                     "email": None, "custom_attributes": {},
                                     "additional_attributes": {},
                                     "created_at": int(time.time())}
        ci = self._add_contact_inbox(contact_id, None, False)
        self.next_conversation += 1
        now = time.time()
        conv = {"id": self.next_conversation, "contact_id": contact_id,
                "uuid": str(uuid.uuid4()), "contact_inbox_id": ci["id"], "verified": False,
                "status": "open", "assignee_id": assignee_id, "team_id": None, "labels": [],
                "additional_attributes": additional_attributes or {},
                "created_at": int(now), "updated_at": now, "last_activity_at": int(now)}
        self.conversations[conv["id"]] = conv
        self.webhook("conversation_created", self.conversation_webhook(conv))
        return conv

    async def show_conversation(self, request: web.Request) -> web.Response:
        """``GET /conversations/{id}``."""
        return web.json_response(self.conversation_api(self._conversation(request)))

    async def list_conversations(self, request: web.Request) -> web.Response:
        """``GET /conversations`` (``app/finders/conversation_finder.rb``): filters ``status``
        (default open; ``all``), ``inbox_id``, ``team_id``, ``labels[]``, ``assignee_type``
        (me, unassigned, assigned, all: the counts in ``meta`` ignore it), ``sort_by``
        (default ``last_activity_at_desc``), 25 per ``page``; ``data{meta, payload}``."""
        q = request.query
        status = q.get("status", "open")
        found = [c for c in self.conversations.values()
                 if (status == "all" or c["status"] == status)
                 and ("inbox_id" not in q or int(q["inbox_id"]) == self.inbox_id)
                 and ("team_id" not in q or c["team_id"] == int(q["team_id"]))
                 and set(q.getall("labels[]", [])) <= set(c["labels"])]
        mine = [c for c in found if c["assignee_id"] == BOT_USER["id"]]
        assigned = [c for c in found if c["assignee_id"]]
        counts = {"mine_count": len(mine), "assigned_count": len(assigned),
                  "unassigned_count": len(found) - len(assigned), "all_count": len(found)}
        found = {"me": mine, "assigned": assigned,
                 "unassigned": [c for c in found if not c["assignee_id"]]}.get(
                     q.get("assignee_type", "all"), found)
        key, _, order = q.get("sort_by", "last_activity_at_desc").rpartition("_")
        if key not in ("last_activity_at", "created_at"):
            key, order = "last_activity_at", "desc"
        found = sorted(found, key=lambda c: (c[key], c["id"]), reverse=order == "desc")
        page = int(q.get("page", "1"))
        chunk = found[(page - 1) * 25:page * 25]
        return web.json_response({"data": {"meta": counts,
                                           "payload": [self.conversation_api(c) for c in chunk]}})

    async def toggle_status(self, request: web.Request) -> web.Response:
        """``POST …/toggle_status`` (emits status_changed and updated)."""
        conv = self._conversation(request)
        body = await request.json()
        self.set_status(conv, body.get("status") or (
            "resolved" if conv["status"] == "open" else "open"))
        return web.json_response({"meta": {}, "payload": {
            "success": True, "conversation_id": conv["id"], "current_status": conv["status"],
            "snoozed_until": None}})

    async def toggle_typing(self, request: web.Request) -> web.Response:
        """``POST …/toggle_typing_status`` ``{typing_status: on|off, is_private}``: head 200,
        then the ``conversation_typing_on/off`` webhook for the token's user."""
        conv = self._conversation(request)
        body = await request.json()
        if body.get("typing_status") not in ("on", "off", "recording"):
            raise web.HTTPUnprocessableEntity()
        self.typing(conv["id"], on=body["typing_status"] != "off",
                    private=bool(body.get("is_private")))
        return web.Response(status=200)

    async def assign(self, request: web.Request) -> web.Response:
        """``POST …/assignments``."""
        conv = self._conversation(request)
        body = await request.json()
        if "assignee_id" in body:
            self.set_assignee(conv, body["assignee_id"])
            agent = AGENTS.get(body["assignee_id"] or 0)
            return web.json_response({**agent, "account_id": self.account_id,
                                      "role": "agent"} if agent else None)
        self.set_team(conv, body.get("team_id"))
        return web.json_response(TEAMS.get(conv["team_id"] or 0))

    async def set_labels(self, request: web.Request) -> web.Response:
        """``POST …/labels`` (replaces the set)."""
        conv = self._conversation(request)
        labels = list((await request.json()).get("labels") or [])
        self.set_labels_of(conv, labels)
        return web.json_response({"payload": labels})

    # conversation changes (the API above and the dashboard helpers below) --------------------
    def set_status(self, conv: dict[str, Any], status: str, by: int = BOT_USER["id"]) -> None:
        """Change the status: an activity message, ``conversation_status_changed`` and
        ``conversation_updated``."""
        previous, conv["status"] = conv["status"], status
        verb = "reopened" if status == "open" else f"marked {status}"
        self._changed(conv, [{"status": {"previous_value": previous, "current_value": status}}],
                      status=True, activity=f"Conversation was {verb} by {self._name(by)}")

    def set_assignee(self, conv: dict[str, Any], assignee_id: int | None,
                     by: int = BOT_USER["id"]) -> None:
        """Assign an agent (None unassigns)."""
        previous, conv["assignee_id"] = conv["assignee_id"], assignee_id
        text = (f"Assigned to {self._name(assignee_id)} by {self._name(by)}" if assignee_id
                else f"Conversation unassigned by {self._name(by)}")
        self._changed(conv, [{"assignee_id": {"previous_value": previous,
                                              "current_value": assignee_id}}], activity=text)

    def set_team(self, conv: dict[str, Any], team_id: int | None,
                 by: int = BOT_USER["id"]) -> None:
        """Assign a team (an unknown one clears it)."""
        previous = conv["team_id"]
        conv["team_id"] = team_id if team_id in TEAMS else None
        team = TEAMS.get(conv["team_id"] or 0)
        text = (f"Assigned to {team['name']} by {self._name(by)}" if team
                else f"Unassigned from team by {self._name(by)}")
        self._changed(conv, [{"team_id": {"previous_value": previous,
                                          "current_value": conv["team_id"]}}], activity=text)

    def set_labels_of(self, conv: dict[str, Any], labels: list[str],
                      by: int = BOT_USER["id"]) -> None:
        """Replace the labels."""
        previous, conv["labels"] = conv["labels"], list(labels)
        added = [x for x in labels if x not in previous]
        text = f"{self._name(by)} added {', '.join(added)}" if added else (
            f"{self._name(by)} removed {', '.join(x for x in previous if x not in labels)}")
        self._changed(conv, [{"label_list": {"previous_value": previous,
                                             "current_value": labels}}], activity=text)

    @staticmethod
    def _name(user_id: int | None) -> str:
        return AGENTS.get(user_id or 0, BOT_USER)["name"]

    async def get_labels(self, request: web.Request) -> web.Response:
        """``GET …/labels``."""
        return web.json_response({"payload": self._conversation(request)["labels"]})

    # reference data -----------------------------------------------------------------------------
    def agent_record(self, agent: dict[str, Any]) -> dict[str, Any]:
        """``api/v1/models/_agent`` (the sample ``api_conversation_assignment_agent_response``)."""
        return {"id": agent["id"], "account_id": self.account_id,
                "availability_status": self.availability.get(agent["id"], "offline"),
                "auto_offline": True, "confirmed": True, "email": agent["email"],
                "provider": "email", "available_name": agent["name"].split()[0],
                "name": agent["name"], "role": "agent", "thumbnail": "",
                "custom_role_id": None}

    async def list_agents(self, request: web.Request) -> web.Response:
        """``GET /agents``: a bare array (``agents/index.json.jbuilder``)."""
        return web.json_response([self.agent_record(a) for a in AGENTS.values()])

    async def list_labels(self, request: web.Request) -> web.Response:
        """``GET /labels``: ``{payload: [{id, title, description, color, show_on_sidebar}]}``."""
        return web.json_response({"payload": self.labels})

    def _changed(self, conv: dict[str, Any], changes: list[dict[str, Any]],
                 status: bool = False, activity: str | None = None) -> None:
        previous = conv["updated_at"]
        conv["updated_at"] = time.time()
        if activity is not None:
            self.add_message(conv, activity, "activity")
        if status:
            self.webhook("conversation_status_changed", {
                **self.conversation_webhook(conv), "changed_attributes": None})
        changes = [*changes, {"updated_at": {"previous_value": iso(previous),
                                             "current_value": iso(conv["updated_at"])}}]
        self.webhook("conversation_updated", {**self.conversation_webhook(conv),
                                              "changed_attributes": changes})

    # messages ---------------------------------------------------------------------------------
    def _conv_messages(self, conversation_id: int) -> list[dict[str, Any]]:
        return [m for m in self.messages.values() if m["conversation_id"] == conversation_id]

    def message_sender(self, message: dict[str, Any]) -> dict[str, Any]:
        """The sender in API / push form."""
        if message["sender_type"] == "Contact":
            return self.contact_push(self.contacts[message["sender_id"]])
        agent = AGENTS.get(message["sender_id"], BOT_USER)
        return {"id": agent["id"], "name": agent["name"], "available_name": agent["name"],
                "avatar_url": "", "type": "user", "availability_status": "online",
                "thumbnail": ""}

    def message_api(self, m: dict[str, Any]) -> dict[str, Any]:
        """``_message.json.jbuilder``."""
        body = {"id": m["id"], "content": m["content"], "inbox_id": self.inbox_id,
                "conversation_id": m["conversation_id"],
                "message_type": MESSAGE_TYPES[m["message_type"]], "content_type": "text",
                "status": m["status"], "content_attributes": m["content_attributes"],
                "created_at": int(m["created_at"]), "private": m["private"],
                "source_id": m["source_id"]}
        if m["sender_type"] is not None:  # activity messages have no sender
            body["sender"] = self.message_sender(m)
        if m.get("echo_id"):
            body["echo_id"] = m["echo_id"]
        return body

    def message_push(self, m: dict[str, Any]) -> dict[str, Any]:
        """A message inside ``conversation.messages[]`` (integer ``message_type``)."""
        conv = self.conversations[m["conversation_id"]]
        ci = self.contact_inboxes[conv["contact_inbox_id"]]
        return {"id": m["id"], "content": m["content"], "account_id": self.account_id,
                "inbox_id": self.inbox_id, "conversation_id": m["conversation_id"],
                "message_type": MESSAGE_TYPES[m["message_type"]],
                "created_at": int(m["created_at"]), "updated_at": iso(m["created_at"]),
                "private": m["private"], "status": m["status"], "source_id": m["source_id"],
                "content_type": "text", "content_attributes": m["content_attributes"],
                "sender_type": m["sender_type"], "sender_id": m["sender_id"],
                "external_source_ids": {}, "additional_attributes": {},
                "processed_message_content": m["content"], "sentiment": {},
                "conversation": {"assignee_id": conv["assignee_id"], "unread_count": 0,
                                 "last_activity_at": conv["last_activity_at"],
                                 "contact_inbox": {"source_id": ci["source_id"]}},
                **({"sender": self.message_sender(m)} if m["sender_type"] else {})}

    def message_webhook(self, m: dict[str, Any]) -> dict[str, Any]:
        """``message.webhook_data`` (samples/webhook_message_created_*.json)."""
        conv = self.conversations[m["conversation_id"]]
        if m["sender_type"] == "Contact":
            contact = self.contacts[m["sender_id"]]
            sender: dict[str, Any] = {"account": ACCOUNT, **{
                k: v for k, v in self.contact_push(contact).items() if k != "type"},
                "avatar": ""}
        else:
            agent = AGENTS.get(m["sender_id"], BOT_USER)
            sender = {"id": agent["id"], "name": agent["name"], "email": agent["email"],
                      "type": "user"}
        body: dict[str, Any] = {
            "account": {"id": self.account_id, "name": ACCOUNT["name"]},
            "additional_attributes": {}, "content_attributes": m["content_attributes"],
            "content_type": "text",
            "content": m["content"], "conversation": self.conversation_webhook(conv),
            "created_at": iso(m["created_at"]), "id": m["id"], "inbox": INBOX,
            "message_type": m["message_type"], "private": m["private"], "sender": sender,
            "source_id": m["source_id"]}
        if m.get("attachments"):
            body["attachments"] = m["attachments"]
        return body

    def add_message(self, conv: dict[str, Any], content: str, message_type: str,
                    private: bool = False, source_id: str | None = None,
                    echo_id: str | None = None, sender_id: int | None = None,
                    attachments: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Store a message and emit ``message_created`` (incoming reopens a resolved one;
        activity messages only move ``last_activity_at``: ``webhook_sendable?`` is false)."""
        self.next_message += 1
        incoming = message_type == "incoming"
        activity = message_type == "activity"
        m = {"id": self.next_message, "conversation_id": conv["id"], "content": content,
             "message_type": message_type, "private": private, "source_id": source_id,
             "echo_id": echo_id, "created_at": time.time(), "status": "sent",
             "content_attributes": {},
             "sender_type": None if activity else "Contact" if incoming else "User",
             "sender_id": None if activity else conv["contact_id"] if incoming else (
                 sender_id or BOT_USER["id"]),
             "attachments": attachments}
        self.messages[m["id"]] = m
        conv["last_activity_at"] = int(m["created_at"])
        if activity:
            return m
        self.webhook("message_created", self.message_webhook(m))
        if incoming and conv["status"] == "resolved":
            conv["status"] = "open"
            self._changed(conv, [{"status": {"previous_value": "resolved",
                                             "current_value": "open"}}], status=True)
        return m

    async def create_message(self, request: web.Request) -> web.Response:
        """``POST …/messages``."""
        conv = self._conversation(request)
        body = await request.json()
        message_type = body.get("message_type", "outgoing")
        if message_type not in ("incoming", "outgoing"):
            return web.json_response({"error": f"'{message_type}' is not a valid message_type"},
                                     status=422)
        m = self.add_message(conv, body.get("content") or "", message_type,
                             bool(body.get("private")), body.get("source_id"),
                             body.get("echo_id"))
        return web.json_response(self.message_api(m))

    async def list_messages(self, request: web.Request) -> web.Response:
        """``GET …/messages`` (cursor pagination by id)."""
        conv = self._conversation(request)
        found = sorted(self._conv_messages(conv["id"]), key=lambda m: m["id"])
        before, after = request.query.get("before"), request.query.get("after")
        if before:
            found = [m for m in found if m["id"] < int(before)][-20:]
        elif after:
            found = [m for m in found if m["id"] > int(after)][:100]
        else:
            found = found[-20:]
        return web.json_response({"meta": {"labels": conv["labels"]},
                                  "payload": [self.message_api(m) for m in found]})

    async def update_message_status(self, request: web.Request) -> web.Response:
        """``PATCH …/messages/{id}`` ``{status, external_error?}`` (API inboxes; read →
        delivered is ignored); emits ``message_updated``."""
        conv = self._conversation(request)
        m = self.messages.get(int(request.match_info["message_id"]))
        if m is None or m["conversation_id"] != conv["id"]:
            return web.json_response({"error": "Resource could not be found"}, status=404)
        body = await request.json()
        status = body.get("status")
        if status not in ("sent", "delivered", "read", "failed"):
            return web.json_response({"error": f"'{status}' is not a valid status"},
                                     status=422)
        if not (m["status"] == "read" and status == "delivered"):
            m["status"] = status
            attributes = {k: v for k, v in m["content_attributes"].items()
                          if k != "external_error"}
            if body.get("external_error"):
                attributes["external_error"] = body["external_error"]
            m["content_attributes"] = attributes
            self.webhook("message_updated", self.message_webhook(m))
        return web.json_response(self.message_api(m))

    # the Chatwoot dashboard (what agents do outside Gigvora) ---------------------------------
    def agent_reply(self, conversation_id: int, text: str, private: bool = False,
                    agent_id: int = 21,
                    attachments: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """An agent answers in Chatwoot's own dashboard."""
        return self.add_message(self.conversations[conversation_id], text, "outgoing",
                                private=private, sender_id=agent_id, attachments=attachments)

    def typing(self, conversation_id: int, on: bool = True, private: bool = False) -> None:
        """An agent types (``conversation_typing_on/off``)."""
        conv = self.conversations[conversation_id]
        self.webhook("conversation_typing_on" if on else "conversation_typing_off", {
            "user": {**AGENTS[21], "type": "user"},
            "conversation": self.conversation_webhook(conv), "is_private": private})

    def dashboard_status(self, conversation_id: int, status: str, agent_id: int = 21) -> None:
        """An agent changes the status in Chatwoot's dashboard."""
        self.set_status(self.conversations[conversation_id], status, by=agent_id)

    def dashboard_labels(self, conversation_id: int, labels: list[str],
                         agent_id: int = 21) -> None:
        """An agent sets the labels in Chatwoot's dashboard."""
        self.set_labels_of(self.conversations[conversation_id], labels, by=agent_id)

    def dashboard_assign(self, conversation_id: int, assignee_id: int | None,
                         agent_id: int = 21) -> None:
        """An agent (re)assigns the conversation in Chatwoot's dashboard."""
        self.set_assignee(self.conversations[conversation_id], assignee_id, by=agent_id)

    # webhooks ---------------------------------------------------------------------------------
    def webhook(self, event: str, payload: dict[str, Any]) -> None:
        """Send ``payload + {event}`` to the webhook URL, asynchronously (like Sidekiq)."""
        if self.webhook_url is None:
            return
        typing = event.startswith("conversation_typing")
        body = {"event": event, **payload} if typing else {**payload, "event": event}
        # the target's state when the event happens (Sidekiq sends it a moment later)
        task = asyncio.get_running_loop().create_task(self._post(event, body,
                                                                 self.webhooks_down))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def signed_request(self, body: dict[str, Any], *, timestamp: int | None = None,
                       delivery_id: str | None = None,
                       secret: str | None = None) -> tuple[bytes, dict[str, str]]:
        """The raw body and headers of one delivery (exposed for forged/stale/replay tests)."""
        raw = rails_json(body)
        ts = str(int(time.time()) if timestamp is None else timestamp)
        headers = {"Content-Type": "application/json", "Accept": "application/json",
                   "X-Chatwoot-Delivery": delivery_id or str(uuid.uuid4()),
                   "X-Chatwoot-Timestamp": ts,
                   "X-Chatwoot-Signature": sign(secret or self.webhook_secret, ts, raw)}
        return raw, headers

    async def _post(self, event: str, body: dict[str, Any], down: bool = False) -> None:
        raw, headers = self.signed_request(body)
        status = 0 if down else await self._send(raw, headers)
        self.deliveries.append(Delivery(event, headers["X-Chatwoot-Delivery"],
                                        headers["X-Chatwoot-Timestamp"], raw, status))
        if not 200 <= status < 300 and event in ("message_created", "message_updated"):
            stored = self.messages.get(body.get("id"))  # lib/webhooks/trigger.rb#handle_error
            if stored is not None:
                stored["status"] = "failed"
                stored["content_attributes"] = {
                    **stored["content_attributes"],
                    "external_error": f"Webhook delivery failed (status {status})"}

    async def _send(self, raw: bytes, headers: dict[str, str]) -> int:
        assert self.webhook_url is not None
        try:
            async with aiohttp.ClientSession() as http, http.post(
                    self.webhook_url, data=raw, headers=headers,
                    timeout=aiohttp.ClientTimeout(total=5)) as response:
                return response.status
        except aiohttp.ClientError:
            return 0

    def failed_deliveries(self, event: str | None = None) -> list[Delivery]:
        """Deliveries that did not get a 2xx (Chatwoot never retries them)."""
        return [d for d in self.deliveries if not 200 <= d.status < 300
                and (event is None or d.event == event)]

    async def redeliver(self, delivery: Delivery) -> int:
        """Deliver an old body again, freshly signed (e.g. a proxy's late retry): the
        answer's status."""
        ts = str(int(time.time()))
        return await self._send(delivery.raw, {
            "Content-Type": "application/json", "X-Chatwoot-Delivery": delivery.delivery_id,
            "X-Chatwoot-Timestamp": ts,
            "X-Chatwoot-Signature": sign(self.webhook_secret, ts, delivery.raw)})
