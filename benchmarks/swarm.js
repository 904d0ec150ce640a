#!/usr/bin/env node
// The one load generator of the fan-out benchmark (the same for every server under test).
//
// Official socket.io-client 4 over WebSocket only. N subscribers join one channel; P publishers
// send `message:send` back to back (closed loop: each waits for its ack, then sends the next) for
// the warm-up plus the measured duration. Each message carries its send time (epoch
// microseconds) in its client_id and text, so subscribers measure delivery latency (send ->
// `message:new` received) and publishers measure ack latency (send -> ack received).
//
// Subscribers are split over K worker processes, publishers run in one more process of their
// own, so the generator is not the bottleneck and a busy subscriber never delays an ack; the
// controller (this process without --worker) merges the workers' histograms and counters.
//
// Usage:
//   node swarm.js --url http://127.0.0.1:8080 [--subscribers 200] [--publishers 4]
//       [--duration 10] [--warmup 1] [--workers 2] [--channel general]
//       [--token TOKEN | --token-file FILE] [--text-bytes 40] [--drain 10]
//       [--connect-timeout 30] [--ack-timeout 10] [--publishers-join] [--rate MSG_PER_S]
// --deflate offer|off: offer permessage-deflate (default, like browsers) or not.
// --rate R: instead of the closed loop, the publishers together send R messages/s on a fixed
// schedule (open loop; latency measured from each message's due time).
// --token-file: one token per line; connection i (subscribers 0..N-1, then publishers
// N..N+P-1) uses line i modulo the number of lines. Without tokens "bench" is sent.
//
// Many channels (members): --channels C spreads the subscribers over C channels (subscriber i
// joins `<channel>-<i mod C>`; with C = 1 everyone joins `<channel>`). --member-rate R makes every
// subscriber a member that also sends R msg/s into its own channel (fixed schedule, latency from
// the due time); no separate publishers then (--publishers is ignored). Expected deliveries are
// computed per channel (acked messages x members of that channel, sender included).
//
// Join storm: --join-storm connects the subscribers (set-up, timed: `connect_s`), then makes all
// of them emit `channel:join` at the same instant and reports the time until the last join ack
// (`join_storm_s`) and per-join ack latency. --history H first sends H messages into the channel
// from the publisher connection, so every join ack carries history (checked: `history_min`).
//
// Output: one JSON object on stdout (see README.md, "What each figure means"). Exit status
// 0 when the run is valid (no errors, every acked message delivered to every subscriber),
// 1 when it ran but is invalid, 2 on a usage error or a timeout of the whole run.
"use strict";

const { fork } = require("node:child_process");
const fs = require("node:fs");
const { performance } = require("node:perf_hooks");

// ---------------------------------------------------------------------------------- options

const DEFAULTS = {
  url: "http://127.0.0.1:8080",
  "sub-urls": null,
  subscribers: 200,
  publishers: 4,
  duration: 10,
  warmup: 1,
  workers: 2,
  channel: "general",
  token: null,
  "token-file": null,
  "text-bytes": 40,
  drain: 10,
  "connect-timeout": 30,
  "ack-timeout": 10,
  "connect-concurrency": 50,
  "publishers-join": false,
  rate: 0,
  deflate: "offer",
  channels: 1,
  "member-rate": 0,
  "join-storm": false,
  history: 0,
};
const NUMERIC = new Set([
  "subscribers", "publishers", "duration", "warmup", "workers", "text-bytes", "drain",
  "connect-timeout", "ack-timeout", "connect-concurrency", "rate", "channels", "member-rate",
  "history",
]);
const FLAGS = new Set(["publishers-join", "join-storm"]);

function parseArgs(argv) {
  const opts = { ...DEFAULTS };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith("--")) throw new Error(`unexpected argument ${arg}`);
    const name = arg.slice(2);
    if (name === "worker") { opts.worker = true; continue; }
    if (FLAGS.has(name)) { opts[name] = true; continue; }
    if (!(name in DEFAULTS)) throw new Error(`unknown option --${name}`);
    const value = argv[++i];
    if (value === undefined) throw new Error(`--${name} needs a value`);
    opts[name] = NUMERIC.has(name) ? Number(value) : value;
    if (NUMERIC.has(name) && !Number.isFinite(opts[name])) throw new Error(`--${name}: not a number`);
    if (name === "deflate" && !["offer", "off"].includes(value)) throw new Error("--deflate offer|off");
  }
  if (opts["member-rate"] > 0) opts.publishers = 0; // members send; no separate publishers
  if (opts["join-storm"]) opts.publishers = 1; // the history seeder
  const needPublishers = opts["member-rate"] > 0 ? 0 : 1;
  if (opts.subscribers < 1 || opts.publishers < needPublishers || opts.workers < 1
      || opts.duration <= 0 || opts.channels < 1) {
    throw new Error("subscribers, publishers, workers, channels and duration must be positive");
  }
  return opts;
}

