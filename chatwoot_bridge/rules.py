"""Routing rules, SLA policies and business hours: the operators' JSON settings, validated at
boot, and the pure functions that apply them (no I/O here).

- ``GIGVORA_CHATWOOT_ROUTING_RULES``: a JSON list of :class:`RoutingRule`; the first rule whose
  ``match`` fits a new conversation assigns it (agent and/or team).
- ``GIGVORA_CHATWOOT_SLA_POLICIES``: a JSON list of :class:`SlaPolicy`; the first policy whose
  ``match`` fits a new conversation is its SLA.
- ``GIGVORA_CHATWOOT_BUSINESS_HOURS``: :class:`BusinessHours`, used by policies with
  ``business_hours: true`` (their timers only run inside the opening hours).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

Name = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Seconds = Annotated[float, Field(gt=0, le=366 * 86_400)]
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SLA_KINDS = ("first_response", "next_response", "resolution")


class Rule(BaseModel):
    """Strict about unknown keys (a typo must not silently match everything)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True, slots=True)
class Facts:
    """What a rule can match on, gathered for one conversation."""

    inbox_id: int | None = None
    labels: frozenset[str] = frozenset()
    team_id: int | None = None
    language: str | None = None
    persona: str | None = None
    roles: frozenset[str] = field(default_factory=frozenset)


class Match(Rule):
    """Every given criterion must hold (AND); a list matches any of its values (OR).
    ``languages`` match by prefix (``de`` matches ``de-AT``); ``labels`` match if the
    conversation has any of them; an empty ``match`` fits every conversation."""

    inbox_ids: list[int] | None = None
    labels: list[Name] | None = None
    team_ids: list[int] | None = None
    languages: list[Name] | None = None
    personas: list[Name] | None = None
    roles: list[Name] | None = None

    def fits(self, facts: Facts) -> bool:
        """Does the conversation described by ``facts`` satisfy every criterion?"""
        language = (facts.language or "").lower()
        checks = (
            self.inbox_ids is None or facts.inbox_id in self.inbox_ids,
            self.labels is None or bool(facts.labels & set(self.labels)),
            self.team_ids is None or facts.team_id in self.team_ids,
            self.languages is None or any(
                language == lang.lower() or language.startswith(lang.lower() + "-")
                for lang in self.languages),
            self.personas is None or facts.persona in self.personas,
            self.roles is None or bool(facts.roles & set(self.roles)))
        return all(checks)


class RoutingRule(Rule):
    """Assign matching new conversations to ``assignee_id`` (a Chatwoot agent) and/or
    ``team_id``."""

    name: Name
    match: Match = Match()
    assignee_id: int | None = None
    team_id: int | None = None

    @model_validator(mode="after")
    def _assigns(self) -> RoutingRule:
        if self.assignee_id is None and self.team_id is None:
            raise ValueError(f"rule {self.name!r}: give assignee_id and/or team_id")
        return self


class SlaPolicy(Rule):
    """Targets in seconds (omit one to not track it); ``business_hours`` counts only time
    inside the configured opening hours."""

    name: Name
    match: Match = Match()
    first_response_s: Seconds | None = None
    next_response_s: Seconds | None = None
    resolution_s: Seconds | None = None
    business_hours: bool = False


