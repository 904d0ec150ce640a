"""Support in the web shell over plain HTTP: the inbox's role check and header link, the
bubble only while the Chatwoot bridge runs, and no inline code on either."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.helpers import LiveServer
from tests.web.support_stack import SupportStack
from tests.web.test_http import InlineCode, sign_in
from web_shell.security import CONTENT_SECURITY_POLICY

PERSONAS = {"member": "member-ada", "agent": "agent-grace", "moderator": "moderator-katherine",
            "admin": "admin-margaret", "operator": "operator-radia"}
INBOX_ROLES = {"agent", "admin"}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A browser-like HTTP client: keeps cookies (also for 127.0.0.1), no auto-redirects."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


async def page(http: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    """Status and HTML of a page (headers checked: the shell's CSP)."""
    async with http.get(url, allow_redirects=False) as response:
        assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        return response.status, await response.text()


def no_inline_code(html: str) -> None:
    """No inline script, style or event handler in ``html``."""
    parser = InlineCode()
    parser.feed(html)
    assert parser.found == []


@pytest.mark.parametrize("role", sorted(PERSONAS))
async def test_inbox_opens_only_to_agents_and_admins(support: SupportStack,
                                                     http: aiohttp.ClientSession,
                                                     role: str) -> None:
    (await sign_in(http, support.url, PERSONAS[role])).release()
    status, html = await page(http, support.url + "/inbox")
    if role in INBOX_ROLES:
        assert status == 200 and "/static/js/inbox.js" in html
        assert 'id="support"' not in html  # no bubble on the staff page
        no_inline_code(html)
    else:
        assert status == 403 and "<h1>Not allowed</h1>" in html and "<script" not in html
    _, community = await page(http, support.url + "/")
    nav = community.split('aria-label="Main"')[1].split("</nav>")[0]
    assert ('href="/inbox"' in nav) == (role in INBOX_ROLES)


async def test_signed_out_visitors_go_to_login(support: SupportStack,
                                              http: aiohttp.ClientSession) -> None:
    async with http.get(support.url + "/inbox", allow_redirects=False) as response:
        assert response.status == 303
        assert response.headers["Location"] == "/login?next=/inbox"


async def test_member_pages_carry_the_bubble_when_the_bridge_runs(
        support: SupportStack, http: aiohttp.ClientSession) -> None:
    _, login = await page(http, support.url + "/login")
    assert 'id="support"' not in login  # signed out: no bubble
    (await sign_in(http, support.url, "member-ada")).release()
    for path in ("/", "/guidelines", "/privacy"):
        status, html = await page(http, support.url + path)
        assert status == 200
        assert 'id="support"' in html and "/static/js/support-bubble.js" in html, path
        assert 'role="dialog"' in html and 'aria-labelledby="support-title"' in html
        no_inline_code(html)


async def test_without_the_bridge_there_is_no_bubble(shell: LiveServer,
                                                     http: aiohttp.ClientSession) -> None:
    (await sign_in(http, shell.url, "agent-grace")).release()
    for path in ("/", "/guidelines", "/privacy"):
        status, html = await page(http, shell.url + path)
        assert status == 200 and 'id="support"' not in html and "support-bubble" not in html
    status, html = await page(http, shell.url + "/inbox")
    assert status == 200 and "Support is not configured" in html
    assert "inbox.js" not in html
