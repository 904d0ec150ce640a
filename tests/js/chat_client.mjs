#!/usr/bin/env node
// Official Socket.IO JavaScript client (socket.io-client 4.8, pinned in package.json) against a
// running Gigvora Live server: proves that the unmodified official client can join, send,
// receive, retry idempotently and get `invalid` for an event without a payload.
//
// Usage:   node tests/js/chat_client.mjs <url> <token> [client_id_prefix]
//   url     e.g. http://127.0.0.1:8080 (namespace "/", default path /socket.io/)
//   token   an access token (JWT) for a member; both connections use it (same user, two tabs)
//   client_id_prefix   default "js": the messages use client ids "<prefix>-1" and "<prefix>-2".
//           A client id already stored for this user is answered with the first message and no
//           new `message:new`, so a second run against the same data dir needs another prefix.
// Install first: `npm ci --prefix tests/js` (node_modules stays in tests/js, git-ignored).
//
// Scenario (every client->server event with an ack; each wait bounded, 30 s for the whole run):
//   A = default transports (HTTP long-polling, then upgrade to WebSocket); B = WebSocket only.
//   1. A and B connect with auth {token}; A must have upgraded to websocket within 5 s.
//   2. A and B `channel:join` {channel:"general"} -> {ok:true, data:{channel, last_seq, messages, has_more}}.
//   3. A `message:send` {channel:"general", text:"hello from js", client_id:"<prefix>-1"}
//      -> {ok:true, data:<message>}; A and B both receive `message:new` with that message id.
//   4. A re-sends the same client_id -> ack with the SAME id and seq (idempotent retry).
//   5. B (WebSocket) sends "<prefix>-2" -> A and B receive it; its seq is above the first one;
//      B re-sends it -> same id and seq.
//   6. A emits `message:send` with no payload, B emits `channel:join` with no payload ->
//      each ack is {ok:false, error:{code:"invalid", message}}; both connections stay usable.
//   A message must have id, channel, seq (integer), author {id, name}, text, created_at,
//   client_id, deleted (false) and reactions ({}), as in PROTOCOL.md.
//
// Output: exactly one JSON line on stdout, then exit 0 on success or 1 on failure:
//   {"ok": true|false,
//    "reason": null | "<first failed check, with detail>",
//    "checks": {"<check name>": true|false, ...},      // in the order they ran
//    "transports": {"a_initial": "polling", "a_final": "websocket", "b": "websocket"},
//    "first": {"id", "seq"} | null, "second": {"id", "seq"} | null,
//    "invalid_acks": [<ack of step 6 on A>, <ack on B>],
//    "elapsed_ms": <int>}
// Exit 2 means a usage error (missing arguments; nothing was attempted).
import { io } from "socket.io-client";

const [url, token, prefix = "js"] = process.argv.slice(2);
if (!url || !token) {
  process.stderr.write("usage: node chat_client.mjs <url> <token> [client_id_prefix]\n");
  process.exit(2);
}

const STEP_TIMEOUT_MS = 5000;
const RUN_TIMEOUT_MS = 30000;
const CHANNEL = "general";
const started = Date.now();
const result = {
  ok: false,
  reason: null,
  checks: {},
  transports: {},
  first: null,
  second: null,
  invalid_acks: [],
  elapsed_ms: 0,
};
const sockets = [];
let joinedAtSeq = 0; // the channel's last_seq when we joined

class CheckFailed extends Error {}

function check(name, passed, detail) {
  result.checks[name] = Boolean(passed);
  if (!passed) throw new CheckFailed(detail === undefined ? name : `${name}: ${detail}`);
}

function finish(ok, reason) {
  result.ok = ok;
  result.reason = reason;
  result.elapsed_ms = Date.now() - started;
  process.stdout.write(`${JSON.stringify(result)}\n`);
  for (const s of sockets) s.close();
  process.exit(ok ? 0 : 1);
}

