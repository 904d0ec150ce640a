"""Versioned SQL migrations: ``storage/migrations/NNNN_name.sql``, each applied in a transaction."""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass
from importlib import resources

from storage.base import now_iso


@dataclass(frozen=True, slots=True)
class Migration:
    """One migration file: version number, name, SQL text and its checksum."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """SHA-256 of the SQL text, recorded when applied."""
        return hashlib.sha256(self.sql.encode()).hexdigest()

    def statements(self) -> list[str]:
        """The SQL split into complete statements (``sqlite3.complete_statement``, so a
        trigger body or a literal holding ';' stays whole); comment-only lines are dropped."""
        lines = [line for line in self.sql.splitlines() if not line.lstrip().startswith("--")]
        found, pending = [], ""
        for part in "\n".join(lines).split(";"):
            pending += part + ";"
            if sqlite3.complete_statement(pending):
                if pending.strip(" \n\t;"):
                    found.append(pending.strip().removesuffix(";").strip())
                pending = ""
        if pending.strip(" \n\t;"):
            found.append(pending.strip().removesuffix(";").strip())
        return found


def available() -> list[Migration]:
    """Every migration shipped with the package, in version order."""
    found = []
    for entry in (resources.files("storage") / "migrations").iterdir():
        if entry.name.endswith(".sql"):
            version, _, rest = entry.name.partition("_")
            found.append(Migration(int(version), rest.removesuffix(".sql"), entry.read_text()))
    return sorted(found, key=lambda m: m.version)


def applied(conn: sqlite3.Connection) -> dict[int, str]:
    """Applied versions and their checksums."""
    conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                 "name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at TEXT NOT NULL)")
    return dict(conn.execute("SELECT version, checksum FROM schema_migrations").fetchall())


def migrate(conn: sqlite3.Connection, migrations: list[Migration] | None = None) -> list[int]:
    """Apply pending migrations (default: every shipped one), each in its own IMMEDIATE
    transaction — a failing statement rolls its whole migration back; return versions applied."""
    done = []
    for migration in available() if migrations is None else migrations:
        conn.execute("BEGIN IMMEDIATE")
        try:
            if migration.version in applied(conn):
                conn.execute("ROLLBACK")
                continue
            for statement in migration.statements():
                conn.execute(statement)
            conn.execute("INSERT INTO schema_migrations VALUES (?, ?, ?, ?)",
                         (migration.version, migration.name, migration.checksum, now_iso()))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        done.append(migration.version)
    return done


def check(conn: sqlite3.Connection) -> list[str]:
    """Drift between shipped and applied migrations (missing, unknown or edited)."""
    shipped = {m.version: m for m in available()}
    have = applied(conn)
    problems = [f"migration {v} ({m.name}) not applied" for v, m in shipped.items()
                if v not in have]
    problems += [f"migration {v} applied but unknown to this version" for v in have
                 if v not in shipped]
    problems += [f"migration {v} ({shipped[v].name}) checksum differs" for v, s in have.items()
                 if v in shipped and shipped[v].checksum != s]
    return problems
