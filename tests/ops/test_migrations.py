"""Migrations are versioned (recorded with their checksum) and transactional (all or nothing)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from storage import schema
from tests.ops.helpers import gigvora


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_a_failing_migration_leaves_nothing_behind() -> None:
    good = schema.Migration(1, "good", "CREATE TABLE a (id INTEGER PRIMARY KEY);")
    bad = schema.Migration(2, "bad", "CREATE TABLE b (id INTEGER PRIMARY KEY);\n"
                                     "INSERT INTO missing VALUES (1);")
    with closing(sqlite3.connect(":memory:", isolation_level=None)) as conn:
        with pytest.raises(sqlite3.OperationalError, match="missing"):
            schema.migrate(conn, [good, bad])
        assert "a" in _tables(conn) and "b" not in _tables(conn)
        assert schema.applied(conn) == {1: good.checksum}
        assert schema.migrate(conn, [good]) == []  # applied once, by version


def test_statements_keep_trigger_bodies_and_literals_whole() -> None:
    sql = ("-- a comment; with a semicolon\nCREATE TABLE a (x TEXT DEFAULT 'a;b');\n"
           "CREATE TRIGGER t AFTER INSERT ON a BEGIN UPDATE a SET x = 'y'; END;\n")
    assert schema.Migration(3, "t", sql).statements() == [
        "CREATE TABLE a (x TEXT DEFAULT 'a;b')",
        "CREATE TRIGGER t AFTER INSERT ON a BEGIN UPDATE a SET x = 'y'; END"]


def test_an_edited_migration_is_reported(tmp_path: Path) -> None:
    assert gigvora("db", "migrate", data_dir=tmp_path).returncode == 0
    with closing(sqlite3.connect(tmp_path / "gigvora.db")) as conn, conn:
        conn.execute("UPDATE schema_migrations SET checksum = 'x' WHERE version = 1")
    check = gigvora("db", "check", data_dir=tmp_path)
    assert check.returncode == 1 and "migration 1 (init) checksum differs" in check.stdout
