//! `GET /api/boards/{id}/export?format=json|csv`: a board with its columns
//! and every card (archived ones too), for any member of the board.
//!
//! Read inside one `START TRANSACTION WITH CONSISTENT SNAPSHOT`, as a
//! backup is: the board, its columns and its cards all as of one applied
//! entry (`last_seq` says which), whatever is written meanwhile. Cards are
//! read 100 at a time along `tasks_board_archive` and sent in chunks of
//! 64 KiB through a channel of four, so memory stays flat however large
//! the board, and a slow reader slows the reading down; one that reads
//! nothing for 30 s is given up on, and at most four exports run at once,
//! since each holds a database connection and a snapshot while it runs.
//!
//! - **JSON** (`taskraft-board`, version 1): `{format, version, last_seq,
//!   board, columns, cards}`, each card as the API shows a task, with its
//!   `column_id` always present, its `comments` (author, body, time) and
//!   its `checklists` (title, items with text and done). It is what an import of `format=json`
//!   reads back.
//! - **CSV** (RFC 4180, UTF-8, CRLF): the header [`CSV_HEADER`], one row
//!   per card. `labels` are joined by `; ` (a `;` or `\` in a label is
//!   escaped with `\`). A cell that a spreadsheet would run as a formula
//!   (starting with `=`, `+`, `-`, `@`, tab or carriage return, after any
//!   `'`s) gets one more `'` in front, which an import takes off again.

use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use std::collections::HashMap;

use mysql_async::prelude::*;
use mysql_async::{IsolationLevel, Pool, TxOpts, Value};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use super::boards::{board_id, role_on};
use super::error::ApiError;
use super::tasks::read_barrier;
use super::AppState;
use crate::db::rows::task_from_row;
use crate::db::sql::Sql;
use crate::db::{applied_state, DbError};
use crate::import::csv::{formula_like, join_labels};
use crate::task::{BoardId, BoardRecord, Column, Task, TaskId};

/// Cards read per query (a card can hold 20,000 characters).
const PAGE: u64 = 100;
/// What is written is sent once it reaches this.
const CHUNK: usize = 64 << 10;
/// A client that reads nothing for this long is given up on: the export
/// holds a database connection and a snapshot while it runs.
const STALL: std::time::Duration = std::time::Duration::from_secs(30);
/// Exports running at once on a node, at most (each holds a connection).
const MAX_RUNNING: usize = 4;
static RUNNING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// One of the [`MAX_RUNNING`] places, given back when dropped.
struct Place;

impl Place {
    fn take() -> Option<Place> {
        use std::sync::atomic::Ordering;
        let mut now = RUNNING.load(Ordering::Relaxed);
        loop {
            if now >= MAX_RUNNING {
                return None;
            }
            match RUNNING.compare_exchange(now, now + 1, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return Some(Place),
                Err(actual) => now = actual,
            }
        }
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        RUNNING.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

pub const CSV_HEADER: &str = "id,title,description,column,column_id,position,priority,assignee,\
                              labels,due_date,archived,created_at,updated_at,version";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Json,
    Csv,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    #[serde(default)]
    format: Format,
}

pub async fn export(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<ExportQuery>,
) -> Result<HttpResponse, ApiError> {
    let board = board_id(&path)?;
    read_barrier(&state, super::request::Consistency::Linearizable).await?;
    role_on(&state.rows.catalog(), &super::auth::principal(&req), &board)?;
    let format = query.format;
    let place = Place::take().ok_or_else(|| ApiError::Conflict {
        code: "exports_busy",
        message: format!("{MAX_RUNNING} exports are running on this node; try again in a moment"),
    })?;
    let (name, chunks) = start(state.pool.clone(), board, format, place).await?;
    let stream = futures_util::stream::unfold(chunks, |mut chunks| async move {
        chunks.recv().await.map(|chunk| (chunk, chunks))
    });
    let (content_type, extension) = match format {
        Format::Json => ("application/json", "json"),
        Format::Csv => ("text/csv; charset=utf-8", "csv"),
    };
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{}.{extension}\"", file_name(&name)),
        ))
        .streaming(stream))
}

