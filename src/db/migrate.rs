//! Schema migrations: the files in `sql/`, compiled in, applied in order.
//!
//! Each applied migration is recorded in `schema_migrations` with a checksum
//! of its text; a recorded migration whose file changed afterwards stops the
//! node rather than leave the schema in an unknown state. A named lock keeps
//! two processes (a node and `taskraft migrate`) from migrating at once.
//! MySQL cannot roll back DDL, so every statement is written to be re-run
//! safely (`IF NOT EXISTS`, `DROP ... IF EXISTS`, guarded inserts).

use mysql_async::prelude::*;
use mysql_async::Conn;

use super::DbError;

pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every file in `sql/`, in order. A test checks that none is missing.
/// Versions increase but need not be dense: each migration is applied
/// when its own version is not recorded, so a gap filled later (a
/// migration merged from another branch) is applied then, after the
/// higher ones; migrations must not depend on those numbered above them.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "V1__init.sql",
        sql: include_str!("../../sql/V1__init.sql"),
    },
    Migration {
        version: 2,
        name: "V2__catchup_index.sql",
        sql: include_str!("../../sql/V2__catchup_index.sql"),
    },
    Migration {
        version: 3,
        name: "V3__assignee_binary.sql",
        sql: include_str!("../../sql/V3__assignee_binary.sql"),
    },
    Migration {
        version: 4,
        name: "V4__accounts.sql",
        sql: include_str!("../../sql/V4__accounts.sql"),
    },
    Migration {
        version: 5,
        name: "V5__key_retention.sql",
        sql: include_str!("../../sql/V5__key_retention.sql"),
    },
    Migration {
        version: 6,
        name: "V6__audit_events.sql",
        sql: include_str!("../../sql/V6__audit_events.sql"),
    },
    Migration {
        version: 7,
        name: "V7__search.sql",
        sql: include_str!("../../sql/V7__search.sql"),
    },
    Migration {
        version: 8,
        name: "V8__boards.sql",
        sql: include_str!("../../sql/V8__boards.sql"),
    },
    Migration {
        version: 9,
        name: "V9__board_list_index.sql",
        sql: include_str!("../../sql/V9__board_list_index.sql"),
    },
    Migration {
        version: 10,
        name: "V10__board_filters.sql",
        sql: include_str!("../../sql/V10__board_filters.sql"),
    },
    Migration {
        version: 11,
        name: "V11__activity.sql",
        sql: include_str!("../../sql/V11__activity.sql"),
    },
    Migration {
        version: 12,
        name: "V12__comments.sql",
        sql: include_str!("../../sql/V12__comments.sql"),
    },
    Migration {
        version: 13,
        name: "V13__checklists.sql",
        sql: include_str!("../../sql/V13__checklists.sql"),
    },
    Migration {
        version: 14,
        name: "V14__notifications.sql",
        sql: include_str!("../../sql/V14__notifications.sql"),
    },
    Migration {
        version: 15,
        name: "V15__webhooks.sql",
        sql: include_str!("../../sql/V15__webhooks.sql"),
    },
    Migration {
        version: 16,
        name: "V16__due_index.sql",
        sql: include_str!("../../sql/V16__due_index.sql"),
    },
    Migration {
        version: 17,
        name: "V17__column_counts.sql",
        sql: include_str!("../../sql/V17__column_counts.sql"),
    },
    Migration {
        version: 18,
        name: "V18__column_version.sql",
        sql: include_str!("../../sql/V18__column_version.sql"),
    },
    Migration {
        version: 20,
        name: "V20__comment_search.sql",
        sql: include_str!("../../sql/V20__comment_search.sql"),
    },
];

const LOCK_TIMEOUT_SECS: u32 = 60;

/// How many migrations this database lacks, read without any DDL (so a
/// node whose account has no DDL rights can tell that it needs none).
pub async fn pending(conn: &mut Conn) -> Result<usize, DbError> {
    let table: Option<String> = conn
        .query_first(
            "SELECT TABLE_NAME FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'schema_migrations'",
        )
        .await?;
    if table.is_none() {
        return Ok(MIGRATIONS.len());
    }
    let applied: Vec<(u32, String)> = conn
        .query("SELECT version, checksum FROM schema_migrations ORDER BY version")
        .await?;
    Ok(MIGRATIONS
        .iter()
        .filter(|m| {
            !applied
                .iter()
                .any(|(v, c)| *v == m.version && *c == checksum(m.sql))
        })
        .count())
}

