-- taskraft schema, version 15: a board's outgoing webhooks.
--
-- `webhooks` and `webhook_deliveries` are a projection of the webhook_*
-- events, like comments is of the comment_* events: the applier, catch-up
-- and restore write them in the batch's transaction, rebuild from the
-- events. Every value comes from the log (ids and the secret stamped by
-- the api, progress reported by the leader through the log), so every
-- node holds the same rows and a new leader resumes from
-- `delivered_seq`.
--
--   webhooks_board (board_id): a board's webhooks (the api, the limit
--     the applier checks, the leader's delivery)
--   webhook_deliveries_hook (webhook_id, id): a webhook's delivery log,
--     newest first; only the newest 100 attempts are kept. A row's id is
--     the seq of the webhook_delivered event that reported it × 1000 +
--     its place in the report, so every node keeps the same rows.
--
-- Every step is guarded, so the migration can be re-run.

CREATE TABLE IF NOT EXISTS webhooks (
  id              CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  board_id        CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  url             VARCHAR(2000) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  events          VARCHAR(2000) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  description     VARCHAR(500) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  secret          CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  created_at      DATETIME(3) NOT NULL,
  created_by_id   VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  created_by_name VARCHAR(200) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  delivered_seq   BIGINT UNSIGNED NOT NULL,
  PRIMARY KEY (id),
  KEY webhooks_board (board_id)
) ENGINE = InnoDB;

CREATE TABLE IF NOT EXISTS webhook_deliveries (
  id          BIGINT UNSIGNED NOT NULL,
  webhook_id  CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  seq         BIGINT UNSIGNED NOT NULL,
  attempt     INT UNSIGNED NOT NULL,
  at          DATETIME(3) NOT NULL,
  status      SMALLINT UNSIGNED NULL,
  error       VARCHAR(500) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
  duration_ms INT UNSIGNED NOT NULL,
  PRIMARY KEY (id),
  KEY webhook_deliveries_hook (webhook_id, id)
) ENGINE = InnoDB;

-- The three new event kinds join task_events.kind, the ENUM extended as
-- it stands (as V14 does), so this composes with other changes' kinds.
SET @taskraft_ddl = (
  SELECT IF(COUNT(*) = 1,
            CONCAT('ALTER TABLE task_events MODIFY kind ',
                   LEFT(MAX(column_type), CHAR_LENGTH(MAX(column_type)) - 1),
                   ',''webhook_added'',''webhook_removed'',''webhook_delivered'') NOT NULL'),
            'DO 0')
  FROM information_schema.columns
  WHERE table_schema = DATABASE()
    AND table_name = 'task_events'
    AND column_name = 'kind'
    AND column_type NOT LIKE '%webhook_delivered%'
);
PREPARE taskraft_stmt FROM @taskraft_ddl;
EXECUTE taskraft_stmt;
DEALLOCATE PREPARE taskraft_stmt;
