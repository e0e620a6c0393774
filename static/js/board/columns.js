// The board's frame: one column per column of the board on screen, in its
// order, each with its heading, its count (against its WIP limit, if it has
// one), its menu, its list (filled by render.js) and its "Add a card" form;
// after them "Add a column"; and, for a phone, where the board shows one
// column at a time, a bar of buttons that jump to a column and mark the one
// in view.
//
// The columns come from the store (`store.board.columns`) and change with
// it: `sync` keeps one element per column across renders, so the focus and
// a half-typed card survive a column added or renamed elsewhere.
//
// A column holds the cards loaded so far; scrolling near its end asks for
// the next page.

import { errorMessage } from '../api.js';
import { placeFields } from '../place.js';
import { h, icon, uuid } from '../util.js';

/** This close to the end of a column's list, its next page is asked for. */
const MORE_WITHIN_PX = 200;

export class Columns {
  /**
   * `board` supplies: root, store, api, filters, toasts, announce, writes,
   * view (revealId), editor (openMenu, openAdd), loadMore(columnId),
   * canWrite, canEditColumns and render(). `nav` holds the phone's column bar.
   */
  constructor(board, nav) {
    this.board = board;
    this.nav = nav;
    /** column id → {column, list, title, countShown, countSaid, wipOver, form, input, opener, error, jump, menu, name} */
    this.byId = new Map();
    this.shown = null;
    this.adder = h(
      'div',
      { class: 'column-adder' },
      h('button', { type: 'button', class: 'button subtle add-column' }, icon('plus'), 'Add a column'),
    );
    this.adder.firstChild.addEventListener('click', () => this.board.editor.openAdd());
    board.root.addEventListener('scroll', () => this.onBoardScroll(), { passive: true });
  }

  get(id) {
    return this.byId.get(id);
  }

  values() {
    return this.byId.values();
  }

  /** The column ids in the order the page shows them. */
  ids() {
    return this.board.editor.shown().map((c) => c.id);
  }

  /** One element per column of the board, in its order; the ones gone are removed. */
  sync() {
    const board = this.board;
    const columns = board.editor.shown();
    const focused = document.activeElement;
    const alive = new Set();
    let cursor = board.root.firstElementChild;
    let jumpCursor = this.nav?.firstElementChild ?? null;
    for (const column of columns) {
      alive.add(column.id);
      const col = this.byId.get(column.id) ?? this.build(column);
      this.update(col, column);
      if (col.column === cursor) cursor = cursor.nextElementSibling;
      else board.root.insertBefore(col.column, cursor);
      if (this.nav) {
        if (col.jump === jumpCursor) jumpCursor = jumpCursor.nextElementSibling;
        else this.nav.insertBefore(col.jump, jumpCursor);
      }
    }
    for (const [id, col] of this.byId) {
      if (alive.has(id)) continue;
      col.column.remove();
      col.jump.remove();
      this.byId.delete(id);
    }
    board.root.append(this.adder);
    this.adder.hidden = !board.canEditColumns;
    if (!this.shown || !this.byId.has(this.shown)) this.markShown(columns[0]?.id ?? null);
    // Moving an element in the DOM takes the focus away: give it back.
    if (focused && focused !== document.activeElement && focused.isConnected && document.activeElement === document.body) {
      focused.focus({ preventScroll: true });
    }
  }

