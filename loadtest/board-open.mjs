// loadtest/board-open (this is its body; the command is the shell script
// beside it): how long a board takes to open in a real Chromium.
//
// Each run opens a fresh page on /b/{BOARD} and times, from the start of
// the navigation (the page's performance.now() origin, i.e. Navigation
// Timing's startTime):
//
//   first_card  the first card of the board drawn and visible (the first
//               animation frame after a `#board .card` with a size is in
//               the DOM: the frame that paints it);
//   columns     every column's first page drawn (each column shows
//               min(50, its count) cards; an empty column counts as drawn).
//
// The board's opening is one GET of its record, then one page per column
// together (static/js/boards.js), so the two are usually a frame apart.
//
// Two modes, RUNS runs each (MODES, default "cold warm"):
//   cold  a fresh browser context per run: empty HTTP cache, nothing in
//         memory; the page, its scripts, the board all fetched again;
//   warm  one context for all runs (primed by one untimed run), a new page
//         per run. The node serves its files `Cache-Control: no-cache`
//         with no ETag, so they are fetched again here too: warm keeps the
//         connections, the browser's process and V8's code cache, not the
//         bytes (the API's answers are never cached).
// Either way the sign-in is done beforehand (one POST /api/session, its
// cookie given to every context) and is not timed.
//
// Input (environment):
//   BOARD       the board's id (required unless BOARDS_JSON)
//   BOARDS_JSON a file from `loadtest seed --boards-out` (search-bench
//               BOARDS= writes it as $OUT/boards.json): its first board,
//               the big one, is used
//   URL         node URL(s), comma-separated (default http://127.0.0.1:18480);
//               run i opens the page on URL number i mod their count
//   DEMO_DIR    a `taskraft demo` directory: the password is read from its
//               admin-password (the demo's login is user `admin`)
//   USERNAME    default admin; PASSWORD overrides DEMO_DIR
//   RUNS        runs per mode (default 20)
//   RUN_TIMEOUT_MS  one run's bound (default 30000): a run past it counts
//               as an error
//   DEADLINE_S  the whole benchmark's bound (default 600): runs not started
//               by then are skipped (reported)
//   CHROMIUM_PATH  default /usr/bin/chromium
//   JSON_OUT    also write the JSON here
//
//   BOARD=<id> URL=http://127.0.0.1:18480 DEMO_DIR=<dir> loadtest/board-open
//
// Prints one JSON object (per mode: p50/p90/max in ms, runs, errors) and a
// markdown line per mode. Needs tests/browser's node_modules (playwright-core):
// `cd tests/browser && npm ci` once. Not a test: it judges nothing.
import { createRequire } from 'node:module';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..');
const env = process.env;

function fail(message) {
  console.error(`board-open: ${message}`);
  process.exit(2);
}

const browserDir = join(REPO, 'tests/browser');
if (!existsSync(join(browserDir, 'node_modules/playwright-core'))) {
  fail(`no playwright-core in ${browserDir}/node_modules: run \`npm ci\` there first`);
}
const { chromium } = createRequire(join(browserDir, 'package.json'))('playwright-core');

let board = env.BOARD;
if (!board && env.BOARDS_JSON) board = JSON.parse(readFileSync(env.BOARDS_JSON, 'utf8'))[0]?.id;
if (!board) fail('BOARD=<board id> (or BOARDS_JSON=<loadtest seed --boards-out file>) is required');
const urls = (env.URL ?? 'http://127.0.0.1:18480').split(',').map((u) => u.trim().replace(/\/$/, '')).filter(Boolean);
const username = env.USERNAME ?? 'admin';
let password = env.PASSWORD;
if (!password && env.DEMO_DIR) password = readFileSync(join(env.DEMO_DIR, 'admin-password'), 'utf8').trim();
if (!password) fail('PASSWORD=… or DEMO_DIR=<taskraft demo dir> (for its admin-password) is required');
const runs = Number(env.RUNS ?? 20);
const modes = (env.MODES ?? 'cold warm').split(/[ ,]+/).filter(Boolean);
const runTimeout = Number(env.RUN_TIMEOUT_MS ?? 30000);
const deadline = Date.now() + Number(env.DEADLINE_S ?? 600) * 1000;
for (const m of modes) if (!['cold', 'warm'].includes(m)) fail(`unknown mode ${m} (cold, warm)`);
if (!(runs >= 1)) fail('RUNS must be at least 1');

/**
 * In the page, before its scripts: watches #board for the first visible card
 * and for every column's first page, and notes performance.now() at the
 * animation frame that paints each.
 */
function watch() {
  const marks = {};
  window.__boardOpen = marks;
  const frame = (name) => {
    if (marks[name] != null || marks[`${name}_dom`] != null) return;
    marks[`${name}_dom`] = performance.now();
    requestAnimationFrame(() => {
      marks[name] = performance.now();
    });
  };
  const visible = (el) => {
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0;
  };
  const check = () => {
    const root = document.getElementById('board');
    if (!root) return;
    const first = root.querySelector('.card[data-task-id]');
    if (first && visible(first)) frame('first_card');
    const columns = [...root.querySelectorAll('.column[data-column-id]')];
    if (!columns.length) return;
    const drawn = columns.every((c) => {
      const total = parseInt(c.querySelector('.count')?.textContent ?? '', 10);
      const cards = c.querySelectorAll('.card[data-task-id]').length;
      return Number.isFinite(total) ? cards >= Math.min(50, total) : cards > 0;
    });
    if (drawn) {
      marks.columns_n = columns.length;
      marks.cards_n = root.querySelectorAll('.card[data-task-id]').length;
      frame('columns');
    }
  };
  new MutationObserver(check).observe(document, { childList: true, subtree: true, characterData: true });
}

