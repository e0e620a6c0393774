// The board page: wires the boards, the store, the live feed, the board, the
// dialog, the filters and the cluster panel together.
//
// Start-up: learn the members (GET /api/cluster), list my boards, load the
// board the URL names (its record and the first page of each column, which
// say which event seq they reflect), then follow /ws?since=<that seq>. From
// then on the board changes only by applying the server's events in seq
// order. Switching boards loads the other one the same way and follows the
// feed again from its seq.
//
// Test hooks: #app carries data-seq (last applied event), data-node-url (the
// node in use), data-live and data-board (the board on screen); columns
// carry data-column-id, data-key and data-over; cards carry data-task-id,
// data-column-id, data-status and data-version.

import { ActivityView } from './activity.js';
import { Api } from './api.js';
import { ArchivedView } from './archived.js';
import { SearchView, findInUrl } from './search.js';
import { Board } from './board.js';
import { BoardNotFound, Boards, boardInUrl } from './boards.js';
import { ClusterPanel } from './cluster.js';
import { ChecklistPanel } from './checklists.js';
import { CommentThread } from './comments.js';
import { TaskDialog } from './dialog.js';
import { Feed } from './feed.js';
import { Filters } from './filters.js';
import { Health } from './health.js';
import { Bell } from './notifications.js';
import { PastBoard } from './past.js';
import { Presence } from './presence.js';
import { Session } from './session.js';
import { Store } from './store.js';
import { BoardSwitcher } from './switcher.js';
import { Toasts } from './toast.js';
import { FIXED_COLUMNS, h, isTyping, sleep } from './util.js';

const app = document.getElementById('app');
const conn = document.getElementById('conn');
const announcer = document.getElementById('announcer');

const api = new Api(location.origin);
const store = new Store();
const toasts = new Toasts(document.getElementById('toasts'));
const filters = new Filters(document.getElementById('filters'));
const panel = new ClusterPanel(api, document.getElementById('cluster'));
const session = new Session(api, document.getElementById('login-dialog'));
const boards = new Boards(api, store);

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
  loadMore: (columnId) =>
    boards.more(columnId).catch((err) => toasts.show(`More cards could not be loaded: ${err.message}`, { kind: 'error' })),
});

const switcher = new BoardSwitcher({ api, boards, announce });
switcher.addEventListener('switch', (e) => switchTo(e.detail.id, 'push'));

const dialog = new TaskDialog({
  dialog: document.getElementById('task-dialog'),
  store,
  api,
  board,
  boards,
  toasts,
  announce,
  waitReason: () => health.waitReason(),
});
const commentCount = document.getElementById('task-comment-count');
// The header's count takes you to the thread.
commentCount.addEventListener('click', () => {
  const heading = document.getElementById('comments-heading');
  heading.scrollIntoView({ block: 'start' });
  heading.focus({ preventScroll: true });
});
dialog.checklists = new ChecklistPanel({
  root: document.getElementById('task-checklists'),
  api,
  toasts,
  announce,
  perms: () => ({ canWrite: board.canWrite }),
});
dialog.comments = new CommentThread({
  root: document.getElementById('task-comments'),
  api,
  toasts,
  announce,
  perms: () => ({
    canWrite: board.canWrite,
    canModerate: board.canDelete,
    // With accounts off, everyone is the same anonymous author.
    me: session.open ? 'anonymous' : session.user?.id ?? null,
  }),
  // The thread's count once read; the card's until then.
  onCount: (n) => {
    const count = n ?? store.get(dialog.id)?.comment_count ?? 0;
    commentCount.hidden = count === 0;
    commentCount.textContent = `💬 ${count}`;
    commentCount.setAttribute('aria-label', `${count} comment${count === 1 ? '' : 's'}: go to the thread`);
  },
});

