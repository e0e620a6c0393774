//! MySQL: each node's own database, holding the event log and projection.
//!
//! - [`connect`] creates the node's database if it is missing and opens a
//!   pool on it;
//! - [`migrate`] applies the `sql/` migrations, in order, once each;
//! - [`rows`] converts between rows and domain values;
//! - [`queries`] holds the reads the api serves (the applier owns the writes);
//! - [`search`] is the full-text search (its words, ranked pages);
//! - [`as_of`] folds the events up to a time: the board as it was then;
//! - [`rebuild`] folds the event table into the projection, or checks it;
//! - [`catchup`] reads a page of committed rows for a peer catching up.

pub mod accounts;
pub mod as_of;
pub mod catalog;
pub mod catchup;
pub mod checklists;
pub mod comments;
pub mod migrate;
pub mod notifications;
pub mod queries;
pub mod rebuild;
pub mod rows;
pub mod search;
pub mod sql;
pub mod webhooks;

use std::time::Duration;

use mysql_async::prelude::*;
use mysql_async::{Opts, OptsBuilder, Pool, PoolConstraints, PoolOpts};

use crate::config::{redact, valid_database_name};
use crate::task::{ColumnTails, Status};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("MySQL: {0}")]
    Mysql(#[from] mysql_async::Error),
    #[error("MySQL URL: {0}")]
    Url(String),
    #[error("stored data is not what this version expects: {0}")]
    Corrupt(String),
    #[error("schema: {0}")]
    Schema(String),
}

impl From<mysql_async::UrlError> for DbError {
    fn from(e: mysql_async::UrlError) -> Self {
        DbError::Url(e.to_string())
    }
}

/// Every connection runs in strict mode (a value that does not fit is an
/// error, never silently truncated) and with backslash escapes, which the
/// applier's SQL text relies on ([`sql`]).
pub const SESSION_SQL_MODE: &str = "SET SESSION sql_mode = \
    'STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'";

/// And in utf8mb4, whatever the server's default: the literals the
/// applier writes are UTF-8 text, 4-byte characters included.
pub const SESSION_NAMES: &str = "SET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci";

/// What every connection runs first.
pub const SESSION_INIT: [&str; 2] = [SESSION_NAMES, SESSION_SQL_MODE];

/// Creates the database named in `url` if needed and opens a pool of up to
/// `max_connections` on it.
pub async fn connect(url: &str, max_connections: usize) -> Result<Pool, DbError> {
    let opts = Opts::from_url(url)?;
    let name = opts
        .db_name()
        .filter(|name| valid_database_name(name))
        .ok_or_else(|| DbError::Url(format!("{} names no usable database", redact(url))))?
        .to_string();
    create_database(&opts, &name).await?;
    let max = max_connections.max(1);
    let constraints = PoolConstraints::new(1, max).expect("1 <= max");
    let opts = OptsBuilder::from_opts(opts)
        .init(SESSION_INIT.to_vec())
        .pool_opts(
            PoolOpts::default()
                .with_constraints(constraints)
                // Without an idle TTL the pool keeps only `min` idle
                // connections and closes every other one on return: a new
                // connection per request. Keep up to `max`, shrink when idle.
                .with_inactive_connection_ttl(Duration::from_secs(60))
                .with_reset_connection(false),
        )
        .stmt_cache_size(64);
    Ok(Pool::new(opts))
}

async fn create_database(opts: &Opts, name: &str) -> Result<(), DbError> {
    let server = OptsBuilder::from_opts(opts.clone()).db_name(None::<String>);
    let mut conn = mysql_async::Conn::new(server).await?;
    // A node's own account may lack the right to create databases (see
    // README, MySQL accounts): only ask for it when the database is missing.
    let exists: Option<String> = conn
        .exec_first(
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
            (name,),
        )
        .await?;
    if exists.is_none() {
        let mut create = sql::Sql::new();
        create
            .push("CREATE DATABASE IF NOT EXISTS ")
            .identifier(name)
            .push(" CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci");
        conn.query_drop(create.into_string()).await?;
    }
    conn.disconnect().await?;
    Ok(())
}

/// Where the applier stands, as committed in MySQL.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AppliedState {
    pub applied_index: u64,
    pub applied_term: u64,
    pub last_seq: u64,
}

pub async fn applied_state(conn: &mut impl Queryable) -> Result<AppliedState, DbError> {
    let row: Option<(u64, u64, u64)> = conn
        .query_first("SELECT applied_index, applied_term, last_seq FROM raft_applied WHERE id = 1")
        .await?;
    let (applied_index, applied_term, last_seq) = row
        .ok_or_else(|| DbError::Schema("raft_applied has no row; run `taskraft migrate`".into()))?;
    Ok(AppliedState {
        applied_index,
        applied_term,
        last_seq,
    })
}

/// The cluster version the last applied `set_cluster_version` entry set
/// ([`crate::version::BASELINE`] before any).
pub async fn cluster_version(
    conn: &mut impl Queryable,
) -> Result<crate::version::Version, DbError> {
    let version: Option<String> = conn
        .query_first("SELECT version FROM cluster_versions ORDER BY raft_index DESC LIMIT 1")
        .await?;
    match version {
        None => Ok(crate::version::BASELINE),
        Some(text) => text
            .parse()
            .map_err(|_| DbError::Corrupt(format!("cluster_versions.version `{text}`"))),
    }
}

