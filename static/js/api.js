// The page's connection to the cluster: which node it talks to, and requests
// that survive a node going away.
//
// Every request goes to `api.current`, an absolute node URL (nodes allow CORS).
// When that node stops answering (network error or timeout, or the live feed
// saw it hang), or keeps saying 503 while another node is ready, the page
// switches to another member; requests still waiting on the old node are
// abandoned there and sent again to the new one at once. A write keeps its
// Idempotency-Key across retries, so it takes effect once however many nodes
// it was sent to.
//
// Signed in, every request carries the session cookie (every node accepts it,
// so failover keeps the user signed in) and every write the session's CSRF
// token. A 401 `unauthenticated` (signed out elsewhere, or the session ended)
// asks `onUnauthenticated` to sign in again, then sends the request again: an
// edit in progress is not lost.

import { sleep } from './util.js';

const READ_TIMEOUT_MS = 6000;
// The server answers a write within its 5 s deadline (504 after that).
const WRITE_TIMEOUT_MS = 8000;
const PROBE_TIMEOUT_MS = 1200;

export class Api extends EventTarget {
  constructor(origin) {
    super();
    this.origin = origin.replace(/\/$/, '');
    this.current = this.origin;
    /** Known members: [{id, url}], in id order. */
    this.members = [];
    this.switching = null;
    /** Attempts in flight: {node, ctl}; a switch away from `node` aborts them. */
    this.attempts = new Set();
    /** The last answer that made a request wait: {node, status, code, at}, or null. */
    this.trouble = null;
    /** The session's CSRF token, sent with every write (null: none). */
    this.csrf = null;
    /** Called on a 401: resolves once signed in again (then the request is resent). */
    this.onUnauthenticated = null;
  }

  /**
   * Learn the members from a /api/cluster answer (or a WS cluster frame).
   * Nothing in it is trusted to be there: a member without a URL is skipped.
   */
  setMembers(members) {
    const byUrl = new Map(this.members.map((m) => [m.url, m]));
    for (const m of Array.isArray(members) ? members : []) {
      const url = normalUrl(m?.url);
      if (url && Number.isInteger(m.id)) byUrl.set(url, { id: m.id, url });
    }
    this.members = [...byUrl.values()].sort((a, b) => (a.id ?? 0) - (b.id ?? 0));
  }

  nodeIdOf(url) {
    return this.members.find((m) => m.url === url)?.id ?? null;
  }

  /**
   * One request, retried (same Idempotency-Key) across nodes until it gets an
   * answer that is not 502/503/504 or the deadline passes. Resolves to
   * {status, ok, body, seq, etag, node}; rejects only when no node answered.
   */
  async request(method, path, { body, raw, ifMatch, idempotencyKey, deadlineMs = 30000, signal, noSignIn = false } = {}) {
    const write = method !== 'GET';
    const deadline = Date.now() + deadlineMs;
    const headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    // `raw`: a file sent as it is (a Blob), instead of a JSON `body`.
    if (raw !== undefined) headers['Content-Type'] = 'application/octet-stream';
    if (ifMatch != null) headers['If-Match'] = `"${ifMatch}"`;
    if (idempotencyKey) headers['Idempotency-Key'] = idempotencyKey;
    let signIns = 0;
    let busy = 0; // 503s in a row from the same node
    let attempt = 0;
    for (;;) {
      if (signal?.aborted) throw new DOMException('aborted', 'AbortError');
      const node = this.current;
      attempt++;
      let res;
      const tried = { node, ctl: new AbortController() };
      const onAbort = () => tried.ctl.abort(signal.reason);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.attempts.add(tried);
      if (write && this.csrf) headers['X-Taskraft-CSRF'] = this.csrf;
      try {
        res = await fetchWithTimeout(`${node}${path}`, {
          method,
          headers,
          body: raw ?? (body === undefined ? undefined : JSON.stringify(body)),
          timeout: write ? WRITE_TIMEOUT_MS : READ_TIMEOUT_MS,
          signal: tried.ctl.signal,
        });
      } catch (err) {
        if (signal?.aborted) throw err;
        if (Date.now() > deadline) throw new Error(`no node answered ${method} ${path}: ${err.message}`);
        this.trouble = { node, status: 0, code: 'no_answer', at: Date.now() };
        if (tried.ctl.signal.aborted) continue; // the page moved on: send it there now
        // The node did not answer at all: try another one.
        await this.failover(node, 'not answering');
        await sleep(Math.min(1000, 100 * attempt));
        continue;
      } finally {
        this.attempts.delete(tried);
        signal?.removeEventListener('abort', onAbort);
      }
      if (res.status === 502 || res.status === 503 || res.status === 504) {
        const result = await toResult(res, node);
        this.trouble = { node, status: res.status, code: result.body?.error?.code ?? null, at: Date.now() };
        if (Date.now() > deadline) return result;
        busy = node === this.current ? busy + 1 : 1;
        if (res.status === 503 && busy >= 3) {
          // This node cannot serve (no leader, cut off): move if another can.
          await this.failover(node, 'unavailable', { requireReady: true });
          busy = 0;
        }
        const retryAfter = Number(res.headers.get('Retry-After'));
        const wait = Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : 200;
        await sleep(Math.min(1000, wait) * (0.5 + Math.random() / 2));
        continue;
      }
      if (this.trouble?.node === node) this.trouble = null;
      if (res.status === 401 && !noSignIn && this.onUnauthenticated && signIns < 3) {
        // Signed out (elsewhere, or the session ended): sign in, send again.
        signIns++;
        await this.onUnauthenticated();
        continue;
      }
      return toResult(res, node);
    }
  }

