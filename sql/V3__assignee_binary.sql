-- taskraft schema, version 3: assignees compared byte for byte.
--
-- tasks.assignee took the table's utf8mb4_unicode_ci collation, under which
-- `?assignee=😀` also matched 😺 (every character beyond the BMP weighs the
-- same) and `ALICE` matched `Alice`. An assignee is an identity: the filter
-- must find exactly the name given, as labels already do (utf8mb4_bin).
-- MODIFY is idempotent, so the migration can be re-run; the index on the
-- column is rebuilt with it.

ALTER TABLE tasks
  MODIFY assignee VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL;
