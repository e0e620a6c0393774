// The board on screen, as of event `lastSeq`: its record (name, my role,
// its columns in order) and the cards this page has loaded of each column.
//
// A column is loaded a page at a time, in board order. Its window says how
// far: `edge` is the last card of the last page loaded, and the store holds
// exactly the column's cards up to it (every one once the column is
// `complete`). Its `total` is the server's count of the column's live cards,
// so the header is right however few cards are loaded.
//
// Only three things change the store: a load of the board (reset), one more
// page of a column (addPage) and the server's events, applied strictly in
// seq order. Every task event carries the whole task (and, for an update,
// each changed field's old value), so applying one is "the task is now
// here": it enters the window of its column if it falls inside it, leaves
// the store otherwise, and the counts of the column it left and the one it
// entered follow. A count that a page or a column record already shows at
// or after an event's seq is not moved again by it (`countedAt`).
//
// What an event cannot say sets a flag for app.js: `reloadNeeded` (a
// column went with cards in it: they moved without events of their own)
// and `boardStale` (the members changed: my role may have).

import { boardIdOf, columnIdOf, isArchived, placeBefore } from './place.js';

export class Store extends EventTarget {
  constructor() {
    super();
    /** {id, name, archived, default, role, columns, members}, or null before the first load. */
    this.board = null;
    /** The default board's id: where a task without board_id is. */
    this.defaultBoardId = null;
    /** @type {Map<string, object>} the loaded cards of this board */
    this.tasks = new Map();
    /** column id → {total, complete, edge, cursor, countedAt} */
    this.windows = new Map();
    this.lastSeq = 0;
    this.loaded = false;
    this.reloadNeeded = false;
    this.boardStale = false;
  }

  /**
   * The board `board` (normalBoard) with the first page of each of its
   * columns (`pages`: column id → {tasks, next_cursor, total, seq}), as of `seq`.
   */
  reset(board, pages, seq) {
    this.board = board;
    this.tasks = new Map();
    this.windows = new Map();
    for (const column of board.columns) {
      const page = pages.get(column.id) ?? { tasks: [], next_cursor: null, total: column.cards ?? 0, seq };
      this.windows.set(column.id, windowOf(page, column));
      for (const task of page.tasks) this.tasks.set(task.id, task);
    }
    this.lastSeq = seq;
    this.loaded = true;
    this.reloadNeeded = false;
    this.boardStale = false;
    this.dispatchEvent(new CustomEvent('change', { detail: { reset: true, events: [] } }));
  }

  /** The next page of column `columnId` (asked with its window's cursor). */
  addPage(columnId, page) {
    const win = this.windows.get(columnId);
    if (!win) return;
    win.cursor = page.next_cursor ?? null;
    win.complete = !win.cursor;
    win.edge = win.complete ? null : edgeOf(page.tasks.at(-1));
    if (page.total != null && page.seq != null && page.seq >= win.countedAt) {
      win.total = page.total;
      win.countedAt = page.seq;
    }
    for (const task of page.tasks) {
      const known = this.tasks.get(task.id);
      // An event already brought a newer version: it knows better than the page.
      if (known && known.version >= task.version) continue;
      if (this.columnOf(task) === columnId) this.tasks.set(task.id, task);
    }
    this.dispatchEvent(new CustomEvent('change', { detail: { reset: false, events: [], page: columnId } }));
  }

  /** The columns' counts as a fresh board record says them (GET /api/boards/{id} at `seq`). */
  recount(board, seq) {
    for (const column of board.columns) {
      const win = this.windows.get(column.id);
      if (win && column.cards != null && seq >= win.countedAt) {
        win.total = column.cards;
        win.countedAt = seq;
      }
    }
    this.dispatchEvent(new CustomEvent('change', { detail: { reset: false, events: [] } }));
  }

  /**
   * Apply one event if it is the next one. Returns 'applied', 'old' (already
   * seen) or 'gap' (an event is missing: the caller must resume from lastSeq).
   */
  apply(event) {
    if (event.seq <= this.lastSeq) return 'old';
    if (event.seq !== this.lastSeq + 1) return 'gap';
    if (this.board) this.applyOne(event);
    this.lastSeq = event.seq;
    this.dispatchEvent(new CustomEvent('change', { detail: { reset: false, events: [event] } }));
    return 'applied';
  }

  applyOne(ev) {
    switch (ev.kind) {
      case 'board_updated':
        // The name or the archived flag; the columns come with their own events.
        if (ev.board && String(ev.board.id) === this.board.id) {
          this.board.name = ev.board.name ?? this.board.name;
          this.board.archived = Boolean(ev.board.archived);
        }
        break;
      case 'board_member_changed':
        // Whose role changed is not ours to guess: the board record says.
        if (String(ev.board_member?.board_id ?? ev.board?.id) === this.board.id) this.boardStale = true;
        break;
      case 'column_created':
      case 'column_updated':
        if (ev.column) this.putColumn(normalColumn(ev.column), ev.seq);
        break;
      case 'column_deleted':
        if (ev.column) this.dropColumn(String(ev.column.id));
        break;
      case 'comment_added':
      case 'comment_deleted': {
        // The card's count follows its thread (a card not held here is
        // counted when its page is read).
        const task = this.tasks.get(ev.task_id);
        if (task) {
          const delta = ev.kind === 'comment_added' ? 1 : -1;
          this.tasks.set(ev.task_id, { ...task, comment_count: Math.max(0, (task.comment_count ?? 0) + delta) });
        }
        break;
      }
      case 'comment_edited':
        break;
      case 'checklist_changed': {
        // The card's done/total follows what changed (a card not held
        // here is counted when its page is read).
        const task = this.tasks.get(ev.task_id);
        if (task) {
          this.tasks.set(ev.task_id, { ...task, checklist_progress: progressAfter(task.checklist_progress, ev) });
        }
        break;
      }
      default:
        // Task events; events of users and members carry no task.
        if (ev.task || ev.kind === 'task_deleted') this.applyTask(ev);
        break;
    }
  }

