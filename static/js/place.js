// Where a task is: its board, its column, whether it is archived.
//
// The server leaves these out of a task's JSON when they have their default
// (so that the default board's tasks read as they always did): no
// `board_id` is the default board, no `column_id` is the column of the
// task's board whose key is the task's `status`, no `archived` is false.
// Everything in the page that asks where a task is asks here. Ids are
// compared as strings, whatever type the server gives them.

/** The id of the board `task` is on. */
export function boardIdOf(task, defaultBoardId) {
  return task.board_id != null ? String(task.board_id) : defaultBoardId;
}

/**
 * The id of the column of `board` that `task` is in, or null when the task
 * is on another board (or names a column `board` does not have).
 */
export function columnIdOf(task, board, defaultBoardId) {
  if (!board || boardIdOf(task, defaultBoardId) !== board.id) return null;
  if (task.column_id != null) {
    const id = String(task.column_id);
    return board.columns.some((c) => c.id === id) ? id : null;
  }
  return board.columns.find((c) => c.key === task.status)?.id ?? null;
}

export function isArchived(task) {
  return task.archived === true;
}

/**
 * The task as it was before the event `ev` changed it: its placement
 * fields set back to their `from` values (a `from` of null is the field's
 * default, so it is left out, as the server leaves it out).
 */
export function placeBefore(task, changes) {
  const before = { ...task };
  for (const field of ['status', 'board_id', 'column_id', 'archived']) {
    const change = changes?.[field];
    if (!change) continue;
    if (change.from == null) delete before[field];
    else before[field] = change.from;
  }
  return before;
}

/** Did the event `ev` change where its task is? */
export function placeChanged(changes) {
  return Boolean(changes && ['status', 'board_id', 'column_id', 'archived'].some((f) => f in changes));
}

const STATUS_KEYS = ['todo', 'in_progress', 'done'];

/**
 * The fields of a write that put a task in `column` of `board`, written the
 * way the server reads them back: on the default board, a column keyed by
 * a status is named by that `status` alone (as every write did before
 * boards, so the page keeps working against nodes not yet upgraded);
 * anywhere else by `column_id`.
 */
export function placeFields(column, board) {
  if (board.default && STATUS_KEYS.includes(column.key)) return { status: column.key };
  return { column_id: column.id };
}
