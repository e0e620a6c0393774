// One write at a time per task, and the newest version of each task that
// this page's own writes produced.
//
// A task's writes go out in the order the person made them: a move made
// right after another, or a delete right after an edit, waits for the one
// before it (whether that succeeded or failed), so its If-Match can name the
// version that write produced even when the store has not seen its event yet.

export class WriteQueue {
  constructor(store) {
    this.store = store;
    /** id → the promise of the last write queued for that task */
    this.queues = new Map();
    /** id → the newest version this page's own writes produced */
    this.versions = new Map();
  }

  /** Run `fn` after every earlier write to the same task has finished. */
  enqueue(id, fn) {
    const before = this.queues.get(id) ?? Promise.resolve();
    const run = before.catch(() => {}).then(fn);
    this.queues.set(id, run);
    run
      .finally(() => {
        if (this.queues.get(id) === run) this.queues.delete(id);
      })
      .catch(() => {});
    return run;
  }

  /** A write answered with `task`: remember the version it produced. */
  noteVersion(task) {
    if (!task?.id) return;
    this.versions.set(task.id, Math.max(task.version, this.versions.get(task.id) ?? 0));
  }

  /** The newest version of a task that this page's own writes produced (0: none). */
  ownVersion(id) {
    return this.versions.get(id) ?? 0;
  }

  /** The newest version of a task this page knows: committed, or its own write's. */
  versionOf(id) {
    return Math.max(this.store.get(id)?.version ?? 0, this.ownVersion(id));
  }
}
