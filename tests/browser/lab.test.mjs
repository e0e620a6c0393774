// The Lab page of `taskraft demo --lab` and the Cluster page, driven like a
// person would: isolate the leader from the page, watch a new one elected
// and the old one shown cut off while cards written on the majority reach
// the board; heal, and see it rejoin as a follower with the same log tail;
// kill and restart a node from the page; add a node and remove it again
// from the keyboard, cutting its links meanwhile; run the "kill the leader"
// tour to its own check. Both pages pass axe with no violations.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as api from './lib/api.mjs';
import { axeViolations } from './lib/axe.mjs';
import { card, openBoard, signIn } from './lib/browser.mjs';
import { ARTIFACTS, eventually, setUp, tearDown } from './lib/harness.mjs';

let env;

before(async () => {
  env = await setUp({ lab: true });
});

after(async () => {
  await tearDown(env);
});

async function openLab(browser, url, colorScheme = 'light') {
  const context = await browser.newContext({ viewport: { width: 1440, height: 1000 }, colorScheme });
  // Signed in on the board first: the exercises write cards as the user.
  const board = await context.newPage();
  await board.goto(env.cluster.nodes[0].url);
  await signIn(board, env.cluster.admin);
  await board.close();
  const page = await context.newPage();
  page.problems = [];
  page.on('pageerror', (err) => page.problems.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    // With the request's URL: a failed fetch says only its status.
    if (msg.type() === 'error') page.problems.push(`console: ${msg.text()} (${msg.location()?.url ?? '?'})`);
  });
  await page.goto(url);
  await page.waitForSelector('#lab[data-ready="true"]');
  await page.waitForFunction(() => document.querySelectorAll('.lab-node').length === 3);
  return page;
}

const leaderShown = (page) => page.evaluate(() => document.getElementById('lab').dataset.leader || null);

async function createRetrying(url, task) {
  const key = crypto.randomUUID();
  return eventually(
    async () => {
      const res = await api.call(url, 'POST', '/api/tasks', { body: task, key });
      if (res.status === 201) return res.body;
      if (res.status === 503 || res.status === 504) return null;
      throw new Error(`create: ${res.status} ${JSON.stringify(res.body)}`);
    },
    { timeout: 30000, interval: 200, what: 'a create on the majority' },
  );
}

test('the lab page passes axe and shows every node, link and log from the nodes', async () => {
  const page = await openLab(env.browser, env.cluster.labUrl);
  try {
    await eventually(() => leaderShown(page), { timeout: 20000, what: 'a leader on the lab page' });
    await page.waitForFunction(() => document.querySelectorAll('#lab-links tr').length === 6);
    await page.waitForFunction(() => [...document.querySelectorAll('.log-strip')].every((s) => s.dataset.tail));
    const violations = await axeViolations(page);
    assert.deepEqual(violations, [], `axe: ${JSON.stringify(violations, null, 2)}`);
    const dark = await openLab(env.browser, env.cluster.labUrl, 'dark');
    await dark.waitForFunction(() => [...document.querySelectorAll('.log-strip')].every((s) => s.dataset.tail));
    assert.deepEqual(await axeViolations(dark), [], 'axe, dark theme');
    await dark.context().close();
    assert.deepEqual(page.problems, []);
  } finally {
    await page.context().close();
  }
});

