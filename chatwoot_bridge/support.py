"""Routing and SLA timers of the support inbox (the rules are in :mod:`chatwoot_bridge.rules`).

- A conversation is tracked the first time the bridge sees it. If it is new (its
  ``conversation_created``, or created less than ``FRESH_S`` ago) and not resolved, its SLA
  policy is chosen and its due times set, and a ``route`` job is queued on the durable outbound
  queue (behind the conversation's other jobs). The job applies the first matching routing rule
  through Chatwoot's assignments endpoint — never over an assignment someone already made — and
  mirrors the result (``inbox:conversation``).
- Timers: the first agent reply (not a private note, not a bot) meets ``first_response``; a
  member message after a reply starts ``next_response`` (met by the next reply); resolving meets
  ``resolution`` (reopening restarts it). :class:`SlaWorker` records every due time that passed
  as a breach (once: see ``storage/support.py``), tells the supervisors on ``/inbox``
  (``inbox:sla_breach`` to the ``supervisors`` room; every agent gets the conversation with
  ``event: "sla_breached"``) and posts the signed outgoing webhook through the outbound queue
  (retried like Chatwoot calls).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import logging
import time
from typing import Any

import httpx
import orjson

from chatwoot_bridge.client import (
    ChatwootRateLimited,
    ChatwootRejected,
    ChatwootUnavailable,
    retry_after_seconds,
)
from chatwoot_bridge.rules import Facts, SupportRules
from realtime.identity import Principal
from storage.support import SupportRecords

log = logging.getLogger(__name__)
INBOX_NS = "/inbox"
FRESH_S = 600.0
WEBHOOK_EVENT = "support.sla_breach"
#: The ``/inbox`` room of supervisors' connections (role ``admin``, as for the analytics):
#: ``inbox:sla_breach`` goes there only.
SUPERVISORS_ROOM = "supervisors"
SUPERVISOR_ROLES = ("admin",)


def iso(epoch: float | None) -> str | None:
    """Epoch seconds as ISO 8601 UTC (``Z``), or None."""
    if epoch is None:
        return None
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="milliseconds"
                                                              ).replace("+00:00", "Z")


def sla_view(state: dict[str, Any] | None) -> dict[str, Any] | None:
    """The ``sla`` field of ``/inbox`` conversation payloads (None: no policy applies)."""
    if state is None or not state.get("policy"):
        return None
    return {"policy": state["policy"],
            "first_response_due_at": iso(state["first_response_due_at"]),
            "next_response_due_at": iso(state["next_response_due_at"]),
            "resolution_due_at": iso(state["resolution_due_at"]),
            "breached": list(state["breached"])}


def breach_view(breach: dict[str, Any]) -> dict[str, Any]:
    """``inbox:sla_breach`` and the webhook's ``breach``."""
    return {"id": breach["id"], "conversation_id": breach["conversation_id"],
            "kind": breach["kind"], "policy": breach["policy"],
            "due_at": iso(breach["due_at"]), "breached_at": iso(breach["breached_at"]),
            "assignee": ({"id": breach["assignee_id"], "name": breach["assignee_name"]}
                         if breach["assignee_id"] is not None else None),
            "team": ({"id": breach["team_id"], "name": breach["team_name"]}
                     if breach["team_id"] is not None else None)}


def webhook_signature(secret: str, timestamp: str, raw: bytes) -> str:
    """``sha256=`` + hex HMAC-SHA256(secret, ``"<timestamp>.<raw body>"``) (Chatwoot's scheme)."""
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + raw,
                                hashlib.sha256).hexdigest()


def _language(conv: dict[str, Any]) -> str | None:
    attributes = conv.get("additional_attributes") or {}
    value = attributes.get("conversation_language") or attributes.get("browser_language")
    return str(value)[:32] if value else None


def _people(row: dict[str, Any]) -> dict[str, Any]:
    assignee, team = row.get("assignee") or {}, row.get("team") or {}
    return {"assignee_id": assignee.get("id"), "assignee_name": assignee.get("name"),
            "team_id": team.get("id"), "team_name": team.get("name")}


