#!/usr/bin/env node
// Idle-connection load generator: N concurrent Socket.IO connections that do nothing but stay
// connected, as cheaply as possible on the client side.
//
// The official socket.io-client costs too much memory and CPU per connection for 10,000 of them
// on a small machine, so this speaks the wire protocol directly over the `ws` package:
//   GET /socket.io/?EIO=4&transport=websocket   (WebSocket from the start, no deflate)
//   <- 0{"sid","pingInterval","pingTimeout",...}   Engine.IO OPEN
//   -> 40{"token":"..."}                          Socket.IO CONNECT to "/" with the auth payload
//   <- 40{"sid":"..."}  (or 44{...}: refused)     connected
//   <- 2  -> 3                                    every server PING is answered with a PONG
// Everything else the server pushes (e.g. presence events) is counted and dropped.
//
// Connections are spread over --workers processes; each opens its share with at most
// --connect-concurrency handshakes in flight, then holds them for --hold seconds. A connection
// counts as healthy when it was still open at the end and answered at least one ping during
// the hold (so --hold should exceed the server's ping interval, 25 s by default).
//
// Usage:
//   node idle.js --url http://127.0.0.1:8080 [--connections 10000] [--workers 2] [--hold 30]
//       [--token TOKEN | --token-file FILE] [--connect-concurrency 200] [--connect-timeout 60]
//       [--pre-delay 2] [--namespace /]
// --token-file: one token per line; connection i uses line i modulo the number of lines.
// --pre-delay: seconds to wait before connecting (lets a driver sample the idle server first).
//
// Output: one JSON object on stdout; exit 0 when every connection connected and stayed healthy,
// 1 otherwise, 2 on a usage error or a timeout of the whole run.
"use strict";

const { fork } = require("node:child_process");
const fs = require("node:fs");
const { performance } = require("node:perf_hooks");

const DEFAULTS = {
  url: "http://127.0.0.1:8080",
  connections: 10000,
  workers: 2,
  hold: 30,
  token: null,
  "token-file": null,
  "connect-concurrency": 200,
  "connect-timeout": 60,
  "pre-delay": 2,
  namespace: "/",
};
const NUMERIC = new Set(["connections", "workers", "hold", "connect-concurrency",
  "connect-timeout", "pre-delay"]);

function parseArgs(argv) {
  const opts = { ...DEFAULTS };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith("--")) throw new Error(`unexpected argument ${arg}`);
    const name = arg.slice(2);
    if (name === "worker") { opts.worker = true; continue; }
    if (!(name in DEFAULTS)) throw new Error(`unknown option --${name}`);
    const value = argv[++i];
    if (value === undefined) throw new Error(`--${name} needs a value`);
    opts[name] = NUMERIC.has(name) ? Number(value) : value;
    if (NUMERIC.has(name) && !Number.isFinite(opts[name])) throw new Error(`--${name}: not a number`);
  }
  if (opts.connections < 1 || opts.workers < 1 || opts.hold < 0) {
    throw new Error("connections and workers must be positive");
  }
  return opts;
}

const nowUs = () => Math.round((performance.timeOrigin + performance.now()) * 1000);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function bump(map, key, by = 1) {
  map[key] = (map[key] || 0) + by;
}

// ----------------------------------------------------------------------------------- worker

function wsUrl(httpUrl) {
  const u = new URL(httpUrl);
  u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
  u.pathname = "/socket.io/";
  u.search = "?EIO=4&transport=websocket";
  return u.toString();
}

function connectOne(WebSocket, url, token, opts, stats) {
  // Resolves with a connection record once connected (or null when refused / failed).
  return new Promise((resolve) => {
    const ns = opts.namespace === "/" ? "" : `${opts.namespace},`;
    const conn = { ws: null, open: false, pings: 0, pingsInHold: 0, closedAt: 0 };
    let settled = false;
    const done = (value) => { if (!settled) { settled = true; clearTimeout(timer); resolve(value); } };
    const timer = setTimeout(() => {
      bump(stats.errors, "connect_timeout");
      try { conn.ws.terminate(); } catch (_) { /* gone */ }
      done(null);
    }, opts["connect-timeout"] * 1000);
    const ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: opts["connect-timeout"] * 1000 });
    conn.ws = ws;
    ws.on("message", (data, isBinary) => {
      if (isBinary) { stats.pushed += 1; return; }
      const text = data.toString();
      const type = text.charCodeAt(0);
      if (type === 50) { // "2": ping
        ws.send("3");
        conn.pings += 1;
        if (stats.holding) conn.pingsInHold += 1;
      } else if (type === 48) { // "0": open
        ws.send(`40${ns}${JSON.stringify({ token })}`);
      } else if (text.startsWith(`40${ns}`) && !conn.open) {
        conn.open = true;
        done(conn);
      } else if (text.startsWith(`44${ns}`)) {
        let code = "refused";
        try { code = JSON.parse(text.slice(2 + ns.length)).message || code; } catch (_) { /* keep */ }
        bump(stats.errors, `connect_refused: ${code}`);
        ws.close();
        done(null);
      } else {
        stats.pushed += 1; // events (presence...) and anything else: counted, ignored
      }
    });
    ws.on("error", (err) => {
      if (!settled) bump(stats.errors, `connect_error: ${err.code || err.message}`);
      done(null);
    });
    ws.on("close", () => {
      if (conn.open && !conn.closedAt) {
        conn.closedAt = nowUs();
        if (!stats.closing) bump(stats.errors, "disconnected");
      }
      done(null);
    });
  });
}

