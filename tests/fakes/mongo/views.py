"""What one command reads and writes: the committed collections, or a transaction's snapshot.

``write`` checks everything first and then applies, so a statement that is refused (duplicate
key, write conflict) or blocked (a transaction holds the document) has changed nothing.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from tests.fakes.mongo.engine import (
    ID_INDEX,
    Blocked,
    Collection,
    Doc,
    Engine,
    Transaction,
    canon,
    write_conflict,
)


class View:
    """The collections one command sees, and how its writes are checked and applied."""

    def __init__(self, engine: Engine, txn: Transaction | None) -> None:
        self.engine = engine
        self.txn = txn

    def collection(self, db: str, name: str, create: bool = False) -> Collection | None:
        """The collection as this command sees it (None when it does not exist)."""
        if self.txn is None:
            return self.engine.collection(db, name, create)
        colls = self.txn.snapshot.setdefault(db, {})
        found = colls.get(name)
        if found is None:  # created after the snapshot (or now, implicitly)
            committed = self.engine.collection(db, name, create)
            if committed is None:
                return None
            found = colls[name] = committed.copy()
        return found

    def insert(self, coll: Collection, db: str, name: str, doc: Doc) -> None:
        """Insert one document (E11000 on a taken ``_id``)."""
        key = canon(doc["_id"])
        if key in coll.docs:
            raise ID_INDEX.duplicate(coll.namespace, doc)
        self.write(coll, db, name, key, doc)

    def ensure_free(self, coll: Collection, keys: list[Hashable]) -> None:
        """Outside a transaction: Blocked if a transaction holds any of these documents."""
        if self.txn is None:
            for key in keys:
                holder = self.engine.holder(("doc", coll.namespace, key))
                if holder is not None:
                    raise Blocked(holder)

    def write(self, coll: Collection, db: str, name: str, key: Hashable,
              doc: Doc | None) -> None:
        """Replace, insert or (with None) delete one document, after every check."""
        entries = coll.unique_entries(doc) if doc is not None else []
        for index, entry in entries:
            owner = coll.entries[index.name].get(entry)
            if owner is not None and owner != key:
                assert doc is not None
                raise index.duplicate(coll.namespace, doc)
        locks: list[tuple[Any, ...]] = [("doc", coll.namespace, key)]
        locks += [("key", coll.namespace, index.name, entry) for index, entry in entries]
        if self.txn is None:
            self._write_committed(coll, key, doc, locks)
        else:
            self._write_in_transaction(self.txn, coll, db, name, key, doc, locks)

    def _write_committed(self, coll: Collection, key: Hashable, doc: Doc | None,
                         locks: list[tuple[Any, ...]]) -> None:
        for lock in locks:
            holder = self.engine.holder(lock)
            if holder is not None:
                raise Blocked(holder)
        coll.put(key, doc)
        self.engine.serial += 1
        coll.versions[key] = self.engine.serial
        self.engine.tick()

    def _write_in_transaction(self, txn: Transaction, coll: Collection, db: str, name: str,
                              key: Hashable, doc: Doc | None,
                              locks: list[tuple[Any, ...]]) -> None:
        committed = self.engine.collection(db, name, create=True)
        assert committed is not None
        for lock in locks:
            holder = self.engine.holder(lock)
            if holder is not None and holder is not txn:
                raise write_conflict()
        if committed.versions.get(key, 0) > txn.start_serial:
            raise write_conflict()  # committed by someone else since our snapshot
        for index, entry in (coll.unique_entries(doc) if doc is not None else []):
            owner = committed.entries.get(index.name, {}).get(entry)
            if owner is not None and owner != key and \
                    committed.versions.get(owner, 0) > txn.start_serial:
                raise write_conflict()  # the key was taken since our snapshot
        for lock in locks:
            if self.engine.locks.get(lock) is not txn:
                self.engine.locks[lock] = txn
                txn.held.append(lock)
        coll.put(key, doc)
        txn.written.add((db, name, key))
