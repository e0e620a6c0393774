// The board's state: the committed tasks, as of event `lastSeq`.
//
// Only two things change it: a full load (reset) and the server's events,
// applied strictly in seq order. Every event carries the whole task, so
// applying one is "put this task" or "remove this task".

export class Store extends EventTarget {
  constructor() {
    super();
    /** @type {Map<string, object>} */
    this.tasks = new Map();
    this.lastSeq = 0;
    this.loaded = false;
  }

  reset(tasks, seq) {
    this.tasks = new Map(tasks.map((t) => [t.id, t]));
    this.lastSeq = seq;
    this.loaded = true;
    this.dispatchEvent(new CustomEvent('change', { detail: { reset: true, events: [] } }));
  }

  /**
   * Apply one event if it is the next one. Returns 'applied', 'old' (already
   * seen) or 'gap' (an event is missing: the caller must resume from lastSeq).
   */
  apply(event) {
    if (event.seq <= this.lastSeq) return 'old';
    if (event.seq !== this.lastSeq + 1) return 'gap';
    if (event.kind === 'task_deleted') {
      this.tasks.delete(event.task_id);
    } else if (event.task) {
      this.tasks.set(event.task.id, event.task);
    }
    this.lastSeq = event.seq;
    this.dispatchEvent(new CustomEvent('change', { detail: { reset: false, events: [event] } }));
    return 'applied';
  }

  get(id) {
    return this.tasks.get(id);
  }

  /** All tasks, sorted in board order (position, then id). */
  all() {
    return [...this.tasks.values()].sort(boardOrder);
  }
}

export function boardOrder(a, b) {
  return a.position - b.position || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/**
 * The position for a card placed between `prev` and `next` (either may be
 * missing): the midpoint, or 1024 past the end / before the start.
 */
export function positionBetween(prev, next) {
  if (!prev && !next) return 1024;
  if (!prev) return next.position - 1024;
  if (!next) return prev.position + 1024;
  return (prev.position + next.position) / 2;
}