test('isolate the leader from the page: a new leader, cards on the majority, heal and rejoin', async () => {
  const page = await openLab(env.browser, env.cluster.labUrl);
  try {
    const old = Number(await eventually(() => leaderShown(page), { timeout: 20000, what: 'a leader' }));
    const others = env.cluster.nodes.filter((n) => n.id !== old);
    const board = await openBoard(env.browser, others[0].url);
    await page.click(`.lab-node[data-node="${old}"] button[data-action="isolate"]`);
    await page.waitForSelector(`.lab-node[data-node="${old}"][data-cut-off="true"]`);
    const next = Number(
      await eventually(
        async () => {
          const l = await leaderShown(page);
          return l && Number(l) !== old ? l : null;
        },
        { timeout: 30000, what: 'a new leader shown' },
      ),
    );
    assert.notEqual(next, old);
    assert.match(await page.textContent(`.lab-node[data-node="${old}"]`), /Cut off/);
    const created = [];
    for (let i = 0; i < 3; i++) created.push(await createRetrying(others[i % 2].url, { title: `written on the majority ${i}` }));
    for (const task of created) await card(board, task.id).waitFor({ timeout: 15000 });
    await board.context().close();

    await page.click('#heal');
    await page.waitForSelector(`.lab-node[data-node="${old}"][data-cut-off="false"][data-role="follower"]`, { timeout: 60000 });
    // Same log tail as the leader's, entry for entry (index:term).
    await eventually(
      async () => {
        const tails = await page.evaluate(() =>
          Object.fromEntries([...document.querySelectorAll('.log-row')].map((r) => [r.dataset.node, r.querySelector('.log-strip').dataset.tail])),
        );
        const leader = await leaderShown(page);
        return leader && tails[old] && tails[old] === tails[leader];
      },
      { timeout: 30000, what: 'the rejoined node has the leader\'s log tail' },
    );
    // Its log tail matches, but until it has heard from the leader in this
    // term it answers reads 503 `no_leader` (retryable): wait for that.
    await eventually(
      async () => (await api.call(env.cluster.url(old), 'GET', '/api/cluster')).body?.leader_id != null,
      { timeout: 15000, what: 'the rejoined node knows the leader' },
    );
    for (const task of created) {
      const res = await api.call(env.cluster.url(old), 'GET', `/api/tasks/${task.id}`);
      const view = await api.call(env.cluster.url(old), 'GET', '/api/cluster');
      assert.equal(res.status, 200, `the rejoined node has the majority's cards: ${JSON.stringify(res.body)} ${JSON.stringify(view.body)}`);
    }
    assert.deepEqual(page.problems, []);
  } finally {
    await page.context().close();
  }
});

test('kill and restart a node from the page', async () => {
  const page = await openLab(env.browser, env.cluster.labUrl);
  try {
    const leader = Number(await eventually(() => leaderShown(page), { timeout: 20000, what: 'a leader' }));
    const victim = env.cluster.nodes.find((n) => n.id !== leader).id;
    await page.click(`.lab-node[data-node="${victim}"] button[data-action="kill"]`);
    await page.waitForSelector(`.lab-node[data-node="${victim}"][data-state="killed"]`);
    // Its log strip empties: a killed node has no log to read.
    await page.waitForSelector(`.log-row[data-node="${victim}"] .log-strip[data-tail=""]`, { state: 'attached' });
    await page.click(`.lab-node[data-node="${victim}"] button[data-action="restart"]`);
    await page.waitForSelector(`.lab-node[data-node="${victim}"][data-state="running"][data-role="follower"]`, { timeout: 60000 });
    const timeline = await page.textContent('#lab-events');
    assert.match(timeline, new RegExp(`node ${victim} killed`));
    assert.match(timeline, new RegExp(`node ${victim} restarted`));
    assert.deepEqual(page.problems, []);
  } finally {
    await page.context().close();
  }
});

/**
 * Every card in `ids` is on each node of `urls` exactly once, and no other
 * card titled with `tag` is (read through each node, retried while it
 * catches up).
 */
async function everyCardOnce(urls, tag, ids) {
  for (const url of urls) {
    await eventually(
      async () => {
        const { tasks } = await api.list(url).catch(() => ({ tasks: null }));
        if (!tasks) return false;
        const mine = tasks.filter((t) => t.title.startsWith(tag)).map((t) => t.id);
        return mine.length === ids.length && ids.every((id) => mine.filter((m) => m === id).length === 1);
      },
      { timeout: 30000, interval: 500, what: `each of the ${ids.length} "${tag}" cards once on ${url}` },
    );
  }
}

/** The keyboard focus's control on the lab page (its data-key), after `n` more redraws. */
async function focusAfterRedraws(page, n) {
  const at = Number(await page.getAttribute('#lab', 'data-renders'));
  await page.waitForFunction((want) => Number(document.getElementById('lab').dataset.renders) >= want, at + n);
  return page.evaluate(() => document.activeElement?.dataset?.key ?? document.activeElement?.id ?? null);
}

