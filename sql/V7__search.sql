-- taskraft schema, version 7: an index for every filter of GET /api/tasks,
-- and full-text search (GET /api/search, and q= on the list).
--
-- (Version 6 is taken by another change; versions need not be dense, see
-- db/migrate.rs.)
--
-- The list is read one column at a time in board order (status, position,
-- id) with a keyset cursor, so every filter needs an index that starts
-- with its equality columns and continues in that order:
--   no filter / status:       tasks_board (status, position, id)        (V1)
--   assignee (+ priority):    tasks_assignee_board (assignee, status, position, id)
--   priority:                 tasks_priority_board (priority, status, position, id)
--   label (+ others):         task_labels_board / _assignee / _priority
-- A label filter cannot use an index of tasks, so task_labels carries a
-- copy of its task's status, position, priority and assignee (the applier
-- writes the label rows with the task, every time the task changes;
-- `taskraft rebuild --check` compares the copies with tasks).
--
-- Full text: a FULLTEXT index on (title, description). InnoDB's parser
-- indexes words of innodb_ft_min_token_size (3) to innodb_ft_max_token_size
-- (84) characters made of letters, digits and `_`, except its stopwords
-- (INFORMATION_SCHEMA.INNODB_FT_DEFAULT_STOPWORD); the node drops those
-- words from a query itself (db/search.rs).
--
-- Every step is guarded by information_schema, so the migration can be
-- re-run.

SET @taskraft_ddl = (
  SELECT IF(COUNT(*) = 0,
            'ALTER TABLE task_labels
               ADD COLUMN status ENUM(''todo'', ''in_progress'', ''done'') NOT NULL,
               ADD COLUMN position DOUBLE NOT NULL,
               ADD COLUMN priority ENUM(''low'', ''medium'', ''high'', ''urgent'') NOT NULL,
               ADD COLUMN assignee VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL',
            'DO 0')
  FROM information_schema.columns
  WHERE table_schema = DATABASE()
    AND table_name = 'task_labels'
    AND column_name = 'status'
);
PREPARE taskraft_stmt FROM @taskraft_ddl;
EXECUTE taskraft_stmt;
DEALLOCATE PREPARE taskraft_stmt;

UPDATE task_labels AS l JOIN tasks AS t ON t.id = l.task_id
  SET l.status = t.status, l.position = t.position,
      l.priority = t.priority, l.assignee = t.assignee;

SET @taskraft_ddl = (
  SELECT IF(COUNT(*) = 0,
            'ALTER TABLE task_labels
               ADD INDEX task_labels_board (label, status, position, task_id),
               ADD INDEX task_labels_assignee (label, assignee, status, position, task_id),
               ADD INDEX task_labels_priority (label, priority, status, position, task_id)',
            'DO 0')
  FROM information_schema.statistics
  WHERE table_schema = DATABASE()
    AND table_name = 'task_labels'
    AND index_name = 'task_labels_board'
);
PREPARE taskraft_stmt FROM @taskraft_ddl;
EXECUTE taskraft_stmt;
DEALLOCATE PREPARE taskraft_stmt;

-- (label, task_id) is a prefix of the new indexes' job now.
SET @taskraft_ddl = (
  SELECT IF(COUNT(*) > 0, 'ALTER TABLE task_labels DROP INDEX task_labels_label', 'DO 0')
  FROM information_schema.statistics
  WHERE table_schema = DATABASE()
    AND table_name = 'task_labels'
    AND index_name = 'task_labels_label'
);
PREPARE taskraft_stmt FROM @taskraft_ddl;
EXECUTE taskraft_stmt;
DEALLOCATE PREPARE taskraft_stmt;

SET @taskraft_ddl = (
  SELECT IF(COUNT(*) = 0,
            'ALTER TABLE tasks
               ADD INDEX tasks_assignee_board (assignee, status, position, id),
               ADD INDEX tasks_priority_board (priority, status, position, id)',
            'DO 0')
  FROM information_schema.statistics
  WHERE table_schema = DATABASE()
    AND table_name = 'tasks'
    AND index_name = 'tasks_assignee_board'
);
PREPARE taskraft_stmt FROM @taskraft_ddl;
EXECUTE taskraft_stmt;
DEALLOCATE PREPARE taskraft_stmt;

-- tasks_assignee (assignee) is a prefix of tasks_assignee_board.
SET @taskraft_ddl = (
  SELECT IF(COUNT(*) > 0, 'ALTER TABLE tasks DROP INDEX tasks_assignee', 'DO 0')
  FROM information_schema.statistics
  WHERE table_schema = DATABASE()
    AND table_name = 'tasks'
    AND index_name = 'tasks_assignee'
);
PREPARE taskraft_stmt FROM @taskraft_ddl;
EXECUTE taskraft_stmt;
DEALLOCATE PREPARE taskraft_stmt;

SET @taskraft_ddl = (
  SELECT IF(COUNT(*) = 0,
            'ALTER TABLE tasks ADD FULLTEXT INDEX tasks_text (title, description)',
            'DO 0')
  FROM information_schema.statistics
  WHERE table_schema = DATABASE()
    AND table_name = 'tasks'
    AND index_name = 'tasks_text'
);
PREPARE taskraft_stmt FROM @taskraft_ddl;
EXECUTE taskraft_stmt;
DEALLOCATE PREPARE taskraft_stmt;
