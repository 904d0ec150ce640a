"""The moderators' desk: checks before store, holds, reports, sanctions, appeals, policies —
every action (human or automatic) written to the hash-chained audit log.

Only ``storage.moderation`` touches the database; the live core is reached through the plugin
context (emit, chat service, disconnect/leave helpers).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict, deque
from typing import Any

from moderation.models import PolicyDoc
from moderation.policy import Policy, Verdict
from moderation.service import ModerationService
from realtime.errors import AppError
from realtime.identity import Principal
from realtime.observability import correlation_id
from realtime.plugins import Verdict as HookVerdict
from storage.base import Conflict, MessageDraft, NotFound
from storage.moderation import ModerationRecords, content_hash

log = logging.getLogger(__name__)
NS = "/moderation"
SYSTEM = "system:moderation"
STAFF = frozenset({"moderator", "admin"})
SANCTION_CACHE_S = 5.0
NAMES_KEPT = 10_000


class ModerationDesk:
    """Moderation logic (see the module docstring)."""

    def __init__(self, ctx: Any, records: ModerationRecords, service: ModerationService) -> None:
        self.ctx = ctx
        self.records = records
        self.service = service
        settings = ctx.settings
        self.escalate_after = settings.moderation_escalate_after
        self.escalate_window = settings.moderation_escalate_window_s
        self.auto_mute_s = settings.moderation_auto_mute_s
        self.policies: dict[str, PolicyDoc] = {}
        self._sanctions: dict[str, tuple[float, list[dict[str, Any]]]] = {}
        self._strikes: dict[str, deque[float]] = defaultdict(deque)
        #: user id → the name they last posted under (for the queue; the store has no users)
        self.names: dict[str, str] = {}
        #: id(PolicyDoc) → (that doc, its Policy): a doc is frozen, so its policy is built
        #: once; a changed policy is a new doc (``set_policy``, ``load``), hence a new entry
        self._built: dict[int, tuple[PolicyDoc, Policy]] = {}
        self._default_policy = Policy()

    async def load(self) -> None:
        """Cache the stored policies."""
        self.policies = {c: PolicyDoc.model_validate(p, strict=False)
                         for c, p in (await self.records.policies()).items()}

    def policy_for(self, channel: str) -> Policy:
        """The channel's policy, else the default (``*``), else the built-in default."""
        doc = self.policies.get(channel) or self.policies.get("*")
        if not doc:
            return self._default_policy
        built = self._built.get(id(doc))
        if built is None or built[0] is not doc:
            if len(self._built) > 2 * len(self.policies) + 8:  # docs replaced since
                self._built.clear()
            built = self._built[id(doc)] = (doc, doc.to_policy())
        return built[1]

    async def _audit(self, actor: str, action: str, target_type: str, target_id: str,
                     reason: str = "", **details: Any) -> dict[str, Any]:
        entry = await self.records.audit(actor, action, target_type, target_id, reason, details,
                                         correlation_id.get())
        await self.ctx.emit("moderation:action", entry, namespace=NS)
        return entry

    # before store -----------------------------------------------------------------------------
    async def pre_store(self, draft: dict[str, Any], user: dict[str, Any]) -> HookVerdict | None:
        """Sanctions first, then the classifier pipeline and the channel's policy."""
        user_id, channel = user["id"], draft["channel"]
        self._remember(user_id, user["name"])
        cached = self._sanctions.get(user_id)
        if cached is None or time.monotonic() - cached[0] > SANCTION_CACHE_S:
            cached = await self._load_sanctions(user_id)
        if cached[1]:
            self._refuse(cached[1], channel)
        client_id = draft.get("client_id")
        if client_id and not draft.get("edit_of"):
            held = await self.records.find_hold(channel, user_id, client_id)
            if held is not None:  # a retry of a held message: the same hold, not a new check
                return HookVerdict("hold", reason="held for review by a moderator",
                                   data={"hold_id": held["id"], "labels": held["labels"]})
        service = self.service
        if service.inline:  # no ML tier: nothing to await
            verdict = service.check_inline(draft["text"], user_id=user_id, roles=user["roles"],
                                           channel=channel, policy=self.policy_for(channel))
        else:
            verdict = await service.check(draft["text"], user_id=user_id, roles=user["roles"],
                                          channel=channel, policy=self.policy_for(channel))
        if verdict.failed:
            log.error("moderation stage failed", extra={"reasons": list(verdict.reasons)})
            return HookVerdict("block", code="unavailable",
                               reason="moderation is unavailable; retry later")
        if verdict.verdict == "allow":
            return None
        details = _details(verdict, draft)
        if verdict.verdict == "mask":
            await self._audit(SYSTEM, "auto_mask", "user", user["id"], "policy", **details)
            return HookVerdict("transform", text=verdict.masked_text)
        if verdict.verdict == "hold":
            if draft.get("edit_of"):
                await self._audit(SYSTEM, "auto_block_edit", "user", user["id"], "policy",
                                  **details)
                return HookVerdict("block", reason="this edit needs review; it was not saved")
            return await self._hold(draft, user, verdict, details)
        await self._audit(SYSTEM, "auto_block", "user", user["id"], "policy", **details)
        await self._strike(user)
        return HookVerdict("block", reason="message blocked by community rules: "
                           + ", ".join(verdict.labels or ("policy",)))

    async def _hold(self, draft: dict[str, Any], user: dict[str, Any], verdict: Verdict,
                    details: dict[str, Any]) -> HookVerdict:
        hold, created = await self.records.hold({
            "channel_id": draft["channel"], "author_id": user["id"], "author_name": user["name"],
            "text": draft["text"], "client_id": draft.get("client_id"),
            "thread_id": draft.get("thread_id"), "labels": list(verdict.labels),
            "scores": dict(verdict.scores), "reasons": list(verdict.reasons)})
        if created:
            await self._audit(SYSTEM, "auto_hold", "hold", hold["id"], "policy", **details)
            await self.ctx.emit("moderation:held", hold, namespace=NS)
            await self._strike(user)
        return HookVerdict("hold", reason="held for review by a moderator",
                           data={"hold_id": hold["id"], "labels": list(verdict.labels)})

    async def _load_sanctions(self, user_id: str) -> tuple[float, list[dict[str, Any]]]:
        """The user's active sanctions, cached for ``SANCTION_CACHE_S``."""
        cached = (time.monotonic(), await self.records.active_sanctions(user_id))
        self._sanctions[user_id] = cached
        return cached

    @staticmethod
    def _refuse(sanctions: list[dict[str, Any]], channel: str) -> None:
        """Raise ``moderation_blocked`` for the first sanction that covers ``channel``."""
        for sanction in sanctions:
            if sanction["channel_id"] in (None, channel):
                until = sanction["expires_at"]
                when = f" until {time.strftime('%H:%M UTC', time.gmtime(until))}" if until else ""
                raise AppError("moderation_blocked", f"you are {sanction['kind']}ned{when}"
                               if sanction["kind"] == "ban" else f"you are muted{when}",
                               sanction_id=sanction["id"])

    async def _strike(self, user: dict[str, Any]) -> None:
        """Repeat offenders escalate: N automatic holds/blocks in the window → an auto mute."""
        if self.escalate_after <= 0:
            return
        now = time.monotonic()
        strikes = self._strikes[user["id"]]
        strikes.append(now)
        while strikes and now - strikes[0] > self.escalate_window:
            strikes.popleft()
        if len(strikes) >= self.escalate_after:
            strikes.clear()
            await self._sanction(SYSTEM, user["id"], "mute", None, self.auto_mute_s,
                                 f"automatic: {self.escalate_after} flagged messages within "
                                 f"{self.escalate_window:.0f}s")

    # holds ------------------------------------------------------------------------------------
    async def approve(self, who: Principal, hold_id: str, reason: str) -> dict[str, Any]:
        """Post a held message to its channel."""
        hold = await self._get(self.records.get_hold(hold_id))
        if hold["text"] is None:
            raise AppError("conflict", "the held message was erased")
        message = await self.ctx.extra["chat"].store_and_publish(MessageDraft(
            hold["channel_id"], hold["author_id"], hold["author_name"], hold["text"],
            hold["client_id"], hold["thread_id"]))
        decided = await self._conflict(self.records.decide_hold(hold_id, "approved", who.sub,
                                                                reason, message["id"]))
        await self._audit(who.sub, "hold_approve", "hold", hold_id, reason,
                          message_id=message["id"], content_sha256=content_hash(hold["text"]))
        await self._tell(hold["author_id"], "moderation:hold_decided",
                         {"hold_id": hold_id, "status": "approved", "message": message})
        return decided

    async def reject(self, who: Principal, hold_id: str, reason: str) -> dict[str, Any]:
        """Refuse a held message for good."""
        hold = await self._get(self.records.get_hold(hold_id))
        decided = await self._conflict(self.records.decide_hold(hold_id, "rejected", who.sub,
                                                                reason))
        await self._audit(who.sub, "hold_reject", "hold", hold_id, reason,
                          content_sha256=content_hash(hold["text"] or ""))
        await self._tell(hold["author_id"], "moderation:hold_decided",
                         {"hold_id": hold_id, "status": "rejected", "reason": reason})
        return decided

    async def erase(self, who: Principal, hold_id: str, reason: str) -> dict[str, Any]:
        """Erase a held message's content (personal data). The audit log keeps its hash only,
        so the chain stays valid."""
        await self._get(self.records.get_hold(hold_id))
        await self.records.erase_hold_text(hold_id)
        await self._audit(who.sub, "content_erase", "hold", hold_id, reason)
        return {"id": hold_id, "erased": True}

    # reports ----------------------------------------------------------------------------------
    async def report(self, who: Principal, message_id: str, reason: str) -> dict[str, Any]:
        """A member reports a message they can read."""
        chat = self.ctx.extra["chat"]
        message = await chat.store.get_message(message_id)
        if message is None or message.deleted:
            raise AppError("not_found", f"no message {message_id}")
        await chat.readable(message.channel, who)
        report = await self._conflict(self.records.report({
            "message_id": message_id, "channel_id": message.channel, "reporter_id": who.sub,
            "reason": reason}))
        await self._audit(who.sub, "report", "message", message_id, reason,
                          report_id=report["id"], content_sha256=content_hash(message.text))
        self._remember(who.sub, who.name)
        await self.ctx.emit("moderation:report", {**report, "reporter_name": who.name,
                                                  "message": message.public()}, namespace=NS)
        return report

    async def resolve_report(self, who: Principal, report_id: str, reason: str
                             ) -> dict[str, Any]:
        """Close a report."""
        resolved = await self._conflict(self.records.resolve_report(report_id, who.sub, reason))
        await self._audit(who.sub, "report_resolve", "report", report_id, reason)
        return resolved

    async def delete_message(self, who: Principal, message_id: str, reason: str
                             ) -> dict[str, Any]:
        """Delete any message (moderators)."""
        from realtime.chat_models import MessageRef

        chat = self.ctx.extra["chat"]
        message = await chat.store.get_message(message_id)
        if message is None:
            raise AppError("not_found", f"no message {message_id}")
        await chat.delete(who, MessageRef(id=message_id))
        await self._audit(who.sub, "message_delete", "message", message_id, reason,
                          channel=message.channel, author_id=message.author_id,
                          content_sha256=content_hash(message.text))
        return {"id": message_id, "deleted": True}

    # sanctions --------------------------------------------------------------------------------
    async def sanction(self, who: Principal, user_id: str, kind: str, channel: str | None,
                       duration_s: int | None, reason: str) -> dict[str, Any]:
        """Mute, ban or kick (moderators)."""
        if user_id == who.sub:
            raise AppError("invalid", "you cannot sanction yourself")
        if kind == "kick" and channel is None:
            raise AppError("invalid", "a kick needs a channel")
        return await self._sanction(who.sub, user_id, kind, channel, duration_s, reason)

    async def _sanction(self, actor: str, user_id: str, kind: str, channel: str | None,
                        duration_s: float | None, reason: str) -> dict[str, Any]:
        expires = time.time() + duration_s if duration_s else None
        sanction = await self.records.sanction({
            "user_id": user_id, "kind": kind, "channel_id": channel, "reason": reason,
            "issued_by": actor, "expires_at": expires})
        self._sanctions.pop(user_id, None)
        await self._audit(actor, kind, "user", user_id, reason, sanction_id=sanction["id"],
                          channel=channel, expires_at=expires)
        await self._tell(user_id, "moderation:sanctioned", sanction)
        if kind == "kick" and channel is not None:
            await self.ctx.leave_room(user_id, "ch:" + channel)
        elif kind == "ban":
            await self.ctx.disconnect_user(user_id)
        return sanction

    async def lift(self, who: Principal, sanction_id: str, reason: str) -> dict[str, Any]:
        """Lift a mute or ban early."""
        lifted = await self._conflict(self.records.lift_sanction(sanction_id, who.sub))
        self._sanctions.pop(lifted["user_id"], None)
        await self._audit(who.sub, "sanction_lift", "sanction", sanction_id, reason,
                          user_id=lifted["user_id"])
        await self._tell(lifted["user_id"], "moderation:sanction_lifted", lifted)
        return lifted

    # appeals ----------------------------------------------------------------------------------
    async def appeal(self, who: Principal, subject_type: str, subject_id: str, text: str
                     ) -> dict[str, Any]:
        """A member appeals their own sanction or held message."""
        subject = await self.subject(subject_type, subject_id)
        owner = subject["user_id"] if subject_type == "sanction" else subject["author_id"]
        if owner != who.sub:
            raise AppError("forbidden", "you can only appeal your own sanctions and messages")
        appeal = await self._conflict(self.records.appeal({
            "user_id": who.sub, "subject_type": subject_type, "subject_id": subject_id,
            "text": text}))
        await self._audit(who.sub, "appeal", subject_type, subject_id, "appeal filed",
                          appeal_id=appeal["id"], content_sha256=content_hash(text))
        self._remember(who.sub, who.name)
        await self.ctx.emit("moderation:appeal", {**appeal, "user_name": who.name,
                                                  "subject": subject}, namespace=NS)
        return appeal

    async def decide_appeal(self, who: Principal, appeal_id: str, outcome: str, reason: str
                            ) -> dict[str, Any]:
        """A moderator other than the one who decided the subject rules on the appeal."""
        appeal = await self._get(self.records.get_appeal(appeal_id))
        subject = await self.subject(appeal["subject_type"], appeal["subject_id"])
        original = (subject["issued_by"] if appeal["subject_type"] == "sanction"
                    else subject["decided_by"])
        if who.sub in (original, appeal["user_id"]):
            raise AppError("forbidden", "a different moderator must decide this appeal")
        decided = await self._conflict(self.records.decide_appeal(appeal_id, outcome, who.sub,
                                                                  reason))
        await self._audit(who.sub, f"appeal_{outcome}", "appeal", appeal_id, reason,
                          subject_type=appeal["subject_type"], subject_id=appeal["subject_id"])
        if outcome == "overturned":
            await self._overturn(who, appeal, subject, reason)
        await self._tell(appeal["user_id"], "moderation:appeal_decided", decided)
        return decided

    async def _overturn(self, who: Principal, appeal: dict[str, Any], subject: dict[str, Any],
                        reason: str) -> None:
        if appeal["subject_type"] == "sanction" and subject["lifted_at"] is None:
            await self.lift(who, subject["id"], f"appeal overturned: {reason}")
        elif appeal["subject_type"] == "hold" and subject["status"] != "approved":
            if subject["status"] == "rejected":  # reopen it, then approve
                await self.records.store.run_write(lambda conn: conn.execute(
                    "UPDATE moderation_holds SET status = 'pending' WHERE id = ?",
                    (subject["id"],)))
            await self.approve(who, subject["id"], f"appeal overturned: {reason}")

    async def subject(self, subject_type: str, subject_id: str) -> dict[str, Any]:
        """The sanction or hold an appeal is about; ``not_found`` otherwise."""
        if subject_type == "sanction":
            return await self._get(self.records.get_sanction(subject_id))
        return await self._get(self.records.get_hold(subject_id))

    # policies ---------------------------------------------------------------------------------
    async def set_policy(self, who: Principal, channel: str, doc: PolicyDoc) -> dict[str, Any]:
        """Change a channel's policy (``*`` = default); the audit keeps before and after."""
        after = doc.model_dump()
        before = await self.records.set_policy(channel, after, who.sub)
        self.policies[channel] = doc
        await self._audit(who.sub, "policy_change", "channel", channel, "policy updated",
                          before=before, after=after)
        return after

    # helpers ----------------------------------------------------------------------------------
    def _remember(self, user_id: str, name: str) -> None:
        if len(self.names) >= NAMES_KEPT and user_id not in self.names:
            self.names.clear()
        self.names[user_id] = name

    async def _tell(self, user_id: str, event: str, data: Any) -> None:
        await self.ctx.emit(event, data, to="user:" + user_id)

    @staticmethod
    async def _get(awaitable: Any) -> dict[str, Any]:
        try:
            result: dict[str, Any] = await awaitable
        except NotFound as error:
            raise AppError("not_found", str(error)) from None
        return result

    @staticmethod
    async def _conflict(awaitable: Any) -> dict[str, Any]:
        try:
            result: dict[str, Any] = await awaitable
        except Conflict as error:
            raise AppError("conflict", str(error)) from None
        except NotFound as error:
            raise AppError("not_found", str(error)) from None
        return result


def _details(verdict: Verdict, draft: dict[str, Any]) -> dict[str, Any]:
    """What an automatic action records: rule, scores, content by hash only."""
    return {"channel": draft["channel"], "labels": list(verdict.labels),
            "scores": {k: round(v, 4) for k, v in verdict.scores.items()},
            "reasons": list(verdict.reasons), "verdict": verdict.verdict,
            "content_sha256": content_hash(draft["text"])}
