"""``gigvora db migrate`` and ``gigvora db check`` on a MongoDB store (the fake server of
tests/fakes/mongo, or a real one with ``GIGVORA_TEST_MONGO_URL``): migrate creates the indexes
the snapshot records, check reports each missing or unexpected index and exits 1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.mongo_fixtures import fresh_database
from tests.ops.helpers import gigvora

pytest.importorskip("pymongo", reason="pymongo not installed: pip install -e '.[mongodb]'")


@pytest.fixture
def store_url(mongo_server_url: str) -> Iterator[str]:
    from pymongo import MongoClient

    url = fresh_database(mongo_server_url)
    yield url
    client: MongoClient[dict[str, object]] = MongoClient(url)
    try:
        client.drop_database(client.get_default_database())
    finally:
        client.close()


def test_migrate_then_check_and_drift(store_url: str, tmp_path: Path) -> None:
    from pymongo import MongoClient

    before = gigvora("db", "check", data_dir=tmp_path, GIGVORA_STORE_URL=store_url)
    assert before.returncode == 1 and "index messages:channel_seq missing" in before.stdout
    migrated = gigvora("db", "migrate", data_dir=tmp_path, GIGVORA_STORE_URL=store_url)
    assert migrated.returncode == 0, migrated.stderr
    assert '"indexes ensured"' in migrated.stdout
    again = gigvora("db", "migrate", data_dir=tmp_path, GIGVORA_STORE_URL=store_url)
    assert again.returncode == 0, again.stderr  # idempotent
    checked = gigvora("db", "check", data_dir=tmp_path, GIGVORA_STORE_URL=store_url)
    assert (checked.returncode, checked.stdout.strip()) == (0, "schema ok"), checked.stderr
    client: MongoClient[dict[str, object]] = MongoClient(store_url)
    try:
        messages = client.get_default_database()["messages"]
        messages.drop_index("channel_thread_seq")
        messages.create_index([("author_id", 1)], name="by_author")
    finally:
        client.close()
    drift = gigvora("db", "check", data_dir=tmp_path, GIGVORA_STORE_URL=store_url)
    assert drift.returncode == 1
    assert drift.stdout.splitlines() == [
        "index messages:by_author unexpected (not in the snapshot)",
        "index messages:channel_thread_seq missing",
        "schema drift: 2 problem(s)"]
