// The live room's DOM: video tiles, the participant list with host controls, the activity log.
// Names and reasons come from other users: they only ever go through textContent.

import { el } from "./dom.js";

const $ = (id) => document.getElementById(id);
const MAX_ACTIVITY = 30;
const ROLE_LABEL = { host: "host", publisher: "", listener: "listener" };

export class RoomView {
  /** @param {{onMute: (p: object, muted: boolean) => void, onKick: (p: object) => void}} actions */
  constructor(actions) {
    this.actions = actions;
    this.tiles = $("tiles");
    this.selfTile = $("self-tile");
    this.selfVideo = $("self-video");
    this.list = $("participants");
    this.activity = $("activity");
    this.remoteTiles = new Map(); // participant id -> <li>
  }

  /** Say something in the activity log (a polite live region). */
  announce(text) {
    const item = el("li", { className: "activity-item", text });
    this.activity.prepend(item);
    while (this.activity.children.length > MAX_ACTIVITY) this.activity.lastElementChild.remove();
  }

  showPreview(stream) {
    this.selfVideo.srcObject = stream;
    this.selfTile.hidden = !stream;
    this.updateEmpty();
  }

  setSelfState(text) {
    $("self-state").textContent = text;
  }

  /** Show (or replace) the media of a remote publisher. */
  showRemote(participant, stream) {
    let tile = this.remoteTiles.get(participant.participant_id);
    if (!tile) {
      const video = el("video", { className: "tile-video",
        attrs: { autoplay: "", playsinline: "", "aria-label": `Video of ${participant.user.name}` } });
      const caption = el("p", { className: "tile-caption" }, [
        el("span", { className: "tile-name", text: participant.user.name }),
        el("span", { className: "tile-state" }),
      ]);
      tile = el("li", { className: "tile" }, [video, caption]);
      tile.dataset.participant = participant.participant_id;
      this.tiles.append(tile);
      this.remoteTiles.set(participant.participant_id, tile);
    }
    const video = tile.querySelector("video");
    if (video.srcObject !== stream) video.srcObject = stream;
    this.play(tile, video);
    this.updateTileState(participant);
    this.updateEmpty();
  }

  /** Start playback; if the browser blocks sound without a gesture, play muted and offer a button. */
  play(tile, video) {
    video.play().catch(() => {
      video.muted = true;
      video.play().catch(() => {});
      if (tile.querySelector(".sound-button")) return;
      const button = el("button", { className: "button sound-button", text: "Turn on sound",
        attrs: { type: "button" } });
      button.addEventListener("click", () => {
        video.muted = false;
        video.play().catch(() => {});
        button.remove();
      });
      tile.append(button);
    });
  }

  removeRemote(participantId) {
    const tile = this.remoteTiles.get(participantId);
    if (!tile) return;
    const video = tile.querySelector("video");
    video.srcObject = null;
    tile.remove();
    this.remoteTiles.delete(participantId);
    this.updateEmpty();
  }

  clearRemotes() {
    for (const id of [...this.remoteTiles.keys()]) this.removeRemote(id);
  }

  updateTileState(participant) {
    const tile = this.remoteTiles.get(participant.participant_id);
    if (tile) tile.querySelector(".tile-state").textContent = mutedText(participant.muted);
  }

  updateEmpty() {
    $("stage-empty").hidden = this.remoteTiles.size > 0 || !this.selfTile.hidden;
  }

  /**
   * Render the participant list.
   * @param {object[]} participants in join order
   * @param {{selfId: string, moderates: boolean, quality: Map<string, string>}} context
   */
  renderParticipants(participants, { selfId, moderates, quality }) {
    $("people-count").textContent = `(${participants.length})`;
    this.list.replaceChildren(...participants.map((p) => {
      const self = p.participant_id === selfId;
      const meta = [ROLE_LABEL[p.role] || "", p.kinds.length ? "publishing" : "",
        mutedText(p.muted)].filter(Boolean).join(" · ");
      const q = quality.get(p.participant_id);
      const item = el("li", { className: "participant" }, [
        el("span", { className: "participant-name", text: self ? `${p.user.name} (you)` : p.user.name }),
        meta ? el("span", { className: "participant-meta", text: meta }) : null,
        q ? el("span", { className: `participant-meta q-${q.level}`, text: `connection ${q.level}`,
          attrs: { title: q.detail } }) : null,
      ]);
      item.dataset.participant = p.participant_id;
      if (moderates && !self) item.append(this.controls(p));
      return item;
    }));
  }

  controls(p) {
    const hostMuted = (p.host_muted || []).includes("audio");
    const mute = el("button", { className: "button button-quiet",
      text: hostMuted ? `Unmute ${p.user.name}` : `Mute ${p.user.name}`, attrs: { type: "button" } });
    mute.addEventListener("click", () => this.actions.onMute(p, !hostMuted));
    const kick = el("button", { className: "button button-danger", text: `Kick ${p.user.name}`,
      attrs: { type: "button" } });
    kick.addEventListener("click", () => this.actions.onKick(p));
    return el("span", { className: "participant-actions" }, [mute, kick]);
  }
}

/** "microphone muted", "camera off", both, or "". */
export function mutedText(kinds) {
  const parts = [];
  if ((kinds || []).includes("audio")) parts.push("microphone muted");
  if ((kinds || []).includes("video")) parts.push("camera off");
  return parts.join(", ");
}

/** The readable text of an ack's error (`{code, message, reason?, …}`). */
export function errorText(error) {
  const reason = error?.reason;
  if (reason === "kicked") {
    const minutes = Math.ceil((error.retry_after_ms || 0) / 60000);
    return `You were removed from this room; you may rejoin in ${minutes} minute${minutes === 1 ? "" : "s"}.`;
  }
  if (reason === "room_locked") return "This room is locked: new people cannot join right now.";
  if (reason === "room_full") return `This room is full (${error.limit} ${error.slot} places).`;
  if (reason === "host_muted") return "A host muted you: only a host can unmute you.";
  if (reason === "listener") return "You joined as a listener: listeners cannot publish.";
  return error?.message || "Something went wrong. Try again.";
}

/** "microphone", "camera" or both. */
export function mutedKinds(kinds) {
  return kinds.map((k) => (k === "audio" ? "microphone" : "camera")).join(" and ");
}
