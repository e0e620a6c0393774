// The three columns and their cards: rendering, creating, moving (pointer
// drag and drop, or the keyboard), deleting with undo.
//
// What is drawn is the committed state (the store, fed by the server's
// events) plus two short-lived overlays of this page's own unfinished
// actions: a card being moved shows at its new place until the event of the
// move arrives (or the move fails and it goes back), and a card being
// deleted is hidden for the few seconds in which the deletion can be undone.
// Neither can add a card, so nothing is ever shown twice.

import { errorMessage } from './api.js';
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
  isTyping,
  uuid,
} from './util.js';

const UNDO_MS = 5000;
const FLASH_MS = 1600;

export class Board extends EventTarget {
  constructor({ root, store, api, filters, toasts, announce, openTask }) {
    super();
    this.root = root;
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
    this.moving = null; // keyboard move in progress
    this.drag = null; // pointer drag in progress
    this.press = null;
    this.dirty = false;
    this.justDragged = false;
    this.revealId = null;
    this.build();
    this.bindPointer();
    this.bindKeyboard();
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
      const count = h('span', { class: 'count', 'aria-label': '0 cards' }, '0');
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
        h('header', { class: 'column-head' }, h('h2', { id: headingId }, name), count),
        list,
        h('div', { class: 'add' }, opener, form),
      );
      this.columns.set(id, { column, list, count, form, input, opener, error, name });
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
    col.input.focus();
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
      const { list, count } = this.columns.get(status);
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
      const text = this.filters.active() ? `${shown.length}/${all}` : String(all);
      count.textContent = text;
      count.setAttribute(
        'aria-label',
        this.filters.active() ? `${shown.length} of ${all} cards shown` : `${all} card${all === 1 ? '' : 's'}`,
      );
      list.classList.toggle('empty', shown.length === 0);
    }
    for (const id of this.cards.keys()) {
      if (!alive.has(id)) this.cards.delete(id);
    }
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
        tabindex: '0',
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
    if (this.moving && !this.store.get(this.moving.id)) this.moving = null;
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

  // ---------------------------------------------------------------- pointer drag and drop

  bindPointer() {
    this.root.addEventListener('pointerdown', (e) => {
      const card = e.target.closest('.card');
      if (!card || e.button !== 0 || this.drag || this.moving) return;
      if (e.target.closest('button, a, input, textarea, select')) return;
      this.press = {
        card,
        id: card.dataset.taskId,
        x: e.clientX,
        y: e.clientY,
        pointerId: e.pointerId,
        touch: e.pointerType === 'touch',
        timer: null,
      };
      if (this.press.touch) {
        // On touch, a long press picks the card up; a swipe scrolls.
        const press = this.press;
        press.timer = setTimeout(() => {
          if (this.press === press) this.startDrag(press, press.x, press.y);
        }, 350);
      }
    });
    window.addEventListener('pointermove', (e) => {
      const press = this.press;
      if (this.drag) {
        if (e.pointerId === this.drag.pointerId) this.dragMove(e.clientX, e.clientY);
        return;
      }
      if (!press || e.pointerId !== press.pointerId) return;
      const distance = Math.hypot(e.clientX - press.x, e.clientY - press.y);
      if (press.touch) {
        if (distance > 10) this.cancelPress();
      } else if (distance > 5) {
        this.startDrag(press, e.clientX, e.clientY);
      }
    });
    window.addEventListener('pointerup', (e) => {
      if (this.drag && e.pointerId === this.drag.pointerId) this.drop();
      this.cancelPress();
    });
    window.addEventListener('pointercancel', () => {
      if (this.drag) this.endDrag(false);
      this.cancelPress();
    });
    document.addEventListener(
      'touchmove',
      (e) => {
        if (this.drag) e.preventDefault(); // no scrolling while a card is carried
      },
      { passive: false },
    );
    this.root.addEventListener(
      'click',
      (e) => {
        if (this.justDragged) {
          e.stopPropagation();
          e.preventDefault();
        }
      },
      true,
    );
    this.root.addEventListener('click', (e) => {
      const card = e.target.closest('.card');
      if (card && !e.target.closest('a, button')) this.openTask(card.dataset.taskId);
    });
  }

  cancelPress() {
    if (this.press?.timer) clearTimeout(this.press.timer);
    this.press = null;
  }

  startDrag(press, x, y) {
    const { card } = press;
    if (!card.isConnected) return;
    this.cancelPress();
    const rect = card.getBoundingClientRect();
    const ghost = card.cloneNode(true);
    ghost.removeAttribute('data-task-id');
    ghost.removeAttribute('tabindex');
    ghost.removeAttribute('aria-describedby');
    ghost.setAttribute('aria-hidden', 'true');
    ghost.classList.add('drag-ghost');
    ghost.style.width = `${rect.width}px`;
    ghost.style.height = `${rect.height}px`;
    const placeholder = h('li', { class: 'drop-placeholder', 'aria-hidden': 'true' });
    placeholder.style.height = `${rect.height}px`;
    card.after(placeholder);
    card.classList.add('is-dragging');
    document.body.append(ghost);
    document.body.classList.add('is-dragging-card');
    this.drag = {
      id: press.id,
      card,
      ghost,
      placeholder,
      pointerId: press.pointerId,
      dx: x - rect.left,
      dy: y - rect.top,
    };
    this.dragMove(x, y);
  }

  dragMove(x, y) {
    const d = this.drag;
    d.ghost.style.transform = `translate(${x - d.dx}px, ${y - d.dy}px) rotate(2deg)`;
    const under = document.elementFromPoint(x, y);
    const column = under?.closest?.('.column');
    if (column) {
      const list = column.querySelector('.cards');
      const cards = [...list.children].filter((el) => el.classList.contains('card') && el !== d.card);
      const before = cards.find((el) => {
        const r = el.getBoundingClientRect();
        return y < r.top + r.height / 2;
      });
      if (before) {
        if (d.placeholder.nextElementSibling !== before) list.insertBefore(d.placeholder, before);
      } else if (list.lastElementChild !== d.placeholder) {
        list.append(d.placeholder);
      }
      for (const c of this.columns.values()) c.column.classList.toggle('drop-target', c.column === column);
    }
    // Scroll the page when the card is carried near its top or bottom edge.
    const edge = 48;
    if (y < edge) window.scrollBy(0, -12);
    else if (y > window.innerHeight - edge) window.scrollBy(0, 12);
  }

  drop() {
    const d = this.drag;
    const list = d.placeholder.parentElement;
    const status = list?.dataset.status;
    const isCard = (el) => el && el.classList.contains('card') && el !== d.card;
    let prev = d.placeholder.previousElementSibling;
    while (prev && !isCard(prev)) prev = prev.previousElementSibling;
    let next = d.placeholder.nextElementSibling;
    while (next && !isCard(next)) next = next.nextElementSibling;
    this.endDrag(true);
    if (status) this.move(d.id, status, prev?.dataset.taskId ?? null, next?.dataset.taskId ?? null);
  }

  endDrag(dropped) {
    const d = this.drag;
    if (!d) return;
    d.ghost.remove();
    d.placeholder.remove();
    d.card.classList.remove('is-dragging');
    document.body.classList.remove('is-dragging-card');
    for (const c of this.columns.values()) c.column.classList.remove('drop-target');
    this.drag = null;
    this.justDragged = true;
    setTimeout(() => {
      this.justDragged = false;
    }, 0);
    if (this.dirty || !dropped) this.render();
  }

  // ---------------------------------------------------------------- keyboard

  bindKeyboard() {
    this.root.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && this.drag) {
        e.preventDefault();
        this.endDrag(false);
        return;
      }
      const card = e.target.closest?.('.card');
      if (!card || isTyping(e.target) || e.ctrlKey || e.metaKey || e.altKey) return;
      const id = card.dataset.taskId;
      if (this.moving) {
        if (this.moving.id !== id) return;
        this.moveKey(e);
        return;
      }
      switch (e.key) {
        case 'Enter':
        case ' ':
        case 'e':
          e.preventDefault();
          this.openTask(id);
          break;
        case 'm':
          e.preventDefault();
          this.startKeyboardMove(id);
          break;
        case 'ArrowUp':
        case 'k':
          e.preventDefault();
          this.focusSibling(card, -1);
          break;
        case 'ArrowDown':
        case 'j':
          e.preventDefault();
          this.focusSibling(card, 1);
          break;
        case 'ArrowLeft':
        case 'h':
          e.preventDefault();
          this.focusColumn(card, -1);
          break;
        case 'ArrowRight':
        case 'l':
          e.preventDefault();
          this.focusColumn(card, 1);
          break;
        case 'Delete':
          e.preventDefault();
          this.requestDelete(id);
          break;
        default:
          break;
      }
    });
    document.addEventListener('focusin', (e) => {
      // Focus went elsewhere while a card was being moved: cancel the move.
      if (this.moving && !e.target.closest?.(`.card[data-task-id="${CSS.escape(this.moving.id)}"]`)) {
        this.cancelKeyboardMove();
      }
    });
  }

  visibleIds(status) {
    return [...this.columns.get(status).list.children]
      .filter((el) => el.classList.contains('card'))
      .map((el) => el.dataset.taskId);
  }

  focusSibling(card, delta) {
    const ids = this.visibleIds(card.dataset.status);
    const at = ids.indexOf(card.dataset.taskId);
    const id = ids[at + delta];
    if (id) this.cards.get(id)?.focus();
  }

  focusColumn(card, delta) {
    const order = STATUSES.map((s) => s.id);
    let c = order.indexOf(card.dataset.status);
    const at = this.visibleIds(card.dataset.status).indexOf(card.dataset.taskId);
    for (c += delta; c >= 0 && c < order.length; c += delta) {
      const ids = this.visibleIds(order[c]);
      if (ids.length) {
        this.cards.get(ids[Math.min(at, ids.length - 1)])?.focus();
        return;
      }
    }
  }

  startKeyboardMove(id) {
    const task = this.store.get(id);
    if (!task || this.overlay.get(id)?.seq === null) {
      if (task) this.announce('That card is still being saved; try again in a moment.');
      return;
    }
    const shown = this.shown(task);
    this.moving = { id, base: task, startStatus: shown.status, startPosition: shown.position };
    this.overlay.set(id, { status: shown.status, position: shown.position, token: 'preview', seq: null, preview: true });
    this.render();
    this.cards.get(id)?.focus();
    this.announce(
      `Moving “${task.title}”. Arrow keys move it between columns and up or down. Enter drops it, Escape cancels.`,
    );
  }

  moveKey(e) {
    const mv = this.moving;
    const ov = this.overlay.get(mv.id);
    const status = ov.status;
    const order = STATUSES.map((s) => s.id);
    const ids = this.visibleIds(status);
    const at = ids.indexOf(mv.id);
    const others = ids.filter((x) => x !== mv.id);
    let target = null;
    switch (e.key) {
      case 'ArrowUp':
      case 'k':
        if (at > 0) target = { status, index: at - 1 };
        break;
      case 'ArrowDown':
      case 'j':
        if (at < ids.length - 1) target = { status, index: at + 1 };
        break;
      case 'ArrowLeft':
      case 'h':
      case 'ArrowRight':
      case 'l': {
        const delta = e.key === 'ArrowLeft' || e.key === 'h' ? -1 : 1;
        const c = order.indexOf(status) + delta;
        if (c >= 0 && c < order.length) {
          const len = this.visibleIds(order[c]).length;
          target = { status: order[c], index: Math.min(Math.max(at, 0), len) };
        }
        break;
      }
      case 'Enter':
      case ' ':
      case 'm':
        e.preventDefault();
        this.finishKeyboardMove();
        return;
      case 'Escape':
        e.preventDefault();
        e.stopPropagation();
        this.cancelKeyboardMove(true);
        return;
      case 'Tab':
        this.cancelKeyboardMove();
        return;
      default:
        return;
    }
    e.preventDefault();
    if (!target) return;
    const list = target.status === status ? others : this.visibleIds(target.status);
    const prevId = list[target.index - 1] ?? null;
    const nextId = list[target.index] ?? null;
    const position = this.positionFor(mv.id, target.status, prevId, nextId);
    ov.status = target.status;
    ov.position = position;
    this.render();
    this.cards.get(mv.id)?.focus();
    const now = this.visibleIds(target.status);
    this.announce(
      `${STATUS_NAME[target.status]}, position ${now.indexOf(mv.id) + 1} of ${now.length}.`,
    );
  }

  finishKeyboardMove() {
    const mv = this.moving;
    this.moving = null;
    const ov = this.overlay.get(mv.id);
    this.overlay.delete(mv.id);
    if (!ov || (ov.status === mv.startStatus && ov.position === mv.startPosition)) {
      this.render();
      this.cards.get(mv.id)?.focus();
      this.announce('Move cancelled: the card is where it was.');
      return;
    }
    this.commitMove(mv.id, ov.status, ov.position, mv.base);
    this.cards.get(mv.id)?.focus();
  }

  cancelKeyboardMove(refocus = false) {
    const mv = this.moving;
    if (!mv) return;
    this.moving = null;
    if (this.overlay.get(mv.id)?.preview) this.overlay.delete(mv.id);
    this.render();
    if (refocus) this.cards.get(mv.id)?.focus();
    this.announce('Move cancelled.');
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

  /** Focus the first card on the board (for the keyboard). */
  focusFirst() {
    for (const { id } of STATUSES) {
      const ids = this.visibleIds(id);
      if (ids.length) {
        this.cards.get(ids[0]).focus();
        return true;
      }
    }
    return false;
  }
}
