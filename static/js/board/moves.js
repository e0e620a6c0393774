// A move, from the drop to its event. The card shows at once at its new
// place (an overlay over the committed task), one PATCH with If-Match saves
// it, and the overlay stays until the store has applied the event of the
// move; if the move fails the overlay goes, the card goes back, and a toast
// says why.
//
// The same overlay, marked `preview`, carries a card that the keyboard is
// moving (keyboard-move.js): shown where the arrows put it, written only
// when it is dropped.
//
// Where a card lands is said by its visible neighbours (the filters may hide
// others); positionFor turns them into a position between the real ones.
// A move names the column (`column_id`), on any board.

import { errorMessage } from '../api.js';
import { placeFields } from '../place.js';
import { boardOrder, positionBetween } from '../store.js';
import { uuid } from '../util.js';

export class Moves {
  /**
   * `board` supplies: store, api, toasts, announce, writes, removals (has),
   * columns, reportBreach(body), render() and settle().
   */
  constructor(board) {
    this.board = board;
    /** id → {columnId, position, token, seq, preview} */
    this.overlay = new Map();
  }

  /** The task as this page shows it: the committed one, moved by an overlay. */
  shown(task) {
    const ov = this.overlay.get(task.id);
    if (!ov) return task;
    const category = this.board.store.column(ov.columnId)?.category ?? task.status;
    return { ...task, column_id: ov.columnId, status: category, position: ov.position };
  }

  /** Visible neighbours → the position between the real neighbours. */
  positionFor(id, columnId, prevId, nextId) {
    const store = this.board.store;
    const column = [];
    for (const t of store.tasks.values()) {
      if (t.id === id || this.board.removals.has(t.id)) continue;
      const s = this.shown(t);
      if (store.columnOf(s) === columnId) column.push(s);
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

  /** Move a card next to the visible neighbours prevId / nextId of column `columnId` and save it. */
  move(id, columnId, prevId, nextId) {
    const store = this.board.store;
    const task = store.get(id);
    if (!task) return;
    const from = this.shown(task);
    const position = this.positionFor(id, columnId, prevId, nextId);
    if (store.columnOf(from) === columnId && this.sameSlot(id, columnId, prevId, nextId)) {
      return; // dropped where it was
    }
    this.commit(id, columnId, position, task);
  }

  /** Is (prevId, nextId) where the card already is? */
  sameSlot(id, columnId, prevId, nextId) {
    const list = [...this.board.columns.get(columnId).list.children]
      .filter((el) => el.classList.contains('card'))
      .map((el) => el.dataset.taskId);
    const at = list.indexOf(id);
    if (at < 0) return false;
    return (list[at - 1] ?? null) === (prevId ?? null) && (list[at + 1] ?? null) === (nextId ?? null);
  }

  /** Show the card at (columnId, position) and save it; `base` is the committed task the move started from. */
  commit(id, columnId, position, base) {
    const board = this.board;
    const store = board.store;
    const column = store.column(columnId);
    if (!column) return Promise.resolve();
    const token = uuid();
    this.overlay.set(id, { columnId, position, token, seq: null, preview: false });
    board.render();
    board.announce(`Moved “${base.title}” to ${column.name}.`);
    return board.writes.enqueue(id, async () => {
      let version = board.writes.versionOf(id);
      for (let attempt = 0; attempt < 3; attempt++) {
        let res;
        try {
          res = await board.api.request('PATCH', `/api/tasks/${encodeURIComponent(id)}`, {
            body: { ...placeFields(column, store.board), position },
            ifMatch: version,
            idempotencyKey: uuid(),
          });
        } catch (err) {
          this.drop(id, token);
          board.toasts.show(`Moving “${base.title}” may not have been saved: ${err.message}`, { kind: 'error' });
          return;
        }
        if (res.ok) {
          board.writes.noteVersion(res.body);
          board.reportBreach(res.body);
          const ov = this.overlay.get(id);
          if (ov?.token === token) {
            ov.seq = res.seq ?? board.store.lastSeq;
            board.settle();
            board.render();
          }
          return;
        }
        if (res.status === 412) {
          const current = res.body?.error?.current;
          // Someone else changed the card meanwhile. If they did not move it,
          // our move still means what the person meant: apply it on top.
          if (current && store.columnOf(current) === store.columnOf(base) && current.position === base.position) {
            version = current.version;
            continue;
          }
          this.drop(id, token);
          board.toasts.show(`“${base.title}” was moved by someone else meanwhile; your move was not applied.`, {
            kind: 'error',
            timeout: 7000,
          });
          return;
        }
        this.drop(id, token);
        board.toasts.show(
          res.status === 404
            ? `“${base.title}” was deleted by someone else.`
            : `Could not move “${base.title}”: ${errorMessage(res)}`,
          { kind: 'error', timeout: 7000 },
        );
        return;
      }
      this.drop(id, token);
    });
  }

  /** The move `token` failed: the card goes back, unless a newer move replaced it. */
  drop(id, token) {
    if (this.overlay.get(id)?.token === token) {
      this.overlay.delete(id);
      this.board.render();
    }
  }

  /** The store reached `seq`: drop the overlays whose move it now shows. */
  settle(seq) {
    for (const [id, ov] of this.overlay) {
      if (ov.seq != null && seq >= ov.seq) this.overlay.delete(id);
      else if (!this.board.store.get(id) && !ov.preview && ov.seq != null) this.overlay.delete(id);
    }
  }
}
