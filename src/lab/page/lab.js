// The lab page of `taskraft demo --lab`. Everything it shows comes from the
// nodes (their /api/cluster and /api/cluster/log, gathered by the lab's
// /lab/state and /lab/nodes/{id}/log) and from the supervisor (process and
// link state, messages per link, the timeline). Nodes come and go
// (POST /lab/nodes, DELETE /lab/nodes/{id}): the cards, links and log
// strips follow /lab/state. The page is redrawn several times a second,
// and keeps the keyboard focus on the same control across redraws. The
// guided tour acts through the same API and writes real cards to the real
// nodes, then checks, node by node, that each card it wrote is there once.

const STATE_EVERY_MS = 400;
const LOGS_EVERY_MS = 1000;
const TERM_COLOURS = 6;

let state = { nodes: [], links: [], events: [] };
/** id → the node's last /api/cluster/log answer */
const logs = new Map();
/** "from-to" → [t, messages] of the previous state, for rates. */
const lastCounts = new Map();
const rates = new Map();
let busy = false;
/** Set while this page adds or removes a node (one at a time). */
let changing = null;
/** Nodes this page is removing: their logs are no longer asked for (the
 * lab forgets a node once it has stopped it, and answers 404). */
const leaving = new Set();

const $ = (id) => document.getElementById(id);

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k.startsWith('data-') || k.startsWith('aria-') || k === 'role' || k === 'type' || k === 'title' || k === 'scope') node.setAttribute(k, v === true ? '' : String(v));
    else node[k] = v;
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: body ? { 'Content-Type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
    cache: 'no-store',
  });
  const json = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(json?.error?.message ?? `${response.status}`);
  return json;
}

function say(text) {
  $('lab-message').textContent = text;
}

async function act(label, method, path, body) {
  try {
    await api(method, path, body);
    say(label);
    await refreshState();
    // The strips follow at once (a killed node's empties, a restarted
    // node's comes back once it answers), not at the next tick.
    await refreshLogs();
  } catch (e) {
    say(`${label}: refused (${e.message})`);
  }
}

/**
 * Redraws `box` with `render()`, keeping the keyboard focus on the control
 * with the same `data-key` (or, if that one is now disabled or gone, on
 * the nearest enabled control of the same card or row, else `fallback`).
 */
function keepingFocus(box, render, fallback) {
  const active = document.activeElement;
  const key = box.contains(active) ? active?.dataset?.key : null;
  const group = key ? active.closest('[data-group]')?.dataset.group : null;
  render();
  if (!key) return;
  let target = box.querySelector(`[data-key="${CSS.escape(key)}"]`);
  if (!target || target.disabled) {
    const same = group ? box.querySelector(`[data-group="${CSS.escape(group)}"]`) : null;
    target = same ? [...same.querySelectorAll('button')].find((b) => !b.disabled) : null;
  }
  (target ?? fallback)?.focus();
}

/** Whether every link to and from node `id` is cut. */
function cutOff(id) {
  const mine = state.links.filter((l) => l.from === id || l.to === id);
  return mine.length > 0 && mine.every((l) => l.state === 'cut');
}

function leaderOf(nodes = state.nodes) {
  // The leader of the newest term any answering node knows.
  const answering = nodes.filter((n) => n.answering && n.state === 'running');
  const newest = Math.max(0, ...answering.map((n) => n.term ?? 0));
  const leader = answering.find((n) => n.role === 'leader' && n.term === newest && !cutOff(n.id));
  return leader ?? null;
}

function roleText(node) {
  if (node.state === 'killed') return 'killed';
  if (node.state === 'paused') return 'paused';
  if (!node.answering) return 'not answering';
  return (node.role ?? '?').replace('_', '-');
}

function memberText(node) {
  if (node.member) return node.member;
  return node.state === 'running' ? 'not yet (joining)' : '–';
}

