// "This board on <date>": the board as it was at a time, read-only, from
// GET /api/tasks?as_of=TIME (the server folds the events up to that time).
//
// It is a view of its own, shown instead of the live board: three lists of
// plain cards with no buttons, no drag, no keyboard moves and no "Add a
// card", so nothing in it can write. The live board keeps running behind
// it (its feed still applies events). The `d` shortcut (or "Board on a
// date…" in the keyboard help) opens the view with focus on its date field;
// "Back to the live board" (or Escape) returns, focus on the board.

import { h } from './util.js';

const COLUMNS = [
  ['todo', 'To do'],
  ['in_progress', 'In progress'],
  ['done', 'Done'],
];

export class PastBoard {
  /** `api`: the page's Api; `onShown(shown)`: the live board hides while shown. */
  constructor({ api, onShown }) {
    this.api = api;
    this.onShown = onShown;
    this.opener = document.getElementById('past-open');
    this.form = document.getElementById('past-form');
    this.input = document.getElementById('past-time');
    this.view = document.getElementById('past');
    this.title = document.getElementById('past-title');
    this.columns = document.getElementById('past-columns');
    this.status = document.getElementById('past-status');
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.show(this.input.value);
    });
    this.opener.addEventListener('click', () => {
      this.opener.closest('dialog')?.close();
      this.openView();
    });
    document.getElementById('past-back').addEventListener('click', () => this.close());
    this.view.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') {
        e.preventDefault();
        this.close();
      }
    });
  }

  get open() {
    return !this.view.hidden;
  }

  /** Shows the view, empty, with focus on its date field. */
  openView() {
    this.reveal();
    this.title.textContent = 'This board on a past date';
    this.columns.replaceChildren();
    this.status.textContent = 'Pick a date and time, then Show.';
    this.input.focus();
  }

  reveal() {
    this.view.hidden = false;
    this.onShown(true);
  }

  /** `value`: a datetime-local value, read in the browser's time zone. */
  async show(value) {
    const when = value ? new Date(value) : null;
    if (!when || Number.isNaN(when.getTime())) {
      this.input.setCustomValidity('Pick a date and time');
      this.input.reportValidity();
      return;
    }
    this.input.setCustomValidity('');
    const asOf = when.toISOString();
    this.reveal();
    this.title.textContent = `This board on ${when.toLocaleString()}`;
    this.columns.replaceChildren();
    this.status.textContent = 'Loading…';
    this.title.focus();
    const res = await this.api.request('GET', `/api/tasks?as_of=${encodeURIComponent(asOf)}`);
    if (!res.ok) {
      this.status.textContent = res.body?.error?.message ?? `The node answered ${res.status}.`;
      return;
    }
    const tasks = Array.isArray(res.body?.tasks) ? res.body.tasks : [];
    this.status.textContent = `${tasks.length} ${tasks.length === 1 ? 'card' : 'cards'}, as of event ${res.body.last_seq}. Read-only.`;
    this.columns.replaceChildren(...COLUMNS.map(([status, name]) => {
      const cards = tasks.filter((t) => t.status === status);
      const heading = `past-col-${status}`;
      return h('section', { class: 'past-column', 'aria-labelledby': heading, dataset: { status } },
        h('h3', { id: heading }, `${name} (${cards.length})`),
        h('ul', { class: 'past-cards' }, cards.map((t) => h('li', { class: 'past-card', dataset: { taskId: t.id } },
          h('span', { class: 'past-card-title' }, String(t.title ?? '')),
          h('span', { class: 'past-card-meta' },
            [t.priority, t.assignee, ...(Array.isArray(t.labels) ? t.labels : [])]
              .filter((x) => x != null && x !== '').map(String).join(' · '))))));
    }));
  }

  close() {
    if (!this.open) return;
    this.view.hidden = true;
    this.columns.replaceChildren();
    this.onShown(false);
    document.getElementById('board').focus();
  }
}
