// Shaping the board's columns: a column's menu (Edit, Move left, Move
// right, Delete), the dialog that names it and sets its colour and WIP
// limit (also for "Add a column"), the dialog that deletes it (asking where
// its cards go when it has any), and moving it with the keyboard (Alt+← and
// Alt+→ anywhere in its header, or the menu).
//
// A column moved (here or by column-drag.js) shows at its new place at
// once, as card moves do (moves.js): its new position, the midpoint of its
// new neighbours' as shown, is an overlay over the store until the store
// has applied the event of that move (or the move is refused and the
// column goes back). So an event of an earlier move arriving meanwhile
// never puts the column back where an earlier press left it, and the next
// press starts from where the column is shown. Everything else waits for
// the server's answer and shows through the column's events.
//
// Every change names the column's version as drawn (If-Match), so a
// change someone else made meanwhile is never overwritten unseen: a 412
// says so, and the board's columns are read again. A column's moves go one
// at a time, each after this page's previous one, naming the version that
// one gave.

import { errorMessage } from '../api.js';
import { normalColumn, positionBetween } from '../store.js';
import { h, uuid } from '../util.js';

/** The colours a column may take (its dot), by name: a colour is never all that is said. */
const COLORS = [
  ['', 'None'],
  ['#8590a2', 'Grey'],
  ['#1d7afc', 'Blue'],
  ['#22a06b', 'Green'],
  ['#e2b203', 'Yellow'],
  ['#e56910', 'Orange'],
  ['#c9372c', 'Red'],
  ['#6e5dc6', 'Purple'],
];

export class ColumnEditor {
  /** `board` supplies: root, store, api, toasts, announce, columns (get, ids), canEditColumns and render(). */
  constructor(board) {
    this.board = board;
    const $ = (id) => document.getElementById(id);
    this.menu = $('column-menu');
    this.menuFor = null;
    this.menuButton = null;
    this.dialog = $('column-dialog');
    this.form = $('column-form');
    this.heading = $('column-dialog-heading');
    this.nameInput = $('column-name');
    this.colorSelect = $('column-color');
    this.wipInput = $('column-wip');
    this.archiveInput = $('column-archive');
    this.error = $('column-error');
    /** The column the dialog edits, or null: it adds one. */
    this.editing = null;
    this.deleteDialog = $('column-delete-dialog');
    this.deleteForm = $('column-delete-form');
    this.deleteText = $('column-delete-text');
    this.moveField = $('column-move-field');
    this.moveSelect = $('column-move-to');
    this.deleteError = $('column-delete-error');
    this.deleting = null;
    /** column id → {position, token, seq}: this page's column moves not yet in the store */
    this.pending = new Map();
    /** column id → the version this page's last change of it gave */
    this.versions = new Map();
    /** column id → this page's last move of it, settled */
    this.moving = new Map();
    this.bind();
  }

  /** The board's columns in the order this page shows them: the store's, with its own moves on top. */
  shown() {
    const columns = this.board.store.board?.columns ?? [];
    if (this.pending.size === 0) return columns;
    return columns
      .map((c) => (this.pending.has(c.id) ? { ...c, position: this.pending.get(c.id).position } : c))
      .sort((a, b) => a.position - b.position || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** The store reached `seq`: drop the moves it now shows (and those of columns gone). */
  settle(seq) {
    for (const [id, move] of this.pending) {
      if ((move.seq != null && seq >= move.seq) || !this.board.store.column(id)) this.pending.delete(id);
    }
  }

  bind() {
    this.menu.addEventListener('click', (e) => {
      const item = e.target.closest('[role="menuitem"]');
      if (item) this.choose(item.dataset.action);
    });
    this.menu.addEventListener('keydown', (e) => this.onMenuKey(e));
    this.menu.addEventListener('focusout', (e) => {
      if (!this.menu.contains(e.relatedTarget)) this.closeMenu(false);
    });
    document.addEventListener('pointerdown', (e) => {
      if (!this.menu.hidden && !this.menu.contains(e.target) && e.target !== this.menuButton) this.closeMenu(false);
    });
    // Alt+← / Alt+→ in a column's header moves the column.
    this.board.root.addEventListener('keydown', (e) => {
      if (!e.altKey || e.ctrlKey || e.metaKey || !this.board.canEditColumns) return;
      if (e.key !== 'ArrowLeft' && e.key !== 'ArrowRight') return;
      const head = e.target.closest?.('.column-head');
      const id = head?.closest('.column')?.dataset.columnId;
      if (!id) return;
      e.preventDefault();
      this.moveBy(id, e.key === 'ArrowLeft' ? -1 : 1);
    });
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.save();
    });
    document.getElementById('column-cancel').addEventListener('click', () => this.dialog.close());
    this.deleteForm.addEventListener('submit', (e) => {
      e.preventDefault();
      this.remove();
    });
    document.getElementById('column-delete-cancel').addEventListener('click', () => this.deleteDialog.close());
    for (const dialog of [this.dialog, this.deleteDialog]) {
      dialog.addEventListener('close', () => this.returnFocus());
    }
  }

