// The board's frame: one column per status, with its heading and count, its
// list (filled by render.js) and its "Add a card" form; and, for a phone,
// where the board shows one column at a time, a bar of buttons that jump to
// a column and mark the one in view.

import { errorMessage } from '../api.js';
import { STATUSES, h, icon, uuid } from '../util.js';

export class Columns {
  /**
   * `board` supplies: root, store, api, filters, toasts, announce, writes,
   * view (revealId) and render(). `nav` holds the phone's column bar.
   */
  constructor(board, nav) {
    this.board = board;
    this.nav = nav;
    /** status → {column, list, countShown, countSaid, form, input, opener, error, name, jump} */
    this.byStatus = new Map();
    this.build();
    this.markShown(STATUSES[0].id);
    board.root.addEventListener('scroll', () => this.onBoardScroll(), { passive: true });
  }

  get(status) {
    return this.byStatus.get(status);
  }

  values() {
    return this.byStatus.values();
  }

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
      this.byStatus.set(id, { column, list, countShown, countSaid, form, input, opener, error, name, jump });
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
      this.board.root.append(column);
    }
  }

  /** After a render: how many cards the column holds, and shows under the filters. */
  showCount(status, shown, all, filtered) {
    const col = this.byStatus.get(status);
    const text = filtered ? `${shown}/${all}` : String(all);
    const said = filtered ? `, ${shown} of ${all} cards shown` : `, ${all} card${all === 1 ? '' : 's'}`;
    if (col.countShown.textContent !== text) col.countShown.textContent = text;
    if (col.countSaid.textContent !== said) col.countSaid.textContent = said;
    col.jump.querySelector('.jump-count').textContent = text;
    col.list.classList.toggle('empty', shown === 0);
  }

  // ---------------------------------------------------------------- the phone's column bar

  /** Bring column `status` into view where the board shows one at a time. */
  showColumn(status) {
    const root = this.board.root;
    const { column } = this.byStatus.get(status);
    if (root.scrollWidth > root.clientWidth) {
      const left = root.scrollLeft + column.getBoundingClientRect().left - root.getBoundingClientRect().left;
      root.scrollTo({ left, behavior: 'smooth' });
    }
    this.markShown(status);
  }

  onBoardScroll() {
    const left = this.board.root.getBoundingClientRect().left;
    let nearest = null;
    for (const [id, { column }] of this.byStatus) {
      const off = Math.abs(column.getBoundingClientRect().left - left);
      if (!nearest || off < nearest[1]) nearest = [id, off];
    }
    if (nearest) this.markShown(nearest[0]);
  }

  /** Which column the phone's column bar marks as shown. */
  markShown(status) {
    for (const [id, col] of this.byStatus) {
      if (id === status) col.jump.setAttribute('aria-current', 'true');
      else col.jump.removeAttribute('aria-current');
    }
  }

  // ---------------------------------------------------------------- adding a card

  openAdd(status = 'todo') {
    const col = this.byStatus.get(status);
    col.opener.hidden = true;
    col.form.hidden = false;
    this.showColumn(status);
    col.input.focus({ preventScroll: true });
  }

  closeAdd(status) {
    const col = this.byStatus.get(status);
    col.form.hidden = true;
    col.opener.hidden = false;
    col.error.hidden = true;
    col.input.value = '';
    col.opener.focus();
  }

  async create(status) {
    const board = this.board;
    const col = this.byStatus.get(status);
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
      const res = await board.api.request('POST', '/api/tasks', {
        body: { title, status },
        idempotencyKey: key,
      });
      if (res.ok) {
        board.writes.noteVersion(res.body);
        board.view.revealId = res.body.id;
        if (board.store.get(res.body.id)) board.render();
        board.announce(`Added “${title}” to ${col.name}.`);
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
