"""The fake's storage engine: committed collections, unique indexes, and multi-document
transactions with snapshot reads and first-writer-wins write conflicts (as WiredTiger).

Query matching, update operators, sorting, projection and aggregation are mongomock's
(``mongomock.filtering`` and a scratch mongomock collection); what mongomock does not model —
indexes that refuse duplicates with MongoDB's real error, transactions, locks, cluster time —
is here.

- Documents are never mutated in place, so a transaction's snapshot is a shallow copy of every
  collection taken when it starts; its writes go to that copy and are applied to the committed
  collections on commit, or dropped on abort.
- A transaction that writes a document (or a unique index key) holds it until it ends; another
  transaction that writes it, or that writes a document committed after its snapshot, fails
  with ``WriteConflict`` (labelled ``TransientTransactionError``) and is aborted. A write outside
  a transaction waits for the holder to finish, as in MongoDB.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

import mongomock
from bson import ObjectId
from bson.timestamp import Timestamp
from mongomock import filtering

Doc = dict[str, Any]
MISSING = object()
TRANSIENT = "TransientTransactionError"


class CommandError(Exception):
    """A command failure in MongoDB's shape: ``ok: 0, errmsg, code, codeName``."""

    def __init__(self, code: int, code_name: str, message: str, *, labels: Iterable[str] = (),
                 extra: Doc | None = None) -> None:
        super().__init__(message)
        self.code, self.code_name, self.message = code, code_name, message
        self.labels, self.extra = list(labels), extra or {}

    def reply(self) -> Doc:
        """The error reply document."""
        body: Doc = {"ok": 0.0, "errmsg": self.message, "code": self.code,
                     "codeName": self.code_name, **self.extra}
        if self.labels:
            body["errorLabels"] = self.labels
        return body

    def write_error(self, index: int) -> Doc:
        """The entry of a ``writeErrors`` array."""
        return {"index": index, "code": self.code, "errmsg": self.message, **self.extra}


def write_conflict() -> CommandError:
    """MongoDB's write conflict inside a transaction (the driver retries the transaction)."""
    return CommandError(112, "WriteConflict", "Caused by :: Write conflict during plan "
                        "execution and yielding is disabled. :: Please retry your operation or "
                        "multi-document transaction.", labels=[TRANSIENT])


def bad_value(message: str) -> CommandError:
    """Code 2, as mongod answers malformed arguments."""
    return CommandError(2, "BadValue", message)


class Blocked(Exception):
    """A write outside a transaction met a document a transaction holds: wait and retry."""

    def __init__(self, holder: Transaction) -> None:
        super().__init__("blocked by a transaction")
        self.holder = holder