function renderNodes() {
  const box = $('lab-nodes');
  const render = () => box.replaceChildren(
    ...state.nodes.map((n) => {
      const isolated = cutOff(n.id);
      const role = roleText(n);
      const card = h('section', {
        class: `lab-node is-${n.state === 'running' && n.answering ? n.role : n.state}${isolated ? ' cut-off' : ''}`,
        'data-node': n.id,
        'data-group': `node-${n.id}`,
        'data-role': n.answering && n.state === 'running' ? n.role : n.state,
        'data-state': n.state,
        'data-member': n.member ?? '',
        'data-commit': n.commit_index ?? '',
        'data-cut-off': isolated ? 'true' : 'false',
        'aria-labelledby': `node-${n.id}-title`,
      });
      const title = h('h3', { id: `node-${n.id}-title` }, `Node ${n.id} `, h('span', { class: 'lab-role', text: role }));
      const facts = h('dl', { class: 'lab-facts' },
        h('dt', { text: 'Member' }), h('dd', { text: memberText(n) }),
        h('dt', { text: 'Term' }), h('dd', { text: n.term ?? '–' }),
        h('dt', { text: 'Voted for' }), h('dd', { text: n.vote ? `node ${n.vote}` : '–' }),
        h('dt', { text: 'Commit' }), h('dd', { text: n.commit_index ?? '–' }),
        h('dt', { text: 'Applied' }), h('dd', { text: n.applied_index ?? '–' }),
        h('dt', { text: 'Process' }), h('dd', { text: n.pid ? `pid ${n.pid}, ${n.state}` : n.state }),
      );
      const note = isolated ? h('p', { class: 'lab-cut', text: 'Cut off: every link to and from this node is cut.' }) : null;
      const button = (text, action, onclick, disabled) => h('button', {
        type: 'button', class: 'button subtle', text, onclick, disabled,
        'data-action': action, 'data-key': `node-${n.id}-${action}`,
      });
      const running = n.state === 'running';
      const actions = h('div', { class: 'lab-actions' },
        button('Kill', 'kill', () => act(`node ${n.id} killed`, 'POST', `/lab/nodes/${n.id}/kill`), n.state === 'killed'),
        button('Restart', 'restart', () => act(`node ${n.id} restarted`, 'POST', `/lab/nodes/${n.id}/restart`), false),
        n.state === 'paused'
          ? button('Resume', 'resume', () => act(`node ${n.id} resumed`, 'POST', `/lab/nodes/${n.id}/resume`), false)
          : button('Pause', 'pause', () => act(`node ${n.id} paused`, 'POST', `/lab/nodes/${n.id}/pause`), !running),
        button('Isolate', 'isolate', () => act(`node ${n.id} isolated`, 'POST', `/lab/isolate/${n.id}`), isolated),
        button('Make leader', 'make leader', () => act(`leadership handed to node ${n.id}`, 'POST', '/lab/leader', { to: n.id }), !running || n.role === 'leader'),
        button('Remove', 'remove', () => removeNode(n.id), changing !== null || state.nodes.length <= 1),
      );
      card.append(title, facts, note ?? '', actions);
      return card;
    }),
  );
  keepingFocus(box, render, $('add-node'));
}

function renderLinks() {
  const t = Date.now();
  const body = $('lab-links');
  const render = () => body.replaceChildren(
    ...state.links.map((l) => {
      const key = `${l.from}-${l.to}`;
      const before = lastCounts.get(key);
      if (before && t - before[0] >= 900) {
        rates.set(key, ((l.messages - before[1]) * 1000) / (t - before[0]));
        lastCounts.set(key, [t, l.messages]);
      } else if (!before) lastCounts.set(key, [t, l.messages]);
      const cut = l.state === 'cut';
      return h('tr', { 'data-link': key, 'data-group': `link-${key}`, 'data-state': l.state },
        h('th', { scope: 'row', text: `${l.from} → ${l.to}` }),
        h('td', { class: cut ? 'link-cut' : 'link-ok', text: cut ? 'cut' : 'ok' }),
        h('td', { class: 'num', text: l.messages }),
        h('td', { class: 'num', text: (rates.get(key) ?? 0).toFixed(0) }),
        h('td', {},
          h('button', {
            type: 'button', class: 'button subtle', 'data-key': `link-${key}-both`,
            text: cut ? `Heal ${l.from} ↔ ${l.to}` : `Cut ${l.from} ↔ ${l.to}`,
            onclick: () => act(`link ${l.from} ↔ ${l.to} ${cut ? 'healed' : 'cut'}`, 'POST', '/lab/links', { from: l.from, to: l.to, state: cut ? 'ok' : 'cut', both: true }),
          }),
          ' ',
          h('button', {
            type: 'button', class: 'button subtle', 'data-key': `link-${key}-one`,
            text: cut ? `Heal ${l.from} → ${l.to} only` : `Cut ${l.from} → ${l.to} only`,
            onclick: () => act(`link ${l.from} → ${l.to} ${cut ? 'healed' : 'cut'}`, 'POST', '/lab/links', { from: l.from, to: l.to, state: cut ? 'ok' : 'cut', both: false }),
          })),
      );
    }),
  );
  keepingFocus(body, render, $('heal'));
  const live = new Set(state.links.map((l) => `${l.from}-${l.to}`));
  for (const key of lastCounts.keys()) {
    if (!live.has(key)) {
      lastCounts.delete(key);
      rates.delete(key);
    }
  }
}

