// The three columns and their cards: rendering, creating, moving, deleting
// with undo. Moving with the pointer is drag.js, with the keyboard (and
// going from card to card) keyboard.js.
//
// What is drawn is the committed state (the store, fed by the server's
// events) plus two short-lived overlays of this page's own unfinished
// actions: a card being moved shows at its new place until the event of the
// move arrives (or the move fails and it goes back), and a card being
// deleted is hidden for the few seconds in which the deletion can be undone.
// Neither can add a card, so nothing is ever shown twice.

import { errorMessage } from './api.js';
import { PointerDrag } from './drag.js';
import { KeyboardNav } from './keyboard.js';
import { boardOrder, positionBetween } from './store.js';
import {
  STATUSES,
  STATUS_NAME,
  PRIORITY_NAME,
  dueState,
  formatDay,
  h,
  hashOf,
  icon,
  initials,
  uuid,
} from './util.js';

const UNDO_MS = 5000;
const FLASH_MS = 1600;

export class Board extends EventTarget {
  constructor({ root, nav, moveHelp, store, api, filters, toasts, announce, openTask }) {
    super();
    this.root = root;
    this.nav = nav;
    this.store = store;
    this.api = api;
    this.filters = filters;
    this.toasts = toasts;
    this.announce = announce;
    this.openTask = openTask;
    /** id → {status, position, token, seq, preview} */
    this.overlay = new Map();
    /** id → {task, timer, toast, seq, sent} */
    this.pendingDeletes = new Map();
    /** id → the newest version this page's own writes produced */
    this.versions = new Map();
    /** id → the promise of the last write queued for that task */
    this.queues = new Map();
    this.cards = new Map();
    this.flashing = new Map();
    this.columns = new Map();
    this.dirty = false;
    this.revealId = null;
    this.build();
    this.pointer = new PointerDrag(this);
    this.keys = new KeyboardNav(this, moveHelp);
    this.markShownColumn(STATUSES[0].id);
    this.root.addEventListener('scroll', () => this.onBoardScroll(), { passive: true });
    window.addEventListener('pagehide', () => this.flushDeletes());
  }

  // ---------------------------------------------------------------- layout

  build() {
    for (const { id, name } of STATUSES) {
      const headingId = `col-${id}-title`;
      const list = h('ol', {
        class: 'cards',
        role: 'list',
        'aria-labelledby': headingId,
        dataset: { status: id },
      });
      // The count as seen ("3/12"), and as heard with the column's name
      // ("To do, 3 of 12 cards shown"), which also names its list.
      const countShown = h('span', { class: 'count', 'aria-hidden': 'true' }, '0');
      const countSaid = h('span', { class: 'visually-hidden' }, ', 0 cards');
      const input = h('input', {
        type: 'text',
        name: 'title',
        class: 'add-title',
        maxlength: '200',
        autocomplete: 'off',
        placeholder: 'Title of the card…',
        'aria-label': `Title of a new card in ${name}`,
      });
      const error = h('p', { class: 'add-error', role: 'alert', hidden: true });
      const form = h(
        'form',
        { class: 'add-form', hidden: true, dataset: { status: id } },
        input,
        error,
        h(
          'div',
          { class: 'add-actions' },
          h('button', { type: 'submit', class: 'button primary' }, 'Add card'),
          h(
            'button',
            { type: 'button', class: 'icon-button add-cancel', 'aria-label': 'Close the new card form' },
            icon('close'),
          ),
        ),
      );
      const opener = h(
        'button',
        { type: 'button', class: 'add-open', 'aria-label': `Add a card to ${name}` },
        icon('plus'),
        'Add a card',
      );
      const column = h(
        'section',
        { class: `column column-${id}`, dataset: { status: id }, 'aria-labelledby': headingId },
        h('header', { class: 'column-head' }, h('h2', { id: headingId }, name, countSaid), countShown),
        list,
        h('div', { class: 'add' }, opener, form),
      );
      // On a phone the board shows one column at a time: these jump to one.
      const jump = h(
        'button',
        { type: 'button', class: 'column-jump', dataset: { status: id } },
        h('span', { class: 'jump-name' }, name),
        ' ',
        h('span', { class: 'jump-count' }, '0'),
      );
      jump.addEventListener('click', () => this.showColumn(id));
      this.nav?.append(jump);
      this.columns.set(id, { column, list, countShown, countSaid, form, input, opener, error, name, jump });
      opener.addEventListener('click', () => this.openAdd(id));
      form.addEventListener('submit', (e) => {
        e.preventDefault();
        this.create(id);
      });
      form.querySelector('.add-cancel').addEventListener('click', () => this.closeAdd(id));
      input.addEventListener('keydown', (e) => {
        if (e.key === 'Escape') {
          e.stopPropagation();
          this.closeAdd(id);
        }
      });
      this.root.append(column);
    }
  }

