// A page of another origin, open in the same browser as a user's board (the
// user signed in, so the browser holds the session cookie), tries to drive
// the cluster with that cookie: move leadership, remove a member, write,
// read, open the live feed. With the defaults none of it works (no wildcard
// CORS; writes from a foreign origin are refused before any handler runs;
// a cookie write without the session's CSRF header is refused), while a
// board served by one member still reaches the others with its session
// (failover).
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, test } from 'node:test';
import * as api from './lib/api.mjs';
import { signIn } from './lib/browser.mjs';
import { setUp, tearDown } from './lib/harness.mjs';

let env;
let evil;

before(async () => {
  env = await setUp();
  evil = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end('<!doctype html><title>another site</title><p>nothing to see</p>');
  });
  await new Promise((ok) => evil.listen(0, '127.0.0.1', ok));
});

after(async () => {
  await new Promise((ok) => evil?.close(ok) ?? ok());
  await tearDown(env);
});

const view = async (url) => (await fetch(`${url}/api/cluster`)).json();

test('a page of another origin cannot move leadership, remove a member, write or read', async () => {
  const { cluster, browser } = env;
  const [n1, n2, n3] = cluster.nodes;
  const before = await view(n1.url);
  const tasksBefore = (await api.list(n1.url)).tasks.length;
  const other = [1, 2, 3].find((id) => id !== before.leader_id);

  const context = await browser.newContext();
  // The user is signed in on node 1 in this browser.
  const board = await context.newPage();
  await board.goto(`${n1.url}/`);
  await signIn(board, cluster.admin);
  const page = await context.newPage();
  const origin = `http://127.0.0.1:${evil.address().port}`;
  await page.goto(`${origin}/`);
  const outcome = await page.evaluate(
    async ({ node, other }) => {
      const attempt = async (what, request) => {
        try {
          const res = await request();
          return `${what}: answered ${res.type} ${res.status}`;
        } catch (err) {
          return `${what}: blocked (${err.name})`;
        }
      };
      const json = { 'content-type': 'application/json' };
      const fetch = (url, init = {}) => window.fetch(url, { credentials: 'include', ...init });
      const results = [
        await attempt('leader', () =>
          fetch(`${node}/api/cluster/leader`, { method: 'POST', headers: json, body: JSON.stringify({ to: other }) }),
        ),
        await attempt('remove', () => fetch(`${node}/api/cluster/members/3`, { method: 'DELETE' })),
        await attempt('create', () =>
          fetch(`${node}/api/tasks`, { method: 'POST', headers: json, body: JSON.stringify({ title: 'from evil' }) }),
        ),
        // A "simple" request needs no preflight: the browser sends it and
        // hides the answer. The node must not act on it either.
        await attempt('simple', () =>
          fetch(`${node}/api/tasks`, {
            method: 'POST',
            mode: 'no-cors',
            headers: { 'content-type': 'text/plain' },
            body: JSON.stringify({ title: 'from evil, simple' }),
          }),
        ),
        await attempt('read', () => fetch(`${node}/api/cluster`)),
      ];
      const socket = await new Promise((resolve) => {
        const ws = new WebSocket(`${node.replace('http', 'ws')}/ws`);
        ws.onopen = () => resolve('ws: opened');
        ws.onerror = () => resolve('ws: refused');
        setTimeout(() => resolve('ws: no answer'), 5000);
      });
      results.push(socket);
      return results;
    },
    { node: n1.url, other },
  );
  assert.deepEqual(outcome, [
    'leader: blocked (TypeError)',
    'remove: blocked (TypeError)',
    'create: blocked (TypeError)',
    'simple: answered opaque 0',
    'read: blocked (TypeError)',
    'ws: refused',
  ]);
  await context.close();

  // Nothing changed: same leader and term, three members, node 3 running,
  // no task written.
  for (const node of [n1, n2, n3]) {
    const now = await view(node.url);
    assert.equal(now.leader_id, before.leader_id, `leader on node ${node.id}`);
    assert.equal(now.term, before.term, `term on node ${node.id}`);
    assert.deepEqual(now.members.map((m) => m.id).sort(), [1, 2, 3]);
  }
  assert.equal((await api.list(n1.url)).tasks.length, tasksBefore, 'no task was created');
});

test("a member's board still reaches the other members (failover needs it)", async () => {
  const { cluster, browser } = env;
  const [n1, n2] = cluster.nodes;
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${n1.url}/`);
  await signIn(page, cluster.admin);
  // Signed in on node 1; node 2 takes the same session (and its CSRF token).
  const seen = await page.evaluate(async (node) => {
    const session = await (await fetch('/api/session')).json();
    const res = await fetch(`${node}/api/cluster`, { credentials: 'include' });
    const write = (headers) =>
      fetch(`${node}/api/tasks`, {
        method: 'POST',
        credentials: 'include',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ title: 'from node 1\u2019s board, through node 2' }),
      });
    const withoutCsrf = await write({});
    const created = await write({ 'x-taskraft-csrf': session.csrf });
    return [res.status, (await res.json()).node_id, withoutCsrf.status, created.status];
  }, n2.url);
  assert.deepEqual(seen, [200, 2, 403, 201]);
  await context.close();
});
