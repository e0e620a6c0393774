-- taskraft schema, version 12: comments on a card.
--
-- `comments` is a projection of the comment_* events, like tasks is of the
-- task events; the applier writes it in the batch's transaction. Every
-- value comes from the log entry (ids stamped by the api, times from the
-- command), none from MySQL (no AUTO_INCREMENT, no NOW()), so every node
-- holds the same rows. A comment's board is its card's (read by a join),
-- so a card moved to another board takes its comments along without a
-- write. Deleting a card deletes its comments in the same transaction
-- (the task_deleted event implies it; no event per comment).
--
-- A card's thread is read oldest first, and a board page counts the
-- comments of its cards, both through
--   comments_task (task_id, created_at, id).
--
-- (V11 is another change's; migrations need not be dense.) Every step is
-- guarded, so the migration can be re-run.

CREATE TABLE IF NOT EXISTS comments (
  id          CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  task_id     CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  author_id   VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  -- The author's display name when the comment was added, as the event's
  -- actor records it.
  author_name VARCHAR(200) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  body        MEDIUMTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  version     BIGINT UNSIGNED NOT NULL,
  created_at  DATETIME(3) NOT NULL,
  updated_at  DATETIME(3) NOT NULL,
  PRIMARY KEY (id),
  KEY comments_task (task_id, created_at, id)
) ENGINE = InnoDB;

SET @taskraft_ddl = (
  SELECT IF(COUNT(*) = 0,
            'ALTER TABLE task_events
               MODIFY kind ENUM(''task_created'', ''task_updated'', ''task_deleted'',
                                ''user_created'', ''user_updated'',
                                ''cluster_member_added'', ''cluster_member_promoted'',
                                ''cluster_member_removed'', ''cluster_recovered'',
                                ''board_created'', ''board_updated'', ''board_member_changed'',
                                ''column_created'', ''column_updated'', ''column_deleted'',
                                ''comment_added'', ''comment_edited'', ''comment_deleted'') NOT NULL',
            'DO 0')
  FROM information_schema.columns
  WHERE table_schema = DATABASE()
    AND table_name = 'task_events'
    AND column_name = 'kind'
    AND column_type LIKE '%comment_deleted%'
);
PREPARE taskraft_stmt FROM @taskraft_ddl;
EXECUTE taskraft_stmt;
DEALLOCATE PREPARE taskraft_stmt;