/// The board's name as a file name: letters, digits, `-` and `_` kept,
/// runs of anything else one `-`.
fn file_name(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_matches('-');
    if out.is_empty() {
        "board".into()
    } else {
        out.chars().take(60).collect()
    }
}

type Chunk = Result<Bytes, std::io::Error>;

/// Opens the snapshot and starts streaming. The board's name once the
/// snapshot is open (a board gone by then is a 404, before any byte);
/// an error later ends the stream with an error.
async fn start(
    pool: Pool,
    board: BoardId,
    format: Format,
    place: Place,
) -> Result<(String, mpsc::Receiver<Chunk>), ApiError> {
    let (opened_tx, opened_rx) = oneshot::channel();
    let (chunks_tx, chunks_rx) = mpsc::channel(4);
    actix_web::rt::spawn(async move {
        let _place = place;
        let errors = chunks_tx.clone();
        if let Err(e) = produce(pool, board, format, opened_tx, chunks_tx).await {
            tracing::warn!(error = %e, %board, "export failed");
            let _ = errors.send(Err(std::io::Error::other(e.to_string()))).await;
        }
    });
    let name = opened_rx
        .await
        .map_err(|_| ApiError::from(DbError::Corrupt("the export task ended".into())))??;
    Ok((name, chunks_rx))
}

async fn produce(
    pool: Pool,
    board: BoardId,
    format: Format,
    opened: oneshot::Sender<Result<String, ApiError>>,
    chunks: mpsc::Sender<Chunk>,
) -> Result<(), DbError> {
    let mut conn = pool.get_conn().await?;
    let mut options = TxOpts::default();
    options
        .with_consistent_snapshot(true)
        .with_isolation_level(IsolationLevel::RepeatableRead)
        .with_readonly(Some(true));
    let mut tx = conn.start_transaction(options).await?;
    let last_seq = applied_state(&mut tx).await?.last_seq;
    let catalog = crate::db::catalog::load_rows(&mut tx, crate::db::catalog::Cards::Skip).await?;
    let Some(record) = catalog.board(&board).cloned() else {
        let _ = opened.send(Err(ApiError::NotFound(format!("no board {board}"))));
        return Ok(());
    };
    let columns: Vec<Column> = catalog.columns_of(&board).into_iter().cloned().collect();
    if opened.send(Ok(record.name.clone())).is_err() {
        return Ok(());
    }
    let mut out = Writer::new(chunks, format);
    out.head(&record, &columns, last_seq);
    for archived in [false, true] {
        let mut after: Option<(f64, TaskId)> = None;
        loop {
            let page = page(&mut tx, board, archived, after, PAGE).await?;
            let (mut threads, mut lists) = if format == Format::Json {
                (
                    comments(&mut tx, &page).await?,
                    checklists(&mut tx, &page).await?,
                )
            } else {
                (HashMap::new(), HashMap::new())
            };
            for task in &page {
                out.card(
                    task,
                    &columns,
                    threads.remove(&task.id).unwrap_or_default(),
                    lists.remove(&task.id).unwrap_or_default(),
                );
                if out.buffer.len() >= CHUNK && !out.flush().await {
                    return Ok(()); // the client went away, or stopped reading
                }
            }
            match page.last() {
                Some(last) if page.len() as u64 == PAGE => after = Some((last.position, last.id)),
                _ => break,
            }
        }
    }
    out.end();
    out.flush().await;
    tx.commit().await?;
    Ok(())
}

