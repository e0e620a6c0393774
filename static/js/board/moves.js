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

import { errorMessage } from '../api.js';
import { boardOrder, positionBetween } from '../store.js';
import { STATUS_NAME, uuid } from '../util.js';

export class Moves {
  /**
   * `board` supplies: store, api, toasts, announce, writes, deletes (has),
   * columns, render() and settle().
   */
  constructor(board) {
    this.board = board;
    /** id → {status, position, token, seq, preview} */
    this.overlay = new Map();
  }

  /** The task as this page shows it: the committed one, moved by an overlay. */
  shown(task) {
    const ov = this.overlay.get(task.id);
    return ov ? { ...task, status: ov.status, position: ov.position } : task;
  }

  /** Visible neighbours → the position between the real neighbours. */
  positionFor(id, status, prevId, nextId) {
    const column = [];
    for (const t of this.board.store.tasks.values()) {
      if (t.id === id || this.board.deletes.has(t.id)) continue;
      const s = this.shown(t);
      if (s.status === status) column.push(s);
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

  /** Move a card next to the visible neighbours prevId / nextId of column `status` and save it. */
  move(id, status, prevId, nextId) {
    const task = this.board.store.get(id);
    if (!task) return;
    const from = this.shown(task);
    const position = this.positionFor(id, status, prevId, nextId);
    if (from.status === status && this.sameSlot(id, status, prevId, nextId)) {
      return; // dropped where it was
    }
    this.commit(id, status, position, task);
  }

  /** Is (prevId, nextId) where the card already is? */
  sameSlot(id, status, prevId, nextId) {
    const list = [...this.board.columns.get(status).list.children]
      .filter((el) => el.classList.contains('card'))
      .map((el) => el.dataset.taskId);
    const at = list.indexOf(id);
    if (at < 0) return false;
    return (list[at - 1] ?? null) === (prevId ?? null) && (list[at + 1] ?? null) === (nextId ?? null);
  }

  /** Show the card at (status, position) and save it; `base` is the committed task the move started from. */
  commit(id, status, position, base) {
    const board = this.board;
    const token = uuid();
    this.overlay.set(id, { status, position, token, seq: null, preview: false });
    board.render();
    board.announce(`Moved “${base.title}” to ${STATUS_NAME[status]}.`);
    return board.writes.enqueue(id, async () => {
      let version = board.writes.versionOf(id);
      for (let attempt = 0; attempt < 3; attempt++) {
        let res;
        try {
          res = await board.api.request('PATCH', `/api/tasks/${encodeURIComponent(id)}`, {
            body: { status, position },
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
          if (current && current.status === base.status && current.position === base.position) {
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
