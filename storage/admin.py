"""``gigvora db migrate|check|backup|restore`` and ``gigvora seed`` on the embedded store.

A running server holds an exclusive ``flock`` on ``<db>.lock``; ``restore`` refuses while it is
held, and never overwrites an existing store without ``--force``.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from storage import schema
from storage.sqlite import connect, release_lock, take_lock

TABLES = ("channels", "messages", "read_state")


def sqlite_path(url: str) -> Path:
    """The file of a ``sqlite:///`` URL; other backends have no file to manage here."""
    if not url.startswith("sqlite:///"):
        raise SystemExit("this command manages the embedded SQLite store only "
                         "(MongoDB: see docs/operations.md)")
    return Path(url.removeprefix("sqlite:///"))


@contextmanager
def exclusive_lock(db: Path) -> Iterator[None]:
    """Exclusive use of the store: refused while any server holds its shared lock."""
    fd = take_lock(db, shared=False)
    if fd is None:
        raise SystemExit(f"{db} is in use by a running server; stop it first")
    try:
        yield
    finally:
        release_lock(fd)


def counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Row counts of every table."""
    return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES}


def digest(conn: sqlite3.Connection) -> str:
    """A checksum over every row of every table, in key order (for verifying copies)."""
    h = hashlib.sha256()
    for table in TABLES:
        for row in conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2"):
            h.update(repr(row).encode())
    return h.hexdigest()


def backup(db: Path, target: Path) -> dict[str, Any]:
    """An online, consistent copy (SQLite's backup API), verified by row counts and checksum."""
    if target.exists():
        raise SystemExit(f"{target} exists; choose a new path")
    source = connect(str(db), readonly=True)
    dest = sqlite3.connect(str(target))
    try:
        source.backup(dest)
        source_counts, copy_counts = counts(source), counts(dest)
        check = dest.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        source.close()
        dest.close()
    if check != "ok":
        raise SystemExit(f"backup failed its integrity check: {check}")
    return {"backup": str(target), "rows": copy_counts, "source_rows_at_end": source_counts}


def restore(db: Path, source: Path, force: bool) -> dict[str, Any]:
    """Replace the store with a backup (only with ``force`` if one exists; never while served)."""
    if not source.exists():
        raise SystemExit(f"no backup at {source}")
    if db.exists() and not force:
        raise SystemExit(f"{db} exists; pass --force to overwrite it")
    with exclusive_lock(db):
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        try:
            if src.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                raise SystemExit(f"{source} is corrupt")
            expected = (counts(src), digest(src))
            dest = sqlite3.connect(str(db))
            src.backup(dest)
            restored = (counts(dest), digest(dest))
            dest.close()
        finally:
            src.close()
    if restored != expected:
        raise SystemExit("restored copy differs from the backup")
    return {"restored": str(db), "rows": restored[0], "checksum": restored[1]}


def run_db_command(settings: Any, command: str, path: str | None, force: bool = False) -> int:
    """Dispatch ``gigvora db …``; print what happened; exit code 0 on success."""
    db = sqlite_path(settings.effective_store_url)
    if command == "migrate":
        conn = connect(str(db))
        print({"applied": schema.migrate(conn)})
        conn.close()
        return 0
    if command == "check":
        conn = connect(str(db), readonly=True)
        problems = schema.check(conn)
        conn.close()
        for problem in problems:
            print(problem)
        print("schema ok" if not problems else f"{len(problems)} problem(s)")
        return 1 if problems else 0
    assert path is not None
    result = backup(db, Path(path)) if command == "backup" else restore(db, Path(path), force)
    print(result)
    return 0


def run_seed(settings: Any) -> int:
    """Create the seed channels (idempotent)."""
    from storage.base import open_store
    from storage.seed import seed_channels

    async def seed() -> list[str]:
        store = open_store(settings.effective_store_url)
        await store.open()
        try:
            return await seed_channels(store)
        finally:
            await store.close()
    print({"seeded": asyncio.run(seed())})
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