/// Up to `limit` of the board's cards (live or archived) after `after`, in
/// board order, through `tasks_board_archive` (board_id, archived,
/// position, id).
async fn page(
    tx: &mut mysql_async::Transaction<'_>,
    board: BoardId,
    archived: bool,
    after: Option<(f64, TaskId)>,
    limit: u64,
) -> Result<Vec<Task>, DbError> {
    let mut sql = Sql::new();
    sql.push("SELECT ")
        .push(crate::db::rows::TASK_COLUMNS)
        .push(" FROM tasks FORCE INDEX (tasks_board_archive) WHERE board_id = ? AND archived = ?");
    let mut params: Vec<Value> = vec![board.to_string().into(), u64::from(archived).into()];
    if let Some((position, id)) = after {
        sql.push(" AND (position > ? OR (position = ? AND id > ?))");
        params.extend([position.into(), position.into(), id.to_string().into()]);
    }
    sql.push(" ORDER BY position, id LIMIT ?");
    params.push(limit.into());
    let rows: Vec<mysql_async::Row> = tx.exec(sql.into_string(), params).await?;
    rows.into_iter().map(task_from_row).collect()
}

/// The comments of `tasks`, each card's oldest first, as an export shows
/// them: author, body, time.
async fn comments(
    tx: &mut mysql_async::Transaction<'_>,
    tasks: &[Task],
) -> Result<HashMap<TaskId, Vec<serde_json::Value>>, DbError> {
    let mut threads: HashMap<TaskId, Vec<serde_json::Value>> = HashMap::new();
    if tasks.is_empty() {
        return Ok(threads);
    }
    let mut sql = Sql::new();
    sql.push(
        "SELECT task_id, author_id, author_name, body, created_at FROM comments \
         WHERE task_id IN (",
    )
    .marks(tasks.len())
    .push(") ORDER BY task_id, created_at, id");
    let params: Vec<Value> = tasks.iter().map(|t| t.id.to_string().into()).collect();
    let rows: Vec<(String, String, String, String, Value)> =
        tx.exec(sql.into_string(), params).await?;
    for (task, author_id, author_name, body, created_at) in rows {
        let task: TaskId = task
            .parse()
            .map_err(|_| DbError::Corrupt(format!("comments.task_id `{task}`")))?;
        let at = crate::db::rows::timestamp_from(created_at, "created_at")?;
        threads.entry(task).or_default().push(json!({
            "author": { "id": author_id, "name": author_name },
            "body": body,
            "created_at": at,
        }));
    }
    Ok(threads)
}

/// The checklists of `tasks`, each card's oldest first, as an export shows
/// them: title, and items (text, done) in order.
async fn checklists(
    tx: &mut mysql_async::Transaction<'_>,
    tasks: &[Task],
) -> Result<HashMap<TaskId, Vec<serde_json::Value>>, DbError> {
    let ids: Vec<TaskId> = tasks.iter().map(|t| t.id).collect();
    let mut lists: HashMap<TaskId, Vec<serde_json::Value>> = HashMap::new();
    for list in crate::db::checklists::of_tasks(tx, &ids).await? {
        lists.entry(list.task_id).or_default().push(json!({
            "title": list.title,
            "items": list
                .items
                .iter()
                .map(|i| json!({ "text": i.text, "done": i.done }))
                .collect::<Vec<_>>(),
        }));
    }
    Ok(lists)
}

/// The file as it is written, sent a page at a time.
struct Writer {
    chunks: mpsc::Sender<Chunk>,
    format: Format,
    buffer: String,
    cards: usize,
}

impl Writer {
    fn new(chunks: mpsc::Sender<Chunk>, format: Format) -> Writer {
        Writer {
            chunks,
            format,
            buffer: String::new(),
            cards: 0,
        }
    }

    fn head(&mut self, board: &BoardRecord, columns: &[Column], last_seq: u64) {
        match self.format {
            Format::Json => {
                let head = json!({
                    "format": "taskraft-board",
                    "version": 1,
                    "last_seq": last_seq,
                    "board": board,
                    "columns": columns,
                });
                let head = head.to_string();
                // The object without its closing brace: the cards follow.
                self.buffer.push_str(&head[..head.len() - 1]);
                self.buffer.push_str(",\"cards\":[");
            }
            Format::Csv => {
                self.buffer.push_str(CSV_HEADER);
                self.buffer.push_str("\r\n");
            }
        }
    }

