// "Activity": who did what on the board on screen, newest first, from
// GET /api/boards/{id}/activity, a page at a time ("Show more"), for
// everyone or one person (`?actor=`). New events of the board arrive live
// from the feed and go on top, if they pass the person filter.
//
// Like "Archived cards" it is shown instead of the live board, which keeps
// running behind it. "Back to the board" (or Escape) returns.

import { errorMessage } from './api.js';
import { FIELD_NAME, checklistChange, show } from './history.js';
import { ShownView } from './shown-view.js';
import { DEFAULT_BOARD, FIXED_COLUMNS, formatTime, h, relativeTime } from './util.js';

const PAGE_SIZE = 50;

export class ActivityView extends ShownView {
  /**
   * `onShown(shown)`: the live board hides while shown. `board()`: the board
   * on screen. `people()`: [{id, name}] to filter by. `columnName(id)`.
   * `taskTitle(id)`: a loaded card's title (a comment's event names only its card).
   */
  constructor({ api, onShown, board, people, columnName, taskTitle }) {
    super('activity', onShown);
    this.api = api;
    this.taskTitle = taskTitle;
    this.board = board;
    this.people = people;
    this.columnName = columnName;
    this.title = document.getElementById('activity-title');
    this.who = document.getElementById('activity-actor');
    this.boardId = null;
    /** The seqs listed, so an event that comes both live and in a page shows once. */
    this.shown = new Set();
    /** Bumped on every fresh load, so a late answer for an old one is dropped. */
    this.generation = 0;
    this.who.addEventListener('change', () => this.reload());
  }

  async openView() {
    const board = this.board();
    if (!board) return;
    this.boardId = board.id;
    this.show();
    this.title.textContent = `Activity on ${board.name}`;
    this.fillPeople();
    this.title.focus();
    await this.reload();
  }

  fillPeople() {
    const chosen = this.who.value;
    const options = [h('option', { value: '' }, 'Everyone')];
    for (const p of this.people()) options.push(h('option', { value: p.id }, p.name));
    this.who.replaceChildren(...options);
    this.who.value = options.some((o) => o.value === chosen) ? chosen : '';
  }

  async reload() {
    this.generation += 1;
    this.cursor = null;
    this.shown.clear();
    this.list.replaceChildren();
    this.more.hidden = true;
    await this.load();
  }

  async load() {
    const { boardId, generation } = this;
    const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (this.who.value) query.set('actor', this.who.value);
    if (this.cursor) query.set('cursor', this.cursor);
    this.status.textContent = 'Loading…';
    let res;
    try {
      res = await this.api.request('GET', `/api/boards/${encodeURIComponent(boardId)}/activity?${query}`);
    } catch (err) {
      this.status.textContent = `No node answered: ${err.message}`;
      return;
    }
    if (!this.open || this.boardId !== boardId || this.generation !== generation) return;
    if (!res.ok) {
      this.status.textContent = `The activity could not be loaded: ${errorMessage(res)}`;
      return;
    }
    const events = Array.isArray(res.body?.events) ? res.body.events : [];
    this.paged(res.body?.next_cursor, this.title);
    this.list.append(...events.filter((ev) => !this.shown.has(ev.seq)).map((ev) => this.row(ev)));
    this.say();
  }

  /** Events just applied (seq order): this board's go on top. */
  onEvents(events) {
    if (!this.open) return;
    for (const ev of events) {
      if (eventBoard(ev) !== this.boardId || this.shown.has(ev.seq)) continue;
      if (this.who.value && ev.actor?.id !== this.who.value) continue;
      this.list.prepend(this.row(ev));
    }
    this.say();
  }

  say() {
    const n = this.list.children.length;
    const who = this.who.value ? ` by ${this.who.selectedOptions[0]?.textContent ?? 'this person'}` : '';
    this.status.textContent = n === 0 ? `Nothing done${who} yet.` : `${n} change${n === 1 ? '' : 's'}${who}${this.cursor ? ' shown' : ''}.`;
  }

  row(ev) {
    this.shown.add(ev.seq);
    // As the person filter names them (display name), else as the event does.
    const actor = this.people().find((p) => p.id === ev.actor?.id)?.name || ev.actor?.name || 'system';
    return h(
      'li',
      { class: `activity-item kind-${ev.kind}`, dataset: { seq: ev.seq } },
      h('span', { class: 'activity-avatar', 'aria-hidden': 'true' }, actor.slice(0, 1).toUpperCase()),
      h(
        'span',
        { class: 'activity-text' },
        h('strong', null, actor),
        ' ',
        this.describe(ev),
        ' ',
        h('time', { datetime: ev.at, title: formatTime(ev.at), class: 'muted' }, relativeTime(ev.at)),
      ),
    );
  }

