// The Cluster page: writes/s, reads/s, latency, commit and applied index
// per node, term and leader over the last minutes — each read from the
// nodes themselves (`/api/cluster` and `/metrics` of every member, every
// 2 s). A node that does not answer leaves a gap, not a guess.

import { drawLines, legend, parseMetrics, quantile } from './charts.js';

const EVERY_MS = 2000;
const WINDOW_MS = 5 * 60 * 1000;
const TIMEOUT_MS = 1500;
const WRITE_METHODS = new Set(['POST', 'PATCH', 'DELETE']);

/** url → {id, url} of every member seen. */
const members = new Map();
/** id → [{t, view}] */
const views = new Map();
/** url → the last histogram snapshot {t, writes, reads} */
const lastScrape = new Map();
const series = { writes: [], reads: [], wp50: [], wp99: [], rp50: [], rp99: [] };
const leaders = [];
let samples = 0;

async function fetchJson(url) {
  const response = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS), cache: 'no-store', credentials: 'include' });
  if (!response.ok && response.status !== 503) throw new Error(`${response.status}`);
  return response.json();
}

async function fetchText(url) {
  const response = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS), cache: 'no-store', credentials: 'include' });
  if (!response.ok) throw new Error(`${response.status}`);
  return response.text();
}

/** Request counts and latency buckets of task reads and writes. */
function requestHistograms(samples) {
  const out = { writes: { count: 0, buckets: new Map() }, reads: { count: 0, buckets: new Map() } };
  for (const s of samples) {
    if (!s.name.startsWith('taskraft_http_request_duration_seconds')) continue;
    const route = s.labels.route ?? '';
    if (!route.startsWith('/api/tasks')) continue;
    const kind = WRITE_METHODS.has(s.labels.method) ? 'writes' : s.labels.method === 'GET' ? 'reads' : null;
    if (!kind) continue;
    if (s.name.endsWith('_count')) out[kind].count += s.value;
    if (s.name.endsWith('_bucket')) {
      const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le);
      out[kind].buckets.set(le, (out[kind].buckets.get(le) ?? 0) + s.value);
    }
  }
  return out;
}

function delta(now, before) {
  if (!before || now.count < before.count) return null; // first look, or a restart
  const buckets = [...now.buckets].map(([le, c]) => [le, c - (before.buckets.get(le) ?? 0)]);
  return { count: now.count - before.count, buckets };
}

async function poll() {
  const t = Date.now();
  const urls = [...members.keys()];
  const results = await Promise.all(
    urls.map(async (url) => {
      const [view, text] = await Promise.all([
        fetchJson(`${url}/api/cluster`).catch(() => null),
        fetchText(`${url}/metrics`).catch(() => null),
      ]);
      return { url, view, text };
    }),
  );
  let writes = 0;
  let reads = 0;
  let seconds = 0;
  let wb = new Map();
  let rb = new Map();
  let anyRate = false;
  for (const { url, view, text } of results) {
    if (view && Number.isInteger(view.node_id)) {
      members.get(url).id = view.node_id;
      if (!views.has(view.node_id)) views.set(view.node_id, []);
      views.get(view.node_id).push({ t, view });
      for (const m of view.members ?? []) if (m.url && !members.has(m.url)) members.set(m.url, { id: m.id, url: m.url });
      if (view.lab_url) {
        const link = document.getElementById('lab-link');
        link.href = view.lab_url;
        link.hidden = false;
      }
    }
    if (!text) continue;
    const now = requestHistograms(parseMetrics(text));
    const before = lastScrape.get(url);
    lastScrape.set(url, { t, ...now });
    const dw = delta(now.writes, before?.writes);
    const dr = delta(now.reads, before?.reads);
    if (!dw || !dr) continue;
    anyRate = true;
    seconds = Math.max(seconds, (t - before.t) / 1000);
    writes += dw.count;
    reads += dr.count;
    for (const [le, c] of dw.buckets) wb.set(le, (wb.get(le) ?? 0) + c);
    for (const [le, c] of dr.buckets) rb.set(le, (rb.get(le) ?? 0) + c);
  }
  if (anyRate && seconds > 0) {
    series.writes.push([t, writes / seconds]);
    series.reads.push([t, reads / seconds]);
    series.wp50.push([t, quantile(0.5, [...wb])]);
    series.wp99.push([t, quantile(0.99, [...wb])]);
    series.rp50.push([t, quantile(0.5, [...rb])]);
    series.rp99.push([t, quantile(0.99, [...rb])]);
  }
  const newest = results.map((r) => r.view).filter(Boolean).sort((a, b) => b.term - a.term)[0];
  const leader = newest?.leader_id ?? null;
  if (!leaders.length || leaders.at(-1).leader !== leader || leaders.at(-1).term !== newest?.term) {
    leaders.push({ t, leader, term: newest?.term ?? null });
  }
  for (const list of [...Object.values(series), leaders, ...views.values()]) {
    while (list.length && (list[0].t ?? list[0][0]) < t - WINDOW_MS) list.shift();
  }
  samples += 1;
  render(t, results);
}

