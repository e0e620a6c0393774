//! The "move between columns" invariant, taskraft's bank test: a fixed set
//! of N tasks is shuffled between `todo`, `in_progress` and `done` by
//! updates, and every linearizable list must show each of them exactly
//! once — N cards, each in one column, none lost, none doubled.
//!
//! Checked on every ok list invoked after the set was set up (after the
//! last ok create of its tasks; a task created before the history began is
//! taken as set up from the start). Any definite 404 about one of the tasks
//! is a loss as well: the workload never deletes them. With `exclusive`,
//! a listed task outside the set is reported too (the workload owns the
//! board).
//!
//! Not here: per-task version order across lists (the linearizability
//! check projects lists onto tasks for that).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::history::{Failure, History, Op, OpId, Outcome, Status, Time, Value};
use crate::report::{Anomaly, Check, Verdict};

/// What a list (or a 404) got wrong about the set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ColumnsAnomaly {
    /// A task of the set is missing from a list, or answered 404.
    Lost { op: OpId, task_id: String },
    /// A task of the set is listed more than once (in these columns).
    Doubled {
        op: OpId,
        task_id: String,
        columns: Vec<Status>,
    },
    /// A task outside the set (only with `exclusive`).
    Unexpected { op: OpId, task_id: String },
}

impl ColumnsAnomaly {
    /// The anomaly kind in the report.
    pub fn kind(&self) -> &'static str {
        match self {
            ColumnsAnomaly::Lost { .. } => "lost",
            ColumnsAnomaly::Doubled { .. } => "doubled",
            ColumnsAnomaly::Unexpected { .. } => "unexpected",
        }
    }

    fn detail(&self) -> String {
        match self {
            ColumnsAnomaly::Lost { op, task_id } => format!("{op}: {task_id} is missing"),
            ColumnsAnomaly::Doubled {
                op,
                task_id,
                columns,
            } => {
                let columns: Vec<_> = columns.iter().map(|c| c.as_str()).collect();
                format!("{op}: {task_id} listed in {}", columns.join(" and "))
            }
            ColumnsAnomaly::Unexpected { op, task_id } => {
                format!("{op}: {task_id} is not one of the workload's tasks")
            }
        }
    }
}

/// The invariant's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnsResult {
    /// N.
    pub tasks: usize,
    /// Ok lists judged.
    pub lists: usize,
    /// The fewest and most cards seen in each column, over those lists.
    pub column_range: BTreeMap<Status, (usize, usize)>,
    /// Everything found wrong, in history order.
    pub anomalies: Vec<ColumnsAnomaly>,
}

/// Checks every ok list of `history` against the fixed set `task_ids`.
pub fn check(history: &History, task_ids: &[String], exclusive: bool) -> ColumnsResult {
    let set_up = set_up_time(history, task_ids);
    let mut result = ColumnsResult {
        tasks: task_ids.len(),
        lists: 0,
        column_range: BTreeMap::new(),
        anomalies: Vec::new(),
    };
    for op in history.ops() {
        match (&op.op, op.definite()) {
            (Op::List, Some(Outcome::Ok(Value::Tasks { tasks }))) if op.invoke >= set_up => {
                result.lists += 1;
                let mut columns_of: BTreeMap<&str, Vec<Status>> = task_ids
                    .iter()
                    .map(|id| (id.as_str(), Vec::new()))
                    .collect();
                let mut per_column: BTreeMap<Status, usize> =
                    Status::ALL.iter().map(|s| (*s, 0)).collect();
                for task in tasks {
                    match columns_of.get_mut(task.id.as_str()) {
                        Some(columns) => {
                            columns.push(task.status);
                            *per_column.entry(task.status).or_default() += 1;
                        }
                        None if exclusive => result.anomalies.push(ColumnsAnomaly::Unexpected {
                            op: op.id,
                            task_id: task.id.clone(),
                        }),
                        None => {}
                    }
                }
                for (id, columns) in columns_of {
                    let task_id = id.to_string();
                    match columns.len() {
                        0 => result
                            .anomalies
                            .push(ColumnsAnomaly::Lost { op: op.id, task_id }),
                        1 => {}
                        _ => result.anomalies.push(ColumnsAnomaly::Doubled {
                            op: op.id,
                            task_id,
                            columns,
                        }),
                    }
                }
                for (status, n) in per_column {
                    let range = result.column_range.entry(status).or_insert((n, n));
                    *range = (range.0.min(n), range.1.max(n));
                }
            }
            (_, Some(Outcome::Fail(Failure::NotFound))) if op.invoke >= set_up => {
                if let Some(id) = op
                    .op
                    .task_id()
                    .filter(|id| task_ids.iter().any(|t| t == id))
                {
                    result.anomalies.push(ColumnsAnomaly::Lost {
                        op: op.id,
                        task_id: id.to_string(),
                    });
                }
            }
            _ => {}
        }
    }
    result
}

/// When the last task of the set was acknowledged as created.
fn set_up_time(history: &History, task_ids: &[String]) -> Time {
    history
        .ops()
        .iter()
        .filter(|op| matches!(&op.op, Op::Create { id, .. } if task_ids.contains(id)))
        .filter(|op| op.outcome_kind() == crate::history::OutcomeKind::Ok)
        .filter_map(|op| op.completion.as_ref().map(|c| c.time))
        .max()
        .unwrap_or(0)
}

