// kill -9 the node a page talks to: the page moves to another member, resumes
// the live feed from its last seq, and loses or doubles nothing.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as api from './lib/api.mjs';
import { card, cardIds, openBoard, waitForSeq } from './lib/browser.mjs';
import { eventually, setUp, tearDown } from './lib/harness.mjs';

let env;

before(async () => {
  env = await setUp();
});

after(async () => {
  await tearDown(env);
});

/** Create through `url`, retrying (same Idempotency-Key) while an election runs. */
async function createRetrying(url, task) {
  const key = crypto.randomUUID();
  return eventually(
    async () => {
      const res = await api.call(url, 'POST', '/api/tasks', { body: task, key });
      if (res.status === 201) return { ...res.body, seq: res.seq };
      if (res.status === 503 || res.status === 504) return null;
      throw new Error(`create: ${res.status} ${JSON.stringify(res.body)}`);
    },
    { timeout: 20000, interval: 200, what: 'a create during the election' },
  );
}

test('the node serving the page is killed (kill -9): the page carries on through another', async () => {
  const { cluster } = env;
  const [n1, n2, n3] = cluster.nodes;
  await api.seedBoard(n2.url);
  // The page talks to node 1; make node 1 the leader too, so the kill also forces an election.
  // (The transfer must be asked of the current leader.)
  const info = await (await fetch(`${n1.url}/api/cluster`)).json();
  if (info.leader_id !== 1) {
    const res = await fetch(`${info.leader_url}/api/cluster/leader`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ to: 1 }),
    });
    assert.equal(res.status, 202, 'leadership transfer accepted');
    await eventually(
      async () => {
        const views = await Promise.all(cluster.nodes.map(async (n) => (await fetch(`${n.url}/api/cluster`)).json()));
        return views.every((v) => v.leader_id === 1);
      },
      { timeout: 10000, what: 'node 1 leading' },
    );
  }
  const page = await openBoard(env.browser, n1.url);
  try {
    const before = await api.list(n2.url);
    await waitForSeq(page, before.lastSeq);
    assert.deepEqual((await cardIds(page)).sort(), before.tasks.map((t) => t.id).sort());
    await page.waitForSelector('#cluster tbody tr[data-node-id="1"].is-current');

    // A write from the page is in flight when its node dies: the request is
    // held, node 1 is killed, then the request goes on (to a dead node).
    const posts = [];
    let t0 = null;
    await page.route(/\/api\/tasks$/, async (route) => {
      const req = route.request();
      if (req.method() === 'POST') {
        posts.push({ url: req.url(), key: req.headers()['idempotency-key'] });
        if (t0 === null) {
          cluster.kill(1);
          t0 = Date.now();
        }
      }
      await route.continue();
    });
    await page.locator('.column[data-status="todo"] .add-open').click();
    await page.locator('.column[data-status="todo"] .add-title').fill('Written while node 1 died');
    await page.locator('.column[data-status="todo"] .add-title').press('Enter');
    await eventually(() => t0 !== null, { what: 'the write sent' });

    // Meanwhile, others keep writing through node 3 (during the election too).
    const during = [];
    for (let i = 0; i < 5; i++) during.push(await createRetrying(n3.url, { title: `Written on node 3 #${i}`, labels: ['failover'] }));

    // The page switched node, said so, and is live again.
    await page.waitForFunction((dead) => document.getElementById('app').dataset.nodeUrl !== dead, n1.url, {
      timeout: 20000,
    });
    await page.waitForSelector('#app[data-live="true"]', { timeout: 20000 });
    const switchedMs = Date.now() - t0;
    const nodeUrl = await page.$eval('#app', (el) => el.dataset.nodeUrl);
    assert.ok([n2.url, n3.url].includes(nodeUrl), `now on a live node (${nodeUrl})`);
    await page.locator('.toast', { hasText: /now using node [23]/ }).waitFor({ timeout: 5000 });
    assert.match(await page.textContent('#conn'), /Live · node [23]/);

    // Every write made during the switch is on the page.
    for (const t of during) await card(page, t.id).waitFor({ timeout: 10000 });
    // The page's own write was retried on another node with the same key, and applied once.
    await page.locator('#board .card', { hasText: 'Written while node 1 died' }).first().waitFor({ timeout: 20000 });
    await page.unroute(/\/api\/tasks$/);
    assert.ok(posts.length >= 2, `the write was retried (${JSON.stringify(posts)})`);
    assert.ok(posts[0].url.startsWith(n1.url), 'first sent to node 1');
    assert.ok(!posts.at(-1).url.startsWith(n1.url), 'retried on another node');
    assert.equal(new Set(posts.map((p) => p.key)).size, 1, 'with the same Idempotency-Key');

    // Live updates still flow: a change made via another node appears within a second.
    const live = await createRetrying(n2.url, { title: 'After the failover', status: 'in_progress' });
    const t1 = Date.now();
    await card(page, live.id).waitFor({ timeout: 2000 });
    const liveMs = Date.now() - t1;

    // And the page can still write: move a card with the keyboard.
    await card(page, live.id).focus();
    await page.keyboard.press('m');
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('Enter');
    await eventually(async () => (await api.get(n2.url, live.id)).body?.status === 'done', { what: 'the move saved' });

    // No card lost or doubled: the page shows exactly the server's tasks.
    const truth = await api.list(n2.url);
    await waitForSeq(page, truth.lastSeq, 10000);
    const ids = await cardIds(page);
    assert.equal(new Set(ids).size, ids.length, 'no card twice');
    assert.deepEqual([...ids].sort(), truth.tasks.map((t) => t.id).sort());
    assert.equal(truth.tasks.filter((t) => t.title === 'Written while node 1 died').length, 1, 'the retried write applied once');
    const onPage = await page.$$eval('#board .card', (els) => els.map((e) => [e.dataset.taskId, e.dataset.status, e.dataset.version]));
    const want = truth.tasks.map((t) => [t.id, t.status, String(t.version)]);
    assert.deepEqual(onPage.sort(), want.sort(), 'same status and version for every card');

    // The cluster panel shows node 1 down.
    await page.waitForSelector('#cluster tbody tr[data-node-id="1"].is-down', { timeout: 5000 });
    console.log(`# failover: page live on ${nodeUrl} ${switchedMs} ms after the kill; a later change showed in ${liveMs} ms`);
    const problems = page.problems.filter((p) => !/Failed to load resource|ERR_CONNECTION_REFUSED|WebSocket connection/.test(p));
    assert.deepEqual(problems, []);
    assert.deepEqual(page.dialogs, []);
  } finally {
    await page.context().close();
  }
});
