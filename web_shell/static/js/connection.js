// The page's Socket.IO connection and HTTP calls, authenticated with a short-lived token that
// the server mints for the session cookie (the cookie itself is HttpOnly and never readable).

import { io } from "../vendor/socket.io/socket.io.esm.min.js";
import { SessionToken } from "./session-token.js";

const ACK_TIMEOUT_MS = 10000;

/** Raised by `call` when there is no connection (the caller queues or reports). */
export class OfflineError extends Error {}

export class Connection {
  /**
   * @param {{onOnline: () => void, onOffline: (reason: string) => void,
   *          onSignedOut: () => void}} handlers
   * @param {{namespace?: string}} [options] the Socket.IO namespace ("/" by default)
   */
  constructor(handlers, { namespace = "/" } = {}) {
    this.handlers = handlers;
    this.tokens = new SessionToken(() => handlers.onSignedOut());
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
    this.socket.on("connect", () => handlers.onOnline());
    this.socket.on("disconnect", (reason) => {
      handlers.onOffline(reason);
      // The server closed us (e.g. the token expired): the client does not retry by itself.
      if (reason === "io server disconnect") this.reconnectSoon(300);
    });
    this.socket.on("connect_error", () => {
      handlers.onOffline("connect_error");
      if (!this.socket.active) this.reconnectSoon(2000);
    });
    window.addEventListener("offline", () => handlers.onOffline("browser offline"));
    window.addEventListener("online", () => this.reconnectSoon(0));
  }

  get connected() {
    return this.socket.connected;
  }

  /** Subscribe to a server event. */
  on(event, handler) {
    this.socket.on(event, handler);
  }

  /** Open the connection. */
  start() {
    this.socket.connect();
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
