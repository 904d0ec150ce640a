// Rendering of the community page. Every function takes the page context `p`
// ({me, ui, state, nodes, threadNodes}) and only touches the DOM through textContent and
// attributes, never innerHTML.

import { clear, el } from "./dom.js";
import { fillMessage, heldItem, messageItem, pendingItem } from "./message-view.js";
import { Timeline } from "./timeline.js";

/** The timeline of a channel (created empty on first use). */
export function timelineOf(p, channelId) {
  let timeline = p.state.timelines.get(channelId);
  if (!timeline) {
    timeline = new Timeline();
    p.state.timelines.set(channelId, timeline);
  }
  return timeline;
}

export function setBanner(p, text) {
  p.ui.banner.textContent = text;
}

/** A short note under the composer: `kind` "info" or "error". */
export function setStatus(p, text, kind = "error") {
  const status = p.ui.status;
  status.textContent = text;
  status.classList.toggle("composer-status-info", kind === "info");
  clearTimeout(status.clearTimer);
  if (text) status.clearTimer = setTimeout(() => { status.textContent = ""; }, 8000);
}

/** Unread messages of a channel (none for the channel being read right now). */
export function unread(p, channel) {
  if (channel.id === p.state.active && document.visibilityState === "visible") return 0;
  return Math.max(0, (channel.last_seq || 0) - (channel.read_seq || 0));
}

function channelLink(p, channel) {
  const count = unread(p, channel);
  const link = el("a", {
    className: "channel-link",
    attrs: { href: `/?channel=${encodeURIComponent(channel.id)}`, "data-channel": channel.id },
  }, [
    el("span", { className: "channel-name" }, [
      channel.kind === "dm" ? null : el("span", { text: "# ", attrs: { "aria-hidden": "true" } }),
      document.createTextNode(channel.name || channel.id),
    ]),
    count ? el("span", { className: "badge" }, [
      document.createTextNode(String(count)),
      el("span", { className: "visually-hidden", text: " unread" }),
    ]) : null,
  ]);
  if (channel.id === p.state.active) link.setAttribute("aria-current", "page");
  return el("li", {}, [link]);
}

/** Channels without a category first, then one labelled group per category (by name). */
function channelGroups(p, channels) {
  const groups = new Map();
  for (const channel of channels) {
    const key = channel.category || "";
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(channel);
  }
  const names = [...groups.keys()].sort((a, b) => a.toLowerCase().localeCompare(b.toLowerCase()));
  return names.flatMap((name, index) => {
    const links = groups.get(name).map((c) => channelLink(p, c));
    if (!name) return links;
    const id = `category-${index}`;
    const list = el("ul", { className: "channel-list", attrs: { "aria-labelledby": id } }, links);
    return [el("li", { className: "channel-group" }, [
      el("span", { className: "channel-group-title", text: name, attrs: { id } }), list])];
  });
}

/** Rebuild the channel and DM lists (keeping keyboard focus on the same link). */
export function renderChannels(p) {
  const focused = document.activeElement?.dataset?.channel;
  const sorted = [...p.state.channels.values()].sort((a, b) => a.id.localeCompare(b.id));
  const dms = sorted.filter((c) => c.kind === "dm");
  p.ui.channelList.replaceChildren(...channelGroups(p, sorted.filter((c) => c.kind !== "dm")));
  p.ui.dmList.replaceChildren(...dms.map((c) => channelLink(p, c)));
  p.ui.dmEmpty.hidden = dms.length > 0;
  if (focused) p.ui.channelList.closest("nav")
    .querySelector(`a[data-channel="${CSS.escape(focused)}"]`)?.focus();
}

export function renderChannelHeader(p) {
  const channel = p.state.channels.get(p.state.active);
  if (!channel) return;
  const name = channel.name || channel.id;
  p.ui.title.textContent = channel.kind === "dm" ? name : `# ${name}`;
  document.title = `${name} · Community · Gigvora Live`;
  p.ui.note.textContent = channel.can_post === false ? "Only staff can post in this channel." : "";
  updateComposer(p);
}

/** Enable the composers only after the guidelines are accepted, where posting is allowed. */
export function updateComposer(p) {
  const channel = p.state.channels.get(p.state.active);
  const canPost = p.state.accepted && channel?.can_post !== false;
  for (const form of [p.ui.composer, p.ui.threadComposer]) {
    for (const control of form.querySelectorAll("textarea, button")) control.disabled = !canPost;
  }
  p.ui.gate.hidden = p.state.accepted;
}

export function viewOptions(p, message, inThread) {
  const replies = inThread ? 0 : timelineOf(p, message.channel).replies(message.id).length;
  return { meId: p.me.id, replyCount: replies, inThread };
}

function nearBottom(log) {
  return log.scrollHeight - log.scrollTop - log.clientHeight < 80;
}

function insertBySeq(list, item, seq) {
  const after = [...list.children].find((child) => Number(child.dataset.seq) > seq);
  list.insertBefore(item, after || null);
}

