// The agents' support inbox: connects to the `/inbox` namespace, lists conversations after every
// (re)connection (`inbox:list`), keeps them live (`inbox:conversation`, `inbox:message`,
// `inbox:message:updated`, `inbox:typing`, `inbox:sla_breach`) and performs the agent's actions
// (`inbox:reply` for replies and private notes, `inbox:assign`, `inbox:status`, `inbox:labels`;
// the agents and labels to pick from come from `inbox:agents`). Rendering is in inbox-view.js
// and inbox-pickers.js.

import { Connection } from "./connection.js";
import { el } from "./dom.js";
import { renderAssignees, renderLabels, withLabel } from "./inbox-pickers.js";
import { agentTyping } from "./inbox-typing.js";
import {
  contactName, conversationItem, messageItem, renderFacts, renderSla,
} from "./inbox-view.js";

const $ = (id) => document.getElementById(id);
const TICK_MS = 30000;  // SLA countdowns refresh this often
const AGENTS_MS = 300000;  // the agents and labels are re-read this often (and on reconnect)
const STACKED = window.matchMedia("(max-width: 899.98px)"); // list above the conversation
const ui = {
  banner: $("connection-banner"), status: $("inbox-status"), alerts: $("sla-alerts"),
  filters: $("inbox-filters"), filterStatus: $("filter-status"), filterAssignee: $("filter-assignee"),
  sync: $("inbox-sync"), summary: $("conversations-summary"), list: $("conversations"),
  title: $("conversation-title"), empty: $("conversation-empty"), body: $("conversation-body"),
  facts: $("conversation-facts"), sla: $("sla"), slaTitle: $("sla-title"), slaTimers: $("sla-timers"),
  log: $("conversation-log"), older: $("conversation-older"), messages: $("conversation-messages"),
  note: $("conversation-note"), typing: $("conversation-typing"), replyForm: $("reply-form"),
  replyText: $("reply-text"), replyStatus: $("reply-status"), assignForm: $("assign-form"),
  assignAgent: $("assign-agent"), statusForm: $("status-form"), statusSelect: $("status-select"),
  resolve: $("resolve"), actionStatus: $("action-status"), agentsNote: $("agents-note"),
  labelsForm: $("labels-form"), labelChips: $("label-chips"), labelInput: $("label-input"),
  knownLabels: $("known-labels"),
};
const s = {
  conversations: new Map(),  // id → conversation
  unread: new Map(),         // id → new messages since last opened
  openId: null,
  messages: new Map(),       // id → message of the open conversation
  nodes: new Map(),          // id → <li>
  hasMore: false,
  typingTimer: null,
  relistTimer: null,
  agents: [],                // from `inbox:agents`: [{id, name, email?, availability_status?}]
  knownLabels: [],           // the account's labels
  assignPicked: false,       // the agent chose in "Assign to" and has not assigned yet
};

function say(text) {
  ui.status.textContent = text;
  clearTimeout(s.sayTimer);
  s.sayTimer = setTimeout(() => { ui.status.textContent = ""; }, 10000);
}

const conn = new Connection({
  onOnline: () => {
    ui.banner.textContent = "";
    loadList();
    loadAgents();
    if (s.openId !== null) loadMessages(s.openId);
  },
  onOffline: () => {
    ui.banner.textContent = "You are offline. Reconnecting… The inbox is refreshed once the connection is back.";
  },
  onSignedOut: () => window.location.assign("/login?next=/inbox"),
}, { namespace: "/inbox" });

const typing = agentTyping(call, () => s.openId);

async function call(event, payload) {
  try {
    return await conn.call(event, payload);
  } catch (error) {
    return { ok: false, error: { code: "offline", message: "not connected; try again in a moment" } };
  }
}

// the list ----------------------------------------------------------------------------------
function matchesFilters(conv) {
  const status = ui.filterStatus.value;
  const assignee = ui.filterAssignee.value;
  if (status && conv.status !== status) return false;
  if (assignee === "none") return !conv.assignee;
  return !assignee || String(conv.assignee?.id) === assignee;
}

