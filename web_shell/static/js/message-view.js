// One message as a list item. Every user-supplied string is set with textContent.

import { el, shortTime } from "./dom.js";

export const LIKE = "👍";

/**
 * Render `message` into a new `<li>`.
 * @param {object} message a message object of the protocol
 * @param {{meId: string, replyCount: number, inThread: boolean}} options
 */
export function messageItem(message, options) {
  const item = el("li", { className: "msg" });
  return fillMessage(item, message, options);
}

/** Re-render an existing item in place (edits, deletes, reactions, reply counts). */
export function fillMessage(item, message, { meId, replyCount, inThread }) {
  item.replaceChildren();
  item.dataset.id = message.id;
  item.dataset.seq = String(message.seq);
  item.classList.toggle("msg-deleted", Boolean(message.deleted));
  const meta = el("div", { className: "msg-meta" }, [
    el("span", { className: "msg-author", text: message.author.name }),
    el("time", { className: "msg-time", text: shortTime(message.created_at),
      attrs: { datetime: String(message.created_at) } }),
    message.edited_at && !message.deleted ? el("span", { className: "msg-edited", text: "(edited)" }) : null,
  ]);
  const text = message.deleted ? "This message was deleted." : message.text;
  item.append(meta, el("p", { className: "msg-text", text }));
  if (!message.deleted) item.append(actions(message, meId, replyCount, inThread));
  return item;
}

function actions(message, meId, replyCount, inThread) {
  const likers = (message.reactions && message.reactions[LIKE]) || [];
  const mine = likers.includes(meId);
  const buttons = [
    button(likers.length ? `${LIKE} ${likers.length}` : LIKE, "react", "reaction",
      { "aria-pressed": mine ? "true" : "false",
        title: mine ? "Remove your like" : "Like this message" }),
  ];
  if (!inThread) {
    if (replyCount > 0) {
      buttons.push(button(replyCount === 1 ? "1 reply" : `${replyCount} replies`, "thread"));
    }
    buttons.push(button("Reply in thread", "thread"));
  }
  if (message.author.id === meId) {
    buttons.push(button("Edit", "edit"), button("Delete", "delete"));
  }
  return el("div", { className: "msg-actions" }, buttons);
}

function button(label, action, className = "link-button", attrs = {}) {
  return el("button", { className, text: label,
    attrs: { type: "button", "data-action": action, ...attrs } });
}

/** The inline edit form replacing a message's text while editing. */
export function editForm(message) {
  const id = `edit-${message.seq}`;
  const area = el("textarea", { attrs: { id, rows: "2" } });
  area.value = message.text;
  return el("form", { className: "msg-edit" }, [
    el("label", { className: "visually-hidden", text: "Edited text", attrs: { for: id } }),
    area,
    el("div", { className: "msg-edit-actions" }, [
      el("button", { className: "button", text: "Save", attrs: { type: "submit" } }),
      el("button", { className: "button button-quiet", text: "Cancel",
        attrs: { type: "button", "data-action": "cancel-edit" } }),
    ]),
  ]);
}

/** A message not yet acknowledged by the server (sending, queued or failed). */
export function pendingItem(pending, me) {
  const label = { sending: "Sending…", queued: "Waiting for the connection…",
    failed: `Not sent: ${pending.error}` }[pending.state];
  const children = [
    el("div", { className: "msg-meta" }, [
      el("span", { className: "msg-author", text: me.name }),
      el("span", { className: `msg-state msg-state-${pending.state}`, text: label }),
    ]),
    el("p", { className: "msg-text", text: pending.text }),
  ];
  if (pending.state === "failed") {
    children.push(el("div", { className: "msg-actions" }, [
      button("Retry", "retry"), button("Discard", "discard"),
    ]));
  }
  const item = el("li", { className: "msg msg-pending" }, children);
  item.dataset.clientId = pending.clientId;
  return item;
}

/** A message of ours held for review, or refused by a moderator (`held.status`). */
export function heldItem(held, me) {
  const label = held.status === "rejected" ? `Not published: ${held.reason}`
    : "Held for review by a moderator";
  const item = el("li", { className: `msg msg-held msg-held-${held.status}` }, [
    el("div", { className: "msg-meta" }, [
      el("span", { className: "msg-author", text: me.name }),
      el("span", { className: "msg-state", text: label }),
      held.threadId ? el("span", { className: "msg-edited", text: "(thread reply)" }) : null,
    ]),
    el("p", { className: "msg-text", text: held.text }),
    held.status === "rejected" ? el("div", { className: "msg-actions" }, [
      button("Dismiss", "dismiss-held"),
    ]) : null,
  ]);
  item.dataset.holdId = held.holdId;
  return item;
}
