//! What the clients did and what they were told: the history every checker
//! judges.
//!
//! A history is a list of [`Operation`]s in invocation order. The harness
//! records each one in two steps, the way Jepsen does: [`History::invoke`]
//! just before the request leaves the client (process, operation, monotonic
//! time), then [`History::complete`] with exactly one [`Outcome`]:
//!
//! - [`Outcome::Ok`]: a 2xx; the operation took effect once, somewhere
//!   between its invocation and its completion, and returned this value.
//! - [`Outcome::Fail`]: a definite 4xx. [`Failure::NotFound`],
//!   [`Failure::IdTaken`] and [`Failure::VersionMismatch`] are decisions the
//!   state machine took at one point of the order, so they are observations
//!   of the state the checkers use; [`Failure::Rejected`] (400, 422, a request
//!   never proposed) carries no information and is as if it never happened.
//! - [`Outcome::Info`]: a timeout, 503, 504 or dropped connection. The
//!   operation may have taken effect, at any time after its invocation —
//!   even after the client gave up — or never. The client process retires
//!   and its next operation uses a fresh process id (Jepsen's convention).
//!
//! An operation never completed (the harness stopped first) counts as info.
//!
//! A write the client retried under the same `Idempotency-Key` is best
//! recorded as *one* operation: invoked before the first attempt, completed
//! with the last attempt's outcome. The server applies it at most once and
//! a retry answers with the first outcome, so the one operation's window
//! holds its effect. Creates recorded as separate attempts (an info attempt,
//! then a retry under a new process) are also understood, through the
//! `key` of [`Op::Create`].
//!
//! The history serializes as JSON lines, one completed-or-pending operation
//! a line, so a run can be checked again later ([`History::write_jsonl`],
//! [`History::read_jsonl`]).
//!
//! Not here: the generator of operations, the HTTP client, and any notion of
//! wall-clock time (timestamps are the harness's monotonic nanoseconds).

use std::fmt;
use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

/// Nanoseconds on the harness's monotonic clock. Only order matters.
pub type Time = u64;

/// A Jepsen "process": one logical client that runs one operation at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProcessId(pub u64);

/// An operation's place in the history (its index), used by every report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OpId(pub usize);

impl fmt::Display for OpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A task's column.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The first column, where a task starts by default.
    #[default]
    Todo,
    /// The middle column.
    InProgress,
    /// The last column.
    Done,
}

impl Status {
    /// Every column, left to right.
    pub const ALL: [Status; 3] = [Status::Todo, Status::InProgress, Status::Done];

    /// The name the API uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Todo => "todo",
            Status::InProgress => "in_progress",
            Status::Done => "done",
        }
    }
}

/// What a client asked for. Task ids are the UUID strings the client chose.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "snake_case")]
pub enum Op {
    /// `POST /api/tasks` with a client-chosen id.
    Create {
        /// The UUID the client chose.
        id: String,
        /// Unique per logical create in set workloads: it names the element.
        title: String,
        /// The column it starts in (the server's default is `todo`).
        #[serde(default)]
        status: Status,
        /// The `Idempotency-Key`, when the harness records each retry as its
        /// own operation: a retry under the key that created the task is
        /// answered with that first outcome, not with 409.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
    },
    /// `PATCH /api/tasks/{id}`, conditional when `if_match` is set.
    Update {
        /// The task.
        id: String,
        /// The `If-Match` version, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        if_match: Option<u64>,
        /// The new title, if the patch sets one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        title: Option<String>,
        /// The new column, if the patch sets one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<Status>,
    },
    /// `DELETE /api/tasks/{id}`, conditional when `if_match` is set.
    Delete {
        /// The task.
        id: String,
        /// The `If-Match` version, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        if_match: Option<u64>,
    },
    /// `GET /api/tasks/{id}` (linearizable).
    Read {
        /// The task.
        id: String,
    },
    /// `GET /api/tasks` (linearizable, one page holding every task).
    List,
}

