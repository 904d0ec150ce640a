"""The web shell over plain HTTP: headers, no inline code, cookies, CSRF, the socket token,
escaping, the guidelines acknowledgement and the static files."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from yarl import URL

import web_shell.plugin
from realtime.identity import TokenService
from tests.helpers import SECRET, LiveServer, make_settings, mint, start_server
from tests.web.conftest import SHELL_PLUGINS
from web_shell.guidelines import ACKS_FILE, POLICY_VERSION
from web_shell.security import CONTENT_SECURITY_POLICY
from web_shell.sessions import SOCKET_TOKEN_TTL_S

HOSTILE = '<img src=x onerror=alert(1)>"\'&'


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A browser-like HTTP client: keeps cookies (also for 127.0.0.1), no auto-redirects."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


async def csrf_from(http: aiohttp.ClientSession, url: str) -> str:
    """The CSRF token embedded in the forms of the page at ``url``."""
    async with http.get(url) as response:
        found = re.search(r'name="csrf_token" value="([^"]+)"', await response.text())
    assert found, "no CSRF token on " + url
    return found.group(1)


async def sign_in(http: aiohttp.ClientSession, url: str, persona: str = "member-ada"
                  ) -> aiohttp.ClientResponse:
    """Sign in as a dev persona through the login form."""
    token = await csrf_from(http, url + "/login")
    return await http.post(url + "/login", data={"csrf_token": token, "persona": persona},
                           allow_redirects=False)


class InlineCode(HTMLParser):
    """Collects inline scripts, inline styles and event-handler attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if tag == "script":
            self.scripts += 1
            if "src" not in names:
                self.found.append("inline <script>")
        if tag == "style":
            self.found.append("<style> element")
        self.found += [f"{tag}[{name}]" for name in names
                       if name == "style" or name.startswith("on")]


async def test_pages_carry_csp_and_no_inline_code(shell: LiveServer,
                                                  http: aiohttp.ClientSession) -> None:
    for path in ("/login?next=/x", "/", "/guidelines", "/privacy"):
        if path == "/":
            (await sign_in(http, shell.url)).release()
        async with http.get(shell.url + path, allow_redirects=False) as response:
            assert response.status == 200, path
            assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert response.headers["Referrer-Policy"] == "same-origin"
            assert response.headers["Cache-Control"] == "no-store"
            html = await response.text()
        parser = InlineCode()
        parser.feed(html)
        assert parser.found == [], (path, parser.found)
        assert re.search(r"<title>[^<]+ · Gigvora Live</title>", html), path
        assert re.search(r'<meta name="description" content="[^"]{20,}">', html), path
        for landmark in ("<header", "<main", "<nav", 'class="skip-link" href="#main"'):
            assert landmark in html, (path, landmark)
    assert parser.scripts == 0  # /privacy needs no script at all


async def test_api_responses_keep_their_own_headers(shell: LiveServer,
                                                    http: aiohttp.ClientSession) -> None:
    async with http.get(shell.url + "/api/v1/channels", headers=shell.headers()) as response:
        assert response.status == 200
        assert "Content-Security-Policy" not in response.headers


async def test_signed_out_visitors_are_sent_to_login(shell: LiveServer,
                                                     http: aiohttp.ClientSession) -> None:
    async with http.get(shell.url + "/?channel=help", allow_redirects=False) as response:
        assert response.status == 303
        location = URL(response.headers["Location"])
        assert location.path == "/login" and location.query["next"] == "/?channel=help"
    expired = mint("ada", ttl=-60)
    http.cookie_jar.update_cookies({"gv_session": expired})
    async with http.get(shell.url + "/", allow_redirects=False) as response:
        assert response.status == 303 and response.headers["Location"] == "/login"
    http.cookie_jar.update_cookies({"gv_session": "not-a-jwt"})
    async with http.get(shell.url + "/", allow_redirects=False) as response:
        assert response.status == 303