function withTimeout(promise, what, ms = STEP_TIMEOUT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new CheckFailed(`timeout after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function connect(options, label) {
  const socket = io(url, { auth: { token }, reconnection: false, forceNew: true, ...options });
  sockets.push(socket);
  // The upgrade can complete before "connect" fires: record the transports as they happen.
  socket.transportLog = { initial: null, upgraded: null };
  socket.io.once("open", () => {
    const engine = socket.io.engine;
    socket.transportLog.initial = engine.transport.name;
    engine.once("upgrade", (transport) => { socket.transportLog.upgraded = transport.name; });
  });
  const received = [];
  const waiters = [];
  socket.on("message:new", (message) => {
    received.push(message);
    for (const w of [...waiters]) w();
  });
  // Resolves with the first `message:new` whose id is `id` (already received or still to come).
  socket.waitForMessage = (id) => withTimeout(new Promise((resolve) => {
    const look = () => {
      const m = received.find((x) => x && x.id === id);
      if (m) { waiters.splice(waiters.indexOf(look), 1); resolve(m); }
    };
    waiters.push(look);
    look();
  }), `message:new ${id} on ${label}`);
  const ready = new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", (err) => reject(new CheckFailed(`${label} connect_error: ${err.message}`)));
  });
  return withTimeout(ready, `${label} connect`);
}

function emitAck(socket, event, ...args) {
  return withTimeout(socket.timeout(STEP_TIMEOUT_MS).emitWithAck(event, ...args), `${event} ack`);
}

function shapeProblems(m) {
  const problems = [];
  if (!m || typeof m !== "object") return ["not an object"];
  for (const f of ["id", "channel", "text", "created_at", "client_id"]) {
    if (m[f] === undefined || m[f] === null) problems.push(`missing ${f}`);
  }
  if (!Number.isInteger(m.seq)) problems.push("seq not an integer");
  if (!m.author || m.author.id === undefined || m.author.name === undefined) problems.push("author {id,name}");
  if (m.deleted !== false) problems.push("deleted is not false");
  if (!m.reactions || typeof m.reactions !== "object" || Array.isArray(m.reactions)) {
    problems.push("reactions is not an object");
  }
  return problems;
}

function checkAckOk(name, ack) {
  check(name, ack && ack.ok === true && ack.data !== undefined, JSON.stringify(ack));
  return ack.data;
}

function checkMessage(name, message, clientId) {
  const problems = shapeProblems(message);
  check(`${name} message shape`, problems.length === 0, problems.join(", "));
  check(`${name} message fields`, message.channel === CHANNEL && message.text === "hello from js"
    && message.client_id === clientId, JSON.stringify(message));
}

async function waitForUpgrade(socket) {
  if (socket.transportLog.upgraded !== null) return;
  await withTimeout(new Promise((resolve) => socket.io.engine.once("upgrade", resolve)),
    "upgrade to websocket");
}

async function sendAndRetry(sender, others, clientId, label) {
  const payload = { channel: CHANNEL, text: "hello from js", client_id: clientId };
  const message = checkAckOk(`${label} send ack ok`, await emitAck(sender, "message:send", payload));
  checkMessage(`${label} send`, message, clientId);
  check(`${label} send is a new message`, message.seq > joinedAtSeq,
    `seq ${message.seq} <= last_seq ${joinedAtSeq} at join: client_id ${clientId} was already `
    + "used by this user (same data dir?); pass another client_id_prefix");
  for (const [name, socket] of others) {
    const pushed = await socket.waitForMessage(message.id);
    check(`${label} message:new on ${name}`, pushed.seq === message.seq, JSON.stringify(pushed));
  }
  const again = checkAckOk(`${label} retry ack ok`, await emitAck(sender, "message:send", payload));
  check(`${label} retry same id and seq`, again.id === message.id && again.seq === message.seq,
    `first ${message.id}/${message.seq}, retry ${again.id}/${again.seq}`);
  return { id: message.id, seq: message.seq };
}

function checkInvalid(name, ack) {
  result.invalid_acks.push(ack);
  check(name, ack && ack.ok === false && ack.error && ack.error.code === "invalid"
    && typeof ack.error.message === "string", JSON.stringify(ack));
}

async function main() {
  const a = await connect({}, "A (polling+upgrade)");
  result.transports.a_initial = a.transportLog.initial;
  check("A starts on polling", result.transports.a_initial === "polling", result.transports.a_initial);
  const b = await connect({ transports: ["websocket"] }, "B (websocket)");
  result.transports.b = b.io.engine.transport.name;
  check("B on websocket", result.transports.b === "websocket", result.transports.b);
  await waitForUpgrade(a);
  result.transports.a_final = a.io.engine.transport.name;
  check("A upgraded to websocket", result.transports.a_final === "websocket", result.transports.a_final);

  for (const [name, socket] of [["A", a], ["B", b]]) {
    const data = checkAckOk(`${name} join ack ok`, await emitAck(socket, "channel:join", { channel: CHANNEL }));
    check(`${name} join ack shape`, data.channel === CHANNEL && Number.isInteger(data.last_seq)
      && Array.isArray(data.messages) && typeof data.has_more === "boolean", JSON.stringify(data));
    joinedAtSeq = Math.max(joinedAtSeq, data.last_seq);
  }

  result.first = await sendAndRetry(a, [["A", a], ["B", b]], `${prefix}-1`, "A");
  result.second = await sendAndRetry(b, [["A", a], ["B", b]], `${prefix}-2`, "B");
  check("seq increases", result.second.seq > result.first.seq,
    `${result.first.seq} then ${result.second.seq}`);

  checkInvalid("A message:send without payload -> invalid", await emitAck(a, "message:send"));
  checkInvalid("B channel:join without payload -> invalid", await emitAck(b, "channel:join"));
  const still = await emitAck(a, "channel:join", { channel: CHANNEL });
  check("A still usable after invalid", still && still.ok === true, JSON.stringify(still));
  check("both still connected", a.connected && b.connected);
}

setTimeout(() => finish(false, `run timed out after ${RUN_TIMEOUT_MS} ms`), RUN_TIMEOUT_MS).unref();
main().then(() => finish(true, null), (err) => {
  finish(false, err instanceof CheckFailed ? err.message : `error: ${err && err.stack || err}`);
});
