"""Schemathesis against ``GET /api/v1/gigs`` as the matching plugin documents it (the shared fuzz
run, tests/security/test_openapi_fuzz.py, boots the built-ins only): generated valid and invalid
queries on a real ``gigvora serve`` with ``GIGVORA_PLUGINS_ALLOW=matching`` — no 5xx, invalid
input refused, answers as documented."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import aiohttp

from tests.helpers import ServerProcess, mint

#: As tests/security/schemathesis.toml: a size limit refused with 413 ``too_large`` is a rejection.
CONFIG = """[checks.negative_data_rejection]
expected-statuses = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429]
"""
EXAMPLES = os.environ.get("GIGVORA_SCHEMATHESIS_EXAMPLES", "50")
SEED = os.environ.get("GIGVORA_SCHEMATHESIS_SEED", "20261206")


async def test_the_gigs_route_holds_its_documented_contract(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", None, GIGVORA_PLUGINS_ALLOW="matching",
                           GIGVORA_MODERATION_ML="off").start()
    try:
        await server.wait_ready()
        token = mint("dana")
        async with aiohttp.ClientSession() as http, http.get(
                f"{server.url}/api/v1/openapi.json") as response:
            assert "/api/v1/gigs" in (await response.json())["paths"]
        (tmp_path / "schemathesis.toml").write_text(CONFIG)
        cli = Path(sys.executable).with_name("st")
        run = await asyncio.create_subprocess_exec(
            str(cli), "--config-file", str(tmp_path / "schemathesis.toml"), "run",
            f"{server.url}/api/v1/openapi.json", "--include-path", "/api/v1/gigs",
            "--phases", "examples,coverage,fuzzing", "--checks", "all",
            "--exclude-checks", "unsupported_method", "--max-examples", EXAMPLES,
            *(["--seed", SEED] if SEED != "random" else []), "--generation-database", "none",
            "--header", f"Authorization: Bearer {token}", cwd=tmp_path,
            env={**os.environ, "NO_COLOR": "1", "COLUMNS": "120"},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        output, _ = await asyncio.wait_for(run.communicate(), 300)
        report = output.decode(errors="replace")
        assert run.returncode == 0, report[-6000:]
        assert "Tested: 1" in report and " passed" in report, report[-2000:]
    finally:
        server.stop()