async def test_persona_sign_in_sets_an_httponly_lax_cookie(shell: LiveServer,
                                                           http: aiohttp.ClientSession) -> None:
    response = await sign_in(http, shell.url)
    assert response.status == 303 and response.headers["Location"] == "/"
    cookie = response.cookies["gv_session"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/"
    assert not cookie["secure"]  # dev is plain HTTP; production below
    assert 0 < int(cookie["max-age"]) <= 8 * 3600
    who = TokenService(SECRET).verify(cookie.value)
    assert (who.sub, who.name, who.roles) == ("member-ada", "Ada Lovelace",
                                              frozenset({"member"}))
    async with http.get(shell.url + "/") as page:
        assert "Signed in as <strong>Ada Lovelace</strong>" in await page.text()


async def test_open_redirects_are_refused(shell: LiveServer,
                                          http: aiohttp.ClientSession) -> None:
    token = await csrf_from(http, shell.url + "/login")
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        data = {"csrf_token": token, "persona": "member-ada", "next": target}
        async with http.post(shell.url + "/login", data=data,
                             allow_redirects=False) as response:
            assert response.headers["Location"] == "/", target
        http.cookie_jar.clear(lambda cookie: cookie.key == "gv_session")


async def test_token_exchange_and_sign_out(shell: LiveServer,
                                           http: aiohttp.ClientSession) -> None:
    url = shell.url + "/session"
    async with http.post(url, json={"token": mint("bea", "Bea", "member,agent")}) as response:
        assert response.status == 200
        body = await response.json()
        assert body["user"] == {"id": "bea", "name": "Bea", "roles": ["agent", "member"]}
        cookie = response.cookies["gv_session"]
        assert cookie["httponly"] and cookie["samesite"] == "Lax"
    async with http.get(shell.url + "/", allow_redirects=False) as page:
        assert page.status == 200
    async with http.delete(url) as response:
        assert response.status == 204
    async with http.get(shell.url + "/", allow_redirects=False) as page:
        assert page.status == 303


@pytest.mark.parametrize(("body", "headers", "status"), [
    ({"token": mint("bea", ttl=-60)}, {}, 401),
    ({"token": TokenService("another-secret-" + "y" * 40).mint("bea", "Bea", ["member"])},
     {}, 401),
    ({"token": 5}, {}, 400),
    ({"token": mint("bea")}, {"Origin": "https://evil.example"}, 403),
    ({"token": mint("bea")}, {"Sec-Fetch-Site": "cross-site"}, 403),
])
async def test_token_exchange_refusals(shell: LiveServer, http: aiohttp.ClientSession,
                                       body: dict[str, Any], headers: dict[str, str],
                                       status: int) -> None:
    async with http.post(shell.url + "/session", json=body, headers=headers) as response:
        assert response.status == status
        assert "gv_session" not in response.cookies


async def test_token_exchange_needs_json(shell: LiveServer, http: aiohttp.ClientSession) -> None:
    body = json.dumps({"token": mint("bea")})
    async with http.post(shell.url + "/session", data=body,
                         headers={"Content-Type": "text/plain"}) as response:
        assert response.status == 400  # a cross-site form cannot send application/json


async def test_production_has_no_personas_and_secure_host_cookies(
        tmp_path: Path, http: aiohttp.ClientSession) -> None:
    live = await start_server(make_settings(tmp_path, env="production"),
                              plugins=SHELL_PLUGINS)
    try:
        async with http.get(live.url + "/login") as page:
            html = await page.text()
            nonce = page.cookies["__Host-gv_csrf"]
            assert nonce["secure"] and nonce["httponly"]
        assert "Sign in as" not in html and 'name="token"' in html
        token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)  # type: ignore
        # The client would not send Secure cookies over plain HTTP: send the nonce by hand.
        async with http.post(live.url + "/login", headers={
                "Cookie": f"__Host-gv_csrf={nonce.value}"},
                data={"csrf_token": token, "persona": "admin-margaret"},
                allow_redirects=False) as refused:
            assert refused.status == 401 and "persona does not exist" in await refused.text()
            assert "__Host-gv_session" not in refused.cookies
        async with http.post(live.url + "/session", json={"token": mint("bea")}) as response:
            cookie = response.cookies["__Host-gv_session"]
            assert cookie["secure"] and cookie["httponly"] and cookie["path"] == "/"
            assert not cookie["domain"]
    finally:
        await live.stop()


@pytest.mark.parametrize("path", ["/logout", "/guidelines/accept", "/login"])
async def test_forms_refuse_missing_or_foreign_csrf_tokens(shell: LiveServer,
                                                           http: aiohttp.ClientSession,
                                                           path: str) -> None:
    (await sign_in(http, shell.url)).release()
    valid = await csrf_from(http, shell.url + "/")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other:
        (await sign_in(other, shell.url, "member-alan")).release()
        foreign = await csrf_from(other, shell.url + "/")
    data = {"persona": "member-alan"}
    for token in (None, "", foreign, valid[:-2] + "xx"):
        form = data if token is None else {**data, "csrf_token": token}
        async with http.post(shell.url + path, data=form, allow_redirects=False) as response:
            assert response.status == 403, (path, token)
            assert "Form expired" in await response.text()
    async with http.post(shell.url + path, data={**data, "csrf_token": valid},
                         headers={"Origin": "https://evil.example"},
                         allow_redirects=False) as response:
        assert response.status == 403  # a valid token from a foreign origin is refused too
    async with http.get(shell.url + "/", allow_redirects=False) as page:
        assert page.status == 200  # still signed in, nothing accepted
        assert 'data-guidelines-accepted="false"' in await page.text()