test('add a node from the page, cut its links, isolate it, and remove it again, from the keyboard', async () => {
  const page = await openLab(env.browser, env.cluster.labUrl);
  try {
    await eventually(() => leaderShown(page), { timeout: 20000, what: 'a leader' });
    const tag = `membership ${Date.now().toString(36)}`;
    const written = [];
    for (let i = 0; i < 3; i++) written.push((await createRetrying(env.cluster.nodes[i].url, { title: `${tag} before ${i}` })).id);
    // Add: the button, from the keyboard.
    await page.focus('#add-node');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.querySelectorAll('.lab-node').length === 4, null, { timeout: 30000 });
    const id = Number(await page.evaluate(() => Math.max(...[...document.querySelectorAll('.lab-node')].map((n) => Number(n.dataset.node)))));
    assert.equal(id, 4);
    // Its links and its log strip appear; it joins as a learner and becomes a voter.
    await page.waitForFunction(() => document.querySelectorAll('#lab-links tr').length === 12);
    await page.waitForFunction(() => document.querySelectorAll('.log-row').length === 4);
    await page.waitForSelector(`.lab-node[data-node="${id}"][data-member="voter"][data-role="follower"]`, { timeout: 120000 });
    assert.match(await page.textContent('#lab-summary'), /4 nodes: 4 voters/);
    const leader = Number(await eventually(() => leaderShown(page), { timeout: 20000, what: 'a leader' }));
    // Replicated: the same log tail as the leader's, entry for entry.
    await eventually(
      async () => {
        const tails = await page.evaluate(() =>
          Object.fromEntries([...document.querySelectorAll('.log-row')].map((r) => [r.dataset.node, r.querySelector('.log-strip').dataset.tail])),
        );
        return tails[id] && tails[id] === tails[leader];
      },
      { timeout: 30000, what: 'the new node has the leader\'s log tail' },
    );
    // And the same commit index, as the page shows it.
    await eventually(
      async () => {
        const commits = await page.evaluate(() =>
          Object.fromEntries([...document.querySelectorAll('.lab-node')].map((n) => [n.dataset.node, n.dataset.commit])),
        );
        return commits[id] !== '' && commits[id] === commits[leader];
      },
      { timeout: 30000, what: 'the new node shows the leader\'s commit index' },
    );
    // Four nodes on the page, still no accessibility violations.
    assert.deepEqual(await axeViolations(page), [], 'axe, with a fourth node');
    // It serves the cards written before it came, once each.
    const labState = async () => (await fetch(`${env.cluster.labUrl}/state`)).json();
    const newUrl = (await labState()).nodes.find((n) => n.id === id).url;
    await everyCardOnce([newUrl], tag, written);
    // Its link to the leader (to node 1, if it leads) carries messages, and
    // is cut and healed like any other.
    const peer = leader === id ? 1 : leader;
    const row = (from, to) => `#lab-links tr[data-link="${from}-${to}"]`;
    await eventually(async () => Number(await page.textContent(`${row(peer, id)} td:nth-of-type(2)`)) > 0, { timeout: 20000, what: 'messages to the new node' });
    await page.click(`${row(peer, id)} button[data-key="link-${peer}-${id}-both"]`);
    await page.waitForSelector(`${row(peer, id)}[data-state="cut"]`);
    await page.waitForSelector(`${row(id, peer)}[data-state="cut"]`);
    await page.click(`${row(peer, id)} button[data-key="link-${peer}-${id}-both"]`);
    await page.waitForSelector(`${row(peer, id)}[data-state="ok"]`);
    await page.waitForSelector(`${row(id, peer)}[data-state="ok"]`);
    // Isolate works on it: cut off, and the others still take writes.
    await page.click(`.lab-node[data-node="${id}"] button[data-action="isolate"]`);
    await page.waitForSelector(`.lab-node[data-node="${id}"][data-cut-off="true"]`);
    assert.equal(await page.locator(`#lab-links tr[data-state="cut"]`).count(), 6);
    written.push((await createRetrying(env.cluster.nodes[0].url, { title: `${tag} while node 4 is cut off` })).id);
    await page.click('#heal');
    await page.waitForSelector(`.lab-node[data-node="${id}"][data-cut-off="false"][data-role="follower"]`, { timeout: 60000 });

    // Remove, from the keyboard: the focus stays on the button across redraws.
    await page.focus(`.lab-node[data-node="${id}"] button[data-action="remove"]`);
    assert.equal(await focusAfterRedraws(page, 3), `node-${id}-remove`, 'the focus survives the page\'s redraws');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.querySelectorAll('.lab-node').length === 3, null, { timeout: 60000 });
    await page.waitForFunction(() => document.querySelectorAll('#lab-links tr').length === 6);
    await page.waitForFunction(() => document.querySelectorAll('.log-row').length === 3);
    await page.waitForFunction(() => /removed from the cluster and stopped/.test(document.getElementById('lab-message').textContent));
    await page.waitForFunction(() => document.getElementById('lab').dataset.voters === '3');
    // Back to three voters, and the cluster still takes writes.
    const after = await createRetrying(env.cluster.nodes[0].url, { title: `${tag} after node 4 left` });
    written.push(after.id);
    for (const node of env.cluster.nodes) {
      await eventually(async () => (await api.call(node.url, 'GET', `/api/tasks/${after.id}`)).status === 200, { timeout: 20000, what: `the card on node ${node.id}` });
      const view = await api.call(node.url, 'GET', '/api/cluster');
      assert.deepEqual(view.body.members.map((m) => [m.id, m.role]), [[1, 'voter'], [2, 'voter'], [3, 'voter']]);
    }
    // Every card written during the exercise is on each remaining node, once.
    await everyCardOnce(env.cluster.nodes.map((n) => n.url), tag, written);
    for (const line of [`node ${id} added`, `node ${id} is now a voter`, `node ${id} left the membership`, `node ${id} removed from the cluster and stopped`]) {
      await page.waitForFunction((text) => document.getElementById('lab-events').textContent.includes(text), line);
    }
    assert.deepEqual(page.problems, []);
  } finally {
    await page.context().close();
  }
});