function loadTokens(opts) {
  if (opts["token-file"]) {
    const lines = fs.readFileSync(opts["token-file"], "utf8").split("\n").map((s) => s.trim());
    const tokens = lines.filter((s) => s.length > 0);
    if (tokens.length === 0) throw new Error("token file is empty");
    return tokens;
  }
  return [opts.token || "bench"];
}

// ------------------------------------------------------------------------------- histogram
// Log buckets of 1 % width from 1 us up: enough precision for p50/p99, small enough to ship
// over IPC and merge by addition.

const HIST_BASE = Math.log(1.01);
const HIST_BUCKETS = 2000; // 1.01^2000 us ~ 4e8 s: covers everything

function newHist() {
  return { counts: new Float64Array(HIST_BUCKETS), n: 0, sum: 0, max: 0 };
}

function histAdd(h, us) {
  const v = us < 1 ? 1 : us;
  let idx = Math.floor(Math.log(v) / HIST_BASE);
  if (idx >= HIST_BUCKETS) idx = HIST_BUCKETS - 1;
  h.counts[idx] += 1;
  h.n += 1;
  h.sum += us;
  if (us > h.max) h.max = us;
}

function histToWire(h) {
  const sparse = [];
  for (let i = 0; i < HIST_BUCKETS; i++) if (h.counts[i] > 0) sparse.push([i, h.counts[i]]);
  return { sparse, n: h.n, sum: h.sum, max: h.max };
}

function histMerge(into, wire) {
  for (const [i, c] of wire.sparse) into.counts[i] += c;
  into.n += wire.n;
  into.sum += wire.sum;
  if (wire.max > into.max) into.max = wire.max;
}

function histQuantile(h, q) {
  if (h.n === 0) return null;
  const target = q * h.n;
  let seen = 0;
  for (let i = 0; i < HIST_BUCKETS; i++) {
    seen += h.counts[i];
    if (seen >= target && h.counts[i] > 0) {
      const mid = Math.exp((i + 0.5) * HIST_BASE); // bucket midpoint (geometric)
      return Math.min(mid, h.max);
    }
  }
  return h.max;
}

function histSummaryMs(h) {
  const ms = (us) => (us === null ? null : Math.round(us) / 1000);
  return {
    count: h.n,
    p50: ms(histQuantile(h, 0.5)),
    p90: ms(histQuantile(h, 0.9)),
    p99: ms(histQuantile(h, 0.99)),
    max: ms(h.n ? h.max : null),
    mean: ms(h.n ? h.sum / h.n : null),
  };
}

// ----------------------------------------------------------------------------------- worker

const nowUs = () => Math.round((performance.timeOrigin + performance.now()) * 1000);

function bump(map, key, by = 1) {
  map[key] = (map[key] || 0) + by;
}

async function connectAll(specs, opts, errors) {
  // Connect in batches so that a large swarm does not stampede the accept queue.
  const { io } = require("socket.io-client");
  const sockets = new Array(specs.length);
  let next = 0;
  async function lane() {
    while (next < specs.length) {
      const i = next++;
      sockets[i] = await connectOne(io, specs[i], opts, errors);
    }
  }
  const lanes = Math.min(opts["connect-concurrency"], specs.length);
  await Promise.all(Array.from({ length: lanes }, lane));
  return sockets;
}

function connectOne(io, spec, opts, errors) {
  return new Promise((resolve) => {
    const socket = io(spec.url || opts.url, {
      transports: ["websocket"],
      // "offer" (the official client's default, and what browsers do) lets the server choose
      // permessage-deflate; "off" does not offer it.
      perMessageDeflate: opts.deflate === "off" ? false : { threshold: 1024 },
      auth: { token: spec.token },
      reconnection: false,
      forceNew: true,
      timeout: opts["connect-timeout"] * 1000,
    });
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", (err) => {
      bump(errors, `connect_error: ${err && err.message}`);
      resolve(null);
    });
  });
}

