"""What the consoles read: the moderators' queue with everything needed to decide (the reported
message, names, an appeal's subject) and a member's own holds, sanctions and appeals.

The store keeps no user directory, so names come from the desk's cache of recent senders and,
for users it has not seen since the start, from the name they last posted (or were held) under.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from realtime.errors import AppError

if TYPE_CHECKING:
    from moderation.desk import ModerationDesk

#: How long a rejected hold stays in the member's view (``GET /api/v1/moderation/mine``).
REJECTED_SHOWN_FOR = timedelta(days=1)
#: The fields of a hold and a sanction its member sees (not who decided, nor the scores).
MEMBER_HOLD_FIELDS = ("id", "channel_id", "text", "thread_id", "client_id", "labels", "status",
                      "created_at", "decided_at", "decision_reason")
MEMBER_SANCTION_FIELDS = ("id", "user_id", "kind", "channel_id", "reason", "created_at",
                          "expires_at")


async def names(desk: ModerationDesk, user_ids: set[str]) -> dict[str, str]:
    """Display names of users (the id stands in for a user never seen)."""
    found = {u: desk.names[u] for u in user_ids if u in desk.names}
    missing = sorted(user_ids - found.keys())
    found.update(await desk.records.names(missing))
    return {u: found.get(u, u) for u in user_ids}


async def queue(desk: ModerationDesk) -> dict[str, Any]:
    """Pending holds, open reports (with the reported message and the reporter's name) and open
    appeals (with the appellant's name and the sanction or hold they are about)."""
    records = desk.records
    holds = await records.holds("pending")
    reports = await records.reports("open")
    appeals = await records.appeals("open")
    known = await names(desk, {r["reporter_id"] for r in reports}
                        | {a["user_id"] for a in appeals})
    return {"holds": holds,
            "reports": [await report_view(desk, r, known[r["reporter_id"]]) for r in reports],
            "appeals": [await appeal_view(desk, a, known[a["user_id"]]) for a in appeals]}


async def report_view(desk: ModerationDesk, report: dict[str, Any], reporter_name: str
                      ) -> dict[str, Any]:
    """A report as moderators see it: ``message`` is the reported message (null once erased
    from the store), ``reporter_name`` who reported it."""
    message = await desk.ctx.extra["chat"].store.get_message(report["message_id"])
    return {**report, "reporter_name": reporter_name,
            "message": message.public() if message is not None else None}


async def appeal_view(desk: ModerationDesk, appeal: dict[str, Any], user_name: str
                      ) -> dict[str, Any]:
    """An appeal as moderators see it: ``user_name`` of the appellant and ``subject``, the
    sanction or hold it is about (null if that record is gone)."""
    try:
        subject: dict[str, Any] | None = await desk.subject(appeal["subject_type"],
                                                            appeal["subject_id"])
    except AppError:
        subject = None
    return {**appeal, "user_name": user_name, "subject": subject}


async def mine(desk: ModerationDesk, user_id: str) -> dict[str, Any]:
    """A member's own moderation state: held messages (pending, or rejected within a day),
    active mutes and bans, and open appeals."""
    since = (datetime.now(UTC) - REJECTED_SHOWN_FOR).isoformat(timespec="milliseconds")
    holds = await desk.records.member_holds(user_id, since.replace("+00:00", "Z"))
    sanctions = await desk.records.active_sanctions(user_id)
    appeals = await desk.records.member_appeals(user_id)
    return {"holds": [{k: h[k] for k in MEMBER_HOLD_FIELDS} for h in holds],
            "sanctions": [{k: s[k] for k in MEMBER_SANCTION_FIELDS} for s in sanctions],
            "appeals": [{k: a[k] for k in ("id", "subject_type", "subject_id", "status",
                                           "created_at")} for a in appeals]}
