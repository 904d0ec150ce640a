// The open conversation's assignee picker ("Assign to") and label editor (chips with a remove
// button, a text box with the account's labels as suggestions). The agents and known labels come
// from `inbox:agents`; inbox.js owns the state and sends `inbox:assign` / `inbox:labels`.

import { el } from "./dom.js";

export const MAX_LABELS = 50;
export const MAX_LABEL_CHARS = 64;
const FORBIDDEN = /[,\u0000-\u001f\u007f]/; // Chatwoot splits label lists on commas

function agentOption(agent, sameName) {
  const text = sameName && agent.email ? `${agent.name} (${agent.email})` : agent.name;
  return el("option", { text, attrs: { value: String(agent.id) } });
}

/**
 * Fill the "Assign to" select: "Unassigned", the account's agents, and the current assignee when
 * it is not among them (an agent bot, or the list is unavailable). Selects the current assignee
 * unless `keepChoice` and the agent's pick is still offered.
 */
export function renderAssignees(select, agents, conv, keepChoice) {
  const chosen = select.value;
  const counts = new Map();
  for (const agent of agents) counts.set(agent.name, (counts.get(agent.name) || 0) + 1);
  const options = [el("option", { text: "Unassigned", attrs: { value: "" } }),
    ...agents.map((agent) => agentOption(agent, counts.get(agent.name) > 1))];
  const current = conv?.assignee;
  const listed = current && current.type !== "agent_bot" && agents.some((a) => a.id === current.id);
  if (current && !listed) {
    const bot = current.type === "agent_bot";
    options.push(el("option", { text: `${current.name || `Agent ${current.id}`}${bot ? " (bot)" : ""}`,
      attrs: { value: bot ? `bot:${current.id}` : String(current.id) } }));
  }
  select.replaceChildren(...options);
  const currentValue = !current ? "" : (current.type === "agent_bot" ? `bot:${current.id}` : String(current.id));
  const keep = keepChoice && [...select.options].some((o) => o.value === chosen);
  select.value = keep ? chosen : currentValue;
}

/** The conversation's labels as chips (each with a "Remove label …" button) and the known
 * labels it does not have yet as the text box's suggestions. */
export function renderLabels(list, datalist, conv, known) {
  const labels = conv?.labels || [];
  list.replaceChildren(...labels.map((label) => el("li", { className: "label-chip" }, [
    el("span", { text: label }),
    el("button", { attrs: { type: "button", "data-label": label } }, [
      el("span", { text: "×", attrs: { "aria-hidden": "true" } }),
      el("span", { className: "visually-hidden", text: `Remove label ${label}` }),
    ]),
  ])));
  const have = new Set(labels.map((l) => l.toLowerCase()));
  datalist.replaceChildren(...known.filter((l) => !have.has(l.toLowerCase()))
    .map((label) => el("option", { attrs: { value: label } })));
}

/** `{labels}`: the set with `text` added, or `{error}` saying why it cannot be. */
export function withLabel(labels, text) {
  const label = text.trim();
  if (!label) return { error: "Type or pick a label to add." };
  if (label.length > MAX_LABEL_CHARS) return { error: `A label has at most ${MAX_LABEL_CHARS} characters.` };
  if (FORBIDDEN.test(label)) return { error: "A label cannot contain commas or control characters." };
  if (labels.some((l) => l.toLowerCase() === label.toLowerCase())) {
    return { error: `The conversation already has the label ${label}.` };
  }
  if (labels.length >= MAX_LABELS) return { error: `A conversation has at most ${MAX_LABELS} labels.` };
  return { labels: [...labels, label], label };
}
