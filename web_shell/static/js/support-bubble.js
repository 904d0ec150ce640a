// The member's support bubble: talks to the Chatwoot bridge over the member's socket on "/"
// (`support:send`, `support:history`; live `support:message`, `support:message:updated`,
// `support:typing`). On a page that already holds that socket (the community page) the bubble
// shares it (`sharedConnection`); elsewhere it opens the page's one `/` connection itself. It
// attaches when first opened, and at once on later pages once the member has written to
// support; after every (re)connection the history is fetched again and merged by id, and
// messages written while offline are sent with their `client_id` (no duplicates).

import { OfflineError, sharedConnection } from "./connection.js";
import { el, shortTime } from "./dom.js";

const USED_KEY = "gv-support-used";
// The ack of `support:send` means stored and queued: delivery is the server's job from there.
const STATUS_TEXT = { queued: "Sent", sent: "Sent", delivered: "Delivered", read: "Read",
  failed: "Not delivered" };
const $ = (id) => document.getElementById(id);

const ui = {
  root: $("support"), toggle: $("support-toggle"), unread: $("support-unread"),
  announce: $("support-announce"), panel: $("support-panel"), close: $("support-close"),
  banner: $("support-banner"), log: $("support-log"), older: $("support-older"),
  list: $("support-messages"), pendingList: $("support-pending"), note: $("support-note"),
  typing: $("support-typing"), form: $("support-form"), text: $("support-text"),
  status: $("support-status"),
};
const s = {
  conn: null,
  messages: new Map(),  // id → support message
  nodes: new Map(),     // id → <li>
  pending: new Map(),   // client_id → {clientId, text, state, error}
  unread: 0,
  hasMore: false,
  loaded: false,       // the latest page was fetched once (later fetches keep hasMore)
  typingTimer: null,
  flushTimer: null,
};

function rememberUse() {
  try { localStorage.setItem(USED_KEY, "1"); } catch { /* storage off: connect on open only */ }
}

function usedBefore() {
  try { return localStorage.getItem(USED_KEY) === "1"; } catch { return false; }
}

function isOpen() {
  return !ui.panel.hidden;
}

