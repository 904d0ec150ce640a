"""The staff consoles over plain HTTP: who may open them, the header links, their security
headers, no inline code, and the operator's configuration report with secrets masked."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from yarl import URL

from realtime.config import load_settings
from tests.helpers import SECRET, LiveServer, mint
from tests.web.test_http import InlineCode, sign_in
from web_shell.config_report import MASK, config_report, mask_url
from web_shell.security import CONTENT_SECURITY_POLICY

PERSONAS = {"member": "member-ada", "agent": "agent-grace", "moderator": "moderator-katherine",
            "admin": "admin-margaret", "operator": "operator-radia"}
#: Who may open each console (every other persona gets the 403 page).
OPENS = {"/moderation": {"moderator", "admin"}, "/ops": {"operator", "admin"}}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A browser-like HTTP client: keeps cookies (also for 127.0.0.1), no auto-redirects."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


@pytest.mark.parametrize("role", sorted(PERSONAS))
async def test_consoles_open_only_to_their_roles(shell: LiveServer, http: aiohttp.ClientSession,
                                                 role: str) -> None:
    (await sign_in(http, shell.url, PERSONAS[role])).release()
    for path, roles in OPENS.items():
        async with http.get(shell.url + path, allow_redirects=False) as response:
            html = await response.text()
            assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY, path
            assert response.headers["Cache-Control"] == "no-store"
            if role in roles:
                assert response.status == 200, (path, role)
                assert "need the operator role" not in html  # admins see everything too
            else:
                assert response.status == 403, (path, role)
                assert "<h1>Not allowed</h1>" in html and "<script" not in html
    async with http.get(shell.url + "/") as page:  # the header links follow the same roles
        nav = (await page.text()).split('aria-label="Main"')[1].split("</nav>")[0]
    assert ('href="/moderation"' in nav) == (role in OPENS["/moderation"]), role
    assert ('href="/ops"' in nav) == (role in OPENS["/ops"]), role
    assert ">Moderation</a>" in nav or role not in OPENS["/moderation"]
    assert ">Operations</a>" in nav or role not in OPENS["/ops"]


async def test_consoles_send_signed_out_visitors_to_login(shell: LiveServer,
                                                          http: aiohttp.ClientSession) -> None:
    for path in OPENS:
        async with http.get(shell.url + path, allow_redirects=False) as response:
            assert response.status == 303
            location = URL(response.headers["Location"])
            assert location.path == "/login" and location.query["next"] == path


@pytest.mark.parametrize(("persona", "path", "script"), [
    ("moderator-katherine", "/moderation", "/static/js/moderation.js"),
    ("operator-radia", "/ops", "/static/js/ops.js"),
])
async def test_console_pages_have_no_inline_code(shell: LiveServer, http: aiohttp.ClientSession,
                                                 persona: str, path: str, script: str) -> None:
    (await sign_in(http, shell.url, persona)).release()
    async with http.get(shell.url + path) as response:
        assert response.status == 200
        assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        html = await response.text()
    parser = InlineCode()
    parser.feed(html)
    assert parser.found == [] and parser.scripts == 1
    assert f'<script type="module" src="{script}"></script>' in html
    assert 'aria-current="page"' in html.split('aria-label="Main"')[1].split("</nav>")[0]
    async with http.get(shell.url + script) as response:
        assert response.status == 200  # the module and what it imports are served
        imports = [line.split('"./')[1].split('"')[0] for line in (await response.text()
                   ).splitlines() if '"./' in line and ("import" in line or "from" in line)]
    for name in imports:
        async with http.get(shell.url + "/static/js/" + name) as response:
            assert response.status == 200, name


async def test_ops_config_masks_every_secret(shell: LiveServer, http: aiohttp.ClientSession,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    env_secret = "env-secret-" + "z" * 40
    monkeypatch.setenv("GIGVORA_JWT_SECRET", env_secret)
    monkeypatch.setenv("GIGVORA_NOT_A_SETTING", "1")
    monkeypatch.setenv("GIGVORA_PORT", "not-a-port")
    (await sign_in(http, shell.url, "operator-radia")).release()
    async with http.get(shell.url + "/ops/config") as response:
        assert response.status == 200
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["Content-Type"].startswith("application/json")
        raw = await response.text()
    assert SECRET not in raw and env_secret not in raw  # the JWT secret never appears
    report = json.loads(raw)
    assert report["settings"]["GIGVORA_JWT_SECRET"] == MASK
    assert report["settings"]["GIGVORA_MODERATION_ML"] == "off"
    assert report["ok"] is False
    assert "GIGVORA_NOT_A_SETTING: unknown setting" in report["problems"]
    assert any(p.startswith("GIGVORA_PORT:") for p in report["problems"])
    headers = {"Authorization": f"Bearer {mint('radia', roles='operator')}"}
    async with http.get(shell.url + "/ops/config", headers=headers) as response:
        assert response.status == 200  # scripts may use a bearer token instead of the cookie
        assert SECRET not in await response.text()


async def test_ops_config_refusals(shell: LiveServer, http: aiohttp.ClientSession) -> None:
    url = shell.url + "/ops/config"
    async with http.get(url) as response:
        assert response.status == 401
    for roles in ("member", "moderator"):
        headers = {"Authorization": f"Bearer {mint('someone', roles=roles)}"}
        async with http.get(url, headers=headers) as response:
            assert response.status == 403, roles
    (await sign_in(http, shell.url, "moderator-katherine")).release()
    async with http.get(url) as response:
        assert response.status == 403
    (await sign_in(http, shell.url, "operator-radia")).release()
    async with http.get(url, headers={"Origin": "https://evil.example"}) as response:
        assert response.status == 403  # the cookie is not enough from another site
        assert SECRET not in await response.text()


def test_config_report_masks_url_passwords_and_scrubs_secrets(tmp_path: Path) -> None:
    settings = load_settings(environ={}, data_dir=tmp_path, jwt_secret=SECRET,
                             redis_url="redis://:hunter2-redis@cache:6379/0",
                             store_url="mongodb://app:s3cret-mongo@db/gigvora",
                             chatwoot_api_token="chatwoot-token-123")
    environ = {"GIGVORA_REDIS_URL": "redis://:hunter2-redis@cache:6379/0",
               "GIGVORA_MAX_TEXT_CHARS": f"oops {SECRET}"}
    report = config_report(settings, environ)
    raw = json.dumps(report)
    for secret in (SECRET, "hunter2-redis", "s3cret-mongo", "chatwoot-token-123"):
        assert secret not in raw, secret
    assert report["settings"]["GIGVORA_REDIS_URL"] == f"redis://:{MASK}@cache:6379/0"
    assert report["settings"]["GIGVORA_STORE_URL"] == f"mongodb://app:{MASK}@db/gigvora"
    assert report["settings"]["GIGVORA_CHATWOOT_API_TOKEN"] == MASK
    assert any(p.startswith("GIGVORA_MAX_TEXT_CHARS:") for p in report["problems"])
    assert mask_url("http://127.0.0.1:3000/x") == "http://127.0.0.1:3000/x"
    assert mask_url("not a url") == "not a url"


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node")
def test_prometheus_reader_of_the_ops_page() -> None:
    module = Path(__file__).resolve().parents[2] / "web_shell" / "static" / "js" / "prometheus.js"
    script = f"""
