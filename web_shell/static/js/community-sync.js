// Keeping the page in step with the server: the (re)connection sync with recovery from the last
// seq seen per channel, live events, the outbox of unsent messages, and read markers.

import { listenModeration, noteHeld } from "./community-moderation.js";
import { OfflineError } from "./connection.js";
import {
  renderChannelHeader, renderChannels, renderLog, renderLogNote, renderPending, renderPeople,
  renderTyping, refreshItem, setStatus, showMessages, timelineOf,
} from "./community-view.js";

/** Emit and return the ack's data, or null after reporting the problem. */
export async function ask(p, event, payload) {
  try {
    const ack = await p.conn.call(event, payload);
    if (ack.ok) return ack.data;
    if (ack.error.code !== "unauthorized") setStatus(p, ack.error.message);
  } catch (error) {
    if (!(error instanceof OfflineError)) setStatus(p, "The server did not answer; retrying.");
  }
  return null;
}

/** Serialise syncs: a reconnection while one runs queues another. */
export function scheduleSync(p) {
  const run = () => syncAll(p);
  p.state.syncing = p.state.syncing.then(run, run);
}

/** After every (re)connection: channels, rejoin from the last seq seen, presence, outbox. */
async function syncAll(p) {
  const { state } = p;
  const listed = await ask(p, "channel:list");
  if (!listed) return;
  for (const channel of listed.channels) upsertChannel(p, channel);
  if (!state.channels.has(state.active)) {
    state.active = state.channels.has("general") ? "general" : [...state.channels.keys()][0];
  }
  await Promise.all([...state.channels.keys()].map((id) => joinChannel(p, id)));
  if (state.everConnected && state.active) await refreshRecent(p, state.active);
  state.everConnected = true;
  const present = await ask(p, "presence:list");
  if (present) {
    state.people = new Map(present.users.map((entry) => [entry.user.id, entry]));
    renderPeople(p);
  }
  renderChannelHeader(p);
  renderLog(p);
  for (const pending of state.pending.values()) {
    if (pending.state !== "failed") deliver(p, pending.clientId);
  }
  markReadSoon(p);
}

export function upsertChannel(p, channel) {
  const known = p.state.channels.get(channel.id) || {};
  p.state.channels.set(channel.id, { read_seq: 0, can_post: true, ...known, ...channel });
  renderChannels(p);
}

/** Join (or rejoin) a channel: the latest page the first time, then only what came after. */
export async function joinChannel(p, channelId) {
  const timeline = timelineOf(p, channelId);
  const since = timeline.loaded ? timeline.maxSeq : undefined;
  const payload = since === undefined ? { channel: channelId } : { channel: channelId, since_seq: since };
  const joined = await ask(p, "channel:join", payload);
  if (!joined) return;
  const added = timeline.merge(joined.messages);
  if (since === undefined) timeline.hasOlder = joined.has_more;
  else if (joined.has_more) added.push(...await catchUp(p, channelId, timeline));
  timeline.loaded = true;
  upsertChannel(p, { id: channelId, name: joined.name, kind: joined.kind,
    can_post: joined.can_post, read_seq: joined.read_seq,
    last_seq: Math.max(joined.last_seq, timeline.maxSeq) });
  if (channelId === p.state.active) showMessages(p, added);
}

/** Page forward through the history after a long disconnection (the ack held only part). */
async function catchUp(p, channelId, timeline) {
  const added = [];
  for (let page = 0; page < 20; page += 1) {
    const body = await p.conn.history(channelId, { after_seq: timeline.maxSeq, limit: 200 });
    added.push(...timeline.merge(body.messages));
    if (!body.has_more || !body.messages.length) break;
  }
  return added;
}

/** Edits, deletes and reactions are not replayed by since_seq: refresh the latest page. */
async function refreshRecent(p, channelId) {
  const timeline = timelineOf(p, channelId);
  try {
    const body = await p.conn.history(channelId, { before_seq: timeline.maxSeq + 1, limit: 50 });
    timeline.merge(body.messages);
  } catch (error) {
    console.warn("could not refresh recent messages", error);
  }
}