  openAdd(status = 'todo') {
    const col = this.columns.get(status);
    col.opener.hidden = true;
    col.form.hidden = false;
    this.showColumn(status, { focus: false });
    col.input.focus({ preventScroll: true });
  }

  /** Bring column `status` into view where the board shows one at a time. */
  showColumn(status, { focus = false } = {}) {
    const { column } = this.columns.get(status);
    if (this.root.scrollWidth > this.root.clientWidth) {
      const left = this.root.scrollLeft + column.getBoundingClientRect().left - this.root.getBoundingClientRect().left;
      this.root.scrollTo({ left, behavior: 'smooth' });
    }
    if (focus) this.keys.focusCard(this.keys.stops.get(status));
    this.markShownColumn(status);
  }

  onBoardScroll() {
    const left = this.root.getBoundingClientRect().left;
    let nearest = null;
    for (const [id, { column }] of this.columns) {
      const off = Math.abs(column.getBoundingClientRect().left - left);
      if (!nearest || off < nearest[1]) nearest = [id, off];
    }
    if (nearest) this.markShownColumn(nearest[0]);
  }

  /** Which column the phone's column bar marks as shown. */
  markShownColumn(status) {
    for (const [id, col] of this.columns) {
      if (id === status) col.jump.setAttribute('aria-current', 'true');
      else col.jump.removeAttribute('aria-current');
    }
  }

  closeAdd(status) {
    const col = this.columns.get(status);
    col.form.hidden = true;
    col.opener.hidden = false;
    col.error.hidden = true;
    col.input.value = '';
    col.opener.focus();
  }

  // ---------------------------------------------------------------- render

  /** The task as this page shows it: the committed one, moved by an overlay. */
  shown(task) {
    const ov = this.overlay.get(task.id);
    return ov ? { ...task, status: ov.status, position: ov.position } : task;
  }

  render() {
    if (this.drag) {
      this.dirty = true; // redraw once the card is dropped
      return;
    }
    this.dirty = false;
    const focused = document.activeElement?.closest?.('.card')?.dataset.taskId ?? null;
    const byStatus = new Map(STATUSES.map((s) => [s.id, { all: 0, shown: [] }]));
    for (const committed of this.store.tasks.values()) {
      if (this.pendingDeletes.has(committed.id)) continue;
      const task = this.shown(committed);
      const col = byStatus.get(task.status);
      if (!col) continue;
      col.all++;
      if (this.filters.matches(task)) col.shown.push(task);
    }
    const alive = new Set();
    for (const [status, { all, shown }] of byStatus) {
      shown.sort(boardOrder);
      const { list } = this.columns.get(status);
      let cursor = list.firstElementChild;
      for (const task of shown) {
        alive.add(task.id);
        const el = this.card(task);
        if (el === cursor) {
          cursor = cursor.nextElementSibling;
        } else {
          list.insertBefore(el, cursor);
        }
      }
      while (cursor) {
        const next = cursor.nextElementSibling;
        cursor.remove();
        cursor = next;
      }
      const col = this.columns.get(status);
      const text = this.filters.active() ? `${shown.length}/${all}` : String(all);
      const said = this.filters.active() ? `, ${shown.length} of ${all} cards shown` : `, ${all} card${all === 1 ? '' : 's'}`;
      if (col.countShown.textContent !== text) col.countShown.textContent = text;
      if (col.countSaid.textContent !== said) col.countSaid.textContent = said;
      col.jump.querySelector('.jump-count').textContent = text;
      list.classList.toggle('empty', shown.length === 0);
    }
    for (const id of this.cards.keys()) {
      if (!alive.has(id)) this.cards.delete(id);
    }
    this.keys.updateTabStops();
    // Moving an element in the DOM takes the focus away: give it back.
    if (focused && document.activeElement === document.body) {
      const el = this.cards.get(focused);
      if (el) el.focus({ preventScroll: true });
    }
    if (this.revealId && this.cards.has(this.revealId)) {
      this.cards.get(this.revealId).scrollIntoView({ block: 'nearest' });
      this.revealId = null;
    }
  }

