"""Payload models of the bridge's socket events; strict, extra fields refused."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

#: a hard cap; the configured GIGVORA_MAX_TEXT_CHARS is checked by the service
Text = Annotated[str, StringConstraints(min_length=1, max_length=60_000)]
ClientId = Annotated[str, StringConstraints(min_length=1, max_length=128)]
ConversationId = Annotated[int, Field(ge=1)]
#: a Chatwoot label: no comma (Chatwoot splits label lists on commas), no control character, no
#: surrounding whitespace
Label = Annotated[str, StringConstraints(min_length=1, max_length=64,
                                         pattern=r"^[^,\s\x00-\x1f\x7f](?:[^,\x00-\x1f\x7f]*"
                                                 r"[^,\s\x00-\x1f\x7f])?$")]
Limit = Annotated[int, Field(ge=1, le=200)]
Status = Literal["open", "pending", "snoozed", "resolved"]


class Model(BaseModel):
    """Strict base."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class SupportSend(Model):
    """``support:send``: a member writes to support."""

    text: Text
    client_id: ClientId | None = None


class SupportHistory(Model):
    """``support:history``: the member's support messages (``before_seq`` pages back)."""

    before_seq: int | None = None
    limit: Limit = 50


class InboxReply(Model):
    """``inbox:reply``: an agent's reply, or a private note."""

    conversation_id: ConversationId
    text: Text
    private: bool = False
    client_id: ClientId | None = None


class InboxAssign(Model):
    """``inbox:assign``: ``assignee_id`` (a Chatwoot agent id; null unassigns) and/or
    ``team_id``."""

    conversation_id: ConversationId
    assignee_id: int | None = None
    team_id: int | None = None

    @model_validator(mode="after")
    def _something(self) -> InboxAssign:
        if not {"assignee_id", "team_id"} & self.model_fields_set:
            raise ValueError("give assignee_id or team_id")
        return self


class InboxStatus(Model):
    """``inbox:status``."""

    conversation_id: ConversationId
    status: Status
    snoozed_until: int | None = None


class InboxTyping(Model):
    """``inbox:typing``: an agent starts or stops typing a reply (or a private note)."""

    conversation_id: ConversationId
    typing: bool
    private: bool = False


class InboxLabels(Model):
    """``inbox:labels``: the full label set (replaces the current one; at most 50, each 1-64
    characters without commas, no duplicates)."""

    conversation_id: ConversationId
    labels: Annotated[list[Label], Field(max_length=50)]

    @model_validator(mode="after")
    def _unique(self) -> InboxLabels:
        if len({label.casefold() for label in self.labels}) != len(self.labels):
            raise ValueError("labels must not repeat")
        return self


class InboxAgents(Model):
    """``inbox:agents``: the account's agents and labels, to assign and label with
    (``refresh`` re-reads Chatwoot instead of the list cached for a minute)."""

    refresh: bool = False


class InboxList(Model):
    """``inbox:list``: mirrored conversations, most recent first."""

    status: Status | None = None
    limit: Limit = 50
    refresh: bool = False


class InboxMessages(Model):
    """``inbox:messages``: one conversation's messages for agents."""

    conversation_id: ConversationId
    before_seq: int | None = None
    limit: Limit = 50
