//! Importing a board from a file: a Trello board export, a CSV of cards, or
//! a board this cluster exported (`GET /api/boards/{id}/export`).
//!
//! 1. **Read the whole file first** ([`trello`], [`csv`], [`taskraft`])
//!    into a [`Plan`]: the board, its columns and its cards, every value
//!    checked by the rules a request is checked by. A file that is
//!    malformed anywhere is refused with where its first problem is (a
//!    JSON path, a CSV line) before anything is written.
//! 2. **Write it through the log** as ordinary commands, as the importing
//!    user: the board, its columns, then the cards in batches of
//!    [`BATCH`] (at most [`IN_FLIGHT`] proposed at once), their comments,
//!    then the archived ones archived. The job reports its progress ([`Jobs`]).
//! 3. **Exactly once, resumable.** Every id the job writes (board, columns,
//!    cards) is derived from the job's id, which is derived from the user,
//!    the `Idempotency-Key` and the file. A command that fails without an
//!    answer (a leader killed, a timeout) is sent again until the log says
//!    what happened; a create the log already has is refused as "id taken",
//!    which the job counts as done. Sending the same file with the same key
//!    again (after the node running the job died, say) resumes it: what is
//!    written is skipped the same way.

pub mod csv;
pub mod taskraft;
pub mod trello;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::accounts::Actor;
use crate::raft::RaftHandle;
use crate::task::checklist::{
    self, ChecklistAction, ChecklistCommand, CHECKLISTS_PER_TASK, ITEMS_PER_CHECKLIST,
};
use crate::task::{
    validate, BoardId, CatalogRejection, ColumnId, ColumnPatch, Command, CommentId, NewBoard,
    NewColumn, NewComment, NewTask, Op, Outcome, Priority, Rejection, Status, TaskId, TaskPatch,
};
use crate::task::{ChecklistId, ItemId};
use crate::time::{Date, Timestamp};

/// Cards proposed per batch, and at most this many at once.
pub const BATCH: usize = 200;
pub const IN_FLIGHT: usize = 16;
/// Most columns and cards a file may bring.
pub const MAX_COLUMNS: usize = 100;
pub const MAX_CARDS: usize = 50_000;
pub const MAX_COMMENTS: usize = 100_000;
/// Column names are 1–60 characters.
const COLUMN_NAME_MAX: usize = 60;
const BOARD_NAME_MAX: usize = 100;
/// A command the log has not answered is sent again for this long.
const GIVE_UP_AFTER: Duration = Duration::from_secs(120);

/// Where in the file a problem is, and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// `cards[3].name`, `line 12, column priority`, …
    pub at: String,
    pub message: String,
}

