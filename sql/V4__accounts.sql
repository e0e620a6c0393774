-- taskraft schema, version 4: accounts.
--
-- Users, login sessions and personal API tokens are replicated state, like
-- tasks: written only by the applier, from the Raft log, identical on every
-- node. Users are never deleted (history names them); sessions and tokens
-- that end are kept, marked, so that re-applying the entry that created one
-- (after a catch-up) cannot bring it back. Secrets are stored only as their
-- SHA-256, passwords only as Argon2id hashes. Times are milliseconds since
-- the Unix epoch.

CREATE TABLE IF NOT EXISTS users (
  id             CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  username       VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  display_name   VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  role           ENUM('viewer', 'member', 'admin') NOT NULL,
  disabled       BOOLEAN NOT NULL,
  password_hash  VARCHAR(200) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  -- Sessions created at or before this log index are void (password change).
  sessions_after BIGINT UNSIGNED NOT NULL,
  created_at     BIGINT NOT NULL,
  updated_at     BIGINT NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY users_username (username)
) ENGINE = InnoDB;

CREATE TABLE IF NOT EXISTS sessions (
  hash          CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  user_id       CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  created_index BIGINT UNSIGNED NOT NULL,
  created_at    BIGINT NOT NULL,
  expires_at    BIGINT NOT NULL,
  ended         BOOLEAN NOT NULL,
  PRIMARY KEY (hash),
  KEY sessions_user (user_id)
) ENGINE = InnoDB;

CREATE TABLE IF NOT EXISTS api_tokens (
  id         CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  hash       CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  user_id    CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  name       VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NULL,
  revoked    BOOLEAN NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY api_tokens_hash (hash),
  KEY api_tokens_user (user_id)
) ENGINE = InnoDB;