test('the guided tour "kill the leader" completes and its own check passes', async () => {
  const page = await openLab(env.browser, env.cluster.labUrl);
  try {
    await eventually(() => leaderShown(page), { timeout: 20000, what: 'a leader' });
    await page.click('button[data-tour="kill-leader"]');
    await page.waitForSelector('#tour-result[data-result="pass"], #tour-result[data-result="fail"]', { timeout: 180000 });
    const result = await page.textContent('#tour-result');
    assert.equal(await page.getAttribute('#tour-result', 'data-result'), 'pass', result);
    assert.match(result, /all 6 cards .* on all 3 nodes, each once/);
    await page.screenshot({ path: join(ARTIFACTS, 'lab.png'), fullPage: true });
    assert.deepEqual(page.problems, []);
  } finally {
    await page.context().close();
  }
});

test('the Cluster page charts what the nodes report and passes axe', async () => {
  const url = env.cluster.nodes[0].url;
  const page = await openBoard(env.browser, url);
  await page.context().close();
  const context = await env.browser.newContext({ viewport: { width: 1440, height: 1000 } });
  const charts = await context.newPage();
  // Not signed in, the page says where to sign in.
  await charts.goto(`${url}/cluster`);
  await charts.waitForFunction(() => /Sign in on the board/.test(document.getElementById('charts-summary').textContent));
  await charts.goto(url);
  await signIn(charts, env.cluster.admin);
  const problems = [];
  charts.on('pageerror', (err) => problems.push(err.message));
  try {
    await charts.goto(`${url}/cluster`);
    // Traffic while it samples, so the rates and latencies have points.
    const writer = (async () => {
      for (let i = 0; i < 20; i++) {
        await api.create(env.cluster.nodes[i % 3].url, { title: `charted ${i}` });
        await api.list(env.cluster.nodes[(i + 1) % 3].url);
        await new Promise((r) => setTimeout(r, 150));
      }
    })();
    await charts.waitForFunction(() => Number(document.getElementById('charts').dataset.samples) >= 3, null, { timeout: 30000 });
    await writer;
    await charts.waitForFunction(() => document.querySelectorAll('#chart-commit path.chart-line').length === 3, null, { timeout: 20000 });
    await charts.waitForFunction(() => document.querySelector('#chart-writes path.chart-line'), null, { timeout: 20000 });
    assert.equal(await charts.locator('#charts-now tr').count(), 3);
    assert.match(await charts.getAttribute('#chart-write-latency', 'aria-label'), /p99/);
    const violations = await axeViolations(charts);
    assert.deepEqual(violations, [], `axe: ${JSON.stringify(violations, null, 2)}`);
    await charts.screenshot({ path: join(ARTIFACTS, 'cluster.png'), fullPage: true });
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});