def canon(value: Any) -> Hashable:
    """A hashable form of a BSON value with MongoDB's equality (1 == 1.0, field order kept)."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        return ("num", value)
    if isinstance(value, dict):
        return ("doc", tuple((k, canon(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return ("arr", tuple(canon(v) for v in value))
    if value is None:
        return ("null",)
    return (type(value).__name__, value)


def get_path(doc: Any, path: str) -> Any:
    """The value at a dotted path, or MISSING."""
    for part in path.split("."):
        if not isinstance(doc, dict) or part not in doc:
            return MISSING
        doc = doc[part]
    return doc


@dataclass(slots=True)
class Index:
    """A secondary index as created (``_id_`` is implied by the document map)."""

    name: str
    key: list[tuple[str, Any]]
    unique: bool = False
    options: Doc = field(default_factory=dict)

    def spec(self) -> Doc:
        """The ``listIndexes`` entry."""
        body: Doc = {"v": 2, "key": dict(self.key), "name": self.name}
        if self.unique:
            body["unique"] = True
        return {**body, **self.options}

    def entry(self, doc: Doc) -> Hashable | None:
        """The unique key ``doc`` has in this index; None when not unique or skipped."""
        if not self.unique:
            return None
        partial = self.options.get("partialFilterExpression")
        if partial is not None and not filtering.filter_applies(partial, doc):
            return None
        values = [get_path(doc, name) for name, _ in self.key]
        if self.options.get("sparse") and all(v is MISSING for v in values):
            return None
        return tuple(canon(None if v is MISSING else v) for v in values)

    def duplicate(self, namespace: str, doc: Doc) -> CommandError:
        """E11000, with the ``keyPattern``/``keyValue`` MongoDB adds."""
        values = {name: (None if (v := get_path(doc, name)) is MISSING else v)
                  for name, _ in self.key}
        shown = ", ".join(f"{k}: {v!r}" for k, v in values.items())
        return CommandError(11000, "DuplicateKey",
                            f"E11000 duplicate key error collection: {namespace} index: "
                            f"{self.name} dup key: {{ {shown} }}",
                            extra={"keyPattern": dict(self.key), "keyValue": values})


ID_INDEX = Index("_id_", [("_id", 1)], unique=True)


@dataclass(slots=True)
class Collection:
    """Documents by canonical ``_id``, the indexes, and each unique index's entries."""

    namespace: str
    docs: dict[Hashable, Doc] = field(default_factory=dict)
    indexes: dict[str, Index] = field(default_factory=dict)
    entries: dict[str, dict[Hashable, Hashable]] = field(default_factory=dict)
    versions: dict[Hashable, int] = field(default_factory=dict)

    def copy(self) -> Collection:
        """A snapshot: shallow copies (documents are never mutated in place)."""
        return Collection(self.namespace, dict(self.docs), dict(self.indexes),
                          {name: dict(e) for name, e in self.entries.items()})

    def unique_entries(self, doc: Doc) -> list[tuple[Index, Hashable]]:
        """The unique index keys of ``doc``."""
        found = []
        for index in self.indexes.values():
            entry = index.entry(doc)
            if entry is not None:
                found.append((index, entry))
        return found

    def put(self, key: Hashable, doc: Doc | None) -> None:
        """Replace (or remove, with None) one document and its index entries."""
        old = self.docs.pop(key, None) if doc is None else self.docs.get(key)
        if old is not None:
            for index, entry in self.unique_entries(old):
                self.entries[index.name].pop(entry, None)
        if doc is not None:
            self.docs[key] = doc
            for index, entry in self.unique_entries(doc):
                self.entries[index.name][entry] = key

    def add_index(self, index: Index) -> None:
        """Build an index over the existing documents (E11000 on duplicates)."""
        entries: dict[Hashable, Hashable] = {}
        for key, doc in self.docs.items():
            entry = index.entry(doc)
            if entry is not None:
                if entry in entries:
                    raise index.duplicate(self.namespace, doc)
                entries[entry] = key
        self.indexes[index.name] = index
        if index.unique:
            self.entries[index.name] = entries


@dataclass(eq=False)
class Transaction:
    """One multi-document transaction: its snapshot, what it wrote, and its state."""

    number: int
    start_serial: int
    snapshot: dict[str, dict[str, Collection]]
    deadline: float
    written: set[tuple[str, str, Hashable]] = field(default_factory=set)
    held: list[tuple[Any, ...]] = field(default_factory=list)
    state: str = "in_progress"
    done: asyncio.Event = field(default_factory=asyncio.Event)