const feed = new Feed(api, store, {
  reload: () => boards.reload(),
  // The node closed the live feed: this sign-in ended (here or elsewhere).
  onSignedOut: (reason) => session.signedOutElsewhere(reason),
});
const health = new Health(api, feed);

// Who else is looking at this board, and who has which card open.
new Presence({
  feed,
  store,
  board,
  dialog: document.getElementById('task-dialog'),
  bar: document.querySelector('.board-bar'),
  me: () => session.user?.id ?? null,
});

// ------------------------------------------------------------------ reactions

store.addEventListener('change', (e) => {
  app.dataset.seq = String(store.lastSeq);
  app.dataset.board = store.board?.id ?? '';
  if (e.detail.reset) {
    showRole();
    showExport();
  }
  board.settle();
  board.render();
  // Events of users and members carry no task.
  const ids = e.detail.events.filter((ev) => ev.task && ev.kind !== 'task_deleted').map((ev) => ev.task_id);
  if (ids.length) board.flash(ids);
  for (const ev of e.detail.events) dialog.onTaskEvent(ev);
  activity.onEvents(e.detail.events);
  bell.onEvents(e.detail.events);
  if (e.detail.events.some((ev) => ev.kind?.startsWith('board_'))) refreshBoardList();
  if (e.detail.reset || e.detail.events.some((ev) => ev.kind?.startsWith('board_') || ev.kind?.startsWith('column_'))) {
    switcher.render();
    dialog.refreshColumns();
  }
  if (store.reloadNeeded) reloadSoon();
  else if (store.boardStale) refreshRecordSoon();
  refreshChoices();
  panel.setPage({ seq: store.lastSeq });
});

// ------------------------------------------------------------------ boards

let feedStarted = false;
let switching = Promise.resolve();

/**
 * Show board `id` (`how`: 'push' for a switch Back returns from, 'replace'
 * when the URL already asks for it). A board that is not mine opens the
 * default one instead, and says so.
 */
function switchTo(id, how) {
  switching = switching.catch(() => {}).then(async () => {
    if (id === store.board?.id && how !== 'reload') return;
    past.close();
    archived.close();
    activity.close();
    searchAll.close({ keepFocus: true });
    try {
      await boards.open(id, { history: how === 'push' ? 'push' : 'replace' });
    } catch (err) {
      if (!(err instanceof BoardNotFound) || !boards.defaultId || id === boards.defaultId) {
        toasts.show(`Could not open the board: ${err.message}`, { kind: 'error' });
        switcher.render();
        return;
      }
      toasts.show('That board is not one of yours (or no longer exists): here is the default board.', { kind: 'error' });
      await boards.open(boards.defaultId, { history: 'replace' });
    }
    announce(`Board ${store.board.name}.`);
    // The feed follows from the seq this board was loaded at.
    if (feedStarted) feed.restart('board switched');
  });
  return switching;
}

window.addEventListener('popstate', () => {
  const id = boardInUrl();
  if (id && id !== store.board?.id) switchTo(id, 'replace');
});

let listTimer = null;
/** My boards again (one was created, renamed, archived, or I was added to one). */
function refreshBoardList() {
  clearTimeout(listTimer);
  listTimer = setTimeout(() => {
    boards
      .loadList()
      .then(() => switcher.render())
      .catch(() => {});
  }, 150);
}

let reloadTimer = null;
/** A column went with its cards: where they went is in the board, not in events. */
function reloadSoon() {
  clearTimeout(reloadTimer);
  reloadTimer = setTimeout(() => switchTo(store.board.id, 'reload'), 100);
}

let recordTimer = null;
/** The members changed: my role may have. */
function refreshRecordSoon() {
  clearTimeout(recordTimer);
  recordTimer = setTimeout(() => {
    const name = store.board?.name;
    boards
      .refreshRecord()
      .then(() => showRole())
      .catch((err) => {
        // No longer a member: off to the default board (and the board
        // leaves the list). Anything else: the next event asks again.
        if (!(err instanceof BoardNotFound)) return;
        toasts.show(`You are no longer on the board ${name ?? ''}: here is the default board.`, { kind: 'error' });
        refreshBoardList();
        if (boards.defaultId) switchTo(boards.defaultId, 'replace');
      });
  }, 100);
}

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