import {{ parseMetrics, sum, histogramQuantile, has }} from "{module.as_uri()}";
const s = parseMetrics(`# HELP gigvora_connections open
gigvora_connections{{namespace="/"}} 2.0
gigvora_connections{{namespace="/moderation"}} 1.0
gigvora_events_total{{event="a\\\\"b",outcome="ok"}} 5.0
gigvora_events_total{{event="x",outcome="forbidden"}} 2.0
gigvora_store_commit_seconds_bucket{{le="0.001"}} 2.0
gigvora_store_commit_seconds_bucket{{le="0.002"}} 4.0
gigvora_store_commit_seconds_bucket{{le="+Inf"}} 4.0
`);
console.log(JSON.stringify([sum(s, "gigvora_connections"),
  sum(s, "gigvora_events_total", (l) => l.outcome !== "ok"), s[2].labels.event,
  histogramQuantile(s, "gigvora_store_commit_seconds", 0.5),
  histogramQuantile(s, "gigvora_nothing", 0.5), has(s, "gigvora_bus_pending")]));
"""
    done = subprocess.run(["node", "--no-warnings", "--input-type=module", "-e", script],
                          capture_output=True, text=True, timeout=30, check=True)
    assert json.loads(done.stdout) == [3, 2, 'a"b', 0.001, None, False]


@pytest.mark.parametrize("roles", ["operator", "admin"])
async def test_operators_and_admins_read_readiness_detail_and_metrics(
        shell: LiveServer, http: aiohttp.ClientSession, roles: str) -> None:
    headers = {"Authorization": f"Bearer {mint('staff', roles=roles)}"}
    async with http.get(shell.url + "/readyz", headers=headers) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("application/health+json")
        assert "moderation:pipeline" in (await response.json(content_type=None))["checks"]
    async with http.get(shell.url + "/metrics", headers=headers) as response:
        assert response.status == 200 and "gigvora_connections" in await response.text()


@pytest.mark.parametrize("roles", ["member", "agent", "moderator"])
async def test_other_roles_get_readiness_status_only_and_no_metrics(
        shell: LiveServer, http: aiohttp.ClientSession, roles: str) -> None:
    headers = {"Authorization": f"Bearer {mint('someone', roles=roles)}"}
    async with http.get(shell.url + "/readyz", headers=headers) as response:
        assert await response.json() == {"status": "pass"}
    async with http.get(shell.url + "/metrics", headers=headers) as response:
        assert response.status == 403
        assert (await response.json())["error"]["message"] == (
            "this endpoint needs the admin or operator role")
