"""The expected schema, committed as ``storage/schema_snapshot.json``, and drift against it.

``gigvora db snapshot`` applies every shipped migration to a fresh in-memory SQLite database,
describes what they built (tables, columns, indexes, foreign keys, views, triggers) together with
the MongoDB indexes the Mongo backend creates, and writes that description with a SHA-256 of its
canonical JSON. ``gigvora db check`` describes the live store the same way and reports every
difference, one line each. A migration that changes the schema without the snapshot being
regenerated fails ``tests/ops/test_schema_snapshot.py``.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from storage import schema

FORMAT = 1
SNAPSHOT_PATH = Path(__file__).with_name("schema_snapshot.json")
REGENERATE = "regenerate it with `gigvora db snapshot` and commit storage/schema_snapshot.json"
Doc = dict[str, Any]


def _norm_sql(sql: str | None) -> str | None:
    return None if sql is None else re.sub(r"\s+", " ", sql).strip()


def _where(sql: str | None) -> str | None:
    """The WHERE clause of a partial index, whitespace-normalised."""
    match = re.search(r"\bWHERE\b(.*)$", _norm_sql(sql) or "", re.IGNORECASE | re.DOTALL)
    return match.group(1).strip() if match else None


def _columns(conn: sqlite3.Connection, table: str) -> Doc:
    return {row[1]: {"type": row[2].upper(), "notnull": bool(row[3]), "default": row[4],
                     "pk": row[5]}
            for row in conn.execute(f"PRAGMA table_xinfo('{table}')")}


def _indexes(conn: sqlite3.Connection, table: str) -> Doc:
    found: Doc = {}
    for _, name, unique, origin, _partial in conn.execute(f"PRAGMA index_list('{table}')"):
        sql = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?",
                           (name,)).fetchone()
        keys = [(r[2] if r[2] is not None else "<expr>") + (" DESC" if r[3] else "")
                for r in conn.execute(f"PRAGMA index_xinfo('{name}')") if r[5]]
        found[name] = {"unique": bool(unique), "origin": origin, "columns": keys,
                       "where": _where(sql[0] if sql else None)}
    return found


def _foreign_keys(conn: sqlite3.Connection, table: str) -> list[Doc]:
    keys: dict[int, Doc] = {}
    for fk_id, _, target, src, dst, on_update, on_delete, _ in conn.execute(
            f"PRAGMA foreign_key_list('{table}')"):
        key = keys.setdefault(fk_id, {"columns": [], "table": target, "to": [],
                                      "on_update": on_update, "on_delete": on_delete})
        key["columns"].append(src)
        key["to"].append(dst)
    return sorted(keys.values(), key=lambda k: (k["columns"], k["table"]))


def describe_sqlite(conn: sqlite3.Connection) -> Doc:
    """Tables (columns, indexes, foreign keys), views and triggers of a SQLite database."""
    master = conn.execute("SELECT type, name, sql FROM sqlite_master "
                          "WHERE name NOT LIKE 'sqlite_%' ORDER BY name").fetchall()
    tables = {name: {"columns": _columns(conn, name), "indexes": _indexes(conn, name),
                     "foreign_keys": _foreign_keys(conn, name)}
              for kind, name, _ in master if kind == "table"}
    return {"tables": tables,
            "views": {name: _norm_sql(sql) for kind, name, sql in master if kind == "view"},
            "triggers": {name: _norm_sql(sql) for kind, name, sql in master
                         if kind == "trigger"}}


def normalize_mongo_index(doc: Mapping[str, Any]) -> Doc:
    """A MongoDB index (an ``IndexModel.document`` or a ``list_indexes`` entry) as comparable
    JSON: its key as ``[[field, direction], ...]`` and only the options that shape it."""
    key = doc["key"]
    pairs = list(key.items()) if hasattr(key, "items") else list(key)
    out: Doc = {"key": [[field, direction] for field, direction in pairs],
                "unique": bool(doc.get("unique", False))}
    for option in ("partialFilterExpression", "sparse", "expireAfterSeconds", "collation"):
        if option in doc:
            out[option] = json.loads(json.dumps(doc[option], default=str))
    return out


def expected_mongo() -> Doc:
    """The indexes ``storage.mongo`` creates, by collection and name (needs pymongo)."""
    from storage.mongo import INDEXES

    return {"collections": {
        name: {"indexes": {m.document["name"]: normalize_mongo_index(m.document)
                           for m in models}}
        for name, models in sorted(INDEXES.items())}}


def checksum(snapshot: Doc) -> str:
    """SHA-256 of the canonical JSON of everything but the checksum itself."""
    body = {k: v for k, v in snapshot.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"))
                          .encode()).hexdigest()


def build() -> Doc:
    """The snapshot of a fresh migrate of every shipped migration."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        schema.migrate(conn)
        sqlite = describe_sqlite(conn)
    finally:
        conn.close()
    snapshot: Doc = {"format": FORMAT,
                     "migrations": [{"version": m.version, "name": m.name,
                                     "checksum": m.checksum} for m in schema.available()],
                     "sqlite": sqlite, "mongodb": expected_mongo()}
    snapshot["checksum"] = checksum(snapshot)
    return snapshot


