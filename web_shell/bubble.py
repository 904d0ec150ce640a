"""Whether a page carries the support bubble.

The shell never imports the Chatwoot bridge: support is on when the hub serves
``support:send`` on ``/``, which the bridge registers only once it is configured and started.
Otherwise no page has a bubble (and the inbox page says support is off).
"""

from __future__ import annotations

from typing import Any

from realtime.identity import Principal
from realtime.plugins import PluginContext

#: The member event whose presence means the bridge is running.
SUPPORT_EVENT = ("/", "support:send")
#: Pages without the bubble: sign-in, errors and the staff consoles.
NO_BUBBLE = frozenset({"login.html", "error.html", "inbox.html", "moderation.html", "ops.html"})


def support_enabled(ctx: PluginContext) -> bool:
    """True while the hub serves the bridge's member events."""
    hub = ctx.extra.get("hub")
    return hub is not None and SUPPORT_EVENT in getattr(hub, "events", {})


def bubble_context(ctx: PluginContext, template: str, user: Principal | None
                   ) -> dict[str, Any] | None:
    """What ``base.html`` needs to show the bubble on this page, or None for no bubble."""
    if user is None or template in NO_BUBBLE or not support_enabled(ctx):
        return None
    return {"max_chars": ctx.settings.max_text_chars}
