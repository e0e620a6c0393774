-- taskraft schema, version 2: idempotency keys by log index.
--
-- A node catching up after a snapshot copies the keys of a range of log
-- entries from a peer (WHERE raft_index > ? AND raft_index <= ?). MySQL 8
-- has no CREATE INDEX IF NOT EXISTS, so the index is created only when
-- information_schema does not list it: the migration can be re-run.

SET @taskraft_ddl = (
  SELECT IF(COUNT(*) = 0,
            'CREATE INDEX idempotency_keys_raft_index ON idempotency_keys (raft_index)',
            'DO 0')
  FROM information_schema.statistics
  WHERE table_schema = DATABASE()
    AND table_name = 'idempotency_keys'
    AND index_name = 'idempotency_keys_raft_index'
);
PREPARE taskraft_stmt FROM @taskraft_ddl;
EXECUTE taskraft_stmt;
DEALLOCATE PREPARE taskraft_stmt;