function renderEvents() {
  const list = $('lab-events');
  list.replaceChildren(
    ...state.events.slice(-40).reverse().map((e) =>
      h('li', { class: `event-${e.kind}` }, h('time', { text: new Date(e.at).toLocaleTimeString() }), ` ${e.text}`)),
  );
}

function renderLogs() {
  const box = $('lab-logs');
  const known = [...logs.values()].filter(Boolean);
  const hi = Math.max(0, ...known.map((l) => l.last_index));
  const width = 40;
  const lo = Math.max(1, hi - width + 1);
  box.replaceChildren(
    ...state.nodes.map((n) => {
      const log = n.state === 'killed' ? null : logs.get(n.id);
      const row = h('div', { class: 'log-row', 'data-node': n.id });
      const label = h('span', { class: 'log-label', text: `node ${n.id}` });
      const strip = h('div', { class: 'log-strip', role: 'img' });
      if (!log) {
        strip.setAttribute('aria-label', `node ${n.id}: no log (${roleText(n)})`);
        strip.dataset.tail = '';
        row.append(label, strip);
        return row;
      }
      const byIndex = new Map(log.entries.map((e) => [e.index, e]));
      for (let i = lo; i <= hi; i += 1) {
        const e = byIndex.get(i);
        const cell = h('span', {
          class: e ? `log-entry term-${e.term % TERM_COLOURS} kind-${e.kind}` : i < log.first_index ? 'log-entry compacted' : 'log-entry missing',
          title: e ? `index ${i}, term ${e.term}, ${e.kind}` : i < log.first_index ? `index ${i}: compacted (in the snapshot)` : `index ${i}: not in this log`,
        });
        if (i === log.commit_index) cell.classList.add('at-commit');
        if (i === log.applied_index) cell.classList.add('at-applied');
        strip.append(cell);
      }
      const tail = log.entries.slice(-10).map((e) => `${e.index}:${e.term}`).join(',');
      strip.dataset.tail = tail;
      strip.dataset.last = String(log.last_index);
      strip.setAttribute('aria-label', `node ${n.id}: last index ${log.last_index} (term ${log.entries.at(-1)?.term ?? '–'}), commit ${log.commit_index}, applied ${log.applied_index}, log starts at ${log.first_index}`);
      row.append(label, strip);
      return row;
    }),
  );
}

function renderSummary() {
  const leader = leaderOf();
  const main = $('lab');
  const voters = state.nodes.filter((n) => n.member === 'voter').length;
  const learners = state.nodes.filter((n) => n.member === 'learner').length;
  const members = `${state.nodes.length} node${state.nodes.length === 1 ? '' : 's'}: ${voters} voter${voters === 1 ? '' : 's'}${learners ? `, ${learners} learner${learners === 1 ? '' : 's'}` : ''}.`;
  $('lab-summary').textContent = leader
    ? `Node ${leader.id} leads in term ${leader.term}. ${members}`
    : `No leader right now: an election is under way, or no majority can talk. ${members}`;
  $('add-node').disabled = changing !== null;
  main.dataset.nodes = String(state.nodes.length);
  main.dataset.voters = String(voters);
  main.dataset.leader = leader ? String(leader.id) : '';
  main.dataset.ready = 'true';
  const first = state.nodes.find((n) => n.state === 'running');
  if (first) {
    $('board-link').href = `${first.url}/`;
    $('charts-link').href = `${first.url}/cluster`;
  }
}

