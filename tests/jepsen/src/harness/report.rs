//! The run's figures beside the checkers' verdict: faults, leader changes,
//! unavailability after each fault, and the files a run leaves.
//!
//! **Unavailability after a fault** is the time from its injection until
//! the first write *invoked after it* was acknowledged: how long a client
//! that started then had to wait. It is grouped by fault kind (p50, max).
//!
//! Files under `target/jepsen/<run-id>/`: `report.txt` (the figures, then
//! the checkers' report, ending with `N passed, N failed`), `report.json`,
//! `history.jsonl` (the main history), `columns-<g>.jsonl` (one per
//! columns generation), `subscribers.json`, `faults.json`, the node logs
//! `n<i>.log` and each MariaDB's `error.log` under `n<i>/mysql/`.

use std::collections::BTreeMap;

use serde::Serialize;

use super::nemesis::FaultRecord;
use crate::history::{History, Op, OutcomeKind};

/// Unavailability of one fault kind.
#[derive(Clone, Debug, Serialize)]
pub struct Unavailability {
    /// Faults of this kind.
    pub faults: usize,
    /// Median, ms.
    pub p50_ms: u64,
    /// Worst, ms.
    pub max_ms: u64,
    /// Faults after which no write was acknowledged before the run ended.
    pub never_recovered: usize,
}

/// For each fault, ms until the first acknowledged write invoked after it.
pub fn unavailability(
    history: &History,
    faults: &[FaultRecord],
) -> BTreeMap<String, Unavailability> {
    let mut acks: Vec<(u64, u64)> = history
        .ops()
        .iter()
        .filter(|op| {
            matches!(
                op.op,
                Op::Create { .. } | Op::Update { .. } | Op::Delete { .. }
            )
        })
        .filter(|op| op.outcome_kind() == OutcomeKind::Ok)
        .filter_map(|op| op.completion.as_ref().map(|c| (op.invoke, c.time)))
        .collect();
    acks.sort_unstable();
    let mut by_kind: BTreeMap<String, (Vec<u64>, usize)> = BTreeMap::new();
    for fault in faults {
        let first = acks.partition_point(|(invoke, _)| *invoke < fault.start_ns);
        let done = acks[first..].iter().map(|(_, done)| *done).min();
        let entry = by_kind.entry(fault.kind.clone()).or_default();
        match done {
            Some(done) => entry
                .0
                .push((done.saturating_sub(fault.start_ns)) / 1_000_000),
            None => entry.1 += 1,
        }
    }
    by_kind
        .into_iter()
        .map(|(kind, (mut ms, never))| {
            ms.sort_unstable();
            let figures = Unavailability {
                faults: ms.len() + never,
                p50_ms: ms.get(ms.len() / 2).copied().unwrap_or(0),
                max_ms: ms.last().copied().unwrap_or(0),
                never_recovered: never,
            };
            (kind, figures)
        })
        .collect()
}

/// `p50 / max` over every fault.
pub fn overall(table: &BTreeMap<String, Unavailability>) -> (u64, u64) {
    let max = table.values().map(|u| u.max_ms).max().unwrap_or(0);
    let mut p50s: Vec<u64> = table.values().map(|u| u.p50_ms).collect();
    p50s.sort_unstable();
    (p50s.get(p50s.len() / 2).copied().unwrap_or(0), max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::nemesis::Family;
    use crate::history::{Outcome, ProcessId, Status, TaskView, Value};

    fn fault(kind: &str, at: u64) -> FaultRecord {
        FaultRecord {
            family: Family::Kill,
            kind: kind.into(),
            detail: String::new(),
            targets_leader: true,
            start_ns: at,
            end_ns: at + 1,
            fired: None,
        }
    }

    #[test]
    fn unavailability_is_the_wait_for_the_first_write_invoked_after_the_fault() {
        let mut history = History::new();
        let view = TaskView {
            version: 1,
            title: "a".into(),
            status: Status::Todo,
        };
        for (invoke, done) in [
            (1_000_000, 2_000_000),
            (5_000_000, 900_000_000),
            (6_000_000, 400_000_000),
        ] {
            let op = Op::Create {
                id: format!("t{invoke}"),
                title: "a".into(),
                status: Status::Todo,
                key: None,
            };
            let id = history.invoke(ProcessId(invoke), op, invoke);
            history
                .complete(id, Outcome::Ok(Value::Task(view.clone())), done)
                .expect("invoked");
        }
        let table = unavailability(
            &history,
            &[
                fault("kill_leader", 4_000_000),
                fault("kill_all", 7_000_000),
            ],
        );
        assert_eq!(table["kill_leader"].max_ms, 396);
        assert_eq!(table["kill_all"].never_recovered, 1);
    }
}
