//! taskraft's tasks as linearizable objects: one versioned register per
//! task id, checked one id at a time.
//!
//! A task id is, in order: absent (never created), live with a version, a
//! title and a status, then deleted for good (its id can never be created
//! again). [`TaskModel::apply`] is the sequential specification, written
//! from the server's decision rules (`src/task/board.rs`):
//!
//! - create: absent → live at version 1; otherwise 409 `id_taken` — except
//!   a retry under the `Idempotency-Key` that created the task, which gets
//!   the first outcome again (version 1 with the created title and status);
//! - update: 404 unless live; 412 with the current task when `If-Match`
//!   names another version; a patch that changes nothing answers the task
//!   unchanged (same version); any change answers version + 1;
//! - delete: 404 unless live; 412 as for update; otherwise deleted;
//! - read: the live task exactly, or 404.
//!
//! A task id no create of the history names (set up before recording
//! began) starts *unknown*: its first definite answer reveals its state
//! (a read's task, a 412's current task, a 404's absence), and from there
//! the rules above apply. An indeterminate operation on an unknown state
//! leaves it unknown.
//!
//! An ok list is projected onto every task id of the history as a read of
//! that id (listed → that task; not listed → 404). The projections of one
//! list are checked independently, so a list torn across tasks is not
//! caught here — only a list that is stale, or from the future, for some
//! task. Lists and reads that ended indeterminately say nothing and are
//! dropped, as are `Rejected` failures (they changed nothing).
//!
//! Not here: fields beyond version, title and status (description,
//! position…), and pages of a paginated list (a list must be one page to
//! be one read).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{check_partitioned, Budget, Call, Checked, Finding, Model, Returned};
use crate::history::{describe_view, Failure, History, Op, OpId, Outcome, Status, TaskView, Value};
use crate::report::{Anomaly, Check, Verdict};

/// One task id's state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TaskState {
    /// Not created in this history: whatever the first answer reveals.
    Unknown,
    /// Never created.
    Absent,
    Live {
        /// The task as it is.
        task: TaskView,
        /// The idempotency key of the create that made it, if any.
        created_by: Option<String>,
    },
    /// Deleted; the id stays taken.
    Deleted {
        /// The idempotency key of the create that made it, if any.
        created_by: Option<String>,
    },
}

/// An operation on one task id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskInput {
    /// As [`Op::Create`], without the id.
    Create {
        title: String,
        status: Status,
        key: Option<String>,
    },
    /// As [`Op::Update`], without the id.
    Update {
        if_match: Option<u64>,
        title: Option<String>,
        status: Option<Status>,
    },
    /// As [`Op::Delete`], without the id.
    Delete { if_match: Option<u64> },
    /// A read, or a list projected onto this id.
    Read,
}

/// What an operation on one task id answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskOutput {
    /// 2xx with the task (create, update, read; a list that shows it).
    Task(TaskView),
    /// A delete's 204.
    Deleted,
    /// 404 (or a list that does not show it).
    NotFound,
    /// 409 `id_taken`.
    IdTaken,
    /// 412 with the task as it was.
    VersionMismatch(TaskView),
    /// An answer the operation can never give (a list value for an update,
    /// a task listed twice): no state accepts it.
    Impossible(String),
}

/// The versioned-register model of one task id.
#[derive(Clone, Copy, Debug)]
pub struct TaskModel {
    /// Whether the history holds a create of this id; if not, the task
    /// starts [`TaskState::Unknown`].
    pub created_in_history: bool,
}