/// The generations whose lists the columns check judges: those that had
/// at least one list. A generation set up as the run was ending may have
/// had none, and has nothing to say; when no generation had a list, all are
/// kept so that the check stays inconclusive.
pub fn judged_generations(results: Vec<(String, ColumnsResult)>) -> Vec<(String, ColumnsResult)> {
    if results.iter().any(|(_, r)| r.lists > 0) {
        results.into_iter().filter(|(_, r)| r.lists > 0).collect()
    } else {
        results
    }
}

impl ColumnsResult {
    /// As a report check; inconclusive when no list was judged.
    pub fn to_check(&self) -> Check {
        let ranges: Vec<String> = self
            .column_range
            .iter()
            .map(|(s, (lo, hi))| format!("{} {lo}..{hi}", s.as_str()))
            .collect();
        let summary = format!(
            "{} tasks, {} lists, {} anomalies (columns {})",
            self.tasks,
            self.lists,
            self.anomalies.len(),
            ranges.join(", ")
        );
        let anomalies = self
            .anomalies
            .iter()
            .map(|a| Anomaly::new(a.kind(), a.detail()))
            .collect();
        let mut check = Check::from_anomalies("columns", summary, anomalies);
        if self.lists == 0 && check.verdict == Verdict::Valid {
            check.verdict = Verdict::Inconclusive;
        }
        check
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::ListedTask;
    use crate::testkit::*;

    fn ids() -> Vec<String> {
        vec!["a".into(), "b".into(), "c".into()]
    }

    fn board(cards: &[(&str, Status)]) -> Value {
        tasks(
            cards
                .iter()
                .map(|(id, s)| listed(id, 1, id, *s))
                .collect::<Vec<ListedTask>>(),
        )
    }

    /// The three tasks created by time 30, one moved, then `list` at 100.
    fn run(list: Value) -> ColumnsResult {
        let mut s = Script::new();
        for (i, id) in ["a", "b", "c"].iter().enumerate() {
            s.ok(
                i as u64,
                create(id, id),
                (0, 10 + 10 * i as u64),
                task(1, id),
            );
        }
        s.ok(0, Op::List, (5, 15), board(&[("a", Status::Todo)]));
        s.ok(
            0,
            move_to("b", None, Status::Done),
            (40, 50),
            Value::Task(view(2, "b", Status::Done)),
        );
        s.ok(1, Op::List, (100, 110), list);
        check(&s.history, &ids(), true)
    }

    #[test]
    fn every_task_once_in_one_column_is_valid() {
        let result = run(board(&[
            ("a", Status::Todo),
            ("b", Status::Done),
            ("c", Status::InProgress),
        ]));
        assert_eq!(result.anomalies, vec![]);
        assert_eq!(result.lists, 1, "the list during set-up is not judged");
        assert_eq!(result.to_check().verdict, Verdict::Valid);
    }

    #[test]
    fn a_task_missing_from_a_list_is_lost() {
        let result = run(board(&[("a", Status::Todo), ("c", Status::Todo)]));
        assert_eq!(
            result.anomalies,
            vec![ColumnsAnomaly::Lost {
                op: OpId(5),
                task_id: "b".into()
            }]
        );
        assert_eq!(result.to_check().verdict, Verdict::Invalid);
    }

    #[test]
    fn a_task_in_two_columns_is_doubled() {
        let list = board(&[
            ("a", Status::Todo),
            ("b", Status::Todo),
            ("b", Status::Done),
            ("c", Status::Todo),
        ]);
        let result = run(list);
        assert_eq!(
            result.anomalies,
            vec![ColumnsAnomaly::Doubled {
                op: OpId(5),
                task_id: "b".into(),
                columns: vec![Status::Todo, Status::Done]
            }]
        );
    }

    #[test]
    fn a_stranger_on_an_exclusive_board_is_reported() {
        let list = board(&[
            ("a", Status::Todo),
            ("b", Status::Done),
            ("c", Status::Todo),
            ("z", Status::Todo),
        ]);
        assert_eq!(
            run(list).anomalies,
            vec![ColumnsAnomaly::Unexpected {
                op: OpId(5),
                task_id: "z".into()
            }]
        );
    }

    #[test]
    fn a_404_for_a_task_of_the_set_is_a_loss() {
        let mut s = Script::new();
        s.fail(0, read("a"), (0, 10), Failure::NotFound);
        let result = check(&s.history, &ids(), false);
        assert_eq!(
            result.anomalies,
            vec![ColumnsAnomaly::Lost {
                op: OpId(0),
                task_id: "a".into()
            }]
        );
    }

    #[test]
    fn a_generation_without_lists_is_left_out_unless_all_are() {
        let ids = ids();
        let listed = run(board(&[
            ("a", Status::Todo),
            ("b", Status::Done),
            ("c", Status::InProgress),
        ]));
        let unlisted = check(&Script::new().history, &ids, true);
        assert_eq!((listed.lists, unlisted.lists), (1, 0));
        let kept = judged_generations(vec![("g0".into(), listed), ("g1".into(), unlisted)]);
        assert_eq!(
            kept.iter().map(|(l, _)| l.as_str()).collect::<Vec<_>>(),
            ["g0"]
        );
        let none = judged_generations(vec![
            ("g0".into(), check(&Script::new().history, &ids, true)),
            ("g1".into(), check(&Script::new().history, &ids, true)),
        ]);
        assert_eq!(none.len(), 2);
        assert!(none
            .iter()
            .all(|(_, r)| r.to_check().verdict == Verdict::Inconclusive));
    }

    #[test]
    fn with_no_list_to_judge_the_check_is_inconclusive() {
        let s = Script::new();
        assert_eq!(
            check(&s.history, &ids(), false).to_check().verdict,
            Verdict::Inconclusive
        );
    }
}
