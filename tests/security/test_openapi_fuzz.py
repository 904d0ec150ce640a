"""Schemathesis against the live OpenAPI document: every operation, generated valid and invalid
requests (as an admin and operator, so the guarded paths are reached) — no 5xx, no invalid input
accepted, responses as documented (``unsupported_method`` is left out: an unrouted method is
answered with the shared error shape and status 400 ``invalid``, not 405 with ``Allow``).
Every built-in plugin is on — moderation, rooms, and the Chatwoot bridge against the fake
Chatwoot (we cannot run Chatwoot) — so each plugin's documented routes are fuzzed too.
Runs the ``st`` CLI in a subprocess against a real ``gigvora serve``;
``GIGVORA_SCHEMATHESIS_EXAMPLES`` sets the examples per operation, ``GIGVORA_SCHEMATHESIS_SEED``
the seed (fixed by default so CI is repeatable; ``random`` explores anew each run)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import aiohttp

from tests.chatwoot.fake_chatwoot import FakeChatwoot
from tests.helpers import ServerProcess, mint

CONFIG = Path(__file__).with_name("schemathesis.toml")
EXAMPLES = os.environ.get("GIGVORA_SCHEMATHESIS_EXAMPLES", "50")
SEED = os.environ.get("GIGVORA_SCHEMATHESIS_SEED", "20261206")


async def test_openapi_operations_hold_their_contract(tmp_path: Path) -> None:
    fake = await FakeChatwoot().start()
    server = ServerProcess(
        tmp_path / "data", None, GIGVORA_MESSAGE_RATE_PER_S="0",
        GIGVORA_CHATWOOT_BASE_URL=fake.url, GIGVORA_CHATWOOT_API_TOKEN=fake.token,
        GIGVORA_CHATWOOT_ACCOUNT_ID=str(fake.account_id),
        GIGVORA_CHATWOOT_INBOX_ID=str(fake.inbox_id),
        GIGVORA_CHATWOOT_WEBHOOK_SECRET=fake.webhook_secret).start()
    try:
        await server.wait_ready()
        token = mint("root", roles="admin,operator")
        async with aiohttp.ClientSession() as http, \
                http.get(f"{server.url}/api/v1/openapi.json") as response:
            paths = (await response.json())["paths"]
        assert {"/api/v1/moderation/queue", "/api/v1/rooms/sessions", "/api/v1/support/analytics",
                "/integrations/chatwoot/webhook"} <= paths.keys()
        cli = Path(sys.executable).with_name("st")
        run = await asyncio.create_subprocess_exec(
            str(cli), "--config-file", str(CONFIG), "run", f"{server.url}/api/v1/openapi.json",
            "--checks", "all", "--exclude-checks", "unsupported_method",
            "--max-examples", EXAMPLES, "--workers", "2",
            *(["--seed", SEED] if SEED != "random" else []),
            "--generation-database", "none", "--header", f"Authorization: Bearer {token}",
            cwd=tmp_path, env={**os.environ, "NO_COLOR": "1", "COLUMNS": "120"},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        output, _ = await asyncio.wait_for(run.communicate(), 600)
        report = output.decode(errors="replace")
        (tmp_path / "schemathesis.log").write_text(report)
        assert run.returncode == 0, report[-6000:]
        assert "Tested: " in report and "generated" in report, report[-2000:]
    finally:
        server.stop()
        await fake.stop()
