-- taskraft schema, version 19: a card's comments are searched with it.
--
-- `tasks.comment_text` holds the bodies of the card's newest 100 comments
-- (oldest of them first, separated by a space), and the FULLTEXT index
-- that served (title, description) now covers (title, description,
-- comment_text): one index, one MATCH, one relevance, and the regular
-- expressions of common words check the three columns. The applier
-- writes it in the batch's transaction, after the comments, for every card
-- a comment event of the batch names (`db::comments::write_search_text`);
-- catch-up, restore and `taskraft rebuild` write it the same way, and
-- `rebuild --check` compares it with the comments. Bounded: 100 comments of
-- at most 10,000 characters (4 MB in utf8mb4) fit the MEDIUMTEXT column
-- with room, so no write can be refused for its size.
--
-- Every step is guarded, so the migration can be re-run.

SET @taskraft_ddl = (
  SELECT IF(COUNT(*) = 0,
            'ALTER TABLE tasks
               ADD COLUMN comment_text MEDIUMTEXT CHARACTER SET utf8mb4
                 COLLATE utf8mb4_unicode_ci NOT NULL DEFAULT ''''',
            'DO 0')
  FROM information_schema.columns
  WHERE table_schema = DATABASE()
    AND table_name = 'tasks'
    AND column_name = 'comment_text'
);
PREPARE taskraft_stmt FROM @taskraft_ddl;
EXECUTE taskraft_stmt;
DEALLOCATE PREPARE taskraft_stmt;

SET SESSION group_concat_max_len = 16777215;
UPDATE tasks t
  JOIN (SELECT task_id, GROUP_CONCAT(body ORDER BY created_at, id SEPARATOR ' ') AS text
          FROM (SELECT task_id, body, created_at, id,
                       ROW_NUMBER() OVER (PARTITION BY task_id
                                          ORDER BY created_at DESC, id DESC) AS newest
                  FROM comments) AS ranked
         WHERE newest <= 100
         GROUP BY task_id) AS c ON c.task_id = t.id
  SET t.comment_text = c.text;

-- The index is made again with the new column (InnoDB cannot add a
-- column to a FULLTEXT index).
SET @taskraft_ddl = (
  SELECT IF(COUNT(*) > 0, 'ALTER TABLE tasks DROP INDEX tasks_text', 'DO 0')
  FROM information_schema.statistics
  WHERE table_schema = DATABASE()
    AND table_name = 'tasks'
    AND index_name = 'tasks_text'
    AND NOT EXISTS (SELECT 1 FROM information_schema.statistics
                    WHERE table_schema = DATABASE()
                      AND table_name = 'tasks'
                      AND index_name = 'tasks_text'
                      AND column_name = 'comment_text')
);
PREPARE taskraft_stmt FROM @taskraft_ddl;
EXECUTE taskraft_stmt;
DEALLOCATE PREPARE taskraft_stmt;

SET @taskraft_ddl = (
  SELECT IF(COUNT(*) = 0,
            'ALTER TABLE tasks ADD FULLTEXT INDEX tasks_text (title, description, comment_text)',
            'DO 0')
  FROM information_schema.statistics
  WHERE table_schema = DATABASE()
    AND table_name = 'tasks'
    AND index_name = 'tasks_text'
);
PREPARE taskraft_stmt FROM @taskraft_ddl;
EXECUTE taskraft_stmt;
DEALLOCATE PREPARE taskraft_stmt;
