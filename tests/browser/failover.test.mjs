// The page's node fails: killed (kill -9), killed again after a restart,
// hung (SIGSTOP), or cut off from a majority. The page moves to another
// member, resumes the live feed from its last seq, loses or doubles
// nothing, and says what is going on while it waits.
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
    const deadPolls = [];
    page.on('request', (req) => {
      if (t0 !== null && req.url() === `${n1.url}/api/cluster`) deadPolls.push(Date.now() - t0);
    });
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

    // The cluster panel shows node 1 down, and asks it less and less often.
    await page.waitForSelector('#cluster tbody tr[data-node-id="1"].is-down', { timeout: 5000 });
    await page.waitForTimeout(Math.max(0, 8000 - (Date.now() - t0)));
    assert.ok(deadPolls.length <= 3, `the dead node polled with backoff, not every 2 s (at ${deadPolls} ms)`);
    console.log(`# failover: page live on ${nodeUrl} ${switchedMs} ms after the kill; a later change showed in ${liveMs} ms`);
    const problems = page.problems.filter((p) => !/Failed to load resource|ERR_CONNECTION_REFUSED|WebSocket connection/.test(p));
    assert.deepEqual(problems, []);
    assert.deepEqual(page.dialogs, []);
  } finally {
    await page.context().close();
  }
});

/**
 * What the header (#conn) and the dialog's saving line (#task-saving) say,
 * each time it changes, with when (page clock): window.headerLog and
 * window.savingLog. Either may say something only for a moment.
 */
async function recordHeader(page) {
  await page.evaluate(() => {
    const watch = (id, log) => {
      window[log] = [];
      const el = document.getElementById(id);
      const note = () => window[log].push({ at: performance.now(), text: el.hidden ? '' : el.textContent });
      note();
      new MutationObserver(note).observe(el, { childList: true, characterData: true, subtree: true, attributes: true });
    };
    watch('conn', 'headerLog');
    watch('task-saving', 'savingLog');
  });
  return {
    since: () => page.evaluate(() => performance.now()),
    log: () => page.evaluate(() => window.headerLog),
    saidWhileSaving: (pattern, timeout) =>
      page.waitForFunction((source) => window.savingLog.some((e) => new RegExp(source, 'i').test(e.text)), pattern, {
        timeout,
      }),
  };
}

/** The leader every running node agrees on. */
async function agreedLeader(cluster, ids) {
  return eventually(
    async () => {
      const views = await Promise.all(ids.map(async (id) => (await fetch(`${cluster.url(id)}/api/cluster`)).json()));
      const leader = views[0].leader_id;
      return leader && views.every((v) => v.leader_id === leader) ? leader : null;
    },
    { timeout: 15000, what: 'an agreed leader' },
  );
}

test('a restarted node knows every member, and its page fails over when it dies again', async () => {
  const { cluster } = env;
  const [n1, n2, n3] = cluster.nodes;
  if (!cluster.killed.has(1)) cluster.kill(1);
  await cluster.restart(1);
  // Down only briefly this time: it hears from the leader before its
  // election timer fires, so the other follower never has a reason to dial
  // it (the case where only the log can tell it that member's URL).
  cluster.kill(1);
  await cluster.restart(1);
  const page = await openBoard(env.browser, n1.url);
  try {
    // Every node shown, up, with its URL: the page knows where to go.
    await page.waitForFunction(
      () => {
        const rows = [...document.querySelectorAll('#cluster tbody tr')];
        return rows.length === 3 && rows.every((r) => !r.classList.contains('is-down'));
      },
      null,
      { timeout: 10000 },
    );
    const urls = await page.$$eval('#cluster tbody tr', (rows) => rows.map((r) => r.dataset.nodeUrl).sort());
    assert.deepEqual(urls, [n1.url, n2.url, n3.url].sort());

    // Killed again, with a card being added: the page moves on, the card lands once.
    const header = await recordHeader(page);
    cluster.kill(1);
    const t0 = Date.now();
    await page.locator('.column[data-status="todo"] .add-open').click();
    await page.locator('.column[data-status="todo"] .add-title').fill('Added as node 1 died again');
    await page.locator('.column[data-status="todo"] .add-title').press('Enter');
    await page.waitForFunction((dead) => document.getElementById('app').dataset.nodeUrl !== dead, n1.url, {
      timeout: 10000,
    });
    await page.waitForSelector('#app[data-live="true"]', { timeout: 10000 });
    console.log(`# restarted node killed again: page live elsewhere ${Date.now() - t0} ms after the kill; ${JSON.stringify((await header.log()).map((e) => e.text))}`);
    await page.locator('#board .card', { hasText: 'Added as node 1 died again' }).waitFor({ timeout: 15000 });
    const truth = await api.list(n2.url);
    assert.equal(truth.tasks.filter((t) => t.title === 'Added as node 1 died again').length, 1);
    const problems = page.problems.filter((p) => !/Failed to load resource|ERR_CONNECTION_REFUSED|WebSocket connection/.test(p));
    assert.deepEqual(problems, []);
  } finally {
    await page.context().close();
    if (cluster.killed.has(1)) await cluster.restart(1);
  }
});

