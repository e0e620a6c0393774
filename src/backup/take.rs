//! Taking a backup from this node's database while writes go on: every
//! row is read inside one `START TRANSACTION WITH CONSISTENT SNAPSHOT`
//! (REPEATABLE READ), so the events, keys, accounts and the applied index
//! all come from the same applied log entry (the applier commits each
//! entry's rows with `raft_applied` in one transaction). Rows are read a
//! page at a time and sent as they are compressed, through a channel of a
//! few chunks: memory stays flat whatever the size, and a slow reader
//! slows the reading down rather than filling memory.

use bytes::Bytes;
use mysql_async::prelude::*;
use mysql_async::{IsolationLevel, Pool, Row, TxOpts};
use tokio::sync::{mpsc, oneshot};

use super::{Header, Member, Writer, FORMAT_VERSION};
use crate::db::catchup::event_row;
use crate::db::rows::{KeyRow, EVENT_COLUMNS, KEY_COLUMNS};
use crate::db::{applied_state, DbError};
use crate::time::Timestamp;

/// Rows read per query at most.
pub const PAGE_ROWS: u64 = 500;
/// Bytes of event payload per query at most (one larger event still makes
/// a page of its own).
pub const PAGE_BYTES: u64 = 512 << 10;

/// The last seq of the next page, given `(seq, payload bytes)` of the
/// events after the last page: as many as fit in `max_bytes`, at least one.
fn page_end(sizes: &[(u64, u64)], max_bytes: u64) -> Option<u64> {
    let mut bytes = 0;
    let mut end = None;
    for &(seq, size) in sizes {
        bytes += size;
        if end.is_some() && bytes > max_bytes {
            break;
        }
        end = Some(seq);
    }
    end
}

/// Who is taking the backup, from the Raft side.
pub struct Source {
    pub cluster_id: String,
    pub node_id: u64,
    /// The membership as the node knows it when the backup starts.
    pub members: Vec<Member>,
}

pub type Chunk = Result<Bytes, std::io::Error>;

/// Opens the snapshot and starts streaming it. Returns the header once the
/// snapshot is open (an error before any byte is sent is the caller's to
/// answer with a status), and the chunks of the file. An error later ends
/// the stream with an error: the client sees a file with no end record.
pub async fn start(pool: Pool, source: Source) -> Result<(Header, mpsc::Receiver<Chunk>), DbError> {
    let (opened_tx, opened_rx) = oneshot::channel();
    let (chunks_tx, chunks_rx) = mpsc::channel(4);
    actix_web::rt::spawn(async move {
        let errors = chunks_tx.clone();
        if let Err(e) = produce(pool, source, opened_tx, chunks_tx).await {
            tracing::warn!(error = %e, "backup failed");
            let _ = errors.send(Err(std::io::Error::other(e))).await;
        }
    });
    let header = opened_rx
        .await
        .map_err(|_| DbError::Corrupt("the backup task ended".into()))??;
    Ok((header, chunks_rx))
}