async function refreshState() {
  try {
    state = await api('GET', '/lab/state');
  } catch {
    say('The lab does not answer: is `taskraft demo --lab` still running?');
    return;
  }
  renderSummary();
  renderNodes();
  renderLinks();
  renderEvents();
  const main = $('lab');
  main.dataset.renders = String(Number(main.dataset.renders ?? 0) + 1);
}

async function refreshLogs() {
  const present = new Set(state.nodes.map((n) => n.id));
  for (const id of logs.keys()) if (!present.has(id)) logs.delete(id);
  await Promise.all(
    state.nodes.map(async (n) => {
      if (n.state !== 'running') {
        logs.delete(n.id);
        return;
      }
      // Its last strip stays until the node leaves the page.
      if (leaving.has(n.id)) return;
      let log = null;
      try {
        log = await api('GET', `/lab/nodes/${n.id}/log`);
      } catch {
        // The lab itself did not answer: keep what is shown.
        return;
      }
      if (log.answering === false) {
        // A paused or cut-off node keeps its last strip; a silent one has none.
        if (!n.answering) logs.delete(n.id);
      } else {
        logs.set(n.id, log);
      }
    }),
  );
  renderLogs();
}

// --- Adding and removing nodes ------------------------------------------

/** Runs one membership change from this page; the buttons wait for it. */
async function membership(label, work) {
  if (changing !== null) return;
  changing = label;
  $('lab').dataset.changing = label;
  renderSummary();
  renderNodes();
  say(`${label}…`);
  try {
    say(await work());
  } catch (e) {
    say(`${label}: refused (${e.message})`);
  } finally {
    changing = null;
    $('lab').dataset.changing = '';
    await refreshState();
    leaving.clear();
  }
}

function addNode() {
  return membership('Adding a node', async () => {
    const added = await api('POST', '/lab/nodes');
    return `Node ${added.id} started: it joins as a learner and becomes a voter once it has caught up.`;
  });
}

function removeNode(id) {
  return membership(`Removing node ${id}`, async () => {
    leaving.add(id);
    await api('DELETE', `/lab/nodes/${id}`);
    return `Node ${id} was removed from the cluster and stopped.`;
  });
}

// --- The guided tour ------------------------------------------------------

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(what, test, timeoutMs = 60000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await refreshState();
    const value = test();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`gave up waiting: ${what}`);
    await sleep(300);
  }
}

function step(text) {
  const li = h('li', { text });
  $('tour-steps').append(li);
  return li;
}

/**
 * The board's session, for the exercises' writes and reads: with accounts on
 * the nodes take the cookie the board set (every node accepts it) and, on a
 * write, its CSRF token. `null` with accounts off.
 */
let csrf = null;
async function session(nodes) {
  for (const node of nodes()) {
    try {
      const res = await fetch(`${node.url}/api/session`, { credentials: 'include', signal: AbortSignal.timeout(4000) });
      if (res.status === 401) throw new Error('sign in on the board first (any node): the exercise writes cards as you');
      if (res.ok) {
        csrf = (await res.json()).csrf ?? null;
        return;
      }
    } catch (err) {
      if (err.message.startsWith('sign in')) throw err;
      // Not answered: ask another node.
    }
  }
}

