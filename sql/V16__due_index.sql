-- taskraft schema, version 16: the due reminder sweep reads one index.
--
-- Every `due_reminder_interval` the leader reads the live cards due today
-- or tomorrow (`db::notifications::due_unreminded`). No index began with
-- `due_date`, so each sweep read the whole `tasks` table: at a million
-- cards, a million rows every five minutes, in the middle of whatever the
-- cluster was doing. With `tasks_due (due_date)` a sweep reads the cards
-- due in its two days. Cards without a due date sit together at the
-- index's start, so writing them costs an append to one page.

SET @taskraft_ddl = (
  SELECT IF(COUNT(*) = 0,
            'ALTER TABLE tasks ADD INDEX tasks_due (due_date)',
            'DO 0')
  FROM information_schema.statistics
  WHERE table_schema = DATABASE()
    AND table_name = 'tasks'
    AND index_name = 'tasks_due'
);
PREPARE taskraft_stmt FROM @taskraft_ddl;
EXECUTE taskraft_stmt;
DEALLOCATE PREPARE taskraft_stmt;
