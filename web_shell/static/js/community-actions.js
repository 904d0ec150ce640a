// What the user does on the community page: switch channels, page back through history, react,
// edit, delete, open threads and DMs, accept the guidelines, type and send.

import {
  refreshItem, renderChannelHeader, renderChannels, renderLog, renderPending, setStatus,
  showOlder, showThreadReply, timelineOf, updateComposer, viewOptions,
} from "./community-view.js";
import {
  applyUpdate, ask, deliver, joinChannel, markReadSoon, queueMessage, upsertChannel,
} from "./community-sync.js";
import { LIKE, editForm, fillMessage, messageItem } from "./message-view.js";

export function switchChannel(p, channelId) {
  if (!p.state.channels.has(channelId)) return;
  stopTyping(p);
  p.state.active = channelId;
  closeThread(p, false);
  window.history.replaceState(null, "", `/?channel=${encodeURIComponent(channelId)}`);
  renderChannels(p);
  renderChannelHeader(p);
  renderLog(p);
  markReadSoon(p);
}

/** Load the page before the oldest message shown (history scroll). */
export async function loadOlder(p) {
  const { state } = p;
  const channelId = state.active;
  const timeline = timelineOf(p, channelId);
  if (state.loadingOlder || !timeline.hasOlder) return;
  state.loadingOlder = true;
  try {
    const body = await p.conn.history(channelId, { before_seq: timeline.minSeq, limit: 50 });
    timeline.merge(body.messages);
    timeline.hasOlder = body.has_more && body.messages.length > 0;
    if (channelId === state.active) showOlder(p, body.messages);
  } catch (error) {
    setStatus(p, "Could not load older messages.");
    console.warn(error);
  } finally {
    state.loadingOlder = false;
  }
}

/** A click on a button of a message (delegated from the lists). */
export async function onMessageAction(p, event, inThread) {
  const target = event.target.closest("button[data-action]");
  const item = event.target.closest("li");
  if (!target || !item) return;
  const action = target.dataset.action;
  if (action === "retry") return deliver(p, item.dataset.clientId);
  if (action === "discard") {
    p.state.pending.delete(item.dataset.clientId);
    return renderPending(p);
  }
  const message = timelineOf(p, p.state.active).get(item.dataset.id);
  if (!message) return;
  if (action === "react") await toggleLike(p, message);
  else if (action === "thread") await openThread(p, message, target);
  else if (action === "edit") startEdit(p, item, message, inThread);
  else if (action === "cancel-edit") endEdit(p, item, message, inThread);
  else if (action === "delete" && window.confirm("Delete this message for everyone?")) {
    if (await ask(p, "message:delete", { id: message.id })) {
      applyUpdate(p, { ...message, deleted: true, text: "", reactions: {} });
    }
  }
}

async function toggleLike(p, message) {
  const mine = (message.reactions?.[LIKE] || []).includes(p.me.id);
  const updated = await ask(p, mine ? "reaction:remove" : "reaction:add", { id: message.id, emoji: LIKE });
  if (updated) applyUpdate(p, updated);
}

function startEdit(p, item, message, inThread) {
  const form = editForm(message);
  item.querySelector(".msg-text").replaceWith(form);
  item.querySelector(".msg-actions")?.remove();
  const area = form.querySelector("textarea");
  area.focus();
  area.addEventListener("keydown", (event) => {
    if (event.key === "Escape") endEdit(p, item, message, inThread);
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const updated = await ask(p, "message:edit", { id: message.id, text: area.value });
    if (updated) timelineOf(p, message.channel).update(updated);
    endEdit(p, item, message, inThread);
  });
}

function endEdit(p, item, message, inThread) {
  const current = timelineOf(p, message.channel).get(message.id) || message;
  item.querySelector("form.msg-edit")?.remove();
  fillMessage(item, current, viewOptions(p, current, inThread));
  refreshItem(p, message.id); // the same message may also show in the thread panel
  item.querySelector('button[data-action="edit"]')?.focus();
}

async function openThread(p, root, opener) {
  const { state, ui } = p;
  state.thread = root.id;
  state.threadOpener = opener;
  p.threadNodes.clear();
  const rootItem = messageItem(root, viewOptions(p, root, true));
  rootItem.classList.add("thread-root");
  p.threadNodes.set(root.id, rootItem);
  ui.threadMessages.replaceChildren(rootItem);
  for (const reply of timelineOf(p, root.channel).replies(root.id)) showThreadReply(p, reply);
  ui.thread.hidden = false;
  renderPending(p);
  ui.threadText.focus();
  try {
    const body = await p.conn.history(root.channel, { thread_id: root.id, limit: 200 });
    for (const reply of timelineOf(p, root.channel).merge(body.messages)) {
      if (reply.thread_id === state.thread) showThreadReply(p, reply);
    }
  } catch (error) {
    console.warn("could not load the thread", error);
  }
}

export function closeThread(p, restoreFocus = true) {
  const { state } = p;
  if (!state.thread) return;
  state.thread = null;
  p.ui.thread.hidden = true;
  p.threadNodes.clear();
  renderPending(p);
  if (restoreFocus && state.threadOpener?.isConnected) state.threadOpener.focus();
}

/** Open (or create) the DM with a person from the presence list. */
export async function openDm(p, userId) {
  const person = p.state.people.get(userId);
  const channel = await ask(p, "dm:open", { user_id: userId, name: person?.user.name });
  if (!channel) return;
  upsertChannel(p, channel);
  await joinChannel(p, channel.id);
  switchChannel(p, channel.id);
  p.ui.text.focus();
}

export async function acceptGuidelines(p, event) {
  event.preventDefault();
  const form = p.ui.gateForm;
  const response = await fetch(form.action, {
    method: "POST", credentials: "same-origin", headers: { Accept: "application/json" },
    body: new URLSearchParams(new FormData(form)),
  });
  if (!response.ok) {
    setStatus(p, "Could not record your acceptance; reload the page and try again.");
    return;
  }
  p.state.accepted = true;
  updateComposer(p);
  setStatus(p, "Thanks! You can post now.", "info");
  p.ui.text.focus();
}

/** A composer's submit handler; `threadOf()` names the thread replied to (or null). */
export function onComposerSubmit(p, area, threadOf) {
  return (event) => {
    event.preventDefault();
    const text = area.value.trim();
    if (!text) return;
    if (!p.state.accepted) {
      p.ui.gate.querySelector("button")?.focus();
      return;
    }
    area.value = "";
    stopTyping(p);
    queueMessage(p, text, threadOf());
  };
}

/** Enter sends, Shift+Enter starts a new line. */
export function submitOnEnter(form) {
  return (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  };
}

/** Tell the channel we type (at most every 2.5 s), and that we stopped after 4 s of quiet. */
export function noteTyping(p) {
  const typing = p.state.typing;
  const now = Date.now();
  if (now - typing.sentAt > 2500 || typing.channel !== p.state.active) {
    Object.assign(typing, { sentAt: now, channel: p.state.active });
    ask(p, "typing", { channel: p.state.active, typing: true });
  }
  clearTimeout(typing.stopTimer);
  typing.stopTimer = setTimeout(() => stopTyping(p), 4000);
}

function stopTyping(p) {
  const typing = p.state.typing;
  clearTimeout(typing.stopTimer);
  if (!typing.sentAt) return;
  typing.sentAt = 0;
  ask(p, "typing", { channel: typing.channel, typing: false });
}
