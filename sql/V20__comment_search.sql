-- taskraft schema, version 20: comments are searched with their cards.
--
-- `GET /api/search` finds a card when its title and description, or one
-- of its comments, hold every word (src/db/search.rs). The comments get a
-- FULLTEXT index of their own, so a comment is indexed once, when it is
-- written, as a card's text is in `tasks_text` (sql/V7__search.sql).
-- A design that copied a card's recent comments into the card's indexed
-- text re-indexed the thread with every comment and made comment writes
-- about six times slower; it never shipped (the number 19 was its, and is
-- skipped so that no database that ran it meets a different V19).
--
-- Built by copying the table (ALGORITHM=COPY), which indexes every row
-- whatever the table's past: MariaDB 10.11.19 adding the index in place to
-- a table that had held one before (its hidden FTS_DOC_ID column kept)
-- indexed none of the rows already there (tests/search.rs drops the index
-- and has a node start on that). A first FULLTEXT index rebuilds the
-- table anyway, so the copy costs about what in place would. Guarded, so
-- it can be re-run.

SET @taskraft_ddl = (
  SELECT IF(COUNT(*) = 0,
            'ALTER TABLE comments ADD FULLTEXT INDEX comments_text (body), ALGORITHM=COPY',
            'DO 0')
  FROM information_schema.statistics
  WHERE table_schema = DATABASE()
    AND table_name = 'comments'
    AND index_name = 'comments_text'
);
PREPARE taskraft_stmt FROM @taskraft_ddl;
EXECUTE taskraft_stmt;
DEALLOCATE PREPARE taskraft_stmt;
