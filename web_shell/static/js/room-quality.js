// Connection quality of the live room: the browser's own getStats() figures every 2 s (shown
// in the page's indicator and, if the server offers a stats event, reported to the room's
// telemetry), and for hosts and staff the room's telemetry per participant every 4 s.

import { connectionFigures, describeFigures, qualityOf } from "./room-rtc.js";

const STATS_MS = 2000;
const TELEMETRY_MS = 4000;
// Events a browser may report its figures with: the first the server knows is kept (an
// unknown event answers `not_found`, so the page works with servers that have neither).
const STATS_EVENTS = ["room:stats", "rtc:stats"];
const MAX_REPORTS = 32;

export class QualityMonitor {
  /**
   * @param {{conn: object, tokens: object, room: string,
   *          connections: () => RTCPeerConnection[], active: () => boolean,
   *          mayReadTelemetry: () => boolean,
   *          onOwn: (quality: {level: string, detail: string}) => void,
   *          onParticipants: (byId: Map<string, {level: string, detail: string}>) => void}} options
   */
  constructor(options) {
    this.options = options;
    this.statsEvents = [...STATS_EVENTS];
    this.byParticipant = new Map();
    this.telemetryOk = false;
    this.timers = [setInterval(() => this.sample(), STATS_MS),
      setInterval(() => this.poll(), TELEMETRY_MS)];
  }

  /** Forget the figures of a visit (after leaving or a lost connection). */
  reset() {
    this.byParticipant.clear();
    this.telemetryOk = false;
  }

  /** Drop one participant's figures. */
  forget(participantId) {
    this.byParticipant.delete(participantId);
  }

  /** The browser's own figures over every connection of this page. */
  async sample() {
    const { active, connections, onOwn } = this.options;
    if (!active()) return;
    const pcs = connections();
    if (!pcs.length) return;
    const figures = await Promise.all(pcs.map((pc) => connectionFigures(pc).catch(() => null)));
    const reports = [];
    let rtt;
    let loss;
    for (const f of figures.filter(Boolean)) {
      reports.push(...f.reports);
      if (f.rtt !== undefined) rtt = Math.max(rtt ?? 0, f.rtt);
      if (f.loss !== undefined) loss = Math.max(loss ?? 0, f.loss);
    }
    onOwn({ level: qualityOf(rtt, loss), detail: describeFigures(rtt, loss) });
    if (reports.length) this.report(reports.slice(0, MAX_REPORTS));
  }

  /** Send our figures with the first stats event the server knows (feature-detected). */
  async report(reports) {
    const event = this.statsEvents[0];
    const { conn, room } = this.options;
    if (!event || !conn.connected) return;
    const ack = await conn.call(event, { room, reports }).catch(() => null);
    if (ack && !ack.ok && ack.error?.code === "not_found") this.statsEvents.shift();
  }

  /** The room's telemetry (`GET /api/v1/rooms/{room}/telemetry`) for hosts and staff. */
  async poll() {
    const { active, mayReadTelemetry, tokens, room, onParticipants } = this.options;
    if (!active() || !mayReadTelemetry()) return;
    let doc;
    try {
      doc = await tokens.json("GET", `/api/v1/rooms/${encodeURIComponent(room)}/telemetry`);
    } catch {
      return; // e.g. 403 after losing the host role: the next poll asks again if it comes back
    }
    this.telemetryOk = true;
    for (const p of doc.participants) {
      const tracks = [...(p.publish?.tracks || []),
        ...(p.subscriptions || []).flatMap((s) => s.tracks || [])];
      const losses = tracks.map((t) => t.packet_loss).filter((v) => typeof v === "number");
      const rtts = tracks.map((t) => t.rtt_s).filter((v) => typeof v === "number");
      if (!losses.length && !rtts.length) continue;
      const rtt = rtts.length ? Math.max(...rtts) : undefined;
      const loss = losses.length ? Math.max(...losses) : undefined;
      this.byParticipant.set(p.participant_id, { level: qualityOf(rtt, loss),
        detail: describeFigures(rtt, loss) });
    }
    onParticipants(this.byParticipant);
  }
}
