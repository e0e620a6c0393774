-- taskraft schema, version 10: every board's column pages read one index
-- under any filter, and a column can archive its cards after N days.
--
-- The filter indexes of V7 started with the status, so they served only
-- the default board's list, and a filtered page on a cluster whose cards
-- are mostly on other boards read every other board's rows of that status
-- (GET /api/tasks?label=…&status=todo: ~70 ms p50 on 614,203 tasks). Now
-- each filter index starts with the column and the archived flag, as
-- `tasks_column` (V8) does, so a page of any board's column, filtered or
-- not, reads its own rows; the default board's list reads the columns of
-- that status (catalog, in memory).
--
-- task_labels carries a copy of its task's column and archived flag, like
-- the status, position, priority and assignee it copies since V7.
--
-- Each step runs only if it has not yet (MariaDB has no ADD INDEX IF NOT
-- EXISTS that also drops), so a migration cut short is finished by the
-- next start.

SET @taskraft_ddl = (
  SELECT IF(COUNT(*) = 0,
            'ALTER TABLE kanban_columns ADD COLUMN archive_after_days INT UNSIGNED NULL',
            'DO 0')
  FROM information_schema.columns
  WHERE table_schema = DATABASE()
    AND table_name = 'kanban_columns'
    AND column_name = 'archive_after_days'
);
PREPARE taskraft_stmt FROM @taskraft_ddl;
EXECUTE taskraft_stmt;
DEALLOCATE PREPARE taskraft_stmt;

SET @taskraft_ddl = (
  SELECT IF(COUNT(*) = 0,
            'ALTER TABLE task_labels
               ADD COLUMN column_id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT '''',
               ADD COLUMN archived TINYINT(1) NOT NULL DEFAULT 0',
            'DO 0')
  FROM information_schema.columns
  WHERE table_schema = DATABASE()
    AND table_name = 'task_labels'
    AND column_name = 'column_id'
);
PREPARE taskraft_stmt FROM @taskraft_ddl;
EXECUTE taskraft_stmt;
DEALLOCATE PREPARE taskraft_stmt;

UPDATE task_labels AS l JOIN tasks AS t ON t.id = l.task_id
  SET l.column_id = t.column_id, l.archived = t.archived
  WHERE l.column_id = '';

SET @taskraft_ddl = (
  SELECT IF(COUNT(*) = 0,
            'ALTER TABLE task_labels
               ADD INDEX task_labels_column (label, column_id, archived, position, task_id),
               ADD INDEX task_labels_column_assignee (label, column_id, archived, assignee, position, task_id),
               ADD INDEX task_labels_column_priority (label, column_id, archived, priority, position, task_id),
               DROP INDEX task_labels_board,
               DROP INDEX task_labels_assignee,
               DROP INDEX task_labels_priority',
            'DO 0')
  FROM information_schema.statistics
  WHERE table_schema = DATABASE()
    AND table_name = 'task_labels'
    AND index_name = 'task_labels_column'
);
PREPARE taskraft_stmt FROM @taskraft_ddl;
EXECUTE taskraft_stmt;
DEALLOCATE PREPARE taskraft_stmt;

SET @taskraft_ddl = (
  SELECT IF(COUNT(*) = 0,
            'ALTER TABLE tasks
               ADD INDEX tasks_column_assignee (column_id, archived, assignee, position, id),
               ADD INDEX tasks_column_priority (column_id, archived, priority, position, id),
               DROP INDEX tasks_assignee_board,
               DROP INDEX tasks_priority_board,
               DROP INDEX tasks_board_list,
               DROP INDEX tasks_board',
            'DO 0')
  FROM information_schema.statistics
  WHERE table_schema = DATABASE()
    AND table_name = 'tasks'
    AND index_name = 'tasks_column_assignee'
);
PREPARE taskraft_stmt FROM @taskraft_ddl;
EXECUTE taskraft_stmt;
DEALLOCATE PREPARE taskraft_stmt;