impl TaskModel {
    /// The sequential specification: what `input` answers in `state`, and
    /// the state it leaves. (An unknown state has no single answer; see
    /// [`TaskModel::reveal`].)
    pub fn apply(state: &TaskState, input: &TaskInput) -> (TaskOutput, TaskState) {
        let unchanged = |output| (output, state.clone());
        match (input, state) {
            (_, TaskState::Unknown) => unchanged(TaskOutput::Impossible("unknown state".into())),
            (TaskInput::Create { title, status, key }, TaskState::Absent) => {
                let task = TaskView {
                    version: 1,
                    title: title.clone(),
                    status: *status,
                };
                let next = TaskState::Live {
                    task: task.clone(),
                    created_by: key.clone(),
                };
                (TaskOutput::Task(task), next)
            }
            (
                TaskInput::Create { title, status, key },
                TaskState::Live { created_by, .. } | TaskState::Deleted { created_by },
            ) => {
                // A retry under the key that created the task replays the
                // first outcome; any other create finds the id taken.
                if key.is_some() && key == created_by {
                    unchanged(TaskOutput::Task(TaskView {
                        version: 1,
                        title: title.clone(),
                        status: *status,
                    }))
                } else {
                    unchanged(TaskOutput::IdTaken)
                }
            }
            (
                TaskInput::Update { .. } | TaskInput::Delete { .. } | TaskInput::Read,
                TaskState::Absent | TaskState::Deleted { .. },
            ) => unchanged(TaskOutput::NotFound),
            (TaskInput::Read, TaskState::Live { task, .. }) => {
                unchanged(TaskOutput::Task(task.clone()))
            }
            (
                TaskInput::Update { if_match, .. } | TaskInput::Delete { if_match },
                TaskState::Live { task, .. },
            ) if if_match.is_some_and(|v| v != task.version) => {
                unchanged(TaskOutput::VersionMismatch(task.clone()))
            }
            (TaskInput::Delete { .. }, TaskState::Live { created_by, .. }) => (
                TaskOutput::Deleted,
                TaskState::Deleted {
                    created_by: created_by.clone(),
                },
            ),
            (TaskInput::Update { title, status, .. }, TaskState::Live { task, created_by }) => {
                let mut patched = task.clone();
                if let Some(title) = title {
                    patched.title = title.clone();
                }
                if let Some(status) = status {
                    patched.status = *status;
                }
                // A patch that changes nothing makes no event and no version.
                if patched == *task {
                    return unchanged(TaskOutput::Task(patched));
                }
                patched.version += 1;
                let next = TaskState::Live {
                    task: patched.clone(),
                    created_by: created_by.clone(),
                };
                (TaskOutput::Task(patched), next)
            }
        }
    }

    /// The state an unknown task is in after `input` answered `output`:
    /// the answer reveals it, if the answer is possible at all.
    pub fn reveal(input: &TaskInput, output: Option<&TaskOutput>) -> Option<TaskState> {
        let live = |task: &TaskView| TaskState::Live {
            task: task.clone(),
            created_by: None,
        };
        // Only creates tell "never created" from "deleted", and a task
        // starts unknown only when the history holds no create of it.
        let gone = TaskState::Deleted { created_by: None };
        match (input, output?) {
            (TaskInput::Read, TaskOutput::Task(task)) => Some(live(task)),
            (
                TaskInput::Update {
                    if_match,
                    title,
                    status,
                },
                TaskOutput::Task(task),
            ) => {
                let fits = title.as_ref().is_none_or(|t| *t == task.title)
                    && status.is_none_or(|s| s == task.status)
                    && if_match.is_none_or(|v| task.version == v || task.version == v + 1);
                fits.then(|| live(task))
            }
            (
                TaskInput::Update { if_match, .. } | TaskInput::Delete { if_match },
                TaskOutput::VersionMismatch(task),
            ) => if_match
                .is_some_and(|v| v != task.version)
                .then(|| live(task)),
            (TaskInput::Delete { .. }, TaskOutput::Deleted) => Some(gone),
            (
                TaskInput::Read | TaskInput::Update { .. } | TaskInput::Delete { .. },
                TaskOutput::NotFound,
            ) => Some(gone),
            (TaskInput::Create { title, status, .. }, TaskOutput::Task(task)) => {
                let fits = task.version == 1 && task.title == *title && task.status == *status;
                fits.then(|| live(task))
            }
            (TaskInput::Create { .. }, TaskOutput::IdTaken) => Some(TaskState::Unknown),
            _ => None,
        }
    }
}

impl Model for TaskModel {
    type State = TaskState;
    type Input = TaskInput;
    type Output = TaskOutput;

    fn init(&self) -> TaskState {
        if self.created_in_history {
            TaskState::Absent
        } else {
            TaskState::Unknown
        }
    }

    fn step(
        &self,
        state: &TaskState,
        input: &TaskInput,
        output: Option<&TaskOutput>,
    ) -> Option<TaskState> {
        if *state == TaskState::Unknown {
            // An unknown outcome reveals nothing.
            return match output {
                None => Some(TaskState::Unknown),
                Some(_) => TaskModel::reveal(input, output),
            };
        }
        let (expected, next) = TaskModel::apply(state, input);
        match output {
            None => Some(next),
            Some(output) if *output == expected => Some(next),
            Some(_) => None,
        }
    }
}

/// Options of [`check`].
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Limits of the search.
    pub budget: Budget,
    /// Project ok lists onto every task id as reads (default on).
    pub project_lists: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            budget: Budget::default(),
            project_lists: true,
        }
    }
}