/** Writes one card through any of `nodes` (retrying, same id and key), returns its id. */
async function writeCard(tag, n, nodes) {
  const id = crypto.randomUUID();
  const deadline = Date.now() + 60000;
  for (let attempt = 0; ; attempt += 1) {
    // The leader first: a follower that has not heard from a new leader
    // yet answers 503 `no_leader`, which the browser logs as an error.
    const leader = leaderOf();
    const candidates = nodes().sort((a, b) => (b.id === leader?.id) - (a.id === leader?.id));
    const node = candidates[attempt % Math.max(1, candidates.length)];
    if (node) {
      try {
        const response = await fetch(`${node.url}/api/tasks`, {
          method: 'POST',
          credentials: 'include',
          headers: {
            'Content-Type': 'application/json',
            'Idempotency-Key': `lab-${id}`,
            ...(csrf ? { 'X-Taskraft-CSRF': csrf } : {}),
          },
          body: JSON.stringify({ id, title: `lab ${tag} card ${n}`, labels: ['lab'] }),
          signal: AbortSignal.timeout(8000),
        });
        if (response.status === 201 || response.status === 200) return id;
      } catch {
        // Not answered: try again, the same card.
      }
    }
    if (Date.now() > deadline) throw new Error(`card ${n} could not be written`);
    await sleep(250);
    await refreshState();
  }
}

/** The check every exercise ends with: each card written is on every node, once. */
async function checkCards(tag, ids) {
  const nodes = state.nodes.filter((n) => n.state === 'running');
  const problems = [];
  for (const node of nodes) {
    const response = await fetch(`${node.url}/api/tasks?q=${encodeURIComponent(tag)}&limit=1000`, {
      credentials: 'include',
      signal: AbortSignal.timeout(8000),
    });
    if (!response.ok) {
      problems.push(`node ${node.id} answered ${response.status}`);
      continue;
    }
    const tasks = (await response.json()).tasks ?? [];
    const seen = new Map();
    for (const t of tasks) seen.set(t.id, (seen.get(t.id) ?? 0) + 1);
    const missing = ids.filter((id) => !seen.has(id)).length;
    const twice = [...seen.values()].filter((c) => c > 1).length;
    const extra = [...seen.keys()].filter((id) => !ids.includes(id)).length;
    if (missing || twice || extra) problems.push(`node ${node.id}: ${missing} missing, ${twice} twice, ${extra} unexpected`);
  }
  return { nodes: nodes.length, problems };
}

async function finish(tag, ids) {
  const s = step(`Checking every node has each of the ${ids.length} cards, once…`);
  // Each node is read once it knows the leader: until then it answers
  // reads 503 `no_leader` (retryable, but the browser logs it as an error).
  await waitFor('every node knows the leader', () =>
    state.nodes.filter((n) => n.state === 'running').every((n) => n.answering && n.leader_id != null),
  30000).catch(() => {});
  let result;
  const deadline = Date.now() + 30000;
  for (;;) {
    result = await checkCards(tag, ids);
    if (!result.problems.length || Date.now() > deadline) break;
    await sleep(500);
  }
  const out = $('tour-result');
  if (result.problems.length) {
    out.dataset.result = 'fail';
    out.textContent = `Check failed: ${result.problems.join('; ')}`;
  } else {
    out.dataset.result = 'pass';
    out.textContent = `Check passed: all ${ids.length} cards written during the exercise are on all ${result.nodes} nodes, each once.`;
  }
  s.textContent += result.problems.length ? ' failed.' : ' passed.';
}

const running = () => state.nodes.filter((n) => n.state === 'running' && n.answering && !cutOff(n.id));

async function writeSome(tag, from, count, targets) {
  const ids = [];
  const s = step(`Writing ${count} cards…`);
  await session(targets);
  for (let i = 0; i < count; i += 1) ids.push(await writeCard(tag, from + i, targets));
  s.textContent = `Wrote ${count} cards (each answered only once committed).`;
  return ids;
}

async function caughtUp(id) {
  return waitFor(`node ${id} catches up`, () => {
    const node = state.nodes.find((n) => n.id === id);
    const leader = leaderOf();
    return node?.answering && leader && node.applied_index >= leader.commit_index && node.role === 'follower' && node.leader_id === leader.id;
  });
}