async fn produce(
    pool: Pool,
    source: Source,
    opened: oneshot::Sender<Result<Header, DbError>>,
    chunks: mpsc::Sender<Chunk>,
) -> Result<(), String> {
    let mut conn = match pool.get_conn().await {
        Ok(conn) => conn,
        Err(e) => {
            let _ = opened.send(Err(e.into()));
            return Ok(());
        }
    };
    let mut options = TxOpts::default();
    options
        .with_consistent_snapshot(true)
        .with_isolation_level(IsolationLevel::RepeatableRead)
        .with_readonly(Some(true));
    let mut tx = match conn.start_transaction(options).await {
        Ok(tx) => tx,
        Err(e) => {
            let _ = opened.send(Err(e.into()));
            return Ok(());
        }
    };
    let applied = match applied_state(&mut tx).await {
        Ok(applied) => applied,
        Err(e) => {
            let _ = opened.send(Err(e));
            return Ok(());
        }
    };
    let header = Header {
        format: FORMAT_VERSION,
        cluster_id: source.cluster_id,
        node_id: source.node_id,
        applied_index: applied.applied_index,
        applied_term: applied.applied_term,
        last_seq: applied.last_seq,
        created_at: Timestamp::now(),
        taskraft_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let mut writer = Writer::new(Vec::new(), &header).map_err(|e| e.to_string())?;
    if opened.send(Ok(header.clone())).is_err() {
        return Ok(());
    }
    let db = |e: mysql_async::Error| format!("reading the database: {e}");
    let io = |e: std::io::Error| format!("writing the backup: {e}");
    // Sends what is compressed so far; `false` once the client is gone.
    async fn flush(writer: &mut Writer<Vec<u8>>, chunks: &mpsc::Sender<Chunk>) -> bool {
        let bytes = writer.take();
        bytes.is_empty() || chunks.send(Ok(Bytes::from(bytes))).await.is_ok()
    }

    writer.begin("events").map_err(io)?;
    let mut after = 0u64;
    let select_events = format!(
        "SELECT {EVENT_COLUMNS} FROM task_events WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?"
    );
    loop {
        // Sizes first: a page stops at PAGE_BYTES of payload (always at
        // least one event), so large events make short pages.
        let sizes: Vec<(u64, u64)> = tx
            .exec(
                "SELECT seq, LENGTH(payload) FROM task_events WHERE seq > ? AND seq <= ? \
                 ORDER BY seq LIMIT ?",
                (after, header.last_seq, PAGE_ROWS),
            )
            .await
            .map_err(db)?;
        let Some(upto) = page_end(&sizes, PAGE_BYTES) else {
            break;
        };
        let rows: Vec<Row> = tx
            .exec(&select_events, (after, upto, PAGE_ROWS))
            .await
            .map_err(db)?;
        for row in rows {
            let event = event_row(row).map_err(|e| e.to_string())?;
            after = event.seq;
            writer.row(&event).map_err(io)?;
        }
        if !flush(&mut writer, &chunks).await {
            return Ok(());
        }
    }
    writer.end_part().map_err(io)?;

    writer.begin("idempotency_keys").map_err(io)?;
    let select_keys = format!(
        "SELECT {KEY_COLUMNS} FROM idempotency_keys WHERE idem_key > ? AND raft_index <= ? \
         ORDER BY idem_key LIMIT ?"
    );
    let mut after = String::new();
    loop {
        let rows: Vec<Row> = tx
            .exec(&select_keys, (&after, header.applied_index, PAGE_ROWS))
            .await
            .map_err(db)?;
        let done = (rows.len() as u64) < PAGE_ROWS;
        for row in rows {
            let key = KeyRow::from_row(row).map_err(|e| e.to_string())?;
            writer.row(&key).map_err(io)?;
            after = key.key;
        }
        if !flush(&mut writer, &chunks).await {
            return Ok(());
        }
        if done {
            break;
        }
    }
    writer.end_part().map_err(io)?;

    // Accounts are few (people, their sessions and tokens): read at once.
    let accounts = crate::db::accounts::load(&mut tx)
        .await
        .map_err(|e| e.to_string())?;
    tx.commit().await.map_err(db)?;
    writer.begin("users").map_err(io)?;
    for user in &accounts.users {
        writer.row(user).map_err(io)?;
    }
    writer.end_part().map_err(io)?;
    writer.begin("sessions").map_err(io)?;
    for session in &accounts.sessions {
        writer.row(session).map_err(io)?;
    }
    writer.end_part().map_err(io)?;
    writer.begin("api_tokens").map_err(io)?;
    for token in &accounts.tokens {
        writer.row(token).map_err(io)?;
    }
    writer.end_part().map_err(io)?;
    writer.begin("membership").map_err(io)?;
    for member in &source.members {
        writer.row(member).map_err(io)?;
    }
    writer.end_part().map_err(io)?;
    let rest = writer.finish().map_err(io)?;
    if !rest.is_empty() {
        let _ = chunks.send(Ok(Bytes::from(rest))).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::page_end;

    #[test]
    fn pages_stop_at_their_byte_budget_and_hold_at_least_one_event() {
        assert_eq!(page_end(&[], 100), None);
        assert_eq!(page_end(&[(1, 40), (2, 40), (3, 40)], 100), Some(2));
        assert_eq!(page_end(&[(1, 40), (2, 60), (3, 1)], 100), Some(2));
        assert_eq!(
            page_end(&[(7, 500), (8, 1)], 100),
            Some(7),
            "one large event"
        );
        assert_eq!(page_end(&[(1, 1), (2, 1)], 100), Some(2));
    }
}
