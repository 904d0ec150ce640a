"""MongoDB backend of the ``Store`` protocol, on PyMongo's async API (``AsyncMongoClient``).

A replica set is required: seq allocation runs in a multi-document transaction, and writes use
``w="majority", j=True`` with majority reads, so an acknowledged write survives a primary
failover. A single-node replica set (``mongod --replSet rs0`` + ``rs.initiate()``) is fine for
development. ``open()`` refuses a standalone server with a clear message.

Collections (in the URI's database, ``gigvora`` when the URI names none):

- ``channels``: ``_id`` is the channel id; ``last_seq`` is the channel's seq counter.
- ``messages``: ``_id`` is the message id; unique ``(channel_id, seq)``; unique
  ``(channel_id, author_id, client_id)`` where ``client_id`` exists (the field is omitted, never
  null, when a message has none); ``(channel_id, thread_id, seq)`` for thread history.
  Reactions are an array of ``{"e": emoji, "u": [user ids]}`` (emoji are not safe field names).
- ``read_state``: unique ``(user_id, channel_id)``.

Appends are group-committed per channel, like the SQLite writer: concurrent appends to one channel
on this node queue up, and one transaction takes the whole queue — it looks up repeated
``client_id``s, raises the channel's ``last_seq`` by the number of new messages with
``find_one_and_update`` and inserts them. The counter and the messages commit together or not at
all, so a failed insert never leaves a gap. Appends from other nodes to the same channel meet as a
write conflict on the channel document, which ``with_transaction`` retries. A duplicate
``client_id`` committed by another node in between surfaces as a duplicate-key error; the batch is
then retried and finds the first message. An append that fails on a timeout or a lost connection
kills its session (``killSessions``): the driver could not abort its transaction, which would
otherwise hold the channel's counter until the server's transaction lifetime (60 s) ended.

Every operation runs under a deadline (``pymongo.timeout``): the URI's standard ``timeoutMS``
option, else ``DEFAULT_OP_TIMEOUT_S``. Driver errors (no primary, timeouts, network) become
``StoreUnavailable``. Sessions are causally consistent and share this store's latest operation
time, so a read on this node always sees the writes this node has acknowledged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pymongo
from bson.timestamp import Timestamp
from pymongo import AsyncMongoClient, IndexModel, ReadPreference, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import (
    BulkWriteError,
    ConnectionFailure,
    DuplicateKeyError,
    OperationFailure,
    PyMongoError,
)
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from storage.base import (
    Channel,
    Conflict,
    Message,
    MessageDraft,
    NotFound,
    StoreUnavailable,
    new_id,
    now_iso,
)

log = logging.getLogger(__name__)

Doc = dict[str, Any]
DEFAULT_DATABASE = "gigvora"
DEFAULT_OP_TIMEOUT_S = 10.0
OPEN_TIMEOUT_S = 60.0  # index builds on a large existing collection may take a while
PING_TIMEOUT_S = 1.5  # under the readiness probe's 2 s, so the probe reports our error
MAX_BATCH = 500
DUPLICATE_RETRIES = 3
REACTION_RETRIES = 20
# Driver options applied unless the URI sets them (URI option names are case-insensitive).
CLIENT_DEFAULTS: dict[str, Any] = {
    "serverSelectionTimeoutMS": 5000,
    "connectTimeoutMS": 5000,
    "socketTimeoutMS": 20000,
    "appname": "gigvora-live",
}
MAJORITY = WriteConcern("majority", j=True)
TXN_OPTIONS: dict[str, Any] = {"read_concern": ReadConcern("snapshot"),
                               "write_concern": MAJORITY,
                               "read_preference": ReadPreference.PRIMARY}
INDEXES: dict[str, list[IndexModel]] = {
    "messages": [
        IndexModel([("channel_id", 1), ("seq", 1)], unique=True, name="channel_seq"),
        IndexModel([("channel_id", 1), ("author_id", 1), ("client_id", 1)], unique=True,
                   partialFilterExpression={"client_id": {"$exists": True}},
                   name="channel_author_client_id"),
        IndexModel([("channel_id", 1), ("thread_id", 1), ("seq", 1)], name="channel_thread_seq"),
    ],
    "read_state": [
        IndexModel([("user_id", 1), ("channel_id", 1)], unique=True, name="user_channel"),
    ],
}
Pending = tuple[MessageDraft, "asyncio.Future[tuple[Message, bool]]"]
Outcome = tuple[Message, bool] | NotFound


@dataclass(slots=True)
class _ChannelQueue:
    """Appends to one channel waiting for this node's next transaction on it."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    pending: list[Pending] = field(default_factory=list)
    waiters: int = 0