async function join(socket, opts, errors, channel = opts.channel) {
  try {
    const ack = await socket.timeout(opts["ack-timeout"] * 1000)
      .emitWithAck("channel:join", { channel });
    if (!ack || ack.ok !== true) {
      bump(errors, `join_refused: ${ack && ack.error ? ack.error.code : JSON.stringify(ack)}`);
      return false;
    }
    return true;
  } catch (err) {
    bump(errors, "join_timeout");
    return false;
  }
}

function parseSendUs(message, runId) {
  // client_id is `${runId}-${publisher}-${n}-${sendUs}`.
  const cid = message && message.client_id;
  if (typeof cid !== "string" || !cid.startsWith(runId)) return -1;
  const dash = cid.lastIndexOf("-");
  return Number(cid.slice(dash + 1));
}

class Subscribers {
  constructor(sockets, opts, runId) {
    this.opts = opts;
    this.runId = runId;
    this.hist = newHist();
    this.windowDeliveries = 0; // received inside the measured window
    this.totalInWindowSent = 0; // deliveries of messages sent inside the window, any time
    this.total = 0; // every delivery of this run's messages
    this.orderViolations = 0;
    this.windowStartUs = Infinity;
    this.windowEndUs = Infinity;
    this.sockets = sockets;
    for (const socket of sockets) this.listen(socket);
  }

  listen(socket) {
    let lastSeq = -1;
    socket.on("message:new", (message) => {
      const sentUs = parseSendUs(message, this.runId);
      if (sentUs < 0) return;
      const recvUs = nowUs();
      this.total += 1;
      const seq = message.seq;
      if (typeof seq === "number") {
        if (seq <= lastSeq) this.orderViolations += 1;
        lastSeq = seq;
      }
      if (recvUs >= this.windowStartUs && recvUs < this.windowEndUs) this.windowDeliveries += 1;
      if (sentUs >= this.windowStartUs && sentUs < this.windowEndUs) {
        this.totalInWindowSent += 1;
        histAdd(this.hist, recvUs - sentUs);
      }
    });
  }
}

class Publishers {
  // channels[k]: the channel socket k sends to (default: --channel). memberMode: each socket
  // sends --member-rate msg/s on its own schedule instead of sharing --rate.
  constructor(sockets, indices, opts, runId, channels = null, memberMode = false) {
    this.sockets = sockets;
    this.indices = indices;
    this.opts = opts;
    this.runId = runId;
    this.channels = channels || sockets.map(() => opts.channel);
    this.memberMode = memberMode;
    this.ackedByChannel = {}; // ok acks for messages sent inside the window, per channel
    this.hist = newHist();
    this.acksInWindow = 0; // acks received inside the window
    this.ackedWindowSent = 0; // ok acks for messages sent inside the window
    this.sent = 0;
    this.acked = 0;
    this.errors = {};
    this.pad = "x".repeat(Math.max(0, opts["text-bytes"] - 36));
  }

  async run(startUs, windowStartUs, windowEndUs) {
    const loops = this.sockets.map((socket, k) => {
      if (!socket) return null;
      const publisher = this.indices[k];
      const channel = this.channels[k];
      return this.opts.rate > 0 || this.memberMode
        ? this.openLoop(socket, publisher, channel, startUs, windowStartUs, windowEndUs)
        : this.loop(socket, publisher, channel, windowStartUs, windowEndUs);
    });
    await Promise.all(loops.filter(Boolean));
  }

  async loop(socket, publisher, channel, windowStartUs, windowEndUs) {
    // Closed loop: the next message goes out as soon as the previous one is acked.
    let n = 0;
    while (nowUs() < windowEndUs) {
      if (!socket.connected) { bump(this.errors, "publisher_disconnected"); return; }
      n += 1;
      await this.sendOne(socket, publisher, channel, n, nowUs(), windowStartUs, windowEndUs);
    }
  }