  /** The card element for `task`, reused across renders, redrawn when it changed. */
  card(task) {
    let el = this.cards.get(task.id);
    const ov = this.overlay.get(task.id);
    const sig = JSON.stringify([
      task.version,
      task.status,
      task.title,
      task.priority,
      task.assignee,
      task.labels,
      task.due_date,
      Boolean(task.description),
      dueState(task),
      ov ? (ov.preview ? 'preview' : 'pending') : '',
      this.moving?.id === task.id,
    ]);
    if (!el) {
      el = h('li', {
        class: 'card',
        tabindex: '-1',
        'aria-roledescription': 'card',
        'aria-describedby': 'card-help',
        dataset: { taskId: task.id },
      });
      this.cards.set(task.id, el);
    }
    if (el.dataset.sig === sig) return el;
    el.dataset.sig = sig;
    el.dataset.status = task.status;
    el.dataset.version = String(task.version);
    el.dataset.priority = task.priority;
    el.classList.toggle('pending', Boolean(ov && !ov.preview));
    el.classList.toggle('moving', this.moving?.id === task.id);

    const due = dueState(task);
    const parts = [];
    if (task.labels.length) {
      parts.push(
        h(
          'ul',
          { class: 'labels', 'aria-label': 'Labels' },
          task.labels.map((l) => h('li', { class: `label lc${hashOf(l) % 8}` }, l)),
        ),
      );
    }
    parts.push(h('p', { class: 'card-title' }, task.title));
    const meta = h('div', { class: 'card-meta' });
    meta.append(h('span', { class: `prio prio-${task.priority}` }, PRIORITY_NAME[task.priority]));
    if (task.due_date) {
      const dueText = formatDay(task.due_date);
      meta.append(
        h(
          'span',
          {
            class: `due due-${due}`,
            title: `Due ${task.due_date}${due === 'overdue' ? ' (overdue)' : ''}`,
          },
          icon('calendar'),
          due === 'overdue' ? `Overdue · ${dueText}` : dueText,
        ),
      );
    }
    if (task.description) {
      meta.append(h('span', { class: 'has-desc', title: 'Has a description' }, icon('text')));
    }
    if (task.assignee) {
      meta.append(
        h(
          'span',
          { class: `avatar ac${hashOf(task.assignee) % 8}`, title: `Assigned to ${task.assignee}` },
          initials(task.assignee),
        ),
      );
    }
    parts.push(meta);
    el.replaceChildren(...parts);

    const label = [
      task.title,
      `${PRIORITY_NAME[task.priority]} priority`,
      task.assignee ? `assigned to ${task.assignee}` : 'unassigned',
      task.due_date ? `due ${task.due_date}${due === 'overdue' ? ', overdue' : ''}` : null,
      task.labels.length ? `labels ${task.labels.join(', ')}` : null,
      ov && !ov.preview ? 'saving' : null,
    ]
      .filter(Boolean)
      .join('; ');
    el.setAttribute('aria-label', label);
    return el;
  }

  /** Briefly highlight the cards that events just changed. */
  flash(ids) {
    for (const id of ids) {
      const el = this.cards.get(id);
      if (!el) continue;
      el.classList.remove('flash');
      void el.offsetWidth; // restart the animation
      el.classList.add('flash');
      clearTimeout(this.flashing.get(id));
      this.flashing.set(
        id,
        setTimeout(() => {
          el.classList.remove('flash');
          this.flashing.delete(id);
        }, FLASH_MS),
      );
    }
  }

  /** After the store moved forward: drop overlays that the events now cover. */
  settle() {
    const seq = this.store.lastSeq;
    for (const [id, ov] of this.overlay) {
      if (ov.seq != null && seq >= ov.seq) this.overlay.delete(id);
      else if (!this.store.get(id) && !ov.preview && ov.seq != null) this.overlay.delete(id);
    }
    for (const [id, entry] of this.pendingDeletes) {
      if (!entry.sent) continue;
      if (!this.store.get(id) || (entry.seq != null && seq >= entry.seq)) this.pendingDeletes.delete(id);
    }
    if (this.moving && !this.store.get(this.moving.id)) this.keys.forget();
  }

  // ---------------------------------------------------------------- writes

  /** Run `fn` after every earlier write to the same task has finished. */
  enqueue(id, fn) {
    const before = this.queues.get(id) ?? Promise.resolve();
    const run = before.catch(() => {}).then(fn);
    this.queues.set(id, run);
    run
      .finally(() => {
        if (this.queues.get(id) === run) this.queues.delete(id);
      })
      .catch(() => {});
    return run;
  }

  noteVersion(task) {
    if (!task?.id) return;
    this.versions.set(task.id, Math.max(task.version, this.versions.get(task.id) ?? 0));
  }

  /** The newest version of a task this page knows: committed, or its own write's. */
  versionOf(id) {
    return Math.max(this.store.get(id)?.version ?? 0, this.versions.get(id) ?? 0);
  }

