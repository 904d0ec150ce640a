// The live room page: joins the room over the `/rooms` namespace, previews and publishes the
// camera and microphone, subscribes to every publisher (those already live when we join, and
// each new one), mute/unmute, leave; hosts and moderators mute others, kick and lock; the
// connection quality comes from getStats() and, for hosts and staff, the room's telemetry.

import { Connection } from "./connection.js";
import { RoomView, errorText, mutedKinds, mutedText } from "./room-view.js";
import { QualityMonitor } from "./room-quality.js";
import { answerSubscription, publishStream } from "./room-rtc.js";
import { SessionToken } from "./session-token.js";

const $ = (id) => document.getElementById(id);
const root = $("main");
const ROOM = root.dataset.room;
const STAFF = root.dataset.staff === "true";
const OBSERVER = root.dataset.observer === "true";

const ui = {
  status: $("room-status"), error: $("room-error"), preview: $("preview-button"),
  publish: $("publish-button"), mute: $("mute-button"), camera: $("camera-button"),
  lock: $("lock-button"), leave: $("leave-button"), rejoin: $("rejoin-button"),
  quality: $("quality"), qualityText: $("quality-text"),
  pinForm: $("pin-form"), pinInput: $("pin-input"),
};

const state = {
  joined: false, selfId: null, role: null, locked: false, iceServers: [],
  participants: new Map(), // participant id -> public participant
  subs: new Map(), // publisher id -> {pc, id, generation}
  generation: 0, pub: null, stream: null, wantPublish: false, leftOnPurpose: false,
  kicked: false,
};

const view = new RoomView({ onMute: muteOther, onKick: kick });
const tokens = new SessionToken(signedOut);
const conn = new Connection({
  onOnline: () => { if (!state.leftOnPurpose && !state.kicked) enter(); },
  onOffline: (reason) => offline(reason),
  onSignedOut: signedOut,
}, { namespace: "/rooms" });

function signedOut() {
  window.location.assign(`/login?next=${encodeURIComponent(window.location.pathname)}`);
}

// helpers --------------------------------------------------------------------------------------

const moderates = () => state.role === "host" || STAFF;
const me = () => state.participants.get(state.selfId);
const nameOf = (id) => state.participants.get(id)?.user.name || "Someone";

function say(text) {
  ui.status.textContent = text;
}

function fail(text) {
  if (ui.error.textContent !== text) ui.error.textContent = text; // the alert speaks on change
}

/** Emit and return the ack's data; throw an Error with a readable message otherwise. */
async function call(event, payload) {
  const ack = await conn.call(event, payload);
  if (!ack?.ok) {
    const error = new Error(errorText(ack?.error));
    error.code = ack?.error?.code;
    error.detail = ack?.error || {};
    throw error;
  }
  return ack.data;
}

function refreshControls() {
  const self = me();
  const muted = self?.muted || [];
  const canPublish = state.joined && state.role !== "listener";
  ui.publish.disabled = !canPublish || !!state.pub;
  ui.preview.disabled = !!state.pub; // the preview is the live picture while publishing
  ui.publish.textContent = state.pub ? "Publishing" : "Publish";
  ui.mute.disabled = !state.joined;
  ui.mute.textContent = muted.includes("audio") ? "Unmute" : "Mute";
  ui.camera.disabled = !state.joined;
  ui.camera.textContent = muted.includes("video") ? "Turn camera on" : "Turn camera off";
  ui.leave.disabled = !state.joined;
  ui.lock.hidden = !(state.joined && moderates());
  ui.lock.textContent = state.locked ? "Unlock room" : "Lock room";
  ui.rejoin.hidden = state.joined || !(state.leftOnPurpose || state.kicked);
  if (state.stream) {
    for (const track of state.stream.getTracks()) track.enabled = !muted.includes(track.kind);
  }
  view.setSelfState([state.pub ? "live" : "preview", mutedText(muted)].filter(Boolean).join(" · "));
  renderPeople();
}

