// The card dialog: every field, the Markdown description, the history, and
// what happens when someone else saved the card first.
//
// The form is based on one version of the task. Saving sends only the fields
// the person changed, with If-Match: that version. A 412 means someone else
// saved in between: the dialog shows their version next to the person's
// changes and lets them save theirs over it (only the fields they changed)
// or drop theirs. Nothing is overwritten without the person seeing it.
// Ticking a task-list box in the description saves at once, the same way
// (If-Match), unless other edits are waiting for Save: then it joins them.
//
// The card moves to another column with the Column field, to another board
// with "Move to board…" (PATCH board_id, If-Match: it lands in the column
// with the same key there, else the first); Archive takes it off the board
// with undo (Delete too, for board admins).
//
// A save that waits says why (the page's node not answering, no majority).
// On a touch screen the dialog opens to read, not to type: nothing takes the
// focus that would raise the keyboard.

import { errorMessage } from './api.js';
import { FIELD_NAME, historyItem, show } from './history.js';
import { renderMarkdown, toggleTaskItem } from './markdown.js';
import { placeFields } from './place.js';
import {
  PRIORITIES,
  PRIORITY_NAME,
  formatTime,
  h,
  parseLabels,
  relativeTime,
  uuid,
} from './util.js';

const FIELDS = ['title', 'column_id', 'priority', 'assignee', 'due_date', 'labels', 'description'];
/** A save slower than this says that it waits, and why. */
const WAITING_AFTER_MS = 600;

