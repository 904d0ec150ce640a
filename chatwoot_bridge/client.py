"""An async client for Chatwoot's Application API (the calls the bridge needs), on httpx.

Paths, payloads and pagination follow ``chatwoot-contract/CONTRACT.md`` (Chatwoot 4.13). Every
request carries the ``api_access_token`` header, is bounded by a timeout, and is retried with
exponential back-off (plus jitter) on timeouts, connection errors and 5xx answers. A 429 is
retried in place only when its ``Retry-After`` is short; otherwise it surfaces as
:class:`ChatwootRateLimited` so the durable outbound queue can reschedule instead of blocking.

The client also keeps a small :class:`ApiHealth` record of the last outcome, which the
``chatwoot:api`` readiness check reports without calling Chatwoot itself.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import hmac
import logging
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

import httpx

log = logging.getLogger(__name__)

#: Contact search answers 15 per page, conversation lists 25 (CONTRACT.md §1).
CONTACTS_PER_PAGE = 15
CONVERSATIONS_PER_PAGE = 25
#: ``GET …/messages`` without a cursor answers the latest 20; ``before=`` pages back by 20.
MESSAGES_PER_PAGE = 20
#: ``after=`` answers up to 100 newer messages
MESSAGES_AFTER_PER_PAGE = 100
Status = Literal["open", "pending", "snoozed", "resolved"]


def identifier_hash(hmac_token: str, identifier: str) -> str:
    """Chatwoot's identity validation: lowercase hex HMAC-SHA256(hmac_token, identifier)."""
    return hmac.new(hmac_token.encode(), identifier.encode(), hashlib.sha256).hexdigest()