class SupportDesk:
    """Routing and SLA (see the module docstring). ``bridge`` is the ``SupportBridge``."""

    def __init__(self, rules: SupportRules, records: SupportRecords, bridge: Any,
                 webhook_url: str | None = None, webhook_secret: str | None = None,
                 timeout_s: float = 10.0) -> None:
        self.rules = rules
        self.records = records
        self.bridge = bridge
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.http = httpx.AsyncClient(timeout=timeout_s) if webhook_url else None

    async def aclose(self) -> None:
        """Close the webhook client."""
        if self.http is not None:
            await self.http.aclose()

    # facts --------------------------------------------------------------------------------
    async def remember(self, who: Principal) -> None:
        """Keep what routing may match on of a member writing to support."""
        claims = who.claims or {}
        persona = claims.get("persona")
        language = claims.get("locale") or claims.get("lang")
        await self.records.save_profile(who.sub, sorted(who.roles),
                                        str(persona)[:64] if persona else None,
                                        str(language)[:32] if language else None)

    async def _facts(self, row: dict[str, Any], language: str | None) -> Facts:
        profile = await self.records.profile(row["user_id"]) if row.get("user_id") else None
        profile = profile or {}
        return Facts(inbox_id=row.get("inbox_id"), labels=frozenset(row.get("labels") or ()),
                     team_id=(row.get("team") or {}).get("id"),
                     language=language or profile.get("language"),
                     persona=profile.get("persona"), roles=frozenset(profile.get("roles") or ()))

    # conversations ------------------------------------------------------------------------
    async def seen(self, conv: dict[str, Any], row: dict[str, Any], event: str) -> None:
        """A conversation snapshot was stored: track it (new ones get SLA and routing) or
        follow its status, assignee and team."""
        now = time.time()
        state = await self.records.state(row["id"])
        if state is None:
            await self._track(conv, row, event, now)
            return
        changes = {k: v for k, v in _people(row).items() if state[k] != v}
        if row["status"] == "resolved" and state["resolved_at"] is None:
            changes.update(resolved_at=now, first_response_due_at=None,
                           next_response_due_at=None, resolution_due_at=None)
        elif row["status"] != "resolved" and state["resolved_at"] is not None:
            policy = self.rules.policy_named(state["policy"])
            changes.update(resolved_at=None, resolution_due_at=(
                self.rules.due(policy, now, policy.resolution_s) if policy else None))
        if changes:
            await self.records.update(row["id"], changes)

    async def _track(self, conv: dict[str, Any], row: dict[str, Any], event: str,
                     now: float) -> None:
        created = row.get("created_at") or now
        fresh = event == "conversation_created" or now - created < FRESH_S
        language = _language(conv)
        facts = await self._facts(row, language)
        policy = self.rules.policy(facts) if fresh and row["status"] != "resolved" else None
        start = max(float(created), now - FRESH_S)
        state = {"conversation_id": row["id"], "inbox_id": row.get("inbox_id"),
                 "language": language, "policy": policy.name if policy else None,
                 "opened_at": float(created), "fresh": int(fresh),
                 "resolved_at": now if row["status"] == "resolved" else None,
                 "first_response_due_at": None, "next_response_due_at": None,
                 "resolution_due_at": None, **_people(row)}
        if policy is not None:
            state["first_response_due_at"] = self.rules.due(policy, start,
                                                            policy.first_response_s)
            state["resolution_due_at"] = self.rules.due(policy, start, policy.resolution_s)
        route = fresh and bool(self.rules.routing) and row["status"] != "resolved"
        if await self.records.track(state, route) and route:
            self.bridge.wake_outbox()

    async def on_message(self, message: dict[str, Any], at: float | None = None) -> bool:
        """A message was stored or posted (``at``: when it was written, for a message read
        back later; default now): meet or start response timers. True when the
        conversation's ``sla`` changed (the agents' timers need the new view)."""
        if message["private"] or message["conversation_id"] is None:
            return False
        state = await self.records.state(int(message["conversation_id"]))
        if state is None or state["resolved_at"] is not None or not state["fresh"]:
            return False  # (first responses are measured for analytics with or without a policy)
        now = time.time() if at is None else min(at, time.time())  # read back later
        changes: dict[str, Any] = {}
        if message["message_type"] in ("outgoing", "template"):
            if message["author_kind"] != "agent":
                return False  # bots and automations do not count as a response
            if state["first_response_at"] is None:
                changes.update(first_response_at=now, first_response_due_at=None)
            if state["next_response_due_at"] is not None:
                changes["next_response_due_at"] = None
        elif (state["policy"] and state["first_response_at"] is not None
              and state["next_response_due_at"] is None):
            policy = self.rules.policy_named(state["policy"])
            if policy is not None and policy.next_response_s is not None:
                changes["next_response_due_at"] = self.rules.due(policy, now,
                                                                 policy.next_response_s)
        if changes:
            await self.records.update(int(message["conversation_id"]), changes)
        return bool(changes) and state["policy"] is not None

    async def sla(self, conversation_id: int) -> dict[str, Any] | None:
        """The ``sla`` field of one conversation."""
        return sla_view(await self.records.state(conversation_id))

    async def slas(self, ids: list[int]) -> dict[int, dict[str, Any] | None]:
        """The ``sla`` fields of several conversations."""
        states = await self.records.states(ids)
        return {i: sla_view(states.get(i)) for i in ids}

    # jobs (run by the outbound worker) ----------------------------------------------------
    async def route(self, payload: dict[str, Any]) -> None:
        """Apply the first matching routing rule to a new conversation (once)."""
        conversation_id = int(payload["conversation_id"])
        row = await self.bridge.records.conversation(conversation_id)
        state = await self.records.state(conversation_id)
        if row is None or state is None or state["routed_rule"] is not None:
            return
        rule = self.rules.route(await self._facts(row, state["language"]))
        if rule is None:
            await self.records.update(conversation_id, {"routed_rule": ""})
            return
        client = self.bridge.client
        if rule.team_id is not None and row["team"] is None:
            await client.assign(conversation_id, team_id=rule.team_id)
        if rule.assignee_id is not None and row["assignee"] is None:
            await client.assign(conversation_id, assignee_id=rule.assignee_id)
        await self.records.update(conversation_id, {"routed_rule": rule.name})
        log.info("support conversation routed", extra={"conversation": conversation_id,
                                                       "rule": rule.name})
        await self.bridge.refresh_conversation(conversation_id, "conversation_routed")

    async def send_webhook(self, payload: dict[str, Any]) -> None:
        """POST one breach to the outgoing webhook; raise ``ChatwootError`` kinds to retry."""
        breach = await self.records.breach(payload["breach_id"])
        if breach is None or self.http is None or not self.webhook_url:
            return
        raw = orjson.dumps({"event": WEBHOOK_EVENT, "breach": breach_view(breach)})
        stamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", "X-Gigvora-Event": WEBHOOK_EVENT,
                   "X-Gigvora-Delivery": breach["id"], "X-Gigvora-Timestamp": stamp}
        if self.webhook_secret:
            headers["X-Gigvora-Signature"] = webhook_signature(self.webhook_secret, stamp, raw)
        try:
            response = await self.http.post(self.webhook_url, content=raw, headers=headers)
        except httpx.HTTPError as error:
            raise ChatwootUnavailable(f"SLA webhook: {type(error).__name__}") from None
        if response.status_code == 429:
            raise ChatwootRateLimited(retry_after_seconds(response.headers.get("Retry-After")))
        if response.status_code >= 500:
            raise ChatwootUnavailable(f"SLA webhook answered {response.status_code}",
                                      response.status_code)
        if response.status_code >= 400:
            raise ChatwootRejected(f"SLA webhook answered {response.status_code}",
                                   response.status_code)

    # breaches -----------------------------------------------------------------------------
    async def tick(self) -> None:
        """Record breaches that are due, then announce every unannounced one."""
        await self.records.record_breaches(time.time(), webhook=bool(self.webhook_url))
        for breach in await self.records.unannounced():
            if not await self.records.mark_announced(breach["id"]):
                continue
            log.warning("support SLA breached", extra={
                "conversation": breach["conversation_id"], "kind": breach["kind"],
                "policy": breach["policy"]})
            await self.bridge.emit("inbox:sla_breach", breach_view(breach),
                                   to=SUPERVISORS_ROOM, namespace=INBOX_NS)
            row = await self.bridge.records.conversation(breach["conversation_id"])
            if row is not None:
                await self.bridge.announce_conversation(row, "sla_breached")
            if self.webhook_url:
                self.bridge.wake_outbox()


class SlaWorker:
    """Checks the SLA timers every ``tick_s`` (a background worker of the app)."""

    def __init__(self, desk: SupportDesk, tick_s: float) -> None:
        self.desk = desk
        self.tick_s = tick_s

    async def run(self) -> None:
        """Forever: tick, sleep."""
        while True:
            try:
                await self.desk.tick()
            except asyncio.CancelledError:
                raise
            except Exception:  # the store hiccupped: the next tick tries again
                log.exception("support SLA tick failed")
            await asyncio.sleep(self.tick_s)
