// WebRTC helpers of the live room: one peer connection per direction (the rooms contract),
// full offers and answers (no trickle: the server takes the candidates inside the SDP), and the
// browser's own getStats() figures reduced to the rooms plugin's report shape.

const GATHER_LIMIT_MS = 5000;

/** Resolve once ICE gathering is complete (or after a few seconds with what we have). */
export function iceGatheringComplete(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState !== "complete") return;
      pc.removeEventListener("icegatheringstatechange", done);
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      pc.removeEventListener("icegatheringstatechange", done);
      resolve();
    }, GATHER_LIMIT_MS);
    pc.addEventListener("icegatheringstatechange", done);
  });
}

/** The peer-connection configuration for the join ack's ICE servers. */
export function rtcConfig(iceServers) {
  return { iceServers: iceServers || [], bundlePolicy: "max-bundle" };
}

/**
 * Publish `stream` on a new send-only connection; `signal(offer)` returns the server's answer.
 * @returns {Promise<RTCPeerConnection>}
 */
export async function publishStream(stream, iceServers, signal) {
  const pc = new RTCPeerConnection(rtcConfig(iceServers));
  try {
    for (const track of stream.getTracks()) pc.addTransceiver(track, { direction: "sendonly" });
    await pc.setLocalDescription();
    await iceGatheringComplete(pc);
    const answer = await signal({ sdp: pc.localDescription.sdp, type: "offer" });
    await pc.setRemoteDescription({ sdp: answer.sdp, type: "answer" });
    return pc;
  } catch (error) {
    pc.close();
    throw error;
  }
}

/**
 * Answer a subscription offer; `onStream(stream)` gets the publisher's media,
 * `sendAnswer(answer)` delivers our answer.
 * @returns {Promise<RTCPeerConnection>}
 */
export async function answerSubscription(offer, iceServers, onStream, sendAnswer) {
  const pc = new RTCPeerConnection(rtcConfig(iceServers));
  const stream = new MediaStream();
  pc.addEventListener("track", (event) => {
    stream.addTrack(event.track);
    onStream(stream);
  });
  try {
    await pc.setRemoteDescription({ sdp: offer.sdp, type: "offer" });
    await pc.setLocalDescription();
    await iceGatheringComplete(pc);
    await sendAnswer({ sdp: pc.localDescription.sdp, type: "answer" });
    return pc;
  } catch (error) {
    pc.close();
    throw error;
  }
}

const number = (value) => (typeof value === "number" && Number.isFinite(value) ? value : undefined);

function compact(report) {
  return Object.fromEntries(Object.entries(report).filter(([, v]) => v !== undefined));
}

/**
 * The figures of one connection in the `rtc:stats` report shape, plus the worst round-trip
 * time and loss seen (for the quality indicator).
 */
export async function connectionFigures(pc) {
  const reports = [];
  let rtt;
  let loss;
  const stats = await pc.getStats();
  const remote = new Map();
  stats.forEach((s) => {
    if (s.type === "remote-inbound-rtp") remote.set(s.localId, s);
    if (s.type === "candidate-pair" && s.nominated && number(s.currentRoundTripTime) !== undefined) {
      rtt = Math.max(rtt ?? 0, s.currentRoundTripTime);
    }
  });
  stats.forEach((s) => {
    if (s.kind !== "audio" && s.kind !== "video") return;
    if (s.type === "outbound-rtp") {
      const far = remote.get(s.id) || {};
      const lost = number(far.fractionLost);
      if (lost !== undefined) loss = Math.max(loss ?? 0, lost);
      if (number(far.roundTripTime) !== undefined) rtt = Math.max(rtt ?? 0, far.roundTripTime);
      reports.push(compact({
        direction: "outbound", kind: s.kind, bytes: number(s.bytesSent),
        packets: number(s.packetsSent), packets_lost: number(far.packetsLost),
        jitter: number(far.jitter), round_trip_time: number(far.roundTripTime),
        fraction_lost: lost === undefined ? undefined : Math.min(1, Math.max(0, lost)),
        frames_per_second: number(s.framesPerSecond),
      }));
    } else if (s.type === "inbound-rtp") {
      const received = number(s.packetsReceived) || 0;
      const lost = Math.max(0, number(s.packetsLost) || 0);
      if (received + lost > 0) loss = Math.max(loss ?? 0, lost / (received + lost));
      reports.push(compact({
        direction: "inbound", kind: s.kind, bytes: number(s.bytesReceived),
        packets: number(s.packetsReceived), packets_lost: number(s.packetsLost),
        jitter: number(s.jitter), frames_per_second: number(s.framesPerSecond),
        frames_decoded: number(s.framesDecoded), frames_dropped: number(s.framesDropped),
      }));
    }
  });
  return { reports, rtt, loss };
}

/** "good", "fair" or "poor" from a round-trip time (s) and a loss fraction. */
export function qualityOf(rtt, loss) {
  if (rtt === undefined && loss === undefined) return "unknown";
  if ((rtt ?? 0) > 0.4 || (loss ?? 0) > 0.08) return "poor";
  if ((rtt ?? 0) > 0.15 || (loss ?? 0) > 0.02) return "fair";
  return "good";
}

/** A short description of the figures ("round trip 12 ms, loss 0.0 %"). */
export function describeFigures(rtt, loss) {
  const parts = [];
  if (rtt !== undefined) parts.push(`round trip ${Math.round(rtt * 1000)} ms`);
  if (loss !== undefined) parts.push(`loss ${(loss * 100).toFixed(1)} %`);
  return parts.join(", ");
}