/// One task id's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyResult {
    /// The task.
    pub task_id: String,
    /// Calls checked for this id (list projections included).
    pub calls: usize,
    /// What the search found.
    pub finding: Finding,
    /// Configurations it explored.
    pub states: usize,
    /// Time it took.
    pub elapsed_ms: f64,
    /// For a violation: the end of the longest order found, the state it
    /// leads to, the operation that cannot be placed and its rivals.
    pub explanation: Vec<String>,
}

/// The linearizability of every task id of a history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskLinearizability {
    /// One result per task id, in id order.
    pub keys: Vec<KeyResult>,
    /// Time for all of them.
    pub elapsed_ms: f64,
}

/// The calls of each task id.
pub type Partitions = BTreeMap<String, Vec<Call<TaskInput, TaskOutput>>>;

/// Splits a history into per-task calls (lists projected when asked).
pub fn partition(history: &History, project_lists: bool) -> Partitions {
    let mut partitions: Partitions = BTreeMap::new();
    for op in history.ops() {
        if let Some(id) = op.op.task_id() {
            partitions.entry(id.to_string()).or_default();
        }
        if let Some(Outcome::Ok(Value::Tasks { tasks })) = op.definite() {
            for task in tasks {
                partitions.entry(task.id.clone()).or_default();
            }
        }
    }
    for op in history.ops() {
        let definite = op.definite();
        let end = op.definite_end();
        let returned = |output| end.map(|time| Returned { time, output });
        let input = match &op.op {
            Op::Create {
                title, status, key, ..
            } => TaskInput::Create {
                title: title.clone(),
                status: *status,
                key: key.clone(),
            },
            Op::Update {
                if_match,
                title,
                status,
                ..
            } => TaskInput::Update {
                if_match: *if_match,
                title: title.clone(),
                status: *status,
            },
            Op::Delete { if_match, .. } => TaskInput::Delete {
                if_match: *if_match,
            },
            Op::Read { .. } => TaskInput::Read,
            Op::List => {
                let (Some(Outcome::Ok(Value::Tasks { tasks })), Some(end)) = (definite, end) else {
                    continue; // a list that failed or may not have run says nothing
                };
                if !project_lists {
                    continue;
                }
                for (id, calls) in partitions.iter_mut() {
                    let mut seen = tasks.iter().filter(|t| &t.id == id);
                    let output = match (seen.next(), seen.next()) {
                        (None, _) => TaskOutput::NotFound,
                        (Some(task), None) => TaskOutput::Task(task.view()),
                        (Some(_), Some(_)) => TaskOutput::Impossible("listed twice".into()),
                    };
                    calls.push(Call {
                        op: op.id,
                        input: TaskInput::Read,
                        invoke: op.invoke,
                        returned: Some(Returned { time: end, output }),
                    });
                }
                continue;
            }
        };
        let returned = match definite {
            None if input == TaskInput::Read => continue, // an unknown read has no effect
            None => None,
            Some(Outcome::Fail(Failure::Rejected { .. })) => continue, // changed nothing
            Some(Outcome::Ok(Value::Task(task))) => returned(TaskOutput::Task(task.clone())),
            Some(Outcome::Ok(Value::Deleted)) => returned(TaskOutput::Deleted),
            Some(Outcome::Ok(Value::Tasks { .. })) => {
                returned(TaskOutput::Impossible("a list answer".into()))
            }
            Some(Outcome::Fail(Failure::NotFound)) => returned(TaskOutput::NotFound),
            Some(Outcome::Fail(Failure::IdTaken)) => returned(TaskOutput::IdTaken),
            Some(Outcome::Fail(Failure::VersionMismatch { current })) => {
                returned(TaskOutput::VersionMismatch(current.clone()))
            }
            Some(Outcome::Info(_)) => None,
        };
        if let Some(calls) = op.op.task_id().and_then(|id| partitions.get_mut(id)) {
            calls.push(Call {
                op: op.id,
                input,
                invoke: op.invoke,
                returned,
            });
        }
    }
    partitions
}

/// Checks every task id of `history`.
pub fn check(history: &History, config: &Config) -> TaskLinearizability {
    let start = Instant::now();
    let partitions = partition(history, config.project_lists);
    let created: BTreeSet<&str> = history
        .ops()
        .iter()
        .filter(|op| matches!(op.op, Op::Create { .. }))
        .filter_map(|op| op.op.task_id())
        .collect();
    let model_for = |id: &String| TaskModel {
        created_in_history: created.contains(id.as_str()),
    };
    let results = check_partitioned(model_for, &partitions, &config.budget);
    let keys = results
        .into_iter()
        .map(|(task_id, checked)| {
            let calls = partitions.get(&task_id).map_or(&[][..], |c| c.as_slice());
            key_result(history, task_id, calls, checked)
        })
        .collect();
    TaskLinearizability {
        keys,
        elapsed_ms: millis(start.elapsed()),
    }
}

