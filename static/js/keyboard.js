// The board from the keyboard: going from card to card, and moving a card.
//
// Each column is one Tab stop (a roving tabindex): the column's current card
// has tabindex 0, every other card -1, and the arrow keys (or h j k l, Home,
// End) go from card to card, taking the Tab stop along. So Tab goes column,
// "Add a card", next column, …, and the toast's Undo right after the board.
//
// `m` picks the focused card up: the arrows move it (shown at once, nothing
// written), Enter drops it (one write), Esc puts it back. While a card is
// picked up, the keys to press are shown on screen.

import { STATUSES, STATUS_NAME, isTyping } from './util.js';

export class KeyboardNav {
  /**
   * `board` supplies: root, columns, cards (id → element), store, overlay,
   * shown(task), positionFor(…), commitMove(…), render(), announce(text),
   * openTask(id), requestDelete(id).
   */
  constructor(board, moveHelp) {
    this.board = board;
    this.moveHelp = moveHelp;
    /** status → the id of the column's Tab stop. */
    this.stops = new Map();
    this.moving = null;
    this.bind();
  }

  bind() {
    const board = this.board;
    board.root.addEventListener('keydown', (e) => {
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
          board.openTask(id);
          break;
        case 'm':
          e.preventDefault();
          this.startMove(id);
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
        case 'Home':
        case 'End': {
          e.preventDefault();
          const ids = this.visibleIds(card.dataset.status);
          this.focusCard(e.key === 'Home' ? ids[0] : ids.at(-1));
          break;
        }
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
          board.requestDelete(id);
          break;
        default:
          break;
      }
    });
    board.root.addEventListener('focusin', (e) => {
      const card = e.target.closest?.('.card');
      if (card?.dataset.taskId && card.dataset.status) {
        this.stops.set(card.dataset.status, card.dataset.taskId);
        this.updateTabStops();
      }
    });
    document.addEventListener('focusin', (e) => {
      // Focus went elsewhere while a card was being moved: cancel the move.
      if (this.moving && !e.target.closest?.(`.card[data-task-id="${CSS.escape(this.moving.id)}"]`)) {
        this.cancelMove();
      }
    });
  }

  /** After a render: exactly one card per column takes part in Tab. */
  updateTabStops() {
    for (const { id: status } of STATUSES) {
      const ids = this.visibleIds(status);
      let stop = this.stops.get(status);
      if (!ids.includes(stop)) stop = ids[0];
      if (stop) this.stops.set(status, stop);
      else this.stops.delete(status);
      for (const id of ids) {
        const el = this.board.cards.get(id);
        const want = id === stop ? '0' : '-1';
        if (el && el.getAttribute('tabindex') !== want) el.setAttribute('tabindex', want);
      }
    }
  }

  visibleIds(status) {
    return [...this.board.columns.get(status).list.children]
      .filter((el) => el.classList.contains('card'))
      .map((el) => el.dataset.taskId);
  }

  focusCard(id) {
    if (id) this.board.cards.get(id)?.focus();
  }

  focusSibling(card, delta) {
    const ids = this.visibleIds(card.dataset.status);
    this.focusCard(ids[ids.indexOf(card.dataset.taskId) + delta]);
  }

  focusColumn(card, delta) {
    const order = STATUSES.map((s) => s.id);
    let c = order.indexOf(card.dataset.status);
    const at = this.visibleIds(card.dataset.status).indexOf(card.dataset.taskId);
    for (c += delta; c >= 0 && c < order.length; c += delta) {
      const ids = this.visibleIds(order[c]);
      if (ids.length) {
        this.focusCard(ids[Math.min(at, ids.length - 1)]);
        return;
      }
    }
  }

  /** Focus the first card on the board. */
  focusFirst() {
    for (const { id } of STATUSES) {
      const ids = this.visibleIds(id);
      if (ids.length) {
        this.focusCard(ids[0]);
        return true;
      }
    }
    return false;
  }

  // ---------------------------------------------------------------- moving a card

  startMove(id) {
    const board = this.board;
    const task = board.store.get(id);
    if (!task || board.overlay.get(id)?.seq === null) {
      if (task) board.announce('That card is still being saved; try again in a moment.');
      return;
    }
    const shown = board.shown(task);
    this.moving = { id, base: task, startStatus: shown.status, startPosition: shown.position };
    board.overlay.set(id, { status: shown.status, position: shown.position, token: 'preview', seq: null, preview: true });
    board.render();
    this.focusCard(id);
    this.showHelp(task.title);
    board.announce(
      `Moving “${task.title}”. Arrow keys move it between columns and up or down. Enter drops it, Escape cancels.`,
    );
  }

  showHelp(title) {
    this.moveHelp.replaceChildren(
      'Moving “',
      title.length > 40 ? `${title.slice(0, 39)}…` : title,
      '”: ← → column · ↑ ↓ place · Enter drop · Esc cancel',
    );
    this.moveHelp.hidden = false;
  }

  hideHelp() {
    this.moveHelp.hidden = true;
  }

  moveKey(e) {
    const board = this.board;
    const mv = this.moving;
    const ov = board.overlay.get(mv.id);
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
        this.finishMove();
        return;
      case 'Escape':
        e.preventDefault();
        e.stopPropagation();
        this.cancelMove(true);
        return;
      case 'Tab':
        this.cancelMove();
        return;
      default:
        return;
    }
    e.preventDefault();
    if (!target) return;
    const list = target.status === status ? others : this.visibleIds(target.status);
    const prevId = list[target.index - 1] ?? null;
    const nextId = list[target.index] ?? null;
    ov.status = target.status;
    ov.position = board.positionFor(mv.id, target.status, prevId, nextId);
    board.render();
    this.focusCard(mv.id);
    const now = this.visibleIds(target.status);
    board.announce(`${STATUS_NAME[target.status]}, position ${now.indexOf(mv.id) + 1} of ${now.length}.`);
  }

  finishMove() {
    const board = this.board;
    const mv = this.moving;
    this.moving = null;
    this.hideHelp();
    const ov = board.overlay.get(mv.id);
    board.overlay.delete(mv.id);
    if (!ov || (ov.status === mv.startStatus && ov.position === mv.startPosition)) {
      board.render();
      this.focusCard(mv.id);
      board.announce('Move cancelled: the card is where it was.');
      return;
    }
    board.commitMove(mv.id, ov.status, ov.position, mv.base);
    this.focusCard(mv.id);
  }

  cancelMove(refocus = false) {
    const board = this.board;
    const mv = this.moving;
    if (!mv) return;
    this.moving = null;
    this.hideHelp();
    if (board.overlay.get(mv.id)?.preview) board.overlay.delete(mv.id);
    board.render();
    if (refocus) this.focusCard(mv.id);
    board.announce('Move cancelled.');
  }

  /** The card being moved was deleted meanwhile. */
  forget() {
    this.moving = null;
    this.hideHelp();
  }
}
