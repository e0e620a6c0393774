// Moving cards with the pointer: press and drag with a mouse, long-press
// then drag on a touch screen. A ghost follows the pointer, a placeholder
// shows where the card will land, and the column under the pointer is
// outlined. Esc (wherever the focus is) or a cancelled pointer puts
// everything back and writes nothing; a drop where the card already was
// writes nothing either.
//
// Columns scroll on their own, so carrying a card near the top or bottom of
// a column scrolls that column, and near the side of a phone's board (one
// column wide) scrolls to the next column.

import { h } from '../util.js';

/** A mouse moves this far before a press becomes a drag. */
const DRAG_DISTANCE = 5;
/** On touch, a press held this long picks the card up; moving first scrolls. */
const LONG_PRESS_MS = 350;
const TOUCH_SLOP = 10;
/** Near this many pixels of an edge, the column (or the board) scrolls. */
const EDGE = 48;
const EDGE_STEP = 12;

export class PointerDrag {
  /**
   * `board` supplies: root, columns (each {column, list}), moving (a
   * keyboard move in progress), moves (move), view (dirty), openTask(id),
   * announce(text) and render().
   */
  constructor(board) {
    this.board = board;
    this.drag = null;
    this.press = null;
    this.justDragged = false;
    this.bind();
  }

  get active() {
    return this.drag !== null;
  }

  bind() {
    const root = this.board.root;
    root.addEventListener('pointerdown', (e) => {
      const card = e.target.closest('.card');
      if (!card || e.button !== 0 || this.drag || this.board.moving || !this.board.canWrite) return;
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
          if (this.press === press) this.start(press, press.x, press.y);
        }, LONG_PRESS_MS);
      }
    });
    window.addEventListener('pointermove', (e) => {
      const press = this.press;
      if (this.drag) {
        if (e.pointerId === this.drag.pointerId) this.moveTo(e.clientX, e.clientY);
        return;
      }
      if (!press || e.pointerId !== press.pointerId) return;
      const distance = Math.hypot(e.clientX - press.x, e.clientY - press.y);
      if (press.touch) {
        if (distance > TOUCH_SLOP) this.cancelPress();
      } else if (distance > DRAG_DISTANCE) {
        this.start(press, e.clientX, e.clientY);
      }
    });
    window.addEventListener('pointerup', (e) => {
      if (this.drag && e.pointerId === this.drag.pointerId) this.drop();
      this.cancelPress();
    });
    window.addEventListener('pointercancel', () => {
      if (this.drag) this.end(false);
      this.cancelPress();
    });
    // The focus stays wherever it was (often the body) while a card is
    // carried, so Esc is heard on the whole document, before anything else.
    document.addEventListener(
      'keydown',
      (e) => {
        if (e.key === 'Escape' && this.drag) {
          e.preventDefault();
          e.stopPropagation();
          this.end(false);
          this.board.announce('Move cancelled.');
        }
      },
      true,
    );
    document.addEventListener(
      'touchmove',
      (e) => {
        if (this.drag) e.preventDefault(); // no scrolling while a card is carried
      },
      { passive: false },
    );
    root.addEventListener(
      'click',
      (e) => {
        if (this.justDragged) {
          e.stopPropagation();
          e.preventDefault();
        }
      },
      true,
    );
    root.addEventListener('click', (e) => {
      const card = e.target.closest('.card');
      if (card && !e.target.closest('a, button')) this.board.openTask(card.dataset.taskId);
    });
  }

  cancelPress() {
    if (this.press?.timer) clearTimeout(this.press.timer);
    this.press = null;
  }

  start(press, x, y) {
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
    this.moveTo(x, y);
  }

  moveTo(x, y) {
    const d = this.drag;
    d.ghost.style.transform = `translate(${x - d.dx}px, ${y - d.dy}px) rotate(2deg)`;
    const under = document.elementFromPoint(x, y);
    const column = under?.closest?.('.column');
    if (column?.dataset.columnId) {
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
      for (const c of this.board.columns.values()) c.column.classList.toggle('drop-target', c.column === column);
      // Near the top or bottom of the column's list: scroll the list.
      const r = list.getBoundingClientRect();
      if (y < r.top + EDGE) list.scrollBy(0, -EDGE_STEP);
      else if (y > r.bottom - EDGE) list.scrollBy(0, EDGE_STEP);
    }
    // Near the side of a board that scrolls sideways (a phone): the next column.
    const board = this.board.root;
    if (board.scrollWidth > board.clientWidth) {
      if (x < EDGE) board.scrollBy(-EDGE_STEP, 0);
      else if (x > window.innerWidth - EDGE) board.scrollBy(EDGE_STEP, 0);
    }
  }

  drop() {
    const d = this.drag;
    const list = d.placeholder.parentElement;
    const columnId = list?.dataset.columnId;
    const isCard = (el) => el && el.classList.contains('card') && el !== d.card;
    let prev = d.placeholder.previousElementSibling;
    while (prev && !isCard(prev)) prev = prev.previousElementSibling;
    let next = d.placeholder.nextElementSibling;
    while (next && !isCard(next)) next = next.nextElementSibling;
    this.end(true);
    if (columnId) this.board.moves.move(d.id, columnId, prev?.dataset.taskId ?? null, next?.dataset.taskId ?? null);
  }

  /** Put the page back as it was; `dropped` says whether a move follows. */
  end(dropped) {
    const d = this.drag;
    if (!d) return;
    d.ghost.remove();
    d.placeholder.remove();
    d.card.classList.remove('is-dragging');
    document.body.classList.remove('is-dragging-card');
    for (const c of this.board.columns.values()) c.column.classList.remove('drop-target');
    this.drag = null;
    // The pointerup of a cancelled drag must not open the card either.
    this.justDragged = true;
    const clear = () => {
      this.justDragged = false;
    };
    if (dropped) setTimeout(clear, 0);
    else window.addEventListener('pointerup', () => setTimeout(clear, 0), { once: true });
    if (this.board.view.dirty || !dropped) this.board.render();
  }
}