impl Op {
    /// The task the operation is about; `None` for a list.
    pub fn task_id(&self) -> Option<&str> {
        match self {
            Op::Create { id, .. }
            | Op::Update { id, .. }
            | Op::Delete { id, .. }
            | Op::Read { id } => Some(id),
            Op::List => None,
        }
    }

    /// The operation's name, as in the JSON `f` field.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Create { .. } => "create",
            Op::Update { .. } => "update",
            Op::Delete { .. } => "delete",
            Op::Read { .. } => "read",
            Op::List => "list",
        }
    }
}

/// The part of a task the checkers model.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TaskView {
    /// 1 at creation, +1 per change.
    pub version: u64,
    /// The title, as stored (trimmed).
    pub title: String,
    /// The column.
    pub status: Status,
}

/// One task of a list answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedTask {
    /// The task's UUID.
    pub id: String,
    /// 1 at creation, +1 per change.
    pub version: u64,
    /// The title.
    pub title: String,
    /// The column.
    pub status: Status,
}

impl ListedTask {
    /// The task without its id.
    pub fn view(&self) -> TaskView {
        TaskView {
            version: self.version,
            title: self.title.clone(),
            status: self.status,
        }
    }
}

/// What a 2xx answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Value {
    /// The task after a create or an update, or as read.
    Task(TaskView),
    /// A delete's 204.
    Deleted,
    /// A list's tasks.
    Tasks {
        /// Every task of the one page, in the server's order.
        tasks: Vec<ListedTask>,
    },
}

/// A definite 4xx.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Failure {
    /// 404: no live task has this id at the point the command was decided.
    NotFound,
    /// 409 `id_taken`: a create named an id that is, or was, in use.
    IdTaken,
    /// 412: `If-Match` named another version; the body carries the task as
    /// it was then.
    VersionMismatch {
        /// The task at the version the server decided against.
        current: TaskView,
    },
    /// Any other definite refusal (400, 422…): it changed nothing and says
    /// nothing about the state.
    Rejected {
        /// The HTTP status.
        status: u16,
        /// The error body's message, for the report.
        message: String,
    },
}

/// How an operation ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum Outcome {
    /// A 2xx and what it answered.
    Ok(Value),
    /// A definite 4xx.
    Fail(Failure),
    /// Indeterminate; the string says why (e.g. "timeout", "503").
    Info(String),
}

/// The end of an operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Completion {
    /// When the answer (or the timeout, or the error) reached the client.
    pub time: Time,
    /// What it was.
    pub outcome: Outcome,
}

/// One operation: invocation and, once known, completion.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation {
    /// Equal to the operation's index in the history.
    pub id: OpId,
    /// The client process that ran it.
    pub process: ProcessId,
    /// What was asked.
    pub op: Op,
    /// When the request left the client.
    pub invoke: Time,
    /// `None` while pending; a history checked with pending operations
    /// treats them as info.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion: Option<Completion>,
}

/// The three kinds of ending, for counting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeKind {
    /// 2xx.
    Ok,
    /// A definite 4xx.
    Fail,
    /// Indeterminate or pending.
    Info,
}

impl Operation {
    /// The outcome, with a pending operation reported as info.
    pub fn outcome_kind(&self) -> OutcomeKind {
        match self.completion.as_ref().map(|c| &c.outcome) {
            Some(Outcome::Ok(_)) => OutcomeKind::Ok,
            Some(Outcome::Fail(_)) => OutcomeKind::Fail,
            Some(Outcome::Info(_)) | None => OutcomeKind::Info,
        }
    }

    /// The outcome when it is definite (ok or fail).
    pub fn definite(&self) -> Option<&Outcome> {
        match self.completion.as_ref().map(|c| &c.outcome) {
            Some(outcome @ (Outcome::Ok(_) | Outcome::Fail(_))) => Some(outcome),
            _ => None,
        }
    }

