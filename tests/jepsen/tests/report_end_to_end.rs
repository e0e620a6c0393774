//! Every checker on one simulated run, gathered into one report — the way
//! the harness will use the crate.

mod support;

use support::{corrupt_a_read, simulate_to_the_end, Rng, Sim};
use taskraft_jepsen::convergence::{self, NodeTable};
use taskraft_jepsen::events::{Event, EventKind, EventRow};
use taskraft_jepsen::history::{History, ListedTask, Op, OutcomeKind};
use taskraft_jepsen::invariant;
use taskraft_jepsen::linearizable::tasks::{self, Config};
use taskraft_jepsen::report::{Report, Verdict};
use taskraft_jepsen::set::{self, FinalRead};
use taskraft_jepsen::stream::{self, Connection, Subscriber};

/// Every node's final list: the board the run left.
fn finals(board: &[ListedTask]) -> Vec<FinalRead> {
    ["n1", "n2", "n3"]
        .iter()
        .map(|node| FinalRead {
            node: node.to_string(),
            tasks: board.to_vec(),
        })
        .collect()
}

fn rows(n: u64) -> Vec<EventRow> {
    (1..=n)
        .map(|seq| EventRow {
            seq,
            event_id: format!("e{seq}"),
            task_id: "t".into(),
            kind: EventKind::TaskUpdated,
            payload: seq.to_be_bytes().to_vec(),
        })
        .collect()
}

fn report(history: &History, board: &[ListedTask]) -> Report {
    let table = rows(6);
    let feed = |seqs: std::ops::RangeInclusive<u64>| -> Vec<Event> {
        seqs.map(|s| table[s as usize - 1].event()).collect()
    };
    let subscriber = Subscriber {
        name: "s1".into(),
        connections: vec![
            Connection {
                node: "n1".into(),
                since: Some(0),
                hello_seq: Some(3),
                events: feed(1..=3),
                resynced: false,
            },
            Connection {
                node: "n2".into(),
                since: Some(3),
                hello_seq: Some(6),
                events: feed(4..=6),
                resynced: false,
            },
        ],
    };
    let tables: Vec<NodeTable> = ["n1", "n2", "n3"]
        .iter()
        .map(|node| NodeTable {
            node: node.to_string(),
            rows: table.clone(),
        })
        .collect();
    let ids = ["task-0".to_string()];

    let mut report = Report::new(history);
    report
        .add(tasks::check(history, &Config::default()).to_check())
        .add(set::check(history, &finals(board)).to_check())
        .add(invariant::check(history, &ids, false).to_check())
        .add(stream::check(&[subscriber], &table).to_check())
        .add(convergence::check(&tables).to_check())
        .floor("ok operations", report_ok(history), 100);
    report
}

fn report_ok(history: &History) -> u64 {
    Report::new(history).operations.ok as u64
}

/// A run on one task with no successful delete, so that the invariant
/// (the task is always listed once) holds.
fn run() -> (History, Vec<ListedTask>) {
    (0..)
        .map(|seed| {
            simulate_to_the_end(&Sim {
                seed,
                ops: 300,
                keys: 1,
                clients: 6,
                info_percent: 0,
                never_percent: 0,
                list_percent: 10,
            })
        })
        .find(|(history, _)| {
            !history
                .ops()
                .iter()
                .any(|o| matches!(o.op, Op::Delete { .. }) && o.outcome_kind() == OutcomeKind::Ok)
        })
        .expect("some seed deletes nothing")
}

#[test]
fn a_healthy_run_passes_every_check() {
    let (history, board) = run();
    let report = report(&history, &board);
    let text = report.to_string();
    assert_eq!(report.verdict(), Verdict::Valid, "{text}");
    assert!(text.ends_with("6 passed, 0 failed"), "{text}");
    let json = report.to_json();
    assert_eq!(json["verdict"], "valid");
    assert_eq!(json["checks"].as_array().map(|c| c.len()), Some(6));
}

#[test]
fn a_corrupted_read_fails_the_run_and_explains_itself() {
    let (history, board) = run();
    let (corrupted, victim) =
        corrupt_a_read(&history, &mut Rng::new(3)).expect("the run has reads");
    let report = report(&corrupted, &board);
    let text = report.to_string();
    assert_eq!(report.verdict(), Verdict::Invalid, "{text}");
    assert!(text.ends_with("5 passed, 1 failed"), "{text}");
    assert!(text.contains("nonlinearizable (1):"), "{text}");
    assert!(
        text.contains(&format!("{victim} p")),
        "the read {victim} is named: {text}"
    );
}
