"""Payload models of the moderation API (REST and socket events); strict, extra fields refused."""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from moderation.base import Label
from moderation.policy import Action, LabelRule, Policy

Id = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=512)]
Role = Literal["member", "agent", "moderator", "admin", "operator"]
STAFF_ROLES: tuple[Role, ...] = ("moderator", "admin")


class Model(BaseModel):
    """Strict base."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class ReportIn(Model):
    """A member reports a message."""

    id: Id
    reason: Reason


class AppealIn(Model):
    """A member appeals a sanction or a held message."""

    subject_type: Literal["sanction", "hold"]
    subject_id: Id
    text: Annotated[str, StringConstraints(min_length=1, max_length=2000)]


class Decision(Model):
    """Approve/reject a hold, lift a sanction, resolve a report, delete a message."""

    id: Id
    reason: Reason


class SanctionIn(Model):
    """Mute, ban or kick a user (``channel`` scopes a mute or kick to one channel)."""

    user_id: Id
    kind: Literal["mute", "ban", "kick"]
    reason: Reason
    channel: Id | None = None
    duration_s: int | None = Field(None, ge=1, le=365 * 24 * 3600)


class AppealDecision(Model):
    """A (different) moderator decides an appeal."""

    id: Id
    outcome: Literal["upheld", "overturned"]
    reason: Reason


#: at least one character that ``str.strip()`` keeps (its whitespace: ``str.isspace``)
NOT_BLANK = (r"[^\u0009-\u000d\u001c-\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029"
             r"\u202f\u205f\u3000]")


class ReasonIn(BaseModel):
    """The body of a staff decision on a path's subject (approve, reject, erase, resolve, delete,
    lift): a reason with at least one non-blank character."""

    reason: Annotated[str, StringConstraints(min_length=1, max_length=512,
                                             pattern=NOT_BLANK)]


class AuditQuery(Model):
    """``GET /api/v1/moderation/audit?actor=&action=&target=&limit=&before_seq=`` (query
    strings: numbers are parsed, other parameters ignored)."""

    model_config = ConfigDict(extra="ignore", frozen=True, strict=False)
    actor: Id | None = None
    action: Id | None = None
    target: Id | None = None
    limit: int = Field(100, ge=1, le=500)
    before_seq: int | None = Field(None, ge=0, le=2**63 - 1)


class PolicyDoc(Model):
    """A channel's moderation policy (``*`` = the default for every channel)."""

    profanity: Action = "mask"
    toxic: Action = "hold"
    spam: Action = "hold"
    block_toxic_at: float = Field(0.95, ge=0, le=1)
    block_spam_at: float = Field(0.9, ge=0, le=1)
    exempt_roles: list[Role] = Field(default_factory=lambda: list(STAFF_ROLES))

    def to_policy(self) -> Policy:
        """The classifier policy this document describes."""
        rules: dict[Label, LabelRule] = {
            "profanity": LabelRule(0.5, ((0.5, self.profanity),)),
            "toxic": LabelRule(0.5, ((0.5, self.toxic), (self.block_toxic_at, "block"))
                               if self.toxic != "allow" else ((0.5, "allow"),)),
            "spam": LabelRule(0.5, ((0.5, self.spam), (self.block_spam_at, "block"))
                              if self.spam != "allow" else ((0.5, "allow"),)),
        }
        return replace(Policy(), rules=MappingProxyType(rules),
                       exempt_roles=frozenset(self.exempt_roles))
