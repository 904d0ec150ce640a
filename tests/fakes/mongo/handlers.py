"""Command handlers: CRUD, cursors, indexes, catalog, sessions. Imported for its registrations."""

from __future__ import annotations

import functools
from typing import Any

from bson import ObjectId

from tests.fakes.mongo.commands import (
    Commands,
    collection_name,
    command,
    find_docs,
    new_index,
    positive,
    retry_blocked,
)
from tests.fakes.mongo.engine import ID_INDEX, CommandError, Doc, bad_value, canon, matches
from tests.fakes.mongo.views import View


def _namespace_missing(namespace: str) -> CommandError:
    return CommandError(26, "NamespaceNotFound", f"ns does not exist: {namespace}")


@command("ping", "buildInfo")
async def ping_or_build_info(server: Commands, view: View, db: str, cmd: Doc) -> Doc:
    """Liveness; buildInfo names a 7.0 server."""
    if next(iter(cmd)).lower() == "buildinfo":
        return {"version": "7.0.0", "versionArray": [7, 0, 0, 0], "gitVersion": "fake",
                "maxBsonObjectSize": 16 * 1024 * 1024, "storageEngines": ["fake"]}
    return {}


@command("endSessions")
async def end_sessions(server: Commands, view: View, db: str, cmd: Doc) -> Doc:
    """Forget the sessions (aborting their transactions)."""
    server.end_sessions(list(cmd["endSessions"]))
    return {}


@command("killSessions")
async def kill_sessions(server: Commands, view: View, db: str, cmd: Doc) -> Doc:
    """Abort the sessions' transactions now (an empty list: every session's)."""
    lsids = list(cmd["killSessions"])
    server.kill_sessions(lsids or None)
    return {}


# reads ------------------------------------------------------------------------------------------
@command("find")
async def find(server: Commands, view: View, db: str, cmd: Doc) -> Doc:
    """filter, sort, projection, skip, limit, batchSize, singleBatch."""
    name = collection_name(cmd)
    docs = find_docs(view, db, name, cmd.get("filter") or {}, cmd.get("sort"))
    limit = int(cmd.get("limit") or 0)
    docs = docs[positive(cmd.get("skip"), "skip"):]
    if limit:
        docs = docs[:abs(limit)]
    if cmd.get("projection"):
        docs = view.engine.project(docs, cmd["projection"])
    single = bool(cmd.get("singleBatch")) or limit < 0
    return server.cursor_reply(f"{db}.{name}", docs, positive(cmd.get("batchSize"),
                                                             "batchSize"), single)


@command("getMore")
async def get_more(server: Commands, view: View, db: str, cmd: Doc) -> Doc:
    """The next batch of an open cursor."""
    cursor_id = int(cmd["getMore"])
    cursor = server.cursors.pop(cursor_id, None)
    if cursor is None:
        raise CommandError(43, "CursorNotFound", f"cursor id {cursor_id} not found")
    reply = server.cursor_reply(cursor.namespace, cursor.docs,
                                positive(cmd.get("batchSize"), "batchSize"), first=False)
    if reply["cursor"]["id"]:  # keep the id the client knows
        server.cursors[cursor_id] = server.cursors.pop(int(reply["cursor"]["id"]))
        reply["cursor"]["id"] = cmd["getMore"]
    return reply


@command("killCursors")
async def kill_cursors(server: Commands, view: View, db: str, cmd: Doc) -> Doc:
    """Close cursors."""
    ids = [int(i) for i in cmd.get("cursors", [])]
    killed = [i for i in ids if server.cursors.pop(i, None) is not None]
    return {"cursorsKilled": killed, "cursorsNotFound": [i for i in ids if i not in killed],
            "cursorsAlive": [], "cursorsUnknown": []}


@command("count")
async def count(server: Commands, view: View, db: str, cmd: Doc) -> Doc:
    """Legacy count (``estimated_document_count``)."""
    docs = find_docs(view, db, collection_name(cmd), cmd.get("query") or {})
    docs = docs[positive(cmd.get("skip"), "skip"):]
    limit = abs(int(cmd.get("limit") or 0))
    return {"n": len(docs[:limit] if limit else docs)}


