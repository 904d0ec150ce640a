// The open rooms on `/rooms` for moderators, admins and operators (`GET /api/v1/rooms`).

import { el } from "./dom.js";
import { SessionToken } from "./session-token.js";

const status = document.getElementById("open-status");
const list = document.getElementById("open-rooms");
const tokens = new SessionToken(() => window.location.assign("/login?next=/rooms"));

async function load() {
  try {
    const { rooms } = await tokens.json("GET", "/api/v1/rooms");
    list.replaceChildren(...rooms.map((room) => el("li", {}, [
      el("a", { text: room.room, attrs: { href: `/rooms/${encodeURIComponent(room.room)}` } }),
      el("span", { className: "hint", text: `${room.publishers} on stage, ${room.listeners} `
        + `listening, ${room.publishing} publishing${room.locked ? ", locked" : ""}` }),
    ])));
    status.textContent = rooms.length ? `${rooms.length} open room${rooms.length === 1 ? "" : "s"}.`
      : "No room is open right now.";
  } catch (error) {
    status.textContent = `Could not load the open rooms: ${error.message}`;
  }
}

load();
