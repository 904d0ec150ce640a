// The community page's entry module: finds the page's elements, builds the shared context and
// wires events. Rendering lives in community-view.js, server sync in community-sync.js and user
// actions in community-actions.js.

import {
  acceptGuidelines, closeThread, loadOlder, noteTyping, onComposerSubmit, onMessageAction,
  openDm, submitOnEnter, switchChannel,
} from "./community-actions.js";
import { onHeldAction } from "./community-moderation.js";
import { listen, markReadSoon, scheduleSync } from "./community-sync.js";
import { renderChannels, setBanner, updateComposer } from "./community-view.js";
import { sharedConnection } from "./connection.js";
import { el } from "./dom.js";

const $ = (id) => document.getElementById(id);
const root = $("main");

function findElements() {
  const ui = {
    banner: $("connection-banner"), channelList: $("channel-list"), dmList: $("dm-list"),
    dmEmpty: $("dm-empty"), title: $("channel-title"), note: $("channel-note"),
    notice: $("moderation-notice"),
    log: $("message-log"), messages: $("messages"), logNote: $("log-note"),
    older: $("load-older"), typing: $("typing"), gate: $("guidelines-gate"),
    gateForm: $("guidelines-form"), composer: $("composer"), text: $("message-text"),
    status: $("composer-status"), people: $("people"), thread: $("thread-panel"),
    threadLog: $("thread-log"), threadMessages: $("thread-messages"),
    threadComposer: $("thread-composer"), threadText: $("thread-text"),
    threadClose: $("thread-close"),
  };
  // Messages being sent are listed after the stored ones until the server acknowledges them.
  ui.pending = el("ol", { className: "messages" });
  ui.messages.after(ui.pending);
  ui.held = el("ol", { className: "messages" }); // ours, held for review or refused
  ui.pending.after(ui.held);
  ui.threadPending = el("ol", { className: "messages" });
  ui.threadMessages.after(ui.threadPending);
  return ui;
}

function initialState() {
  const channels = new Map();
  for (const link of root.querySelectorAll("a[data-channel]")) { // as the server rendered them
    channels.set(link.dataset.channel, { id: link.dataset.channel, name: link.dataset.name,
      kind: link.dataset.kind, last_seq: 0, read_seq: 0 });
  }
  return {
    active: root.dataset.channel || null,
    channels,              // id → channel (+ last_seq, read_seq, can_post)
    timelines: new Map(),  // id → Timeline
    people: new Map(),     // user id → {user, status}
    typists: new Map(),    // channel → Map(user id → {name, timer})
    pending: new Map(),    // client_id → {clientId, channel, text, threadId, state, error}
    held: new Map(),       // hold id → {holdId, channel, text, threadId, status, reason}
    sanctions: new Map(),  // sanction id → our active sanctions announced this session
    typing: { sentAt: 0, channel: null, stopTimer: null },
    thread: null,          // the open thread's root message id
    threadOpener: null,    // where focus returns when the thread closes
    accepted: root.dataset.guidelinesAccepted === "true",
    everConnected: false,
    syncing: Promise.resolve(),
    loadingOlder: false,
    readTimer: null,
  };
}

const p = {
  me: { id: root.dataset.userId, name: root.dataset.userName },
  ui: findElements(),
  state: initialState(),
  nodes: new Map(),        // message id → <li> in the main log
  threadNodes: new Map(),  // message id → <li> in the thread panel
};
p.conn = sharedConnection({ // shared with the support bubble: one `/` socket per page
  onOnline: () => {
    setBanner(p, "");
    scheduleSync(p);
  },
  onOffline: () => setBanner(p, "You are offline. Reconnecting… Messages you send are kept "
    + "and delivered when the connection is back."),
  onSignedOut: () => window.location.assign("/login"),
});

function wire() {
  const { ui } = p;
  root.querySelector("nav.channels").addEventListener("click", (event) => {
    const link = event.target.closest("a[data-channel]");
    if (!link || event.ctrlKey || event.metaKey || event.shiftKey) return;
    event.preventDefault();
    switchChannel(p, link.dataset.channel);
  });
  for (const [list, inThread] of [[ui.messages, false], [ui.pending, false],
    [ui.threadMessages, true], [ui.threadPending, true]]) {
    list.addEventListener("click", (event) => onMessageAction(p, event, inThread));
  }
  ui.held.addEventListener("click", (event) => onHeldAction(p, event));
  ui.people.addEventListener("click", (event) => {
    const target = event.target.closest("button[data-user-id]");
    if (target) openDm(p, target.dataset.userId);
  });
  ui.composer.addEventListener("submit", onComposerSubmit(p, ui.text, () => null));
  ui.threadComposer.addEventListener("submit", onComposerSubmit(p, ui.threadText, () => p.state.thread));
  ui.text.addEventListener("keydown", submitOnEnter(ui.composer));
  ui.threadText.addEventListener("keydown", submitOnEnter(ui.threadComposer));
  ui.text.addEventListener("input", () => noteTyping(p));
  ui.threadClose.addEventListener("click", () => closeThread(p));
  ui.thread.addEventListener("keydown", (event) => { if (event.key === "Escape") closeThread(p); });
  ui.older.addEventListener("click", () => loadOlder(p));
  ui.gateForm.addEventListener("submit", (event) => acceptGuidelines(p, event));
  document.addEventListener("visibilitychange", () => {
    markReadSoon(p);
    renderChannels(p);
  });
  new IntersectionObserver((entries) => { // scrolling up to the top loads the older page
    if (entries.some((entry) => entry.isIntersecting)) loadOlder(p);
  }, { root: ui.log }).observe(ui.older);
}

wire();
listen(p);
updateComposer(p);
p.conn.start();