function renderAssigneeOptions() {
  const known = new Map();
  for (const conv of s.conversations.values()) {
    if (conv.assignee) known.set(String(conv.assignee.id), conv.assignee.name || `Agent ${conv.assignee.id}`);
  }
  const chosen = ui.filterAssignee.value;
  const options = [el("option", { text: "Anyone", attrs: { value: "" } }),
    el("option", { text: "Unassigned", attrs: { value: "none" } }),
    ...[...known].sort((a, b) => a[1].localeCompare(b[1]))
      .map(([id, name]) => el("option", { text: name, attrs: { value: id } }))];
  ui.filterAssignee.replaceChildren(...options);
  ui.filterAssignee.value = [...ui.filterAssignee.options].some((o) => o.value === chosen) ? chosen : "";
}

function renderList() {
  renderAssigneeOptions();
  const shown = [...s.conversations.values()].filter(matchesFilters)
    .sort((a, b) => (b.last_activity_at || 0) - (a.last_activity_at || 0) || b.id - a.id);
  const focused = document.activeElement?.dataset?.conversation;
  ui.list.replaceChildren(...shown.map((conv) => conversationItem(conv, {
    current: conv.id === s.openId, unread: s.unread.get(conv.id) || 0 })));
  if (focused) ui.list.querySelector(`[data-conversation="${CSS.escape(focused)}"]`)?.focus();
  ui.summary.textContent = shown.length === 1 ? "1 conversation"
    : `${shown.length || "No"} conversations`;
}

async function loadList(refresh = false) {
  const payload = { limit: 200, ...(refresh ? { refresh: true } : {}) };
  const ack = await call("inbox:list", payload);
  if (!ack.ok) {
    say(`Could not load conversations: ${ack.error.message}`);
    return;
  }
  for (const conv of ack.data.conversations) s.conversations.set(conv.id, conv);
  renderList();
  if (s.openId !== null && s.conversations.has(s.openId)) renderOpen();
  if (refresh) say("Synced with Chatwoot.");
}

function relistSoon(delayMs = 300) {
  clearTimeout(s.relistTimer);
  s.relistTimer = setTimeout(() => loadList(), delayMs);
}

/** Replies and members' messages start or meet SLA targets, and no conversation event says
 * so: re-read the list (debounced) when such a message touches a conversation with an SLA. */
function slaMayHaveMoved(message) {
  if (!message.private && s.conversations.get(message.conversation_id)?.sla) relistSoon(1000);
}

async function loadAgents() {
  const ack = await call("inbox:agents", {});
  if (!ack.ok) {
    ui.agentsNote.textContent = `The list of agents is unavailable (${ack.error.message}); try again later.`;
  } else {
    s.agents = ack.data.agents;
    s.knownLabels = ack.data.labels;
    ui.agentsNote.textContent = ack.data.stale
      ? "Chatwoot is unreachable: the list of agents may be out of date." : "";
  }
  if (s.openId !== null && s.conversations.has(s.openId)) renderPickers(s.conversations.get(s.openId));
}

// the open conversation ----------------------------------------------------------------------
function renderPickers(conv) {
  renderAssignees(ui.assignAgent, s.agents, conv, s.assignPicked);
  renderLabels(ui.labelChips, ui.knownLabels, conv, s.knownLabels);
}

function renderOpen() {
  const conv = s.conversations.get(s.openId);
  if (!conv) return;
  ui.title.textContent = `${contactName(conv)} · conversation #${conv.id}`;
  ui.empty.hidden = true;
  ui.body.hidden = false;
  renderFacts(ui.facts, conv);
  renderSla(ui.sla, ui.slaTimers, ui.slaTitle, conv);
  ui.statusSelect.value = conv.status;
  ui.resolve.disabled = conv.status === "resolved";
  renderPickers(conv);
}

function upsertMessage(message) {
  if (message.conversation_id !== s.openId) return;
  s.messages.set(message.id, message);
  const node = messageItem(message);
  const old = s.nodes.get(message.id);
  s.nodes.set(message.id, node);
  if (old) {
    old.replaceWith(node);
    return;
  }
  const next = [...s.messages.values()]
    .filter((m) => m.seq > message.seq && s.nodes.get(m.id)?.isConnected)
    .sort((a, b) => a.seq - b.seq)[0];
  if (next) ui.messages.insertBefore(node, s.nodes.get(next.id));
  else ui.messages.append(node);
  ui.note.textContent = "";
}