  /** What an event did, in words (after the actor's name). */
  describe(ev) {
    const title = `“${String(ev.task?.title ?? '')}”`;
    const changes = ev.changes ?? {};
    const columnOf = (id) => this.columnName(id) ?? 'a column';
    switch (ev.kind) {
      case 'task_created':
        return `added ${title} to ${columnOf(columnId(ev.task))}`;
      case 'task_deleted':
        return `deleted ${title}`;
      case 'task_updated': {
        if ('archived' in changes) return ev.task?.archived ? `archived ${title}` : `restored ${title}`;
        if ('board_id' in changes) return `moved ${title} to this board`;
        if ('column_id' in changes || 'status' in changes) {
          const from = changes.column_id?.from ?? null;
          return `moved ${title}${from ? ` from ${columnOf(from)}` : ''} to ${columnOf(columnId(ev.task))}`;
        }
        const fields = Object.keys(changes).filter((f) => f !== 'position');
        if (!fields.length) return `reordered ${title}`;
        return `changed ${fields.map((f) => `${(FIELD_NAME[f] ?? f).toLowerCase()} (${show(f, changes[f].to)})`).join(', ')} of ${title}`;
      }
      case 'board_created':
        return `created the board “${ev.board?.name ?? ''}”`;
      case 'board_updated':
        if ('archived' in changes) return ev.board?.archived ? 'archived the board' : 'restored the board';
        return `renamed the board to “${ev.board?.name ?? ''}”`;
      case 'board_member_changed': {
        const role = ev.board_member?.role;
        const whom = ev.board_member?.user_id === ev.actor?.id ? 'themselves' : this.personName(ev.board_member?.user_id);
        return role ? `made ${whom} ${role === 'admin' ? 'an admin' : `a ${role}`} of the board` : `took ${whom} off the board`;
      }
      case 'column_created':
        return `added the column “${ev.column?.name ?? ''}”`;
      case 'column_updated': {
        const what = Object.keys(changes);
        if (what.includes('name')) return `renamed the column “${changes.name.from}” to “${ev.column?.name ?? ''}”`;
        if (what.length === 1 && what[0] === 'position') return `moved the column “${ev.column?.name ?? ''}”`;
        return `changed the column “${ev.column?.name ?? ''}” (${what.join(', ')})`;
      }
      case 'column_deleted':
        return `deleted the column “${ev.column?.name ?? ''}”`;
      case 'comment_added':
        return `commented on ${this.cardOf(ev)}`;
      case 'comment_edited':
        return `edited a comment on ${this.cardOf(ev)}`;
      case 'comment_deleted':
        return `deleted a comment on ${this.cardOf(ev)}`;
      case 'checklist_changed':
        return `${checklistChange(ev)} on ${this.cardOf(ev)}`;
      case 'webhook_added':
        return `added a webhook to ${hostOf(ev.webhook?.webhook?.url)}`;
      case 'webhook_removed':
        return `removed the webhook to ${hostOf(ev.webhook?.webhook?.url)}`;
      default:
        return String(ev.kind ?? '').replace(/_/g, ' ');
    }
  }

  /** The card a comment's event is about, by its title when it is loaded. */
  cardOf(ev) {
    const title = ev.task?.title ?? this.taskTitle(ev.task_id ?? ev.comment?.task_id);
    return title == null ? 'a card' : `“${String(title)}”`;
  }

  personName(id) {
    return this.people().find((p) => p.id === id)?.name ?? 'someone';
  }

  closed() {
    this.shown.clear();
  }

}

function columnId(task) {
  return task?.column_id ?? FIXED_COLUMNS[task?.status] ?? null;
}

/** The board an event belongs to, as the server files it (`Event::board_id`). */
export function eventBoard(ev) {
  if (ev.task) return ev.task.board_id ?? DEFAULT_BOARD;
  return ev.board?.id ?? ev.column?.board_id ?? ev.board_member?.board_id ?? ev.comment?.board_id ?? null;
}

/** The host a webhook posts to (its URL's path and query may hold a token). */
function hostOf(url) {
  try {
    return new URL(String(url)).host;
  } catch {
    return 'a URL';
  }
}
