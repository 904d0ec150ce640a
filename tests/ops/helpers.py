"""Run the ``gigvora`` console script the way operators do: a child process with its own
environment (no ``GIGVORA_*`` leaking in from the test runner)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO, SECRET


def environment(data_dir: Path, **env: str) -> dict[str, str]:
    """The child's environment: the test's data dir and secret, plus ``env``."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GIGVORA_")}
    environ.update({"GIGVORA_DATA_DIR": str(data_dir), "GIGVORA_JWT_SECRET": SECRET, **env})
    return environ


def gigvora(*args: str, data_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``gigvora ARGS`` (blocking: only for tests without a server on their loop)."""
    return subprocess.run([sys.executable, "-m", "realtime.cli", *args], cwd=REPO,
                          env=environment(data_dir, **env), capture_output=True, text=True,
                          timeout=90)


async def agigvora(*args: str, data_dir: Path, **env: str) -> tuple[int, str, str]:
    """``gigvora ARGS`` without blocking the loop (a server in this process keeps serving)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "realtime.cli", *args, cwd=REPO, env=environment(data_dir, **env),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()