@command("aggregate")
async def aggregate(server: Commands, view: View, db: str, cmd: Doc) -> Doc:
    """mongomock's pipeline over the collection as this command sees it."""
    name = collection_name(cmd)
    pipeline = cmd.get("pipeline")
    if not isinstance(pipeline, list):
        raise bad_value("'pipeline' must be an array")
    docs = view.engine.aggregate(find_docs(view, db, name, {}), pipeline)
    batch = positive((cmd.get("cursor") or {}).get("batchSize"), "batchSize")
    return server.cursor_reply(f"{db}.{name}", docs, batch)


# writes -----------------------------------------------------------------------------------------
def _write_reply(n: int, errors: list[Doc], **extra: Any) -> Doc:
    reply: Doc = {"n": n, **extra}
    if errors:
        reply["writeErrors"] = errors
    return reply


@command("insert")
async def insert(server: Commands, view: View, db: str, cmd: Doc) -> Doc:
    """Insert documents (``_id`` added first when missing); ordered stops at the first error."""
    name = collection_name(cmd)
    n, errors = 0, []
    for index, doc in enumerate(cmd.get("documents", [])):
        if "_id" not in doc:
            doc = {"_id": ObjectId(), **doc}

        def statement(doc: Doc = doc) -> None:
            coll = view.collection(db, name, create=True)
            assert coll is not None
            view.insert(coll, db, name, doc)
        try:
            await retry_blocked(statement)
            n += 1
        except CommandError as error:
            if error.code == 112:  # a conflict ends the transaction: a command error
                raise
            errors.append(error.write_error(index))
            if cmd.get("ordered", True):
                break
    return _write_reply(n, errors)


def _update_one_statement(view: View, db: str, name: str, spec: Doc) -> tuple[int, int, Any]:
    """(matched, modified, upserted _id or None) of one update statement."""
    query, update = spec.get("q") or {}, spec.get("u")
    if not isinstance(update, dict | list):
        raise bad_value("update 'u' must be a document or a pipeline")
    coll = view.collection(db, name, create=bool(spec.get("upsert")))
    targets = [] if coll is None else [
        (key, doc) for key, doc in coll.docs.items() if matches(query, doc)]
    if not spec.get("multi"):
        targets = targets[:1]
    if targets:
        assert coll is not None
        view.ensure_free(coll, [key for key, _ in targets])
        changes = [(key, doc, view.engine.updated(doc, query, update)) for key, doc in targets]
        modified = 0
        for key, old, new in changes:
            if new != old:
                view.write(coll, db, name, key, new)
                modified += 1
        return len(targets), modified, None
    if not spec.get("upsert"):
        return 0, 0, None
    assert coll is not None
    new = view.engine.updated(None, query, update)
    view.insert(coll, db, name, new)
    return 1, 0, new["_id"]


@command("update")
async def update(server: Commands, view: View, db: str, cmd: Doc) -> Doc:
    """Update statements (``$set``, ``$inc``, ``$setOnInsert``, ``$max``… via mongomock)."""
    name = collection_name(cmd)
    n = modified = 0
    errors: list[Doc] = []
    upserted: list[Doc] = []
    for index, spec in enumerate(cmd.get("updates", [])):
        try:
            matched, changed, new_id = await retry_blocked(
                functools.partial(_update_one_statement, view, db, name, spec))
        except CommandError as error:
            if error.code == 112:
                raise
            errors.append(error.write_error(index))
            if cmd.get("ordered", True):
                break
            continue
        n, modified = n + matched, modified + changed
        if new_id is not None:
            upserted.append({"index": index, "_id": new_id})
    extra: Doc = {"nModified": modified}
    if upserted:
        extra["upserted"] = upserted
    return _write_reply(n, errors, **extra)