function nodeSeries(field) {
  return [...views.keys()].sort((a, b) => a - b).map((id) => ({
    name: `node ${id}`,
    cls: `node-${((id - 1) % 8) + 1}`,
    points: views.get(id).map(({ t, view }) => [t, view[field]]),
  }));
}

function chart(id, list, options) {
  drawLines(document.getElementById(`chart-${id}`), list, { windowMs: WINDOW_MS, ...options });
  legend(document.getElementById(`legend-${id}`), list);
}

function render(t, results) {
  chart('writes', [{ name: 'writes/s', cls: 'series-1', points: series.writes }], { now: t });
  chart('reads', [{ name: 'reads/s', cls: 'series-2', points: series.reads }], { now: t });
  chart('write-latency', [
    { name: 'p50', cls: 'series-1', points: series.wp50 },
    { name: 'p99', cls: 'series-3', points: series.wp99 },
  ], { now: t, unit: 's' });
  chart('read-latency', [
    { name: 'p50', cls: 'series-2', points: series.rp50 },
    { name: 'p99', cls: 'series-3', points: series.rp99 },
  ], { now: t, unit: 's' });
  chart('commit', nodeSeries('commit_index'), { now: t });
  chart('applied', nodeSeries('applied_index'), { now: t });
  chart('term', nodeSeries('term'), { now: t, step: true });

  const history = document.getElementById('leader-history');
  history.replaceChildren(
    ...leaders.slice(-12).reverse().map(({ t: at, leader, term }) => {
      const li = document.createElement('li');
      const time = new Date(at).toLocaleTimeString();
      li.textContent = leader ? `${time}: node ${leader} leads, term ${term}` : `${time}: no leader (term ${term ?? '?'})`;
      return li;
    }),
  );

  const body = document.getElementById('charts-now');
  body.replaceChildren(
    ...results
      .map(({ url, view }) => ({ url, view, id: members.get(url)?.id }))
      .sort((a, b) => (a.id ?? 99) - (b.id ?? 99))
      .map(({ url, view, id }) => {
        const tr = document.createElement('tr');
        tr.dataset.node = String(id ?? '');
        const cells = view
          ? [`node ${view.node_id}`, view.role, view.term, view.commit_index, view.applied_index, view.commit_index - view.applied_index, 'yes']
          : [`node ${id ?? '?'}`, '–', '–', '–', '–', '–', 'no'];
        cells.forEach((text, i) => {
          const cell = document.createElement(i === 0 ? 'th' : 'td');
          if (i === 0) cell.scope = 'row';
          if (i >= 2 && i <= 5) cell.className = 'num';
          cell.textContent = String(text);
          if (i === 0) cell.title = url;
          tr.append(cell);
        });
        return tr;
      }),
  );
  const main = document.getElementById('charts');
  main.dataset.samples = String(samples);
  const last = leaders.at(-1);
  const w = series.writes.at(-1)?.[1];
  document.getElementById('charts-summary').textContent =
    (last?.leader ? `Node ${last.leader} leads in term ${last.term}.` : 'No leader known.') +
    (w !== undefined ? ` ${w.toFixed(1)} writes/s, ${series.reads.at(-1)[1].toFixed(1)} reads/s.` : '');
}

async function start() {
  members.set(location.origin, { id: null, url: location.origin });
  await poll();
  setInterval(poll, EVERY_MS);
}

start();
