// `/rooms`: upcoming scheduled sessions for everyone (`GET /api/v1/rooms/sessions`), and the open
// rooms for moderators, admins and operators (`GET /api/v1/rooms`).

import { el } from "./dom.js";
import { SessionToken } from "./session-token.js";

const tokens = new SessionToken(() => window.location.assign("/login?next=/rooms"));
const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

function roomLink(room, text) {
  return el("a", { text, attrs: { href: `/rooms/${encodeURIComponent(room)}` } });
}

async function loadSessions() {
  const status = document.getElementById("sessions-status");
  const list = document.getElementById("sessions");
  try {
    const { sessions } = await tokens.json("GET", "/api/v1/rooms/sessions");
    const live = sessions.filter((s) => s.status !== "cancelled");
    list.replaceChildren(...live.map((s) => el("li", {}, [
      roomLink(s.room, s.title),
      el("span", { className: "hint", text: `with ${s.host.name}, `
        + `${timeFormat.format(new Date(s.starts_at))} to ${timeFormat.format(new Date(s.ends_at))}`
        + ` · #${s.channel}` }),
    ])));
    status.textContent = live.length ? `${live.length} upcoming session${live.length === 1 ? "" : "s"}.`
      : "No live session is scheduled.";
  } catch (error) {
    // Scheduled sessions need the embedded store; elsewhere the section says why.
    status.textContent = `Scheduled sessions are not available: ${error.message}`;
  }
}

async function loadOpenRooms() {
  const status = document.getElementById("open-status");
  const list = document.getElementById("open-rooms");
  if (!status || !list) return; // members: the open rooms are for staff
  try {
    const { rooms } = await tokens.json("GET", "/api/v1/rooms");
    list.replaceChildren(...rooms.map((room) => el("li", {}, [
      roomLink(room.room, room.room),
      el("span", { className: "hint", text: `${room.publishers} on stage, ${room.listeners} `
        + `listening, ${room.publishing} publishing${room.locked ? ", locked" : ""}` }),
    ])));
    status.textContent = rooms.length ? `${rooms.length} open room${rooms.length === 1 ? "" : "s"}.`
      : "No room is open right now.";
  } catch (error) {
    status.textContent = `Could not load the open rooms: ${error.message}`;
  }
}

loadSessions();
loadOpenRooms();
