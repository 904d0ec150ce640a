#!/usr/bin/env node
// Reference server for the fan-out benchmark: a plain Node Socket.IO 4 server, in memory.
//
// It implements the part of the Gigvora Live contract (shared PROTOCOL.md, namespace "/")
// that benchmarks/swarm.js uses, with the same event names, payloads and ack shapes:
//
//   connect        auth {token}: anything is accepted; when the token looks like a JWT its
//                  (unverified) `sub` / `name` claims become the author, else the socket id.
//   channel:join   {channel, since_seq?} -> {ok:true, data:{channel, last_seq, messages, has_more}}
//                  messages is [] unless env HISTORY_LIMIT=N (N > 0) keeps the latest N messages
//                  of each channel in memory: then the ack carries them (or those after
//                  since_seq, up to N, has_more when older ones were dropped), like Gigvora's.
//   channel:leave  {channel}            -> {ok:true, data:{}}
//   message:send   {channel, text, client_id?}
//                                       -> {ok:true, data:<message>} and `message:new` <message> to the room
//
// A message is {id, channel, seq, author:{id,name}, text, created_at, client_id, deleted:false,
// reactions:{}}; seq is per channel, gap-free. A repeated client_id from the same author returns
// the first message (as Gigvora does). A missing or malformed payload is answered
// {ok:false, error:{code:"invalid", message}}. Nothing is stored on disk: this is the
// "plain Socket.IO" yardstick, not a product.
//
// WebSocket transport only (as benchmarked), no per-message deflate. Usage:
//   node server.js [PORT]            (or env PORT; HOST defaults to 127.0.0.1)
// env TRANSPORTS=polling,websocket also allows long-polling (used to self-test
// tests/js/chat_client.mjs, which starts on polling and upgrades).
// GET /healthz answers {"status":"pass"} so a driver can wait for readiness.
"use strict";

const http = require("node:http");
const crypto = require("node:crypto");
const { Server } = require("socket.io");

const PORT = Number(process.argv[2] || process.env.PORT || 8090);
const HOST = process.env.HOST || "127.0.0.1";
const MAX_TEXT_CHARS = 4000;
const MAX_IDEMPOTENCY_KEYS = 200000;
const HISTORY_LIMIT = Math.max(0, Number(process.env.HISTORY_LIMIT || 0) | 0);

const channels = new Map(); // channel id -> {seq}
const byClientId = new Map(); // `${author}\u0000${client_id}` -> message

function invalid(message) {
  return { ok: false, error: { code: "invalid", message } };
}

function identityFromToken(token, fallbackId) {
  // Unverified decode: the reference accepts any token, but uses the claims when present so
  // that authors look the same as on the Gigvora server.
  if (typeof token === "string") {
    const parts = token.split(".");
    if (parts.length === 3) {
      try {
        const claims = JSON.parse(Buffer.from(parts[1], "base64url").toString("utf8"));
        if (claims && typeof claims.sub === "string") {
          return { id: claims.sub, name: typeof claims.name === "string" ? claims.name : claims.sub };
        }
      } catch (_) {
        // not a JWT: fall through
      }
    }
  }
  return { id: fallbackId, name: fallbackId };
}

function channelState(id) {
  let state = channels.get(id);
  if (state === undefined) {
    state = { seq: 0, history: [] };
    channels.set(id, state);
  }
  return state;
}

function isObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function onJoin(socket, payload, ack) {
  if (!isObject(payload) || typeof payload.channel !== "string" || payload.channel === "") {
    return ack(invalid("channel is required"));
  }
  const state = channelState(payload.channel);
  socket.join(payload.channel);
  let messages = state.history;
  let hasMore = false;
  if (typeof payload.since_seq === "number") {
    messages = messages.filter((m) => m.seq > payload.since_seq);
    hasMore = messages.length > 0 ? messages[0].seq > payload.since_seq + 1
      : state.seq > payload.since_seq;
  }
  ack({
    ok: true,
    data: { channel: payload.channel, last_seq: state.seq, messages, has_more: hasMore },
  });
}

function onLeave(socket, payload, ack) {
  if (!isObject(payload) || typeof payload.channel !== "string") {
    return ack(invalid("channel is required"));
  }
  socket.leave(payload.channel);
  ack({ ok: true, data: {} });
}

function onSend(socket, payload, ack) {
  if (!isObject(payload) || typeof payload.channel !== "string" || payload.channel === "") {
    return ack(invalid("channel is required"));
  }
  if (typeof payload.text !== "string" || payload.text.length === 0) {
    return ack(invalid("text is required"));
  }
  if (payload.text.length > MAX_TEXT_CHARS) {
    return ack({ ok: false, error: { code: "too_large", message: "text too long" } });
  }
  const clientId = typeof payload.client_id === "string" ? payload.client_id : null;
  const author = socket.data.user;
  const key = clientId === null ? null : `${author.id}\u0000${clientId}`;
  if (key !== null) {
    const first = byClientId.get(key);
    if (first !== undefined) return ack({ ok: true, data: first });
  }
  const state = channelState(payload.channel);
  state.seq += 1;
  const message = {
    id: crypto.randomUUID(),
    channel: payload.channel,
    seq: state.seq,
    author,
    text: payload.text,
    created_at: new Date().toISOString(),
    client_id: clientId,
    deleted: false,
    reactions: {},
  };
  if (key !== null) {
    if (byClientId.size >= MAX_IDEMPOTENCY_KEYS) byClientId.clear(); // bounded memory
    byClientId.set(key, message);
  }
  if (HISTORY_LIMIT > 0) {
    state.history.push(message);
    if (state.history.length > HISTORY_LIMIT) state.history.shift();
  }
  socket.nsp.to(payload.channel).emit("message:new", message);
  ack({ ok: true, data: message });
}

function withAck(handler, socket) {
  // Every client->server event takes an ack callback; tolerate a missing payload or callback.
  return (...args) => {
    const ack = typeof args[args.length - 1] === "function" ? args.pop() : () => {};
    handler(socket, args[0], ack);
  };
}

const httpServer = http.createServer((req, res) => {
  if (req.url === "/healthz") {
    res.writeHead(200, { "content-type": "application/json" });
    res.end('{"status":"pass"}');
    return;
  }
  res.writeHead(404, { "content-type": "application/json" });
  res.end('{"error":{"code":"not_found"}}');
});

const io = new Server(httpServer, {
  transports: (process.env.TRANSPORTS || "websocket").split(","),
  serveClient: false,
  perMessageDeflate: false,
  maxHttpBufferSize: 64 * 1024,
});

io.use((socket, next) => {
  const token = socket.handshake.auth && socket.handshake.auth.token;
  socket.data.user = identityFromToken(token, socket.id);
  next();
});

io.on("connection", (socket) => {
  socket.on("channel:join", withAck(onJoin, socket));
  socket.on("channel:leave", withAck(onLeave, socket));
  socket.on("message:send", withAck(onSend, socket));
});

httpServer.listen(PORT, HOST, () => {
  const { port } = httpServer.address();
  process.stdout.write(`reference listening on http://${HOST}:${port}\n`);
});

function shutdown() {
  io.close();
  httpServer.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
