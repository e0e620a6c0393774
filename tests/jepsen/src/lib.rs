//! Jepsen-style checkers for taskraft: pure functions from what a fault
//! test recorded to a verdict.
//!
//! The harness drives real nodes, injects faults, and records a
//! [`History`](history::History) of client operations, each invoked and
//! then completed ok, fail (a definite 4xx) or info (unknown). After
//! healing it reads every node's final list, event table and the
//! WebSocket subscribers' feeds. This crate judges all of that; it starts
//! no process and reads no clock except to bound its own search.
//!
//! # Layout
//!
//! - [`history`]: operations, outcomes, the history and its JSON lines.
//! - [`linearizable`]: a Wing–Gong–Lowe search generic over a sequential
//!   [`Model`](linearizable::Model), partitioned by key, with a budget and
//!   counterexamples; [`linearizable::tasks`] is taskraft's per-task model.
//! - [`set`]: acknowledged creates present exactly once on every node,
//!   refused ones absent.
//! - [`invariant`]: the "move between columns" workload: N cards, always.
//! - [`stream`]: WebSocket feeds ordered, gap-free, repeat-free, resumable,
//!   and equal to the event table.
//! - [`convergence`]: every node's event table identical, byte by byte.
//! - [`events`]: the event rows the last two read.
//! - [`report`]: checks gathered into one verdict, JSON and text, ending
//!   with `N passed, N failed`.
//! - [`harness`]: the other side — real nodes with their own MariaDB in
//!   network namespaces, a TCP proxy per link, the nemesis, the recorded
//!   workloads, and the run that feeds all of it to the checkers
//!   (`src/bin/chaos.rs`, `tests/ci_*.rs`).
//!
//! # Example
//!
//! ```
//! use taskraft_jepsen::history::*;
//! use taskraft_jepsen::linearizable::tasks;
//! use taskraft_jepsen::report::{Report, Verdict};
//! use taskraft_jepsen::set::{self, FinalRead};
//!
//! let mut history = History::new();
//! let create = Op::Create { id: "t1".into(), title: "a".into(), status: Status::Todo, key: None };
//! let c = history.invoke(ProcessId(0), create, 100);
//! let task = TaskView { version: 1, title: "a".into(), status: Status::Todo };
//! history.complete(c, Outcome::Ok(Value::Task(task.clone())), 250)?;
//! let r = history.invoke(ProcessId(1), Op::Read { id: "t1".into() }, 300);
//! history.complete(r, Outcome::Ok(Value::Task(task)), 320)?;
//!
//! let listed = ListedTask { id: "t1".into(), version: 1, title: "a".into(), status: Status::Todo };
//! let finals = [FinalRead { node: "n1".into(), tasks: vec![listed] }];
//!
//! let mut report = Report::new(&history);
//! report
//!     .add(tasks::check(&history, &tasks::Config::default()).to_check())
//!     .add(set::check(&history, &finals).to_check());
//! assert_eq!(report.verdict(), Verdict::Valid);
//! assert!(report.to_string().ends_with("2 passed, 0 failed"));
//! # Ok::<(), HistoryError>(())
//! ```
//!
//! The checkers are pure: they start no process and read no clock. All
//! that touches processes, networks and clocks lives in [`harness`].

pub mod convergence;
pub mod events;
pub mod harness;
pub mod history;
pub mod invariant;
pub mod linearizable;
pub mod report;
pub mod set;
pub mod stream;

#[cfg(test)]
mod testkit;
