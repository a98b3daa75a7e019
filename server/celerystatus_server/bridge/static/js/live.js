// The live feed: WebSocket first, reconnecting with back-off; JSON polling when
// WebSockets do not get through (blocked by a proxy, or failing repeatedly).

import { AuthRequired, base64url, getJson, token } from "./api.js";

const STATUS_PATH = "/api/celery-status";
const WS_PATH = "/ws/celery-status";
const BACKOFF_INITIAL = 500;
const BACKOFF_MAX = 15000;
// After this many WebSocket attempts that never opened, poll instead (and keep retrying the socket slowly).
const FAILURES_BEFORE_POLLING = 2;
const POLL_INTERVAL = 2000;

/**
 * new LiveFeed({config, onSnapshot(snapshot, receivedAt), onTransport(state), onAuth()})
 * transport states: "connecting", "websocket", "polling", "offline".
 */
export class LiveFeed {
  constructor({ config, onSnapshot, onTransport, onAuth }) {
    this.config = config;
    this.onSnapshot = onSnapshot;
    this.onTransport = onTransport;
    this.onAuth = onAuth;
    this.socket = null;
    this.failures = 0;
    this.backoff = BACKOFF_INITIAL;
    this.pollTimer = null;
    this.retryTimer = null;
    this.stopped = true;
    this.transport = "connecting";
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.stopPolling();
    if (this.socket) {
      this.socket.onclose = null;
      this.socket.close(1000);
      this.socket = null;
    }
  }

  restart() {
    this.stop();
    this.failures = 0;
    this.backoff = BACKOFF_INITIAL;
    this.start();
  }

  setTransport(state) {
    if (state !== this.transport) {
      this.transport = state;
      this.onTransport(state);
    }
  }

  protocols() {
    const list = [this.config.ws_subprotocol || "celery-status.v1"];
    const bearer = token.current();
    if (bearer) list.push(`${this.config.ws_bearer_prefix || "bearer."}${base64url(bearer)}`);
    return list;
  }

  connect() {
    if (this.stopped) return;
    if (typeof WebSocket === "undefined") {
      this.startPolling();
      return;
    }
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    let opened = false;
    let socket;
    try {
      socket = new WebSocket(`${scheme}//${location.host}${WS_PATH}`, this.protocols());
    } catch {
      this.socketFailed(false);
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      opened = true;
      this.failures = 0;
      this.backoff = BACKOFF_INITIAL;
      this.stopPolling();
      this.setTransport("websocket");
    };
    socket.onmessage = (event) => {
      let snapshot;
      try { snapshot = JSON.parse(event.data); } catch { return; }
      this.onSnapshot(snapshot, performance.now());
    };
    socket.onerror = () => { /* onclose follows and decides */ };
    socket.onclose = () => {
      if (this.socket === socket) this.socket = null;
      this.socketFailed(opened);
    };
  }

  socketFailed(hadOpened) {
    if (this.stopped) return;
    if (!hadOpened) this.failures += 1;
    if (this.failures >= FAILURES_BEFORE_POLLING) this.startPolling();
    else this.setTransport(hadOpened ? "connecting" : this.transport === "polling" ? "polling" : "connecting");
    // Jittered back-off so a restarted bridge is not hit by every tab at once.
    const delay = this.backoff * (0.5 + Math.random() / 2);
    this.backoff = Math.min(this.backoff * 2, BACKOFF_MAX);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), hadOpened ? Math.min(delay, 1000) : delay);
  }

  startPolling() {
    if (this.pollTimer !== null || this.stopped) return;
    this.setTransport("polling");
    const tick = async () => {
      if (this.stopped || this.pollTimer === null) return;
      try {
        const snapshot = await getJson(STATUS_PATH);
        if (this.pollTimer !== null) {
          this.setTransport("polling");
          this.onSnapshot(snapshot, performance.now());
        }
      } catch (error) {
        if (error instanceof AuthRequired) {
          this.stop();
          this.onAuth();
          return;
        }
        // A 503 still carries the full status document (connected false).
        if (error.body && typeof error.body === "object" && "connected" in error.body) {
          this.onSnapshot(error.body, performance.now());
        } else {
          this.setTransport("offline");
        }
      }
      if (this.pollTimer !== null) this.pollTimer = setTimeout(tick, POLL_INTERVAL);
    };
    this.pollTimer = setTimeout(tick, 0);
  }

  stopPolling() {
    if (this.pollTimer !== null) {
      clearTimeout(this.pollTimer);
      this.pollTimer = null;
    }
  }
}