  applyTask(ev) {
    const id = ev.task_id ?? ev.task?.id;
    const deleted = ev.kind === 'task_deleted';
    const before =
      ev.kind === 'task_created' ? null : ev.task ? (deleted ? ev.task : placeBefore(ev.task, ev.changes)) : this.tasks.get(id);
    // A task event does not carry the comment count: the card keeps its own.
    const held = this.tasks.get(id);
    const after = deleted
      ? null
      : held
        ? { ...ev.task, comment_count: held.comment_count, checklist_progress: held.checklist_progress }
        : ev.task;
    const from = before && !isArchived(before) ? this.columnOf(before) : null;
    const to = after && !isArchived(after) ? this.columnOf(after) : null;
    if (from !== to) {
      this.count(from, -1, ev.seq);
      this.count(to, 1, ev.seq);
    }
    if (to && this.holds(after, to)) this.tasks.set(id, after);
    else this.tasks.delete(id);
  }

  count(columnId, delta, seq) {
    const win = columnId && this.windows.get(columnId);
    if (win && seq > win.countedAt) win.total = Math.max(0, win.total + delta);
  }

  /** Does `task` fall inside the loaded window of column `columnId`? */
  holds(task, columnId) {
    const win = this.windows.get(columnId);
    return Boolean(win && (win.complete || !win.edge || boardOrder(task, win.edge) <= 0));
  }

  putColumn(column, seq) {
    if (column.board_id !== this.board.id) return;
    const columns = this.board.columns;
    const at = columns.findIndex((c) => c.id === column.id);
    if (at >= 0) columns[at] = { ...columns[at], ...column };
    else columns.push(column);
    columns.sort(byPosition);
    const win = this.windows.get(column.id);
    if (!win) {
      // A new column: empty, so loaded whole.
      this.windows.set(column.id, { total: column.cards ?? 0, complete: true, edge: null, cursor: null, countedAt: seq });
    } else if (column.cards != null && seq > win.countedAt) {
      win.total = column.cards;
      win.countedAt = seq;
    }
  }

  dropColumn(columnId) {
    const columns = this.board.columns;
    const at = columns.findIndex((c) => c.id === columnId);
    if (at < 0) return;
    columns.splice(at, 1);
    const win = this.windows.get(columnId);
    this.windows.delete(columnId);
    let held = false;
    for (const [id, task] of this.tasks) {
      if (this.columnOf(task) === null) {
        this.tasks.delete(id);
        held = true;
      }
    }
    // Its cards went to another column by the deletion itself: reload to see where.
    if (held || win?.total > 0) this.reloadNeeded = true;
  }

  /** The id of the column of this board that `task` is in, or null. */
  columnOf(task) {
    return columnIdOf(task, this.board, this.defaultBoardId);
  }

  /** Is `task` on this board (live or archived)? */
  isHere(task) {
    return Boolean(this.board) && boardIdOf(task, this.defaultBoardId) === this.board.id;
  }

  column(id) {
    return this.board?.columns.find((c) => c.id === id) ?? null;
  }

  window(id) {
    return this.windows.get(id) ?? null;
  }

  get(id) {
    return this.tasks.get(id);
  }

  /** All loaded tasks, sorted in board order (position, then id). */
  all() {
    return [...this.tasks.values()].sort(boardOrder);
  }
}

/** A board as the server sends it, with string ids and its columns in order. */
export function normalBoard(raw) {
  return {
    id: String(raw.id),
    name: String(raw.name ?? ''),
    archived: Boolean(raw.archived),
    default: Boolean(raw.default),
    role: raw.role ?? 'viewer',
    columns: (Array.isArray(raw.columns) ? raw.columns : []).map(normalColumn).sort(byPosition),
    members: Array.isArray(raw.members) ? raw.members : [],
  };
}

export function normalColumn(raw) {
  return { ...raw, id: String(raw.id), board_id: String(raw.board_id) };
}

function byPosition(a, b) {
  return a.position - b.position || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

function windowOf(page, column) {
  const complete = !page.next_cursor;
  return {
    total: page.total ?? column.cards ?? page.tasks.length,
    complete,
    edge: complete ? null : edgeOf(page.tasks.at(-1)),
    cursor: page.next_cursor ?? null,
    countedAt: page.seq ?? 0,
  };
}

function edgeOf(task) {
  return task ? { id: task.id, position: task.position } : null;
}

export function boardOrder(a, b) {
  return a.position - b.position || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/**
 * The position for a card (or a column) placed between `prev` and `next`
 * (either may be missing): the midpoint, or 1024 past the end / before the start.
 */
export function positionBetween(prev, next) {
  if (!prev && !next) return 1024;
  if (!prev) return next.position - 1024;
  if (!next) return prev.position + 1024;
  return (prev.position + next.position) / 2;
}

/** A card's checklist progress after a checklist_changed event. */
function progressAfter(progress, ev) {
  let { done, total } = progress ?? { done: 0, total: 0 };
  const change = ev.checklist_change ?? {};
  switch (change.what) {
    case 'deleted':
      done -= ev.checklist.items.filter((i) => i.done).length;
      total -= ev.checklist.items.length;
      break;
    case 'item_added':
      total += 1;
      break;
    case 'item_removed':
      total -= 1;
      if (change.item?.done) done -= 1;
      break;
    case 'item_updated':
      if (change.done_from === false) done += 1;
      if (change.done_from === true) done -= 1;
      break;
    default:
      break;
  }
  return { done: Math.max(0, done), total: Math.max(0, total) };
}
