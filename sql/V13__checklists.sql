-- taskraft schema, version 13: checklists on a card.
--
-- `checklists` and `checklist_items` are a projection of the
-- checklist_changed events: each event carries the whole checklist after
-- the change, and the applier writes the list's row and replaces its
-- items in the batch's transaction. Every value comes from the log entry
-- (ids stamped by the api, times from the command), none from MySQL, so
-- every node holds the same rows. A checklist's board is its card's (read
-- by a join), so a card moved to another board takes its checklists along
-- without a write. Deleting a card deletes its checklists and their items
-- in the same transaction (the task_deleted event implies it).
--
-- A card's lists are read oldest first through checklists_task (task_id,
-- created_at, id); an item's list is found through its primary key; a
-- board page's progress (done/total per card) is one grouped read through
-- both indexes. Every step is guarded, so the migration can be re-run.

CREATE TABLE IF NOT EXISTS checklists (
  id          CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  task_id     CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  title       VARCHAR(800) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  version     BIGINT UNSIGNED NOT NULL,
  created_at  DATETIME(3) NOT NULL,
  updated_at  DATETIME(3) NOT NULL,
  PRIMARY KEY (id),
  KEY checklists_task (task_id, created_at, id)
) ENGINE = InnoDB;

CREATE TABLE IF NOT EXISTS checklist_items (
  id           CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  checklist_id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  -- The item's index in its list, from 0.
  position     INT UNSIGNED NOT NULL,
  text         VARCHAR(2000) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  done         BOOLEAN NOT NULL,
  PRIMARY KEY (id),
  KEY checklist_items_list (checklist_id, position)
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
                                ''comment_added'', ''comment_edited'', ''comment_deleted'',
                                ''checklist_changed'') NOT NULL',
            'DO 0')
  FROM information_schema.columns
  WHERE table_schema = DATABASE()
    AND table_name = 'task_events'
    AND column_name = 'kind'
    AND column_type LIKE '%checklist_changed%'
);
PREPARE taskraft_stmt FROM @taskraft_ddl;
EXECUTE taskraft_stmt;
DEALLOCATE PREPARE taskraft_stmt;