  async create(status) {
    const col = this.columns.get(status);
    const title = col.input.value.trim();
    col.error.hidden = true;
    if (!title) {
      col.error.textContent = 'A card needs a title.';
      col.error.hidden = false;
      col.input.focus();
      return;
    }
    const button = col.form.querySelector('button[type=submit]');
    button.disabled = true;
    col.input.value = '';
    const key = uuid();
    try {
      const res = await this.api.request('POST', '/api/tasks', {
        body: { title, status },
        idempotencyKey: key,
      });
      if (res.ok) {
        this.noteVersion(res.body);
        this.revealId = res.body.id;
        if (this.store.get(res.body.id)) this.render();
        this.announce(`Added “${title}” to ${col.name}.`);
        if (!this.filters.matches(res.body)) {
          this.toasts.show(`Added “${title}”: the current filter hides it.`);
        }
      } else {
        if (!col.input.value) col.input.value = title;
        col.error.textContent = errorMessage(res);
        col.error.hidden = false;
      }
    } catch (err) {
      if (!col.input.value) col.input.value = title;
      col.error.textContent = `Not saved: ${err.message}`;
      col.error.hidden = false;
    } finally {
      button.disabled = false;
      if (!col.form.hidden) col.input.focus();
    }
  }

  /** Visible neighbours → the position between the real neighbours. */
  positionFor(id, status, prevId, nextId) {
    const column = [];
    for (const t of this.store.tasks.values()) {
      if (t.id === id || this.pendingDeletes.has(t.id)) continue;
      const s = this.shown(t);
      if (s.status === status) column.push(s);
    }
    column.sort(boardOrder);
    let prev;
    let next;
    const iPrev = prevId ? column.findIndex((t) => t.id === prevId) : -1;
    const iNext = nextId ? column.findIndex((t) => t.id === nextId) : -1;
    if (iPrev >= 0) {
      prev = column[iPrev];
      next = column[iPrev + 1];
    } else if (iNext >= 0) {
      next = column[iNext];
      prev = column[iNext - 1];
    } else {
      prev = column[column.length - 1];
    }
    return positionBetween(prev, next);
  }

  /**
   * Move a card next to the visible neighbours prevId / nextId of column
   * `status` and save it. `base` is the committed task the move started from.
   */
  move(id, status, prevId, nextId) {
    const task = this.store.get(id);
    if (!task) return;
    const from = this.shown(task);
    const position = this.positionFor(id, status, prevId, nextId);
    if (from.status === status && this.sameSlot(id, status, prevId, nextId)) {
      return; // dropped where it was
    }
    this.commitMove(id, status, position, task);
  }

  /** Is (prevId, nextId) where the card already is? */
  sameSlot(id, status, prevId, nextId) {
    const list = [...this.columns.get(status).list.children]
      .filter((el) => el.classList.contains('card'))
      .map((el) => el.dataset.taskId);
    const at = list.indexOf(id);
    if (at < 0) return false;
    return (list[at - 1] ?? null) === (prevId ?? null) && (list[at + 1] ?? null) === (nextId ?? null);
  }

  commitMove(id, status, position, base) {
    const token = uuid();
    this.overlay.set(id, { status, position, token, seq: null, preview: false });
    this.render();
    this.announce(`Moved “${base.title}” to ${STATUS_NAME[status]}.`);
    return this.enqueue(id, async () => {
      let version = this.versionOf(id);
      for (let attempt = 0; attempt < 3; attempt++) {
        let res;
        try {
          res = await this.api.request('PATCH', `/api/tasks/${encodeURIComponent(id)}`, {
            body: { status, position },
            ifMatch: version,
            idempotencyKey: uuid(),
          });
        } catch (err) {
          this.dropOverlay(id, token);
          this.toasts.show(`Moving “${base.title}” may not have been saved: ${err.message}`, { kind: 'error' });
          return;
        }
        if (res.ok) {
          this.noteVersion(res.body);
          const ov = this.overlay.get(id);
          if (ov?.token === token) {
            ov.seq = res.seq ?? this.store.lastSeq;
            this.settle();
            this.render();
          }
          return;
        }
        if (res.status === 412) {
          const current = res.body?.error?.current;
          // Someone else changed the card meanwhile. If they did not move it,
          // our move still means what the person meant: apply it on top.
          if (current && current.status === base.status && current.position === base.position) {
            version = current.version;
            continue;
          }
          this.dropOverlay(id, token);
          this.toasts.show(`“${base.title}” was moved by someone else meanwhile; your move was not applied.`, {
            kind: 'error',
            timeout: 7000,
          });
          return;
        }
        this.dropOverlay(id, token);
        this.toasts.show(
          res.status === 404
            ? `“${base.title}” was deleted by someone else.`
            : `Could not move “${base.title}”: ${errorMessage(res)}`,
          { kind: 'error', timeout: 7000 },
        );
        return;
      }
      this.dropOverlay(id, token);
    });
  }

