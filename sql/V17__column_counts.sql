-- taskraft schema, version 17: the cards per column are stored, so a node
-- starts without counting every card.
--
-- The applier keeps the cards of each column (on the board and archived)
-- in memory, for WIP limits and the board list, and used to count them
-- at every start with one pass over an index of every task: 3.5-4.5 s at
-- 5,000,000 cards before the first write could be applied, growing with
-- history. Now each applied batch also writes the counts of the columns
-- it changed, and `raft_applied.counts_index` the index they hold at, in
-- the same transaction. A node trusts the stored counts only when
-- `counts_index` equals its applied index; anything else that writes
-- cards (catch-up, restore, `taskraft rebuild`, an older binary, this
-- migration) leaves it behind or clears it, and the next start counts
-- again and stores what it counted (`db::catalog::load`).
-- A later migration that changes cards must clear it too.

CREATE TABLE IF NOT EXISTS column_counts (
  column_id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  live      BIGINT UNSIGNED NOT NULL,
  archived  BIGINT UNSIGNED NOT NULL,
  PRIMARY KEY (column_id)
) ENGINE = InnoDB;

SET @taskraft_ddl = (
  SELECT IF(COUNT(*) = 0,
            'ALTER TABLE raft_applied ADD COLUMN counts_index BIGINT UNSIGNED NULL',
            'DO 0')
  FROM information_schema.columns
  WHERE table_schema = DATABASE()
    AND table_name = 'raft_applied'
    AND column_name = 'counts_index'
);
PREPARE taskraft_stmt FROM @taskraft_ddl;
EXECUTE taskraft_stmt;
DEALLOCATE PREPARE taskraft_stmt;

UPDATE raft_applied SET counts_index = NULL;