def _delete_statement(view: View, db: str, name: str, spec: Doc) -> int:
    coll = view.collection(db, name)
    if coll is None:
        return 0
    query = spec.get("q") or {}
    keys = [key for key, doc in coll.docs.items() if matches(query, doc)]
    if spec.get("limit"):
        keys = keys[:1]
    view.ensure_free(coll, keys)
    for key in keys:
        view.write(coll, db, name, key, None)
    return len(keys)


@command("delete")
async def delete(server: Commands, view: View, db: str, cmd: Doc) -> Doc:
    """Delete statements (``limit`` 1 or 0 for all)."""
    name = collection_name(cmd)
    n = 0
    for spec in cmd.get("deletes", []):
        n += await retry_blocked(functools.partial(_delete_statement, view, db, name, spec))
    return _write_reply(n, [])


def _find_and_modify(view: View, db: str, name: str, cmd: Doc) -> Doc:
    query = cmd.get("query") or {}
    coll = view.collection(db, name, create=bool(cmd.get("upsert")))
    docs = [] if coll is None else find_docs(view, db, name, query, cmd.get("sort"))
    old = docs[0] if docs else None
    if cmd.get("remove"):
        if old is not None and coll is not None:
            view.ensure_free(coll, [canon(old["_id"])])
            view.write(coll, db, name, canon(old["_id"]), None)
        return {"lastErrorObject": {"n": int(old is not None)}, "value": old}
    if "update" not in cmd:
        raise CommandError(9, "FailedToParse", "Either an update or remove=true must be "
                           "specified")
    if old is not None:
        assert coll is not None
        key = canon(old["_id"])
        view.ensure_free(coll, [key])
        new = view.engine.updated(old, query, cmd["update"])
        if new != old:
            view.write(coll, db, name, key, new)
        status: Doc = {"n": 1, "updatedExisting": True}
    elif cmd.get("upsert"):
        assert coll is not None
        new = view.engine.updated(None, query, cmd["update"])
        view.insert(coll, db, name, new)
        status = {"n": 1, "updatedExisting": False, "upserted": new["_id"]}
    else:
        return {"lastErrorObject": {"n": 0, "updatedExisting": False}, "value": None}
    value = new if cmd.get("new") else old
    if value is not None and cmd.get("fields"):
        value = view.engine.project([value], cmd["fields"])[0]
    return {"lastErrorObject": status, "value": value}


@command("findAndModify")
async def find_and_modify(server: Commands, view: View, db: str, cmd: Doc) -> Doc:
    """One document updated, upserted or removed; errors (E11000 too) are command errors."""
    name = collection_name(cmd)
    result: Doc = await retry_blocked(lambda: _find_and_modify(view, db, name, cmd))
    return result


# indexes and catalog ----------------------------------------------------------------------------
@command("createIndexes")
async def create_indexes(server: Commands, view: View, db: str, cmd: Doc) -> Doc:
    """Create indexes (idempotent for an identical spec; conflicts as mongod reports them)."""
    name = collection_name(cmd)
    existed = view.engine.collection(db, name) is not None
    coll = view.engine.collection(db, name, create=True)
    assert coll is not None
    before = len(coll.indexes) + 1
    for spec in cmd.get("indexes", []):
        index = new_index(spec)
        same_name = coll.indexes.get(index.name)
        if same_name is not None:
            if same_name.spec() != index.spec():
                raise CommandError(86, "IndexKeySpecsConflict", "An existing index has the "
                                   f"same name as the requested index: {same_name.spec()}")
            continue
        same_key = [i for i in coll.indexes.values() if i.key == index.key
                    and i.spec() | {"name": ""} == index.spec() | {"name": ""}]
        if same_key or index.key == ID_INDEX.key:
            raise CommandError(85, "IndexOptionsConflict", "Index already exists with a "
                               f"different name: {index.name}")
        coll.add_index(index)
    reply: Doc = {"numIndexesBefore": before, "numIndexesAfter": len(coll.indexes) + 1,
                  "createdCollectionAutomatically": not existed}
    if before == reply["numIndexesAfter"]:
        reply["note"] = "all indexes already exist"
    return reply


