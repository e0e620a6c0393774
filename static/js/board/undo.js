// Archiving and deleting, with undo. A card archived (the usual way to
// take a card off the board: it can be restored from the board's archived
// cards) or deleted (for board admins: gone for good) hides at once and a
// toast offers Undo for UNDO_MS; only then is the write sent — PATCH
// archived:true or DELETE — with If-Match the version the person saw (or
// what this page wrote since). Ctrl+Z undoes the newest removal still
// waiting. A page that goes away sends what is waiting at once, so closing
// the tab never loses one.
//
// A sent removal keeps its card hidden until the store has applied its
// event (or no longer has the task); a failed one brings the card back and
// a toast says why.

import { errorMessage } from '../api.js';
import { uuid } from '../util.js';

const UNDO_MS = 5000;

/** What each kind of removal says, and how it is written. */
const KINDS = {
  archive: { done: 'Archived', doing: 'Archiving', cannot: 'archive', method: 'PATCH', body: { archived: true } },
  delete: { done: 'Deleted', doing: 'Deleting', cannot: 'delete', method: 'DELETE', body: undefined },
};

export class PendingRemovals {
  /**
   * `board` supplies: store, api, toasts, announce, writes, cards,
   * render() and settle().
   */
  constructor(board) {
    this.board = board;
    /** id → {task, kind, timer, toast, seq, sent, key} */
    this.pending = new Map();
    window.addEventListener('pagehide', () => this.flush());
  }

  /** Is the card hidden because this page archived or deleted it? */
  has(id) {
    return this.pending.has(id);
  }

  /** Archive (`kind` 'archive') or delete after UNDO_MS unless undone; the card hides at once. */
  request(id, kind) {
    const board = this.board;
    const task = board.store.get(id);
    if (!task || this.pending.has(id)) return;
    const how = KINDS[kind];
    const focusNext = neighbourCard(board.cards.get(id));
    const entry = { task, kind, timer: null, toast: null, seq: null, sent: false, key: uuid() };
    entry.timer = setTimeout(() => this.send(id), UNDO_MS);
    entry.toast = board.toasts.show(`${how.done} “${task.title}”`, {
      action: 'Undo',
      onAction: () => this.undo(id),
      timeout: UNDO_MS,
    });
    this.pending.set(id, entry);
    board.render();
    board.announce(`${how.done} “${task.title}”. Undo is available for 5 seconds.`);
    if (focusNext && document.activeElement === document.body) focusNext.focus();
  }

  undo(id) {
    const board = this.board;
    const entry = this.pending.get(id);
    if (!entry || entry.sent) return;
    clearTimeout(entry.timer);
    this.pending.delete(id);
    board.render();
    board.cards.get(id)?.focus();
    board.announce(`Restored “${entry.task.title}”.`);
  }

  /** Undo the most recent removal that is still waiting (Ctrl+Z). */
  undoLast() {
    const waiting = [...this.pending].filter(([, e]) => !e.sent);
    if (waiting.length === 0) return false;
    const [id, entry] = waiting.at(-1);
    entry.toast?.close();
    this.undo(id);
    return true;
  }

  send(id) {
    const board = this.board;
    const entry = this.pending.get(id);
    if (!entry || entry.sent) return Promise.resolve();
    entry.sent = true;
    const how = KINDS[entry.kind];
    return board.writes.enqueue(id, async () => {
      // The version the person saw when removing, or what this page wrote since.
      const version = Math.max(entry.task.version, board.writes.ownVersion(id));
      let res;
      try {
        res = await board.api.request(how.method, `/api/tasks/${encodeURIComponent(id)}`, {
          body: how.body,
          ifMatch: version,
          idempotencyKey: entry.key,
        });
      } catch (err) {
        this.pending.delete(id);
        board.render();
        board.toasts.show(`${how.doing} “${entry.task.title}” may not have been saved: ${err.message}`, {
          kind: 'error',
        });
        return;
      }
      if (res.ok) board.writes.noteVersion(res.body);
      if (res.ok || res.status === 404) {
        entry.seq = res.seq;
        board.settle();
        board.render();
        return;
      }
      this.pending.delete(id);
      board.render();
      board.toasts.show(
        res.status === 412
          ? `“${entry.task.title}” was changed by someone else meanwhile, so it was not ${how.done.toLowerCase()}.`
          : `Could not ${how.cannot} “${entry.task.title}”: ${errorMessage(res)}`,
        { kind: 'error', timeout: 7000 },
      );
    });
  }

  /** The page is going away: send the removals that are waiting for their undo time. */
  flush() {
    const board = this.board;
    for (const [id, entry] of this.pending) {
      if (entry.sent) continue;
      clearTimeout(entry.timer);
      entry.sent = true;
      // keepalive: the request outlives the page, which the queue would not.
      const how = KINDS[entry.kind];
      fetch(`${board.api.current}/api/tasks/${encodeURIComponent(id)}`, {
        method: how.method,
        keepalive: true,
        credentials: 'include',
        body: how.body ? JSON.stringify(how.body) : undefined,
        headers: {
          ...(how.body ? { 'Content-Type': 'application/json' } : {}),
          ...(board.api.csrf ? { 'X-Taskraft-CSRF': board.api.csrf } : {}),
          'If-Match': `"${Math.max(entry.task.version, board.writes.ownVersion(id))}"`,
          'Idempotency-Key': entry.key,
        },
      }).catch(() => {});
    }
  }

  /** The store reached `seq`: forget the sent removals it now shows. */
  settle(seq) {
    for (const [id, entry] of this.pending) {
      if (!entry.sent) continue;
      if (!this.board.store.get(id) || (entry.seq != null && seq >= entry.seq)) this.pending.delete(id);
    }
  }
}

/** The card to focus when `el`'s card goes: the next in its column, else the one before. */
function neighbourCard(el) {
  if (!el) return null;
  let n = el.nextElementSibling;
  while (n && !n.classList.contains('card')) n = n.nextElementSibling;
  if (n) return n;
  let p = el.previousElementSibling;
  while (p && !p.classList.contains('card')) p = p.previousElementSibling;
  return p;
}