async function loadMessages(id, beforeSeq) {
  const payload = { conversation_id: id, limit: 50,
    ...(beforeSeq === undefined ? {} : { before_seq: beforeSeq }) };
  const ack = await call("inbox:messages", payload);
  if (id !== s.openId) return;
  if (!ack.ok) {
    ui.note.textContent = `Could not load messages: ${ack.error.message}`;
    return;
  }
  for (const message of ack.data.messages) upsertMessage(message);
  if (beforeSeq !== undefined || !s.loaded) s.hasMore = ack.data.has_more;
  s.loaded = true;
  ui.older.hidden = !s.hasMore;
  ui.note.textContent = s.messages.size ? "" : "No messages yet.";
  if (beforeSeq === undefined) ui.log.scrollTop = ui.log.scrollHeight;
}

function openConversation(id) {
  if (s.openId !== id) {
    s.openId = id;
    s.messages.clear();
    s.nodes.clear();
    s.loaded = false;
    ui.messages.replaceChildren();
    ui.typing.textContent = "";
    ui.replyStatus.textContent = "";
    ui.actionStatus.textContent = "";
    ui.labelInput.value = "";
    s.assignPicked = false;
  }
  s.unread.delete(id);
  renderList();
  renderOpen();
  loadMessages(id);
  if (STACKED.matches) ui.title.scrollIntoView({ block: "start" }); // the list is above it
}

// live events ---------------------------------------------------------------------------------
function onConversation(conv) {
  const { event, ...rest } = conv;
  s.conversations.set(rest.id, rest);
  renderList();
  if (rest.id === s.openId) renderOpen();
}

function onMessage(message) {
  slaMayHaveMoved(message);
  const conv = s.conversations.get(message.conversation_id);
  if (!conv) {
    relistSoon();
  } else {
    conv.last_activity_at = Math.max(conv.last_activity_at || 0, Math.floor(Date.now() / 1000));
  }
  if (message.conversation_id === s.openId) {
    upsertMessage(message);
    ui.log.scrollTop = ui.log.scrollHeight;
  } else if (!s.messages.has(message.id)) {
    s.unread.set(message.conversation_id, (s.unread.get(message.conversation_id) || 0) + 1);
  }
  renderList();
}

function onTyping(event) {
  if (event.conversation_id !== s.openId) return;
  if (typing.active() === event.conversation_id) return; // our own typing, echoed by Chatwoot
  clearTimeout(s.typingTimer);
  const who = event.user?.name || "Someone";
  ui.typing.textContent = event.typing
    ? `${who} is typing${event.private ? " a private note" : ""}…` : "";
  if (event.typing) s.typingTimer = setTimeout(() => { ui.typing.textContent = ""; }, 15000);
}

function onSlaBreach(event) {
  const id = event.conversation_id;
  const conv = s.conversations.get(id);
  const target = event.metric || event.kind || event.target || "SLA";
  if (conv) {
    if (event.sla && typeof event.sla === "object") conv.sla = event.sla;
    else {
      conv.sla = conv.sla || {};
      conv.sla.breached = [...new Set([...(conv.sla.breached || []), target])];
    }
  }
  const name = conv ? contactName(conv) : "a member";
  if (ui.alerts) { // supervisors only (the server sends inbox:sla_breach to them alone)
    ui.alerts.prepend(el("li", { text: `SLA breached: ${String(target).replaceAll("_", " ")} on conversation #${id} with ${name}` }));
    while (ui.alerts.children.length > 5) ui.alerts.lastElementChild.remove();
  }
  renderList();
  if (id === s.openId) renderOpen();
}

// actions -------------------------------------------------------------------------------------
async function onReply(event) {
  event.preventDefault();
  const text = ui.replyText.value.trim();
  if (!text || s.openId === null) return;
  const isNote = event.submitter?.value === "note";
  typing.stop();
  ui.replyStatus.textContent = "";
  const ack = await call("inbox:reply", { conversation_id: s.openId, text, private: isNote,
    client_id: crypto.randomUUID() });
  if (!ack.ok) {
    ui.replyStatus.textContent = `Not sent: ${ack.error.message}`;
    return;
  }
  ui.replyText.value = "";
  onMessage(ack.data);
  say(isNote ? "Private note added." : "Reply sent.");
}