fn key_result(
    history: &History,
    task_id: String,
    calls: &[Call<TaskInput, TaskOutput>],
    checked: Checked,
) -> KeyResult {
    let explanation = match &checked.finding {
        Finding::NotLinearizable(cx) => {
            let describe = |id: OpId| describe_call(history, calls, id);
            let mut lines = Vec::new();
            let skipped = cx.linearized.len().saturating_sub(CONTEXT);
            if skipped > 0 {
                lines.push(format!("… {skipped} earlier operations linearized"));
            }
            lines.extend(
                cx.linearized[skipped..]
                    .iter()
                    .map(|&id| format!("linearized {}", describe(id))),
            );
            lines.push(format!("state then: {}", cx.state));
            if let Some(stuck) = cx.stuck {
                lines.push(format!("cannot place {}", describe(stuck)));
            }
            for &id in cx.candidates.iter().filter(|&&id| Some(id) != cx.stuck) {
                lines.push(format!("  nor the concurrent {}", describe(id)));
            }
            lines
        }
        _ => Vec::new(),
    };
    KeyResult {
        task_id,
        calls: calls.len(),
        finding: checked.finding,
        states: checked.states,
        elapsed_ms: millis(checked.elapsed),
        explanation,
    }
}

/// Operations shown before the stuck one in an explanation.
const CONTEXT: usize = 8;

/// An operation as it concerns one task: a list shows only that task.
fn describe_call(history: &History, calls: &[Call<TaskInput, TaskOutput>], id: OpId) -> String {
    let Some(op) = history.get(id) else {
        return id.to_string();
    };
    if op.op != Op::List {
        return op.to_string();
    }
    let mut line = format!("{} p{} list", op.id, op.process.0);
    if let Some(Returned { time, output }) = calls
        .iter()
        .find(|c| c.op == id)
        .and_then(|c| c.returned.as_ref())
    {
        let seen = match output {
            TaskOutput::Task(task) => describe_view(task),
            TaskOutput::NotFound => "absent".to_string(),
            other => format!("{other:?}"),
        };
        let _ = write!(line, " -> sees {seen} [{}..{}]", op.invoke, time);
    }
    line
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl TaskLinearizability {
    /// Invalid if a task is, else inconclusive if one is, else valid.
    pub fn verdict(&self) -> Verdict {
        self.keys.iter().fold(Verdict::Valid, |acc, key| {
            acc.and(match key.finding {
                Finding::Linearizable => Verdict::Valid,
                Finding::NotLinearizable(_) => Verdict::Invalid,
                Finding::Inconclusive(_) => Verdict::Inconclusive,
            })
        })
    }

    /// The keys whose history has no linearization.
    pub fn violations(&self) -> impl Iterator<Item = &KeyResult> {
        self.keys
            .iter()
            .filter(|k| matches!(k.finding, Finding::NotLinearizable(_)))
    }

    /// As a report check: one `nonlinearizable` anomaly per bad key, one
    /// `undecided` per key out of budget.
    pub fn to_check(&self) -> Check {
        let mut anomalies = Vec::new();
        let (mut bad, mut undecided) = (0, 0);
        for key in &self.keys {
            match &key.finding {
                Finding::Linearizable => {}
                Finding::NotLinearizable(_) => {
                    bad += 1;
                    let detail = format!("task {}:\n{}", key.task_id, key.explanation.join("\n"));
                    anomalies.push(Anomaly::new("nonlinearizable", detail));
                }
                Finding::Inconclusive(exhausted) => {
                    undecided += 1;
                    let detail = format!(
                        "task {}: out of {} after {} states, {} of {} definite operations placed",
                        key.task_id,
                        exhausted.limit,
                        key.states,
                        exhausted.deepest,
                        exhausted.definite
                    );
                    anomalies.push(Anomaly::new("undecided", detail));
                }
            }
        }
        let calls: usize = self.keys.iter().map(|k| k.calls).sum();
        let slowest = self.keys.iter().map(|k| k.elapsed_ms).fold(0.0, f64::max);
        Check {
            name: "linearizable".to_string(),
            verdict: self.verdict(),
            summary: format!(
                "{} tasks, {calls} calls: {bad} not linearizable, {undecided} undecided ({:.0} ms, slowest task {:.0} ms)",
                self.keys.len(),
                self.elapsed_ms,
                slowest
            ),
            anomalies,
        }
    }
}