const TOURS = {
  'kill-leader': async (tag) => {
    const old = await waitFor('a leader', () => leaderOf());
    let ids = await writeSome(tag, 1, 3, running);
    step(`Killing node ${old.id}, the leader (SIGKILL)…`);
    await api('POST', `/lab/nodes/${old.id}/kill`);
    const next = await waitFor('a new leader', () => {
      const l = leaderOf();
      return l && l.id !== old.id ? l : null;
    });
    step(`Node ${next.id} was elected leader in term ${next.term}.`);
    ids = ids.concat(await writeSome(tag, 4, 3, running));
    step(`Restarting node ${old.id}…`);
    await api('POST', `/lab/nodes/${old.id}/restart`);
    await caughtUp(old.id);
    step(`Node ${old.id} is back, as a follower, and has applied everything.`);
    await finish(tag, ids);
  },
  'partition-leader': async (tag) => {
    const old = await waitFor('a leader', () => leaderOf());
    let ids = await writeSome(tag, 1, 3, running);
    step(`Isolating node ${old.id}, the leader: every link to and from it cut…`);
    await api('POST', `/lab/isolate/${old.id}`);
    const next = await waitFor('a new leader on the majority side', () => {
      const l = leaderOf();
      return l && l.id !== old.id ? l : null;
    });
    step(`The majority elected node ${next.id} in term ${next.term}; node ${old.id} cannot commit anything alone.`);
    ids = ids.concat(await writeSome(tag, 4, 3, running));
    step('Healing every link…');
    await api('POST', '/lab/heal');
    await caughtUp(old.id);
    step(`Node ${old.id} rejoined as a follower with the same log.`);
    await finish(tag, ids);
  },
  snapshot: async (tag) => {
    const leader = await waitFor('a leader', () => leaderOf());
    const follower = state.nodes.find((n) => n.state === 'running' && n.id !== leader.id);
    const behindAt = follower.last_index ?? 0;
    step(`Killing node ${follower.id}, a follower, at log index ${behindAt}…`);
    await api('POST', `/lab/nodes/${follower.id}/kill`);
    let ids = [];
    let n = 1;
    const s = step('Writing cards until the leader compacts its log past what the follower has…');
    const compacted = async () => (await refreshState(), leaderOf()?.first_index > behindAt + 1);
    while (!(await compacted())) {
      ids = ids.concat(await writeSome(tag, n, 10, running));
      n += 10;
      if (n > 400) throw new Error('the leader did not compact its log');
    }
    s.textContent = `The leader's log now starts at ${leaderOf().first_index}: the entries node ${follower.id} lacks are gone from it.`;
    step(`Restarting node ${follower.id}…`);
    await api('POST', `/lab/nodes/${follower.id}/restart`);
    await caughtUp(follower.id);
    const back = state.nodes.find((x) => x.id === follower.id);
    step(`Node ${follower.id} was sent a snapshot: its log now starts at index ${back.first_index}, and its MySQL caught up from a peer.`);
    await finish(tag, ids);
  },
};

async function tour(name) {
  if (busy) return;
  busy = true;
  for (const b of document.querySelectorAll('[data-tour]')) b.disabled = true;
  $('tour-steps').replaceChildren();
  const out = $('tour-result');
  out.dataset.result = 'running';
  out.textContent = 'Running…';
  const tag = `t${Date.now().toString(36)}`;
  await refreshState();
  const unwell = state.nodes.filter((n) => n.state !== 'running' || !n.answering).map((n) => n.id);
  if (unwell.length || state.links.some((l) => l.state === 'cut')) {
    out.dataset.result = 'fail';
    out.textContent = `Start from a whole cluster: ${unwell.length ? `restart or resume node ${unwell.join(', ')}` : 'heal the cut links'} first.`;
    busy = false;
    for (const b of document.querySelectorAll('[data-tour]')) b.disabled = false;
    return;
  }
  try {
    await TOURS[name](tag);
  } catch (e) {
    out.dataset.result = 'fail';
    out.textContent = `The exercise stopped: ${e.message}`;
  } finally {
    busy = false;
    for (const b of document.querySelectorAll('[data-tour]')) b.disabled = false;
  }
}

for (const b of document.querySelectorAll('[data-tour]')) b.addEventListener('click', () => tour(b.dataset.tour));
$('heal').addEventListener('click', () => act('every link healed', 'POST', '/lab/heal'));
$('add-node').addEventListener('click', addNode);

refreshState().then(refreshLogs);
setInterval(() => { if (!busy) refreshState(); }, STATE_EVERY_MS);
setInterval(refreshLogs, LOGS_EVERY_MS);