    fn card(
        &mut self,
        task: &Task,
        columns: &[Column],
        comments: Vec<serde_json::Value>,
        checklists: Vec<serde_json::Value>,
    ) {
        let column = task.column();
        match self.format {
            Format::Json => {
                if self.cards > 0 {
                    self.buffer.push(',');
                }
                let mut value = json!(task);
                value["column_id"] = json!(column);
                value["comments"] = json!(comments);
                value["checklists"] = json!(checklists);
                self.buffer.push_str(&value.to_string());
            }
            Format::Csv => {
                let name = columns
                    .iter()
                    .find(|c| c.id == column)
                    .map_or("", |c| c.name.as_str());
                let cells = [
                    task.id.to_string(),
                    task.title.clone(),
                    task.description.clone(),
                    name.to_string(),
                    column.to_string(),
                    serde_json::to_string(&task.position).expect("a finite number"),
                    task.priority.as_str().to_string(),
                    task.assignee.clone().unwrap_or_default(),
                    join_labels(&task.labels),
                    task.due_date.map(|d| d.to_string()).unwrap_or_default(),
                    task.archived.to_string(),
                    task.created_at.to_string(),
                    task.updated_at.to_string(),
                    task.version.to_string(),
                ];
                for (i, cell) in cells.iter().enumerate() {
                    if i > 0 {
                        self.buffer.push(',');
                    }
                    csv_cell(&mut self.buffer, cell);
                }
                self.buffer.push_str("\r\n");
            }
        }
        self.cards += 1;
    }

    fn end(&mut self) {
        if self.format == Format::Json {
            self.buffer.push_str("]}");
        }
    }

    /// Sends what is written so far; `false` once the client is gone or
    /// has read nothing for [`STALL`].
    async fn flush(&mut self) -> bool {
        if self.buffer.is_empty() {
            return true;
        }
        let bytes = Bytes::from(std::mem::take(&mut self.buffer));
        matches!(
            tokio::time::timeout(STALL, self.chunks.send(Ok(bytes))).await,
            Ok(Ok(()))
        )
    }
}

/// One CSV cell: a `'` in front of what a spreadsheet would run, quoted
/// when it holds a comma, quote or line break (quotes doubled).
fn csv_cell(out: &mut String, text: &str) {
    let guarded = formula_like(text);
    let quoted = guarded || text.contains([',', '"', '\n', '\r']);
    if quoted {
        out.push('"');
    }
    if guarded {
        out.push('\'');
    }
    for c in text.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    if quoted {
        out.push('"');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(text: &str) -> String {
        let mut out = String::new();
        csv_cell(&mut out, text);
        out
    }

    #[test]
    fn cells_a_spreadsheet_would_run_get_a_quote_in_front() {
        assert_eq!(cell("=cmd|' /C calc'!A0"), "\"'=cmd|' /C calc'!A0\"");
        assert_eq!(cell("+1"), "\"'+1\"");
        assert_eq!(cell("-2"), "\"'-2\"");
        assert_eq!(cell("@SUM(A1)"), "\"'@SUM(A1)\"");
        assert_eq!(cell("\tx"), "\"'\tx\"");
        // A quote of the text itself is kept, and one more added.
        assert_eq!(cell("'=x"), "\"''=x\"");
        assert_eq!(cell("'plain"), "'plain");
        assert_eq!(cell("a, \"b\"\nc"), "\"a, \"\"b\"\"\nc\"");
        assert_eq!(cell("plain 🚀"), "plain 🚀");
    }

    #[test]
    fn file_names_keep_letters_and_digits() {
        assert_eq!(file_name("Launch \"Q3\" \\ 🚀"), "Launch-Q3");
        assert_eq!(file_name("🚀"), "board");
        assert_eq!(file_name("ops_2026"), "ops_2026");
    }
}
