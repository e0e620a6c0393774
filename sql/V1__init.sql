-- taskraft schema, version 1. Runs on MySQL 8.0+ and MariaDB 10.11+.
--
-- Each node has its own database. Only the applier writes to it, one
-- transaction per batch of committed Raft entries; every value written is
-- taken from the entries (no NOW(), UUID(), AUTO_INCREMENT), so every node's
-- database holds the same rows, byte for byte.
--
-- Statements are separated by a semicolon at the end of a line.

-- The append-only history: one row per event, numbered densely by seq.
CREATE TABLE IF NOT EXISTS task_events (
  seq         BIGINT UNSIGNED NOT NULL,
  raft_index  BIGINT UNSIGNED NOT NULL,
  ordinal     INT UNSIGNED    NOT NULL,
  term        BIGINT UNSIGNED NOT NULL,
  event_id    CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  task_id     CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  kind        ENUM('task_created', 'task_updated', 'task_deleted') NOT NULL,
  -- {"task": {...}, "changes": {...}} as the node serialized it; text, not
  -- JSON, so that MySQL's binary JSON cannot reorder it.
  payload     MEDIUMTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  occurred_at DATETIME(3) NOT NULL,
  request_id  CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  PRIMARY KEY (seq),
  UNIQUE KEY task_events_entry (raft_index, ordinal),
  UNIQUE KEY task_events_event_id (event_id),
  KEY task_events_task (task_id, seq)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

DROP TRIGGER IF EXISTS task_events_no_update;
CREATE TRIGGER task_events_no_update BEFORE UPDATE ON task_events FOR EACH ROW
  SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'task_events is append-only';
DROP TRIGGER IF EXISTS task_events_no_delete;
CREATE TRIGGER task_events_no_delete BEFORE DELETE ON task_events FOR EACH ROW
  SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'task_events is append-only';

-- The projection: the current tasks, rebuildable from task_events.
CREATE TABLE IF NOT EXISTS tasks (
  id          CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  title       VARCHAR(200) NOT NULL,
  description MEDIUMTEXT NOT NULL,
  status      ENUM('todo', 'in_progress', 'done') NOT NULL,
  position    DOUBLE NOT NULL,
  priority    ENUM('low', 'medium', 'high', 'urgent') NOT NULL,
  assignee    VARCHAR(100) NULL,
  -- The labels as a JSON array, for reading; task_labels is for filtering.
  labels      TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  due_date    DATE NULL,
  version     BIGINT UNSIGNED NOT NULL,
  created_at  DATETIME(3) NOT NULL,
  updated_at  DATETIME(3) NOT NULL,
  PRIMARY KEY (id),
  -- The board: a column's cards in order.
  KEY tasks_board (status, position, id),
  KEY tasks_assignee (assignee),
  KEY tasks_updated (updated_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- One row per (task, label): the label filter's index. Binary collation, so
-- that labels differing only in case are different labels, as in the domain.
CREATE TABLE IF NOT EXISTS task_labels (
  task_id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  label   VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  PRIMARY KEY (task_id, label),
  KEY task_labels_label (label, task_id)
) ENGINE = InnoDB;

-- Where the applier is: the last applied log entry and the last event seq.
-- Committed in the same transaction as the rows it covers.
CREATE TABLE IF NOT EXISTS raft_applied (
  id            TINYINT UNSIGNED NOT NULL,
  applied_index BIGINT UNSIGNED NOT NULL,
  applied_term  BIGINT UNSIGNED NOT NULL,
  last_seq      BIGINT UNSIGNED NOT NULL,
  PRIMARY KEY (id)
) ENGINE = InnoDB;

INSERT INTO raft_applied (id, applied_index, applied_term, last_seq)
  SELECT 1, 0, 0, 0 FROM DUAL WHERE NOT EXISTS (SELECT 1 FROM raft_applied);

-- The highest position ever given to a card in each column: new cards go
-- after it. Only grows, so it is the same however entries were batched.
CREATE TABLE IF NOT EXISTS board_columns (
  status        ENUM('todo', 'in_progress', 'done') NOT NULL,
  tail_position DOUBLE NOT NULL,
  PRIMARY KEY (status)
) ENGINE = InnoDB;

INSERT INTO board_columns (status, tail_position)
  SELECT s.status, 0 FROM (
    SELECT 'todo' AS status UNION ALL SELECT 'in_progress' UNION ALL SELECT 'done'
  ) AS s
  WHERE NOT EXISTS (SELECT 1 FROM board_columns);

-- Idempotency keys and the first outcome of each: a retry gets it back.
CREATE TABLE IF NOT EXISTS idempotency_keys (
  idem_key    VARCHAR(200) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  fingerprint CHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  raft_index  BIGINT UNSIGNED NOT NULL,
  outcome     MEDIUMTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  PRIMARY KEY (idem_key)
) ENGINE = InnoDB;