  build(column) {
    const id = column.id;
    const headingId = `col-${domId(column.key ?? id)}-title`;
    const list = h('ol', { class: 'cards', role: 'list', 'aria-labelledby': headingId });
    // The count as seen ("3", "3/12", "6 / 5"), and as heard with the
    // column's name ("To do, 3 of 12 cards shown"), which also names its list.
    const countShown = h('span', { class: 'count', 'aria-hidden': 'true' }, '0');
    const countSaid = h('span', { class: 'visually-hidden' }, ', 0 cards');
    // Over the WIP limit is said in words too, not only in red.
    const wipOver = h('span', { class: 'wip-over', hidden: true }, 'Over limit');
    const name = h('span', { class: 'column-name' });
    const dot = h('span', { class: 'column-dot', 'aria-hidden': 'true' });
    const menu = h(
      'button',
      { type: 'button', class: 'icon-button column-menu-open', 'aria-haspopup': 'menu', 'aria-expanded': 'false' },
      h('span', { 'aria-hidden': 'true' }, '⋯'),
    );
    const input = h('input', {
      type: 'text',
      name: 'title',
      class: 'add-title',
      maxlength: '200',
      autocomplete: 'off',
      placeholder: 'Title of the card…',
    });
    const error = h('p', { class: 'add-error', role: 'alert', hidden: true });
    const form = h(
      'form',
      { class: 'add-form', hidden: true },
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
    const opener = h('button', { type: 'button', class: 'add-open' }, icon('plus'), 'Add a card');
    const title = h('h2', { id: headingId }, dot, name, countSaid);
    const head = h('header', { class: 'column-head' }, title, h('span', { class: 'column-tools' }, wipOver, countShown, menu));
    const section = h('section', { class: 'column', 'aria-labelledby': headingId }, head, list, h('div', { class: 'add' }, opener, form));
    // On a phone the board shows one column at a time: these jump to one.
    const jump = h(
      'button',
      { type: 'button', class: 'column-jump' },
      h('span', { class: 'jump-name' }),
      ' ',
      h('span', { class: 'jump-count' }, '0'),
    );
    const col = { column: section, head, list, title, name, dot, countShown, countSaid, wipOver, form, input, opener, error, jump, menu };
    jump.addEventListener('click', () => this.showColumn(id));
    opener.addEventListener('click', () => this.openAdd(id));
    menu.addEventListener('click', () => this.board.editor.openMenu(id, menu));
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
    list.addEventListener('scroll', () => this.maybeMore(id), { passive: true });
    this.byId.set(id, col);
    return col;
  }

  /** What a column shows of its record: name, colour, category, controls. */
  update(col, column) {
    const name = column.name;
    if (col.name.textContent !== name) col.name.textContent = name;
    col.jump.querySelector('.jump-name').textContent = name;
    const section = col.column;
    section.className = `column column-${column.category ?? 'todo'}`;
    Object.assign(section.dataset, {
      columnId: column.id,
      key: column.key ?? '',
      // The key, as the default board's three columns were always named.
      status: column.key ?? column.id,
      category: column.category ?? '',
    });
    col.list.dataset.columnId = column.id;
    col.list.dataset.status = column.key ?? column.id;
    col.jump.dataset.columnId = column.id;
    if (column.color) col.dot.style.background = column.color;
    else col.dot.style.removeProperty('background');
    col.menu.setAttribute('aria-label', `Column menu: ${name}`);
    col.menu.hidden = !this.board.canEditColumns;
    col.input.setAttribute('aria-label', `Title of a new card in ${name}`);
    col.opener.setAttribute('aria-label', `Add a card to ${name}`);
    col.head.classList.toggle('can-drag', this.board.canEditColumns);
  }

  /** After a render: how many cards the column holds, shows under the filters, and its limit. */
  showCount(id, shown, filtered) {
    const col = this.byId.get(id);
    const column = this.board.store.column(id);
    const all = this.board.store.window(id)?.total ?? 0;
    const limit = column?.wip_limit ?? null;
    const over = limit != null && all > limit;
    let text = filtered ? `${shown}/${all}` : String(all);
    if (limit != null) text = filtered ? `${shown}/${all} (limit ${limit})` : `${all} / ${limit}`;
    let said = filtered ? `, ${shown} of ${all} cards shown` : `, ${all} card${all === 1 ? '' : 's'}`;
    if (limit != null) said += `, limit ${limit}${over ? ', over the limit' : ''}`;
    if (col.countShown.textContent !== text) col.countShown.textContent = text;
    if (col.countSaid.textContent !== said) col.countSaid.textContent = said;
    col.countShown.classList.toggle('over', over);
    col.wipOver.hidden = !over;
    col.column.dataset.over = String(over);
    col.jump.querySelector('.jump-count').textContent = text;
    col.list.classList.toggle('empty', shown === 0);
    col.list.classList.toggle('has-more', !(this.board.store.window(id)?.complete ?? true));
    this.maybeMore(id);
  }

  /** Near the end of a column's list (or the list not filling it): its next page. */
  maybeMore(id) {
    const col = this.byId.get(id);
    const win = this.board.store.window(id);
    if (!col || !win || win.complete) return;
    const { list } = col;
    if (list.scrollHeight - list.scrollTop - list.clientHeight < MORE_WITHIN_PX) this.board.loadMore(id);
  }

  // ---------------------------------------------------------------- the phone's column bar

  /** Bring column `id` into view where the board scrolls sideways. */
  showColumn(id) {
    const root = this.board.root;
    const col = this.byId.get(id);
    if (!col) return;
    if (root.scrollWidth > root.clientWidth) {
      const left = root.scrollLeft + col.column.getBoundingClientRect().left - root.getBoundingClientRect().left;
      root.scrollTo({ left, behavior: 'smooth' });
    }
    this.markShown(id);
  }

  onBoardScroll() {
    const left = this.board.root.getBoundingClientRect().left;
    let nearest = null;
    for (const [id, { column }] of this.byId) {
      const off = Math.abs(column.getBoundingClientRect().left - left);
      if (!nearest || off < nearest[1]) nearest = [id, off];
    }
    if (nearest) this.markShown(nearest[0]);
  }

  /** Which column the phone's column bar marks as shown. */
  markShown(shownId) {
    this.shown = shownId;
    for (const [id, col] of this.byId) {
      if (id === shownId) col.jump.setAttribute('aria-current', 'true');
      else col.jump.removeAttribute('aria-current');
    }
  }

  // ---------------------------------------------------------------- adding a card

  openAdd(id = this.ids()[0]) {
    const col = this.byId.get(id);
    if (!col) return;
    col.opener.hidden = true;
    col.form.hidden = false;
    this.showColumn(id);
    col.input.focus({ preventScroll: true });
  }

  closeAdd(id) {
    const col = this.byId.get(id);
    if (!col) return;
    col.form.hidden = true;
    col.opener.hidden = false;
    col.error.hidden = true;
    col.input.value = '';
    col.opener.focus();
  }

  async create(id) {
    const board = this.board;
    const col = this.byId.get(id);
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
    const name = board.store.column(id)?.name ?? 'the column';
    try {
      const res = await board.api.request('POST', '/api/tasks', {
        body: { title, ...placeFields(board.store.column(id), board.store.board) },
        idempotencyKey: uuid(),
      });
      if (res.ok) {
        board.writes.noteVersion(res.body);
        board.view.revealId = res.body.id;
        if (board.store.get(res.body.id)) board.render();
        // Added after the cards loaded so far: load on to it, so it is seen.
        for (let win = board.store.window(id); win && !win.complete && !board.store.get(res.body.id); ) {
          await board.loadMore(id);
          if (board.store.window(id) !== win) break;
        }
        board.announce(`Added “${title}” to ${name}.`);
        board.reportBreach(res.body);
        if (!board.filters.matches(res.body)) {
          board.toasts.show(`Added “${title}”: the current filter hides it.`);
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
}

/** A column key made safe for an element id (keys are the server's; ids must not clash). */
function domId(text) {
  return String(text).replace(/[^A-Za-z0-9_-]/g, '_');
}
