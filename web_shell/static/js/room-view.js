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
    this.list.tabIndex = -1; // focus lands here when a focused control goes away
    this.remoteTiles = new Map(); // participant id -> <li>
    this.confirming = null; // the participant whose kick awaits confirmation
    this.focusNext = null;
    this.signature = null;
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
    this.last = { participants, context: { selfId, moderates, quality } };
    const rows = participants.map((p) => {
      const q = quality.get(p.participant_id);
      return { p, self: p.participant_id === selfId, q, controls: moderates && p.participant_id !== selfId,
        meta: [ROLE_LABEL[p.role] || "", p.kinds.length ? "publishing" : "", mutedText(p.muted)]
          .filter(Boolean).join(" · ") };
    });
    // Unchanged lists are left alone, and focus survives a re-render (keyboard users).
    const signature = JSON.stringify([rows.map((r) => [r.p.participant_id, r.p.user.name, r.meta,
      r.q?.level, r.q?.detail, r.controls, r.p.host_muted]), this.confirming]);
    if (signature === this.signature) return;
    this.signature = signature;
    const focused = document.activeElement;
    const keep = this.list.contains(focused) ? [focused.closest("li")?.dataset.participant,
      focused.dataset.action] : null;
    $("people-count").textContent = `(${participants.length})`;
    this.list.replaceChildren(...rows.map(({ p, self, q, meta, controls }) => {
      const item = el("li", { className: "participant" }, [
        el("span", { className: "participant-name", text: self ? `${p.user.name} (you)` : p.user.name }),
        meta ? el("span", { className: "participant-meta", text: meta }) : null,
        q ? el("span", { className: `participant-meta q-${q.level}`, text: `connection ${q.level}`,
          attrs: { title: q.detail } }) : null,
      ]);
      item.dataset.participant = p.participant_id;
      if (controls) item.append(this.controls(p));
      return item;
    }));
    const target = this.focusNext || keep;
    this.focusNext = null;
    if (target) {
      const item = [...this.list.children].find((li) => li.dataset.participant === target[0]);
      (item?.querySelector(`[data-action="${target[1]}"]`) || (keep ? this.list : null))?.focus();
    }
  }

  rerender() {
    if (this.last) this.renderParticipants(this.last.participants, this.last.context);
  }

  /** Mute/unmute and kick buttons; a kick asks for confirmation first. */
  controls(p) {
    const name = p.user.name;
    const button = (text, action, className, onClick) => {
      const node = el("button", { className: `button ${className}`, text, attrs: { type: "button" } });
      node.dataset.action = action;
      node.addEventListener("click", onClick);
      return node;
    };
    const id = p.participant_id;
    if (this.confirming === id) {
      return el("span", { className: "participant-actions" }, [
        button(`Confirm kick of ${name}`, "confirm-kick", "button-danger", () => {
          this.confirming = null;
          this.actions.onKick(p);
        }),
        button("Cancel", "cancel-kick", "button-quiet", () => {
          this.confirming = null;
          this.focusNext = [id, "kick"];
          this.rerender();
        }),
      ]);
    }
    const hostMuted = (p.host_muted || []).includes("audio");
    return el("span", { className: "participant-actions" }, [
      button(hostMuted ? `Unmute ${name}` : `Mute ${name}`, "mute", "button-quiet",
        () => this.actions.onMute(p, !hostMuted)),
      button(`Kick ${name}`, "kick", "button-danger", () => {
        this.confirming = id;
        this.focusNext = [id, "confirm-kick"];
        this.rerender();
      }),
    ]);
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
  if (reason === "pin_required") return "This room is private: enter its PIN.";
  if (reason === "pin_invalid") return "That PIN is wrong, expired or already used.";
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