// The columns' pages are the server's, filtered: new filters load the board
// again (the page filters what is loaded at once, and live cards after).
boards.filterValues = () => filters.values;
let loadedFilters = JSON.stringify(filters.values);
let filtering = Promise.resolve();
filters.addEventListener('change', () => {
  board.render();
  const wanted = JSON.stringify(filters.values);
  if (wanted === loadedFilters || !store.board) return;
  loadedFilters = wanted;
  filtering = boards.reload().catch((err) => toasts.show(`Could not filter the board: ${err.message}`, { kind: 'error' }));
});

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

/**
 * What my role on the board on screen may not do is not shown (the server
 * refuses it anyway). On the default board that role is my site role.
 */
function showRole() {
  const role = session.open ? 'admin' : store.board?.role ?? session.user?.role ?? 'viewer';
  const canWrite = session.open || (session.can('read') && (role === 'admin' || role === 'member'));
  board.canWrite = canWrite;
  board.canEditColumns = canWrite;
  board.canDelete = session.open || role === 'admin';
  document.body.dataset.canWrite = String(canWrite);
  document.body.dataset.canDelete = String(board.canDelete);
  document.body.dataset.boardRole = role;
  for (const field of document.querySelectorAll('#task-form input, #task-form textarea')) {
    field.readOnly = !canWrite;
  }
  for (const field of document.querySelectorAll('#task-form select')) field.disabled = !canWrite;
  if (dialog.isOpen) dialog.comments.render();
  if (dialog.isOpen) dialog.checklists.render();
  switcher.render();
  board.render();
}

function showSession() {
  session.renderWho(document.getElementById('who'));
  document.body.dataset.role = session.open ? 'open' : (session.user?.role ?? 'none');
  showRole();
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
/** The live board (and everything that writes) is out of reach while another view is shown. */
function hideBoard(shown) {
  boardEl.hidden = shown;
  document.getElementById('column-nav').hidden = shown;
}
const past = new PastBoard({
  api,
  onShown: (shown) => {
    hideBoard(shown);
    document.body.dataset.past = String(shown);
  },
});

/** The board on a past date reads GET /api/tasks?as_of, which answers the default board only. */
function openPast() {
  if (store.board && !store.board.default) {
    toasts.show('The board on a past date is shown for the default board only, so far.');
    return;
  }
  archived.close();
  past.openView();
}

// ------------------------------------------------------------------ the archived cards

const archived = new ArchivedView({
  api,
  announce,
  onShown: (shown) => {
    hideBoard(shown);
    document.body.dataset.archived = String(shown);
  },
  board: () => store.board,
  canWrite: () => board.canWrite,
  columnName: (task) => store.column(store.columnOf({ ...task, archived: false }))?.name ?? null,
});
document.getElementById('archived-open').addEventListener('click', () => {
  if (past.open) past.close();
  activity.close();
  archived.openView();
});

// ------------------------------------------------------------------ export

/** The export links name the board on screen (any member may export it). */
function showExport() {
  const id = store.board?.id;
  document.getElementById('export-menu').hidden = !id;
  if (!id) return;
  const base = `${api.current}/api/boards/${encodeURIComponent(id)}/export`;
  document.getElementById('export-json').href = `${base}?format=json`;
  document.getElementById('export-csv').href = `${base}?format=csv`;
}
document.getElementById('export-menu').addEventListener('click', (e) => {
  // A link chosen: the menu closes.
  if (e.target.closest('a')) e.currentTarget.open = false;
});
document.getElementById('export-menu').addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && e.currentTarget.open) {
    e.currentTarget.open = false;
    e.currentTarget.querySelector('summary').focus();
  }
});
api.addEventListener('switch', showExport);