impl Problem {
    pub fn new(at: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            at: at.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}

/// A board as a file describes it, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub board_name: String,
    pub columns: Vec<PlannedColumn>,
    pub cards: Vec<PlannedCard>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlannedColumn {
    pub name: String,
    pub wip_limit: Option<u32>,
    pub color: Option<String>,
    pub archive_after_days: Option<u32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlannedCard {
    /// Index into [`Plan::columns`].
    pub column: usize,
    pub title: String,
    pub description: String,
    pub priority: Priority,
    pub assignee: Option<String>,
    pub labels: Vec<String>,
    pub due_date: Option<Date>,
    pub archived: bool,
    /// Comment bodies, oldest first (written as the importing user).
    pub comments: Vec<String>,
    /// Checklists in order, each with its items in order.
    pub checklists: Vec<PlannedChecklist>,
}

/// A checklist to write: its title and its items (text, ticked).
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedChecklist {
    pub title: String,
    pub items: Vec<(String, bool)>,
}

impl PlannedChecklist {
    /// A list as a card takes it: title and texts made one line, cut to
    /// their limits (an empty title is "Checklist", an empty item left
    /// out), at most [`ITEMS_PER_CHECKLIST`] items.
    pub fn fitted(
        title: &str,
        items: impl IntoIterator<Item = (String, bool)>,
    ) -> PlannedChecklist {
        let line = |text: &str, max| {
            let flat: String = text
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            shorten(&flat, max)
        };
        let mut title = line(title, checklist::TITLE_MAX);
        if title.is_empty() {
            title = "Checklist".into();
        }
        PlannedChecklist {
            title,
            items: items
                .into_iter()
                .map(|(text, done)| (line(&text, checklist::ITEM_MAX), done))
                .filter(|(text, _)| !text.is_empty())
                .take(ITEMS_PER_CHECKLIST)
                .collect(),
        }
    }
}

impl PlannedCard {
    /// A card with `title` in `column`, the rest empty.
    pub fn titled(column: usize, title: String) -> PlannedCard {
        PlannedCard {
            column,
            title,
            description: String::new(),
            priority: Priority::Medium,
            assignee: None,
            labels: Vec::new(),
            due_date: None,
            archived: false,
            comments: Vec::new(),
            checklists: Vec::new(),
        }
    }

    /// Checks the card by the rules of `POST /api/tasks` (trimming it).
    pub fn check(&mut self, at: &str) -> Result<(), Problem> {
        let mut task = NewTask {
            id: TaskId(Uuid::nil()),
            title: std::mem::take(&mut self.title),
            description: std::mem::take(&mut self.description),
            status: Status::Todo,
            position: None,
            priority: self.priority,
            assignee: self.assignee.take(),
            labels: std::mem::take(&mut self.labels),
            due_date: self.due_date,
            board_id: None,
            column_id: None,
        };
        validate::new_task(&mut task)
            .map_err(|e| Problem::new(format!("{at}.{}", e.field), e.message))?;
        self.title = task.title;
        self.description = task.description;
        self.assignee = task.assignee;
        self.labels = task.labels;
        self.checklists.truncate(CHECKLISTS_PER_TASK);
        for (i, body) in self.comments.iter_mut().enumerate() {
            *body = validate::comment_body(body)
                .map_err(|e| Problem::new(format!("{at}.comments[{i}]"), e.message))?;
        }
        Ok(())
    }
}

impl Plan {
    /// Checks the board's and columns' names and the card count; trims.
    pub fn check(&mut self) -> Result<(), Problem> {
        self.board_name = self.board_name.trim().to_string();
        let n = self.board_name.chars().count();
        if n == 0 || n > BOARD_NAME_MAX {
            return Err(Problem::new(
                "board name",
                format!("must be 1 to {BOARD_NAME_MAX} characters"),
            ));
        }
        if self.columns.is_empty() {
            return Err(Problem::new("columns", "the file has no column (list)"));
        }
        if self.columns.len() > MAX_COLUMNS {
            return Err(Problem::new(
                "columns",
                format!("{} columns; at most {MAX_COLUMNS}", self.columns.len()),
            ));
        }
        if self.cards.len() > MAX_CARDS {
            return Err(Problem::new(
                "cards",
                format!("{} cards; at most {MAX_CARDS}", self.cards.len()),
            ));
        }
        let comments: usize = self.cards.iter().map(|c| c.comments.len()).sum();
        if comments > MAX_COMMENTS {
            return Err(Problem::new(
                "comments",
                format!("{comments} comments; at most {MAX_COMMENTS}"),
            ));
        }
        for (i, column) in self.columns.iter_mut().enumerate() {
            column.name = column.name.trim().to_string();
            let n = column.name.chars().count();
            if n == 0 || n > COLUMN_NAME_MAX || column.name.chars().any(char::is_control) {
                return Err(Problem::new(
                    format!("columns[{i}].name"),
                    format!(
                        "must be 1 to {COLUMN_NAME_MAX} characters, without control characters"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// `text` cut to `max` characters, with `…` when cut.
pub fn shorten(text: &str, max: usize) -> String {
    let text = text.trim();
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// A job's id: random, or (with an idempotency key) the same for the same
/// user, key and file, so sending them again resumes the job.
pub fn job_id(user: &str, key: Option<&str>, file: &[u8]) -> Uuid {
    match key {
        None => Uuid::new_v4(),
        Some(key) => {
            let mut hash = Sha256::new();
            for part in [user.as_bytes(), key.as_bytes()] {
                hash.update((part.len() as u64).to_be_bytes());
                hash.update(part);
            }
            hash.update(Sha256::digest(file));
            derived(&hash.finalize())
        }
    }
}

/// The `n`th id of kind `tag` a job writes.
fn id_of(job: Uuid, tag: &str, n: usize) -> Uuid {
    let mut hash = Sha256::new();
    hash.update(job.as_bytes());
    hash.update(tag.as_bytes());
    hash.update((n as u64).to_be_bytes());
    derived(&hash.finalize())
}

/// Like [`id_of`], the `n`th id sorting after the `n - 1`th (as text too):
/// `n` in its first four bytes, the hash in the rest.
fn ordered_id(job: Uuid, tag: &str, n: usize) -> Uuid {
    let mut bytes = *id_of(job, tag, n).as_bytes();
    bytes[..4].copy_from_slice(&(n as u32).to_be_bytes());
    Uuid::from_bytes(bytes)
}

/// A UUID (version 8: made here) from the first 16 bytes of a hash.
pub(crate) fn derived(hash: &[u8]) -> Uuid {
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Uuid::from_bytes(bytes)
}

/// What `GET /api/jobs/{id}` shows.
#[derive(Clone, Debug, Serialize)]
pub struct JobView {
    pub id: Uuid,
    /// `running`, `done` or `failed`.
    pub state: &'static str,
    pub board_id: BoardId,
    /// Commands written (or found written) of `total`.
    pub done: usize,
    pub total: usize,
    pub cards: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub started_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
    /// Who started it: only they (and admins) may read it.
    #[serde(skip)]
    pub owner: String,
}

/// The jobs this node runs or ran (since it started).
#[derive(Clone, Default)]
pub struct Jobs {
    jobs: Arc<Mutex<HashMap<Uuid, JobView>>>,
    /// Files being received and read now.
    uploads: Arc<std::sync::atomic::AtomicUsize>,
}

/// Jobs running at once on a node, at most; and files read at once (each
/// up to the api's 32 MiB, so memory stays bounded however many send).
pub const MAX_RUNNING: usize = 2;
pub const MAX_UPLOADS: usize = 2;
/// Ended jobs a node remembers (the oldest go first).
const KEEP_ENDED: usize = 100;

/// A place among the [`MAX_UPLOADS`], given back when dropped.
pub struct Upload(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Upload {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

impl Jobs {
    /// A place to receive a file in, if one is free.
    pub fn upload(&self) -> Option<Upload> {
        use std::sync::atomic::Ordering;
        self.uploads
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| {
                (n < MAX_UPLOADS).then_some(n + 1)
            })
            .ok()
            .map(|_| Upload(self.uploads.clone()))
    }

    pub fn get(&self, id: &Uuid) -> Option<JobView> {
        self.lock().get(id).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, JobView>> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update(&self, id: Uuid, change: impl FnOnce(&mut JobView)) {
        if let Some(job) = self.lock().get_mut(&id) {
            change(job);
        }
    }

    /// Starts `plan` as job `id` unless it runs already (then its view), or
    /// too many do (`None`). A job that ended is started again: it resumes.
    pub fn start(&self, id: Uuid, plan: Plan, actor: Actor, raft: RaftHandle) -> Option<JobView> {
        let board = BoardId(id_of(id, "board", 0));
        let view = {
            let mut jobs = self.lock();
            if let Some(job) = jobs.get(&id).filter(|j| j.state == "running") {
                return Some(job.clone());
            }
            if jobs.values().filter(|j| j.state == "running").count() >= MAX_RUNNING {
                return None;
            }
            let archived = plan.cards.iter().filter(|c| c.archived).count();
            let comments: usize = plan.cards.iter().map(|c| c.comments.len()).sum();
            let checklists: usize = plan
                .cards
                .iter()
                .flat_map(|c| &c.checklists)
                .map(|l| 1 + l.items.len())
                .sum();
            let view = JobView {
                id,
                state: "running",
                board_id: board,
                done: 0,
                total: 1
                    + plan.columns.len().max(3)
                    + plan.cards.len()
                    + comments
                    + checklists
                    + archived,
                cards: plan.cards.len(),
                error: None,
                started_at: Timestamp::now(),
                finished_at: None,
                owner: actor.id.clone(),
            };
            // Ended jobs are kept for their owners to read, the newest few.
            let mut ended: Vec<(Timestamp, Uuid)> = jobs
                .values()
                .filter(|j| j.state != "running")
                .map(|j| (j.finished_at.unwrap_or(j.started_at), j.id))
                .collect();
            if ended.len() >= KEEP_ENDED {
                ended.sort();
                for (_, old) in &ended[..ended.len() + 1 - KEEP_ENDED] {
                    jobs.remove(old);
                }
            }
            jobs.insert(id, view.clone());
            view
        };
        let jobs = self.clone();
        actix_web::rt::spawn(async move {
            let job = Job {
                id,
                board,
                actor,
                raft,
                jobs: jobs.clone(),
            };
            let result = job.run(plan).await;
            jobs.update(id, |view| {
                view.finished_at = Some(Timestamp::now());
                match result {
                    Ok(()) => view.state = "done",
                    Err(e) => {
                        tracing::warn!(job = %id, error = %e, "import failed");
                        view.state = "failed";
                        view.error = Some(e);
                    }
                }
            });
        });
        Some(view)
    }
}

struct Job {
    id: Uuid,
    board: BoardId,
    actor: Actor,
    raft: RaftHandle,
    jobs: Jobs,
}

impl Job {
    async fn run(&self, plan: Plan) -> Result<(), String> {
        let fixed: [ColumnId; 3] = std::array::from_fn(|i| ColumnId(id_of(self.id, "column", i)));
        let columns: Vec<ColumnId> = (0..plan.columns.len())
            .map(|i| ColumnId(id_of(self.id, "column", i)))
            .collect();
        self.write(Op::BoardCreate(NewBoard {
            id: self.board,
            name: plan.board_name.clone(),
            columns: fixed,
        }))
        .await?;
        for (i, column) in plan.columns.iter().enumerate() {
            let op = if i < 3 {
                // The board's first three columns, renamed and set up.
                Op::ColumnUpdate {
                    id: columns[i],
                    expected_version: None,
                    patch: ColumnPatch {
                        name: Some(column.name.clone()),
                        wip_limit: column.wip_limit.map(Some),
                        color: column.color.clone().map(Some),
                        archive_after_days: column.archive_after_days.map(Some),
                        ..ColumnPatch::default()
                    },
                }
            } else {
                Op::ColumnCreate(NewColumn {
                    id: columns[i],
                    board_id: self.board,
                    name: column.name.clone(),
                    position: None,
                    wip_limit: column.wip_limit,
                    color: column.color.clone(),
                    category: None,
                    archive_after_days: column.archive_after_days,
                })
            };
            self.write(op).await?;
        }
        // Fewer than three: the others go (they are empty).
        for id in fixed.iter().skip(plan.columns.len()) {
            self.write(Op::ColumnDelete {
                id: *id,
                expected_version: None,
            })
            .await?;
        }
        // Cards in file order, each column's at increasing positions.
        let mut next_position = vec![0f64; plan.columns.len()];
        let creates: Vec<Op> = plan
            .cards
            .iter()
            .enumerate()
            .map(|(n, card)| {
                next_position[card.column] += 1024.0;
                Op::Create(NewTask {
                    id: TaskId(id_of(self.id, "card", n)),
                    title: card.title.clone(),
                    description: card.description.clone(),
                    status: Status::Todo,
                    position: Some(next_position[card.column]),
                    priority: card.priority,
                    assignee: card.assignee.clone(),
                    labels: card.labels.clone(),
                    due_date: card.due_date,
                    board_id: Some(self.board),
                    column_id: Some(columns[card.column]),
                })
            })
            .collect();
        self.write_all(creates).await?;
        // A card's comments in order: its first with every card's first,
        // then the seconds, … (each round after the one before, so their
        // times follow the file), ids sorting in file order too.
        let mut k = 0;
        let mut rounds: Vec<Vec<Op>> = Vec::new();
        for (n, card) in plan.cards.iter().enumerate() {
            for (round, body) in card.comments.iter().enumerate() {
                if rounds.len() <= round {
                    rounds.push(Vec::new());
                }
                rounds[round].push(Op::CommentAdd(NewComment {
                    id: CommentId(ordered_id(self.id, "comment", k)),
                    task_id: TaskId(id_of(self.id, "card", n)),
                    body: body.clone(),
                }));
                k += 1;
            }
        }
        for round in rounds {
            self.write_all(round).await?;
        }
        // A card's checklists, ids in file order (lists made in one
        // millisecond are listed by id), then their items the same way
        // in rounds: every list's first item, then the seconds, …
        let mut lists = Vec::new();
        let mut item_rounds: Vec<Vec<Op>> = Vec::new();
        let mut k = 0;
        let mut j = 0;
        for (n, card) in plan.cards.iter().enumerate() {
            let task_id = TaskId(id_of(self.id, "card", n));
            for list in &card.checklists {
                let id = ChecklistId(ordered_id(self.id, "checklist", k));
                k += 1;
                let on = |action| {
                    Op::Checklist(ChecklistCommand {
                        id,
                        task_id,
                        expected_version: None,
                        action,
                    })
                };
                lists.push(on(ChecklistAction::Create {
                    title: list.title.clone(),
                }));
                for (round, (text, done)) in list.items.iter().enumerate() {
                    if item_rounds.len() <= round {
                        item_rounds.push(Vec::new());
                    }
                    item_rounds[round].push(on(ChecklistAction::AddItem {
                        item: ItemId(id_of(self.id, "checklist-item", j)),
                        text: text.clone(),
                        done: *done,
                    }));
                    j += 1;
                }
            }
        }
        self.write_all(lists).await?;
        for round in item_rounds {
            self.write_all(round).await?;
        }
        let archives: Vec<Op> = plan
            .cards
            .iter()
            .enumerate()
            .filter(|(_, card)| card.archived)
            .map(|(n, _)| Op::Update {
                id: TaskId(id_of(self.id, "card", n)),
                expected_version: Some(1),
                patch: TaskPatch {
                    archived: Some(true),
                    ..TaskPatch::default()
                },
            })
            .collect();
        self.write_all(archives).await
    }

    /// `ops` in batches of [`BATCH`], [`IN_FLIGHT`] at a time.
    async fn write_all(&self, ops: Vec<Op>) -> Result<(), String> {
        for batch in ops.chunks(BATCH) {
            for group in batch.chunks(IN_FLIGHT) {
                let results =
                    futures_util::future::join_all(group.iter().cloned().map(|op| self.write(op)))
                        .await;
                results.into_iter().collect::<Result<Vec<()>, String>>()?;
            }
        }
        Ok(())
    }

    /// Writes `op` once: sent again until the log answers; an answer that
    /// says it was written before counts as written.
    async fn write(&self, op: Op) -> Result<(), String> {
        let started = std::time::Instant::now();
        let mut pause = Duration::from_millis(100);
        loop {
            let command = Command {
                request_id: crate::task::new_request_id(),
                idempotency: None,
                at: Timestamp::now(),
                actor: self.actor.clone(),
                op: op.clone(),
            };
            match self.raft.propose(command).await {
                Ok(applied) => {
                    if let Some(refused) = refusal(&op, &applied.outcome) {
                        return Err(refused);
                    }
                    self.jobs.update(self.id, |view| view.done += 1);
                    return Ok(());
                }
                // A rolling upgrade not finished: it may take longer than
                // the job should wait; the file can be sent again after it.
                Err(e @ crate::raft::ConsensusError::ClusterTooOld(_)) => {
                    return Err(format!(
                        "{e}; import the same file again once the upgrade ends"
                    ))
                }
                Err(e) if started.elapsed() < GIVE_UP_AFTER => {
                    tracing::debug!(job = %self.id, error = %e, "import: sending again");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
                Err(e) => {
                    return Err(format!(
                        "the cluster did not answer for {GIVE_UP_AFTER:?}: {e}"
                    ))
                }
            }
        }
    }
}

/// `None` when `outcome` means `op` is written (now or before); else why not.
fn refusal(op: &Op, outcome: &Outcome) -> Option<String> {
    let Outcome::Rejected { rejection } = outcome else {
        return None;
    };
    let written_before = match (op, rejection) {
        (Op::Create(_), Rejection::IdTaken { .. }) => true,
        (
            Op::BoardCreate(_) | Op::ColumnCreate(_) | Op::CommentAdd(_) | Op::Checklist(_),
            Rejection::Catalog {
                refused: CatalogRejection::IdTaken { .. },
            },
        ) => true,
        (
            Op::ColumnDelete { .. },
            Rejection::Catalog {
                refused: CatalogRejection::ColumnNotFound { .. },
            },
        ) => true,
        // Archived by an earlier attempt (or by someone since).
        (Op::Update { .. }, Rejection::VersionMismatch { current, .. }) => current.archived,
        _ => false,
    };
    (!written_before).then(|| format!("the cluster refused a write: {rejection:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_the_same_for_the_same_job_and_differ_otherwise() {
        let job = job_id("u1", Some("k"), b"file");
        assert_eq!(job, job_id("u1", Some("k"), b"file"));
        assert_ne!(job, job_id("u2", Some("k"), b"file"));
        assert_ne!(job, job_id("u1", Some("k"), b"file2"));
        assert_ne!(job_id("u1", None, b"file"), job_id("u1", None, b"file"));
        assert_eq!(id_of(job, "card", 7), id_of(job, "card", 7));
        assert_ne!(id_of(job, "card", 7), id_of(job, "card", 8));
        assert_ne!(id_of(job, "card", 0), id_of(job, "column", 0));
        assert_eq!(id_of(job, "card", 7).get_version_num(), 8);
        let ordered: Vec<String> = (0..300)
            .map(|n| ordered_id(job, "c", n).to_string())
            .collect();
        assert!(ordered.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(ordered_id(job, "c", 7).get_version_num(), 8);
    }

    #[test]
    fn names_are_shortened_with_an_ellipsis() {
        assert_eq!(shorten("  short ", 10), "short");
        assert_eq!(shorten("abcdefghijk", 5), "abcd…");
    }
}
