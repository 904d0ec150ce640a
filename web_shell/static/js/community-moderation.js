// Moderation as a member sees it: messages held for review (a note in the log until a
// moderator decides), the decision (approved: the message arrives with `message:new`;
// rejected: "Not published: <reason>"), and sanctions ("You are muted until …"). On every
// (re)connection the notes are rebuilt from `GET /api/v1/moderation/mine`, so they survive a
// reload and decisions taken while offline show up.

import {
  renderHeld, renderLogNote, setStatus, showMessages, timelineOf,
} from "./community-view.js";
import { untilText } from "./dom.js";

/** Remember a message the server held (`data` is the ack: {status, hold_id, reason}). */
export function noteHeld(p, data, pending) {
  p.state.held.set(data.hold_id, {
    holdId: data.hold_id, channel: pending.channel, text: pending.text,
    threadId: pending.threadId || null, status: "held", reason: "",
  });
  renderHeld(p);
  renderLogNote(p);
  setStatus(p, "Your message is held for review by a moderator.", "info");
}

// Rejected notes the member dismissed stay dismissed after a reload (ids only, the newest few).
const DISMISSED_KEY = "gigvora:dismissed-holds";
const DISMISSED_KEPT = 50;
const dismissed = new Set(readDismissed());

function readDismissed() {
  try {
    const ids = JSON.parse(window.localStorage.getItem(DISMISSED_KEY) || "[]");
    return Array.isArray(ids) ? ids.filter((id) => typeof id === "string") : [];
  } catch {
    return [];
  }
}

function saveDismissed() {
  try {
    window.localStorage.setItem(DISMISSED_KEY, JSON.stringify([...dismissed].slice(-DISMISSED_KEPT)));
  } catch {
    // storage full or disabled: the note comes back after a reload, nothing worse
  }
}

/** Rebuild the held notes and the sanction notice from the server's view of this member. */
export async function loadMine(p) {
  let mine;
  try {
    mine = await p.conn.tokens.json("GET", "/api/v1/moderation/mine");
  } catch {
    return; // moderation off, or offline again: the live events still update the notes
  }
  const known = new Set(mine.holds.map((hold) => hold.id));
  for (const [holdId, held] of p.state.held) {
    if (held.status === "held" && !known.has(holdId)) p.state.held.delete(holdId); // approved
  }
  for (const hold of mine.holds) {
    if (dismissed.has(hold.id)) continue;
    p.state.held.set(hold.id, {
      holdId: hold.id, channel: hold.channel_id, text: hold.text ?? "(content erased)",
      threadId: hold.thread_id || null, status: hold.status === "rejected" ? "rejected" : "held",
      reason: hold.decision_reason || "",
    });
  }
  const hadSanctions = p.state.sanctions.size > 0;
  p.state.sanctions = new Map(mine.sanctions.map((sanction) => [sanction.id, sanction]));
  const current = [...p.state.sanctions.values()];
  if (current.length) setNotice(p, sanctionText(current[current.length - 1]));
  else if (hadSanctions) setNotice(p, "");
  renderHeld(p);
  renderLogNote(p);
}

/** A click in the held list (delegated). */
export function onHeldAction(p, event) {
  const button = event.target.closest('button[data-action="dismiss-held"]');
  const item = event.target.closest("li[data-hold-id]");
  if (!button || !item) return;
  p.state.held.delete(item.dataset.holdId);
  dismissed.add(item.dataset.holdId);
  saveDismissed();
  renderHeld(p);
  renderLogNote(p);
  p.ui.text.focus();
}

function onHoldDecided(p, decision) {
  const held = p.state.held.get(decision.hold_id);
  if (decision.status === "approved") {
    p.state.held.delete(decision.hold_id);
    const message = decision.message;
    if (message) { // it also arrives as message:new; merging twice is harmless
      const added = timelineOf(p, message.channel).merge([message]);
      if (message.channel === p.state.active) showMessages(p, added);
    }
    setStatus(p, "A moderator approved your message; it is published now.", "info");
  } else if (decision.status === "rejected") {
    if (held) Object.assign(held, { status: "rejected", reason: decision.reason || "" });
    setStatus(p, `Your message was not published: ${decision.reason || "no reason given"}`);
  }
  renderHeld(p);
  renderLogNote(p);
}

/** The sentence a member reads about a sanction of theirs. */
export function sanctionText(sanction) {
  const where = sanction.channel_id ? ` in #${sanction.channel_id}` : "";
  const until = untilText(sanction.expires_at);
  const reason = sanction.reason ? ` Reason: ${sanction.reason}.` : "";
  if (sanction.kind === "kick") return `You were removed from #${sanction.channel_id}.${reason}`;
  if (sanction.kind === "ban") return `You are banned${where}${until || " until further notice"}.${reason}`;
  return `You are muted${where}${until || " until further notice"}.${reason}`;
}

function setNotice(p, text) {
  p.ui.notice.textContent = text;
}

/** Subscribe to the member events of moderation. */
export function listenModeration(p) {
  // Moderation is a plugin that may be switched off: then there is nothing of one's own to load.
  if (document.querySelector("main")?.dataset.moderation !== "off") {
    p.conn.on("connect", () => loadMine(p));
  }
  p.conn.on("moderation:hold_decided", (decision) => onHoldDecided(p, decision));
  p.conn.on("moderation:sanctioned", (sanction) => {
    p.state.sanctions.set(sanction.id, sanction);
    setNotice(p, sanctionText(sanction));
  });
  p.conn.on("moderation:appeal_decided", (appeal) => {
    const outcome = appeal.status === "overturned" ? "accepted: the decision was overturned"
      : "turned down: the decision stands";
    setStatus(p, `Your appeal was ${outcome}. ${appeal.decision_reason || ""}`.trim(), "info");
  });
  p.conn.on("moderation:sanction_lifted", (sanction) => {
    p.state.sanctions.delete(sanction.id);
    const kind = sanction.kind === "ban" ? "ban" : "mute";
    const others = [...p.state.sanctions.values()];
    setNotice(p, others.length ? sanctionText(others[others.length - 1])
      : `Your ${kind} was lifted. You can post again.`);
  });
}
