// The board on screen: its columns of cards, created, moved (by pointer or
// keyboard), archived and deleted with undo; its columns added, edited,
// reordered and deleted. This file builds the parts, routes between them
// and is all that app.js and dialog.js use; each part is one file under
// board/:
//
//   columns.js        the frame: columns, counts against WIP limits, "Add a card", the phone's column bar
//   column-edit.js    a column's menu, its dialogs, "Add a column", moving a column with the keyboard
//   column-drag.js    moving a column with the pointer
//   render.js         the cards drawn from the store and the overlays
//   moves.js          a move from drop to event: its overlay and its write
//   undo.js           an archiving or a deletion held back for its undo time, then sent
//   write-queue.js    one write at a time per task; the versions this page wrote
//   drag.js           moving a card with the pointer
//   keyboard-nav.js   going from card to card: one Tab stop per column
//   keyboard-move.js  moving a card with the keyboard
//
// What is drawn is the committed state (the store, fed by the server's
// events) plus two short-lived overlays of this page's own unfinished
// actions: a card being moved shows at its new place until the event of the
// move arrives (or the move fails and it goes back), and a card being
// archived or deleted is hidden for the few seconds in which that can be
// undone.
// Neither can add a card, so nothing is ever shown twice.
//
// The parts reach each other through the board (`board.moves.shown(task)`);
// each one's constructor says what it uses.

import { ColumnDrag } from './board/column-drag.js';
import { ColumnEditor } from './board/column-edit.js';
import { Columns } from './board/columns.js';
import { PointerDrag } from './board/drag.js';
import { KeyboardMove } from './board/keyboard-move.js';
import { KeyboardNav } from './board/keyboard-nav.js';
import { Moves } from './board/moves.js';
import { CardsView } from './board/render.js';
import { PendingRemovals } from './board/undo.js';
import { WriteQueue } from './board/write-queue.js';
import { isTyping } from './util.js';

export class Board {
  constructor({ root, nav, moveHelp, store, api, filters, toasts, announce, openTask, loadMore }) {
    this.root = root;
    this.store = store;
    this.api = api;
    this.filters = filters;
    this.toasts = toasts;
    this.announce = announce;
    this.openTask = openTask;
    /** (columnId) => the promise of the column's next page (boards.js). */
    this.loadMore = loadMore;
    /** False for a viewer of this board: cards cannot be added, moved, archived or deleted. */
    this.canWrite = true;
    /** Columns may be added, edited, reordered and deleted (not by a viewer). */
    this.canEditColumns = true;
    /** Cards may be deleted for good (board admins); the others archive. */
    this.canDelete = true;
    this.writes = new WriteQueue(store);
    this.moves = new Moves(this);
    this.removals = new PendingRemovals(this);
    this.view = new CardsView(this);
    this.columns = new Columns(this, nav);
    this.editor = new ColumnEditor(this);
    this.columnDrag = new ColumnDrag(this);
    this.pointer = new PointerDrag(this);
    this.keys = new KeyboardNav(this);
    this.keyMove = new KeyboardMove(this, moveHelp);
    // One listener for the keys pressed on a card: while a card is picked up
    // they move it, otherwise they go from card to card. Two listeners would
    // each see the key that ends the other's mode (m picks up, m drops).
    this.root.addEventListener('keydown', (e) => {
      const card = e.target.closest?.('.card');
      if (!card || isTyping(e.target) || e.ctrlKey || e.metaKey || e.altKey) return;
      if (this.keyMove.moving) this.keyMove.onKey(e, card.dataset.taskId);
      else this.keys.onKey(e, card);
    });
  }

  render() {
    this.view.render();
  }

  /** After the store moved forward: drop the overlays that its events now cover. */
  settle() {
    const seq = this.store.lastSeq;
    this.moves.settle(seq);
    this.removals.settle(seq);
    this.editor.settle(seq);
    if (this.moving && !this.store.get(this.moving.id)) this.keyMove.forget();
  }

  /** Briefly highlight the cards that events just changed. */
  flash(ids) {
    this.view.flash(ids);
  }

  /** Open the "Add a card" form of the first column (the `n` shortcut). */
  openAdd() {
    if (!this.canWrite) return;
    this.columns.openAdd();
  }

  /** Hide the card and archive it once its undo time is over. */
  requestArchive(id) {
    if (!this.canWrite) return;
    this.removals.request(id, 'archive');
  }

  /** Hide the card and delete it once its undo time is over (board admins). */
  requestDelete(id) {
    if (!this.canDelete) return;
    this.removals.request(id, 'delete');
  }

  /** Undo the most recent archiving or deletion that is still waiting (Ctrl+Z). */
  undoLast() {
    return this.removals.undoLast();
  }

  /**
   * A write's answer says its column is now over its WIP limit (the server
   * takes the card anyway): say so, beside the header's red count.
   */
  reportBreach(body) {
    const breach = body?.wip_breach;
    if (!breach) return;
    const name = this.store.column(String(breach.column_id))?.name ?? 'The column';
    this.toasts.show(`${name} is over its WIP limit: ${breach.cards} cards, limit ${breach.limit}.`, { kind: 'error' });
  }

  /** Run `fn` after every earlier write of this page to the same task has finished. */
  enqueue(id, fn) {
    return this.writes.enqueue(id, fn);
  }

  /** A write answered with `task`: later writes name its version in If-Match. */
  noteVersion(task) {
    this.writes.noteVersion(task);
  }

  /** Focus the first card on the board (the `b` shortcut). */
  focusFirst() {
    return this.keys.focusFirst();
  }

  /** id → the card's element. */
  get cards() {
    return this.view.cards;
  }

  /** A card carried by the pointer (drag.js). */
  get drag() {
    return this.pointer.active;
  }

  /** A card moved with the keyboard (keyboard-move.js), or null. */
  get moving() {
    return this.keyMove.moving;
  }
}