class ChatwootError(Exception):
    """A Chatwoot call that did not succeed; ``status`` is the HTTP status (0: no answer)."""

    def __init__(self, message: str, status: int = 0, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class ChatwootUnavailable(ChatwootError):
    """No usable answer after the retries: timeout, connection error or 5xx."""


class ChatwootRateLimited(ChatwootError):
    """Chatwoot answered 429; ``retry_after`` seconds is when it may be tried again."""

    def __init__(self, retry_after: float, body: Any = None) -> None:
        super().__init__(f"rate limited; retry after {retry_after:.1f}s", 429, body)
        self.retry_after = retry_after


class ChatwootRejected(ChatwootError):
    """Chatwoot refused the request (4xx other than 429): retrying the same call won't help
    unless something changes (401: the token; 422: a validation or the per-minute cap)."""


@dataclass(slots=True)
class ApiHealth:
    """The last outcome of a Chatwoot call, for the readiness check."""

    state: Literal["unknown", "ok", "unreachable", "rate_limited", "unauthorized"] = "unknown"
    since: float = 0.0
    detail: str = ""
    retry_at: float = 0.0

    def record(self, state: Any, detail: str = "", retry_at: float = 0.0) -> None:
        """Note an outcome (``since`` changes only when the state does)."""
        if state != self.state:
            self.since = time.time()
        self.state, self.detail, self.retry_at = state, detail, retry_at


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard one call tries before giving up."""

    attempts: int = 3
    backoff_s: float = 0.25
    max_backoff_s: float = 4.0
    #: a 429 whose Retry-After is at most this is waited out in place
    max_inline_wait_s: float = 2.0

    def delay(self, attempt: int) -> float:
        """Exponential back-off with full jitter for retry number ``attempt`` (1-based)."""
        ceiling = min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)


def retry_after_seconds(value: str | None, default: float = 1.0) -> float:
    """A ``Retry-After`` header (seconds or an HTTP date) in seconds from now."""
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    return max(0.0, when.timestamp() - time.time())


class ChatwootClient:
    """The Application API of one account (paths relative to ``/api/v1/accounts/{id}``)."""

    def __init__(self, base_url: str, api_token: str, account_id: int, *,
                 timeout: float = 10.0, retry: RetryPolicy | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.account_id = account_id
        self.retry = retry or RetryPolicy()
        self.health = ApiHealth()
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + f"/api/v1/accounts/{account_id}",
            headers={"api_access_token": api_token, "Accept": "application/json"},
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)), transport=transport)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    # plumbing ---------------------------------------------------------------------------------
    async def request(self, method: str, path: str, *, json: Any = None,
                      params: Any = None) -> Any:
        """One API call with the retry policy; the decoded JSON body (None when empty)."""
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._http.request(method, path, json=json, params=params)
            except httpx.TimeoutException as error:
                failure: ChatwootError = ChatwootUnavailable(f"timeout: {error!r}")
            except httpx.TransportError as error:
                failure = ChatwootUnavailable(f"connection failed: {error!r}")
            else:
                result = self._outcome(response)
                if not isinstance(result, ChatwootError):
                    return result
                failure = result
            wait = self._retry_wait(failure, attempt)
            if wait is None:
                self._record_failure(failure)
                raise failure
            log.info("chatwoot call retried", extra={"path": path, "attempt": attempt,
                                                     "status": failure.status,
                                                     "wait_s": round(wait, 3)})
            await asyncio.sleep(wait)

    def _outcome(self, response: httpx.Response) -> Any:
        body = _body(response)
        status = response.status_code
        if status < 400:
            self.health.record("ok")
            return body
        if status == 429:
            return ChatwootRateLimited(retry_after_seconds(response.headers.get("Retry-After")),
                                       body)
        if status >= 500:
            return ChatwootUnavailable(f"chatwoot answered {status}", status, body)
        return ChatwootRejected(f"chatwoot answered {status}: {_error_text(body)}", status, body)

    def _retry_wait(self, failure: ChatwootError, attempt: int) -> float | None:
        if attempt >= self.retry.attempts:
            return None
        if isinstance(failure, ChatwootRateLimited):
            if failure.retry_after > self.retry.max_inline_wait_s:
                return None
            return failure.retry_after
        if isinstance(failure, ChatwootUnavailable):
            return self.retry.delay(attempt)
        return None

    def _record_failure(self, failure: ChatwootError) -> None:
        if isinstance(failure, ChatwootRateLimited):
            self.health.record("rate_limited", str(failure), time.time() + failure.retry_after)
        elif isinstance(failure, ChatwootUnavailable):
            self.health.record("unreachable", str(failure))
        elif failure.status == 401:
            self.health.record("unauthorized", str(failure))
        else:
            self.health.record("ok")  # Chatwoot answered; the request itself was refused

    # contacts ---------------------------------------------------------------------------------
    async def search_contacts(self, q: str, page: int = 1,
                              include_contact_inboxes: bool = True) -> dict[str, Any]:
        """``GET /contacts/search``: ``{meta: {count, current_page, has_more}, payload}``."""
        return dict(await self.request("GET", "/contacts/search", params={
            "q": q, "page": page,
            "include_contact_inboxes": "true" if include_contact_inboxes else "false"}))

    async def iter_contacts(self, q: str) -> AsyncIterator[dict[str, Any]]:
        """Every contact matching ``q``, page by page (15 per page)."""
        page = 1
        while True:
            body = await self.search_contacts(q, page)
            contacts = body.get("payload") or []
            for contact in contacts:
                yield contact
            meta = body.get("meta") or {}
            more = meta.get("has_more")
            if not contacts or (more is False) or (more is None
                                                   and len(contacts) < CONTACTS_PER_PAGE):
                return
            page += 1

    async def find_contact(self, identifier: str) -> dict[str, Any] | None:
        """The contact whose ``identifier`` is exactly ``identifier`` (search is a substring
        match, so results are filtered)."""
        async for contact in self.iter_contacts(identifier):
            if contact.get("identifier") == identifier:
                return contact
        return None

    async def create_contact(self, *, name: str, identifier: str,
                             custom_attributes: dict[str, Any] | None = None,
                             inbox_id: int | None = None) -> dict[str, Any]:
        """``POST /contacts``; the contact (``payload.contact``)."""
        body: dict[str, Any] = {"name": name, "identifier": identifier,
                                "custom_attributes": custom_attributes or {}}
        if inbox_id is not None:
            body["inbox_id"] = inbox_id
        answer = await self.request("POST", "/contacts", json=body)
        return dict(answer["payload"]["contact"])

    async def create_contact_inbox(self, contact_id: int, inbox_id: int, *,
                                   source_id: str | None = None,
                                   hmac_verified: bool | None = None) -> dict[str, Any]:
        """``POST /contacts/{id}/contact_inboxes``: ``{source_id, inbox}``."""
        body: dict[str, Any] = {"inbox_id": inbox_id}
        if source_id is not None:
            body["source_id"] = source_id
        if hmac_verified is not None:
            body["hmac_verified"] = hmac_verified
        return dict(await self.request("POST", f"/contacts/{contact_id}/contact_inboxes",
                                       json=body))

    # conversations ----------------------------------------------------------------------------
    async def create_conversation(self, *, inbox_id: int, contact_id: int,
                                  source_id: str | None = None,
                                  additional_attributes: dict[str, Any] | None = None
                                  ) -> dict[str, Any]:
        """``POST /conversations``: the conversation object (``id`` is the display id)."""
        body: dict[str, Any] = {"inbox_id": inbox_id, "contact_id": contact_id}
        if source_id is not None:
            body["source_id"] = source_id
        if additional_attributes:
            body["additional_attributes"] = additional_attributes
        return dict(await self.request("POST", "/conversations", json=body))

    async def get_conversation(self, conversation_id: int) -> dict[str, Any]:
        """``GET /conversations/{display_id}``."""
        return dict(await self.request("GET", f"/conversations/{conversation_id}"))

    async def list_conversations(self, *, status: str = "all", assignee_type: str = "all",
                                 inbox_id: int | None = None, page: int = 1,
                                 sort_by: str | None = None) -> dict[str, Any]:
        """``GET /conversations``: ``{data: {meta, payload}}`` (25 per page; Chatwoot sorts by
        ``last_activity_at_desc`` unless ``sort_by`` says otherwise)."""
        params: dict[str, Any] = {"status": status, "assignee_type": assignee_type,
                                  "page": page}
        if inbox_id is not None:
            params["inbox_id"] = inbox_id
        if sort_by is not None:
            params["sort_by"] = sort_by
        return dict(await self.request("GET", "/conversations", params=params))

    async def iter_conversations(self, *, status: str = "all", inbox_id: int | None = None,
                                 max_pages: int = 40) -> AsyncIterator[dict[str, Any]]:
        """Every conversation of the filter, page by page (a page under 25 is the last)."""
        for page in range(1, max_pages + 1):
            body = await self.list_conversations(status=status, inbox_id=inbox_id, page=page)
            items = (body.get("data") or {}).get("payload") or []
            for item in items:
                yield item
            if len(items) < CONVERSATIONS_PER_PAGE:
                return

    async def toggle_status(self, conversation_id: int, status: Status,
                            snoozed_until: int | None = None) -> dict[str, Any]:
        """``POST /conversations/{id}/toggle_status``: ``payload{success, current_status, …}``."""
        body: dict[str, Any] = {"status": status}
        if snoozed_until is not None:
            body["snoozed_until"] = snoozed_until
        answer = await self.request("POST", f"/conversations/{conversation_id}/toggle_status",
                                    json=body)
        return dict(answer.get("payload") or {})

    async def toggle_typing(self, conversation_id: int, on: bool, private: bool = False) -> None:
        """``POST /conversations/{id}/toggle_typing_status`` (200, empty): Chatwoot announces it
        to the dashboard and as a ``conversation_typing_on/off`` webhook."""
        await self.request("POST", f"/conversations/{conversation_id}/toggle_typing_status",
                           json={"typing_status": "on" if on else "off", "is_private": private})

    async def assign(self, conversation_id: int, *, assignee_id: int | None = None,
                     team_id: int | None = None, unassign: bool = False) -> Any:
        """``POST /conversations/{id}/assignments``: an agent (``assignee_id``; null with
        ``unassign``), else a team (``team_id``). Answers the agent / team record (or null)."""
        body: dict[str, Any]
        if assignee_id is not None or unassign:
            body = {"assignee_id": assignee_id}
        else:
            body = {"team_id": team_id}
        return await self.request("POST", f"/conversations/{conversation_id}/assignments",
                                  json=body)

    async def set_labels(self, conversation_id: int, labels: list[str]) -> list[str]:
        """``POST /conversations/{id}/labels`` replaces the whole set; the stored labels."""
        answer = await self.request("POST", f"/conversations/{conversation_id}/labels",
                                    json={"labels": labels})
        return list(answer.get("payload") or [])

    async def get_labels(self, conversation_id: int) -> list[str]:
        """``GET /conversations/{id}/labels``."""
        answer = await self.request("GET", f"/conversations/{conversation_id}/labels")
        return list(answer.get("payload") or [])

    # reference data ---------------------------------------------------------------------------
    async def list_agents(self) -> list[dict[str, Any]]:
        """``GET /agents``: the account's agents (a bare array of agent records: ``id``,
        ``name``, ``available_name``, ``email``, ``role``, ``availability_status``, …)."""
        answer = await self.request("GET", "/agents")
        return [a for a in answer or [] if isinstance(a, dict)]

    async def list_labels(self) -> list[dict[str, Any]]:
        """``GET /labels``: the account's labels, ``{payload: [{id, title, description, color,
        show_on_sidebar}]}``."""
        answer = await self.request("GET", "/labels")
        return [label for label in (answer or {}).get("payload") or []
                if isinstance(label, dict)]

    # messages ---------------------------------------------------------------------------------
    async def create_message(self, conversation_id: int, content: str, *,
                             message_type: Literal["incoming", "outgoing"] = "outgoing",
                             private: bool = False, source_id: str | None = None,
                             echo_id: str | None = None) -> dict[str, Any]:
        """``POST /conversations/{id}/messages``: the message object (``message_type`` int).
        ``incoming`` (a member's message) is accepted only in API-channel inboxes."""
        body: dict[str, Any] = {"content": content, "message_type": message_type,
                                "private": private, "content_type": "text"}
        if source_id is not None:
            body["source_id"] = source_id
        if echo_id is not None:
            body["echo_id"] = echo_id
        return dict(await self.request("POST", f"/conversations/{conversation_id}/messages",
                                       json=body))

    async def update_message_status(self, conversation_id: int, message_id: int,
                                    status: str) -> dict[str, Any]:
        """``PATCH /conversations/{id}/messages/{message_id}`` ``{status}`` (API inboxes only;
        ``read`` → ``delivered`` is ignored): the message object."""
        return dict(await self.request(
            "PATCH", f"/conversations/{conversation_id}/messages/{message_id}",
            json={"status": status}) or {})

    async def list_messages(self, conversation_id: int, *, before: int | None = None,
                            after: int | None = None) -> dict[str, Any]:
        """``GET /conversations/{id}/messages``: ``{meta, payload}`` (ascending by id)."""
        params: dict[str, Any] = {}
        if before is not None:
            params["before"] = before
        if after is not None:
            params["after"] = after
        return dict(await self.request("GET", f"/conversations/{conversation_id}/messages",
                                       params=params or None))

    async def iter_messages_back(self, conversation_id: int, max_pages: int = 50
                                 ) -> AsyncIterator[list[dict[str, Any]]]:
        """Pages of messages from the newest back (cursor ``before=<oldest id>``)."""
        before: int | None = None
        for _ in range(max_pages):
            page = (await self.list_messages(conversation_id, before=before)).get("payload")
            if not page:
                return
            yield list(page)
            if len(page) < MESSAGES_PER_PAGE:
                return
            before = min(int(m["id"]) for m in page)


def _body(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return response.text  # rack-attack's 429 is plain text ("Retry later")


def _error_text(body: Any) -> str:
    if isinstance(body, dict):
        if "error" in body:
            return str(body["error"])
        if "message" in body:
            return str(body["message"])
        if "errors" in body:
            return "; ".join(map(str, body["errors"]))
    return str(body)[:200]
