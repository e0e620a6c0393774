-- taskraft schema, version 8: boards, their columns and members; cards
-- placed on a board and a column, and archived cards.
--
-- The catalog (boards, kanban_columns, board_members) is a projection of
-- the board_*/column_* events, like tasks is of the task events; the
-- applier writes it in the batch's transaction. The default board and its
-- three fixed columns (keys todo, in_progress, done) always exist; their
-- ids are constants (src/task/catalog.rs).
--
-- tasks gains its board, its column (always stored here, even when the
-- event leaves it out because the status implies it) and whether it is
-- archived. A board page reads one column at a time:
--   tasks_column (column_id, archived, position, id)
-- and an archive view one board at a time:
--   tasks_board_archive (board_id, archived, position, id).
--
-- Every step is guarded, so the migration can be re-run.

CREATE TABLE IF NOT EXISTS boards (
  id       CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  name     VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  archived TINYINT(1) NOT NULL DEFAULT 0,
  PRIMARY KEY (id)
) ENGINE = InnoDB;

-- `board_columns` (V1) holds the default board's column tails by status.
CREATE TABLE IF NOT EXISTS kanban_columns (
  id            CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  board_id      CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  name          VARCHAR(60) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  col_key       VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  category      ENUM('todo', 'in_progress', 'done') NOT NULL,
  position      DOUBLE NOT NULL,
  wip_limit     INT UNSIGNED NULL,
  color         CHAR(7) CHARACTER SET ascii COLLATE ascii_bin NULL,
  -- The highest position ever given to a card here (not for the fixed
  -- columns, whose tails are in board_columns).
  tail_position DOUBLE NOT NULL DEFAULT 0,
  PRIMARY KEY (id),
  KEY kanban_columns_board (board_id, position)
) ENGINE = InnoDB;

CREATE TABLE IF NOT EXISTS board_members (
  board_id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  user_id  VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  role     ENUM('viewer', 'member', 'admin') NOT NULL,
  PRIMARY KEY (board_id, user_id),
  KEY board_members_user (user_id)
) ENGINE = InnoDB;

INSERT IGNORE INTO boards (id, name, archived)
  VALUES ('00000000-0000-0000-0000-000000000001', 'Board', 0);
INSERT IGNORE INTO kanban_columns (id, board_id, name, col_key, category, position)
  VALUES ('00000000-0000-0000-0000-000000000010', '00000000-0000-0000-0000-000000000001',
          'To do', 'todo', 'todo', 1024),
         ('00000000-0000-0000-0000-000000000011', '00000000-0000-0000-0000-000000000001',
          'In progress', 'in_progress', 'in_progress', 2048),
         ('00000000-0000-0000-0000-000000000012', '00000000-0000-0000-0000-000000000001',
          'Done', 'done', 'done', 3072);

SET @taskraft_ddl = (
  SELECT IF(COUNT(*) = 0,
            'ALTER TABLE tasks
               ADD COLUMN board_id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL
                 DEFAULT ''00000000-0000-0000-0000-000000000001'',
               ADD COLUMN column_id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL
                 DEFAULT '''',
               ADD COLUMN archived TINYINT(1) NOT NULL DEFAULT 0',
            'DO 0')
  FROM information_schema.columns
  WHERE table_schema = DATABASE()
    AND table_name = 'tasks'
    AND column_name = 'board_id'
);
PREPARE taskraft_stmt FROM @taskraft_ddl;
EXECUTE taskraft_stmt;
DEALLOCATE PREPARE taskraft_stmt;

UPDATE tasks SET column_id = CASE status
    WHEN 'todo' THEN '00000000-0000-0000-0000-000000000010'
    WHEN 'in_progress' THEN '00000000-0000-0000-0000-000000000011'
    ELSE '00000000-0000-0000-0000-000000000012' END
  WHERE column_id = '';

SET @taskraft_ddl = (
  SELECT IF(COUNT(*) = 0,
            'ALTER TABLE tasks
               ADD INDEX tasks_column (column_id, archived, position, id),
               ADD INDEX tasks_board_archive (board_id, archived, position, id)',
            'DO 0')
  FROM information_schema.statistics
  WHERE table_schema = DATABASE()
    AND table_name = 'tasks'
    AND index_name = 'tasks_column'
);
PREPARE taskraft_stmt FROM @taskraft_ddl;
EXECUTE taskraft_stmt;
DEALLOCATE PREPARE taskraft_stmt;

SET @taskraft_ddl = (
  SELECT IF(COUNT(*) = 0,
            'ALTER TABLE task_events
               MODIFY kind ENUM(''task_created'', ''task_updated'', ''task_deleted'',
                                ''user_created'', ''user_updated'',
                                ''cluster_member_added'', ''cluster_member_promoted'',
                                ''cluster_member_removed'', ''cluster_recovered'',
                                ''board_created'', ''board_updated'', ''board_member_changed'',
                                ''column_created'', ''column_updated'', ''column_deleted'') NOT NULL',
            'DO 0')
  FROM information_schema.columns
  WHERE table_schema = DATABASE()
    AND table_name = 'task_events'
    AND column_name = 'kind'
    AND column_type LIKE '%column_deleted%'
);
PREPARE taskraft_stmt FROM @taskraft_ddl;
EXECUTE taskraft_stmt;
DEALLOCATE PREPARE taskraft_stmt;
