// Rendering of the support inbox: the conversation list, the open conversation (facts, SLA
// timers, messages). State lives in inbox.js; user content only ever goes through textContent.

import { clear, dateTime, el, shortTime } from "./dom.js";

const STATUS_LABELS = { open: "Open", pending: "Pending", snoozed: "Snoozed", resolved: "Resolved" };
const SLA_TARGETS = [
  ["first_response", "first_response_due_at", "First response"],
  ["next_response", "next_response_due_at", "Next response"],
  ["resolution", "resolution_due_at", "Resolution"],
];
const AUTHOR_KINDS = { member: "member", contact: "contact", agent: "agent", bot: "bot" };

/** Epoch milliseconds of an ISO string or epoch seconds (null when absent or invalid). */
export function toMillis(value) {
  if (value === null || value === undefined || value === "") return null;
  const ms = typeof value === "number" ? (value > 1e12 ? value : value * 1000) : Date.parse(value);
  return Number.isNaN(ms) ? null : ms;
}

function minutes(ms) {
  const total = Math.floor(Math.abs(ms) / 60000); // a countdown: whole minutes left
  if (total < 60) return `${total} min`;
  const hours = Math.floor(total / 60);
  return total % 60 ? `${hours} h ${total % 60} min` : `${hours} h`;
}

/** The conversation's contact as a display name. */
export function contactName(conv) {
  return conv.contact?.name || conv.contact?.identifier || `Contact ${conv.contact?.id ?? "?"}`;
}

/** True if `sla.breached` names the target (as "first_response", its field, or an object). */
function isBreached(sla, key) {
  const breached = Array.isArray(sla.breached) ? sla.breached : [];
  return breached.some((b) => b === key || b === `${key}_due_at` || b?.metric === key
    || b?.kind === key || b?.target === key);
}

/** The SLA targets of a conversation: [{key, label, dueMs, breached, text}] (none without sla). */
export function slaTimers(conv, now = Date.now()) {
  const sla = conv.sla;
  if (!sla || typeof sla !== "object") return [];
  const timers = [];
  for (const [key, field, label] of SLA_TARGETS) {
    const dueMs = toMillis(sla[field]);
    const breached = isBreached(sla, key);
    if (dueMs === null && !breached) continue;
    let text;
    if (dueMs === null) text = `${label}: breached`;
    else if (dueMs >= now) text = `${label} due in ${minutes(dueMs - now)} (${shortTime(new Date(dueMs).toISOString())})`;
    else text = `${label} overdue by ${minutes(now - dueMs)}`;
    if (breached && dueMs !== null) text += " — breached";
    timers.push({ key, label, dueMs, breached: breached || (dueMs !== null && dueMs < now), text });
  }
  return timers;
}

/** A short SLA line for the list: the first breach, else the nearest due target. */
function slaChip(conv) {
  const timers = slaTimers(conv);
  if (!timers.length) return null;
  const breached = timers.find((t) => t.breached);
  if (breached) return el("span", { className: "sla-chip sla-chip-breached", text: `SLA: ${breached.text}` });
  const next = timers.filter((t) => t.dueMs !== null).sort((a, b) => a.dueMs - b.dueMs)[0];
  return next ? el("span", { className: "sla-chip", text: `SLA: ${next.text}` }) : null;
}

export function statusChip(status) {
  return el("span", { className: `status-chip status-chip-${status}`,
    text: STATUS_LABELS[status] || status });
}

function assigneeText(conv) {
  return conv.assignee ? `Assigned to ${conv.assignee.name || `agent ${conv.assignee.id}`}`
    : "Unassigned";
}

/** One entry of the conversation list (a button that opens it). */
export function conversationItem(conv, { current, unread }) {
  const button = el("button", { className: "conversation-item",
    attrs: { type: "button", "data-conversation": String(conv.id) } }, [
    el("span", { className: "conv-top" }, [
      el("span", { text: `${contactName(conv)} · #${conv.id}` }),
      unread ? el("span", { className: "badge", text: `${unread}` },
        [el("span", { className: "visually-hidden", text: " new" })]) : null,
    ]),
    el("span", { className: "conv-meta" }, [statusChip(conv.status),
      document.createTextNode(` ${assigneeText(conv)}`)]),
    conv.labels?.length ? el("span", { className: "conv-meta", text: `Labels: ${conv.labels.join(", ")}` }) : null,
    slaChip(conv),
  ]);
  if (current) button.setAttribute("aria-current", "true");
  return el("li", {}, [button]);
}

/** The facts of the open conversation (a definition list). */
export function renderFacts(dl, conv) {
  const rows = [
    ["Status", STATUS_LABELS[conv.status] || conv.status],
    ["Assignee", conv.assignee ? `${conv.assignee.name} (Chatwoot agent ${conv.assignee.id})` : "Unassigned"],
    ["Team", conv.team ? conv.team.name : "None"],
    ["Labels", conv.labels?.length ? conv.labels.join(", ") : "None"],
    ["Member", conv.member ? conv.member.id : "Not a Gigvora member"],
    ["Last activity", conv.last_activity_at ? dateTime(conv.last_activity_at) : "—"],
  ];
  clear(dl);
  for (const [term, value] of rows) dl.append(el("dt", { text: term }), el("dd", { text: value }));
}

/** The SLA box: shown only when the conversation carries `sla`. */
export function renderSla(box, list, title, conv) {
  const timers = slaTimers(conv);
  box.hidden = !conv.sla;
  if (!conv.sla) return;
  title.textContent = conv.sla.policy ? `SLA: ${conv.sla.policy}` : "SLA";
  list.replaceChildren(...(timers.length ? timers.map((t) => el("li", {
    className: t.breached ? "sla-breached" : "", text: t.text }))
    : [el("li", { text: "No open targets." })]));
}

/** One message of the open conversation. */
export function messageItem(message) {
  const kind = AUTHOR_KINDS[message.author?.kind] || "agent";
  const failed = message.status === "failed";
  return el("li", { className: `msg${message.private ? " msg-private" : ""}`,
    attrs: { "data-id": message.id } }, [
    el("p", { className: "msg-meta" }, [
      el("span", { className: "msg-author", text: message.author?.name || kind }),
      el("span", { className: "msg-time", text: `${kind} · ${shortTime(message.created_at)}` }),
      message.private ? el("span", { className: "msg-tag", text: "Private note" }) : null,
      el("span", { className: `msg-state${failed ? " msg-state-failed" : ""}`,
        text: failed ? `Failed: ${message.error || "not delivered"}` : message.status }),
    ]),
    el("p", { className: "msg-text", text: message.text }),
    ...(message.attachments || []).map((a) => el("p", { className: "msg-attachments",
      text: `Attachment: ${a.file_type || "file"}${a.extension ? ` (.${a.extension})` : ""}` })),
  ]);
}
