-- taskraft schema, version 9: the default board's list reads one index.
--
-- GET /api/tasks (the default board's cards, not archived, one status at
-- a time in board order) read `tasks_board (status, position, id)` and
-- dropped the rows of other boards and archived cards one by one: on a
-- cluster whose cards are mostly on other boards, a page read thousands of
-- rows. This index starts with the board and the archived flag, so a page
-- reads its own rows again.

SET @taskraft_ddl = (
  SELECT IF(COUNT(*) = 0,
            'ALTER TABLE tasks ADD INDEX tasks_board_list (board_id, archived, status, position, id)',
            'DO 0')
  FROM information_schema.statistics
  WHERE table_schema = DATABASE()
    AND table_name = 'tasks'
    AND index_name = 'tasks_board_list'
);
PREPARE taskraft_stmt FROM @taskraft_ddl;
EXECUTE taskraft_stmt;
DEALLOCATE PREPARE taskraft_stmt;