  async openLoop(socket, publisher, channel, startUs, windowStartUs, windowEndUs) {
    // Fixed rate: message n is due at startUs + n * interval whether or not earlier acks came
    // back; latencies are measured from the due time, so a stalled server is not excused
    // (no coordinated omission).
    let intervalUs;
    let offsetUs;
    if (this.memberMode) {
      // Each member on its own schedule, phases spread evenly (golden-ratio sequence).
      intervalUs = 1e6 / this.opts["member-rate"];
      offsetUs = ((publisher * 0.6180339887) % 1) * intervalUs;
    } else {
      intervalUs = (1e6 * this.opts.publishers) / this.opts.rate;
      offsetUs = (publisher * intervalUs) / this.opts.publishers;
    }
    const pending = new Set();
    const maxInFlight = 10000;
    for (let n = 1; ; n++) {
      const dueUs = startUs + offsetUs + n * intervalUs;
      if (dueUs >= windowEndUs) break;
      const waitMs = (dueUs - nowUs()) / 1000;
      if (waitMs >= 1) await sleep(waitMs);
      if (!socket.connected) { bump(this.errors, "publisher_disconnected"); break; }
      if (pending.size >= maxInFlight) { bump(this.errors, "publisher_inflight_cap"); continue; }
      const p = this.sendOne(socket, publisher, channel, n, dueUs, windowStartUs, windowEndUs);
      pending.add(p);
      p.then(() => pending.delete(p));
    }
    await Promise.all(pending);
  }

  async sendOne(socket, publisher, channel, n, sentUs, windowStartUs, windowEndUs) {
    const clientId = `${this.runId}-${publisher}-${n}-${sentUs}`;
    const text = `bench p${publisher} m${n} t${sentUs} ${this.pad}`;
    this.sent += 1;
    let ack;
    try {
      ack = await socket.timeout(this.opts["ack-timeout"] * 1000)
        .emitWithAck("message:send", { channel, text, client_id: clientId });
    } catch (err) {
      bump(this.errors, "ack_timeout");
      return;
    }
    const ackUs = nowUs();
    if (!ack || ack.ok !== true) {
      bump(this.errors, `ack_error: ${ack && ack.error ? ack.error.code : JSON.stringify(ack)}`);
      return;
    }
    this.acked += 1;
    if (ackUs >= windowStartUs && ackUs < windowEndUs) this.acksInWindow += 1;
    if (sentUs >= windowStartUs && sentUs < windowEndUs) {
      this.ackedWindowSent += 1;
      bump(this.ackedByChannel, channel);
      histAdd(this.hist, ackUs - sentUs);
    }
  }

  async seed(count) {
    // Join storm: put `count` messages into the channel (closed loop) before the storm.
    const socket = this.sockets.find(Boolean);
    if (!socket) return 0;
    for (let n = 1; n <= count; n++) {
      await this.sendOne(socket, "h", this.opts.channel, n, nowUs(), 0, 0);
    }
    return this.acked;
  }
}

async function joinStorm(sockets, channels, opts, atUs, errors) {
  // Every socket emits channel:join at `atUs`; returns per-join latencies and history sizes.
  const waitMs = (atUs - nowUs()) / 1000;
  if (waitMs > 0) await sleep(waitMs);
  const hist = newHist();
  let lastAckUs = 0;
  let historyMin = Infinity;
  let joined = 0;
  await Promise.all(sockets.map(async (socket, k) => {
    if (!socket) return;
    let ack;
    try {
      ack = await socket.timeout(opts["ack-timeout"] * 1000)
        .emitWithAck("channel:join", { channel: channels[k] });
    } catch (err) {
      bump(errors, "join_timeout");
      return;
    }
    const t1 = nowUs();
    if (!ack || ack.ok !== true) {
      bump(errors, `join_refused: ${ack && ack.error ? ack.error.code : JSON.stringify(ack)}`);
      return;
    }
    joined += 1;
    histAdd(hist, t1 - atUs);
    if (t1 > lastAckUs) lastAckUs = t1;
    const messages = ack.data && Array.isArray(ack.data.messages) ? ack.data.messages.length : 0;
    if (messages < historyMin) historyMin = messages;
  }));
  return { hist: histToWire(hist), lastAckUs, joined,
    historyMin: historyMin === Infinity ? null : historyMin };
}