function renderPeople() {
  view.renderParticipants([...state.participants.values()],
    { selfId: state.selfId, moderates: state.joined && moderates(), quality: quality.byParticipant });
}

// joining and leaving --------------------------------------------------------------------------

async function enter(role = "publisher", pin = null) {
  say("Joining…");
  let data;
  try {
    data = await call("room:join", pin ? { room: ROOM, role, pin } : { room: ROOM, role });
  } catch (error) {
    if (role === "publisher" && error.detail?.reason === "room_full"
        && error.detail.slot === "publisher") {
      view.announce("The publisher places are taken: joining as a listener.");
      return enter("listener", pin);
    }
    const reason = error.detail?.reason;
    if (reason === "pin_required" || reason === "pin_invalid") {
      say("Not in the room.");
      fail(reason === "pin_invalid" ? error.message : "");
      ui.pinForm.hidden = false;
      ui.pinInput.value = "";
      ui.pinInput.focus();
      return;
    }
    say("Not in the room.");
    fail(error.message);
    refreshControls();
    ui.rejoin.hidden = false;
    return;
  }
  fail("");
  ui.pinForm.hidden = true;
  Object.assign(state, { joined: true, selfId: data.participant_id, role: data.role,
    locked: data.locked, iceServers: data.ice_servers, leftOnPurpose: false, kicked: false });
  state.participants = new Map(data.participants.map((p) => [p.participant_id, p]));
  say(`You are in the room as ${data.role === "host" ? "its host"
    : data.role === "listener" ? "a listener (receive only)" : "a participant"}.`);
  view.announce(`You joined ${ROOM}.`);
  refreshControls();
  for (const publisher of data.publishers) {
    if (publisher.participant_id !== state.selfId) subscribe(publisher.participant_id);
  }
  if (state.wantPublish && state.role !== "listener") publish();
}

/** Close every connection of this visit (the local camera stays on unless `stopMedia`). */
function teardown({ stopMedia = false } = {}) {
  for (const sub of state.subs.values()) sub.pc?.close();
  state.subs.clear();
  state.generation += 1;
  state.pub?.close();
  state.pub = null;
  view.clearRemotes();
  state.joined = false;
  quality.reset();
  if (stopMedia && state.stream) {
    for (const track of state.stream.getTracks()) track.stop();
    state.stream = null;
    view.showPreview(null);
    ui.preview.textContent = "Preview camera";
  }
  refreshControls();
}

function offline(reason) {
  if (conn.connected) { // the browser says offline; the socket decides when we are out
    if (reason === "browser offline") say("Your device is offline: waiting for the network…");
    return;
  }
  if (!state.joined) return;
  teardown();
  say("Connection lost: reconnecting…");
}

async function leave() {
  try {
    await call("room:leave", { room: ROOM });
  } catch (error) {
    fail(error.message);
  }
  state.leftOnPurpose = true;
  state.wantPublish = false;
  teardown({ stopMedia: true });
  state.participants.clear();
  renderPeople();
  say("You left the room.");
  view.announce(`You left ${ROOM}.`);
  ui.rejoin.focus();
}

// media ----------------------------------------------------------------------------------------

async function camera() {
  if (!state.stream) {
    if (!navigator.mediaDevices?.getUserMedia) {
      throw new Error("Camera and microphone need a secure (HTTPS) connection to this site.");
    }
    state.stream = await navigator.mediaDevices.getUserMedia({
      audio: true, video: { width: { ideal: 640 }, height: { ideal: 480 } } });
    view.showPreview(state.stream);
    ui.preview.textContent = "Stop preview";
    refreshControls();
  }
  return state.stream;
}

async function togglePreview() {
  if (state.stream && !state.pub) {
    for (const track of state.stream.getTracks()) track.stop();
    state.stream = null;
    view.showPreview(null);
    ui.preview.textContent = "Preview camera";
    return;
  }
  try {
    await camera();
    fail("");
  } catch (error) {
    fail(`Camera or microphone unavailable: ${error.message}`);
  }
}