class Engine:
    """All databases, the lock tables and the cluster clock of one fake server."""

    def __init__(self, transaction_lifetime_s: float = 60.0) -> None:
        self.databases: dict[str, dict[str, Collection]] = {}
        self.serial = 0
        self.lifetime = transaction_lifetime_s
        self.locks: dict[tuple[Any, ...], Transaction] = {}
        self._clock = (int(time.time()), 0)
        self._scratch: Any = mongomock.MongoClient().fake.scratch

    # clock ------------------------------------------------------------------------------------
    def tick(self) -> Timestamp:
        """A new cluster time, after every earlier one (one per write)."""
        seconds, increment = self._clock
        now = int(time.time())
        self._clock = (now, 1) if now > seconds else (seconds, increment + 1)
        return self.cluster_time()

    def cluster_time(self) -> Timestamp:
        """The latest cluster time."""
        return Timestamp(*self._clock) if self._clock[1] else Timestamp(self._clock[0], 1)

    # catalog ----------------------------------------------------------------------------------
    def collection(self, db: str, name: str, create: bool = False) -> Collection | None:
        """A committed collection; created (with its ``_id_`` index) when asked."""
        found = self.databases.get(db, {}).get(name)
        if found is None and create:
            found = self.databases.setdefault(db, {})[name] = Collection(f"{db}.{name}")
        return found

    # transactions -----------------------------------------------------------------------------
    def begin(self, number: int) -> Transaction:
        """A transaction reading the committed state as of now."""
        snapshot = {db: {name: c.copy() for name, c in colls.items()}
                    for db, colls in self.databases.items()}
        return Transaction(number, self.serial, snapshot, time.monotonic() + self.lifetime)

    def commit(self, txn: Transaction) -> None:
        """Apply what the transaction wrote, then release what it holds."""
        if txn.written:
            self.serial += 1
            self.tick()
        for db, name, key in txn.written:
            target = self.collection(db, name, create=True)
            assert target is not None
            target.put(key, txn.snapshot[db][name].docs.get(key))
            target.versions[key] = self.serial
        self._finish(txn, "committed")

    def abort(self, txn: Transaction) -> None:
        """Drop what the transaction wrote and release what it holds."""
        if txn.state == "in_progress":
            self._finish(txn, "aborted")

    def _finish(self, txn: Transaction, state: str) -> None:
        txn.state = state
        for lock in txn.held:
            if self.locks.get(lock) is txn:
                del self.locks[lock]
        txn.held.clear()
        txn.done.set()

    def holder(self, lock: tuple[Any, ...]) -> Transaction | None:
        """The live transaction holding ``lock``; one past its lifetime is aborted first."""
        txn = self.locks.get(lock)
        if txn is not None and time.monotonic() > txn.deadline:
            self.abort(txn)
            return None
        return txn

    # the scratch collection: mongomock's update, sort, projection and aggregation --------------
    def updated(self, old: Doc | None, query: Doc, update: Any) -> Doc:
        """``old`` after ``update`` (operators or a replacement); with ``old`` None, the
        document an upsert of ``query`` inserts."""
        if isinstance(update, list):
            raise CommandError(72, "InvalidOptions", "the fake does not run update pipelines")
        replacement = not any(str(k).startswith("$") for k in update)
        scratch = self._scratch
        scratch.delete_many({})
        try:
            if old is None:
                if replacement:
                    doc = dict(update)
                    if "_id" not in doc and isinstance(query.get("_id"), str | int | ObjectId):
                        doc["_id"] = query["_id"]
                    scratch.insert_one(doc)
                else:
                    scratch.update_one(query, update, upsert=True)
            else:
                scratch.insert_one(dict(old))
                if replacement:
                    if "_id" in update and canon(update["_id"]) != canon(old["_id"]):
                        raise _immutable_id()
                    scratch.replace_one({"_id": old["_id"]}, {**update, "_id": old["_id"]})
                else:
                    scratch.update_one({"_id": old["_id"]}, update)
            result = scratch.find_one()
        except mongomock.OperationFailure as error:
            raise _translated(error) from error
        assert result is not None
        if old is not None and canon(result["_id"]) != canon(old["_id"]):
            raise _immutable_id()
        return {"_id": result["_id"], **{k: v for k, v in result.items() if k != "_id"}}

    def project(self, docs: list[Doc], projection: Doc) -> list[Doc]:
        """mongomock's projection of ``docs``."""
        scratch = self._scratch
        scratch.delete_many({})
        if not docs:
            return []
        try:
            scratch.insert_many([dict(d) for d in docs])
            return list(scratch.find({}, projection))  # natural order: as inserted
        except mongomock.OperationFailure as error:
            raise _translated(error) from error

    def aggregate(self, docs: list[Doc], pipeline: list[Doc]) -> list[Doc]:
        """mongomock's aggregation over ``docs``."""
        scratch = self._scratch
        scratch.delete_many({})
        try:
            if docs:
                scratch.insert_many([dict(d) for d in docs])
            return list(scratch.aggregate(pipeline))
        except (mongomock.OperationFailure, NotImplementedError) as error:
            raise _translated(error) from error


def _immutable_id() -> CommandError:
    return CommandError(66, "ImmutableField", "Performing an update on the path '_id' would "
                        "modify the immutable field '_id'")


def _translated(error: Exception) -> CommandError:
    code = getattr(error, "code", None) or 2
    return CommandError(int(code), "BadValue" if code == 2 else f"Location{code}", str(error))


def sort_docs(docs: list[Doc], sort: Doc | None) -> list[Doc]:
    """Sorted as ``cursor.sort`` (mongomock's BSON ordering, stable, last key first)."""
    for name, direction in reversed(list((sort or {}).items())):
        if name == "$natural":
            docs = docs[::-1] if direction < 0 else docs
            continue
        docs = sorted(docs, key=functools.partial(_sort_key, name), reverse=direction < 0)
    return docs


def _sort_key(name: str, doc: Doc) -> Any:
    return filtering.resolve_sort_key(name, doc)


def matches(query: Doc, doc: Doc) -> bool:
    """mongomock's query matching, failures as BadValue."""
    try:
        return bool(filtering.filter_applies(query, doc))
    except (mongomock.OperationFailure, NotImplementedError) as error:
        raise bad_value(str(error)) from error