def _uri_options(url: str) -> dict[str, str]:
    """The URI's query options, keys lower-cased (MongoDB option names are case-insensitive)."""
    return {key.lower(): value for key, value in parse_qsl(urlsplit(url).query)}


def _op_timeout(options: dict[str, str]) -> float | None:
    """The per-operation deadline: the URI's ``timeoutMS`` (0 = none), else the default."""
    if "timeoutms" not in options:
        return DEFAULT_OP_TIMEOUT_S
    millis = float(options["timeoutms"])
    return millis / 1000 if millis > 0 else None


def _may_leave_transaction_open(error: BaseException | None) -> bool:
    """A timeout or a lost connection: the driver's abort may not have reached the server."""
    return isinstance(error, ConnectionFailure) or (isinstance(error, PyMongoError)
                                                    and error.timeout)


def _is_duplicate_key(error: PyMongoError) -> bool:
    if isinstance(error, DuplicateKeyError):
        return True
    if isinstance(error, BulkWriteError):
        return any(e.get("code") == 11000 for e in error.details.get("writeErrors", []))
    return isinstance(error, OperationFailure) and error.code == 11000


def _message(doc: Doc) -> Message:
    return Message(id=doc["_id"], channel=doc["channel_id"], seq=int(doc["seq"]),
                   author_id=doc["author_id"], author_name=doc["author_name"], text=doc["text"],
                   created_at=doc["created_at"], client_id=doc.get("client_id"),
                   thread_id=doc.get("thread_id"), edited_at=doc.get("edited_at"),
                   deleted=bool(doc.get("deleted", False)),
                   reactions={r["e"]: list(r["u"]) for r in doc.get("reactions", [])})


def _message_doc(message: Message) -> Doc:
    doc: Doc = {"_id": message.id, "channel_id": message.channel, "seq": message.seq,
                "author_id": message.author_id, "author_name": message.author_name,
                "text": message.text, "created_at": message.created_at, "edited_at": None,
                "deleted": False, "reactions": [], "rev": 0}
    if message.client_id is not None:  # omitted, not null: the unique index is partial
        doc["client_id"] = message.client_id
    if message.thread_id is not None:
        doc["thread_id"] = message.thread_id
    return doc


def _channel(doc: Doc) -> Channel:
    return Channel(id=doc["_id"], name=doc["name"], kind=doc["kind"],
                   read_roles=list(doc.get("read_roles", [])),
                   post_roles=list(doc.get("post_roles", [])), members=doc.get("members"),
                   created_at=doc["created_at"], last_seq=int(doc.get("last_seq", 0)),
                   category=doc.get("category"))


def _channel_doc(c: Channel) -> Doc:
    return {"_id": c.id, "name": c.name, "kind": c.kind, "read_roles": c.read_roles,
            "post_roles": c.post_roles, "members": c.members, "created_at": c.created_at,
            "last_seq": 0, "category": c.category}


def _with_reaction(reactions: dict[str, list[str]], emoji: str, user_id: str,
                   present: bool) -> dict[str, list[str]]:
    """The reactions after adding or removing one user's emoji (same rules as SQLite)."""
    users = reactions.get(emoji, [])
    if present and user_id not in users:
        users = [*users, user_id]
    elif not present:
        users = [u for u in users if u != user_id]
    if users:
        return {**reactions, emoji: users}
    return {k: v for k, v in reactions.items() if k != emoji}


