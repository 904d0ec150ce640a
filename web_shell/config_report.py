"""The configuration report of the operator console: ``gigvora config lint`` on the server's
environment plus the running settings, with every secret masked.

``realtime.config.masked_settings`` masks the ``SecretStr`` fields; this module also hides the
passwords of URLs (``redis://:pw@host``, ``mongodb://user:pw@host``) and scrubs any secret value
that would otherwise appear verbatim in a lint problem or a setting.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import SecretStr

from realtime.config import PREFIX, Settings, lint_environment, masked_settings

MASK = "**********"
#: Environment variables whose values are secrets even when Settings does not mark them so.
SECRET_WORDS = ("SECRET", "TOKEN", "PASSWORD", "API_KEY", "HMAC", "PRIVATE")
#: Secrets shorter than this are not scrubbed from text (too likely to match innocently).
MIN_SCRUB_CHARS = 6


def mask_url(value: str) -> str:
    """``value`` with the password of a URL replaced by the mask (other strings unchanged)."""
    try:
        parts = urlsplit(value)
        password = parts.password
    except ValueError:
        return value
    if not parts.scheme or not parts.netloc or password is None:
        return value
    host = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{host}"))


def secret_values(settings: Settings, environ: Mapping[str, str]) -> list[str]:
    """Every secret known to the server: SecretStr settings and secret-looking variables."""
    found = [value.get_secret_value() for name in Settings.model_fields
             if isinstance(value := getattr(settings, name), SecretStr)]
    found += [value for name, value in environ.items()
              if name.startswith(PREFIX) and any(word in name for word in SECRET_WORDS)]
    for value in (settings.store_url, settings.redis_url, *environ.values()):
        try:
            password = urlsplit(value).password if value else None
        except ValueError:
            password = None
        if password:
            found.append(password)
    # longest first, so a secret containing another is scrubbed whole
    return sorted({s for s in found if len(s) >= MIN_SCRUB_CHARS}, key=len, reverse=True)


def scrub(text: str, secrets: list[str]) -> str:
    """``text`` with every known secret replaced by the mask."""
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text


def _shown(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        return scrub(mask_url(value), secrets)
    if isinstance(value, list):
        return [_shown(item, secrets) for item in value]
    return value


def config_report(settings: Settings, environ: Mapping[str, str] | None = None
                  ) -> dict[str, Any]:
    """The lint result of ``environ`` (the process environment by default) and the running
    ``settings``, secrets masked."""
    environ = os.environ if environ is None else environ
    _, problems = lint_environment(environ)
    secrets = secret_values(settings, environ)
    shown = {name: _shown(value, secrets) for name, value in masked_settings(settings).items()}
    return {"ok": not problems, "problems": [scrub(p, secrets) for p in problems],
            "env": settings.env, "settings": shown,
            "checked_at": datetime.now(UTC).isoformat(timespec="seconds")}
