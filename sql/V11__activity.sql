-- taskraft schema, version 11: a board's activity, read through an index.
--
-- Each event row names the board it belongs to and who caused it, as the
-- event itself says (`Event::board_id`: the task's board after the change,
-- else the board, column or membership it is about; `actor.id`, `system`
-- when none). The applier, catch-up and restore write both from the event;
-- this migration fills them in for the rows written before, from the
-- payload, by the same rules. Events about no board (users, cluster
-- members, recoveries) have board_id NULL.
--
--   task_events_board (board_id, seq): GET /api/boards/{id}/activity
--   task_events_board_actor (board_id, actor_id, seq): …?actor=ID
--
-- actor_id NULL marks a row not yet filled in, so a migration cut short is
-- finished by the next start. task_events refuses updates (V1's trigger):
-- the trigger is dropped for the fill and created again after it.

SET @taskraft_ddl = (
  SELECT IF(COUNT(*) = 0,
            'ALTER TABLE task_events
               ADD COLUMN board_id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NULL,
               ADD COLUMN actor_id VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL',
            'DO 0')
  FROM information_schema.columns
  WHERE table_schema = DATABASE()
    AND table_name = 'task_events'
    AND column_name = 'board_id'
);
PREPARE taskraft_stmt FROM @taskraft_ddl;
EXECUTE taskraft_stmt;
DEALLOCATE PREPARE taskraft_stmt;

DROP TRIGGER IF EXISTS task_events_no_update;

UPDATE task_events
  SET board_id = IF(JSON_CONTAINS_PATH(payload, 'one', '$.task'),
                    COALESCE(JSON_VALUE(payload, '$.task.board_id'),
                             '00000000-0000-0000-0000-000000000001'),
                    COALESCE(JSON_VALUE(payload, '$.board.id'),
                             JSON_VALUE(payload, '$.column.board_id'),
                             JSON_VALUE(payload, '$.board_member.board_id'),
                             JSON_VALUE(payload, '$.comment.board_id'))),
      actor_id = COALESCE(JSON_VALUE(payload, '$.actor.id'), 'system')
  WHERE actor_id IS NULL;

CREATE TRIGGER task_events_no_update BEFORE UPDATE ON task_events FOR EACH ROW
  SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'task_events is append-only';

SET @taskraft_ddl = (
  SELECT IF(COUNT(*) = 0,
            'ALTER TABLE task_events
               ADD KEY task_events_board (board_id, seq),
               ADD KEY task_events_board_actor (board_id, actor_id, seq)',
            'DO 0')
  FROM information_schema.statistics
  WHERE table_schema = DATABASE()
    AND table_name = 'task_events'
    AND index_name = 'task_events_board'
);
PREPARE taskraft_stmt FROM @taskraft_ddl;
EXECUTE taskraft_stmt;
DEALLOCATE PREPARE taskraft_stmt;