  // ---------------------------------------------------------------- the menu

  openMenu(id, button) {
    if (!this.board.canEditColumns) return;
    if (!this.menu.hidden && this.menuFor === id) {
      this.closeMenu(true);
      return;
    }
    this.closeMenu(false);
    const ids = this.board.columns.ids();
    const at = ids.indexOf(id);
    this.menu.querySelector('[data-action="left"]').hidden = at <= 0;
    this.menu.querySelector('[data-action="right"]').hidden = at < 0 || at >= ids.length - 1;
    // A board keeps at least one column, and the default board its three status columns.
    const column = this.board.store.column(id);
    const kept = ids.length <= 1 || (this.board.store.board.default && ['todo', 'in_progress', 'done'].includes(column?.key));
    this.menu.querySelector('[data-action="delete"]').hidden = kept;
    this.menu.setAttribute('aria-label', `Column ${this.board.store.column(id)?.name ?? ''}`);
    this.menuFor = id;
    this.menuButton = button;
    button.setAttribute('aria-expanded', 'true');
    this.menu.hidden = false;
    const r = button.getBoundingClientRect();
    const width = this.menu.offsetWidth;
    this.menu.style.left = `${Math.max(8, Math.min(window.innerWidth - width - 8, r.right - width))}px`;
    this.menu.style.top = `${r.bottom + 4}px`;
    this.items()[0]?.focus();
  }

  items() {
    return [...this.menu.querySelectorAll('[role="menuitem"]')].filter((el) => !el.hidden);
  }

  closeMenu(refocus) {
    if (this.menu.hidden) return;
    this.menu.hidden = true;
    this.menuButton?.setAttribute('aria-expanded', 'false');
    if (refocus) this.menuButton?.focus();
  }

  onMenuKey(e) {
    const items = this.items();
    const at = items.indexOf(document.activeElement);
    let to = null;
    switch (e.key) {
      case 'ArrowDown':
        to = (at + 1) % items.length;
        break;
      case 'ArrowUp':
        to = (at - 1 + items.length) % items.length;
        break;
      case 'Home':
        to = 0;
        break;
      case 'End':
        to = items.length - 1;
        break;
      case 'Escape':
        e.preventDefault();
        e.stopPropagation();
        this.closeMenu(true);
        return;
      case 'Tab':
        this.closeMenu(false);
        return;
      default:
        return;
    }
    e.preventDefault();
    items[to]?.focus();
  }

  choose(action) {
    const id = this.menuFor;
    this.closeMenu(true);
    switch (action) {
      case 'edit':
        this.openEdit(id);
        break;
      case 'left':
        this.moveBy(id, -1);
        break;
      case 'right':
        this.moveBy(id, 1);
        break;
      case 'delete':
        this.openDelete(id);
        break;
      default:
        break;
    }
  }

  /** After a dialog: back to the column's menu button (or "Add a column"). */
  returnFocus() {
    const col = this.returnTo && this.board.columns.get(this.returnTo);
    const target = col?.menu ?? document.querySelector('#board .add-column');
    if (target?.isConnected && !target.hidden) target.focus();
    this.returnTo = null;
  }

  // ---------------------------------------------------------------- add and edit

  openAdd() {
    if (!this.board.canEditColumns) return;
    this.editing = null;
    this.returnTo = null;
    this.heading.textContent = 'Add a column';
    this.fill({ name: '', color: null, wip_limit: null, archive_after_days: null });
    this.form.querySelector('#column-save').textContent = 'Add column';
    this.dialog.showModal();
    this.nameInput.focus();
  }

  openEdit(id) {
    const column = this.board.store.column(id);
    if (!column) return;
    this.editing = column;
    this.returnTo = id;
    this.heading.textContent = `Column ${column.name}`;
    this.fill(column);
    this.form.querySelector('#column-save').textContent = 'Save';
    this.dialog.showModal();
    this.nameInput.focus();
    this.nameInput.select();
  }

  fill(column) {
    this.error.hidden = true;
    this.nameInput.removeAttribute('aria-invalid');
    this.nameInput.value = column.name;
    const color = column.color ?? '';
    const options = COLORS.map(([value, name]) => h('option', { value }, name));
    if (color && !COLORS.some(([value]) => value === color.toLowerCase())) {
      options.push(h('option', { value: color }, `Its own (${color})`));
    }
    this.colorSelect.replaceChildren(...options);
    this.colorSelect.value = color.toLowerCase();
    this.wipInput.value = column.wip_limit ?? '';
    this.archiveInput.value = column.archive_after_days ?? '';
  }

