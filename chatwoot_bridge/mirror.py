"""Pure mapping between Chatwoot payloads (CONTRACT.md §2, §5) and the bridge's records and
events. No I/O here: the service stores what these return and emits what they render."""

from __future__ import annotations

import datetime as dt
from typing import Any

from storage.base import new_id, now_iso

#: ``source_id`` the bridge sets on messages it posts: ``gigvora:<local message id>``.
ECHO_PREFIX = "gigvora:"
RELAYED_TYPES = frozenset({"outgoing", "template"})
ATTACHMENT_FIELDS = ("id", "file_type", "extension", "content_type", "data_url", "thumb_url",
                     "file_size", "width", "height")
CONTACT_FIELDS = ("id", "name", "identifier", "email")
#: ``message_type`` is an integer in API bodies and in ``conversation.messages[]`` (samples README)
MESSAGE_TYPE_NAMES = {0: "incoming", 1: "outgoing", 2: "activity", 3: "template"}


def echo_source_id(message_id: str) -> str:
    """The ``source_id`` marking a message as posted by the bridge."""
    return ECHO_PREFIX + message_id


def echo_of(payload: dict[str, Any]) -> str | None:
    """The local id of a message the bridge posted, if ``payload`` is its echo."""
    source = payload.get("source_id")
    if isinstance(source, str) and source.startswith(ECHO_PREFIX):
        return source.removeprefix(ECHO_PREFIX)
    return None


def _agent(meta: dict[str, Any]) -> dict[str, Any] | None:
    assignee = meta.get("assignee")
    if not isinstance(assignee, dict) or assignee.get("id") is None:
        return None
    kind = "agent_bot" if meta.get("assignee_type") == "AgentBot" else "user"
    return {"id": assignee["id"], "name": assignee.get("name") or "", "type": kind}


def _team(meta: dict[str, Any]) -> dict[str, Any] | None:
    team = meta.get("team")
    if not isinstance(team, dict) or team.get("id") is None:
        return None
    return {"id": team["id"], "name": team.get("name") or ""}


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) else None


def conversation_row(conv: dict[str, Any], user_id: str | None = None) -> dict[str, Any]:
    """A conversation record from a webhook or API conversation object."""
    meta = conv.get("meta") or {}
    sender = meta.get("sender") or {}
    contact_id = sender.get("id") or (conv.get("contact_inbox") or {}).get("contact_id")
    snoozed = conv.get("snoozed_until")
    return {"id": int(conv["id"]), "inbox_id": conv.get("inbox_id"), "user_id": user_id,
            "contact_id": contact_id,
            "contact": {k: sender.get(k) for k in CONTACT_FIELDS if k in sender},
            "status": conv.get("status") or "open", "assignee": _agent(meta),
            "team": _team(meta), "labels": list(conv.get("labels") or []),
            "priority": conv.get("priority"),
            "snoozed_until": None if snoozed is None else str(snoozed),
            "created_at": _int_or_none(conv.get("created_at")),
            "last_activity_at": _int_or_none(conv.get("last_activity_at")),
            "source_updated_at": float(conv.get("updated_at") or 0)}


def conversation_view(row: dict[str, Any]) -> dict[str, Any]:
    """``inbox:conversation`` / ``inbox:list`` shape."""
    return {"id": row["id"], "inbox_id": row["inbox_id"], "status": row["status"],
            "assignee": row["assignee"], "team": row["team"], "labels": row["labels"],
            "priority": row["priority"], "snoozed_until": row["snoozed_until"],
            "contact": row["contact"],
            "member": {"id": row["user_id"]} if row["user_id"] else None,
            "created_at": row["created_at"], "last_activity_at": row["last_activity_at"]}


def _author(payload: dict[str, Any], message_type: str) -> tuple[str, str, str]:
    sender = payload.get("sender") or {}
    if message_type == "incoming":
        kind = "contact"
    else:
        kind = "bot" if sender.get("type") == "agent_bot" else "agent"
    return f"chatwoot:{kind}:{sender.get('id')}", str(sender.get("name") or kind), kind


