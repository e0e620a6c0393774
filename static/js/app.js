// The board page: wires the store, the live feed, the board, the dialog, the
// filters and the cluster panel together.
//
// Start-up: learn the members (GET /api/cluster), load the list (which says
// which event seq it reflects), then follow /ws?since=<that seq>. From then on
// the board changes only by applying the server's events in seq order.
//
// Test hooks: #app carries data-seq (last applied event), data-node-url (the
// node in use) and data-live; cards carry data-task-id, data-status and
// data-version.

import { Api } from './api.js';
import { Board } from './board.js';
import { ClusterPanel } from './cluster.js';
import { TaskDialog } from './dialog.js';
import { Feed } from './feed.js';
import { Filters } from './filters.js';
import { Health } from './health.js';
import { PastBoard } from './past.js';
import { Session } from './session.js';
import { Store } from './store.js';
import { Toasts } from './toast.js';
import { h, isTyping, sleep } from './util.js';

const app = document.getElementById('app');
const conn = document.getElementById('conn');
const announcer = document.getElementById('announcer');

const api = new Api(location.origin);
const store = new Store();
const toasts = new Toasts(document.getElementById('toasts'));
const filters = new Filters(document.getElementById('filters'));
const panel = new ClusterPanel(api, document.getElementById('cluster'));
const session = new Session(api, document.getElementById('login-dialog'));

let announceTimer = null;
function announce(text) {
  // Clear first so that the same words are announced again.
  announcer.textContent = '';
  clearTimeout(announceTimer);
  announceTimer = setTimeout(() => {
    announcer.textContent = text;
  }, 30);
}

const board = new Board({
  root: document.getElementById('board'),
  nav: document.getElementById('column-nav'),
  moveHelp: document.getElementById('move-help'),
  store,
  api,
  filters,
  toasts,
  announce,
  openTask: (id) => dialog.open(id),
});

const dialog = new TaskDialog({
  dialog: document.getElementById('task-dialog'),
  store,
  api,
  board,
  toasts,
  announce,
  waitReason: () => health.waitReason(),
});