/** Subscribe to the server's events of namespace `/`. */
export function listen(p) {
  const { conn, state } = p;
  conn.on("message:new", (message) => onMessage(p, message));
  conn.on("message:updated", (message) => applyUpdate(p, message));
  conn.on("message:deleted", (message) => applyUpdate(p, message));
  conn.on("typing", (event) => onTyping(p, event));
  conn.on("presence", ({ user, status }) => {
    if (status === "offline") state.people.delete(user.id);
    else state.people.set(user.id, { user, status });
    renderPeople(p);
  });
  conn.on("read", ({ channel, seq }) => {
    const known = state.channels.get(channel);
    if (known) known.read_seq = Math.max(known.read_seq || 0, seq);
    renderChannels(p);
  });
  conn.on("channel:new", (channel) => {
    upsertChannel(p, channel);
    joinChannel(p, channel.id);
  });
  conn.on("resync", () => scheduleSync(p));
  listenModeration(p);
}

function onMessage(p, message) {
  if (message.author.id === p.me.id && message.client_id) settlePending(p, message.client_id);
  const added = timelineOf(p, message.channel).merge([message]);
  const channel = p.state.channels.get(message.channel);
  if (channel) channel.last_seq = Math.max(channel.last_seq || 0, message.seq);
  if (message.channel === p.state.active) {
    showMessages(p, added);
    markReadSoon(p);
  }
  renderChannels(p);
}

export function applyUpdate(p, message) {
  if (timelineOf(p, message.channel).update(message) && message.channel === p.state.active) {
    refreshItem(p, message.id);
  }
}

function onTyping(p, { channel, user, typing }) {
  const typists = p.state.typists.get(channel) || new Map();
  p.state.typists.set(channel, typists);
  clearTimeout(typists.get(user.id)?.timer);
  if (typing) {
    const timer = setTimeout(() => { typists.delete(user.id); renderTyping(p); }, 6000);
    typists.set(user.id, { name: user.name, timer });
  } else {
    typists.delete(user.id);
  }
  renderTyping(p);
}

// The outbox: every message carries a client_id, so re-sending it after a reconnection never
// stores it twice.

export function queueMessage(p, text, threadId) {
  const clientId = crypto.randomUUID();
  p.state.pending.set(clientId, { clientId, channel: p.state.active, text, threadId, state: "sending" });
  renderPending(p);
  renderLogNote(p);
  p.ui.log.scrollTop = p.ui.log.scrollHeight;
  deliver(p, clientId);
}

export async function deliver(p, clientId) {
  const pending = p.state.pending.get(clientId);
  if (!pending) return;
  const payload = { channel: pending.channel, text: pending.text, client_id: clientId };
  if (pending.threadId) payload.thread_id = pending.threadId;
  pending.state = p.conn.connected ? "sending" : "queued";
  renderPending(p);
  if (!p.conn.connected) return;
  let ack;
  try {
    ack = await p.conn.call("message:send", payload);
  } catch {
    pending.state = "queued"; // no answer: sent again after the next (re)connection
    renderPending(p);
    return;
  }
  if (ack.ok) {
    settleSent(p, clientId, ack.data);
    return;
  }
  const { code, message, retry_after_ms: retryAfter } = ack.error;
  if (code === "unauthorized" || code === "unavailable") pending.state = "queued";
  else if (code === "rate_limited") setTimeout(() => deliver(p, clientId), retryAfter || 1000);
  else Object.assign(pending, { state: "failed", error: message });
  renderPending(p);
}

function settleSent(p, clientId, data) {
  const pending = p.state.pending.get(clientId);
  settlePending(p, clientId);
  if (data.status === "held") {
    if (pending) noteHeld(p, data, pending);
    return;
  }
  const added = timelineOf(p, data.channel).merge([data]);
  if (data.channel === p.state.active) showMessages(p, added);
  markReadSoon(p);
}

export function settlePending(p, clientId) {
  if (p.state.pending.delete(clientId)) {
    renderPending(p);
    renderLogNote(p);
  }
}

/** Move the read marker of the active channel to its newest message (debounced). */
export function markReadSoon(p) {
  clearTimeout(p.state.readTimer);
  p.state.readTimer = setTimeout(() => markRead(p), 400);
}

async function markRead(p) {
  const channel = p.state.channels.get(p.state.active);
  if (!channel || document.visibilityState !== "visible" || !p.conn.connected) return;
  const seq = timelineOf(p, channel.id).maxSeq;
  if (seq <= (channel.read_seq || 0)) return;
  const marked = await ask(p, "read", { channel: channel.id, seq });
  if (marked) {
    channel.read_seq = Math.max(channel.read_seq || 0, marked.seq);
    renderChannels(p);
  }
}
