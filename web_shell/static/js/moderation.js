// The moderation console's entry module: connects to the `/moderation` namespace, loads the
// queue on every (re)connection, applies the live feed and wires the forms. The queue lives in
// moderation-queue.js; sanctions, activity and the audit log in moderation-records.js.

import { Connection } from "./connection.js";
import {
  onDecision, reconcile, removeItem, settledBy, upsertItem,
} from "./moderation-queue.js";
import {
  auditChanged, loadAudit, loadSanctions, onFilter, onLift, onSanction, prefillSanction,
  showActivity, verifyAudit,
} from "./moderation-records.js";

const $ = (id) => document.getElementById(id);
const SANCTION_ACTIONS = new Set(["mute", "ban", "kick", "sanction_lift"]);

const m = {
  ui: {
    banner: $("connection-banner"), status: $("console-status"),
    holds: $("holds"), holdsSummary: $("holds-summary"),
    reports: $("reports"), reportsSummary: $("reports-summary"),
    appeals: $("appeals"), appealsSummary: $("appeals-summary"),
    sanctionForm: $("sanction-form"), sanctionError: $("sanction-error"),
    sanctions: $("sanctions"), sanctionsSummary: $("sanctions-summary"),
    activity: $("activity"), activityEmpty: $("activity-empty"),
    auditVerify: $("audit-verify"), auditVerifyButton: $("audit-verify-button"),
    auditFilters: $("audit-filters"), auditRows: $("audit-rows"),
    auditSummary: $("audit-summary"), auditOlder: $("audit-older"),
  },
  nodes: { holds: new Map(), reports: new Map(), appeals: new Map() },
  holdsSeen: new Map(),  // hold id → hold (to show the text an appeal is about)
  audit: { filters: {}, oldest: null, timer: null },
};

/** A short confirmation in the console's status line (announced politely). */
m.say = (text) => {
  m.ui.status.textContent = text;
  clearTimeout(m.sayTimer);
  m.sayTimer = setTimeout(() => { m.ui.status.textContent = ""; }, 10000);
};

m.conn = new Connection({
  onOnline: () => {
    m.ui.banner.textContent = "";
    refreshQueue();
    loadSanctions(m);
    auditChanged(m);
  },
  onOffline: () => {
    m.ui.banner.textContent = "You are offline. Reconnecting… The queue is refreshed once the connection is back.";
  },
  onSignedOut: () => window.location.assign("/login?next=/moderation"),
}, { namespace: "/moderation" });
m.tokens = m.conn.tokens;

async function refreshQueue() {
  try {
    const ack = await m.conn.call("moderation:queue");
    if (ack.ok) reconcile(m, ack.data);
    else m.say(`Could not load the queue: ${ack.error.message}`);
  } catch (error) {
    console.warn("queue", error);
  }
}

function onAction(entry) {
  showActivity(m, entry);
  const settled = settledBy(entry);
  if (settled) removeItem(m, ...settled);
  if (entry.action === "message_delete") {
    for (const node of m.nodes.reports.values()) {
      if (node.dataset.messageId === entry.target_id) {
        node.querySelector(".item-text").textContent = "This message was deleted.";
      }
    }
  }
  if (SANCTION_ACTIONS.has(entry.action)) loadSanctions(m);
  auditChanged(m);
}

function wire() {
  const { ui, conn } = m;
  conn.on("moderation:held", (hold) => upsertItem(m, "holds", hold));
  conn.on("moderation:report", (report) => upsertItem(m, "reports", report));
  conn.on("moderation:appeal", (appeal) => upsertItem(m, "appeals", appeal));
  conn.on("moderation:action", onAction);
  for (const list of [ui.holds, ui.reports, ui.appeals]) {
    list.addEventListener("submit", (event) => onDecision(m, event));
    list.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-sanction-user]");
      if (button) prefillSanction(m, button.dataset.sanctionUser);
    });
  }
  ui.sanctionForm.addEventListener("submit", (event) => onSanction(m, event));
  ui.sanctions.addEventListener("submit", (event) => onLift(m, event));
  ui.auditFilters.addEventListener("submit", (event) => onFilter(m, event));
  ui.auditFilters.addEventListener("reset", () => {
    m.audit.filters = {};
    setTimeout(() => loadAudit(m), 0);
  });
  ui.auditOlder.addEventListener("click", () => loadAudit(m, { older: true }));
  ui.auditVerifyButton.addEventListener("click", () => verifyAudit(m));
}

wire();
m.conn.start();