  async save() {
    const name = this.nameInput.value.trim();
    if (!name) {
      this.showError(this.error, 'A column needs a name.');
      this.nameInput.setAttribute('aria-invalid', 'true');
      this.nameInput.focus();
      return;
    }
    const wipText = this.wipInput.value.trim();
    const wip = wipText === '' ? null : Number(wipText);
    if (wip !== null && !(Number.isInteger(wip) && wip >= 1)) {
      this.showError(this.error, 'A WIP limit is a whole number of cards, 1 or more (empty: no limit).');
      this.wipInput.focus();
      return;
    }
    const archiveText = this.archiveInput.value.trim();
    const archive = archiveText === '' ? null : Number(archiveText);
    if (archive !== null && !(Number.isInteger(archive) && archive >= 1 && archive <= 3650)) {
      this.showError(this.error, 'Archive after a whole number of days, 1 to 3650 (empty: never).');
      this.archiveInput.setAttribute('aria-invalid', 'true');
      this.archiveInput.focus();
      return;
    }
    this.archiveInput.removeAttribute('aria-invalid');
    const color = this.colorSelect.value || null;
    const board = this.board;
    const editing = this.editing;
    let res;
    const button = this.form.querySelector('#column-save');
    button.disabled = true;
    try {
      if (editing) {
        const changes = {};
        if (name !== editing.name) changes.name = name;
        if (color !== (editing.color ?? null)) changes.color = color;
        if (wip !== (editing.wip_limit ?? null)) changes.wip_limit = wip;
        if (archive !== (editing.archive_after_days ?? null)) changes.archive_after_days = archive;
        if (Object.keys(changes).length === 0) {
          this.dialog.close();
          return;
        }
        res = await board.api.request('PATCH', `/api/columns/${encodeURIComponent(editing.id)}`, {
          body: changes,
          ifMatch: editing.version,
          idempotencyKey: uuid(),
        });
      } else {
        const body = { name };
        if (color) body.color = color;
        if (wip !== null) body.wip_limit = wip;
        if (archive !== null) body.archive_after_days = archive;
        res = await board.api.request('POST', `/api/boards/${encodeURIComponent(board.store.board.id)}/columns`, {
          body,
          idempotencyKey: uuid(),
        });
      }
    } catch (err) {
      this.showError(this.error, `Not saved: ${err.message}`);
      return;
    } finally {
      button.disabled = false;
    }
    if (res.status === 412 && res.body?.error?.current_column) {
      // The dialog shows the column as it is now, to change again.
      this.editing = normalColumn(res.body.error.current_column);
      this.fill(this.editing);
      this.showError(this.error, 'Someone else changed this column meanwhile: it shows as it is now. Make your change again.');
      this.refreshColumns();
      return;
    }
    if (!res.ok) {
      this.showError(this.error, `Not saved: ${errorMessage(res)}`);
      return;
    }
    if (editing) this.versions.set(editing.id, res.body.version);
    if (!editing) this.returnTo = res.body?.id != null ? String(res.body.id) : null;
    this.dialog.close();
    board.announce(editing ? `Saved column ${name}.` : `Added column ${name}.`);
  }

  showError(el, message) {
    el.textContent = message;
    el.hidden = false;
  }

  // ---------------------------------------------------------------- delete

  openDelete(id) {
    const column = this.board.store.column(id);
    if (!column) return;
    this.deleting = column;
    this.returnTo = id;
    const cards = this.board.store.window(id)?.total ?? 0;
    document.getElementById('column-delete-heading').textContent = `Delete column ${column.name}`;
    this.deleteText.textContent =
      cards > 0
        ? `${column.name} holds ${cards} card${cards === 1 ? '' : 's'}. Choose the column they move to; the column itself is then deleted.`
        : `${column.name} holds no cards. Deleting it cannot be undone.`;
    this.offerMoveTo(id, cards > 0);
    this.deleteError.hidden = true;
    this.deleteDialog.showModal();
    (cards > 0 ? this.moveSelect : this.deleteForm.querySelector('#column-delete-confirm')).focus();
  }

  offerMoveTo(id, shown) {
    const others = this.board.store.board.columns.filter((c) => c.id !== id);
    this.moveSelect.replaceChildren(...others.map((c) => h('option', { value: c.id }, c.name)));
    this.moveField.hidden = !shown;
  }