test("the page's node hangs (SIGSTOP): within ~2 s the page says so and switches; a save says why it waits", async () => {
  const { cluster } = env;
  const ids = cluster.nodes.map((n) => n.id);
  const leader = await agreedLeader(cluster, ids);
  const task = await api.create(cluster.url(leader), { title: 'Edited while its node hangs' });
  const page = await openBoard(env.browser, cluster.url(leader));
  try {
    await waitForSeq(page, task.seq);
    const header = await recordHeader(page);
    await card(page, task.id).click();
    await page.locator('#task-dialog').waitFor();
    await page.fill('#task-title', 'Saved after its node hung');

    const start = await header.since();
    cluster.pause(leader);
    await page.click('#task-save');
    // The header stops claiming "Live" on the hung node within ~2 s (it may
    // say so only for the moment the switch takes).
    const hung = `Node ${leader} not answering`;
    await page.waitForFunction((text) => window.headerLog.some((e) => e.text.startsWith(text)), hung, {
      timeout: 2500,
    });
    const log = await header.log();
    const saidAt = log.find((e) => e.text.startsWith(hung)).at - start;
    // The pending save says that it waits, and why.
    await header.saidWhileSaving('not answering|waiting|electing', 2500);
    // It lands through another node, once.
    await page.locator('#task-dialog').waitFor({ state: 'hidden', timeout: 15000 });
    const other = ids.find((id) => id !== leader);
    const saved = await eventually(async () => (await api.get(cluster.url(other), task.id)).body, { what: 'the save' });
    assert.equal(saved.title, 'Saved after its node hung');
    assert.equal(saved.version, task.version + 1);
    await page.locator('#conn', { hasText: /^Live · node [0-9]/ }).waitFor({ timeout: 10000 });
    assert.doesNotMatch(await page.textContent('#conn'), new RegExp(`node ${leader}$`));
    console.log(`# hung node: the header said so ${Math.round(saidAt)} ms after SIGSTOP; ${JSON.stringify(log.map((e) => e.text))}`);
  } finally {
    cluster.resume(leader);
    await page.context().close();
  }
});

test('no majority: the header says "Waiting for a majority…" and a pending save says it waits for one', async () => {
  const { cluster } = env;
  const ids = cluster.nodes.map((n) => n.id);
  await agreedLeader(cluster, ids);
  const [alone, ...others] = ids;
  const task = await api.create(cluster.url(alone), { title: 'Saved once the majority is back' });
  const page = await openBoard(env.browser, cluster.url(alone));
  try {
    await waitForSeq(page, task.seq);
    const header = await recordHeader(page);
    const start = await header.since();
    for (const id of others) cluster.pause(id);
    await page.locator('#conn', { hasText: 'Waiting for a majority' }).waitFor({ timeout: 3000 });
    const log = await header.log();
    const saidAt = log.find((e) => /Waiting for a majority/.test(e.text)).at - start;

    await card(page, task.id).click();
    await page.locator('#task-dialog').waitFor();
    await page.selectOption('#task-priority', 'urgent');
    await page.click('#task-save');
    await header.saidWhileSaving('majority', 3000);
    assert.equal((await api.call(cluster.url(alone), 'GET', `/api/tasks/${task.id}?consistency=local`)).body.priority, 'medium');

    for (const id of others) cluster.resume(id);
    await page.locator('#task-dialog').waitFor({ state: 'hidden', timeout: 20000 });
    const saved = await eventually(async () => (await api.get(cluster.url(alone), task.id)).body, { what: 'the save' });
    assert.equal(saved.priority, 'urgent');
    assert.equal(saved.version, task.version + 1, 'saved once');
    await page.locator('#conn', { hasText: /^Live · node/ }).waitFor({ timeout: 10000 });
    console.log(`# no majority: the header said so ${Math.round(saidAt)} ms after the others froze`);
  } finally {
    for (const id of others) cluster.resume(id);
    await page.context().close();
  }
});
