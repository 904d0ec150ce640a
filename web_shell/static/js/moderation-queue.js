// The moderation queue: held messages, reports and appeals as list items, each with a reason
// field and its decisions. Items are keyed by id and added or removed one by one, so a
// reason being typed survives new arrivals. User content is set with textContent only.

import { OfflineError } from "./connection.js";
import { clear, dateTime, el, untilText } from "./dom.js";

let fieldCounter = 0;

const SUMMARIES = {
  holds: ["Nothing is waiting for review.", "1 held message is waiting for review.",
    (n) => `${n} held messages are waiting for review.`],
  reports: ["No open reports.", "1 open report.", (n) => `${n} open reports.`],
  appeals: ["No open appeals.", "1 open appeal.", (n) => `${n} open appeals.`],
};

/** Show (or refresh the summary for) one queue item of `kind` ("holds", "reports", "appeals"). */
export function upsertItem(m, kind, item) {
  if (kind === "holds") m.holdsSeen.set(item.id, item);
  const nodes = m.nodes[kind];
  if (!nodes.has(item.id)) {
    const node = BUILDERS[kind](m, item);
    nodes.set(item.id, node);
    m.ui[kind].append(node);
  }
  renderSummary(m, kind);
}

/** Take a decided item off the list, keeping keyboard focus in the section. */
export function removeItem(m, kind, id) {
  const node = m.nodes[kind].get(id);
  if (!node) return;
  const hadFocus = node.contains(document.activeElement);
  const next = node.nextElementSibling || node.previousElementSibling;
  node.remove();
  m.nodes[kind].delete(id);
  renderSummary(m, kind);
  if (hadFocus) (next?.querySelector("input") || m.ui[`${kind}Summary`]).focus();
}

/** Replace the queue with the server's (after every (re)connection). */
export function reconcile(m, queue) {
  for (const kind of ["holds", "reports", "appeals"]) {
    const wanted = new Set(queue[kind].map((item) => item.id));
    for (const id of [...m.nodes[kind].keys()]) if (!wanted.has(id)) removeItem(m, kind, id);
    for (const item of queue[kind]) upsertItem(m, kind, item);
    renderSummary(m, kind);
  }
}

function renderSummary(m, kind) {
  const count = m.nodes[kind].size;
  const [none, one, many] = SUMMARIES[kind];
  const summary = m.ui[`${kind}Summary`];
  summary.textContent = count === 0 ? none : count === 1 ? one : many(count);
  summary.setAttribute("tabindex", "-1");
}

// builders -------------------------------------------------------------------------------------

function decisionForm(actions, extra = []) {
  fieldCounter += 1;
  const id = `decision-reason-${fieldCounter}`;
  return el("form", { className: "decision-form", attrs: { novalidate: "" } }, [
    el("div", { className: "field" }, [
      el("label", { text: "Reason", attrs: { for: id } }),
      el("input", { attrs: { id, name: "reason", type: "text", maxlength: "512",
        autocomplete: "off" } }),
    ]),
    el("div", { className: "item-actions" }, [
      ...actions.map(([label, action, quiet]) => el("button", {
        className: quiet ? "button button-quiet" : "button", text: label,
        attrs: { type: "submit", "data-action": action } })),
      ...extra,
    ]),
  ]);
}

function sanctionButton(userId, name) {
  return el("button", { className: "link-button", text: "Sanction author",
    attrs: { type: "button", "data-sanction-user": userId, "aria-label": `Sanction author ${name}` } });
}

function itemShell(kind, id, title, children) {
  const node = el("li", { className: "queue-item" }, [
    el("h3", { className: "item-title", text: title }),
    ...children,
    el("p", { className: "item-error", attrs: { role: "alert" } }),
  ]);
  node.dataset.kind = kind;
  node.dataset.id = id;
  return node;
}

function quote(text, fallback) {
  const node = el("blockquote", { className: "item-text", text: text ?? fallback });
  if (text === null || text === undefined) node.classList.add("item-text-missing");
  return node;
}

function buildHold(m, hold) {
  const labels = (hold.labels || []).join(", ") || "policy";
  return itemShell("hold", hold.id, `${hold.author_name} in #${hold.channel_id}`, [
    el("p", { className: "item-meta", text: `Held ${dateTime(hold.created_at)} · flagged: ${labels}`
      + (hold.thread_id ? " · thread reply" : "") }),
    quote(hold.text, "The content was erased."),
    decisionForm([["Approve", "approve"], ["Reject", "reject", true]],
      [sanctionButton(hold.author_id, hold.author_name)]),
  ]);
}

function buildReport(m, report) {
  const message = report.message;
  const author = message?.author?.name || "a member";
  const node = itemShell("report", report.id, `Report on a message by ${author} in #${report.channel_id}`, [
    el("p", { className: "item-meta", text: `Reported by ${report.reporter_name || report.reporter_id} · ${dateTime(report.created_at)}` }),
    el("p", { className: "item-reason", text: `Reporter's reason: ${report.reason}` }),
    quote(message && !message.deleted ? message.text : null,
      message?.deleted ? "This message was deleted." : `Message ${report.message_id} (open the channel to read it).`),
    decisionForm([["Resolve", "resolve"], ["Delete message", "delete", true]],
      message?.author ? [sanctionButton(message.author.id, author)] : []),
  ]);
  node.dataset.messageId = report.message_id;
  return node;
}

