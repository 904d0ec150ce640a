// Tiny DOM helpers. User content only ever goes through textContent or setAttribute on
// non-URL, non-handler attributes: never innerHTML.

/**
 * Create an element.
 * @param {string} tag
 * @param {{className?: string, text?: string, attrs?: Record<string, string>}} [options]
 * @param {Array<Node|null|undefined|false>} [children]
 * @returns {HTMLElement}
 */
export function el(tag, options = {}, children = []) {
  const node = document.createElement(tag);
  if (options.className) node.className = options.className;
  if (options.text !== undefined) node.textContent = options.text;
  for (const [name, value] of Object.entries(options.attrs || {})) {
    node.setAttribute(name, value);
  }
  for (const child of children) {
    if (child) node.append(child);
  }
  return node;
}

/** Remove every child of `node`. */
export function clear(node) {
  node.replaceChildren();
}

/** A short local time for a message timestamp (ISO 8601). */
export function shortTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

/** A local date and time for an ISO 8601 string or epoch seconds ("" when invalid). */
export function dateTime(value) {
  const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  if (Number.isNaN(date.getTime())) return "";
  return date.toLocaleString([], { dateStyle: "medium", timeStyle: "medium" });
}

/** "until 14:05" today, "until 3 Jan, 14:05" later; "" when the sanction has no end. */
export function untilText(expiresAt) {
  if (!expiresAt) return "";
  const when = new Date(expiresAt * 1000);
  const sameDay = when.toDateString() === new Date().toDateString();
  const text = sameDay ? when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
    : when.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
  return ` until ${text}`;
}