@command("listIndexes")
async def list_indexes(server: Commands, view: View, db: str, cmd: Doc) -> Doc:
    """``_id_`` first, then the others in creation order."""
    name = collection_name(cmd)
    coll = view.engine.collection(db, name)
    if coll is None:
        raise _namespace_missing(f"{db}.{name}")
    specs = [{"v": 2, "key": {"_id": 1}, "name": "_id_"},
             *(i.spec() for i in coll.indexes.values())]
    return server.cursor_reply(f"{db}.{name}", specs, None)


@command("dropIndexes", "deleteIndexes")
async def drop_indexes(server: Commands, view: View, db: str, cmd: Doc) -> Doc:
    """Drop one index by name or key pattern, or every one but ``_id_`` with ``*``."""
    name = collection_name(cmd)
    coll = view.engine.collection(db, name)
    if coll is None:
        raise _namespace_missing(f"{db}.{name}")
    target = cmd.get("index")
    before = len(coll.indexes) + 1
    if target == "*":
        names = list(coll.indexes)
    else:
        names = [i.name for i in coll.indexes.values()
                 if i.name == target or (isinstance(target, dict)
                                         and i.key == list(target.items()))]
        if not names:
            raise CommandError(27, "IndexNotFound", f"index not found with name [{target}]")
    for index_name in names:
        coll.indexes.pop(index_name)
        coll.entries.pop(index_name, None)
    return {"nIndexesWas": before}


@command("create")
async def create(server: Commands, view: View, db: str, cmd: Doc) -> Doc:
    """Create a collection (error 48 if it exists)."""
    name = collection_name(cmd)
    if view.engine.collection(db, name) is not None:
        raise CommandError(48, "NamespaceExists", f"Collection {db}.{name} already exists.")
    view.engine.collection(db, name, create=True)
    return {}


@command("drop")
async def drop(server: Commands, view: View, db: str, cmd: Doc) -> Doc:
    """Drop a collection."""
    name = collection_name(cmd)
    if view.engine.databases.get(db, {}).pop(name, None) is None:
        raise _namespace_missing(f"{db}.{name}")
    return {"ns": f"{db}.{name}", "nIndexesWas": 1}


@command("dropDatabase")
async def drop_database(server: Commands, view: View, db: str, cmd: Doc) -> Doc:
    """Drop every collection of the database."""
    view.engine.databases.pop(db, None)
    return {}


@command("listCollections")
async def list_collections(server: Commands, view: View, db: str, cmd: Doc) -> Doc:
    """Collections of the database (filter on ``name``/``type``)."""
    infos = [{"name": name, "type": "collection", "options": {},
              "info": {"readOnly": False}, "idIndex": {"v": 2, "key": {"_id": 1},
                                                       "name": "_id_"}}
             for name in sorted(view.engine.databases.get(db, {}))]
    if cmd.get("filter"):
        infos = [i for i in infos if matches(cmd["filter"], i)]
    if cmd.get("nameOnly"):
        infos = [{"name": i["name"], "type": i["type"]} for i in infos]
    return server.cursor_reply(f"{db}.$cmd.listCollections", infos, None)


@command("listDatabases")
async def list_databases(server: Commands, view: View, db: str, cmd: Doc) -> Doc:
    """Databases that hold a collection."""
    names = sorted(name for name, colls in view.engine.databases.items() if colls)
    if cmd.get("nameOnly"):
        return {"databases": [{"name": n} for n in names]}
    return {"databases": [{"name": n, "sizeOnDisk": 0, "empty": False} for n in names],
            "totalSize": 0}


@command("commitTransaction", "abortTransaction")
async def end_transaction(server: Commands, view: View, db: str, cmd: Doc) -> Doc:
    """Answered by Commands (they need the session, not a view); listed so they are known."""
    raise AssertionError("dispatched by Commands._end_transaction")