    /// The completion time when the outcome is definite; an indeterminate
    /// operation has no end (its effect may land at any later time).
    pub fn definite_end(&self) -> Option<Time> {
        self.definite()
            .and(self.completion.as_ref().map(|c| c.time))
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} p{} {}",
            self.id,
            self.process.0,
            describe_op(&self.op)
        )?;
        match &self.completion {
            Some(c) => write!(
                f,
                " -> {} [{}..{}]",
                describe_outcome(&c.outcome),
                self.invoke,
                c.time
            ),
            None => write!(f, " -> pending [{}..]", self.invoke),
        }
    }
}

fn describe_op(op: &Op) -> String {
    match op {
        Op::Create {
            id, title, status, ..
        } => format!("create({id}, {title:?}, {})", status.as_str()),
        Op::Update {
            id,
            if_match,
            title,
            status,
        } => {
            let mut parts = vec![id.clone()];
            if let Some(v) = if_match {
                parts.push(format!("if_match={v}"));
            }
            if let Some(t) = title {
                parts.push(format!("title={t:?}"));
            }
            if let Some(s) = status {
                parts.push(format!("status={}", s.as_str()));
            }
            format!("update({})", parts.join(", "))
        }
        Op::Delete { id, if_match } => match if_match {
            Some(v) => format!("delete({id}, if_match={v})"),
            None => format!("delete({id})"),
        },
        Op::Read { id } => format!("read({id})"),
        Op::List => "list".to_string(),
    }
}

/// A task view in a line: `v3 "title" done`.
pub fn describe_view(view: &TaskView) -> String {
    format!(
        "v{} {:?} {}",
        view.version,
        view.title,
        view.status.as_str()
    )
}

fn describe_outcome(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Ok(Value::Task(view)) => format!("ok {}", describe_view(view)),
        Outcome::Ok(Value::Deleted) => "ok deleted".to_string(),
        Outcome::Ok(Value::Tasks { tasks }) => format!("ok {} tasks", tasks.len()),
        Outcome::Fail(Failure::NotFound) => "fail 404".to_string(),
        Outcome::Fail(Failure::IdTaken) => "fail 409 id_taken".to_string(),
        Outcome::Fail(Failure::VersionMismatch { current }) => {
            format!("fail 412 current {}", describe_view(current))
        }
        Outcome::Fail(Failure::Rejected { status, message }) => {
            format!("fail {status} {message:?}")
        }
        Outcome::Info(reason) => format!("info {reason:?}"),
    }
}

/// A recording mistake the harness made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HistoryError {
    /// `complete` named an operation that was never invoked.
    UnknownOp(OpId),
    /// `complete` was called twice for one operation.
    AlreadyCompleted(OpId),
    /// A line of a JSON-lines history did not parse.
    BadLine { line: usize, message: String },
    /// A line's `id` is not its position.
    IdOutOfPlace { line: usize, id: OpId },
    /// Reading or writing the lines failed.
    Io(String),
}

impl fmt::Display for HistoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HistoryError::UnknownOp(id) => write!(f, "operation {id} was never invoked"),
            HistoryError::AlreadyCompleted(id) => write!(f, "operation {id} completed twice"),
            HistoryError::BadLine { line, message } => write!(f, "line {line}: {message}"),
            HistoryError::IdOutOfPlace { line, id } => {
                write!(f, "line {line} holds operation {id}, out of place")
            }
            HistoryError::Io(message) => write!(f, "i/o: {message}"),
        }
    }
}

impl std::error::Error for HistoryError {}

/// The recorded history of one run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    ops: Vec<Operation>,
}

impl History {
    /// An empty history.
    pub fn new() -> History {
        History::default()
    }

    /// Records an invocation; keep the id to complete it.
    pub fn invoke(&mut self, process: ProcessId, op: Op, time: Time) -> OpId {
        let id = OpId(self.ops.len());
        self.ops.push(Operation {
            id,
            process,
            op,
            invoke: time,
            completion: None,
        });
        id
    }