class MongoStore:
    """The shared store for several nodes (see module docstring)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._options = _uri_options(url)
        self._op_timeout = _op_timeout(self._options)
        self._client: AsyncMongoClient[Doc] | None = None
        self._queues: dict[str, _ChannelQueue] = {}
        self._batches: set[asyncio.Task[StoreUnavailable | None]] = set()
        self._cleanups: set[asyncio.Task[None]] = set()  # sessions of failed appends to end
        self._op_time: Timestamp | None = None
        self.commits = 0
        self.committed_ops = 0
        self.last_commit_seconds = 0.0
        self.commit_observer: Callable[[int, float], None] | None = None

    # lifecycle ----------------------------------------------------------------------------
    def _new_client(self) -> AsyncMongoClient[Doc]:
        defaults = {k: v for k, v in CLIENT_DEFAULTS.items()
                    if k.lower() not in self._options}
        if "timeoutms" in self._options:  # CSOT replaces the legacy socket timeout
            defaults.pop("socketTimeoutMS", None)
        return AsyncMongoClient(self.url, document_class=dict, tz_aware=False, **defaults)

    async def open(self) -> None:
        """Connect, check for a replica set, create the indexes (idempotent)."""
        client = self._new_client()
        try:
            await _prepare(client)
        except BaseException as error:
            await client.close()
            if isinstance(error, PyMongoError):
                raise StoreUnavailable(f"cannot open the MongoDB store: {error}") from error
            raise
        self._client = client

    async def close(self) -> None:
        """Let running append transactions finish, then close the client (session cleanups
        still running are cancelled: the server ends those transactions itself, later)."""
        if self._batches:
            await asyncio.gather(*self._batches, return_exceptions=True)
        for task in self._cleanups:
            task.cancel()
        await asyncio.gather(*self._cleanups, return_exceptions=True)
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()

    def stats(self) -> dict[str, float]:
        """Appends waiting for a transaction, and commit counters."""
        depth = sum(len(q.pending) for q in self._queues.values())
        return {"write_queue_depth": float(depth), "commits": float(self.commits),
                "committed_ops": float(self.committed_ops),
                "last_commit_seconds": self.last_commit_seconds}

    async def ping(self) -> None:
        """``ping`` on the primary, bounded by ``PING_TIMEOUT_S``."""
        client = self._require_client()
        try:
            with pymongo.timeout(PING_TIMEOUT_S):
                await client.admin.command("ping")
        except PyMongoError as error:
            raise StoreUnavailable(f"MongoDB ping failed: {error}") from error

    # plumbing -----------------------------------------------------------------------------
    def _require_client(self) -> AsyncMongoClient[Doc]:
        if self._client is None:
            raise StoreUnavailable("store is closed")
        return self._client

    def _collection(self, name: str) -> AsyncCollection[Doc]:
        """A collection with majority writes (journaled), majority reads, primary only."""
        return self._require_client().get_default_database(
            DEFAULT_DATABASE, write_concern=MAJORITY, read_concern=ReadConcern("majority"),
            read_preference=ReadPreference.PRIMARY)[name]

    @asynccontextmanager
    async def _session(self, what: str) -> AsyncIterator[AsyncClientSession]:
        """A causally consistent session under the operation deadline; driver errors become
        StoreUnavailable."""
        client = self._require_client()
        try:
            with pymongo.timeout(self._op_timeout):
                async with client.start_session(causal_consistency=True) as session:
                    if self._op_time is not None:
                        session.advance_operation_time(self._op_time)
                    yield session
                    self._saw(session.operation_time)
        except PyMongoError as error:
            raise StoreUnavailable(f"MongoDB {what} failed: {error}") from error

    def _saw(self, op_time: Timestamp | None) -> None:
        if op_time is not None and (self._op_time is None or op_time > self._op_time):
            self._op_time = op_time

    # channels -----------------------------------------------------------------------------
    async def ensure_channel(self, channel: Channel) -> Channel:
        """Create unless present (an upsert with ``$setOnInsert``); return the stored one."""
        fields = {k: v for k, v in _channel_doc(channel).items() if k != "_id"}
        async with self._session("ensure_channel") as s:
            doc = await _upsert(self._collection("channels"), {"_id": channel.id},
                                {"$setOnInsert": fields}, s)
        return _channel(doc)

    async def create_channel(self, channel: Channel) -> Channel:
        """Create; Conflict if the id exists."""
        async with self._session("create_channel") as s:
            try:
                await self._collection("channels").insert_one(_channel_doc(channel), session=s)
            except DuplicateKeyError:
                raise Conflict(f"channel {channel.id} exists") from None
        return channel

    async def get_channel(self, channel_id: str) -> Channel | None:
        """One channel or None."""
        async with self._session("get_channel") as s:
            doc = await self._collection("channels").find_one({"_id": channel_id}, session=s)
        return _channel(doc) if doc else None

    async def list_channels(self) -> list[Channel]:
        """All channels by id."""
        async with self._session("list_channels") as s:
            cursor = self._collection("channels").find({}, session=s).sort("_id", 1)
            return [_channel(doc) async for doc in cursor]

    async def set_channel_category(self, channel_id: str, category: str | None) -> Channel:
        """Set or clear a channel's category; NotFound if it does not exist."""
        async with self._session("set_channel_category") as s:
            doc = await self._collection("channels").find_one_and_update(
                {"_id": channel_id}, {"$set": {"category": category}},
                return_document=ReturnDocument.AFTER, session=s)
        if doc is None:
            raise NotFound(f"channel {channel_id} does not exist")
        return _channel(doc)

    async def channel_last_seqs(self, channel_ids: list[str]) -> dict[str, int]:
        """Current last seqs, in one query."""
        if not channel_ids:
            return {}
        async with self._session("channel_last_seqs") as s:
            cursor = self._collection("channels").find(
                {"_id": {"$in": channel_ids}}, {"last_seq": 1}, session=s)
            return {doc["_id"]: int(doc.get("last_seq", 0)) async for doc in cursor}

    # appends ------------------------------------------------------------------------------
    async def append_message(self, draft: MessageDraft) -> tuple[Message, bool]:
        """Store with the next seq, idempotent on (channel, author, client_id); appends to one
        channel are group-committed (see module docstring)."""
        self._require_client()
        queue = self._queues.get(draft.channel)
        if queue is None:
            queue = self._queues[draft.channel] = _ChannelQueue()
        future: asyncio.Future[tuple[Message, bool]] = asyncio.get_running_loop().create_future()
        queue.pending.append((draft, future))
        queue.waiters += 1
        try:
            async with queue.lock:
                # Empty pending with our future open: a batch whose leader was cancelled holds
                # our draft and will resolve it.
                while not future.done() and queue.pending:
                    batch, queue.pending = queue.pending[:MAX_BATCH], queue.pending[MAX_BATCH:]
                    failure = await self._commit_shielded(draft.channel, batch)
                    if failure is not None:  # fail fast: the rest would wait out the same outage
                        _fail(queue.pending, failure)
                        queue.pending = []
            return await future
        finally:
            queue.waiters -= 1
            if queue.waiters == 0 and self._queues.get(draft.channel) is queue:
                del self._queues[draft.channel]

    async def _commit_shielded(self, channel_id: str,
                               batch: list[Pending]) -> StoreUnavailable | None:
        """Run a batch to its end even if the caller that leads it is cancelled: the other
        callers in it are still waiting. ``close()`` awaits batches still running."""
        task = asyncio.ensure_future(self._commit_batch(channel_id, batch))
        self._batches.add(task)
        task.add_done_callback(self._batches.discard)
        return await asyncio.shield(task)

    async def _commit_batch(self, channel_id: str,
                            batch: list[Pending]) -> StoreUnavailable | None:
        """One transaction for the batch; every future in it is resolved, whatever happens.
        Returns the failure, if the transaction failed."""
        started = time.perf_counter()
        try:
            outcomes = await self._append_with_retries(channel_id, [d for d, _ in batch])
        except asyncio.CancelledError:
            _fail(batch, StoreUnavailable("append cancelled: the store is closing"))
            raise
        except Exception as error:
            failure = error if isinstance(error, StoreUnavailable) else StoreUnavailable(
                f"MongoDB append failed: {error!r}")
            _fail(batch, failure)
            return failure
        self._committed(len(batch), time.perf_counter() - started)
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if future.done():
                continue
            if isinstance(outcome, NotFound):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
        return None

    async def _append_with_retries(self, channel_id: str,
                                   drafts: list[MessageDraft]) -> list[Outcome]:
        messages, channels = self._collection("messages"), self._collection("channels")

        async def transaction(session: AsyncClientSession) -> list[Outcome]:
            return await _append_batch(messages, channels, channel_id, drafts, session)

        session_id: Mapping[str, Any] | None = None
        try:
            async with self._session("append") as s:
                session_id = s.session_id
                for attempt in range(DUPLICATE_RETRIES):
                    try:
                        return await s.with_transaction(transaction, **TXN_OPTIONS)
                    except PyMongoError as error:
                        # another node committed the same client_id between lookup and insert
                        if not _is_duplicate_key(error) or attempt == DUPLICATE_RETRIES - 1:
                            raise
                        log.info("append raced on a client_id; retrying",
                                 extra={"channel": channel_id})
        except StoreUnavailable as failure:
            if session_id is not None and _may_leave_transaction_open(failure.__cause__):
                # in the background: the failure is reported at once, even with no server
                task = asyncio.ensure_future(self._kill_session(session_id, channel_id))
                self._cleanups.add(task)
                task.add_done_callback(self._cleanups.discard)
            raise
        raise AssertionError("unreachable")

    async def _kill_session(self, session_id: Mapping[str, Any], channel_id: str) -> None:
        """End a failed append's transaction on the server. After a timeout or a lost
        connection the driver cannot send the abort (the deadline has passed, or the
        connection is gone), so the server keeps the transaction — and its write on the
        channel's counter, which every other append to the channel then meets as a write
        conflict — until its transaction lifetime ends (60 s by default). ``killSessions``
        aborts it now; best effort, under its own short deadline."""
        client = self._client
        if client is None:
            return
        try:
            with pymongo.timeout(PING_TIMEOUT_S):
                await client.admin.command("killSessions", [session_id])
        except PyMongoError as error:
            log.warning("could not end the transaction of a failed append",
                        extra={"channel": channel_id, "error": str(error)})

    def _committed(self, ops: int, seconds: float) -> None:
        self.commits += 1
        self.committed_ops += ops
        self.last_commit_seconds = seconds
        if self.commit_observer is not None:
            self.commit_observer(ops, seconds)

    # messages -----------------------------------------------------------------------------
    async def get_message(self, message_id: str) -> Message | None:
        """One message or None."""
        async with self._session("get_message") as s:
            doc = await self._collection("messages").find_one({"_id": message_id}, session=s)
        return _message(doc) if doc else None

    async def find_by_client_id(self, channel_id: str, author_id: str, client_id: str
                                ) -> Message | None:
        """The first message with this idempotency key, or None."""
        async with self._session("find_by_client_id") as s:
            doc = await self._collection("messages").find_one(
                {"channel_id": channel_id, "author_id": author_id, "client_id": client_id},
                session=s)
        return _message(doc) if doc else None

    async def edit_message(self, message_id: str, text: str) -> Message:
        """New text and ``edited_at``."""
        return await self._update_message(message_id, {"text": text, "edited_at": now_iso()})

    async def delete_message(self, message_id: str) -> Message:
        """Soft delete: text cleared, reactions dropped, ``deleted`` set."""
        return await self._update_message(message_id, {
            "text": "", "deleted": True, "reactions": [], "edited_at": now_iso()})

    async def _update_message(self, message_id: str, assignments: Doc) -> Message:
        async with self._session("update_message") as s:
            doc = await self._collection("messages").find_one_and_update(
                {"_id": message_id}, {"$set": assignments, "$inc": {"rev": 1}},
                return_document=ReturnDocument.AFTER, session=s)
        if doc is None:
            raise NotFound(f"message {message_id} does not exist")
        return _message(doc)

    async def set_reaction(self, message_id: str, emoji: str, user_id: str,
                           present: bool) -> Message:
        """Add or remove one user's reaction: read, compute, compare-and-set on ``rev``."""
        messages = self._collection("messages")
        async with self._session("set_reaction") as s:
            for _ in range(REACTION_RETRIES):
                doc = await messages.find_one({"_id": message_id}, session=s)
                if doc is None or doc.get("deleted"):
                    raise NotFound(f"message {message_id} does not exist")
                message = _message(doc)
                message.reactions = _with_reaction(message.reactions, emoji, user_id, present)
                stored = [{"e": e, "u": u} for e, u in message.reactions.items()]
                result = await messages.update_one(
                    {"_id": message_id, "rev": doc.get("rev", 0), "deleted": False},
                    {"$set": {"reactions": stored}, "$inc": {"rev": 1}}, session=s)
                if result.matched_count:
                    return message
        raise StoreUnavailable(f"message {message_id}: too many concurrent reaction changes")

    async def history(self, channel_id: str, *, before_seq: int | None = None,
                      after_seq: int | None = None, limit: int = 50,
                      thread_id: str | None = None) -> list[Message]:
        """Messages by seq (see Store.history): after ``after_seq`` ascending, else the latest
        ``limit`` before ``before_seq``; a thread includes its root."""
        if limit <= 0:  # MongoDB reads limit 0 as "no limit"
            return []
        query: Doc = {"channel_id": channel_id}
        if thread_id is not None:
            query["$or"] = [{"thread_id": thread_id}, {"_id": thread_id}]
        seq: Doc = {}
        if after_seq is not None:
            seq["$gt"] = after_seq
        if before_seq is not None:
            seq["$lt"] = before_seq
        if seq:
            query["seq"] = seq
        ascending = after_seq is not None
        async with self._session("history") as s:
            cursor = self._collection("messages").find(query, session=s).sort(
                "seq", 1 if ascending else -1).limit(limit)
            found = [_message(doc) async for doc in cursor]
        return found if ascending else found[::-1]

    # read state ---------------------------------------------------------------------------
    async def set_read(self, user_id: str, channel_id: str, seq: int) -> int:
        """Move the marker forward only (``$max``); return the stored seq."""
        async with self._session("set_read") as s:
            doc = await _upsert(self._collection("read_state"),
                                {"user_id": user_id, "channel_id": channel_id},
                                {"$max": {"seq": seq}, "$set": {"updated_at": now_iso()}}, s)
        return int(doc["seq"])

    async def read_state(self, user_id: str) -> dict[str, int]:
        """Markers by channel."""
        async with self._session("read_state") as s:
            cursor = self._collection("read_state").find(
                {"user_id": user_id}, {"channel_id": 1, "seq": 1}, session=s)
            return {doc["channel_id"]: int(doc["seq"]) async for doc in cursor}


