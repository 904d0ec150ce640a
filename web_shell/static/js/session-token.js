// The short-lived bearer token of the signed-in user, minted by the server for the session
// cookie (the cookie itself is HttpOnly and never readable), and JSON calls that carry it.

const TOKEN_MARGIN_MS = 60000;

/** An HTTP call answered with an error (`code` and `message` from the server's error shape). */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export class SessionToken {
  /** @param {() => void} onSignedOut called when the session has ended */
  constructor(onSignedOut) {
    this.onSignedOut = onSignedOut;
    this.token = null;
    this.expiresAt = 0;
  }

  /** A new token from `GET /session/socket-token`. */
  async fresh() {
    const response = await fetch("/session/socket-token", {
      credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" },
    });
    if (response.status === 401) {
      this.onSignedOut();
      throw new Error("signed out");
    }
    if (!response.ok) throw new Error(`socket token: HTTP ${response.status}`);
    const body = await response.json();
    this.token = body.token;
    this.expiresAt = body.expires_at * 1000;
    return body.token;
  }

  /** The current token, renewed a minute before it expires. */
  async bearer() {
    if (!this.token || Date.now() > this.expiresAt - TOKEN_MARGIN_MS) await this.fresh();
    return this.token;
  }

  /**
   * `fetch(url)` with `Authorization: Bearer …`; after a 401 (the token lapsed in between),
   * once more with a new token.
   */
  async fetch(url, init = {}) {
    const send = async () => fetch(url, { ...init, cache: "no-store",
      headers: { ...(init.headers || {}), Authorization: `Bearer ${await this.bearer()}` } });
    let response = await send();
    if (response.status === 401) {
      this.token = null;
      response = await send();
    }
    return response;
  }

  /** A JSON call; returns the parsed body or throws ApiError with the server's message. */
  async json(method, url, body) {
    const init = { method, headers: { Accept: "application/json" } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await this.fetch(url, init);
    const parsed = await response.json().catch(() => null);
    if (!response.ok) {
      const error = parsed?.error || {};
      throw new ApiError(response.status, error.code || "http_error",
        error.message || `HTTP ${response.status}`);
    }
    return parsed;
  }
}
