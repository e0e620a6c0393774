-- taskraft schema, version 5: when each idempotency key was first used.
--
-- Keys expire after `idempotency_retention`: the leader proposes a cutoff
-- in the log, and every node deletes the keys first used before it
-- (WHERE created_at < cutoff), so every node drops the same ones. The
-- column is added only when information_schema does not list it, so the
-- migration can be re-run. Keys stored before it get the time of the last
-- event at or before their log entry: the same on every node (the events
-- are), and close to when the key was used.

SET @taskraft_ddl = (
  SELECT IF(COUNT(*) = 0,
            'ALTER TABLE idempotency_keys
               ADD COLUMN created_at DATETIME(3) NOT NULL DEFAULT ''1970-01-01 00:00:00.000'',
               ADD INDEX idempotency_keys_created_at (created_at)',
            'DO 0')
  FROM information_schema.columns
  WHERE table_schema = DATABASE()
    AND table_name = 'idempotency_keys'
    AND column_name = 'created_at'
);
PREPARE taskraft_stmt FROM @taskraft_ddl;
EXECUTE taskraft_stmt;
DEALLOCATE PREPARE taskraft_stmt;

UPDATE idempotency_keys AS k
  SET k.created_at = COALESCE(
    (SELECT e.occurred_at FROM task_events AS e
      WHERE e.raft_index <= k.raft_index ORDER BY e.seq DESC LIMIT 1),
    '1970-01-01 00:00:00.000')
  WHERE k.created_at = '1970-01-01 00:00:00.000';