function addItem(p, map, list, message, inThread) {
  const item = messageItem(message, viewOptions(p, message, inThread));
  map.set(message.id, item);
  insertBySeq(list, item, message.seq);
  return item;
}

/** Rebuild the log of the active channel, scrolled to the newest message. */
export function renderLog(p) {
  p.nodes.clear();
  clear(p.ui.messages);
  const timeline = timelineOf(p, p.state.active);
  for (const message of timeline.ordered((m) => !m.thread_id)) {
    const item = messageItem(message, viewOptions(p, message, false));
    p.nodes.set(message.id, item);
    p.ui.messages.append(item);
  }
  renderPending(p);
  renderHeld(p);
  renderLogNote(p);
  renderTyping(p);
  p.ui.log.scrollTop = p.ui.log.scrollHeight;
}

export function renderLogNote(p) {
  const timeline = timelineOf(p, p.state.active);
  const { ui } = p;
  ui.older.hidden = !timeline.hasOlder;
  if (!timeline.loaded) ui.logNote.textContent = "Loading messages…";
  else if (!p.nodes.size && !ui.pending.children.length && !ui.held.children.length) ui.logNote.textContent = "No messages yet. Say hello!";
  else ui.logNote.textContent = "";
}

/** Insert new or changed messages of the active channel where their seq puts them. */
export function showMessages(p, messages) {
  const stick = nearBottom(p.ui.log);
  for (const message of messages) {
    if (message.thread_id) {
      refreshItem(p, message.thread_id);
      if (message.thread_id === p.state.thread) showThreadReply(p, message);
    } else if (p.nodes.has(message.id)) {
      refreshItem(p, message.id);
    } else {
      addItem(p, p.nodes, p.ui.messages, message, false);
    }
  }
  renderLogNote(p);
  if (stick) p.ui.log.scrollTop = p.ui.log.scrollHeight;
}

/** Prepend an older page, keeping the reader's place. */
export function showOlder(p, messages) {
  const { log } = p.ui;
  const fromBottom = log.scrollHeight - log.scrollTop;
  for (const message of messages) {
    if (!message.thread_id && !p.nodes.has(message.id)) addItem(p, p.nodes, p.ui.messages, message, false);
  }
  log.scrollTop = log.scrollHeight - fromBottom;
  renderLogNote(p);
}

/** Re-render a message wherever it is shown (unless it is being edited). */
export function refreshItem(p, messageId) {
  const message = timelineOf(p, p.state.active).get(messageId);
  if (!message) return;
  for (const [map, inThread] of [[p.nodes, false], [p.threadNodes, true]]) {
    const item = map.get(messageId);
    if (item && !item.querySelector("form.msg-edit")) fillMessage(item, message, viewOptions(p, message, inThread));
  }
}

export function showThreadReply(p, reply) {
  if (p.threadNodes.has(reply.id)) return refreshItem(p, reply.id);
  addItem(p, p.threadNodes, p.ui.threadMessages, reply, true);
  p.ui.threadLog.scrollTop = p.ui.threadLog.scrollHeight;
}

export function renderPending(p) {
  const mine = [...p.state.pending.values()].filter((x) => x.channel === p.state.active);
  p.ui.pending.replaceChildren(...mine.filter((x) => !x.threadId).map((x) => pendingItem(x, p.me)));
  p.ui.threadPending.replaceChildren(...mine
    .filter((x) => x.threadId && x.threadId === p.state.thread).map((x) => pendingItem(x, p.me)));
}

/** Our held (or refused) messages of the open channel, after the pending ones. */
export function renderHeld(p) {
  const mine = [...p.state.held.values()].filter((h) => h.channel === p.state.active);
  p.ui.held.replaceChildren(...mine.map((held) => heldItem(held, p.me)));
}

export function renderTyping(p) {
  const typists = p.state.typists.get(p.state.active) || new Map();
  const names = [...typists.values()].map((t) => t.name);
  const text = names.length === 0 ? ""
    : names.length === 1 ? `${names[0]} is typing…`
      : names.length === 2 ? `${names[0]} and ${names[1]} are typing…`
        : "Several people are typing…";
  if (p.ui.typing.textContent !== text) p.ui.typing.textContent = text;
}

export function renderPeople(p) {
  const me = p.me.id;
  const entries = [...p.state.people.values()].sort((a, b) => {
    if (a.user.id === me || b.user.id === me) return a.user.id === me ? -1 : 1;
    return a.user.name.localeCompare(b.user.name);
  });
  p.ui.people.replaceChildren(...entries.map(({ user, status }) => {
    const self = user.id === me;
    return el("li", { className: `person status-${status}` }, [
      el("span", { className: "person-name" }, [
        el("span", { className: "status-dot", attrs: { "aria-hidden": "true" } }),
        document.createTextNode(self ? `${user.name} (you)` : user.name),
        el("span", { className: "visually-hidden", text: `, ${status}` }),
      ]),
      self ? null : el("button", { className: "link-button", text: `Message ${user.name}`,
        attrs: { type: "button", "data-user-id": user.id } }),
    ]);
  }));
}
