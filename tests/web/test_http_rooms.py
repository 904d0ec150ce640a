"""The live room pages over plain HTTP: sign-in required, room names checked, the header link,
no inline code, names rendered as text."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from yarl import URL

from tests.helpers import LiveServer, make_settings, start_server
from tests.web.conftest import SHELL_PLUGINS
from tests.web.test_http import InlineCode, sign_in
from web_shell.security import CONTENT_SECURITY_POLICY


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A browser-like HTTP client: keeps cookies (also for 127.0.0.1), no auto-redirects."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


async def test_room_pages_need_a_signed_in_user(shell: LiveServer,
                                                http: aiohttp.ClientSession) -> None:
    for path in ("/rooms", "/rooms/lounge"):
        async with http.get(shell.url + path, allow_redirects=False) as response:
            assert response.status == 303
            location = URL(response.headers["Location"])
            assert location.path == "/login" and location.query["next"] == path


async def test_room_page_is_hardened_and_has_no_inline_code(
        shell: LiveServer, http: aiohttp.ClientSession) -> None:
    (await sign_in(http, shell.url, "member-ada")).release()
    async with http.get(shell.url + "/rooms/lounge") as response:
        assert response.status == 200
        assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        html = await response.text()
    parser = InlineCode()
    parser.feed(html)
    assert parser.found == [] and parser.scripts == 1
    assert '<script type="module" src="/static/js/room.js"></script>' in html
    assert 'data-room="lounge"' in html and ">Live rooms</a>" in html
    for name in ("room.js", "room-rtc.js", "room-view.js", "rooms-list.js"):
        async with http.get(shell.url + "/static/js/" + name) as response:
            assert response.status == 200, name
    async with http.get(shell.url + "/static/css/room.css") as response:
        assert response.status == 200


async def test_room_names_are_checked(shell: LiveServer, http: aiohttp.ClientSession) -> None:
    (await sign_in(http, shell.url, "member-ada")).release()
    async with http.get(shell.url + "/rooms/%3Cscript%3E") as response:
        assert response.status == 404
        assert "<script>" not in await response.text()
    async with http.get(shell.url + "/rooms?room=team.sync", allow_redirects=False) as response:
        assert response.status == 303 and response.headers["Location"] == "/rooms/team.sync"
    async with http.get(shell.url + "/rooms?room=%3Cb%3Ebad") as response:
        html = await response.text()
        assert response.status == 200 and "That is not a valid room name." in html
        assert "<b>bad" not in html and "&lt;b&gt;bad" in html


async def test_only_staff_pages_list_open_rooms(shell: LiveServer,
                                                http: aiohttp.ClientSession) -> None:
    (await sign_in(http, shell.url, "member-ada")).release()
    async with http.get(shell.url + "/rooms") as response:
        html = await response.text()
    assert "Join a room" in html and "Upcoming live sessions" in html
    assert "Open rooms" not in html
    http.cookie_jar.clear()
    (await sign_in(http, shell.url, "moderator-katherine")).release()
    async with http.get(shell.url + "/rooms") as response:
        html = await response.text()
    assert "Open rooms" in html and "/static/js/rooms-list.js" in html


async def test_room_pages_say_when_rooms_are_off(tmp_path: Path,
                                                 http: aiohttp.ClientSession) -> None:
    live = await start_server(make_settings(tmp_path, plugins_disable=["rooms"]),
                              plugins=SHELL_PLUGINS)
    try:
        (await sign_in(http, live.url, "member-ada")).release()
        for path in ("/rooms", "/rooms/lounge"):
            async with http.get(live.url + path) as response:
                html = await response.text()
            assert response.status == 200
            assert "Live rooms are switched off on this server." in html
            assert "<script" not in html, path
    finally:
        await live.stop()