async function workerMain(opts) {
  const WebSocket = require("ws");
  const stats = { errors: {}, pushed: 0, holding: false, closing: false };
  let conns = [];
  process.on("message", async (msg) => {
    try {
      if (msg.type === "connect") {
        const url = wsUrl(opts.url);
        const results = new Array(msg.tokens.length);
        let next = 0;
        const lane = async () => {
          while (next < msg.tokens.length) {
            const i = next++;
            results[i] = await connectOne(WebSocket, url, msg.tokens[i], opts, stats);
          }
        };
        const lanes = Math.max(1, Math.min(opts["connect-concurrency"], msg.tokens.length));
        await Promise.all(Array.from({ length: lanes }, lane));
        conns = results.filter(Boolean);
        process.send({ type: "connected", connected: conns.length, atUs: nowUs(),
          rssMb: process.memoryUsage().rss / 2 ** 20 });
      } else if (msg.type === "hold") {
        stats.holding = true;
        process.send({ type: "holding" });
      } else if (msg.type === "report") {
        stats.holding = false;
        const open = conns.filter((c) => c.ws.readyState === 1 && !c.closedAt).length;
        const withoutPing = conns.filter((c) => c.pingsInHold === 0).length;
        const pings = conns.reduce((a, c) => a + c.pings, 0);
        process.send({ type: "report", open, withoutPing, pings, pushed: stats.pushed,
          errors: stats.errors, rssMb: process.memoryUsage().rss / 2 ** 20 });
      } else if (msg.type === "close") {
        stats.closing = true;
        for (const c of conns) { try { c.ws.terminate(); } catch (_) { /* gone */ } }
        setTimeout(() => process.exit(0), 100);
      }
    } catch (err) {
      process.send({ type: "fatal", error: String(err && err.stack || err) });
    }
  });
  process.on("disconnect", () => process.exit(0));
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

function loadTokens(opts) {
  if (opts["token-file"]) {
    const tokens = fs.readFileSync(opts["token-file"], "utf8").split("\n").map((s) => s.trim())
      .filter((s) => s.length > 0);
    if (tokens.length === 0) throw new Error("token file is empty");
    return tokens;
  }
  return [opts.token || "bench"];
}

async function controllerMain(opts, argv) {
  const tokens = loadTokens(opts);
  const k = Math.min(opts.workers, opts.connections);
  const shares = Array.from({ length: k }, () => []);
  for (let i = 0; i < opts.connections; i++) shares[i % k].push(tokens[i % tokens.length]);
  const workers = shares.map(() => spawnWorker(argv));
  const killAll = () => { for (const w of workers) { try { w.kill("SIGKILL"); } catch (_) { /* gone */ } } };
  process.on("exit", killAll);
  const budgetMs = (opts["pre-delay"] + opts["connect-timeout"] * 2 + opts.hold + 60) * 1000;
  const deadline = setTimeout(() => {
    process.stdout.write(`${JSON.stringify({ ok: false, error: "idle run timed out", url: opts.url })}\n`);
    killAll();
    process.exit(2);
  }, budgetMs);

  await sleep(opts["pre-delay"] * 1000);
  const startUs = nowUs();
  const connected = await Promise.all(workers.map((w, i) => w.ask({ type: "connect", tokens: shares[i] })));
  for (const c of connected) if (c.type !== "connected") throw new Error(`worker failed: ${c.error}`);
  const connectedUs = Math.max(...connected.map((c) => c.atUs));
  const total = connected.reduce((a, c) => a + c.connected, 0);
  process.stderr.write(`idle: ${total}/${opts.connections} connected in ${((connectedUs - startUs) / 1e6).toFixed(1)} s; holding ${opts.hold} s\n`);
  await Promise.all(workers.map((w) => w.ask({ type: "hold" })));
  const holdStartUs = nowUs();
  await sleep(opts.hold * 1000);
  const holdEndUs = nowUs();
  const reports = await Promise.all(workers.map((w) => w.ask({ type: "report" })));
  for (const w of workers) w.send({ type: "close" });
  clearTimeout(deadline);

  const errors = {};
  for (const r of reports) for (const [key, v] of Object.entries(r.errors)) bump(errors, key, v);
  const open = reports.reduce((a, r) => a + r.open, 0);
  const withoutPing = reports.reduce((a, r) => a + r.withoutPing, 0);
  if (total < opts.connections) bump(errors, "not_connected", opts.connections - total);
  if (opts.hold > 0 && withoutPing > 0) bump(errors, "no_ping_during_hold", withoutPing);
  const errorCount = Object.values(errors).reduce((a, b) => a + b, 0);
  const result = {
    ok: errorCount === 0 && open === opts.connections,
    url: opts.url,
    connections: opts.connections,
    connected: total,
    open_at_end: open,
    workers: k,
    start_us: startUs,
    connected_us: connectedUs,
    hold_start_us: holdStartUs,
    hold_end_us: holdEndUs,
    connect_s: Math.round((connectedUs - startUs) / 1e3) / 1e3,
    hold_s: opts.hold,
    pings_answered: reports.reduce((a, r) => a + r.pings, 0),
    without_ping_in_hold: withoutPing,
    pushed_frames: reports.reduce((a, r) => a + r.pushed, 0),
    client_rss_mb: Math.round(reports.reduce((a, r) => a + r.rssMb, 0)),
    errors,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  await sleep(300);
  killAll();
  process.exit(result.ok ? 0 : 1);
}

let opts;
try {
  opts = parseArgs(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`idle: ${err.message}\n`);
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
