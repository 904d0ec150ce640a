"""The MongoDB the tests use: ``GIGVORA_TEST_MONGO_URL`` when set (a real replica set), else
the fake server of ``tests/fakes/mongo`` on a free port, one per test session."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

REAL_MONGO_URL = os.environ.get("GIGVORA_TEST_MONGO_URL", "")


def with_database(url: str, name: str) -> str:
    """The MongoDB URL with its database path replaced (each test gets a fresh database)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


@pytest.fixture(scope="session")
def mongo_server_url() -> Iterator[str]:
    """The server's URL: the real one named by ``GIGVORA_TEST_MONGO_URL``, or the fake."""
    pytest.importorskip("pymongo", reason="pymongo not installed: pip install -e '.[mongodb]'")
    if REAL_MONGO_URL:
        yield REAL_MONGO_URL
        return
    pytest.importorskip("mongomock", reason="the fake MongoDB needs mongomock: "
                        "pip install -e '.[test]'")
    from tests.fakes.mongo import FakeMongoThread

    fake = FakeMongoThread().start()
    try:
        yield fake.url
    finally:
        fake.stop()
    commands = fake.server.commands
    assert commands is not None
    # a command the fake does not know, or a bug in it, fails the run instead of hiding
    broken = {name: commands.errors[name] for name in ("CommandNotFound", "InternalError")
              if commands.errors[name]}
    assert not broken, f"the fake MongoDB answered {broken}; commands seen: {commands.seen}"


def fresh_database(server_url: str) -> str:
    """The server's URL with a new, uniquely named database."""
    return with_database(server_url, f"gigvora_test_{uuid.uuid4().hex[:12]}")


async def drop_database(url: str) -> None:
    """Drop the database a ``fresh_database`` URL names."""
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(url)
    try:
        await client.drop_database(urlsplit(url).path.lstrip("/"))
    finally:
        await client.close()


@pytest.fixture
async def mongo_url(mongo_server_url: str) -> AsyncIterator[str]:
    """A fresh database on the test server, dropped afterwards."""
    url = fresh_database(mongo_server_url)
    yield url
    await drop_database(url)
