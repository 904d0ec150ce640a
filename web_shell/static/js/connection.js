// The page's Socket.IO connection and HTTP calls, authenticated with a short-lived token that
// the server mints for the session cookie (the cookie itself is HttpOnly and never readable).
// Modules of one page that talk on the same namespace share one connection (`sharedConnection`):
// the community page and the support bubble hold a single `/` socket between them.

import { io } from "../vendor/socket.io/socket.io.esm.min.js";
import { SessionToken } from "./session-token.js";

const ACK_TIMEOUT_MS = 10000;

/** Raised by `call` when there is no connection (the caller queues or reports). */
export class OfflineError extends Error {}

const HANDLER_NAMES = ["onOnline", "onOffline", "onSignedOut"];
const shared = new Map(); // namespace → the page's Connection to it

export class Connection {
  /**
   * @param {{onOnline: () => void, onOffline: (reason: string) => void,
   *          onSignedOut: () => void}} handlers
   * @param {{namespace?: string}} [options] the Socket.IO namespace ("/" by default)
   */
  constructor(handlers, { namespace = "/" } = {}) {
    this.listeners = [handlers];
    this.started = false;
    const all = this.everyListener();
    this.tokens = new SessionToken(() => all.onSignedOut());
    this.socket = io(namespace, {
      path: "/socket.io/",
      transports: ["websocket", "polling"], // WebSocket first: the server's fast path
      autoConnect: false,
      reconnectionDelay: 500,
      reconnectionDelayMax: 4000,
      timeout: 8000,
      // Called before every (re)connection, so each attempt carries a fresh token.
      auth: (send) => {
        this.freshToken().then((token) => send({ token }), () => send({}));
      },
    });
    this.socket.on("connect", () => all.onOnline());
    this.socket.on("disconnect", (reason) => {
      all.onOffline(reason);
      // The server closed us (e.g. the token expired): the client does not retry by itself.
      if (reason === "io server disconnect") this.reconnectSoon(300);
    });
    this.socket.on("connect_error", () => {
      all.onOffline("connect_error");
      if (!this.socket.active) this.reconnectSoon(2000);
    });
    window.addEventListener("offline", () => all.onOffline("browser offline"));
    window.addEventListener("online", () => this.reconnectSoon(0));
  }

  /** `{onOnline, onOffline, onSignedOut}` calling that handler of every attached module (one
   * module's failure does not keep the others from hearing it). */
  everyListener() {
    return Object.fromEntries(HANDLER_NAMES.map((name) => [name, (...args) => {
      for (const listener of this.listeners) {
        try {
          listener[name]?.(...args);
        } catch (error) {
          console.error(`connection ${name} handler failed`, error);
        }
      }
    }]));
  }

  get connected() {
    return this.socket.connected;
  }

  /** Subscribe to a server event. */
  on(event, handler) {
    this.socket.on(event, handler);
  }

  /** Open the connection (once: later calls, e.g. by another module sharing it, do nothing). */
  start() {
    if (this.started) return;
    this.started = true;
    this.socket.connect();
  }

  /** Add another module's `{onOnline, onOffline, onSignedOut}`; `onOnline` runs at once (after
   * the caller's synchronous setup) when the connection is already up, and after every
   * reconnection like the first module's. */
  attach(handlers) {
    this.listeners.push(handlers);
    if (this.connected) queueMicrotask(() => { if (this.connected) handlers.onOnline(); });
  }

  reconnectSoon(delayMs) {
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => {
      if (!this.socket.connected) this.socket.connect();
    }, delayMs);
  }

  /** A token for the session's user, minted by the server for minutes. */
  async freshToken() {
    return this.tokens.fresh();
  }

  /**
   * Emit an event and wait for its ack (`{ok, data}` or `{ok: false, error}`).
   * Throws OfflineError when disconnected, and a timeout error when no ack arrives.
   */
  async call(event, payload) {
    if (!this.socket.connected) throw new OfflineError(event);
    const emitter = this.socket.timeout(ACK_TIMEOUT_MS);
    return payload === undefined ? emitter.emitWithAck(event) : emitter.emitWithAck(event, payload);
  }

  /** `GET /api/v1/channels/{channel}/messages` with the given query parameters. */
  async history(channel, params) {
    const query = new URLSearchParams();
    for (const [name, value] of Object.entries(params)) {
      if (value !== undefined && value !== null) query.set(name, String(value));
    }
    const url = `/api/v1/channels/${encodeURIComponent(channel)}/messages?${query}`;
    return this.tokens.json("GET", url);
  }
}

/**
 * The page's one connection to `namespace`: the first module to ask creates it, later ones
 * attach their handlers to it (see `Connection.attach`). Every module may call `start()`.
 */
export function sharedConnection(handlers, { namespace = "/" } = {}) {
  const existing = shared.get(namespace);
  if (existing) {
    existing.attach(handlers);
    return existing;
  }
  const conn = new Connection(handlers, { namespace });
  shared.set(namespace, conn);
  return conn;
}