async function workerMain(opts) {
  // Assignment arrives over IPC: {role, specs:[{index, token}], runId}.
  const errors = {};
  let subs = null;
  let pubs = null;
  let sockets = [];
  let channels = [];
  const send = (msg) => process.send(msg);
  const cpuStart = { usage: null, at: 0 };
  const cpuWindow = { fraction: null };
  const fractionSince = (mark) => {
    const used = process.cpuUsage(mark.usage);
    return (used.user + used.system) / Math.max(1, nowUs() - mark.at);
  };
  let disconnects = 0;
  let running = false;

  process.on("message", async (msg) => {
    try {
      if (msg.type === "setup") {
        channels = msg.specs.map((spec) => spec.channel || opts.channel);
        sockets = await connectAll(msg.specs, opts, errors);
        const storm = opts["join-storm"];
        const doJoin = !storm && (msg.role === "subscribers" || opts["publishers-join"]);
        if (doJoin) {
          const joined = await Promise.all(
            sockets.map((s, i) => (s ? join(s, opts, errors, channels[i]) : false)));
          sockets = sockets.map((s, i) => (joined[i] ? s : null));
        }
        for (const s of sockets) {
          if (s) s.on("disconnect", (reason) => { if (running) { disconnects += 1; bump(errors, `disconnect: ${reason}`); } });
        }
        const indices = msg.specs.map((s) => s.index);
        if (msg.role === "subscribers") {
          subs = new Subscribers(sockets.filter(Boolean), opts, msg.runId);
          if (opts["member-rate"] > 0) {
            pubs = new Publishers(sockets, indices, opts, msg.runId,
              channels, true);
          }
        } else {
          pubs = new Publishers(sockets, indices, opts, msg.runId);
        }
        const joinedByChannel = {};
        sockets.forEach((s, i) => { if (s) bump(joinedByChannel, channels[i]); });
        send({ type: "ready", connected: sockets.filter(Boolean).length, joinedByChannel });
      } else if (msg.type === "seed") {
        const acked = await pubs.seed(msg.count);
        send({ type: "seeded", acked });
      } else if (msg.type === "storm") {
        running = true;
        cpuStart.usage = process.cpuUsage();
        cpuStart.at = nowUs();
        const result = await joinStorm(sockets, channels, opts, msg.atUs, errors);
        send({ type: "stormed", ...result });
      } else if (msg.type === "start") {
        running = true;
        if (subs) { subs.windowStartUs = msg.windowStartUs; subs.windowEndUs = msg.windowEndUs; }
        const delayMs = Math.max(0, (msg.startUs - nowUs()) / 1000);
        // CPU used inside the measured window only (not during set-up or drain).
        setTimeout(() => { cpuStart.usage = process.cpuUsage(); cpuStart.at = nowUs(); },
          Math.max(0, (msg.windowStartUs - nowUs()) / 1000));
        setTimeout(() => {
          if (!cpuStart.usage) return;
          cpuWindow.fraction = fractionSince(cpuStart);
        }, Math.max(0, (msg.windowEndUs - nowUs()) / 1000));
        if (pubs) {
          setTimeout(async () => {
            await pubs.run(msg.startUs, msg.windowStartUs, msg.windowEndUs);
            send({ type: "published", acked: pubs.acked, ackedWindowSent: pubs.ackedWindowSent,
              ackedByChannel: pubs.ackedByChannel });
          }, delayMs);
        }
      } else if (msg.type === "progress") {
        send({ type: "progress", total: subs ? subs.totalInWindowSent : 0 });
      } else if (msg.type === "report") {
        running = false;
        const report = {
          type: "report",
          errors: { ...errors, ...(pubs ? pubs.errors : {}) },
          disconnects,
          cpu_fraction: cpuWindow.fraction ?? (cpuStart.usage ? fractionSince(cpuStart) : 0),
        };
        if (subs) {
          Object.assign(report, {
            deliveries_in_window: subs.windowDeliveries,
            deliveries_of_window_messages: subs.totalInWindowSent,
            deliveries_total: subs.total,
            order_violations: subs.orderViolations,
            subscribers: subs.sockets.length,
            delivery_hist: histToWire(subs.hist),
          });
        }
        if (pubs) {
          Object.assign(report, {
            sent: pubs.sent,
            acked: pubs.acked,
            acks_in_window: pubs.acksInWindow,
            acked_window_messages: pubs.ackedWindowSent,
            ack_hist: histToWire(pubs.hist),
          });
        }
        send(report);
      } else if (msg.type === "close") {
        for (const s of sockets) if (s) s.close();
        setTimeout(() => process.exit(0), 200);
      }
    } catch (err) {
      send({ type: "fatal", error: String(err && err.stack || err) });
    }
  });
  process.on("disconnect", () => process.exit(0)); // controller went away
}