async def test_sign_out_form(shell: LiveServer, http: aiohttp.ClientSession) -> None:
    (await sign_in(http, shell.url)).release()
    token = await csrf_from(http, shell.url + "/")
    async with http.post(shell.url + "/logout", data={"csrf_token": token},
                         allow_redirects=False) as response:
        assert response.status == 303 and response.headers["Location"] == "/login"
    async with http.get(shell.url + "/", allow_redirects=False) as page:
        assert page.status == 303


async def test_socket_token(shell: LiveServer, http: aiohttp.ClientSession) -> None:
    url = shell.url + "/session/socket-token"
    async with http.get(url) as response:
        assert response.status == 401
    (await sign_in(http, shell.url)).release()
    for foreign in ({"Origin": "https://evil.example"}, {"Origin": "null"},
                    {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"}):
        async with http.get(url, headers=foreign) as response:
            assert response.status == 403, foreign
    async with http.get(url, headers={"Origin": shell.url,
                                      "Sec-Fetch-Site": "same-origin"}) as response:
        assert response.status == 200
        assert response.headers["Cache-Control"] == "no-store"
        body = await response.json()
    who = TokenService(SECRET).verify(body["token"])
    assert (who.sub, who.name, who.roles) == ("member-ada", "Ada Lovelace",
                                              frozenset({"member"}))
    assert who.exp - time.time() <= SOCKET_TOKEN_TTL_S <= 600
    client = await shell.client(token=body["token"])
    assert (await client.ok("channel:join", {"channel": "general"}))["channel"] == "general"


async def test_hostile_names_are_escaped(shell: LiveServer, http: aiohttp.ClientSession) -> None:
    (await http.post(shell.url + "/session", json={"token": mint("eve", HOSTILE)})).release()
    admin = await shell.client("root", roles="admin")
    await admin.ok("dm:open", {"user_id": "eve", "name": HOSTILE})
    async with http.get(shell.url + "/") as page:
        html = await page.text()
    assert "<img" not in html and "onerror=alert(1)>" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;&#34;&#39;&amp;" in html


async def test_guidelines_acknowledgement_is_stored_and_versioned(
        shell: LiveServer, http: aiohttp.ClientSession, tmp_path: Path) -> None:
    acks = tmp_path / ACKS_FILE
    acks.write_text(json.dumps({"member-ada": {"version": "2000-01-01",
                                               "accepted_at": "2000-01-01T00:00:00+00:00"}}))
    (await sign_in(http, shell.url)).release()
    async with http.get(shell.url + "/") as page:
        html = await page.text()
    assert 'data-guidelines-accepted="false"' in html and "Accept guidelines" in html
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)  # type: ignore
    async with http.post(shell.url + "/guidelines/accept", data={"csrf_token": token},
                         headers={"Accept": "application/json"}) as response:
        assert response.status == 200
        record = await response.json()
    assert record["version"] == POLICY_VERSION
    stored = json.loads(acks.read_text())["member-ada"]
    assert stored == record and stored["accepted_at"].endswith("+00:00")
    async with http.get(shell.url + "/") as page:
        assert 'data-guidelines-accepted="true"' in await page.text()


async def test_static_files(shell: LiveServer, http: aiohttp.ClientSession) -> None:
    async with http.get(shell.url + "/static/js/community.js") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/javascript")
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    for path in ("/static/../plugin.py", "/static/%2e%2e/plugin.py", "/static/js/",
                 "/static/vendor/socket.io/LICENSE", "/static/nope.js"):
        async with http.get(shell.url + path) as response:
            assert response.status == 404, path


def test_vendored_socketio_client_is_pinned_and_unmodified() -> None:
    import hashlib

    root = Path(web_shell.plugin.__file__).parent
    pinned = json.loads((root / "package.json").read_text())["dependencies"]["socket.io-client"]
    vendor = root / "static" / "vendor" / "socket.io"
    name_version, digest_line = (vendor / "VERSION").read_text().splitlines()
    assert name_version == f"socket.io-client {pinned}" and pinned.startswith("4.8.")
    bundle = (vendor / "socket.io.esm.min.js").read_bytes()
    assert digest_line.split()[0] == hashlib.sha256(bundle).hexdigest()
    assert "MIT" in (vendor / "LICENSE").read_text() or "Permission is hereby granted" in (
        vendor / "LICENSE").read_text()