  dropOverlay(id, token) {
    if (this.overlay.get(id)?.token === token) {
      this.overlay.delete(id);
      this.render();
    }
  }

  /** Delete after UNDO_MS unless undone; the card hides at once. */
  requestDelete(id) {
    const task = this.store.get(id);
    if (!task || this.pendingDeletes.has(id)) return;
    const focusNext = this.neighbourCard(id);
    const entry = { task, timer: null, toast: null, seq: null, sent: false, key: uuid() };
    entry.timer = setTimeout(() => this.sendDelete(id), UNDO_MS);
    entry.toast = this.toasts.show(`Deleted “${task.title}”`, {
      action: 'Undo',
      onAction: () => this.undoDelete(id),
      timeout: UNDO_MS,
    });
    this.pendingDeletes.set(id, entry);
    this.render();
    this.announce(`Deleted “${task.title}”. Undo is available for 5 seconds.`);
    if (focusNext && document.activeElement === document.body) focusNext.focus();
  }

  undoDelete(id) {
    const entry = this.pendingDeletes.get(id);
    if (!entry || entry.sent) return;
    clearTimeout(entry.timer);
    this.pendingDeletes.delete(id);
    this.render();
    this.cards.get(id)?.focus();
    this.announce(`Restored “${entry.task.title}”.`);
  }

  /** Undo the most recent deletion that is still waiting (Ctrl+Z). */
  undoLast() {
    const waiting = [...this.pendingDeletes].filter(([, e]) => !e.sent);
    if (waiting.length === 0) return false;
    const [id, entry] = waiting.at(-1);
    entry.toast?.close();
    this.undoDelete(id);
    return true;
  }

  sendDelete(id) {
    const entry = this.pendingDeletes.get(id);
    if (!entry || entry.sent) return Promise.resolve();
    entry.sent = true;
    return this.enqueue(id, async () => {
      // The version the person saw when deleting, or what this page wrote since.
      const version = Math.max(entry.task.version, this.versions.get(id) ?? 0);
      let res;
      try {
        res = await this.api.request('DELETE', `/api/tasks/${encodeURIComponent(id)}`, {
          ifMatch: version,
          idempotencyKey: entry.key,
        });
      } catch (err) {
        this.pendingDeletes.delete(id);
        this.render();
        this.toasts.show(`Deleting “${entry.task.title}” may not have been saved: ${err.message}`, {
          kind: 'error',
        });
        return;
      }
      if (res.status === 204 || res.status === 404) {
        entry.seq = res.seq;
        this.settle();
        this.render();
        return;
      }
      this.pendingDeletes.delete(id);
      this.render();
      this.toasts.show(
        res.status === 412
          ? `“${entry.task.title}” was changed by someone else meanwhile, so it was not deleted.`
          : `Could not delete “${entry.task.title}”: ${errorMessage(res)}`,
        { kind: 'error', timeout: 7000 },
      );
    });
  }

  /** The page is going away: send the deletions that are waiting for their undo time. */
  flushDeletes() {
    for (const [id, entry] of this.pendingDeletes) {
      if (entry.sent) continue;
      clearTimeout(entry.timer);
      entry.sent = true;
      fetch(`${this.api.current}/api/tasks/${encodeURIComponent(id)}`, {
        method: 'DELETE',
        keepalive: true,
        headers: {
          'If-Match': `"${Math.max(entry.task.version, this.versions.get(id) ?? 0)}"`,
          'Idempotency-Key': entry.key,
        },
      }).catch(() => {});
    }
  }

  // ---------------------------------------------------------------- pointer and keyboard

  /** A card carried by the pointer (drag.js). */
  get drag() {
    return this.pointer.active;
  }

  /** A card moved with the keyboard (keyboard.js). */
  get moving() {
    return this.keys.moving;
  }

  /** Focus the first card on the board (the `b` shortcut). */
  focusFirst() {
    return this.keys.focusFirst();
  }

  neighbourCard(id) {
    const el = this.cards.get(id);
    if (!el) return null;
    let n = el.nextElementSibling;
    while (n && !n.classList.contains('card')) n = n.nextElementSibling;
    if (n) return n;
    let p = el.previousElementSibling;
    while (p && !p.classList.contains('card')) p = p.previousElementSibling;
    return p;
  }
}
