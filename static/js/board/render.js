// Drawing the cards: every loaded task (the store) as this page shows it
// — moved by its move overlay, left out while its archiving or deletion
// waits for undo — that the filters let through, in board order, in its
// column. A card's
// element is kept across renders and redrawn only when what it shows
// changed, so a render after every event is cheap, and the focus stays on
// the card it was on.

import { boardOrder } from '../store.js';
import { PRIORITY_NAME, dueState, formatDay, h, hashOf, icon, initials } from '../util.js';

const FLASH_MS = 1600;

export class CardsView {
  /**
   * `board` supplies: store, filters, columns, moves (shown, overlay),
   * removals (has), drag, moving and keys (updateTabStops).
   */
  constructor(board) {
    this.board = board;
    /** id → the card's element, kept across renders */
    this.cards = new Map();
    /** id → the timer that ends the card's flash */
    this.flashing = new Map();
    /** A render was asked for while a card was carried: drag.js renders on the drop. */
    this.dirty = false;
    /** A card this page just added: scrolled into view once it is drawn. */
    this.revealId = null;
  }

  render() {
    const board = this.board;
    if (board.drag) {
      this.dirty = true; // redraw once the card is dropped
      return;
    }
    this.dirty = false;
    board.columns.sync();
    const focused = document.activeElement?.closest?.('.card')?.dataset.taskId ?? null;
    const byColumn = new Map(board.columns.ids().map((id) => [id, []]));
    for (const committed of board.store.tasks.values()) {
      if (board.removals.has(committed.id)) continue;
      const task = board.moves.shown(committed);
      const shown = byColumn.get(board.store.columnOf(task));
      if (shown && board.filters.matches(task)) shown.push(task);
    }
    const alive = new Set();
    for (const [columnId, shown] of byColumn) {
      shown.sort(boardOrder);
      const { list } = board.columns.get(columnId);
      const category = board.store.column(columnId)?.category ?? '';
      let cursor = list.firstElementChild;
      for (const task of shown) {
        alive.add(task.id);
        const el = this.card(task, columnId, category);
        if (el === cursor) {
          cursor = cursor.nextElementSibling;
        } else {
          list.insertBefore(el, cursor);
        }
      }
      while (cursor) {
        const next = cursor.nextElementSibling;
        cursor.remove();
        cursor = next;
      }
      board.columns.showCount(columnId, shown.length, board.filters.active());
    }
    for (const id of this.cards.keys()) {
      if (!alive.has(id)) this.cards.delete(id);
    }
    board.keys.updateTabStops();
    // Moving an element in the DOM takes the focus away: give it back.
    if (focused && document.activeElement === document.body) {
      const el = this.cards.get(focused);
      if (el) el.focus({ preventScroll: true });
    }
    if (this.revealId && this.cards.has(this.revealId)) {
      this.cards.get(this.revealId).scrollIntoView({ block: 'nearest' });
      this.revealId = null;
    }
  }

  /** The card element for `task` in column `columnId`, reused across renders, redrawn when it changed. */
  card(task, columnId, category) {
    const board = this.board;
    let el = this.cards.get(task.id);
    const ov = board.moves.overlay.get(task.id);
    const sig = JSON.stringify([
      task.version,
      columnId,
      task.title,
      task.priority,
      task.assignee,
      task.labels,
      task.due_date,
      Boolean(task.description),
      task.comment_count ?? 0,
      task.checklist_progress ?? null,
      dueState(task),
      ov ? (ov.preview ? 'preview' : 'pending') : '',
      board.moving?.id === task.id,
    ]);
    if (!el) {
      el = h('li', {
        class: 'card',
        tabindex: '-1',
        'aria-roledescription': 'card',
        'aria-describedby': 'card-help',
        dataset: { taskId: task.id },
      });
      this.cards.set(task.id, el);
    }
    if (el.dataset.sig === sig) return el;
    el.dataset.sig = sig;
    el.dataset.columnId = columnId;
    // The column's category: what `status` the task has there.
    el.dataset.status = category;
    el.dataset.version = String(task.version);
    el.dataset.priority = task.priority;
    el.classList.toggle('pending', Boolean(ov && !ov.preview));
    el.classList.toggle('moving', board.moving?.id === task.id);

    const due = dueState(task);
    const parts = [];
    if (task.labels.length) {
      parts.push(
        h(
          'ul',
          { class: 'labels', 'aria-label': 'Labels' },
          task.labels.map((l) => h('li', { class: `label lc${hashOf(l) % 8}` }, l)),
        ),
      );
    }
    parts.push(h('p', { class: 'card-title' }, task.title));
    const meta = h('div', { class: 'card-meta' });
    meta.append(h('span', { class: `prio prio-${task.priority}` }, PRIORITY_NAME[task.priority]));
    if (task.due_date) {
      const dueText = formatDay(task.due_date);
      meta.append(
        h(
          'span',
          {
            class: `due due-${due}`,
            title: `Due ${task.due_date}${due === 'overdue' ? ' (overdue)' : ''}`,
          },
          icon('calendar'),
          due === 'overdue' ? `Overdue · ${dueText}` : dueText,
        ),
      );
    }
    if (task.description) {
      meta.append(h('span', { class: 'has-desc', title: 'Has a description' }, icon('text')));
    }
    const comments = task.comment_count ?? 0;
    if (comments > 0) {
      meta.append(
        h(
          'span',
          { class: 'comment-count', title: `${comments} comment${comments === 1 ? '' : 's'}` },
          h('span', { 'aria-hidden': 'true' }, '💬 '),
          String(comments),
        ),
      );
    }
    const checks = task.checklist_progress;
    if (checks?.total > 0) {
      meta.append(
        h(
          'span',
          {
            class: `checklist-badge${checks.done === checks.total ? ' complete' : ''}`,
            title: `${checks.done} of ${checks.total} checklist items done`,
          },
          h('span', { 'aria-hidden': 'true' }, '☑ '),
          `${checks.done}/${checks.total}`,
        ),
      );
    }
    if (task.assignee) {
      meta.append(
        h(
          'span',
          { class: `avatar ac${hashOf(task.assignee) % 8}`, title: `Assigned to ${task.assignee}` },
          initials(task.assignee),
        ),
      );
    }
    parts.push(meta);
    el.replaceChildren(...parts);

    const label = [
      task.title,
      `${PRIORITY_NAME[task.priority]} priority`,
      task.assignee ? `assigned to ${task.assignee}` : 'unassigned',
      task.due_date ? `due ${task.due_date}${due === 'overdue' ? ', overdue' : ''}` : null,
      task.labels.length ? `labels ${task.labels.join(', ')}` : null,
      comments > 0 ? `${comments} comment${comments === 1 ? '' : 's'}` : null,
      checks?.total > 0 ? `checklist ${checks.done} of ${checks.total} done` : null,
      ov && !ov.preview ? 'saving' : null,
    ]
      .filter(Boolean)
      .join('; ');
    el.setAttribute('aria-label', label);
    return el;
  }

  /** Briefly highlight the cards that events just changed. */
  flash(ids) {
    for (const id of ids) {
      const el = this.cards.get(id);
      if (!el) continue;
      el.classList.remove('flash');
      void el.offsetWidth; // restart the animation
      el.classList.add('flash');
      clearTimeout(this.flashing.get(id));
      this.flashing.set(
        id,
        setTimeout(() => {
          el.classList.remove('flash');
          this.flashing.delete(id);
        }, FLASH_MS),
      );
    }
  }
}
