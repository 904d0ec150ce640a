"""Drill: the store's disk fills up under write load. Writers get error answers (no hung ack, no
crash), every acked message survives, the server recovers once space is back, and the store is
intact afterwards (``PRAGMA integrity_check`` and ``gigvora db check``).

Two variants: the data directory on a tiny tmpfs (real ENOSPC; remounted larger to free space;
needs root, skipped otherwise), and the server under a small ``RLIMIT_FSIZE`` (writes fail with
EFBIG; raised with ``prlimit`` to free space)."""

from __future__ import annotations

import asyncio
import os
import resource
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.drills.common import Writer, assert_exactly_once, stored_messages
from tests.helpers import REPO, ServerProcess

SMALL = 2 * 1024 * 1024


class LimitedServer(ServerProcess):
    """``gigvora serve`` whose files may not grow beyond ``fsize`` bytes (None: no limit); only
    the soft limit is set, so the test may raise it again."""

    fsize: int | None = None

    def start(self) -> LimitedServer:
        """Start with the file size limit applied in the child."""
        limit = self.fsize

        def apply() -> None:
            if limit is not None:
                resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
        self.proc = subprocess.Popen([sys.executable, "-m", "realtime.cli", "serve"],
                                     env=self.env, cwd=REPO, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, preexec_fn=apply)
        return self


def _mount(path: Path, size: int, remount: bool = False) -> bool:
    options = f"{'remount,' if remount else ''}size={size}"
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                              capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


@pytest.fixture(params=["tmpfs", "fsize"])
def data_dir(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[Path, bool]]:
    """A data directory, and whether it is a tiny tmpfs (needs root to mount)."""
    path = tmp_path / "data"
    path.mkdir()
    mounted = request.param == "tmpfs" and os.geteuid() == 0 and _mount(path, SMALL)
    if request.param == "tmpfs" and not mounted:
        pytest.skip("mounting a tmpfs needs root; the RLIMIT_FSIZE variant runs instead")
    try:
        yield path, mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=10)


async def test_disk_full_answers_errors_and_keeps_the_store_intact(
        data_dir: tuple[Path, bool]) -> None:
    path, mounted = data_dir
    server = LimitedServer(path, None, GIGVORA_MESSAGE_RATE_PER_S="0",
                           GIGVORA_PLUGINS_DISABLE="moderation")
    server.fsize = None if mounted else SMALL
    server.start()
    writers = [Writer(server.url, f"w{n}", text="x" * 3900) for n in range(4)]
    try:
        await server.wait_ready()
        for writer in writers:
            await writer.client.connect()

        async def fill(writer: Writer) -> None:
            i = 0
            while sum(writer.refused.values()) < 5 and i < 5000:
                await writer.send_one(i)
                i += 1
        await asyncio.wait_for(asyncio.gather(*(fill(w) for w in writers)), 120)
        acked = [cid for w in writers for cid in w.acked]
        assert len(acked) > 50, "the store filled before the drill proved anything"
        assert all(w.hung == 0 for w in writers), "an ack hung while the disk was full"
        codes = {code for w in writers for code in w.refused}
        assert codes == {"unavailable"}, codes
        assert server.proc is not None and server.proc.poll() is None, server.output()

        if mounted:  # space is back
            assert _mount(path, 64 * SMALL, remount=True)
        else:
            resource.prlimit(server.proc.pid, resource.RLIMIT_FSIZE,
                             (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        after = writers[0]
        before = len(after.acked)
        for i in range(10_000, 10_005):
            await after.send_one(i)
        assert len(after.acked) == before + 5, after.refused
        acked = [cid for w in writers for cid in w.acked]
        assert_exactly_once(acked, await stored_messages(server.url))
    finally:
        for writer in writers:
            await writer.client.close()
        if server.proc is not None and server.proc.poll() is None:
            server.proc.terminate()
            server.proc.wait(30)

    db = path / "gigvora.db"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    checker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "realtime.cli", "db", "check", env=server.env, cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    report, _ = await asyncio.wait_for(checker.communicate(), 60)
    assert checker.returncode == 0, report.decode()
    restarted = ServerProcess(path, server.port, GIGVORA_PLUGINS_DISABLE="moderation").start()
    try:
        await restarted.wait_ready()
        assert_exactly_once(acked, await stored_messages(restarted.url))
    finally:
        restarted.stop()
