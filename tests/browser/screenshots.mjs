// Retakes the README's screenshots of the Cluster and Lab pages on a real
// `taskraft demo --lab` (3 nodes, a private MariaDB, Debian's Chromium):
//
//   cargo build --bin taskraft && (cd tests/browser && npm ci && node screenshots.mjs)
//
// docs/cluster.png: the Cluster page after SCREENSHOT_LOAD_SECONDS (default
// 240) of light load round the nodes (a card created every 300 ms, every
// 120 ms in the middle third, and the board listed every 200 ms), with
// leadership handed to another node half-way (through the lab), so its
// charts have minutes of history: a busier stretch, and a new term.
// docs/lab.png: the Lab page with a fourth node added from the page, the
// link between it and the leader cut, and cards written meanwhile, so its
// log strip falls behind the others'.
// Not a test: it asserts nothing beyond what it waits for.
import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as api from './lib/api.mjs';
import { signIn } from './lib/browser.mjs';
import { ARTIFACTS, REPO, eventually, setUp, tearDown } from './lib/harness.mjs';

const LOAD_SECONDS = Number(process.env.SCREENSHOT_LOAD_SECONDS ?? 240);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function shoot(page, name) {
  const path = join(ARTIFACTS, name);
  await page.screenshot({ path, fullPage: true });
  await copyFile(path, join(REPO, 'docs', name));
  console.log(`docs/${name}`);
}

async function writeCards(nodes, count, prefix) {
  for (let i = 0; i < count; i++) {
    const node = nodes[i % nodes.length];
    await eventually(
      async () => (await api.call(node.url, 'POST', '/api/tasks', { body: { title: `${prefix} ${i + 1}`, labels: ['lab'] } })).status === 201,
      { timeout: 30000, interval: 200, what: 'a card written' },
    );
  }
}

const env = await setUp({ lab: true });
try {
  const nodes = env.cluster.nodes;
  const context = await env.browser.newContext({ viewport: { width: 1440, height: 1000 } });

  // The Cluster page (signed in on the board: accounts are on), sampling
  // while a light load runs.
  const charts = await context.newPage();
  await charts.goto(nodes[0].url);
  if (env.cluster.admin) await signIn(charts, env.cluster.admin);
  await charts.goto(`${nodes[0].url}/cluster`);
  const start = Date.now();
  const until = start + LOAD_SECONDS * 1000;
  let n = 0;
  const writes = (async () => {
    while (Date.now() < until) {
      n += 1;
      await api.call(nodes[n % nodes.length].url, 'POST', '/api/tasks', { body: { title: `charted ${n}` } }).catch(() => {});
      const third = Math.floor((3 * (Date.now() - start)) / (until - start));
      await sleep(third === 1 ? 120 : 300);
    }
  })();
  const handover = (async () => {
    await sleep((LOAD_SECONDS * 1000) / 2);
    const state = await (await fetch(`${env.cluster.labUrl}/state`)).json();
    const next = state.nodes.find((node) => node.role === 'follower');
    if (next) await fetch(`${env.cluster.labUrl}/leader`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ to: next.id }) });
  })();
  const reads = (async () => {
    let i = 0;
    while (Date.now() < until) {
      i += 1;
      await api.list(nodes[i % nodes.length].url).catch(() => {});
      await sleep(200);
    }
  })();
  await Promise.all([writes, reads, handover]);
  await charts.waitForFunction(() => Number(document.getElementById('charts').dataset.samples) >= 20, null, { timeout: 60000 });
  await shoot(charts, 'cluster.png');

  // The Lab page: add a node, let it become a voter, cut its link to the leader.
  const lab = await context.newPage();
  await lab.goto(env.cluster.labUrl);
  await lab.waitForSelector('#lab[data-ready="true"]');
  await lab.click('#add-node');
  await lab.waitForSelector('.lab-node[data-node="4"][data-member="voter"]', { timeout: 120000 });
  await writeCards(nodes, 6, 'lab card');
  const leader = Number(await eventually(() => lab.evaluate(() => document.getElementById('lab').dataset.leader || null), { timeout: 20000, what: 'a leader' }));
  const peer = leader === 4 ? 1 : leader;
  await lab.click(`#lab-links tr[data-link="${peer}-4"] button[data-key="link-${peer}-4-both"]`);
  await lab.waitForSelector(`#lab-links tr[data-link="${peer}-4"][data-state="cut"]`);
  await writeCards(nodes, 8, 'written while a link is cut');
  // A few redraws of the logs, so the strips show what the nodes have now.
  const at = Number(await lab.getAttribute('#lab', 'data-renders'));
  await lab.waitForFunction((want) => Number(document.getElementById('lab').dataset.renders) >= want, at + 6);
  await sleep(1500);
  await shoot(lab, 'lab.png');
  await context.close();
} finally {
  await tearDown(env);
}