class BusinessHours(Rule):
    """``{"timezone": "Europe/Berlin", "days": {"mon": ["09:00", "17:00"], ...}}``; a day
    that is absent is closed. No days at all means always open."""

    timezone: str = "UTC"
    days: dict[str, tuple[dt.time, dt.time]] = Field(default_factory=dict)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r}") from None
        return value

    @field_validator("days")
    @classmethod
    def _days(cls, value: dict[str, tuple[dt.time, dt.time]]
              ) -> dict[str, tuple[dt.time, dt.time]]:
        for day, (start, end) in value.items():
            if day not in DAYS:
                raise ValueError(f"unknown day {day!r} (use {', '.join(DAYS)})")
            if end <= start:
                raise ValueError(f"{day}: closing time must be after opening time")
        return value

    def add(self, start: float, seconds: float) -> float:
        """The epoch at which ``seconds`` of open time have passed since ``start``."""
        if not self.days:
            return start + seconds
        zone = ZoneInfo(self.timezone)
        cursor = dt.datetime.fromtimestamp(start, zone)
        left = seconds
        for _ in range(3 * 366):  # a long target over a week with few open hours
            hours = self.days.get(DAYS[cursor.weekday()])
            if hours is not None:
                opens = dt.datetime.combine(cursor.date(), hours[0], zone)
                closes = dt.datetime.combine(cursor.date(), hours[1], zone)
                begin = max(cursor, opens)
                if begin < closes:
                    available = (closes - begin).total_seconds()
                    if left <= available:
                        return (begin + dt.timedelta(seconds=left)).timestamp()
                    left -= available
            cursor = dt.datetime.combine(cursor.date() + dt.timedelta(days=1), dt.time(),
                                         zone)
        return start + seconds  # unreachable with any open day; never loop forever

    def open_seconds(self, start: float, end: float) -> float:
        """Seconds of open time between ``start`` and ``end`` (the inverse of :meth:`add`;
        always open without days)."""
        if end <= start:
            return 0.0
        if not self.days:
            return end - start
        zone = ZoneInfo(self.timezone)
        day = dt.datetime.fromtimestamp(start, zone).date()
        last = dt.datetime.fromtimestamp(end, zone).date()
        total = 0.0
        while day <= last:
            hours = self.days.get(DAYS[day.weekday()])
            if hours is not None:
                opens = dt.datetime.combine(day, hours[0], zone).timestamp()
                closes = dt.datetime.combine(day, hours[1], zone).timestamp()
                total += max(0.0, min(closes, end) - max(opens, start))
            day += dt.timedelta(days=1)
        return total


@dataclass(frozen=True, slots=True)
class SupportRules:
    """All three settings, validated."""

    routing: tuple[RoutingRule, ...] = ()
    policies: tuple[SlaPolicy, ...] = ()
    hours: BusinessHours = field(default_factory=BusinessHours)

    @classmethod
    def from_settings(cls, settings: Any) -> SupportRules:
        """Validate the settings; ``ValueError`` (with the reason) if they are wrong."""
        routing = tuple(RoutingRule.model_validate(r) for r in settings.chatwoot_routing_rules)
        policies = tuple(SlaPolicy.model_validate(p) for p in settings.chatwoot_sla_policies)
        hours = BusinessHours.model_validate(settings.chatwoot_business_hours or {})
        for kind, names in (("routing rule", [r.name for r in routing]),
                            ("SLA policy", [p.name for p in policies])):
            if len(set(names)) != len(names):
                raise ValueError(f"duplicate {kind} names")
        return cls(routing, policies, hours)

    def route(self, facts: Facts) -> RoutingRule | None:
        """The first routing rule that fits, or None."""
        return next((r for r in self.routing if r.match.fits(facts)), None)

    def policy(self, facts: Facts) -> SlaPolicy | None:
        """The first SLA policy that fits, or None."""
        return next((p for p in self.policies if p.match.fits(facts)), None)

    def policy_named(self, name: str | None) -> SlaPolicy | None:
        """A policy by name (None if it was removed from the settings since)."""
        return next((p for p in self.policies if p.name == name), None)

    def rule_named(self, name: str | None) -> RoutingRule | None:
        """A routing rule by name."""
        return next((r for r in self.routing if r.name == name), None)

    def due(self, policy: SlaPolicy, start: float, seconds: float | None) -> float | None:
        """When a target of ``seconds`` started at ``start`` is due (None: not tracked)."""
        if seconds is None:
            return None
        return self.hours.add(start, seconds) if policy.business_hours else start + seconds
