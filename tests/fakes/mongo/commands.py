"""The commands the fake answers, as mongod answers them (reply fields, error codes)."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bson import Binary, Int64, ObjectId

from tests.fakes.mongo.engine import (
    TRANSIENT,
    Blocked,
    CommandError,
    Doc,
    Engine,
    Index,
    Transaction,
    bad_value,
    canon,
    matches,
    sort_docs,
)
from tests.fakes.mongo.failpoints import CloseConnection, FailPoint, configure, failure_error
from tests.fakes.mongo.views import View

log = logging.getLogger(__name__)
MAX_WIRE_VERSION = 21  # MongoDB 7.0
DEFAULT_BATCH = 101
Handler = Callable[["Commands", View, str, Doc], Awaitable[Doc]]
HANDLERS: dict[str, Handler] = {}
WRITES = {"insert", "update", "delete", "findandmodify"}


def command(*names: str) -> Callable[[Handler], Handler]:
    """Register a handler under the (case-insensitive) command names."""
    def register(handler: Handler) -> Handler:
        for name in names:
            HANDLERS[name.lower()] = handler
        return handler
    return register


@dataclass
class Session:
    """A logical session: its transaction and the replies of its retryable writes."""

    txn_number: int = -1
    txn: Transaction | None = None
    retried: dict[int, Doc] = field(default_factory=dict)


@dataclass
class Cursor:
    """The rest of a query's results."""

    namespace: str
    docs: list[Doc]


def no_such_transaction(number: int, transient: bool = True) -> CommandError:
    """Error 251, as mongod answers a transaction it does not know (or aborted)."""
    return CommandError(251, "NoSuchTransaction",
                        f"Transaction with {{ txnNumber: {number} }} has been aborted.",
                        labels=[TRANSIENT] if transient else [])