function quantiles(values) {
  if (!values.length) return null;
  const s = [...values].sort((a, b) => a - b);
  const at = (q) => s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)];
  const r = (x) => Math.round(x * 10) / 10;
  return { p50: r(at(0.5)), p90: r(at(0.9)), max: r(s.at(-1)), n: s.length };
}

async function signIn(browser) {
  const context = await browser.newContext();
  const res = await context.request.post(`${urls[0]}/api/session`, {
    data: { username, password },
    headers: { 'content-type': 'application/json' },
    timeout: runTimeout,
  });
  if (!res.ok()) fail(`signing in as ${username} at ${urls[0]}: ${res.status()} ${await res.text()}`);
  const state = await context.storageState();
  await context.close();
  return state;
}

/** One timed open of the board in `context`; returns the marks or throws. */
async function openOnce(context, url) {
  const page = await context.newPage();
  try {
    await page.addInitScript(watch);
    const target = `${url}/b/${encodeURIComponent(board)}`;
    await page.goto(target, { waitUntil: 'commit', timeout: runTimeout });
    await page.waitForFunction(() => window.__boardOpen?.columns != null && window.__boardOpen?.first_card != null, null, {
      timeout: runTimeout,
      polling: 50,
    }).catch(async (err) => {
      // An empty board has no first card: the columns alone say it opened.
      const marks = await page.evaluate(() => window.__boardOpen).catch(() => null);
      if (marks?.columns != null && !marks.cards_n) return;
      const login = await page.locator('#login-dialog[open]').count().catch(() => 0);
      throw new Error(login ? 'the page asks to sign in (is the cookie for this host?)' : err.message.split('\n')[0]);
    });
    const shown = await page.evaluate(() => document.getElementById('app')?.dataset.board);
    if (shown !== board) throw new Error(`the page shows board ${shown}, not ${board} (not one of ${username}'s?)`);
    const marks = await page.evaluate(() => window.__boardOpen);
    const nav = await page.evaluate(() => {
      const n = performance.getEntriesByType('navigation')[0];
      return n ? { response_end: n.responseEnd, dom_content_loaded: n.domContentLoadedEventEnd } : null;
    });
    return { ...marks, ...nav };
  } finally {
    await page.close().catch(() => {});
  }
}

const browser = await chromium.launch({
  executablePath: env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
});
const report = { board, urls, username, runs_per_mode: runs, run_timeout_ms: runTimeout, modes: {} };
try {
  const storageState = await signIn(browser);
  const viewport = { width: 1440, height: 900 };
  for (const mode of modes) {
    const samples = [];
    const errors = [];
    let skipped = 0;
    let shared = null;
    if (mode === 'warm') {
      shared = await browser.newContext({ storageState, viewport });
      await openOnce(shared, urls[0]).catch((err) => errors.push(`priming: ${err.message}`));
    }
    for (let i = 0; i < runs; i++) {
      if (Date.now() > deadline) {
        skipped = runs - i;
        break;
      }
      const url = urls[i % urls.length];
      const context = shared ?? (await browser.newContext({ storageState, viewport }));
      try {
        samples.push({ url, ...(await openOnce(context, url)) });
      } catch (err) {
        errors.push(`run ${i + 1} (${url}): ${err.message}`);
      } finally {
        if (!shared) await context.close().catch(() => {});
      }
    }
    await shared?.close().catch(() => {});
    const pick = (k) => samples.map((s) => s[k]).filter((v) => Number.isFinite(v));
    report.modes[mode] = {
      what: mode === 'cold' ? 'a fresh browser context per run (empty cache)' : 'one context, primed once, a new page per run (HTTP cache warm)',
      ok: samples.length,
      errors: errors.length,
      skipped_by_deadline: skipped,
      first_card_ms: quantiles(pick('first_card')),
      columns_ms: quantiles(pick('columns')),
      response_end_ms: quantiles(pick('response_end')),
      dom_content_loaded_ms: quantiles(pick('dom_content_loaded')),
      columns: samples[0]?.columns_n ?? null,
      cards_drawn: samples[0]?.cards_n ?? null,
      error_samples: errors.slice(0, 5),
    };
  }
} finally {
  await browser.close().catch(() => {});
}

const text = JSON.stringify(report, null, 2);
console.log(text);
if (env.JSON_OUT) writeFileSync(env.JSON_OUT, `${text}\n`);
console.log('');
console.log('| board-open | runs ok/errors | first card p50 / p90 / max ms | all columns p50 / p90 / max ms | columns, cards drawn |');
console.log('|---|---:|---:|---:|---|');
const f = (q) => (q ? `${q.p50} / ${q.p90} / ${q.max}` : '–');
for (const [mode, m] of Object.entries(report.modes)) {
  console.log(`| ${mode} | ${m.ok}/${m.errors} | ${f(m.first_card_ms)} | ${f(m.columns_ms)} | ${m.columns ?? '–'}, ${m.cards_drawn ?? '–'} |`);
}
const failed = Object.values(report.modes).some((m) => m.ok === 0);
process.exit(failed ? 1 : 0);