async def _prepare(client: AsyncMongoClient[Doc]) -> None:
    """Check that the server is a replica set (or mongos) and create the indexes."""
    # Outside a pymongo.timeout block, so serverSelectionTimeoutMS bounds the wait for the
    # server (inside one, the block's deadline replaces it).
    hello = await client.admin.command("hello")
    if "setName" not in hello and hello.get("msg") != "isdbgrid":
        raise StoreUnavailable("MongoDB must be a replica set (transactions and majority writes "
                               "need one); a single-node replica set is fine for development")
    with pymongo.timeout(OPEN_TIMEOUT_S):
        db = client.get_default_database(DEFAULT_DATABASE)
        for name, models in INDEXES.items():
            await db[name].create_indexes(models)


async def _upsert(collection: AsyncCollection[Doc], query: Doc, update: Doc,
                  session: AsyncClientSession) -> Doc:
    """``find_one_and_update`` with ``upsert``, returning the document after the update. Two
    concurrent upserts of one key may meet the unique index; the loser tries again and updates."""
    for attempt in range(DUPLICATE_RETRIES):
        try:
            doc = await collection.find_one_and_update(
                query, update, upsert=True, return_document=ReturnDocument.AFTER,
                session=session)
        except DuplicateKeyError:
            if attempt == DUPLICATE_RETRIES - 1:
                raise
            continue
        if doc is None:  # cannot happen with upsert=True and AFTER; never return a None
            raise StoreUnavailable(f"MongoDB upsert into {collection.name} returned nothing")
        return doc
    raise AssertionError("unreachable")