/// Where new cards go in each column, as `board_columns` holds it.
pub async fn column_tails(conn: &mut impl Queryable) -> Result<ColumnTails, DbError> {
    let rows: Vec<(String, f64)> = conn
        .query("SELECT status, tail_position FROM board_columns")
        .await?;
    let mut tails = ColumnTails::default();
    for (status, tail) in rows {
        let status: Status = status
            .parse()
            .map_err(|_| DbError::Corrupt(format!("board_columns.status `{status}`")))?;
        tails.0[status.rank()] = tail;
    }
    Ok(tails)
}

/// What to do about a failed MySQL call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// The connection or the server hiccuped (lost connection, deadlock,
    /// lock wait timeout, server gone): the same work is retried as is.
    Transient,
    /// What was sent is larger than the server accepts: send less at once.
    Size,
    /// Anything else: retried too, but the node says it is stuck, and why.
    Other,
}

impl ErrorClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Transient => "transient",
            ErrorClass::Size => "size",
            ErrorClass::Other => "other",
        }
    }
}

impl std::fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Server (and client library) error codes by class.
const TRANSIENT_CODES: &[u16] = &[
    1040, // ER_CON_COUNT_ERROR: too many connections
    1053, // ER_SERVER_SHUTDOWN
    1152, // ER_ABORTING_CONNECTION
    1158, 1159, 1160, 1161, // ER_NET_READ_ERROR … ER_NET_WRITE_INTERRUPTED
    1205, // ER_LOCK_WAIT_TIMEOUT
    1213, // ER_LOCK_DEADLOCK
    1317, // ER_QUERY_INTERRUPTED
    1927, // ER_CONNECTION_KILLED (MariaDB)
    2002, 2003, 2006, 2013, // client: can't connect, server gone, lost connection
];
const SIZE_CODES: &[u16] = &[
    1153, // ER_NET_PACKET_TOO_LARGE
    1301, // ER_WARN_ALLOWED_PACKET_OVERFLOWED
    2020, // CR_NET_PACKET_TOO_LARGE
];

impl DbError {
    pub fn class(&self) -> ErrorClass {
        match self {
            DbError::Mysql(e) => classify(e),
            DbError::Url(_) | DbError::Corrupt(_) | DbError::Schema(_) => ErrorClass::Other,
        }
    }
}

pub fn classify(error: &mysql_async::Error) -> ErrorClass {
    use mysql_async::{DriverError, Error};
    match error {
        Error::Server(e) if SIZE_CODES.contains(&e.code) => ErrorClass::Size,
        Error::Server(e) if TRANSIENT_CODES.contains(&e.code) => ErrorClass::Transient,
        Error::Server(_) => ErrorClass::Other,
        Error::Driver(DriverError::PacketTooLarge) => ErrorClass::Size,
        Error::Driver(
            DriverError::ConnectionClosed
            | DriverError::PacketOutOfOrder
            | DriverError::PoolDisconnected
            | DriverError::UnexpectedPacket { .. },
        ) => ErrorClass::Transient,
        Error::Driver(_) | Error::Url(_) | Error::Other(_) => ErrorClass::Other,
        // The client refuses a packet over the server's max_allowed_packet
        // before sending it, as an I/O error.
        Error::Io(e) if e.to_string().contains("max_allowed_packet") => ErrorClass::Size,
        Error::Io(_) => ErrorClass::Transient,
    }
}

/// The server's `max_allowed_packet`, bytes.
pub async fn max_allowed_packet(conn: &mut impl Queryable) -> Result<usize, DbError> {
    let value: Option<u64> = conn.query_first("SELECT @@max_allowed_packet").await?;
    Ok(value.unwrap_or(4 << 20) as usize)
}

/// Bytes of SQL the node sends in one round trip when the server accepts
/// `max_allowed_packet`: half of it, so that whatever the server counts on
/// top (and a later, smaller setting) still fits.
pub fn round_trip_budget(max_allowed_packet: usize) -> usize {
    (max_allowed_packet / 2).clamp(16 << 10, 32 << 20)
}

#[cfg(test)]
mod class_tests {
    use super::*;

    fn server(code: u16) -> DbError {
        DbError::Mysql(mysql_async::Error::Server(mysql_async::ServerError {
            code,
            message: format!("error {code}"),
            state: "HY000".into(),
        }))
    }

    #[test]
    fn errors_are_classified_by_what_to_do_about_them() {
        for code in [1213, 1205, 2006, 2013] {
            assert_eq!(server(code).class(), ErrorClass::Transient, "{code}");
        }
        for code in [1153, 1301, 2020] {
            assert_eq!(server(code).class(), ErrorClass::Size, "{code}");
        }
        for code in [1146, 1062, 1406, 1142] {
            assert_eq!(server(code).class(), ErrorClass::Other, "{code}");
        }
        let io = |message: &str| {
            DbError::Mysql(mysql_async::Error::Io(mysql_async::IoError::Io(
                std::io::Error::other(message.to_string()),
            )))
        };
        assert_eq!(
            io("Packet is larger than max_allowed_packet").class(),
            ErrorClass::Size
        );
        assert_eq!(io("connection reset").class(), ErrorClass::Transient);
        assert_eq!(
            DbError::Mysql(mysql_async::DriverError::PacketTooLarge.into()).class(),
            ErrorClass::Size
        );
        assert_eq!(DbError::Corrupt("x".into()).class(), ErrorClass::Other);
    }
}
