"""``GET /api/v1/support/analytics?from=&to=``: support volumes, first-response and resolution
times (median, p90), SLA breaches, overall, per agent and per team (role ``admin``: the support
supervisors; docs/chatwoot.md "Analytics").

Conversations count in the range they were opened in; their response and resolution times are
measured from opening, in wall-clock seconds and (``business_*``) in open seconds of
``GIGVORA_CHATWOOT_BUSINESS_HOURS``, the calendar the SLA timers use. Breaches count in the range
they happened in, for the agent and team assigned at that moment. Quantiles are linear
interpolations between closest ranks (``statistics.quantiles(method="inclusive")``, numpy's
default).
"""

from __future__ import annotations

import datetime as dt
import statistics
import time
from collections import defaultdict
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from chatwoot_bridge.rules import BusinessHours
from realtime.errors import AppError
from realtime.ops_http import json_response, parse
from storage.support import KINDS, SupportRecords

PATH = "/api/v1/support/analytics"
SUPERVISORS = ("admin",)
MAX_RANGE_S = 366 * 86_400
DEFAULT_RANGE_S = 7 * 86_400
MAX_EPOCH_S = 253_402_300_799.0  # 9999-12-31T23:59:59Z


#: epoch seconds, or an ISO 8601 date or date-time (with ``Z`` or an offset)
TIME_PATTERN = (r"^(-?[0-9]{1,12}(\.[0-9]{1,9})?|[0-9]{4}-[0-9]{2}-[0-9]{2}"
                r"([T ][0-9]{2}(:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?)?)?"
                r"(Z|[+-][0-9]{2}(:?[0-9]{2})?)?)$")


class AnalyticsQuery(BaseModel):
    """``?from=&to=`` (each optional: ``to`` defaults to now, ``from`` to a week before it)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    start: str | None = Field(None, alias="from", min_length=1, max_length=40,
                              pattern=TIME_PATTERN)
    to: str | None = Field(None, min_length=1, max_length=40, pattern=TIME_PATTERN)


def parse_time(value: str | None, default: float) -> float:
    """ISO 8601 (``Z`` or an offset; naive means UTC) or epoch seconds; ``invalid`` else."""
    if value is None or not value.strip():
        return default
    bad = AppError("invalid", f"not a time: {value[:40]!r} (ISO 8601 or epoch seconds, "
                   "years 1970-9999)")
    try:
        epoch = float(value)
    except ValueError:
        try:
            parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise bad from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.UTC)
        epoch = parsed.timestamp()
    if not 0 <= epoch <= MAX_EPOCH_S:  # also NaN and infinities (no 500 from formatting)
        raise bad
    return epoch


def _median_p90(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    p90 = values[0] if len(values) == 1 else statistics.quantiles(
        values, n=10, method="inclusive")[8]
    return round(statistics.median(values), 3), round(p90, 3)


def durations(values: list[float], business: list[float] | None = None) -> dict[str, Any]:
    """``{"count", "median_s", "p90_s", "business_median_s", "business_p90_s"}`` (null
    figures for no values); ``business``: the same durations in open seconds (default: the
    wall-clock ones)."""
    median, p90 = _median_p90(values)
    business_median, business_p90 = _median_p90(values if business is None else business)
    return {"count": len(values), "median_s": median, "p90_s": p90,
            "business_median_s": business_median, "business_p90_s": business_p90}


def _measure(convs: list[dict[str, Any]], field: str, hours: BusinessHours) -> dict[str, Any]:
    spans = [(c["opened_at"], c[field]) for c in convs if c["fresh"] and c[field] is not None]
    return durations([end - start for start, end in spans],
                     [hours.open_seconds(start, end) for start, end in spans])


def _figures(convs: list[dict[str, Any]], breaches: list[dict[str, Any]],
             hours: BusinessHours) -> dict[str, Any]:
    by_kind = {kind: sum(1 for b in breaches if b["kind"] == kind) for kind in KINDS}
    return {"conversations": len(convs),
            "resolved": sum(1 for c in convs if c["resolved_at"] is not None),
            "first_response": _measure(convs, "first_response_at", hours),
            "resolution": _measure(convs, "resolved_at", hours),
            "breaches": {"total": len(breaches), **by_kind}}


def _grouped(convs: list[dict[str, Any]], breaches: list[dict[str, Any]], key: str,
             hours: BusinessHours) -> list[dict[str, Any]]:
    names: dict[Any, str | None] = {}
    conv_groups: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    breach_groups: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for groups, rows in ((conv_groups, convs), (breach_groups, breaches)):
        for row in rows:
            groups[row[f"{key}_id"]].append(row)
            names.setdefault(row[f"{key}_id"], row[f"{key}_name"])
    ids = sorted(set(conv_groups) | set(breach_groups), key=lambda i: (i is None, i or 0))
    return [{key: {"id": i, "name": names.get(i)} if i is not None else None,
             **_figures(conv_groups.get(i, []), breach_groups.get(i, []), hours)}
            for i in ids]


async def report(records: SupportRecords, start: float, end: float,
                 hours: BusinessHours | None = None) -> dict[str, Any]:
    """The analytics document for ``[start, end)`` (``hours``: the business-hours calendar;
    none: always open)."""
    hours = hours or BusinessHours()
    convs = await records.opened_between(start, end)
    breaches = await records.breaches_between(start, end)
    return {"from": _iso(start), "to": _iso(end), **_figures(convs, breaches, hours),
            "by_agent": _grouped(convs, breaches, "assignee", hours),
            "by_team": _grouped(convs, breaches, "team", hours)}


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat().replace("+00:00", "Z")


class AnalyticsView:
    """The REST endpoint; ``records()`` is the store once the bridge runs (None before);
    ``hours`` the business-hours calendar of the SLA timers."""

    def __init__(self, authenticate: Any, records: Any,
                 hours: BusinessHours | None = None) -> None:
        self.authenticate = authenticate
        self.records = records
        self.hours = hours or BusinessHours()

    def routes(self) -> list[web.RouteDef]:
        """The route table."""
        return [web.get(PATH, self.get)]

    async def get(self, request: web.Request) -> web.Response:
        """Authorise, parse the range, report."""
        who = self.authenticate(request)
        if not who.has_any(SUPERVISORS):
            raise AppError("forbidden", "support analytics are for supervisors (role admin)")
        query = parse(AnalyticsQuery, dict(request.query))
        now = time.time()
        end = parse_time(query.to, now)
        start = parse_time(query.start, end - DEFAULT_RANGE_S)
        if end <= start:
            raise AppError("invalid", "from must be before to")
        if end - start > MAX_RANGE_S:
            raise AppError("invalid", "the range is at most 366 days")
        records = self.records()
        if records is None:
            raise AppError("unavailable", "the Chatwoot bridge is not running")
        return json_response(await report(records, start, end, self.hours))
