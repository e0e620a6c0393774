-- taskraft schema, version 14: a user's notifications (the bell).
--
-- `notifications` is a projection of the notification_added and
-- notifications_read events, like comments is of the comment_* events:
-- the applier, catch-up and restore write it in the batch's transaction,
-- rebuild from the events. A row's id is the seq of the event that added
-- it, so every node holds the same ids; every value comes from the event.
--
--   notifications_user (user_id, id): GET /api/notifications, newest first,
--     and the unread count
--   notifications_due (task_id, due_date): a card's due reminder rang
--     already (the applier refuses a second one)
--
-- (V13 is another change's.) Every step is guarded, so the migration can be
-- re-run.

CREATE TABLE IF NOT EXISTS notifications (
  id          BIGINT UNSIGNED NOT NULL,
  user_id     VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  kind        VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  board_id    CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  task_id     CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  comment_id  CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NULL,
  due_date    DATE NULL,
  actor_id    VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  actor_name  VARCHAR(200) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  excerpt     VARCHAR(1000) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  at          DATETIME(3) NOT NULL,
  is_read     TINYINT(1) NOT NULL DEFAULT 0,
  PRIMARY KEY (id),
  KEY notifications_user (user_id, id),
  KEY notifications_due (task_id, due_date)
) ENGINE = InnoDB;

-- The two new event kinds join task_events.kind. The ENUM is extended as
-- it stands (its values kept in their order, whatever other changes
-- added), so this migration composes with theirs in either order.
SET @taskraft_ddl = (
  SELECT IF(COUNT(*) = 1,
            CONCAT('ALTER TABLE task_events MODIFY kind ',
                   LEFT(MAX(column_type), CHAR_LENGTH(MAX(column_type)) - 1),
                   ',''notification_added'',''notifications_read'') NOT NULL'),
            'DO 0')
  FROM information_schema.columns
  WHERE table_schema = DATABASE()
    AND table_name = 'task_events'
    AND column_name = 'kind'
    AND column_type NOT LIKE '%notifications_read%'
);
PREPARE taskraft_stmt FROM @taskraft_ddl;
EXECUTE taskraft_stmt;
DEALLOCATE PREPARE taskraft_stmt;
