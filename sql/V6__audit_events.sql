-- taskraft schema, version 6: events that are not about a task.
--
-- User and role changes, cluster membership changes and recoveries are
-- events too, in the same append-only table and the same dense seq as task
-- events, so the feed, catch-up, backup and point-in-time restore carry
-- them with everything else. Such an event has no task_id; its subject (the
-- user, the member, the recovery) is in the payload.
--
-- cluster_versions records the cluster version as the log decided it (a
-- `set_cluster_version` entry, proposed by a leader once every voter runs
-- that version): behaviour that changes what applying an entry writes, such
-- as writing these events, switches on at that entry on every node alike.
-- No row: no such entry applied yet (0.2.0 or older).
--
-- Appending values to an ENUM and making a column nullable are in-place
-- changes in MariaDB; each ALTER runs only when information_schema shows
-- it is still needed, so the migration can be re-run.

SET @taskraft_ddl = (
  SELECT IF(COUNT(*) = 0,
            'ALTER TABLE task_events
               MODIFY kind ENUM(''task_created'', ''task_updated'', ''task_deleted'',
                                ''user_created'', ''user_updated'',
                                ''cluster_member_added'', ''cluster_member_promoted'',
                                ''cluster_member_removed'', ''cluster_recovered'') NOT NULL,
               MODIFY task_id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NULL',
            'DO 0')
  FROM information_schema.columns
  WHERE table_schema = DATABASE()
    AND table_name = 'task_events'
    AND column_name = 'kind'
    AND column_type LIKE '%cluster_recovered%'
);
PREPARE taskraft_stmt FROM @taskraft_ddl;
EXECUTE taskraft_stmt;
DEALLOCATE PREPARE taskraft_stmt;

-- One row per `set_cluster_version` entry applied. The version at any
-- log index is the row with the highest raft_index at or before it, so a
-- node catching up from a peer's rows copies these with the rest.
CREATE TABLE IF NOT EXISTS cluster_versions (
  raft_index BIGINT UNSIGNED NOT NULL,
  version    VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  PRIMARY KEY (raft_index)
) ENGINE = InnoDB;
