// "Archived cards": the archived cards of the board on screen, newest page
// first as the server orders them, each with Restore (for those who may
// write on the board), from GET /api/boards/{id}/tasks?archived=true.
//
// Like the board on a past date (past.js) it is shown instead of the live
// board, which keeps running behind it. Restore is PATCH archived:false
// with If-Match the version listed; the card goes back to its column
// through its event. "Back to the board" (or Escape) returns.

import { errorMessage } from './api.js';
import { ShownView } from './shown-view.js';
import { h, uuid } from './util.js';

const PAGE_SIZE = 50;

export class ArchivedView extends ShownView {
  /** `onShown(shown)`: the live board hides while shown. `board()`: the board on screen; `canWrite()`. */
  constructor({ api, announce, onShown, board, canWrite, columnName }) {
    super('archived', onShown);
    this.api = api;
    this.announce = announce;
    this.board = board;
    this.canWrite = canWrite;
    this.columnName = columnName;
    this.title = document.getElementById('archived-title');
    this.boardId = null;
  }

  async openView() {
    const board = this.board();
    if (!board) return;
    this.boardId = board.id;
    this.cursor = null;
    this.show();
    this.title.textContent = `Archived cards of ${board.name}`;
    this.list.replaceChildren();
    this.more.hidden = true;
    this.title.focus();
    await this.load();
  }

  async load() {
    const boardId = this.boardId;
    const query = new URLSearchParams({ archived: 'true', limit: String(PAGE_SIZE) });
    if (this.cursor) query.set('cursor', this.cursor);
    this.status.textContent = 'Loading…';
    let res;
    try {
      res = await this.api.request('GET', `/api/boards/${encodeURIComponent(boardId)}/tasks?${query}`);
    } catch (err) {
      this.status.textContent = `No node answered: ${err.message}`;
      return;
    }
    if (!this.open || this.boardId !== boardId) return;
    if (!res.ok) {
      this.status.textContent = `The archived cards could not be loaded: ${errorMessage(res)}`;
      return;
    }
    const tasks = Array.isArray(res.body?.tasks) ? res.body.tasks : [];
    this.paged(res.body?.next_cursor, this.title);
    this.list.append(...tasks.map((t) => this.row(t)));
    this.say();
  }

  say(extra = '') {
    const n = this.list.children.length;
    const text = n === 0 ? 'No archived cards.' : `${n} archived card${n === 1 ? '' : 's'}${this.cursor ? ' shown' : ''}.`;
    this.status.textContent = `${text}${extra ? ` ${extra}` : ''}`;
  }

  row(task) {
    const headingId = `archived-${task.id}`;
    const restore = this.canWrite()
      ? h('button', { type: 'button', class: 'button', 'aria-describedby': headingId }, 'Restore')
      : null;
    const li = h(
      'li',
      { class: 'archived-card', dataset: { taskId: task.id } },
      h('span', { class: 'past-card-title', id: headingId }, String(task.title ?? '')),
      h('span', { class: 'past-card-meta' }, this.columnName(task) ?? ''),
      restore,
    );
    restore?.addEventListener('click', () => this.restore(task, li, restore));
    return li;
  }

  async restore(task, li, button) {
    button.disabled = true;
    let res;
    try {
      res = await this.api.request('PATCH', `/api/tasks/${encodeURIComponent(task.id)}`, {
        body: { archived: false },
        ifMatch: task.version,
        idempotencyKey: uuid(),
      });
    } catch (err) {
      button.disabled = false;
      this.say(`Not restored: ${err.message}`);
      return;
    }
    if (!res.ok) {
      button.disabled = false;
      this.say(
        res.status === 412
          ? `“${task.title}” was changed by someone else meanwhile; load the list again to restore it.`
          : `Not restored: ${errorMessage(res)}`,
      );
      return;
    }
    const next = li.nextElementSibling ?? li.previousElementSibling;
    li.remove();
    const where = this.columnName(res.body);
    this.announce(`Restored “${task.title}”${where ? ` to ${where}` : ''}.`);
    this.say(`Restored “${task.title}”.`);
    (next?.querySelector('button') ?? document.getElementById('archived-back')).focus();
  }

}
