"""``gigvora db snapshot`` / ``gigvora db check``: the committed snapshot matches the shipped
migrations, and drift in a live store is reported line by line with a non-zero exit."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from storage import snapshot
from tests.ops.helpers import gigvora


def test_committed_snapshot_matches_the_shipped_migrations() -> None:
    committed, problems = snapshot.load()
    assert not problems, "\n".join(problems)
    fresh = snapshot.build()
    assert committed == fresh, (
        "a migration changed the schema but storage/schema_snapshot.json was not regenerated: "
        "run `gigvora db snapshot` and commit storage/schema_snapshot.json")


def test_a_stale_or_edited_snapshot_is_reported(tmp_path: Path) -> None:
    made = snapshot.build()
    stale = {**made, "migrations": made["migrations"][:-1]}
    stale["checksum"] = snapshot.checksum(stale)
    (tmp_path / "stale.json").write_text(snapshot.render(stale))
    _, problems = snapshot.load(tmp_path / "stale.json")
    assert len(problems) == 1 and "stale" in problems[0] and "gigvora db snapshot" in problems[0]
    edited = json.loads(snapshot.render(made))
    del edited["sqlite"]["tables"]["messages"]["indexes"]["messages_thread"]
    (tmp_path / "edited.json").write_text(json.dumps(edited))
    _, problems = snapshot.load(tmp_path / "edited.json")
    assert problems == [f"schema snapshot checksum mismatch (the file was edited): "
                        f"{snapshot.REGENERATE}"]


def test_check_passes_on_a_fresh_store_and_reports_drift(tmp_path: Path) -> None:
    missing = gigvora("db", "check", data_dir=tmp_path)
    assert missing.returncode == 1 and "gigvora db migrate" in missing.stdout
    assert gigvora("db", "migrate", data_dir=tmp_path).returncode == 0
    ok = gigvora("db", "check", data_dir=tmp_path)
    assert ok.returncode == 0 and ok.stdout.strip() == "schema ok", ok.stdout + ok.stderr
    with sqlite3.connect(tmp_path / "gigvora.db") as conn:  # an operator's hand-made changes
        conn.execute("DROP INDEX messages_thread")
        conn.execute("ALTER TABLE channels ADD COLUMN topic TEXT")
        conn.execute("CREATE TABLE scratch (id INTEGER PRIMARY KEY)")
    drift = gigvora("db", "check", data_dir=tmp_path)
    assert drift.returncode == 1
    lines = drift.stdout.strip().splitlines()
    assert "index messages:messages_thread missing" in lines
    assert "column channels.topic unexpected (not in the snapshot)" in lines
    assert "table scratch unexpected (not in the snapshot)" in lines
    assert lines[-1] == "schema drift: 3 problem(s)"


def test_snapshot_command_writes_what_build_makes(tmp_path: Path) -> None:
    out = tmp_path / "snap.json"
    done = gigvora("db", "snapshot", "--output", str(out), data_dir=tmp_path)
    assert done.returncode == 0, done.stderr
    assert out.read_text() == snapshot.render(snapshot.build())
    assert json.loads(done.stdout)["checksum"] == snapshot.build()["checksum"]


def test_mongo_index_drift_is_reported() -> None:
    pytest.importorskip("pymongo")
    expected = snapshot.expected_mongo()
    # what list_indexes answers for a store migrated by this version, minus one, one changed
    live: dict[str, Any] = {"collections": {}}
    for name, coll in expected["collections"].items():
        docs = [{"v": 2, "key": {"_id": 1}, "name": "_id_"}]
        for index_name, index in coll["indexes"].items():
            doc = {"v": 2, "key": dict(index["key"]), "name": index_name,
                   **({"unique": True} if index["unique"] else {})}
            if "partialFilterExpression" in index:
                doc["partialFilterExpression"] = index["partialFilterExpression"]
            docs.append(doc)
        live["collections"][name] = {"indexes": {d["name"]: snapshot.normalize_mongo_index(d)
                                                 for d in docs}}
    assert snapshot.diff_mongo(expected, live) == []
    indexes = live["collections"]["messages"]["indexes"]
    del indexes["channel_thread_seq"]
    indexes["channel_seq"] = {**indexes["channel_seq"], "unique": False}
    problems = snapshot.diff_mongo(expected, live)
    assert "index messages:channel_thread_seq missing" in problems
    assert any(p.startswith("index messages:channel_seq differs") for p in problems)