async function publish() {
  state.wantPublish = true;
  try {
    const stream = await camera();
    state.pub?.close();
    state.pub = null;
    const pc = await publishStream(stream, state.iceServers,
      (offer) => call("rtc:publish", { room: ROOM, ...offer }));
    if (!state.joined) { pc.close(); return; }
    state.pub = pc;
    pc.addEventListener("connectionstatechange", () => {
      if (pc.connectionState === "failed" && state.pub === pc && state.joined) {
        say("Your connection failed: publishing again…");
        publish(); // aiortc has no ICE restart: a new connection
      }
    });
    fail("");
    say("You are live: everyone in the room sees and hears you.");
    view.announce("You started publishing.");
  } catch (error) {
    state.wantPublish = false;
    fail(error.message.startsWith("Permission") || error.name === "NotAllowedError"
      ? "The browser did not allow the camera or microphone." : error.message);
  }
  refreshControls();
}

async function subscribe(publisherId) {
  const previous = state.subs.get(publisherId);
  previous?.pc?.close();
  if (previous?.id) call("rtc:unsubscribe", { subscription_id: previous.id }).catch(() => {});
  const generation = ++state.generation;
  const entry = { pc: null, id: null, generation };
  state.subs.set(publisherId, entry);
  const current = () => state.subs.get(publisherId) === entry;
  try {
    const offer = await call("rtc:subscribe", { room: ROOM, publisher: publisherId });
    if (!current()) return;
    entry.id = offer.subscription_id;
    entry.pc = await answerSubscription(offer, state.iceServers, (stream) => {
      const publisher = state.participants.get(publisherId);
      if (current() && publisher) view.showRemote(publisher, stream);
    }, (answer) => call("rtc:answer", { subscription_id: offer.subscription_id, ...answer }));
    if (!current()) { entry.pc.close(); return; }
    entry.pc.addEventListener("connectionstatechange", () => {
      if (entry.pc.connectionState === "failed" && current()) subscribe(publisherId);
    });
  } catch (error) {
    if (current()) {
      state.subs.delete(publisherId);
      fail(`Could not receive ${nameOf(publisherId)}: ${error.message}`);
    }
  }
}

function unsubscribe(publisherId) {
  const entry = state.subs.get(publisherId);
  state.subs.delete(publisherId);
  entry?.pc?.close();
  if (entry?.id) call("rtc:unsubscribe", { subscription_id: entry.id }).catch(() => {});
  view.removeRemote(publisherId);
}

// controls -------------------------------------------------------------------------------------

async function muteSelf(kind) {
  const muted = !(me()?.muted || []).includes(kind);
  try {
    await call("room:mute", { room: ROOM, muted, kinds: [kind] }); // room:muted updates us
    fail("");
  } catch (error) {
    fail(error.message);
  }
}

async function muteOther(participant, muted) {
  try {
    await call("room:mute", { room: ROOM, muted, kinds: ["audio"],
      participant_id: participant.participant_id });
    fail("");
  } catch (error) {
    fail(error.message);
  }
}

async function kick(participant) {
  try {
    await call("room:kick", { room: ROOM, participant_id: participant.participant_id });
    fail("");
  } catch (error) {
    fail(error.message);
  }
}

async function toggleLock() {
  try {
    await call("room:lock", { room: ROOM, locked: !state.locked });
    fail("");
  } catch (error) {
    fail(error.message);
  }
}

// server events --------------------------------------------------------------------------------

conn.on("room:joined", (p) => {
  state.participants.set(p.participant_id, p);
  view.announce(`${p.user.name} joined.`);
  renderPeople();
});

conn.on("room:left", (e) => {
  const name = nameOf(e.participant_id);
  unsubscribe(e.participant_id);
  state.participants.delete(e.participant_id);
  quality.forget(e.participant_id);
  view.announce(e.reason === "kicked" ? `${name} was removed by ${nameOf(e.by)}.`
    : e.reason === "disconnected" ? `${name} lost their connection.` : `${name} left.`);
  renderPeople();
});