/** Perform an action on the open conversation; true when Chatwoot took it. */
async function conversationAction(event, payload, done) {
  if (s.openId === null) return false;
  ui.actionStatus.textContent = "";
  const ack = await call(event, { conversation_id: s.openId, ...payload });
  if (!ack.ok) {
    ui.actionStatus.textContent = `Refused: ${ack.error.message}`;
    return false;
  }
  onConversation(ack.data);
  say(done);
  return true;
}

async function onAssign(event) {
  event.preventDefault();
  const conv = s.conversations.get(s.openId);
  const value = ui.assignAgent.value;
  if (value.startsWith("bot:") || value === String(conv?.assignee?.id ?? "")) {
    s.assignPicked = false;
    say(conv?.assignee ? `Already assigned to ${conv.assignee.name}.` : "Already unassigned.");
    return;
  }
  const id = value === "" ? null : Number.parseInt(value, 10);
  const name = ui.assignAgent.selectedOptions[0]?.textContent || "";
  s.assignPicked = false;
  await conversationAction("inbox:assign", { assignee_id: id },
    id === null ? "Unassigned." : `Assigned to ${name}.`);
}

async function onAddLabel(event) {
  event.preventDefault();
  const conv = s.conversations.get(s.openId);
  if (!conv) return;
  const next = withLabel(conv.labels || [], ui.labelInput.value);
  if (next.error) {
    ui.actionStatus.textContent = next.error;
    ui.labelInput.focus();
    return;
  }
  if (await conversationAction("inbox:labels", { labels: next.labels }, `Label ${next.label} added.`)) {
    ui.labelInput.value = "";
  }
}

async function onRemoveLabel(event) {
  const button = event.target.closest("button[data-label]");
  const conv = s.conversations.get(s.openId);
  if (!button || !conv) return;
  const label = button.dataset.label;
  const index = [...ui.labelChips.querySelectorAll("button[data-label]")].indexOf(button);
  const labels = (conv.labels || []).filter((l) => l !== label);
  if (!await conversationAction("inbox:labels", { labels }, `Label ${label} removed.`)) return;
  const buttons = ui.labelChips.querySelectorAll("button[data-label]"); // focus stays in the list
  (buttons[Math.min(index, buttons.length - 1)] || ui.labelInput).focus();
}

function wire() {
  conn.on("inbox:conversation", onConversation);
  conn.on("inbox:message", onMessage);
  conn.on("inbox:message:updated", (message) => {
    slaMayHaveMoved(message);
    upsertMessage(message);
  });
  conn.on("inbox:typing", onTyping);
  conn.on("inbox:sla_breach", onSlaBreach);
  ui.list.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-conversation]");
    if (button) openConversation(Number(button.dataset.conversation));
  });
  ui.filters.addEventListener("change", renderList);
  ui.filters.addEventListener("submit", (event) => event.preventDefault());
  ui.sync.addEventListener("click", () => loadList(true));
  ui.older.addEventListener("click", () => {
    const seqs = [...s.messages.values()].map((m) => m.seq);
    if (seqs.length) loadMessages(s.openId, Math.min(...seqs));
  });
  ui.replyForm.addEventListener("submit", onReply);
  ui.replyText.addEventListener("input", () => typing.input());
  ui.replyText.addEventListener("blur", () => typing.stop());
  ui.assignForm.addEventListener("submit", onAssign);
  ui.assignAgent.addEventListener("change", () => { s.assignPicked = true; });
  ui.labelsForm.addEventListener("submit", onAddLabel);
  ui.labelChips.addEventListener("click", onRemoveLabel);
  setInterval(() => { if (conn.connected) loadAgents(); }, AGENTS_MS);
  ui.statusForm.addEventListener("submit", (event) => {
    event.preventDefault();
    conversationAction("inbox:status", { status: ui.statusSelect.value }, "Status changed.");
  });
  ui.resolve.addEventListener("click", () => {
    conversationAction("inbox:status", { status: "resolved" }, "Conversation resolved.");
  });
  setInterval(() => { // SLA countdowns
    if ([...s.conversations.values()].some((c) => c.sla)) {
      renderList();
      if (s.openId !== null) renderOpen();
    }
  }, TICK_MS);
}

wire();
conn.start();