    /// Records the one completion of an invoked operation.
    pub fn complete(&mut self, id: OpId, outcome: Outcome, time: Time) -> Result<(), HistoryError> {
        let op = self.ops.get_mut(id.0).ok_or(HistoryError::UnknownOp(id))?;
        if op.completion.is_some() {
            return Err(HistoryError::AlreadyCompleted(id));
        }
        op.completion = Some(Completion { time, outcome });
        Ok(())
    }

    /// Every operation, in invocation order (by id).
    pub fn ops(&self) -> &[Operation] {
        &self.ops
    }

    /// One operation by id.
    pub fn get(&self, id: OpId) -> Option<&Operation> {
        self.ops.get(id.0)
    }

    /// How many operations were invoked.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether nothing was invoked.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// One JSON object a line, in id order.
    pub fn write_jsonl(&self, mut out: impl Write) -> Result<(), HistoryError> {
        for op in &self.ops {
            let line = serde_json::to_string(op).map_err(|e| HistoryError::Io(e.to_string()))?;
            writeln!(out, "{line}").map_err(|e| HistoryError::Io(e.to_string()))?;
        }
        Ok(())
    }

    /// Reads what [`History::write_jsonl`] wrote; blank lines are skipped.
    pub fn read_jsonl(input: impl BufRead) -> Result<History, HistoryError> {
        let mut history = History::new();
        for (n, line) in input.lines().enumerate() {
            let line = line.map_err(|e| HistoryError::Io(e.to_string()))?;
            if line.trim().is_empty() {
                continue;
            }
            let op: Operation = serde_json::from_str(&line).map_err(|e| HistoryError::BadLine {
                line: n + 1,
                message: e.to_string(),
            })?;
            if op.id.0 != history.ops.len() {
                return Err(HistoryError::IdOutOfPlace {
                    line: n + 1,
                    id: op.id,
                });
            }
            history.ops.push(op);
        }
        Ok(history)
    }

    /// Recording mistakes that would make a verdict meaningless: a
    /// completion before its invocation, a process running two operations at
    /// once or continuing after an indeterminate one, an ok value of the
    /// wrong shape for its operation.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut by_process: std::collections::BTreeMap<ProcessId, Vec<&Operation>> =
            Default::default();
        for op in &self.ops {
            by_process.entry(op.process).or_default().push(op);
            if let Some(c) = &op.completion {
                if c.time < op.invoke {
                    problems.push(format!("{op}: completes before it was invoked"));
                }
                if let Outcome::Ok(value) = &c.outcome {
                    if !value_fits(&op.op, value) {
                        problems.push(format!("{op}: ok value does not fit the operation"));
                    }
                }
            }
        }
        for (process, ops) in by_process {
            for pair in ops.windows(2) {
                let (a, b) = (pair[0], pair[1]);
                match &a.completion {
                    None => problems.push(format!(
                        "process {} invoked {} while {} was pending",
                        process.0, b.id, a.id
                    )),
                    Some(c) if matches!(c.outcome, Outcome::Info(_)) => problems.push(format!(
                        "process {} went on with {} after the indeterminate {}",
                        process.0, b.id, a.id
                    )),
                    Some(c) if c.time > b.invoke => problems.push(format!(
                        "process {} invoked {} before {} completed",
                        process.0, b.id, a.id
                    )),
                    Some(_) => {}
                }
            }
        }
        problems
    }
}

/// Whether an ok value has the shape its operation answers with.
fn value_fits(op: &Op, value: &Value) -> bool {
    matches!(
        (op, value),
        (
            Op::Create { .. } | Op::Update { .. } | Op::Read { .. },
            Value::Task(_)
        ) | (Op::Delete { .. }, Value::Deleted)
            | (Op::List, Value::Tasks { .. })
    )
}
