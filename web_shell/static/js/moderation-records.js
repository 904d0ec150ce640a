// The records side of the moderation console: sanctions (issue, list, lift), the live activity
// feed and the audit log (filters, older pages, the hash chain's verification), over
// `/api/v1/moderation` with the session's bearer token and the `/moderation` namespace.

import { clear, dateTime, el, untilText } from "./dom.js";
import { act } from "./moderation-queue.js";

const API = "/api/v1/moderation";
const AUDIT_PAGE = 50;
const ACTIVITY_MAX = 50;

// sanctions ------------------------------------------------------------------------------------

/** The sanction form's submit: mute, ban or kick. */
export async function onSanction(m, event) {
  event.preventDefault();
  const form = m.ui.sanctionForm;
  const error = m.ui.sanctionError;
  const values = Object.fromEntries(new FormData(form));
  const payload = { user_id: values.user_id.trim(), kind: values.kind, reason: values.reason.trim() };
  if (values.channel.trim()) payload.channel = values.channel.trim().replace(/^#/, "");
  if (values.duration_s && payload.kind !== "kick") payload.duration_s = Number(values.duration_s);
  clear(error);
  if (!payload.user_id || !payload.reason) {
    error.textContent = "A user ID and a reason are needed.";
    (payload.user_id ? form.elements.reason : form.elements.user_id).focus();
    return;
  }
  if (payload.kind === "kick" && !payload.channel) {
    error.textContent = "A kick needs a channel.";
    form.elements.channel.focus();
    return;
  }
  const sanction = await act(m, form, "moderation:sanction", payload);
  if (!sanction) return;
  m.say(`${payload.kind === "kick" ? "Kicked" : payload.kind === "ban" ? "Banned" : "Muted"} `
    + `${payload.user_id}${untilText(sanction.expires_at)}.`);
  form.elements.reason.value = "";
  await loadSanctions(m);
}

/** Prefill the sanction form from a queue item's "Sanction author". */
export function prefillSanction(m, userId) {
  m.ui.sanctionForm.elements.user_id.value = userId;
  m.ui.sanctionForm.scrollIntoView({ block: "nearest" });
  m.ui.sanctionForm.elements.kind.focus();
}

function sanctionState(sanction) {
  if (sanction.lifted_at) return "lifted";
  if (sanction.kind === "kick") return "done";
  if (sanction.expires_at && sanction.expires_at * 1000 < Date.now()) return "expired";
  return "active";
}

function sanctionItem(sanction) {
  const state = sanctionState(sanction);
  const where = sanction.channel_id ? ` in #${sanction.channel_id}` : "";
  const until = state === "active" ? (untilText(sanction.expires_at) || " until lifted") : "";
  const node = el("li", { className: `queue-item sanction sanction-${state}` }, [
    el("p", { className: "item-title", text: `${sanction.kind} · ${sanction.user_id}${where}${until}` }),
    el("p", { className: "item-meta", text: `${state} · by ${sanction.issued_by} · ${dateTime(sanction.created_at)}` }),
    el("p", { className: "item-reason", text: `Reason: ${sanction.reason}` }),
  ]);
  node.dataset.id = sanction.id;
  if (state === "active") {
    const id = `lift-reason-${sanction.id}`;
    node.append(el("form", { className: "decision-form lift-form", attrs: { novalidate: "" } }, [
      el("div", { className: "field" }, [
        el("label", { text: "Reason for lifting", attrs: { for: id } }),
        el("input", { attrs: { id, name: "reason", type: "text", maxlength: "512", autocomplete: "off" } }),
      ]),
      el("div", { className: "item-actions" }, [
        el("button", { className: "button button-quiet", text: "Lift",
          attrs: { type: "submit", "aria-label": `Lift the ${sanction.kind} of ${sanction.user_id}` } }),
      ]),
    ]));
  }
  node.append(el("p", { className: "item-error", attrs: { role: "alert" } }));
  return node;
}

/** Show `sanctions`, reusing the items whose state did not change (a reason being typed for
 * "Lift" survives the refresh that every sanction action triggers, and so does focus). */
function showSanctions(m, sanctions) {
  const list = m.ui.sanctions;
  const known = new Map([...list.children].map((node) => [node.dataset.key, node]));
  const nodes = sanctions.map((sanction) => {
    const key = `${sanction.id}:${sanctionState(sanction)}`;
    const node = known.get(key) || sanctionItem(sanction);
    node.dataset.key = key;
    return node;
  });
  if (nodes.length === list.children.length && nodes.every((node, i) => list.children[i] === node)) {
    return;
  }
  const focused = list.contains(document.activeElement) ? document.activeElement : null;
  list.replaceChildren(...nodes);
  if (focused?.isConnected) focused.focus();
}

/** The latest sanctions (`GET /api/v1/moderation/sanctions`). */
export async function loadSanctions(m) {
  m.sanctionsRequest = (m.sanctionsRequest || 0) + 1;
  const request = m.sanctionsRequest; // an older answer never overwrites a newer one
  try {
    const body = await m.tokens.json("GET", `${API}/sanctions`);
    if (request !== m.sanctionsRequest) return;
    const shown = body.sanctions.slice(0, 20);
    showSanctions(m, shown);
    const active = body.sanctions.filter((s) => sanctionState(s) === "active").length;
    m.ui.sanctionsSummary.textContent = body.sanctions.length
      ? `${active} active; the latest ${shown.length} are listed.` : "No sanctions yet.";
  } catch (error) {
    m.ui.sanctionsSummary.textContent = `Could not load the sanctions: ${error.message}`;
  }
}

/** The submit of a "Lift" form (delegated). */
export async function onLift(m, event) {
  const form = event.target.closest("form.lift-form");
  const node = form?.closest("li");
  if (!form || !node) return;
  event.preventDefault();
  const reason = form.elements.reason.value.trim();
  if (!reason) {
    node.querySelector(".item-error").textContent = "Give a reason first: it goes into the audit log.";
    form.elements.reason.focus();
    return;
  }
  if (await act(m, node, "moderation:sanction:lift", { id: node.dataset.id, reason })) {
    m.say("Sanction lifted.");
    await loadSanctions(m);
    m.ui.sanctionsSummary.focus();
  }
}

// live activity --------------------------------------------------------------------------------

function describe(entry) {
  const target = `${entry.target_type} ${entry.target_id}`;
  return `${entry.actor_id} · ${entry.action} · ${target}${entry.reason ? ` — ${entry.reason}` : ""}`;
}

/** Prepend an audit entry to the live feed (newest first, capped). */
export function showActivity(m, entry) {
  const item = el("li", { className: "activity-item" }, [
    el("time", { className: "msg-time", text: dateTime(entry.at), attrs: { datetime: String(entry.at) } }),
    el("span", { text: ` ${describe(entry)}` }),
  ]);
  m.ui.activity.prepend(item);
  m.ui.activityEmpty.hidden = true;
  while (m.ui.activity.children.length > ACTIVITY_MAX) m.ui.activity.lastElementChild.remove();
}

// audit log ------------------------------------------------------------------------------------

function auditRow(entry) {
  const cell = (text, className) => el("td", { text, className });
  return el("tr", {}, [
    cell(String(entry.seq), "num"), cell(dateTime(entry.at), "nowrap"), cell(entry.actor_id),
    cell(entry.action), cell(`${entry.target_type} ${entry.target_id}`, "wrap"),
    cell(entry.reason || "—", "wrap"),
  ]);
}

function auditQuery(m, beforeSeq) {
  const query = new URLSearchParams({ limit: String(AUDIT_PAGE) });
  for (const [name, value] of Object.entries(m.audit.filters)) if (value) query.set(name, value);
  if (beforeSeq !== undefined) query.set("before_seq", String(beforeSeq));
  return `${API}/audit?${query}`;
}

/** Load the newest page of the audit log (or, with `older`, the page before the last row). */
export async function loadAudit(m, { older = false } = {}) {
  const { ui, audit } = m;
  audit.request = (audit.request || 0) + 1;
  const request = audit.request; // only the latest request may fill the table
  try {
    const body = await m.tokens.json("GET", auditQuery(m, older ? audit.oldest : undefined));
    if (request !== audit.request) return;
    const rows = body.entries.map(auditRow);
    if (older) ui.auditRows.append(...rows);
    else ui.auditRows.replaceChildren(...rows);
    if (body.entries.length) audit.oldest = body.entries[body.entries.length - 1].seq;
    else if (!older) audit.oldest = null;
    ui.auditOlder.hidden = body.entries.length < AUDIT_PAGE;
    const shown = ui.auditRows.children.length;
    const filtered = Object.values(audit.filters).some(Boolean);
    ui.auditSummary.textContent = shown === 0
      ? (filtered ? "No entries match these filters." : "The audit log is empty.")
      : `${shown} ${shown === 1 ? "entry" : "entries"} shown${filtered ? " (filtered)" : ""}.`;
  } catch (error) {
    ui.auditSummary.textContent = `Could not load the audit log: ${error.message}`;
  }
}

/** Recompute the chain on the server and show the outcome. */
export async function verifyAudit(m) {
  const status = m.ui.auditVerify;
  m.verifyRequest = (m.verifyRequest || 0) + 1;
  const request = m.verifyRequest;
  try {
    const result = await m.tokens.json("GET", `${API}/audit/verify`);
    if (request !== m.verifyRequest) return;
    status.classList.toggle("verify-ok", result.ok);
    status.classList.toggle("verify-bad", !result.ok);
    status.textContent = result.ok
      ? `Audit chain verified: ${result.entries} ${result.entries === 1 ? "entry" : "entries"}`
        + (result.head ? `, head ${result.head.slice(0, 12)}…` : ".")
      : `Audit chain broken at entry ${result.first_bad_seq}: ${result.problem}.`;
  } catch (error) {
    status.classList.remove("verify-ok");
    status.classList.add("verify-bad");
    status.textContent = `Could not verify the audit chain: ${error.message}`;
  }
}

/** Apply the filter form. */
export function onFilter(m, event) {
  event.preventDefault();
  const values = Object.fromEntries(new FormData(m.ui.auditFilters));
  m.audit.filters = { actor: values.actor.trim(), action: values.action, target: values.target.trim() };
  loadAudit(m);
}

/** Refresh the newest audit page and the verification soon (coalescing bursts of actions). */
export function auditChanged(m) {
  clearTimeout(m.audit.timer);
  m.audit.timer = setTimeout(() => {
    loadAudit(m);
    verifyAudit(m);
  }, 300);
}
