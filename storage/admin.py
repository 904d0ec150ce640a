"""``gigvora db migrate|check|snapshot|backup|restore`` and ``gigvora seed``.

A running server holds a shared ``flock`` on ``<db>.lock``; ``restore`` needs it alone, so it
refuses while any server uses the store, and it never overwrites an existing store without
``--force``. Backups use SQLite's online backup API from this process (never the server's event
loop): one step under one read transaction, so the copy is a consistent snapshot while the server
keeps writing (WAL readers do not block the writer). Each backup gets a manifest next to it
(``<backup>.manifest.json``: file SHA-256, row counts and a content checksum per table, applied
migrations) that ``restore`` verifies before and after copying.

MongoDB: ``migrate`` creates the indexes and ``check`` compares them with the snapshot; backups
are ``mongodump``/``mongorestore`` (docs/operations.md).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from storage import schema, snapshot
from storage.base import StoreUnavailable, now_iso
from storage.sqlite import connect, release_lock, take_lock

MANIFEST_FORMAT = 1
MONGO_BACKUP_HINT = ("MongoDB backups are mongodump/mongorestore, then `gigvora db migrate` "
                     "re-creates the indexes (docs/operations.md, \"Backups\")")


class AdminError(Exception):
    """A refused or failed governance command; the message is printed as one line."""


def is_mongo(url: str) -> bool:
    """True for ``mongodb://`` and ``mongodb+srv://`` store URLs."""
    return url.startswith(("mongodb://", "mongodb+srv://"))


def sqlite_path(url: str) -> Path:
    """The file of a ``sqlite:///`` URL."""
    if not url.startswith("sqlite:///"):
        raise AdminError(f"this command works on the embedded SQLite store; {MONGO_BACKUP_HINT}")
    return Path(url.removeprefix("sqlite:///"))


@contextmanager
def exclusive_lock(db: Path) -> Iterator[None]:
    """Exclusive use of the store: refused while any server holds its shared lock."""
    fd = take_lock(db, shared=False)
    if fd is None:
        raise AdminError(f"{db} is in use by a running server; stop every server first")
    try:
        yield
    finally:
        release_lock(fd)


# verification ----------------------------------------------------------------------------------
def tables(conn: sqlite3.Connection) -> list[str]:
    """Every table of the database (SQLite's internal ones excluded), by name."""
    return [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                       "AND name NOT LIKE 'sqlite_%' ORDER BY name")]


def counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Row counts of every table."""
    return {t: conn.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables(conn)}


def digest(conn: sqlite3.Connection) -> str:
    """A checksum over every row of every table, in a total order (for verifying copies)."""
    h = hashlib.sha256()
    for table in tables(conn):
        width = len(conn.execute(f'SELECT * FROM "{table}" LIMIT 0').description)
        order = ", ".join(str(i) for i in range(1, width + 1))
        h.update(table.encode())
        for row in conn.execute(f'SELECT * FROM "{table}" ORDER BY {order}'):
            h.update(repr(row).encode())
    return h.hexdigest()


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def manifest_path(backup_file: Path) -> Path:
    """Where the manifest of a backup lives."""
    return backup_file.with_name(backup_file.name + ".manifest.json")


def _integrity(conn: sqlite3.Connection, what: Path) -> None:
    check = conn.execute("PRAGMA integrity_check").fetchone()[0]
    if check != "ok":
        raise AdminError(f"{what} failed its integrity check: {check}")


# backup and restore ------------------------------------------------------------------------------
def backup(db: Path, target: Path) -> dict[str, Any]:
    """An online, consistent copy of ``db`` at ``target`` plus its manifest."""
    if not db.exists():
        raise AdminError(f"no store at {db}")
    if target.exists() or manifest_path(target).exists():
        raise AdminError(f"{target} exists; choose a new path")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    with closing(connect(str(db), readonly=True)) as source, \
            closing(sqlite3.connect(str(partial), isolation_level=None)) as dest:
        source.backup(dest)  # one step: one read transaction, a consistent snapshot
        dest.execute("PRAGMA journal_mode = DELETE")  # a single self-contained file
        _integrity(dest, partial)
        manifest = {"format": MANIFEST_FORMAT, "created_at": now_iso(), "source": str(db),
                    "file": target.name, "rows": counts(dest), "content_sha256": digest(dest),
                    "migrations": sorted(schema.applied(dest))}
    os.replace(partial, target)
    manifest.update(bytes=target.stat().st_size, sha256=file_sha256(target))
    manifest_path(target).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return {"backup": str(target), "manifest": str(manifest_path(target)),
            "rows": manifest["rows"], "sha256": manifest["sha256"]}


async def backup_in_thread(db: Path, target: Path) -> dict[str, Any]:
    """``backup`` for callers on an event loop: it runs in a worker thread."""
    return await asyncio.to_thread(backup, db, target)


def verify_backup(source: Path) -> dict[str, Any]:
    """Check a backup against its manifest (file hash, integrity, row counts, content)."""
    if not source.exists():
        raise AdminError(f"no backup at {source}")
    if not manifest_path(source).exists():
        raise AdminError(f"no manifest at {manifest_path(source)}: not a `gigvora db backup`")
    manifest: dict[str, Any] = json.loads(manifest_path(source).read_text())
    if file_sha256(source) != manifest.get("sha256"):
        raise AdminError(f"{source} does not match its manifest's SHA-256 (changed or damaged)")
    with closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as src:
        _integrity(src, source)
        if counts(src) != manifest["rows"] or digest(src) != manifest["content_sha256"]:
            raise AdminError(f"{source} does not match its manifest's row counts or checksum")
    return manifest


def restore(db: Path, source: Path, force: bool) -> dict[str, Any]:
    """Replace the store with a verified backup (only with ``force`` if a store exists; never
    while a server uses it); verify the restored store against the manifest."""
    manifest = verify_backup(source)
    if db.exists() and not force:
        raise AdminError(f"{db} exists; pass --force to overwrite it with {source}")
    with exclusive_lock(db), \
            closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as src, \
            closing(connect(str(db))) as dest:
        src.backup(dest)
        restored = (counts(dest), digest(dest))
    if restored != (manifest["rows"], manifest["content_sha256"]):
        raise AdminError("the restored store differs from the backup; restore again")
    return {"restored": str(db), "from": str(source), "rows": restored[0],
            "content_sha256": restored[1]}


# schema --------------------------------------------------------------------------------------
def migrate(settings: Any) -> dict[str, Any]:
    """Apply pending migrations (SQLite) or create the indexes (MongoDB)."""
    url = settings.effective_store_url
    if is_mongo(url):
        from storage.base import open_store

        async def open_and_close() -> None:
            store = open_store(url)
            await store.open()  # creates every index (idempotent)
            await store.close()
        asyncio.run(open_and_close())
        return {"mongodb": "indexes ensured"}
    db = sqlite_path(url)
    db.parent.mkdir(parents=True, exist_ok=True)
    with closing(connect(str(db))) as conn:
        return {"applied": schema.migrate(conn)}


def check(settings: Any) -> list[str]:
    """Every problem: snapshot file, migrations applied, live schema against the snapshot."""
    expected, problems = snapshot.load()
    url = settings.effective_store_url
    if is_mongo(url):
        live = asyncio.run(_mongo_indexes(url, expected))
        return problems + (snapshot.diff_mongo(expected["mongodb"], live) if expected else [])
    db = sqlite_path(url)
    if not db.exists():
        return [*problems, f"no store at {db}: run `gigvora db migrate`"]
    with closing(connect(str(db), readonly=True)) as conn:
        problems += schema.check(conn)
        if expected is not None:
            problems += snapshot.diff_sqlite(expected["sqlite"], snapshot.describe_sqlite(conn))
    return problems


async def _mongo_indexes(url: str, expected: dict[str, Any] | None) -> dict[str, Any]:
    from pymongo import AsyncMongoClient
    from pymongo.errors import PyMongoError

    from storage.mongo import DEFAULT_DATABASE

    names = (expected or {}).get("mongodb", {}).get("collections", {})
    options: dict[str, Any] = {} if "serverselectiontimeoutms" in url.lower() else {
        "serverSelectionTimeoutMS": 5000}  # the URI's own setting wins
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url, **options)
    try:
        db = client.get_default_database(DEFAULT_DATABASE)
        found: dict[str, Any] = {}
        for name in names:
            cursor = await db[name].list_indexes()
            found[name] = {"indexes": {doc["name"]: snapshot.normalize_mongo_index(doc)
                                       async for doc in cursor}}
        return {"collections": found}
    except PyMongoError as error:
        raise StoreUnavailable(f"cannot read the MongoDB indexes: {error}") from error
    finally:
        await client.close()


def run_db_command(settings: Any, command: str, path: str | None, force: bool = False) -> int:
    """Dispatch ``gigvora db …``; print what happened; exit code 0 on success, 1 on drift or
    refusal."""
    try:
        if command == "migrate":
            print(json.dumps(migrate(settings)))
            return 0
        if command == "snapshot":
            try:
                made = snapshot.write(Path(path) if path else snapshot.SNAPSHOT_PATH)
            except ImportError as error:
                raise AdminError("the snapshot records the MongoDB indexes too and needs "
                                 "pymongo: pip install -e '.[mongodb]'") from error
            print(json.dumps({"snapshot": path or str(snapshot.SNAPSHOT_PATH),
                              "migrations": [m["version"] for m in made["migrations"]],
                              "checksum": made["checksum"]}))
            return 0
        if command == "check":
            problems = check(settings)
            for problem in problems:
                print(problem)
            print("schema ok" if not problems else f"schema drift: {len(problems)} problem(s)")
            return 1 if problems else 0
        assert path is not None
        db = sqlite_path(settings.effective_store_url)
        result = backup(db, Path(path)) if command == "backup" else restore(db, Path(path), force)
        print(json.dumps(result))
        return 0
    except (AdminError, StoreUnavailable) as error:
        print(f"gigvora db {command}: {error}", file=sys.stderr)
        return 1


def run_seed(settings: Any, pack: str = "core") -> int:
    """Apply a seed pack (idempotent) and print what it holds."""
    from storage.base import open_store
    from storage.seed import PACKS, apply_pack

    if pack not in PACKS:
        print(f"gigvora seed: unknown pack {pack!r} (packs: {', '.join(PACKS)})",
              file=sys.stderr)
        return 2

    async def seed() -> dict[str, Any]:
        store = open_store(settings.effective_store_url)
        await store.open()
        try:
            return await apply_pack(store, PACKS[pack])
        finally:
            await store.close()
    print(json.dumps(asyncio.run(seed())))
    return 0


async def verify_audit(settings: Any) -> dict[str, Any]:
    """Recompute the audit log's hash chain (``gigvora audit verify``)."""
    from storage.moderation import ModerationRecords
    from storage.sqlite import SQLiteStore

    store = SQLiteStore(str(sqlite_path(settings.effective_store_url)))
    await store.open()
    try:
        return await ModerationRecords(store).audit_verify()
    finally:
        await store.close()