class Commands:
    """The command layer of one fake server: sessions, cursors, and the handlers."""

    def __init__(self, engine: Engine, address: str, set_name: str | None) -> None:
        self.engine, self.address, self.set_name = engine, address, set_name
        self.sessions: dict[Any, Session] = {}
        self.cursors: dict[int, Cursor] = {}
        self.seen: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()  # codeName (or write error code) answered
        self.election_id = ObjectId("7fffffff0000000000000001")
        self.fail_point: FailPoint | None = None

    async def run(self, db: str, cmd: Doc, connection_id: int,
                  app_name: str | None = None) -> Doc:
        """Answer one command; every reply carries the cluster time, as a replica set's.
        Raises CloseConnection when a fail point says so."""
        name = next(iter(cmd), "")
        self.seen[name] += 1
        log.debug("command %s on %s: %s", name, db, sorted(cmd))
        failure = self.fail_point.take(name, app_name) if self.fail_point else None
        try:
            if failure is not None:
                reply = await self._fail(failure, name, db, cmd, connection_id)
            else:
                reply = await self._dispatch(name, db, cmd, connection_id)
        except CommandError as error:
            reply = error.reply()
            self.errors[error.code_name] += 1
        for write_error in reply.get("writeErrors", ()):
            self.errors[f"write error {write_error['code']}"] += 1
        reply.setdefault("ok", 1.0)
        now = self.engine.cluster_time()
        reply["$clusterTime"] = {"clusterTime": now, "signature": {
            "hash": Binary(b"\0" * 20), "keyId": Int64(0)}}
        reply["operationTime"] = now
        return reply

    async def _fail(self, failure: Doc, name: str, db: str, cmd: Doc,
                    connection_id: int) -> Doc:
        """What a ``failCommand`` fail point does to this command."""
        if failure.get("blockConnection"):
            await asyncio.sleep(float(failure.get("blockTimeMS", 0)) / 1000)
        if failure.get("closeConnection"):
            raise CloseConnection()
        retryable_write = ("txnNumber" in cmd and cmd.get("autocommit") is None
                           and name.lower() in WRITES)
        if "errorCode" in failure:
            session = self._session(cmd)
            if session is not None and cmd.get("autocommit") is False and \
                    session.txn is not None:
                self.engine.abort(session.txn)  # a failed statement ends its transaction
            raise failure_error(failure, name, retryable_write)
        reply = await self._dispatch(name, db, cmd, connection_id)
        if "writeConcernError" in failure:  # the write happened; its durability is unknown
            reply["writeConcernError"] = dict(failure["writeConcernError"])
        return reply

    async def _dispatch(self, name: str, db: str, cmd: Doc, connection_id: int) -> Doc:
        lowered = name.lower()
        if lowered in ("hello", "ismaster"):
            return self.hello(lowered == "hello", connection_id)
        if lowered == "configurefailpoint":
            self.fail_point = configure(cmd)
            return {}
        handler = HANDLERS.get(lowered)
        if handler is None:
            log.warning("fake MongoDB: unsupported command %s", name)
            raise CommandError(59, "CommandNotFound", f"no such command: '{name}'")
        session = self._session(cmd)
        if lowered in ("committransaction", "aborttransaction"):
            return self._end_transaction(lowered, session, cmd)
        txn = self._transaction(session, cmd)
        retry_key = None
        if session is not None and txn is None and "txnNumber" in cmd and lowered in WRITES:
            retry_key = int(cmd["txnNumber"])
            if retry_key in session.retried:  # a retried write: answer as the first time
                return dict(session.retried[retry_key])
        try:
            reply = await handler(self, View(self.engine, txn), db, cmd)
        except CommandError:
            if txn is not None:
                self.engine.abort(txn)  # mongod aborts a transaction whose statement failed
            raise
        if txn is not None and reply.get("writeErrors"):
            self.engine.abort(txn)
        if session is not None and retry_key is not None:
            session.retried = {retry_key: dict(reply)}
        return reply

    def hello(self, modern: bool, connection_id: int) -> Doc:
        """A writable primary of a one-member replica set (so drivers allow transactions), or
        a standalone server when the fake has no set name."""
        member: Doc = {} if self.set_name is None else {
            "hosts": [self.address], "setName": self.set_name, "setVersion": 1,
            "secondary": False, "primary": self.address, "me": self.address,
            "electionId": self.election_id}
        return {"helloOk": True, ("isWritablePrimary" if modern else "ismaster"): True,
                **member, "maxBsonObjectSize": 16 * 1024 * 1024, "maxMessageSizeBytes": 48_000_000,
                "maxWriteBatchSize": 100_000,
                "localTime": datetime.now(UTC).replace(tzinfo=None),
                "logicalSessionTimeoutMinutes": 30, "connectionId": connection_id,
                "minWireVersion": 0, "maxWireVersion": MAX_WIRE_VERSION, "readOnly": False}

    # sessions and transactions ----------------------------------------------------------------
    def _session(self, cmd: Doc) -> Session | None:
        lsid = cmd.get("lsid")
        if not isinstance(lsid, dict) or "id" not in lsid:
            return None
        return self.sessions.setdefault(canon(lsid["id"]), Session())

    def _transaction(self, session: Session | None, cmd: Doc) -> Transaction | None:
        if self.set_name is None and "txnNumber" in cmd:
            raise CommandError(20, "IllegalOperation", "Transaction numbers are only allowed on "
                               "a replica set member or mongos")
        if cmd.get("autocommit") is not False:
            return None
        if session is None or "txnNumber" not in cmd:
            raise CommandError(50768, "InvalidOptions",
                               "autocommit:false needs a session and a txnNumber")
        number = int(cmd["txnNumber"])
        if "writeConcern" in cmd:
            raise CommandError(72, "InvalidOptions", "Cannot set write concern after starting "
                               "a transaction (only commit and abort take one)")
        level = (cmd.get("readConcern") or {}).get("level", "snapshot")
        if level not in ("snapshot", "majority", "local"):
            raise CommandError(72, "InvalidOptions", f"read concern level {level} is not "
                               "supported in a transaction")
        if "readConcern" in cmd and not cmd.get("startTransaction"):
            raise CommandError(72, "InvalidOptions", "Only the first command in a transaction "
                               "may specify a readConcern")
        if cmd.get("startTransaction"):
            if number <= session.txn_number:
                raise CommandError(225, "TransactionTooOld",
                                   f"txnNumber {number} is not newer than {session.txn_number}")
            if session.txn is not None:
                self.engine.abort(session.txn)
            session.txn_number, session.txn = number, self.engine.begin(number)
            return session.txn
        txn = session.txn
        if txn is None or txn.number != number or txn.state != "in_progress":
            raise no_such_transaction(number)
        return txn

    def _end_transaction(self, name: str, session: Session | None, cmd: Doc) -> Doc:
        number = int(cmd.get("txnNumber", -1))
        txn = session.txn if session is not None else None
        if txn is None or txn.number != number:
            raise no_such_transaction(number, transient=name == "committransaction")
        if name == "aborttransaction":
            if txn.state != "in_progress":
                raise no_such_transaction(number, transient=False)
            self.engine.abort(txn)
            return {}
        if txn.state == "aborted":
            raise no_such_transaction(number)
        if txn.state == "in_progress":
            self.engine.commit(txn)
        return {}  # committing a committed transaction again is a no-op, as in mongod

    def end_sessions(self, lsids: list[Doc]) -> None:
        """Forget sessions; their open transactions are aborted."""
        for lsid in lsids:
            session = self.sessions.pop(canon(lsid.get("id")), None)
            if session is not None and session.txn is not None:
                self.engine.abort(session.txn)

    def kill_sessions(self, lsids: list[Doc] | None) -> None:
        """Abort the open transactions of these sessions (None: of all); the sessions stay
        usable, as in mongod."""
        keys = list(self.sessions) if lsids is None else [canon(x.get("id")) for x in lsids]
        for key in keys:
            session = self.sessions.get(key)
            if session is not None and session.txn is not None:
                self.engine.abort(session.txn)

    # cursors ------------------------------------------------------------------------------------
    def cursor_reply(self, namespace: str, docs: list[Doc], batch_size: int | None,
                     single: bool = False, first: bool = True) -> Doc:
        """A ``cursor`` reply; the rest is kept under a cursor id for ``getMore``."""
        size = batch_size or (DEFAULT_BATCH if first else len(docs))
        batch, rest = docs[:size], docs[size:]
        cursor_id = 0
        if rest and not single:
            cursor_id = random.randrange(1, 2**62)
            self.cursors[cursor_id] = Cursor(namespace, rest)
        return {"cursor": {("firstBatch" if first else "nextBatch"): batch,
                           "id": Int64(cursor_id), "ns": namespace}}