export class TaskDialog {
  constructor({ dialog, store, api, board, boards, toasts, announce, waitReason }) {
    this.dialog = dialog;
    this.waitReason = waitReason;
    this.waitingTimer = null;
    this.waitingSince = 0;
    this.store = store;
    this.api = api;
    this.board = board;
    this.boards = boards;
    this.toasts = toasts;
    this.announce = announce;
    this.id = null;
    this.base = null;
    this.conflict = null;
    this.saving = false;
    this.historyTimer = null;
    /** The card's comments (`comments.js`), set by the page. */
    this.comments = null;
    /** The card's checklists (`checklists.js`), set by the page. */
    this.checklists = null;
    const $ = (sel) => dialog.querySelector(sel);
    this.el = {
      form: $('#task-form'),
      title: $('#task-title'),
      status: $('#task-status'),
      priority: $('#task-priority'),
      assignee: $('#task-assignee'),
      due: $('#task-due'),
      labels: $('#task-labels'),
      description: $('#task-description'),
      preview: $('#desc-preview'),
      write: $('#desc-write'),
      tabPreview: $('#desc-tab-preview'),
      tabWrite: $('#desc-tab-write'),
      meta: $('#task-meta'),
      heading: $('#task-dialog-heading'),
      saving: $('#task-saving'),
      notice: $('#task-notice'),
      error: $('#task-error'),
      conflict: $('#task-conflict'),
      conflictText: $('#conflict-text'),
      conflictRows: $('#conflict-rows'),
      conflictMine: $('#conflict-mine'),
      conflictTheirs: $('#conflict-theirs'),
      discard: $('#task-discard'),
      save: $('#task-save'),
      del: $('#task-delete'),
      archive: $('#task-archive'),
      moveOpen: $('#task-move-open'),
      moveRow: $('#task-move'),
      moveBoard: $('#task-board'),
      moveGo: $('#task-move-go'),
      history: $('#history-list'),
    };
    this.el.priority.replaceChildren(...PRIORITIES.map((p) => h('option', { value: p }, PRIORITY_NAME[p])));

    this.el.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.save();
    });
    this.el.form.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        this.save();
      }
    });
    // The title wraps (a long one is read whole) but stays one line of text:
    // Enter saves, as in a text field, and pasted line breaks become spaces.
    this.el.title.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.ctrlKey && !e.metaKey && !e.isComposing) {
        e.preventDefault();
        this.save();
      }
    });
    this.el.title.addEventListener('input', () => {
      if (/[\r\n]/.test(this.el.title.value)) this.el.title.value = this.el.title.value.replace(/\s*[\r\n]+\s*/g, ' ');
      this.fitTitle();
    });
    window.addEventListener('resize', () => this.fitTitle());
    $('#task-cancel').addEventListener('click', () => this.requestClose());
    $('#task-close').addEventListener('click', () => this.requestClose());
    dialog.addEventListener('cancel', (e) => {
      // Escape: never throw away typed changes without asking.
      e.preventDefault();
      this.requestClose();
    });
    dialog.addEventListener('click', (e) => {
      if (e.target === dialog) this.requestClose(); // the backdrop
    });
    dialog.addEventListener('close', () => this.closed());
    $('#discard-yes').addEventListener('click', () => this.close());
    $('#discard-no').addEventListener('click', () => {
      this.el.discard.hidden = true;
      this.el.title.focus();
    });
    this.el.del.addEventListener('click', () => {
      const id = this.id;
      this.close();
      this.board.requestDelete(id);
    });
    this.el.archive.addEventListener('click', () => {
      const id = this.id;
      this.close();
      this.board.requestArchive(id);
    });
    this.el.moveOpen.addEventListener('click', () => this.offerBoards());
    this.el.moveGo.addEventListener('click', () => this.moveToBoard());
    this.el.tabPreview.addEventListener('click', () => this.showTab('preview'));
    this.el.tabWrite.addEventListener('click', () => {
      this.showTab('write');
      this.el.description.focus();
    });
    // One Tab stop for the two tabs; the arrow keys choose between them.
    for (const tab of [this.el.tabPreview, this.el.tabWrite]) {
      tab.addEventListener('keydown', (e) => {
        if (!['ArrowLeft', 'ArrowRight', 'Home', 'End'].includes(e.key)) return;
        e.preventDefault();
        const next = tab === this.el.tabPreview ? 'write' : 'preview';
        const to = e.key === 'Home' ? 'preview' : e.key === 'End' ? 'write' : next;
        this.showTab(to);
        (to === 'preview' ? this.el.tabPreview : this.el.tabWrite).focus();
      });
    }
    this.el.preview.addEventListener('change', (e) => {
      const box = e.target.closest?.('input[type="checkbox"][data-line]');
      if (box) this.tick(box);
    });
    this.el.description.addEventListener('input', () => this.renderPreview());
    this.el.conflictMine.addEventListener('click', () => this.saveOverTheirs());
    this.el.conflictTheirs.addEventListener('click', () => this.keepTheirs());
    this.el.form.addEventListener('input', () => {
      this.el.discard.hidden = true;
    });
  }

  get isOpen() {
    return this.dialog.open;
  }

  open(id) {
    const task = this.store.get(id);
    if (!task) return;
    this.id = id;
    this.conflict = null;
    this.deleted = false;
    delete this.dialog.dataset.conflict;
    this.el.conflict.hidden = true;
    this.el.notice.hidden = true;
    this.el.error.hidden = true;
    this.el.discard.hidden = true;
    this.setBusy(false);
    this.fill(task);
    this.showTab(task.description ? 'preview' : 'write');
    this.el.history.replaceChildren(h('li', { class: 'muted' }, 'Loading…'));
    this.el.moveRow.hidden = true;
    this.el.moveOpen.setAttribute('aria-expanded', 'false');
    this.dialog.dataset.taskId = id;
    // To read on a touch screen (no keyboard raised); to type with a mouse.
    const touch = matchMedia('(pointer: coarse)').matches;
    this.el.title.autofocus = !touch;
    this.el.heading.autofocus = touch;
    if (!this.dialog.open) this.dialog.showModal();
    (touch ? this.el.heading : this.el.title).focus({ preventScroll: true });
    this.el.title.setSelectionRange?.(0, 0);
    this.el.title.scrollTop = 0;
    this.fitTitle();
    this.loadHistory();
    this.comments?.open(id);
    this.checklists?.open(id);
  }

  /** The task with its column named (`column_id`), whether the server left it out or not. */
  resolve(task) {
    return { ...task, column_id: this.store.columnOf(task) };
  }

  /** The Column field lists the board's columns (they change with its events). */
  refreshColumns() {
    const columns = this.store.board?.columns ?? [];
    const value = this.el.status.value;
    this.el.status.replaceChildren(...columns.map((c) => h('option', { value: c.id }, c.name)));
    if (columns.some((c) => c.id === value)) this.el.status.value = value;
  }

  columnName(id) {
    return this.store.column(id)?.name ?? 'another column';
  }

  /** A field's value as read in the conflict table. */
  showField(field, value) {
    return field === 'column_id' ? this.columnName(value) : show(field, value);
  }

  fill(raw) {
    const task = this.resolve(raw);
    this.base = task;
    this.refreshColumns();
    this.el.title.value = task.title;
    this.el.status.value = task.column_id ?? '';
    this.el.priority.value = task.priority;
    this.el.assignee.value = task.assignee ?? '';
    this.el.due.value = task.due_date ?? '';
    this.el.labels.value = task.labels.join(', ');
    this.el.description.value = task.description;
    this.dialog.dataset.version = String(task.version);
    this.el.heading.textContent = `Card: ${task.title}`;
    this.renderPreview();
    this.renderMeta();
    this.fitTitle();
  }

  /** The title's box as tall as its text: a long title is read whole. */
  fitTitle() {
    const title = this.el.title;
    if (!this.dialog.open) return;
    title.style.height = 'auto';
    const border = title.offsetHeight - title.clientHeight;
    title.style.height = `${title.scrollHeight + border}px`;
  }

  renderMeta() {
    const t = this.base;
    this.el.meta.replaceChildren(
      `${this.columnName(t.column_id)} · version ${t.version} · created `,
      h('time', { datetime: t.created_at, title: formatTime(t.created_at) }, relativeTime(t.created_at)),
      ' · updated ',
      h('time', { datetime: t.updated_at, title: formatTime(t.updated_at) }, relativeTime(t.updated_at)),
    );
  }

  showTab(which) {
    const preview = which === 'preview';
    this.el.tabPreview.setAttribute('aria-selected', String(preview));
    this.el.tabWrite.setAttribute('aria-selected', String(!preview));
    this.el.tabPreview.tabIndex = preview ? 0 : -1;
    this.el.tabWrite.tabIndex = preview ? -1 : 0;
    this.el.preview.hidden = !preview;
    this.el.write.hidden = preview;
    if (preview) this.renderPreview();
  }

  renderPreview() {
    const text = this.el.description.value;
    if (text.trim()) {
      this.el.preview.replaceChildren(renderMarkdown(text));
    } else {
      this.el.preview.replaceChildren(h('p', { class: 'muted' }, 'No description. Choose Write to add one.'));
    }
  }

  /** The form's values, in the task's shape. */
  values() {
    return {
      title: this.el.title.value.trim(),
      column_id: this.el.status.value || null,
      priority: this.el.priority.value,
      assignee: this.el.assignee.value.trim() || null,
      due_date: this.el.due.value || null,
      labels: parseLabels(this.el.labels.value),
      description: this.el.description.value,
    };
  }

  /** The fields whose value differs from the base version. */
  changes(base = this.base) {
    const v = this.values();
    const out = {};
    for (const f of FIELDS) {
      if (!same(v[f], base[f])) out[f] = v[f];
    }
    return out;
  }

  setBusy(busy) {
    this.saving = busy;
    for (const b of [this.el.save, this.el.del, this.el.archive, this.el.moveGo, this.el.conflictMine, this.el.conflictTheirs]) {
      b.disabled = busy;
    }
  }

  async save() {
    if (this.saving || !this.id) return;
    if (this.conflict) {
      // The conflict must be settled with one of its two buttons.
      this.el.conflictMine.focus();
      return;
    }
    if (!this.store.get(this.id) && this.deleted) return;
    const changes = this.changes();
    if (Object.keys(changes).length === 0) {
      this.close();
      return;
    }
    await this.send(changes, this.base.version);
  }

  /** A task-list box in the description was ticked or cleared. */
  tick(box) {
    const line = Number(box.dataset.line);
    const text = toggleTaskItem(this.el.description.value, line, box.checked);
    if (text === this.el.description.value) return;
    this.el.description.value = text;
    const changes = this.changes();
    const alone = Object.keys(changes).length === 1 && 'description' in changes;
    if (!alone || this.conflict || this.saving || this.deleted) {
      this.renderPreview();
      this.refocusBox(line);
      this.announce('Ticked. It is saved with your other changes.');
      return;
    }
    this.send(changes, this.base.version, { keepOpen: true, focusLine: line });
  }

  refocusBox(line) {
    this.el.preview.querySelector(`input[type="checkbox"][data-line="${line}"]`)?.focus();
  }

  async send(changes, version, { keepOpen = false, focusLine = null } = {}) {
    this.el.error.hidden = true;
    if ('title' in changes && !changes.title) {
      this.fieldError('title', 'A card needs a title.');
      return;
    }
    this.setBusy(true);
    this.startWaiting();
    const id = this.id;
    let res;
    try {
      res = await this.board.enqueue(id, () =>
        this.api.request('PATCH', `/api/tasks/${encodeURIComponent(id)}`, {
          body: this.body(changes),
          ifMatch: version,
          idempotencyKey: uuid(),
        }),
      );
    } catch (err) {
      this.stopWaiting();
      this.setBusy(false);
      this.showError(`Not saved — no node answered (${err.message}). Try again.`);
      return;
    } finally {
      if (this.id !== id) this.stopWaiting();
    }
    if (this.id !== id) return; // closed meanwhile
    this.stopWaiting();
    this.setBusy(false);
    if (res.ok) {
      this.board.noteVersion(res.body);
      if (keepOpen) {
        this.fill(res.body);
        this.el.notice.hidden = true;
        if (focusLine != null) this.refocusBox(focusLine);
        this.announce('Saved.');
        this.scheduleHistory();
        return;
      }
      this.announce(`Saved “${res.body.title}”.`);
      this.close();
      return;
    }
    if (res.status === 412 && res.body?.error?.current) {
      this.showConflict(res.body.error.current);
      return;
    }
    if (res.status === 404) {
      this.showDeleted();
      return;
    }
    const field = res.body?.error?.field;
    if (field && FIELDS.includes(field)) this.fieldError(field, errorMessage(res));
    else this.showError(`Not saved: ${errorMessage(res)}`);
  }

  /** The PATCH body for `changes`: a new column named as place.js writes it. */
  body(changes) {
    const out = { ...changes };
    const column = 'column_id' in out && this.store.column(out.column_id);
    delete out.column_id;
    if (column) Object.assign(out, placeFields(column, this.store.board));
    return out;
  }

  /** After a moment, a save that waits says so, and why. */
  startWaiting() {
    this.stopWaiting();
    this.waitingSince = Date.now();
    this.waitingTimer = setInterval(() => this.refreshWaiting(), 250);
  }

  stopWaiting() {
    clearInterval(this.waitingTimer);
    this.waitingTimer = null;
    this.waitingSince = 0;
    this.el.saving.hidden = true;
  }

  refreshWaiting() {
    if (!this.waitingSince || Date.now() - this.waitingSince < WAITING_AFTER_MS) return;
    const text = `Still saving. ${this.waitReason?.() ?? ''}`.trim();
    if (this.el.saving.textContent !== text) this.el.saving.textContent = text;
    this.el.saving.hidden = false;
  }

  showConflict(raw) {
    const current = this.resolve(raw);
    const mine = this.changes();
    const theirs = this.changesBetween(this.base, current);
    this.conflict = { current, mine };
    const rows = [];
    const fields = FIELDS.filter((f) => f in mine || f in theirs);
    for (const f of fields) {
      const overlap = f in mine && f in theirs && !same(mine[f], current[f]);
      rows.push(
        h(
          'tr',
          { class: overlap ? 'overlap' : null, dataset: { field: f } },
          h('th', { scope: 'row' }, FIELD_NAME[f], overlap ? h('span', { class: 'badge' }, 'both changed') : null),
          h('td', { class: f in theirs ? 'changed' : null }, this.showField(f, current[f])),
          h('td', { class: f in mine ? 'changed' : null }, f in mine ? this.showField(f, mine[f]) : '(unchanged)'),
        ),
      );
    }
    this.el.conflictRows.replaceChildren(...rows);
    this.el.conflictText.textContent =
      `You started from version ${this.base.version}; version ${current.version} is saved now. ` +
      'Save yours to apply your changes on top of it (fields you did not change keep their new values), ' +
      'or discard yours to load the saved version.';
    this.el.conflict.hidden = false;
    this.el.notice.hidden = true;
    this.dialog.dataset.conflict = 'true';
    this.el.conflictMine.focus();
  }

  changesBetween(a, b) {
    const out = {};
    for (const f of FIELDS) if (!same(a[f], b[f])) out[f] = b[f];
    return out;
  }

  async saveOverTheirs() {
    const c = this.conflict;
    if (!c) return;
    this.conflict = null;
    this.el.conflict.hidden = true;
    delete this.dialog.dataset.conflict;
    // From now on the form is based on the saved version; send what the person changed.
    const mine = c.mine;
    this.fill(c.current);
    this.setValues({ ...c.current, ...mine });
    await this.send(mine, c.current.version);
  }

  keepTheirs() {
    const c = this.conflict;
    if (!c) return;
    this.conflict = null;
    this.el.conflict.hidden = true;
    delete this.dialog.dataset.conflict;
    const latest = this.store.get(this.id);
    this.fill(latest && latest.version > c.current.version ? latest : c.current);
    this.el.notice.hidden = true;
    this.announce('Your changes were discarded; the saved version is shown.');
    this.el.title.focus();
  }

  setValues(v) {
    this.el.title.value = v.title;
    this.el.status.value = v.column_id ?? '';
    this.el.priority.value = v.priority;
    this.el.assignee.value = v.assignee ?? '';
    this.el.due.value = v.due_date ?? '';
    this.el.labels.value = v.labels.join(', ');
    this.el.description.value = v.description;
    this.renderPreview();
  }

  /** An event touched the open card (from anywhere). */
  onTaskEvent(event) {
    if (!this.isOpen || event.task_id !== this.id) return;
    this.scheduleHistory();
    if (event.kind === 'checklist_changed') {
      this.checklists?.onEvent(event);
      return;
    }
    if (event.kind?.startsWith('comment_')) {
      this.comments?.onEvent(event);
      return;
    }
    if (event.kind === 'task_deleted') {
      this.showDeleted();
      return;
    }
    const task = event.task;
    if (!task || task.version <= this.base.version) return;
    if (!this.store.isHere(task) || task.archived === true) {
      // Taken off this board (another board, or archived): nothing to save here.
      this.deleted = true;
      this.el.notice.replaceChildren(
        task.archived === true ? 'This card was archived.' : 'This card was moved to another board.',
      );
      this.el.notice.hidden = false;
      this.el.save.disabled = true;
      return;
    }
    if (this.conflict || this.saving) return;
    if (Object.keys(this.changes()).length === 0) {
      // Nothing typed yet: just show the new version.
      const focused = document.activeElement;
      this.fill(task);
      if (focused && this.dialog.contains(focused)) focused.focus();
      return;
    }
    this.el.notice.replaceChildren(
      `This card was changed elsewhere (now version ${task.version}). When you save, you will see both versions.`,
    );
    this.el.notice.hidden = false;
  }

  showDeleted() {
    this.deleted = true;
    this.el.notice.replaceChildren('This card was deleted, so it can no longer be saved.');
    this.el.notice.hidden = false;
    this.el.conflict.hidden = true;
    this.conflict = null;
    this.el.save.disabled = true;
    this.el.del.disabled = true;
    this.el.archive.disabled = true;
    this.el.moveGo.disabled = true;
  }

  // ---------------------------------------------------------------- moving to another board

  /** "Move to board…": the boards it may go to (mine, where I may write), chosen with a select. */
  offerBoards() {
    const shown = this.el.moveRow.hidden;
    this.el.moveRow.hidden = !shown;
    this.el.moveOpen.setAttribute('aria-expanded', String(shown));
    if (!shown) return;
    const here = this.store.board?.id;
    const others = this.boards.list.filter((b) => b.id !== here && !b.archived && b.role !== 'viewer');
    this.el.moveBoard.replaceChildren(...others.map((b) => h('option', { value: b.id }, b.name)));
    this.el.moveGo.disabled = others.length === 0;
    if (others.length === 0) this.el.moveBoard.append(h('option', { value: '' }, 'No other board'));
    this.el.moveBoard.focus();
  }

  async moveToBoard() {
    const id = this.id;
    const to = this.boards.list.find((b) => b.id === this.el.moveBoard.value);
    if (!id || !to || this.saving) return;
    if (Object.keys(this.changes()).length > 0) {
      this.showError('Save or discard your changes first, then move the card.');
      return;
    }
    this.setBusy(true);
    let res;
    try {
      res = await this.board.enqueue(id, () =>
        this.api.request('PATCH', `/api/tasks/${encodeURIComponent(id)}`, {
          body: { board_id: to.id },
          ifMatch: Math.max(this.base.version, this.board.writes.ownVersion(id)),
          idempotencyKey: uuid(),
        }),
      );
    } catch (err) {
      this.setBusy(false);
      this.showError(`Not moved — no node answered (${err.message}). Try again.`);
      return;
    }
    if (this.id !== id) return;
    this.setBusy(false);
    if (res.ok) {
      this.board.noteVersion(res.body);
      this.board.reportBreach(res.body);
      this.announce(`Moved “${res.body.title}” to the board ${to.name}.`);
      this.toasts.show(`Moved “${res.body.title}” to ${to.name}.`);
      this.close();
      return;
    }
    if (res.status === 404) {
      this.showDeleted();
      return;
    }
    this.showError(
      res.status === 412
        ? 'Someone else changed this card meanwhile; it was not moved. Look at it again, then move it.'
        : `Not moved: ${errorMessage(res)}`,
    );
  }

  fieldError(field, message) {
    const input = {
      title: this.el.title,
      column_id: this.el.status,
      priority: this.el.priority,
      assignee: this.el.assignee,
      due_date: this.el.due,
      labels: this.el.labels,
      description: this.el.description,
    }[field];
    this.showError(message);
    if (input) {
      input.setAttribute('aria-invalid', 'true');
      input.addEventListener('input', () => input.removeAttribute('aria-invalid'), { once: true });
      if (field === 'description') this.showTab('write');
      input.focus();
    }
  }

  showError(message) {
    this.el.error.textContent = message;
    this.el.error.hidden = false;
  }

  requestClose() {
    if (!this.isOpen) return;
    const typed = this.base && !this.deleted && Object.keys(this.changes()).length > 0;
    // A comment written and not sent is not thrown away silently either.
    const dirty = typed || Boolean(this.comments?.hasDraft());
    if (dirty && !this.saving) {
      this.el.discard.hidden = false;
      this.dialog.querySelector('#discard-no').focus();
      return;
    }
    this.close();
  }

  close() {
    if (this.dialog.open) this.dialog.close();
  }

  closed() {
    this.stopWaiting();
    const id = this.id;
    this.id = null;
    this.base = null;
    this.conflict = null;
    this.deleted = false;
    delete this.dialog.dataset.taskId;
    delete this.dialog.dataset.conflict;
    clearTimeout(this.historyTimer);
    this.comments?.close();
    this.checklists?.close();
    // Back to the card, for the keyboard.
    const card = id && this.board.cards.get(id);
    if (card) card.focus({ preventScroll: true });
  }

  scheduleHistory() {
    clearTimeout(this.historyTimer);
    this.historyTimer = setTimeout(() => this.loadHistory(), 150);
  }

  async loadHistory() {
    const id = this.id;
    if (!id) return;
    let res;
    try {
      res = await this.api.request('GET', `/api/tasks/${encodeURIComponent(id)}/events`, { deadlineMs: 10000 });
    } catch {
      res = null;
    }
    if (this.id !== id) return;
    if (!res?.ok) {
      this.el.history.replaceChildren(h('li', { class: 'muted' }, 'The history could not be loaded.'));
      return;
    }
    const events = [...(res.body.events ?? [])].reverse();
    this.el.history.replaceChildren(...events.map((ev) => historyItem(ev)));
  }
}

function same(a, b) {
  // Labels are a set (the server keeps them sorted): order does not matter.
  if (Array.isArray(a) || Array.isArray(b)) {
    return JSON.stringify([...(a ?? [])].sort()) === JSON.stringify([...(b ?? [])].sort());
  }
  return (a ?? null) === (b ?? null);
}
