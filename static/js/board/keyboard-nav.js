// Going from card to card with the keyboard.
//
// Each column is one Tab stop (a roving tabindex): the column's current card
// has tabindex 0, every other card -1, and the arrow keys (or h j k l, Home,
// End) go from card to card, taking the Tab stop along. So Tab goes column,
// "Add a card", next column, …, and the toast's Undo right after the board.
// On a card, Enter (or Space, e) opens it, Delete archives it and
// Shift+Delete deletes it (both with undo, undo.js), and m picks it up to
// move it (keyboard-move.js).

export class KeyboardNav {
  /**
   * `board` supplies: root, columns, cards (id → element), keyMove (start),
   * openTask(id), requestArchive(id), requestDelete(id).
   */
  constructor(board) {
    this.board = board;
    /** column id → the id of the column's Tab stop. */
    this.stops = new Map();
    board.root.addEventListener('focusin', (e) => {
      const card = e.target.closest?.('.card');
      if (card?.dataset.taskId && card.dataset.columnId) {
        this.stops.set(card.dataset.columnId, card.dataset.taskId);
        this.updateTabStops();
      }
    });
  }

  /** A key pressed on `card` while no card is being moved. */
  onKey(e, card) {
    const board = this.board;
    const id = card.dataset.taskId;
    switch (e.key) {
      case 'Enter':
      case ' ':
      case 'e':
        e.preventDefault();
        board.openTask(id);
        break;
      case 'm':
        e.preventDefault();
        board.keyMove.start(id);
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
        const ids = this.visibleIds(card.dataset.columnId);
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
        if (e.shiftKey) board.requestDelete(id);
        else board.requestArchive(id);
        break;
      default:
        break;
    }
  }

  /** After a render: exactly one card per column takes part in Tab. */
  updateTabStops() {
    for (const columnId of this.board.columns.ids()) {
      const ids = this.visibleIds(columnId);
      let stop = this.stops.get(columnId);
      if (!ids.includes(stop)) stop = ids[0];
      if (stop) this.stops.set(columnId, stop);
      else this.stops.delete(columnId);
      for (const id of ids) {
        const el = this.board.cards.get(id);
        const want = id === stop ? '0' : '-1';
        if (el && el.getAttribute('tabindex') !== want) el.setAttribute('tabindex', want);
      }
    }
  }

  /** The ids of the cards column `columnId` shows, top to bottom. */
  visibleIds(columnId) {
    const col = this.board.columns.get(columnId);
    if (!col) return [];
    return [...col.list.children]
      .filter((el) => el.classList.contains('card'))
      .map((el) => el.dataset.taskId);
  }

  focusCard(id) {
    if (id) this.board.cards.get(id)?.focus();
  }

  focusSibling(card, delta) {
    const ids = this.visibleIds(card.dataset.columnId);
    this.focusCard(ids[ids.indexOf(card.dataset.taskId) + delta]);
  }

  focusColumn(card, delta) {
    const order = this.board.columns.ids();
    let c = order.indexOf(card.dataset.columnId);
    const at = this.visibleIds(card.dataset.columnId).indexOf(card.dataset.taskId);
    for (c += delta; c >= 0 && c < order.length; c += delta) {
      const ids = this.visibleIds(order[c]);
      if (ids.length) {
        this.focusCard(ids[Math.min(at, ids.length - 1)]);
        return;
      }
    }
  }

  /** Focus the first card on the board (the `b` shortcut). */
  focusFirst() {
    for (const id of this.board.columns.ids()) {
      const ids = this.visibleIds(id);
      if (ids.length) {
        this.focusCard(ids[0]);
        return true;
      }
    }
    return false;
  }
}