/// Applies the migrations this database lacks; returns how many it applied.
pub async fn run(conn: &mut Conn) -> Result<usize, DbError> {
    conn.query_drop(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
           version INT UNSIGNED NOT NULL PRIMARY KEY,
           name VARCHAR(200) NOT NULL,
           checksum CHAR(16) NOT NULL,
           applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
         ) ENGINE = InnoDB",
    )
    .await?;
    let lock = "taskraft_migrate";
    let locked: Option<i64> = conn
        .exec_first(
            "SELECT GET_LOCK(CONCAT(?, DATABASE()), ?)",
            (lock, LOCK_TIMEOUT_SECS),
        )
        .await?;
    if locked != Some(1) {
        return Err(DbError::Schema(format!(
            "another process held the migration lock for {LOCK_TIMEOUT_SECS}s"
        )));
    }
    let result = apply_missing(conn).await;
    conn.exec_drop("SELECT RELEASE_LOCK(CONCAT(?, DATABASE()))", (lock,))
        .await?;
    result
}

async fn apply_missing(conn: &mut Conn) -> Result<usize, DbError> {
    let applied: Vec<(u32, String)> = conn
        .query("SELECT version, checksum FROM schema_migrations ORDER BY version")
        .await?;
    let mut count = 0;
    for migration in MIGRATIONS {
        let checksum = checksum(migration.sql);
        match applied.iter().find(|(v, _)| *v == migration.version) {
            Some((_, recorded)) if *recorded == checksum => continue,
            Some(_) => {
                return Err(DbError::Schema(format!(
                    "migration {} was changed after it was applied; add a new migration instead",
                    migration.name
                )))
            }
            None => {}
        }
        for statement in statements(migration.sql) {
            conn.query_drop(&statement).await.map_err(|e| {
                DbError::Schema(format!("{} failed: {e}\n{statement}", migration.name))
            })?;
        }
        conn.exec_drop(
            "INSERT INTO schema_migrations (version, name, checksum) VALUES (?, ?, ?)",
            (migration.version, migration.name, &checksum),
        )
        .await?;
        tracing::info!(migration = migration.name, "applied migration");
        count += 1;
    }
    if let Some((newest, _)) = applied.last() {
        let known = MIGRATIONS.last().map_or(0, |m| m.version);
        if *newest > known {
            return Err(DbError::Schema(format!(
                "the database is at schema version {newest}, newer than this binary knows ({known})"
            )));
        }
    }
    Ok(count)
}

/// Splits a migration at semicolons that end a line; drops comment lines.
fn statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in sql.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("--") || trimmed.is_empty() {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        if trimmed.ends_with(';') {
            let statement = current.trim().trim_end_matches(';').trim().to_string();
            out.push(statement);
            current.clear();
        }
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_string());
    }
    out
}

/// FNV-1a, 64 bits, hex: detects an edited migration; not a security hash.
pub fn checksum(text: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_in_sql_is_a_listed_migration_in_order() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/sql");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".sql"))
            .collect();
        files.sort_by_key(|name| {
            name.trim_start_matches('V')
                .split("__")
                .next()
                .and_then(|v| v.parse::<u32>().ok())
                .unwrap_or(u32::MAX)
        });
        let listed: Vec<&str> = MIGRATIONS.iter().map(|m| m.name).collect();
        assert_eq!(files, listed);
        for pair in MIGRATIONS.windows(2) {
            assert!(pair[0].version < pair[1].version, "versions increase");
        }
        for m in MIGRATIONS {
            assert!(m.name.starts_with(&format!("V{}__", m.version)));
        }
    }

    #[test]
    fn statements_split_at_line_ending_semicolons_only() {
        let sql = "-- comment\nCREATE TABLE a (x INT);\n\nINSERT INTO a\n  SELECT 1;\nSIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'a; b';\n";
        assert_eq!(
            statements(sql),
            vec![
                "CREATE TABLE a (x INT)",
                "INSERT INTO a\n  SELECT 1",
                "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'a; b'"
            ]
        );
    }

    #[test]
    fn the_checksum_is_stable() {
        assert_eq!(checksum(""), "cbf29ce484222325");
        assert_ne!(checksum("a"), checksum("b"));
    }
}
