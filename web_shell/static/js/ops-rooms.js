// The operator console's live rooms: `GET /api/v1/rooms` (open rooms and their counts), then
// `GET /api/v1/rooms/{room}/telemetry` per room, one table row per participant with what they
// send and receive, and the worst packet loss, jitter and round-trip time of each direction.

import { el } from "./dom.js";

const integer = (n) => Math.round(n).toLocaleString();

/** Bits per second as people read them. */
export function bitrate(bps) {
  if (bps === null || bps === undefined) return "—";
  if (bps < 1000) return `${integer(bps)} bit/s`;
  if (bps < 1_000_000) return `${(bps / 1000).toFixed(1)} kbit/s`;
  return `${(bps / 1_000_000).toFixed(2)} Mbit/s`;
}

const percent = (fraction) => `${(fraction * 100).toFixed(1)} %`;
const millis = (seconds) => `${(seconds * 1000).toFixed(seconds < 0.01 ? 1 : 0)} ms`;

/** The largest non-null `name` of `tracks`, or null. */
function worst(tracks, name) {
  const values = tracks.map((t) => t[name]).filter((v) => v !== null && v !== undefined);
  return values.length ? Math.max(...values) : null;
}

/** "in 0.5 % · out 1.0 %" for a figure measured on both directions (— when neither is known). */
function both(received, sent, format) {
  const parts = [];
  if (received !== null) parts.push(`in ${format(received)}`);
  if (sent !== null) parts.push(`out ${format(sent)}`);
  return parts.join(" · ") || "—";
}

function sends(participant) {
  const tracks = participant.publish?.tracks || [];
  if (!tracks.length) return participant.role === "listener" ? "— (listener)" : "—";
  const muted = new Set(participant.muted || []);
  return tracks.map((t) => `${t.kind}${t.codec ? ` ${t.codec}` : ""} ${bitrate(t.bitrate_bps)}`
    + (t.fps !== undefined ? ` ${Math.round(t.fps)} fps` : "")
    + (muted.has(t.kind) || t.forwarding === false ? " (muted)" : "")).join("; ");
}

function receives(participant) {
  const tracks = (participant.subscriptions || []).flatMap((s) => s.tracks);
  if (!tracks.length) return "—";
  const total = tracks.reduce((n, t) => n + (t.bitrate_bps || 0), 0);
  return `${tracks.length} stream${tracks.length === 1 ? "" : "s"}, ${bitrate(total)}`;
}

/** One table row per participant of a room's telemetry document. */
export function participantRows(room) {
  return room.participants.map((participant) => {
    const inbound = participant.publish?.tracks || [];
    const outbound = (participant.subscriptions || []).flatMap((s) => s.tracks);
    const row = el("tr", {}, [
      el("th", { text: `#${room.room}${room.locked ? " (locked)" : ""}`, attrs: { scope: "row" } }),
      el("td", { text: participant.user?.name || participant.participant_id }),
      el("td", { text: participant.role }),
      el("td", { className: "wrap", text: sends(participant) }),
      el("td", { text: receives(participant) }),
      el("td", { text: both(worst(inbound, "packet_loss"), worst(outbound, "packet_loss"), percent) }),
      el("td", { text: both(worst(inbound, "jitter_s"), worst(outbound, "jitter_s"), millis) }),
      el("td", { text: worst(outbound, "rtt_s") === null ? "—" : millis(worst(outbound, "rtt_s")) }),
    ]);
    row.dataset.room = room.room;
    row.dataset.participant = participant.participant_id;
    return row;
  });
}

function onlyRow(text) {
  return el("tr", {}, [el("td", { text, attrs: { colspan: "8" } })]);
}

/** Fetch the open rooms and their telemetry and render them into `ui.summary`/`ui.rows`. */
export async function loadRooms(tokens, ui) {
  const response = await tokens.fetch("/api/v1/rooms", { headers: { Accept: "application/json" } });
  if (response.status === 404) {
    ui.summary.textContent = "Rooms are switched off on this node.";
    ui.rows.replaceChildren(onlyRow("No rooms."));
    return;
  }
  if (!response.ok) throw new Error(`rooms: HTTP ${response.status}`);
  const { rooms } = await response.json();
  const documents = await Promise.all(rooms.map(async (room) => {
    const answer = await tokens.fetch(`/api/v1/rooms/${encodeURIComponent(room.room)}/telemetry`,
      { headers: { Accept: "application/json" } });
    if (answer.status === 404) return null; // closed in between
    if (!answer.ok) throw new Error(`room telemetry: HTTP ${answer.status}`);
    return answer.json();
  }));
  const open = documents.filter(Boolean);
  const people = open.reduce((n, r) => n + r.participants.length, 0);
  const bitIn = open.reduce((n, r) => n + r.bitrate_in_bps, 0);
  const bitOut = open.reduce((n, r) => n + r.bitrate_out_bps, 0);
  ui.summary.textContent = open.length === 0 ? "No open rooms."
    : `${open.length} open room${open.length === 1 ? "" : "s"}, ${integer(people)} `
      + `participant${people === 1 ? "" : "s"}; media in ${bitrate(bitIn)}, out ${bitrate(bitOut)}.`;
  const rows = open.flatMap(participantRows);
  ui.rows.replaceChildren(...(rows.length ? rows : [onlyRow("No open rooms.")]));
}