def _delivery_status(payload: dict[str, Any]) -> str:
    """Only ``conversation.messages[0]`` carries a message's status (none at the top level)."""
    for item in (payload.get("conversation") or {}).get("messages") or []:
        if item.get("id") == payload.get("id") and item.get("status"):
            return str(item["status"])
    return "sent"


def attachments(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """Attachment metadata (links, never the files)."""
    return [{k: a.get(k) for k in ATTACHMENT_FIELDS if k in a}
            for a in payload.get("attachments") or [] if isinstance(a, dict)]


def message_row(payload: dict[str, Any], user_id: str | None) -> dict[str, Any]:
    """A message record from a ``message_created`` / ``message_updated`` payload."""
    message_type = str(payload.get("message_type") or "outgoing")
    author_id, author_name, kind = _author(payload, message_type)
    conversation = payload.get("conversation") or {}
    return {"id": new_id(), "chatwoot_id": int(payload["id"]),
            "conversation_id": int(conversation["id"]) if "id" in conversation else None,
            "user_id": user_id, "message_type": message_type,
            "private": bool(payload.get("private")), "text": str(payload.get("content") or ""),
            "origin": "chatwoot", "author_id": author_id, "author_name": author_name,
            "author_kind": kind, "status": _delivery_status(payload),
            "attachments": attachments(payload),
            "created_at": str(payload.get("created_at") or now_iso())}


def api_message_type(message: dict[str, Any]) -> str:
    """A message's type name, whether the body gives the integer (API) or the name (webhook)."""
    value = message.get("message_type")
    return MESSAGE_TYPE_NAMES.get(value, str(value)) if isinstance(value, int) else str(value)


def api_message_payload(message: dict[str, Any], conversation_id: int) -> dict[str, Any]:
    """An Application API message (``GET …/messages``) in the shape of a ``message_created``
    payload, so it is mirrored exactly like a webhook: the type name, ISO ``created_at``, and
    the status where webhooks carry it (``conversation.messages[]``). ``failed`` becomes
    ``sent``: for an API-inbox message it means Chatwoot could not POST it to us (CONTRACT.md
    §4), which is what the reconciliation just repaired."""
    status = message.get("status") or "sent"
    created = message.get("created_at")
    if isinstance(created, int | float):
        created = dt.datetime.fromtimestamp(created, dt.UTC).isoformat(
            timespec="milliseconds").replace("+00:00", "Z")
    return {**message, "message_type": api_message_type(message), "created_at": created,
            "conversation": {"id": conversation_id, "messages": [
                {"id": message.get("id"), "status": "sent" if status == "failed" else status}]}}


def relayable(message: dict[str, Any]) -> bool:
    """May the member see this message live? Agent replies only; never private notes."""
    return (not message["private"] and message["message_type"] in RELAYED_TYPES
            and message["user_id"] is not None)


def message_view(row: dict[str, Any]) -> dict[str, Any]:
    """``inbox:message`` shape (agents: private notes included, flagged)."""
    view = {"id": row["id"], "seq": row["seq"], "conversation_id": row["conversation_id"],
            "chatwoot_id": row["chatwoot_id"], "type": row["message_type"],
            "private": row["private"], "text": row["text"],
            "author": {"id": row["author_id"], "name": row["author_name"],
                       "kind": row["author_kind"]},
            "status": row["status"], "attachments": row["attachments"],
            "created_at": row["created_at"]}
    if row["client_id"] is not None:
        view["client_id"] = row["client_id"]
    if row["error"]:
        view["error"] = row["error"]
    return view


def member_view(row: dict[str, Any]) -> dict[str, Any]:
    """``support:message`` / ``support:history`` shape (never called for private notes)."""
    view = {"id": row["id"], "seq": row["seq"],
            "from": "member" if row["message_type"] == "incoming" else "agent",
            "text": row["text"],
            "author": {"id": row["author_id"] if row["origin"] == "member" else None,
                       "name": row["author_name"]},
            "status": row["status"], "attachments": row["attachments"],
            "created_at": row["created_at"]}
    if row["client_id"] is not None and row["origin"] == "member":
        view["client_id"] = row["client_id"]
    return view