function attachmentLinks(message) {
  const links = (message.attachments || [])
    .filter((a) => typeof a.data_url === "string" && /^https?:\/\//.test(a.data_url))
    .map((a) => el("a", { text: `Attachment (${a.file_type || "file"})`,
      attrs: { href: a.data_url, rel: "noopener noreferrer", target: "_blank" } }));
  return links.length ? el("p", { className: "msg-attachments" }, links) : null;
}

function messageNode(message) {
  const mine = message.from === "member";
  const author = mine ? "You" : (message.author?.name || "Support");
  const state = mine || message.status === "failed" ? STATUS_TEXT[message.status] || "" : "";
  return el("li", { className: `msg support-msg support-from-${mine ? "member" : "agent"}`,
    attrs: { "data-id": message.id } }, [
    el("p", { className: "msg-meta" }, [
      el("span", { className: "msg-author", text: author }),
      el("span", { className: "msg-time", text: shortTime(message.created_at) }),
      state && el("span", { className: `msg-state${message.status === "failed" ? " msg-state-failed" : ""}`,
        text: state }),
    ]),
    el("p", { className: "msg-text", text: message.text }),
    attachmentLinks(message),
  ]);
}

/** Add or replace one stored message, keeping the list in `seq` order. */
function upsert(message) {
  if (!message || !message.id) return;
  if (message.client_id) s.pending.delete(message.client_id);
  s.messages.set(message.id, message);
  const node = messageNode(message);
  const old = s.nodes.get(message.id);
  s.nodes.set(message.id, node);
  if (old) {
    old.replaceWith(node);
  } else {
    const next = [...s.messages.values()]
      .filter((m) => m.seq > message.seq && s.nodes.get(m.id)?.isConnected)
      .sort((a, b) => a.seq - b.seq)[0];
    if (next) ui.list.insertBefore(node, s.nodes.get(next.id));
    else ui.list.append(node);
  }
}

function renderPending() {
  ui.pendingList.replaceChildren(...[...s.pending.values()].map((p) => el("li", {
    className: "msg support-msg support-from-member msg-pending" }, [
    el("p", { className: "msg-meta" }, [
      el("span", { className: "msg-author", text: "You" }),
      el("span", { className: `msg-state${p.state === "failed" ? " msg-state-failed" : ""}`,
        text: p.state === "failed" ? `Not sent: ${p.error}` : "Waiting to send…" }),
    ]),
    el("p", { className: "msg-text", text: p.text }),
  ])));
  renderNote();
}

function renderNote() {
  ui.note.textContent = s.messages.size || s.pending.size ? "" : "No messages yet.";
  ui.older.hidden = !s.hasMore;
}

function scrollToEnd() {
  ui.log.scrollTop = ui.log.scrollHeight;
}

function setUnread(count) {
  s.unread = count;
  ui.unread.hidden = count === 0;
  ui.unread.textContent = count ? `${count}` : "";
  if (count) ui.unread.append(el("span", { className: "visually-hidden", text: " new" }));
}

async function loadHistory(beforeSeq) {
  const payload = beforeSeq === undefined ? { limit: 50 } : { limit: 50, before_seq: beforeSeq };
  try {
    const ack = await s.conn.call("support:history", payload);
    if (!ack.ok) {
      ui.status.textContent = `Could not load the conversation: ${ack.error.message}`;
      return;
    }
    for (const message of ack.data.messages) upsert(message);
    if (beforeSeq !== undefined || !s.loaded) s.hasMore = ack.data.has_more;
    s.loaded = true;
    renderPending();
    if (beforeSeq === undefined) scrollToEnd();
  } catch (error) {
    console.warn("support history", error);
  }
}

async function flush() {
  clearTimeout(s.flushTimer);
  for (const item of s.pending.values()) {
    if (item.state !== "waiting" || !s.conn?.connected) continue;
    item.state = "sending";
    try {
      const ack = await s.conn.call("support:send", { text: item.text, client_id: item.clientId });
      if (ack.ok) {
        upsert(ack.data);
        scrollToEnd();
      } else if (ack.error.retry_after_ms || ack.error.code === "unavailable") {
        item.state = "waiting";
        s.flushTimer = setTimeout(flush, ack.error.retry_after_ms || 2000);
        return;
      } else {
        Object.assign(item, { state: "failed", error: ack.error.message });
      }
    } catch (error) {
      item.state = "waiting"; // offline or no ack: sent again (same client_id) when back
      if (!(error instanceof OfflineError)) s.flushTimer = setTimeout(flush, 2000);
      renderPending();
      return;
    }
    renderPending();
  }
}

function onReply(message) {
  upsert(message);
  renderNote();
  showTyping(false);
  if (isOpen()) {
    scrollToEnd();
  } else {
    setUnread(s.unread + 1);
    ui.announce.textContent = `New reply from support: ${message.text}`;
  }
}

function showTyping(typing) {
  clearTimeout(s.typingTimer);
  ui.typing.textContent = typing ? "Support is typing…" : "";
  if (typing) s.typingTimer = setTimeout(() => showTyping(false), 15000);
}

function connect() {
  if (s.conn) return;
  s.conn = sharedConnection({
    onOnline: () => {
      ui.banner.textContent = "";
      loadHistory().then(flush);
    },
    onOffline: () => {
      if (s.conn?.connected) return; // the browser says offline, but the socket still works
      ui.banner.textContent = "Offline. Reconnecting… Your messages are sent once the connection is back.";
    },
    onSignedOut: () => window.location.assign("/login"),
  });
  s.conn.on("support:message", onReply);
  s.conn.on("support:message:updated", (message) => { upsert(message); renderNote(); });
  s.conn.on("support:typing", (event) => showTyping(Boolean(event?.typing)));
  s.conn.start();
}

function open() {
  ui.panel.hidden = false;
  ui.toggle.setAttribute("aria-expanded", "true");
  ui.root.classList.add("support-open");
  setUnread(0);
  ui.announce.textContent = "";
  connect();
  scrollToEnd();
  ui.text.focus();
}

function close() {
  ui.panel.hidden = true;
  ui.toggle.setAttribute("aria-expanded", "false");
  ui.root.classList.remove("support-open");
  ui.toggle.focus();
}

function onSubmit(event) {
  event.preventDefault();
  const text = ui.text.value.trim();
  if (!text) return;
  const max = Number(ui.root.dataset.maxChars) || Infinity;
  if (text.length > max) {
    ui.status.textContent = `Please keep it under ${max} characters.`;
    return;
  }
  ui.status.textContent = "";
  const clientId = crypto.randomUUID();
  s.pending.set(clientId, { clientId, text, state: "waiting", error: "" });
  ui.text.value = "";
  rememberUse();
  renderPending();
  scrollToEnd();
  connect();
  flush();
}

ui.toggle.addEventListener("click", () => (isOpen() ? close() : open()));
ui.close.addEventListener("click", close);
ui.panel.addEventListener("keydown", (event) => { if (event.key === "Escape") close(); });
ui.form.addEventListener("submit", onSubmit);
ui.text.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    ui.form.requestSubmit();
  }
});
ui.older.addEventListener("click", () => {
  const seqs = [...s.messages.values()].map((m) => m.seq);
  if (seqs.length) loadHistory(Math.min(...seqs));
});
if (usedBefore()) connect();