  async remove() {
    const column = this.deleting;
    if (!column) return;
    const board = this.board;
    const moveTo = this.moveField.hidden ? null : this.moveSelect.value || null;
    const query = moveTo ? `?move_to=${encodeURIComponent(moveTo)}` : '';
    const button = this.deleteForm.querySelector('#column-delete-confirm');
    button.disabled = true;
    let res;
    try {
      res = await board.api.request('DELETE', `/api/columns/${encodeURIComponent(column.id)}${query}`, {
        ifMatch: column.version,
        idempotencyKey: uuid(),
      });
    } catch (err) {
      this.showError(this.deleteError, `Not deleted: ${err.message}`);
      return;
    } finally {
      button.disabled = false;
    }
    // The spec names the code bare ({"error": "column_not_empty"}); the
    // server's other errors carry it as error.code: either is understood.
    const code = typeof res.body?.error === 'string' ? res.body.error : res.body?.error?.code;
    if (res.status === 409 && code === 'column_not_empty') {
      // Cards arrived since the dialog opened: they need somewhere to go.
      this.offerMoveTo(column.id, true);
      this.showError(this.deleteError, `${column.name} has cards now: choose where they move.`);
      this.moveSelect.focus();
      return;
    }
    if (res.status === 412 && res.body?.error?.current_column) {
      this.deleting = normalColumn(res.body.error.current_column);
      this.showError(this.deleteError, `Someone else changed ${column.name} meanwhile: look at it again before deleting it.`);
      this.refreshColumns();
      return;
    }
    if (!res.ok && res.status !== 404) {
      this.showError(this.deleteError, `Not deleted: ${errorMessage(res)}`);
      return;
    }
    this.returnTo = null;
    this.deleteDialog.close();
    board.announce(`Deleted column ${column.name}.`);
  }

  // ---------------------------------------------------------------- moving a column

  /** Column `id` one place left (-1) or right (+1). */
  moveBy(id, delta) {
    const columns = this.shown();
    const at = columns.findIndex((c) => c.id === id);
    const to = at + delta;
    if (at < 0 || to < 0 || to >= columns.length) {
      this.board.announce(delta < 0 ? 'Already the first column.' : 'Already the last column.');
      return;
    }
    const others = columns.filter((c) => c.id !== id);
    this.place(id, others[to - 1]?.id ?? null, others[to]?.id ?? null);
  }

  /** Put column `id` between the columns `prevId` and `nextId` as shown (either may be null), and save it. */
  place(id, prevId, nextId) {
    const board = this.board;
    const column = board.store.column(id);
    if (!column) return Promise.resolve();
    const shown = this.shown();
    const position = positionBetween(shown.find((c) => c.id === prevId), shown.find((c) => c.id === nextId));
    const token = uuid();
    this.pending.set(id, { position, token, seq: null });
    board.render();
    const ids = board.columns.ids();
    board.announce(`Moved column ${column.name} to place ${ids.indexOf(id) + 1} of ${ids.length}.`);
    const drawn = column.version ?? 0;
    // The version an answer gives is known before the next move is sent.
    const send = async () => {
      const res = await board.api.request('PATCH', `/api/columns/${encodeURIComponent(id)}`, {
        body: { position },
        ifMatch: Math.max(drawn, this.versions.get(id) ?? 0) || null,
        idempotencyKey: uuid(),
      });
      if (res.ok) this.versions.set(id, res.body.version);
      return res;
    };
    const sent = (this.moving.get(id) ?? Promise.resolve()).then(send);
    this.moving.set(id, sent.catch(() => {}));
    return sent
      .catch((err) => err.message)
      .then((res) => {
        const move = this.pending.get(id);
        if (res.ok) {
          // Shown until the store has applied this move's event.
          if (move?.token === token) move.seq = res.seq ?? board.store.lastSeq;
          board.settle();
          board.render();
          return;
        }
        // Refused: back where the store has it, unless a newer move replaced this one.
        if (move?.token === token) {
          this.pending.delete(id);
          board.render();
        }
        if (res.status === 412) {
          board.toasts.show(`Someone else changed column ${column.name} meanwhile: it shows as it is now.`, { kind: 'error' });
          this.refreshColumns();
          return;
        }
        const why = typeof res === 'string' ? res : errorMessage(res);
        board.toasts.show(`Could not move column ${column.name}: ${why}`, { kind: 'error' });
      });
  }

  /**
   * The board's columns read again after a 412, so that what is shown, and
   * the version the next change names, are the server's. A column the
   * store already holds newer (from an event) is kept; card counts are
   * left to the events.
   */
  async refreshColumns() {
    const board = this.board;
    const id = board.store.board.id;
    const res = await board.api.request('GET', `/api/boards/${encodeURIComponent(id)}`).catch(() => null);
    if (!res?.ok || board.store.board.id !== id) return;
    for (const raw of res.body.columns ?? []) {
      const column = normalColumn(raw);
      if ((board.store.column(column.id)?.version ?? 0) <= column.version) board.store.putColumn(column, 0);
    }
    board.render();
  }
}