def render(snapshot: Doc) -> str:
    """The snapshot as committed: sorted keys, two-space indent, trailing newline."""
    return json.dumps(snapshot, indent=2, sort_keys=True) + "\n"


def write(path: Path = SNAPSHOT_PATH) -> Doc:
    """Regenerate the committed snapshot (``gigvora db snapshot``)."""
    snapshot = build()
    path.write_text(render(snapshot))
    return snapshot


def load(path: Path = SNAPSHOT_PATH) -> tuple[Doc | None, list[str]]:
    """The committed snapshot and problems with the file itself (missing, edited, stale)."""
    if not path.exists():
        return None, [f"no schema snapshot at {path}: {REGENERATE}"]
    snapshot: Doc = json.loads(path.read_text())
    problems = []
    if snapshot.get("checksum") != checksum(snapshot):
        problems.append(f"schema snapshot checksum mismatch (the file was edited): {REGENERATE}")
    shipped = [[m.version, m.name, m.checksum] for m in schema.available()]
    recorded = [[m["version"], m["name"], m["checksum"]] for m in snapshot.get("migrations", [])]
    if shipped != recorded:
        problems.append(
            f"schema snapshot is stale: made for migrations {[m[0] for m in recorded]}, "
            f"shipped {[m[0] for m in shipped]} (or a migration was edited): {REGENERATE}")
    return snapshot, problems


def _diff_named(kind: str, where: str, expected: Doc, live: Doc) -> list[str]:
    problems = [f"{kind} {where}{name} missing" for name in expected if name not in live]
    problems += [f"{kind} {where}{name} unexpected (not in the snapshot)" for name in live
                 if name not in expected]
    for name in expected.keys() & live.keys():
        if expected[name] != live[name]:
            problems.append(f"{kind} {where}{name} differs: expected {expected[name]}, "
                            f"found {live[name]}")
    return sorted(problems)


def diff_sqlite(expected: Doc, live: Doc) -> list[str]:
    """Every difference between two ``describe_sqlite`` results, one line each."""
    problems = _diff_named("table", "", {t: None for t in expected["tables"]},
                           {t: None for t in live["tables"]})
    for table in sorted(expected["tables"].keys() & live["tables"].keys()):
        want, have = expected["tables"][table], live["tables"][table]
        problems += _diff_named("column", f"{table}.", want["columns"], have["columns"])
        problems += _diff_named("index", f"{table}:", want["indexes"], have["indexes"])
        if want["foreign_keys"] != have["foreign_keys"]:
            problems.append(f"foreign keys of {table} differ: expected "
                            f"{want['foreign_keys']}, found {have['foreign_keys']}")
    problems += _diff_named("view", "", expected.get("views", {}), live.get("views", {}))
    problems += _diff_named("trigger", "", expected.get("triggers", {}),
                            live.get("triggers", {}))
    return problems


def diff_mongo(expected: Doc, live: Doc) -> list[str]:
    """Differences between expected and live MongoDB indexes (``_id_`` ignored)."""
    problems: list[str] = []
    for name, want in sorted(expected["collections"].items()):
        have = live["collections"].get(name, {"indexes": {}})
        problems += _diff_named("index", f"{name}:", want["indexes"],
                                {k: v for k, v in have["indexes"].items() if k != "_id_"})
    return problems