async def retry_blocked(statement: Callable[[], Any], max_wait_s: float = 30.0) -> Any:
    """Run a statement outside a transaction, waiting (like mongod) while a transaction holds
    what it writes."""
    deadline = time.monotonic() + max_wait_s
    while True:
        try:
            return statement()
        except Blocked as blocked:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CommandError(50, "MaxTimeMSExpired",
                                   "operation exceeded time limit") from None
            holder = blocked.holder
            try:
                await asyncio.wait_for(holder.done.wait(), min(remaining, 1.0))
            except TimeoutError:
                pass  # engine.holder() aborts a transaction past its lifetime


def collection_name(cmd: Doc) -> str:
    """The collection a command addresses (the value of its first field)."""
    name = next(iter(cmd.values()))
    if not isinstance(name, str) or not name:
        raise CommandError(73, "InvalidNamespace", f"collection name must be a string: {name!r}")
    return name


def positive(value: Any, what: str) -> int:
    """A non-negative integer argument."""
    if value is None:
        return 0
    if not isinstance(value, int | float) or value < 0:
        raise bad_value(f"{what} must be a non-negative number")
    return int(value)


def find_docs(view: View, db: str, name: str, query: Doc, sort: Doc | None = None
              ) -> list[Doc]:
    """Matching documents as this command sees them, sorted."""
    coll = view.collection(db, name)
    if coll is None:
        return []
    return sort_docs([d for d in coll.docs.values() if matches(query, d)], sort)


def new_index(spec: Doc) -> Index:
    """An Index from a ``createIndexes`` entry."""
    key = spec.get("key")
    if not isinstance(key, dict) or not key or "name" not in spec:
        raise CommandError(67, "CannotCreateIndex", "index specs need a key and a name")
    options = {k: v for k, v in spec.items() if k not in ("key", "name", "unique", "v")}
    return Index(str(spec["name"]), list(key.items()), bool(spec.get("unique")), options)