/** What an appeal is about, from its `subject` (or the hold seen earlier in this console). */
function appealSubject(m, appeal) {
  const subject = appeal.subject || (appeal.subject_type === "hold" ? m.holdsSeen.get(appeal.subject_id) : null);
  if (!subject) return null;
  if (appeal.subject_type === "hold") {
    const decided = subject.status && subject.status !== "pending"
      ? ` (${subject.status}${subject.decision_reason ? `: ${subject.decision_reason}` : ""})` : "";
    return [el("p", { className: "item-reason", text: `The held message in #${subject.channel_id}${decided}:` }),
      quote(subject.text, "The content was erased.")];
  }
  const where = subject.channel_id ? ` in #${subject.channel_id}` : "";
  const until = subject.lifted_at ? ", lifted" : (untilText(subject.expires_at) || " until lifted");
  return [el("p", { className: "item-reason",
    text: `The sanction: ${subject.kind}${where}${until}, issued by ${subject.issued_by}. Reason: ${subject.reason}` })];
}

function buildAppeal(m, appeal) {
  const subject = appeal.subject_type === "hold" ? "a held message" : "a sanction";
  return itemShell("appeal", appeal.id, `Appeal by ${appeal.user_name || appeal.user_id} against ${subject}`, [
    el("p", { className: "item-meta", text: `Filed ${dateTime(appeal.created_at)} · ${appeal.subject_type} ${appeal.subject_id}` }),
    el("p", { className: "item-reason", text: "The appeal:" }),
    quote(appeal.text, ""),
    ...(appealSubject(m, appeal) || []),
    decisionForm([["Uphold", "upheld"], ["Overturn", "overturned", true]]),
  ]);
}

const BUILDERS = { holds: buildHold, reports: buildReport, appeals: buildAppeal };

// decisions ------------------------------------------------------------------------------------

/** Emit a moderation event for an item; report a refusal inside the item (and say it). */
export async function act(m, node, event, payload) {
  const error = node.querySelector(".item-error");
  clear(error);
  const buttons = [...node.querySelectorAll("button")];
  for (const button of buttons) button.disabled = true;
  let ack;
  try {
    ack = await m.conn.call(event, payload);
  } catch (failure) {
    ack = { ok: false, error: { message: failure instanceof OfflineError
      ? "you are offline; try again once the connection is back"
      : "the server did not answer; try again" } };
  } finally {
    for (const button of buttons) button.disabled = false;
  }
  if (ack.ok) return ack.data;
  error.textContent = `Refused: ${ack.error.message}`;
  return null;
}

const EVENTS = {
  hold: { approve: "moderation:hold:approve", reject: "moderation:hold:reject" },
  report: { resolve: "moderation:report:resolve", delete: "moderation:message:delete" },
  appeal: { upheld: "moderation:appeal:decide", overturned: "moderation:appeal:decide" },
};
const DONE = {
  approve: "Approved: the message is published.", reject: "Rejected: the message stays unpublished.",
  resolve: "Report resolved.", delete: "Message deleted.",
  upheld: "Appeal upheld.", overturned: "Appeal overturned.",
};
const KIND_LIST = { hold: "holds", report: "reports", appeal: "appeals" };

/** The submit of a decision form (delegated from the three lists). */
export async function onDecision(m, event) {
  const form = event.target.closest("form.decision-form");
  const node = form?.closest("li.queue-item");
  if (!form || !node) return;
  event.preventDefault();
  const action = event.submitter?.dataset.action;
  const reasonField = form.elements.reason;
  const reason = reasonField.value.trim();
  if (!action) return;
  if (!reason) {
    node.querySelector(".item-error").textContent = "Give a reason first: it goes into the audit log.";
    reasonField.focus();
    return;
  }
  const kind = node.dataset.kind;
  const payload = kind === "appeal" ? { id: node.dataset.id, outcome: action, reason }
    : kind === "report" && action === "delete" ? { id: node.dataset.messageId, reason }
      : { id: node.dataset.id, reason };
  const data = await act(m, node, EVENTS[kind][action], payload);
  if (data === null) return;
  m.say(DONE[action]);
  if (kind === "report" && action === "delete") {
    node.querySelector(".item-text").textContent = "This message was deleted.";
    event.submitter.remove();
    reasonField.value = "";
    form.querySelector('button[data-action="resolve"]').focus();
    return;
  }
  removeItem(m, KIND_LIST[kind], node.dataset.id);
}

/** Which queue item an audit entry settles (so every console drops it, not only ours). */
export function settledBy(entry) {
  const kinds = { hold_approve: "holds", hold_reject: "holds", report_resolve: "reports",
    appeal_upheld: "appeals", appeal_overturned: "appeals" };
  const kind = kinds[entry.action];
  return kind ? [kind, entry.target_id] : null;
}