def _fail(batch: list[Pending], error: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(error)


async def _append_batch(messages: AsyncCollection[Doc], channels: AsyncCollection[Doc],
                        channel_id: str, drafts: list[MessageDraft],
                        session: AsyncClientSession) -> list[Outcome]:
    """The body of an append transaction. ``with_transaction`` may run it more than once, so it
    only reads and writes the database and returns the outcomes, one per draft, in order."""
    by_key = await _existing_by_client_id(messages, channel_id, drafts, session)
    fresh: list[int] = []  # indexes of the drafts that get a new message
    for index, d in enumerate(drafts):
        if d.client_id is None:
            fresh.append(index)
        elif (d.author_id, d.client_id) not in by_key:
            fresh.append(index)
            by_key[(d.author_id, d.client_id)] = None  # later repeats in this batch are copies
    created: dict[int, Message] = {}
    if fresh:
        channel = await channels.find_one_and_update(
            {"_id": channel_id}, {"$inc": {"last_seq": len(fresh)}}, projection={"last_seq": 1},
            return_document=ReturnDocument.AFTER, session=session)
        if channel is None:
            missing = NotFound(f"channel {channel_id} does not exist")
            return [missing if i in fresh else _repeat(d, by_key) for i, d in enumerate(drafts)]
        first_seq = int(channel["last_seq"]) - len(fresh) + 1
        for offset, index in enumerate(fresh):
            created[index] = message = _new_message(drafts[index], first_seq + offset)
            if message.client_id is not None:
                by_key[(message.author_id, message.client_id)] = message
        await messages.insert_many([_message_doc(m) for m in created.values()], ordered=True,
                                   session=session)
    return [(created[i], True) if i in created else _repeat(d, by_key)
            for i, d in enumerate(drafts)]


async def _existing_by_client_id(messages: AsyncCollection[Doc], channel_id: str,
                                 drafts: list[MessageDraft], session: AsyncClientSession
                                 ) -> dict[tuple[str, str], Message | None]:
    """The stored messages that repeated ``client_id``s in the batch refer to."""
    keys = {(d.author_id, d.client_id) for d in drafts if d.client_id is not None}
    if not keys:
        return {}
    query = {"channel_id": channel_id,
             "$or": [{"author_id": author, "client_id": client_id} for author, client_id in keys]}
    found: dict[tuple[str, str], Message | None] = {}
    async for doc in messages.find(query, session=session):
        found[(doc["author_id"], doc["client_id"])] = _message(doc)
    return found


def _new_message(d: MessageDraft, seq: int) -> Message:
    return Message(id=new_id(), channel=d.channel, seq=seq, author_id=d.author_id,
                   author_name=d.author_name, text=d.text, created_at=now_iso(),
                   client_id=d.client_id, thread_id=d.thread_id)


def _repeat(d: MessageDraft, by_key: dict[tuple[str, str], Message | None]) -> Outcome:
    """The outcome of a draft whose ``client_id`` was stored before (``created=False``)."""
    assert d.client_id is not None
    first = by_key[(d.author_id, d.client_id)]
    if first is None:  # its first copy in this batch was refused: the channel is missing
        return NotFound(f"channel {d.channel} does not exist")
    return first, False
