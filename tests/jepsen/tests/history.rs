//! Recording a history, writing it as JSON lines and reading it back, and
//! the recording mistakes `problems` catches.

mod support;

use support::{simulate, Sim};
use taskraft_jepsen::history::*;

fn create(id: &str) -> Op {
    Op::Create {
        id: id.into(),
        title: id.into(),
        status: Status::Todo,
        key: None,
    }
}

#[test]
fn a_history_survives_json_lines_unchanged() {
    let mut history = simulate(&Sim {
        info_percent: 20,
        list_percent: 10,
        ..Sim::default()
    });
    history.invoke(ProcessId(99), Op::List, u64::MAX - 1); // still pending
    let mut bytes = Vec::new();
    history.write_jsonl(&mut bytes).expect("writing to memory");
    let text = String::from_utf8(bytes.clone()).expect("JSON is UTF-8");
    assert_eq!(text.lines().count(), history.len());
    let back = History::read_jsonl(&bytes[..]).expect("what we wrote parses");
    assert_eq!(back, history);
}

#[test]
fn one_operation_reads_as_a_flat_json_line() {
    let mut history = History::new();
    let id = history.invoke(
        ProcessId(3),
        Op::Update {
            id: "t1".into(),
            if_match: Some(2),
            title: None,
            status: Some(Status::Done),
        },
        10,
    );
    let current = TaskView {
        version: 4,
        title: "a".into(),
        status: Status::Todo,
    };
    history
        .complete(id, Outcome::Fail(Failure::VersionMismatch { current }), 20)
        .expect("invoked");
    let mut bytes = Vec::new();
    history.write_jsonl(&mut bytes).expect("writing to memory");
    assert_eq!(
        String::from_utf8_lossy(&bytes).trim(),
        r#"{"id":0,"process":3,"op":{"f":"update","id":"t1","if_match":2,"status":"done"},"invoke":10,"completion":{"time":20,"outcome":{"type":"fail","value":{"code":"version_mismatch","current":{"version":4,"title":"a","status":"todo"}}}}}"#
    );
}

#[test]
fn completing_twice_or_an_unknown_operation_is_refused() {
    let mut history = History::new();
    let id = history.invoke(ProcessId(0), create("t1"), 1);
    let ok = Outcome::Info("timeout".into());
    assert_eq!(history.complete(id, ok.clone(), 2), Ok(()));
    assert_eq!(
        history.complete(id, ok.clone(), 3),
        Err(HistoryError::AlreadyCompleted(id))
    );
    assert_eq!(
        history.complete(OpId(7), ok, 3),
        Err(HistoryError::UnknownOp(OpId(7)))
    );
}

#[test]
fn a_line_out_of_place_or_garbled_is_reported_with_its_number() {
    let line = r#"{"id":1,"process":0,"op":{"f":"list"},"invoke":1}"#;
    assert_eq!(
        History::read_jsonl(line.as_bytes()),
        Err(HistoryError::IdOutOfPlace {
            line: 1,
            id: OpId(1)
        })
    );
    let garbled = "\n{\"id\":0,";
    assert!(matches!(
        History::read_jsonl(garbled.as_bytes()),
        Err(HistoryError::BadLine { line: 2, .. })
    ));
}

#[test]
fn problems_name_the_recording_mistakes() {
    let mut history = History::new();
    let a = history.invoke(ProcessId(0), create("t1"), 10);
    history
        .complete(a, Outcome::Info("timeout".into()), 20)
        .expect("invoked");
    // Process 0 goes on after an indeterminate operation.
    let b = history.invoke(ProcessId(0), Op::List, 30);
    // A list answered with a task, completed before it began.
    history
        .complete(
            b,
            Outcome::Ok(Value::Task(TaskView {
                version: 1,
                title: "x".into(),
                status: Status::Todo,
            })),
            25,
        )
        .expect("invoked");
    let problems = history.problems();
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(problems[0].contains("completes before it was invoked"));
    assert!(problems[1].contains("ok value does not fit"));
    assert!(problems[2].contains("after the indeterminate #0"));
}

#[test]
fn a_simulated_history_has_no_recording_problem() {
    let history = simulate(&Sim {
        ops: 500,
        clients: 10,
        info_percent: 20,
        ..Sim::default()
    });
    assert_eq!(history.problems(), Vec::<String>::new());
}