// ------------------------------------------------------------------------------- controller

function spawnWorker(argv) {
  const child = fork(__filename, [...argv, "--worker"], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const waiters = [];
  const inbox = [];
  child.on("message", (msg) => {
    if (msg.type === "fatal") process.stderr.write(`worker fatal: ${msg.error}\n`);
    const w = waiters.shift();
    if (w) w(msg); else inbox.push(msg);
  });
  child.next = () => new Promise((resolve) => {
    const m = inbox.shift();
    if (m) resolve(m); else waiters.push(resolve);
  });
  child.ask = (msg) => { child.send(msg); return child.next(); };
  return child;
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

async function controllerMain(opts, argv) {
  const tokens = loadTokens(opts);
  const runId = `b${Math.random().toString(36).slice(2, 7)}`;
  const k = Math.min(opts.workers, opts.subscribers);
  const subSpecs = Array.from({ length: k }, () => []);
  // --sub-urls a,b: subscriber i connects to the i-th URL round robin (several nodes);
  // publishers always use --url.
  const subUrls = opts["sub-urls"] ? opts["sub-urls"].split(",") : [opts.url];
  for (let i = 0; i < opts.subscribers; i++) {
    const channel = opts.channels > 1 ? `${opts.channel}-${i % opts.channels}` : opts.channel;
    subSpecs[i % k].push({ index: i, token: tokens[i % tokens.length],
      url: subUrls[i % subUrls.length], channel });
  }
  const pubSpecs = [];
  for (let j = 0; j < opts.publishers; j++) {
    const i = opts.subscribers + j;
    pubSpecs.push({ index: j, token: tokens[i % tokens.length] });
  }

  const subWorkers = subSpecs.map(() => spawnWorker(argv));
  const pubWorker = opts.publishers > 0 ? spawnWorker(argv) : null;
  const all = pubWorker ? [...subWorkers, pubWorker] : [...subWorkers];
  const killAll = () => { for (const w of all) { try { w.kill("SIGKILL"); } catch (_) { /* gone */ } } };
  process.on("exit", killAll);

  const budgetMs = (opts["connect-timeout"] + opts.warmup + opts.duration + opts.drain
    + opts["ack-timeout"] + 30) * 1000;
  const deadline = setTimeout(() => {
    process.stdout.write(`${JSON.stringify({ ok: false, error: "swarm timed out", url: opts.url })}\n`);
    killAll();
    process.exit(2);
  }, budgetMs);

  const t0 = Date.now();
  const readies = await Promise.all([
    ...subWorkers.map((w, i) => w.ask({ type: "setup", role: "subscribers", specs: subSpecs[i], runId })),
    ...(pubWorker ? [pubWorker.ask({ type: "setup", role: "publishers", specs: pubSpecs, runId })] : []),
  ]);
  const setupMs = Date.now() - t0;
  const subscribersConnected = readies.slice(0, k).reduce((a, r) => a + (r.connected || 0), 0);
  const publishersConnected = pubWorker ? readies[k].connected || 0 : 0;
  const joinedByChannel = {};
  for (const r of readies.slice(0, k)) {
    for (const [ch, n] of Object.entries(r.joinedByChannel || {})) bump(joinedByChannel, ch, n);
  }
  if (opts["join-storm"]) {
    const storm = await stormPhase(opts, subWorkers, pubWorker);
    const reports = [];
    for (const w of all) reports.push(await w.ask({ type: "report", windowEndUs: nowUs() }));
    for (const w of all) w.send({ type: "close" });
    clearTimeout(deadline);
    const result = summariseStorm(opts, reports, storm,
      { k, subscribersConnected, publishersConnected, setupMs });
    process.stdout.write(`${JSON.stringify(result)}\n`);
    await sleep(300);
    killAll();
    process.exit(result.ok ? 0 : 1);
  }

  const startUs = nowUs() + 200000; // 200 ms for the start message to reach every worker
  const windowStartUs = startUs + opts.warmup * 1e6;
  const windowEndUs = windowStartUs + opts.duration * 1e6;
  for (const w of all) w.send({ type: "start", startUs, windowStartUs, windowEndUs });

  // After the last ack (or ack timeout) of every sending worker.
  const senders = pubWorker ? [pubWorker] : subWorkers;
  const publishedAll = await Promise.all(senders.map((w) => w.next()));
  for (const published of publishedAll) {
    if (published.type !== "published") throw new Error(`publisher worker failed: ${published.error}`);
  }
  let expected = 0;
  if (pubWorker) {
    expected = publishedAll[0].ackedWindowSent * subscribersConnected;
  } else {
    // Members: each acked window message is owed to every member of its channel.
    for (const published of publishedAll) {
      for (const [ch, n] of Object.entries(published.ackedByChannel || {})) {
        expected += n * (joinedByChannel[ch] || 0);
      }
    }
  }

  // Drain: wait until every subscriber has every acked window message, or the drain timeout.
  const drainUntil = Date.now() + opts.drain * 1000;
  let delivered = 0;
  for (;;) {
    const progress = await Promise.all(subWorkers.map((w) => w.ask({ type: "progress" })));
    delivered = progress.reduce((a, p) => a + p.total, 0);
    if (delivered >= expected || Date.now() >= drainUntil) break;
    await sleep(100);
  }
  await sleep(300); // let stragglers (and duplicates) show up in the counters

  const reports = [];
  for (const w of all) reports.push(await w.ask({ type: "report", windowEndUs }));
  for (const w of all) w.send({ type: "close" });
  clearTimeout(deadline);

  const result = summarise(opts, reports, {
    k, subscribersConnected, publishersConnected, setupMs, expected, windowStartUs, windowEndUs,
    channelsJoined: Object.keys(joinedByChannel).length,
  });
  process.stdout.write(`${JSON.stringify(result)}\n`);
  await sleep(300);
  killAll();
  process.exit(result.ok ? 0 : 1);
}

async function stormPhase(opts, subWorkers, pubWorker) {
  // Seed the history, then make every subscriber join at the same instant.
  let seeded = 0;
  if (opts.history > 0) {
    const reply = await pubWorker.ask({ type: "seed", count: opts.history });
    seeded = reply.acked || 0;
  }
  const atUs = nowUs() + 300000; // 300 ms for the storm message to reach every worker
  const results = await Promise.all(subWorkers.map((w) => w.ask({ type: "storm", atUs })));
  const hist = newHist();
  let lastAckUs = 0;
  let joined = 0;
  let historyMin = null;
  for (const r of results) {
    if (r.type !== "stormed") throw new Error(`storm worker failed: ${r.error}`);
    histMerge(hist, r.hist);
    lastAckUs = Math.max(lastAckUs, r.lastAckUs);
    joined += r.joined;
    if (r.historyMin !== null) historyMin = historyMin === null ? r.historyMin : Math.min(historyMin, r.historyMin);
  }
  return { seeded, atUs, lastAckUs, joined, historyMin, hist };
}

function summariseStorm(opts, reports, storm, ctx) {
  const errors = {};
  for (const r of reports) for (const [key, v] of Object.entries(r.errors)) bump(errors, key, v);
  if (ctx.subscribersConnected < opts.subscribers) {
    bump(errors, "subscribers_not_connected", opts.subscribers - ctx.subscribersConnected);
  }
  if (storm.joined < ctx.subscribersConnected) {
    bump(errors, "joins_not_acked", ctx.subscribersConnected - storm.joined);
  }
  if (opts.history > 0 && storm.seeded < opts.history) bump(errors, "history_not_seeded", opts.history - storm.seeded);
  const expectHistory = Math.min(opts.history, 50);
  if (opts.history > 0 && storm.historyMin !== null && storm.historyMin < expectHistory) {
    bump(errors, "join_without_full_history", 1);
  }
  const errorCount = Object.values(errors).reduce((a, b) => a + b, 0);
  return {
    ok: errorCount === 0,
    url: opts.url,
    channel: opts.channel,
    mode: "join storm",
    subscribers: ctx.subscribersConnected,
    workers: ctx.k,
    connect_s: round(ctx.setupMs / 1000, 3),
    history_seeded: storm.seeded,
    history_min: storm.historyMin,
    joined: storm.joined,
    storm_start_us: storm.atUs,
    join_storm_s: storm.joined ? round((storm.lastAckUs - storm.atUs) / 1e6, 3) : null,
    join_ack_latency_ms: histSummaryMs(storm.hist),
    client_cpu: {
      subscriber_workers: reports.slice(0, ctx.k).map((r) => round(r.cpu_fraction, 3)),
      total: round(reports.reduce((a, r) => a + r.cpu_fraction, 0), 3),
    },
    errors,
  };
}

function summarise(opts, reports, ctx) {
  const subReports = reports.slice(0, ctx.k);
  // Ack figures: from the publisher worker, or summed over the member (subscriber) workers.
  const senders = reports.filter((r) => r.ack_hist);
  const pub = { sent: 0, acked: 0, acks_in_window: 0, acked_window_messages: 0, cpu_fraction: 0 };
  const ackHist = newHist();
  for (const r of senders) {
    pub.sent += r.sent;
    pub.acked += r.acked;
    pub.acks_in_window += r.acks_in_window;
    pub.acked_window_messages += r.acked_window_messages;
    histMerge(ackHist, r.ack_hist);
  }
  if (reports.length > ctx.k) pub.cpu_fraction = reports[ctx.k].cpu_fraction;
  const errors = {};
  const deliveryHist = newHist();
  let deliveriesInWindow = 0;
  let deliveriesOfWindowMessages = 0;
  let deliveriesTotal = 0;
  let orderViolations = 0;
  for (const r of reports) for (const [key, v] of Object.entries(r.errors)) bump(errors, key, v);
  for (const r of subReports) {
    histMerge(deliveryHist, r.delivery_hist);
    deliveriesInWindow += r.deliveries_in_window;
    deliveriesOfWindowMessages += r.deliveries_of_window_messages;
    deliveriesTotal += r.deliveries_total;
    orderViolations += r.order_violations;
  }
  if (ctx.subscribersConnected < opts.subscribers) {
    bump(errors, "subscribers_not_connected", opts.subscribers - ctx.subscribersConnected);
  }
  if (ctx.publishersConnected < opts.publishers) {
    bump(errors, "publishers_not_connected", opts.publishers - ctx.publishersConnected);
  }
  const missing = Math.max(0, ctx.expected - deliveriesOfWindowMessages);
  if (missing > 0) bump(errors, "missing_deliveries", missing);
  if (pub.acked_window_messages === 0) bump(errors, "no_message_acked");
  const errorCount = Object.values(errors).reduce((a, b) => a + b, 0);
  return {
    ok: errorCount === 0,
    url: opts.url,
    channel: opts.channel,
    subscribers: ctx.subscribersConnected,
    publishers: ctx.publishersConnected,
    workers: ctx.k,
    duration_s: opts.duration,
    warmup_s: opts.warmup,
    mode: opts["member-rate"] > 0
      ? `members, ${opts["member-rate"]} msg/s each, ${opts.channels} channels`
      : opts.rate > 0 ? `fixed rate ${opts.rate} msg/s` : "closed loop",
    channels_joined: ctx.channelsJoined,
    deflate: opts.deflate,
    setup_ms: ctx.setupMs,
    window_start_us: ctx.windowStartUs,
    window_end_us: ctx.windowEndUs,
    deliveries_per_s: round(deliveriesInWindow / opts.duration),
    acks_per_s: round(pub.acks_in_window / opts.duration),
    delivery_latency_ms: histSummaryMs(deliveryHist),
    ack_latency_ms: histSummaryMs(ackHist),
    sent: pub.sent,
    acked: pub.acked,
    acked_window_messages: pub.acked_window_messages,
    expected_deliveries: ctx.expected,
    delivered_window_messages: deliveriesOfWindowMessages,
    deliveries_total: deliveriesTotal,
    duplicates_or_extra: Math.max(0, deliveriesOfWindowMessages - ctx.expected),
    order_violations: orderViolations,
    client_cpu: {
      subscriber_workers: subReports.map((r) => round(r.cpu_fraction, 3)),
      publisher_worker: round(pub.cpu_fraction, 3),
      total: round(reports.reduce((a, r) => a + r.cpu_fraction, 0), 3),
    },
    errors,
  };
}

function round(x, digits = 1) {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

// -------------------------------------------------------------------------------------- main

let opts;
try {
  opts = parseArgs(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`swarm: ${err.message}\n`);
  process.exit(2);
}
if (opts.worker) {
  workerMain(opts);
} else {
  controllerMain(opts, process.argv.slice(2)).catch((err) => {
    process.stdout.write(`${JSON.stringify({ ok: false, error: String(err && err.message || err) })}\n`);
    process.exit(2);
  });
}
