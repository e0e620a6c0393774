// Write-to-screen latency across nodes: a page on node B, N writes on node A
// (one at a time, sent by fetch from the page itself so that one clock times
// both ends), each timed from the start of the request to the moment its card
// is in page B's DOM (the event came over B's live feed and was drawn).
//
//   TASKRAFT_BIN=... node latency.mjs                 # starts its own cluster
//   node latency.mjs --urls http://127.0.0.1:8080,http://127.0.0.1:8081
//   node latency.mjs --writes 200
import { parseArgs } from 'node:util';
import { launch, openBoard } from './lib/browser.mjs';
import { startCluster } from './lib/cluster.mjs';

const { values } = parseArgs({
  options: {
    urls: { type: 'string' },
    writes: { type: 'string', default: '200' },
  },
});
const writes = Number(values.writes);

let cluster = null;
let urlA;
let urlB;
if (values.urls) {
  [urlA, urlB] = values.urls.split(',').map((u) => u.replace(/\/$/, ''));
} else {
  cluster = await startCluster();
  [urlA, urlB] = cluster.nodes.map((n) => n.url);
}

const browser = await launch();
try {
  const page = await openBoard(browser, urlB);
  const result = await page.evaluate(
    async ({ urlA, writes }) => {
      const board = document.getElementById('board');
      const seen = (id) =>
        new Promise((resolve) => {
          const selector = `.card[data-task-id="${id}"]`;
          if (board.querySelector(selector)) {
            resolve(performance.now());
            return;
          }
          const observer = new MutationObserver(() => {
            if (board.querySelector(selector)) {
              observer.disconnect();
              resolve(performance.now());
            }
          });
          observer.observe(board, { childList: true, subtree: true });
        });
      const toScreen = [];
      const toResponse = [];
      for (let i = 0; i < writes; i++) {
        const id = crypto.randomUUID();
        const appeared = seen(id);
        const t0 = performance.now();
        const res = await fetch(`${urlA}/api/tasks`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': crypto.randomUUID() },
          body: JSON.stringify({ id, title: `latency #${i}`, labels: ['latency'] }),
        });
        const t1 = performance.now();
        if (res.status !== 201) throw new Error(`write ${i}: ${res.status} ${await res.text()}`);
        const t2 = await appeared;
        toResponse.push(t1 - t0);
        toScreen.push(t2 - t0);
      }
      return { toScreen, toResponse };
    },
    { urlA, writes },
  );
  const stats = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    const q = (p) => s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
    return {
      p50: q(50).toFixed(1),
      p90: q(90).toFixed(1),
      p99: q(99).toFixed(1),
      max: s.at(-1).toFixed(1),
      mean: (s.reduce((a, b) => a + b, 0) / s.length).toFixed(1),
    };
  };
  const screen = stats(result.toScreen);
  const response = stats(result.toResponse);
  console.log(`${writes} writes on ${urlA}, page on ${urlB}`);
  console.log(`write start → card on page B: p50 ${screen.p50} ms  p90 ${screen.p90} ms  p99 ${screen.p99} ms  max ${screen.max} ms  mean ${screen.mean} ms`);
  console.log(`write start → 201 from node A: p50 ${response.p50} ms  p90 ${response.p90} ms  p99 ${response.p99} ms  max ${response.max} ms  mean ${response.mean} ms`);
  if (page.problems.length) console.log('page problems:', page.problems);
} finally {
  await browser.close();
  await cluster?.stop();
}