// ------------------------------------------------------------------ the board's activity

const activity = new ActivityView({
  api,
  onShown: (shown) => {
    hideBoard(shown);
    document.body.dataset.activity = String(shown);
  },
  board: () => store.board,
  // Anyone may be filtered by; with accounts off everything is `system`'s.
  people: () => [...users.map((u) => ({ id: u.id, name: u.display_name || u.username })), { id: 'system', name: 'system' }],
  columnName: (id) => store.column(id)?.name ?? null,
  taskTitle: (id) => (id ? store.get(id)?.title : null) ?? null,
});
document.getElementById('activity-open').addEventListener('click', () => {
  past.close();
  archived.close();
  searchAll.close({ keepFocus: true });
  activity.openView();
});

// ------------------------------------------------------------------ search all boards

const searchAll = new SearchView({
  api,
  announce,
  onShown: (shown) => {
    hideBoard(shown);
    document.body.dataset.searching = String(shown);
  },
  boardName: (id) => boards.list.find((b) => b.id === (id || boards.defaultId))?.name ?? null,
  columnName: (task) => {
    const board = boards.list.find((b) => b.id === String(task.board_id ?? boards.defaultId));
    const id = task.column_id != null ? String(task.column_id) : FIXED_COLUMNS[task.status];
    return board?.columns?.find((c) => String(c.id) === id)?.name ?? null;
  },
  // A hit opens on its board, the board filtered by the words (so the card
  // is among those loaded, wherever it is in its column), and the card.
  openCard: async (boardId, taskId) => {
    const task = searchAll.lastHits.get(taskId);
    filters.showOnly(searchAll.words);
    await Promise.all([switchTo(boardId || boards.defaultId, 'push'), filtering]);
    if (task?.archived) {
      toasts.show(`“${task.title}” is archived: it is under Archived cards.`);
      return;
    }
    if (store.get(taskId)) dialog.open(taskId);
  },
});
// The bell: a notification opens its card on its board.
const bell = new Bell({
  api,
  button: document.getElementById('bell'),
  panel: document.getElementById('bell-panel'),
  announce,
  toasts,
  me: () => (session.open ? null : session.user?.id ?? null),
  openCard: async (boardId, taskId) => {
    past.close();
    archived.close();
    activity.close();
    searchAll.close({ keepFocus: true });
    await switchTo(boardId || boards.defaultId, 'push');
    if (store.get(taskId)) dialog.open(taskId);
    else toasts.show('That card is not on the board now (archived, or further down its column).');
  },
});
session.addEventListener('change', () => bell.start());

document.getElementById('search-all-open').addEventListener('click', () => {
  past.close();
  archived.close();
  activity.close();
  searchAll.openView(filters.values.q);
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
  if (isTyping(e.target) || dialog.isOpen || help.open || board.moving || past.open || archived.open || activity.open || searchAll.open) return;
  if (document.querySelector('dialog[open]')) return;
  switch (e.key) {
    case 'n':
      if (!board.canWrite) break;
      e.preventDefault();
      board.openAdd();
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
      openPast();
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
  bell.start();
  // The cluster panel fills in beside the board, not before it.
  const panelStarted = panel.start().then(showConnection, () => {});
  for (let attempt = 1; ; attempt++) {
    try {
      await boards.loadList();
      await switchTo(boards.wanted(), 'replace');
      if (store.loaded) break;
    } catch (err) {
      conn.textContent = `Cannot load the board: ${err.message}`;
    }
    await sleep(Math.min(5000, 500 * attempt));
  }
  switcher.render();
  board.render();
  refreshChoices();
  if (findInUrl()) searchAll.openView(findInUrl());
  await panelStarted;
  feedStarted = true;
  feed.start();
  // Relative times ("3 min ago") and due-date states age.
  setInterval(() => board.render(), 60000);
}

boot();
