// Moving a card with the keyboard. `m` on a card picks it up: the arrows
// (or h j k l) move it between columns and up or down, shown at once and
// nothing written; Enter (or Space, m) drops it with one write (moves.js),
// Esc puts it back, and so does the focus leaving it. While a card is picked
// up, the keys to press are shown on screen and every step is announced.

export class KeyboardMove {
  /**
   * `board` supplies: store, moves (overlay, shown, positionFor, commit),
   * keys (focusCard, visibleIds), render() and announce(text). `moveHelp`
   * shows the keys to press.
   */
  constructor(board, moveHelp) {
    this.board = board;
    this.moveHelp = moveHelp;
    /** The card picked up: {id, base, startColumn, startPosition}, or null. */
    this.moving = null;
    document.addEventListener('focusin', (e) => {
      // Focus went elsewhere while a card was being moved: cancel the move.
      if (this.moving && !e.target.closest?.(`.card[data-task-id="${CSS.escape(this.moving.id)}"]`)) {
        this.cancel();
      }
    });
  }

  start(id) {
    if (!this.board.canWrite) return;
    const board = this.board;
    const task = board.store.get(id);
    if (!task || board.moves.overlay.get(id)?.seq === null) {
      if (task) board.announce('That card is still being saved; try again in a moment.');
      return;
    }
    const shown = board.moves.shown(task);
    const columnId = board.store.columnOf(shown);
    this.moving = { id, base: task, startColumn: columnId, startPosition: shown.position };
    board.moves.overlay.set(id, {
      columnId,
      position: shown.position,
      token: 'preview',
      seq: null,
      preview: true,
    });
    board.render();
    board.keys.focusCard(id);
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

  /** A key pressed on card `id` while a card is picked up. */
  onKey(e, id) {
    const board = this.board;
    const keys = board.keys;
    const mv = this.moving;
    if (mv.id !== id) return;
    const ov = board.moves.overlay.get(mv.id);
    const current = ov.columnId;
    const order = board.columns.ids();
    const ids = keys.visibleIds(current);
    const at = ids.indexOf(mv.id);
    const others = ids.filter((x) => x !== mv.id);
    let target = null;
    switch (e.key) {
      case 'ArrowUp':
      case 'k':
        if (at > 0) target = { column: current, index: at - 1 };
        break;
      case 'ArrowDown':
      case 'j':
        if (at < ids.length - 1) target = { column: current, index: at + 1 };
        break;
      case 'ArrowLeft':
      case 'h':
      case 'ArrowRight':
      case 'l': {
        const delta = e.key === 'ArrowLeft' || e.key === 'h' ? -1 : 1;
        const c = order.indexOf(current) + delta;
        if (c >= 0 && c < order.length) {
          const len = keys.visibleIds(order[c]).length;
          target = { column: order[c], index: Math.min(Math.max(at, 0), len) };
        }
        break;
      }
      case 'Enter':
      case ' ':
      case 'm':
        e.preventDefault();
        this.finish();
        return;
      case 'Escape':
        e.preventDefault();
        e.stopPropagation();
        this.cancel(true);
        return;
      case 'Tab':
        this.cancel();
        return;
      default:
        return;
    }
    e.preventDefault();
    if (!target) return;
    const list = target.column === current ? others : keys.visibleIds(target.column);
    const prevId = list[target.index - 1] ?? null;
    const nextId = list[target.index] ?? null;
    ov.columnId = target.column;
    ov.position = board.moves.positionFor(mv.id, target.column, prevId, nextId);
    board.render();
    keys.focusCard(mv.id);
    const now = keys.visibleIds(target.column);
    const name = board.store.column(target.column)?.name ?? 'Column';
    board.announce(`${name}, position ${now.indexOf(mv.id) + 1} of ${now.length}.`);
  }

  /** Drop the card where it is shown: one write, or none if it is back where it started. */
  finish() {
    const board = this.board;
    const mv = this.moving;
    this.moving = null;
    this.hideHelp();
    const ov = board.moves.overlay.get(mv.id);
    board.moves.overlay.delete(mv.id);
    if (!ov || (ov.columnId === mv.startColumn && ov.position === mv.startPosition)) {
      board.render();
      board.keys.focusCard(mv.id);
      board.announce('Move cancelled: the card is where it was.');
      return;
    }
    board.moves.commit(mv.id, ov.columnId, ov.position, mv.base);
    board.keys.focusCard(mv.id);
  }

  /** Put the card back where it was; `refocus` gives it the focus again. */
  cancel(refocus = false) {
    const board = this.board;
    const mv = this.moving;
    if (!mv) return;
    this.moving = null;
    this.hideHelp();
    if (board.moves.overlay.get(mv.id)?.preview) board.moves.overlay.delete(mv.id);
    board.render();
    if (refocus) board.keys.focusCard(mv.id);
    board.announce('Move cancelled.');
  }

  /** The card being moved was deleted meanwhile. */
  forget() {
    this.moving = null;
    this.hideHelp();
  }
}