/** Load every task (keyset pages) and the seq the list reflects. */
async function loadAll() {
  const tasks = new Map();
  let seq = null;
  let cursor = null;
  do {
    const path = `/api/tasks?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const res = await api.request('GET', path);
    if (!res.ok) throw new Error(`loading the board: ${res.body?.error?.message ?? res.status}`);
    // Later pages may be newer than the first; replaying the events after the
    // first page's seq brings every task to the same point.
    if (seq === null) seq = res.body.last_seq;
    for (const t of res.body.tasks) tasks.set(t.id, t);
    cursor = res.body.next_cursor;
  } while (cursor);
  store.reset([...tasks.values()], seq);
}

const feed = new Feed(api, store, {
  reload: loadAll,
  // The node closed the live feed: this sign-in ended (here or elsewhere).
  onSignedOut: (reason) => session.signedOutElsewhere(reason),
});
const health = new Health(api, feed);

// ------------------------------------------------------------------ reactions

store.addEventListener('change', (e) => {
  app.dataset.seq = String(store.lastSeq);
  board.settle();
  board.render();
  // Events of users and members carry no task.
  const ids = e.detail.events.filter((ev) => ev.task && ev.kind !== 'task_deleted').map((ev) => ev.task_id);
  if (ids.length) board.flash(ids);
  for (const ev of e.detail.events) dialog.onTaskEvent(ev);
  refreshChoices();
  panel.setPage({ seq: store.lastSeq });
});

/** The cluster's users who can be given a card ([{username, display_name}]), when accounts are on. */
let users = [];

let usersAt = 0;

/** Learns the users (any signed-in role may list them); none with accounts off. */
async function loadUsers() {
  usersAt = Date.now();
  if (session.open || !session.user) {
    users = [];
  } else {
    const res = await api.request('GET', '/api/users', { noSignIn: true }).catch(() => null);
    if (res?.status !== 200 || !Array.isArray(res.body?.users)) return;
    users = res.body.users.filter((u) => u && !u.disabled && typeof u.username === 'string');
  }
  refreshChoices();
}

let choicesTimer = null;
function refreshChoices() {
  clearTimeout(choicesTimer);
  choicesTimer = setTimeout(() => {
    const { people, labels } = filters.updateChoices(store.tasks.values());
    // The assignee field offers the users first (by name, showing their display
    // name), then anyone else already named on a card (free text stays allowed).
    const known = new Set(users.map((u) => u.username));
    const options = [
      ...users.map((u) => h('option', { value: u.username, label: u.display_name || u.username })),
      ...people.filter((p) => !known.has(p)).map((p) => h('option', { value: p })),
    ];
    document.getElementById('people').replaceChildren(...options);
    document.getElementById('label-names').replaceChildren(...labels.map((l) => h('option', { value: l })));
  }, 100);
}

filters.addEventListener('change', () => board.render());

/** The header says what the page can honestly say about its connection. */
function showConnection() {
  health.update();
  const text = health.text();
  if (conn.textContent !== text) conn.textContent = text;
  conn.className = `conn conn-${health.kind}`;
  conn.title = health.detail();
  document.body.dataset.health = health.kind;
  app.dataset.nodeUrl = api.current;
  app.dataset.live = String(feed.state === 'live');
  dialog.refreshWaiting();
}

health.addEventListener('change', () => showConnection());
feed.addEventListener('state', () => {
  showConnection();
  panel.setPage({ feedState: feed.state });
});
feed.addEventListener('cluster', (e) => {
  panel.fromFeed(e.detail.info, e.detail.node);
  health.onView(e.detail.info, e.detail.node);
});
panel.addEventListener('view', (e) => health.onView(e.detail.view, e.detail.node));
feed.addEventListener('hello', () => showConnection());

api.addEventListener('switch', (e) => {
  const from = api.nodeIdOf(e.detail.from);
  const to = api.nodeIdOf(e.detail.to);
  const why = {
    unavailable: 'cannot serve',
    'no majority': 'cannot reach a majority',
  }[e.detail.reason] ?? 'stopped answering';
  toasts.show(
    `${from != null ? `Node ${from}` : e.detail.from} ${why}; now using ${to != null ? `node ${to}` : e.detail.to}.`,
    { timeout: 5000 },
  );
  showConnection();
  panel.render();
});

// ------------------------------------------------------------------ who is signed in

/** What the role may not do is not shown (the server refuses it anyway). */
function showSession() {
  session.renderWho(document.getElementById('who'));
  const canWrite = session.can('write');
  board.canWrite = canWrite;
  document.body.dataset.canWrite = String(canWrite);
  document.body.dataset.role = session.open ? 'open' : (session.user?.role ?? 'none');
  for (const field of document.querySelectorAll('#task-form input, #task-form textarea')) {
    field.readOnly = !canWrite;
  }
  for (const field of document.querySelectorAll('#task-form select')) field.disabled = !canWrite;
  board.render();
}
session.addEventListener('change', () => {
  showSession();
  loadUsers();
});
// Someone added since? Asked again when the assignee field is entered, at most every 10 s.
document.getElementById('task-assignee').addEventListener('focus', () => {
  if (Date.now() - usersAt > 10000) loadUsers();
});

// ------------------------------------------------------------------ the board on a past date

const boardEl = document.getElementById('board');
const past = new PastBoard({
  api,
  onShown: (shown) => {
    // The live board (and everything that writes) is out of reach meanwhile.
    boardEl.hidden = shown;
    document.getElementById('column-nav').hidden = shown;
    document.body.dataset.past = String(shown);
  },
});

// ------------------------------------------------------------------ keyboard

const help = document.getElementById('help-dialog');
document.getElementById('help-open').addEventListener('click', () => help.showModal());

document.addEventListener('keydown', (e) => {
  if (e.defaultPrevented) return;
  if ((e.ctrlKey || e.metaKey) && e.key === 'z' && !isTyping(e.target) && !dialog.isOpen) {
    if (board.undoLast()) e.preventDefault();
    return;
  }
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  if (isTyping(e.target) || dialog.isOpen || help.open || board.moving || past.open) return;
  switch (e.key) {
    case 'n':
      if (!board.canWrite) break;
      e.preventDefault();
      board.openAdd('todo');
      break;
    case '/':
      e.preventDefault();
      filters.focusSearch();
      break;
    case '?':
      e.preventDefault();
      help.showModal();
      break;
    case 'b':
      e.preventDefault();
      board.focusFirst();
      break;
    case 'd':
      e.preventDefault();
      past.openView();
      break;
    default:
      break;
  }
});

// ------------------------------------------------------------------ cluster panel toggle

const toggle = document.getElementById('cluster-toggle');
const clusterAside = document.getElementById('cluster');
function setClusterShown(shown) {
  clusterAside.hidden = !shown;
  toggle.setAttribute('aria-expanded', String(shown));
  app.classList.toggle('no-cluster', !shown);
  try {
    localStorage.setItem('taskraft.cluster', shown ? 'shown' : 'hidden');
  } catch {
    // storage may be unavailable
  }
}
toggle.addEventListener('click', () => setClusterShown(clusterAside.hidden));
try {
  if (localStorage.getItem('taskraft.cluster') === 'hidden') setClusterShown(false);
} catch {
  // ignore
}

// ------------------------------------------------------------------ start

/** Under `taskraft demo --lab`, the node names the lab's page: link to it. */
function showLabLink() {
  fetch('/api/cluster', { cache: 'no-store', credentials: 'include' })
    .then((r) => (r.ok ? r.json() : null))
    .then((view) => {
      if (typeof view?.lab_url === 'string' && /^https?:\/\//.test(view.lab_url)) {
        const link = document.getElementById('lab-link');
        link.href = view.lab_url;
        link.hidden = false;
      }
    })
    .catch(() => {});
}

async function boot() {
  showConnection();
  // Signed in first: with accounts on, nothing else may be read before.
  await session.start();
  showLabLink();
  await panel.start();
  showConnection();
  for (let attempt = 1; ; attempt++) {
    try {
      await loadAll();
      break;
    } catch (err) {
      conn.textContent = `Cannot load the board: ${err.message}`;
      await sleep(Math.min(5000, 500 * attempt));
    }
  }
  board.render();
  refreshChoices();
  feed.start();
  // Relative times ("3 min ago") and due-date states age.
  setInterval(() => board.render(), 60000);
}

boot();
