// The live feed: /ws?since=<last applied seq> on the node the page talks to.
//
// Events are applied only when their seq is the next one. A gap, a dropped
// connection or a switch of node all lead to the same thing: reconnect with
// since = the last applied seq, on whichever node the page now uses, so no
// event is missed or applied twice. "resync" (the node's backlog no longer
// reaches back to us) reloads the whole list first.
//
// A node that hangs (SIGSTOP, a stuck machine) keeps its socket open and just
// stops answering. So while the page is visible, a quiet socket is pinged
// twice a second; a ping unanswered for STALL_MS makes the feed say "stall"
// (and "unstall" when anything arrives again), which lets the page say so and
// move to another node within about two seconds.
//
// The page may say what it looks at on the socket (`send`, see presence.js);
// the node's `presence` frames are dispatched as `presence` events.
//
// A socket whose credential ended (logged out here or on another node, the
// user disabled, the token revoked, the session expired) is closed by the
// node with code 4001 and the reason in words: the feed asks `onSignedOut`
// (the sign-in dialog) and reconnects once it resolves.

import { probe } from './api.js';

/** The node closed the socket because its credential ended. */
const SIGNED_OUT_CLOSE_CODE = 4001;
/** A visible page pings a socket that has been quiet this long. */
const PING_IDLE_MS = 500;
/** A hidden page pings less: it has nothing to show. */
const PING_HIDDEN_MS = 10000;
/** A ping unanswered this long: the node is not answering. */
const STALL_MS = 900;
const CHECK_EVERY_MS = 200;
const SILENCE_LIMIT_MS = 25000;

export class Feed extends EventTarget {
  constructor(api, store, { reload, onSignedOut }) {
    super();
    this.api = api;
    this.store = store;
    this.reload = reload;
    /** (reason) => Promise resolved once signed in again. */
    this.onSignedOut = onSignedOut;
    this.ws = null;
    this.node = null;
    this.state = 'connecting';
    this.failures = 0;
    this.timer = null;
    this.heartbeat = null;
    this.lastMessageAt = 0;
    this.pingSentAt = 0;
    this.stalled = false;
    api.addEventListener('switch', () => {
      // The page moved to another node: follow it.
      if (this.ws && this.node !== this.api.current) this.restart('node switched');
    });
  }

  start() {
    this.connect();
    this.heartbeat = setInterval(() => this.checkAlive(), CHECK_EVERY_MS);
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.dispatchEvent(new CustomEvent('state', { detail: { state, node: this.node } }));
  }

  connect() {
    clearTimeout(this.timer);
    this.timer = null;
    const node = this.api.current;
    const url = `${node.replace(/^http/, 'ws')}/ws?since=${this.store.lastSeq}`;
    let ws;
    try {
      ws = new WebSocket(url);
    } catch {
      this.scheduleReconnect(node, false);
      return;
    }
    this.ws = ws;
    this.node = node;
    let greeted = false;
    this.lastMessageAt = Date.now();
    this.pingSentAt = 0;
    this.setStalled(false);
    ws.onmessage = (msg) => {
      if (this.ws !== ws) return;
      this.lastMessageAt = Date.now();
      this.setStalled(false);
      let frame;
      try {
        frame = JSON.parse(msg.data);
      } catch {
        return;
      }
      switch (frame.type) {
        case 'hello':
          greeted = true;
          this.failures = 0;
          this.setState('live');
          this.dispatchEvent(new CustomEvent('hello', { detail: frame }));
          break;
        case 'event': {
          const outcome = this.store.apply(frame);
          if (outcome === 'gap') this.restart(`gap after seq ${this.store.lastSeq}`);
          break;
        }
        case 'cluster':
          this.dispatchEvent(new CustomEvent('cluster', { detail: { info: frame, node } }));
          break;
        case 'resync':
          this.resync();
          break;
        case 'presence':
          this.dispatchEvent(new CustomEvent('presence', { detail: frame }));
          break;
        default:
          break; // pong and anything new
      }
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (ev.code === 4000) {
        // Too far behind for the node's backlog (the resync frame may not have come).
        this.resync();
        return;
      }
      if (ev.code === SIGNED_OUT_CLOSE_CODE) {
        this.signedOut(ev.reason);
        return;
      }
      this.scheduleReconnect(node, greeted);
    };
  }

  /** Sends `text` on the socket if it is open and greeted; whether it went. */
  send(text) {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN || this.state !== 'live') return false;
    try {
      ws.send(text);
      return true;
    } catch {
      return false; // the close handler takes over
    }
  }

  /** Close the socket on purpose and reconnect from lastSeq at once. */
  restart(why) {
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close(1000, why.slice(0, 100));
    this.connect();
  }

  async resync() {
    if (this.resyncing) return;
    this.resyncing = true;
    const ws = this.ws;
    this.ws = null;
    ws?.close();
    this.setState('reconnecting');
    try {
      await this.reload();
    } catch {
      // reload retries across nodes by itself; if it gave up, reconnect anyway
    } finally {
      this.resyncing = false;
    }
    this.connect();
  }

  async signedOut(reason) {
    this.setState('reconnecting');
    try {
      await this.onSignedOut?.(reason || 'signed out');
    } finally {
      this.connect();
    }
  }

  async scheduleReconnect(node, wasGreeted) {
    this.setState('reconnecting');
    this.failures++;
    // Is the node still there? If not, move to another member now.
    const state = await probe(node);
    if (state === 'down' || (!wasGreeted && this.failures >= 2)) {
      await this.api.failover(node, 'live feed lost');
    }
    const delay = wasGreeted && this.failures === 1 ? 50 : Math.min(5000, 150 * 2 ** Math.min(this.failures, 5));
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay * (0.7 + Math.random() * 0.6));
  }

  setStalled(stalled) {
    if (this.stalled === stalled) return;
    this.stalled = stalled;
    this.dispatchEvent(new CustomEvent(stalled ? 'stall' : 'unstall', { detail: { node: this.node } }));
  }

  checkAlive() {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    const now = Date.now();
    if (now - this.lastMessageAt > SILENCE_LIMIT_MS) {
      // A half-open connection (the node froze): drop it.
      this.ws = null;
      ws.close();
      this.setStalled(false);
      this.scheduleReconnect(this.node, true);
      return;
    }
    const outstanding = this.pingSentAt > this.lastMessageAt;
    if (outstanding) {
      if (now - this.pingSentAt > STALL_MS) this.setStalled(true);
      return;
    }
    const idle = document.hidden ? PING_HIDDEN_MS : PING_IDLE_MS;
    if (now - this.lastMessageAt > idle) {
      try {
        ws.send(JSON.stringify({ type: 'ping' }));
        this.pingSentAt = now;
      } catch {
        // the close handler takes over
      }
    }
  }
}
