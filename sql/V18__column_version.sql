-- taskraft schema, version 18: a column's version, for If-Match.
--
-- A column is at version 1 when made and one more with every change, as a
-- card is; PATCH and DELETE /api/columns/{id} with If-Match are refused
-- (412) at apply when it has moved on. The version is a fold of the
-- events like the rest of the row: every change to a column writes one
-- `column_updated` event, so a column holds 1 + its `column_updated`
-- events. Rows written before are filled in by that rule here, the same
-- one `Catalog::fold` applies to events that carry no version, so that
-- `taskraft rebuild --check` finds the table equal to the fold.
--
-- version 0 marks a row not yet filled in, so a migration cut short is
-- finished by the next start, and a row a node has written since is left
-- alone.

SET @taskraft_ddl = (
  SELECT IF(COUNT(*) = 0,
            'ALTER TABLE kanban_columns ADD COLUMN version BIGINT UNSIGNED NOT NULL DEFAULT 0',
            'DO 0')
  FROM information_schema.columns
  WHERE table_schema = DATABASE()
    AND table_name = 'kanban_columns'
    AND column_name = 'version'
);
PREPARE taskraft_stmt FROM @taskraft_ddl;
EXECUTE taskraft_stmt;
DEALLOCATE PREPARE taskraft_stmt;

UPDATE kanban_columns c
  LEFT JOIN (
    SELECT CONVERT(JSON_VALUE(payload, '$.column.id') USING ascii) COLLATE ascii_bin AS column_id,
           COUNT(*) AS changes
      FROM task_events
      WHERE kind = 'column_updated'
      GROUP BY column_id
  ) updated ON updated.column_id = c.id
  SET c.version = 1 + COALESCE(updated.changes, 0)
  WHERE c.version = 0;