  /** Writes (and reads) still waiting for an answer. */
  get waiting() {
    return this.attempts.size;
  }

  /**
   * `from` failed: switch to another member that answers (ready first). Only
   * one switch runs at a time, and none if the page already moved away.
   */
  async failover(from, reason, { requireReady = false } = {}) {
    if (this.current !== from) return this.current;
    if (this.switching) return this.switching;
    this.switching = (async () => {
      const urls = this.members.map((m) => m.url);
      if (!urls.includes(from)) urls.unshift(from);
      const at = urls.indexOf(from);
      const others = [...urls.slice(at + 1), ...urls.slice(0, at)];
      if (others.length === 0) return this.current;
      const states = await Promise.all(others.map((url) => probe(url)));
      let pick = others.find((_, i) => states[i] === 'ready');
      if (!pick && !requireReady) pick = others.find((_, i) => states[i] === 'alive');
      if (pick && this.current === from) {
        this.current = pick;
        // Whatever still waits on the old node is sent again to the new one.
        for (const tried of this.attempts) if (tried.node === from) tried.ctl.abort();
        this.dispatchEvent(new CustomEvent('switch', { detail: { from, to: pick, reason } }));
      }
      return this.current;
    })().finally(() => {
      this.switching = null;
    });
    return this.switching;
  }
}

/** `url` without its trailing slash, if it is an http(s) URL; else null. */
export function normalUrl(url) {
  if (typeof url !== 'string' || !/^https?:\/\//.test(url)) return null;
  return url.replace(/\/$/, '');
}

async function toResult(res, node) {
  let body = null;
  const text = await res.text().catch(() => '');
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = { error: { code: 'bad_response', message: text.slice(0, 200) } };
    }
  }
  const seq = res.headers.get('X-Taskraft-Seq');
  const etag = res.headers.get('ETag');
  return {
    status: res.status,
    ok: res.ok,
    body,
    seq: seq == null ? null : Number(seq),
    etag: etag == null ? null : Number(etag.replace(/"/g, '')),
    node,
  };
}

export async function fetchWithTimeout(url, { timeout, signal, ...init }) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(new DOMException('timed out', 'TimeoutError')), timeout);
  const onAbort = () => ctl.abort(signal.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    // `include`: the session cookie goes to every member (they all accept it).
    return await fetch(url, { ...init, signal: ctl.signal, cache: 'no-store', credentials: 'include' });
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  }
}

/** 'ready' (GET /readyz 200), 'alive' (GET /healthz 200) or 'down'. */
export async function probe(url) {
  try {
    const ready = await fetchWithTimeout(`${url}/readyz`, { timeout: PROBE_TIMEOUT_MS });
    if (ready.ok) return 'ready';
    return 'alive'; // it answered, just not ready
  } catch {
    return 'down';
  }
}

/** A human message for an error answer. */
export function errorMessage(result) {
  const err = result?.body?.error;
  if (err?.message) return err.message;
  return `the server answered ${result?.status ?? 'nothing'}`;
}