conn.on("room:published", (e) => {
  const p = state.participants.get(e.participant_id);
  if (p) Object.assign(p, { kinds: e.kinds, muted: e.muted });
  if (e.participant_id === state.selfId) return refreshControls();
  view.announce(`${nameOf(e.participant_id)} is live.`);
  subscribe(e.participant_id);
  renderPeople();
});

conn.on("room:unpublished", (e) => {
  const p = state.participants.get(e.participant_id);
  if (p) p.kinds = [];
  if (e.participant_id !== state.selfId) unsubscribe(e.participant_id);
  renderPeople();
});

conn.on("rtc:subscription_closed", (e) => {
  for (const [publisherId, entry] of state.subs) {
    if (entry.id === e.subscription_id) unsubscribe(publisherId);
  }
});

conn.on("room:muted", (e) => {
  const p = state.participants.get(e.participant_id);
  if (!p) return;
  Object.assign(p, { muted: e.state, host_muted: e.host_muted });
  view.updateTileState(p);
  if (e.participant_id === state.selfId && e.by !== state.selfId) {
    view.announce(`${nameOf(e.by)} ${e.muted ? "muted" : "unmuted"} your ${mutedKinds(e.kinds)}.`);
  } else if (e.by !== e.participant_id) {
    view.announce(`${nameOf(e.by)} ${e.muted ? "muted" : "unmuted"} ${p.user.name}.`);
  }
  refreshControls();
});

conn.on("room:kicked", (e) => {
  state.kicked = true;
  state.wantPublish = false;
  teardown({ stopMedia: true });
  state.participants.clear();
  renderPeople();
  say("You are no longer in the room.");
  fail(`You were removed from this room by a host${e.reason ? `. Reason: ${e.reason}` : "."}`);
});

conn.on("room:host", (e) => {
  const p = state.participants.get(e.participant_id);
  if (p) p.role = "host";
  if (e.participant_id === state.selfId) state.role = "host";
  view.announce(e.participant_id === state.selfId ? "You are now the host."
    : `${nameOf(e.participant_id)} is now the host.`);
  refreshControls();
});

conn.on("room:locked", (e) => {
  state.locked = e.locked;
  view.announce(`${nameOf(e.by)} ${e.locked ? "locked" : "unlocked"} the room.`);
  refreshControls();
});


// wiring ---------------------------------------------------------------------------------------

ui.preview.addEventListener("click", togglePreview);
ui.publish.addEventListener("click", publish);
ui.mute.addEventListener("click", () => muteSelf("audio"));
ui.camera.addEventListener("click", () => muteSelf("video"));
ui.lock.addEventListener("click", toggleLock);
ui.leave.addEventListener("click", leave);
ui.pinForm.addEventListener("submit", (event) => {
  event.preventDefault();
  if (!ui.pinInput.checkValidity()) {
    fail("The PIN has 8 digits.");
    ui.pinInput.focus();
    return;
  }
  enter("publisher", ui.pinInput.value);
});

ui.rejoin.addEventListener("click", () => {
  state.leftOnPurpose = false;
  state.kicked = false;
  if (conn.connected) enter(); else conn.start();
});
window.addEventListener("pagehide", () => {
  if (state.joined) conn.call("room:leave", { room: ROOM }).catch(() => {});
});
const quality = new QualityMonitor({
  conn, tokens, room: ROOM,
  connections: () => [state.pub, ...[...state.subs.values()].map((s) => s.pc)].filter(Boolean),
  active: () => state.joined,
  mayReadTelemetry: () => moderates() || OBSERVER,
  onOwn: ({ level, detail }) => {
    ui.quality.dataset.quality = level;
    ui.qualityText.textContent = level === "unknown" ? "not measured yet"
      : `${level}${detail ? ` (${detail})` : ""}`;
    if (!quality.telemetryOk && level !== "unknown") {
      quality.byParticipant.set(state.selfId, { level, detail });
      renderPeople();
    }
  },
  onParticipants: () => renderPeople(),
});
refreshControls();
conn.start();
