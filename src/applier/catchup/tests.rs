//! What a page must look like to be installed.

use uuid::Uuid;

use super::*;
use crate::db::catchup::EventRow;
use crate::db::rows::KeyRow;
use crate::task::{EventPayload, Priority, Status, Task};
use crate::time::Timestamp;

fn task(id: TaskId, version: u64) -> Task {
    Task {
        id,
        title: format!("task v{version}"),
        description: String::new(),
        status: Status::Todo,
        position: 1024.0 * version as f64,
        priority: Priority::Medium,
        assignee: None,
        labels: Vec::new(),
        due_date: None,
        version,
        created_at: Timestamp(1_795_774_512_345),
        updated_at: Timestamp(1_795_774_512_345),
    }
}

fn row(seq: u64, raft_index: u64) -> EventRow {
    let id = TaskId(Uuid::from_u128(u128::from(seq)));
    let payload = EventPayload {
        task: task(id, 1),
        changes: Default::default(),
    };
    EventRow {
        seq,
        raft_index,
        ordinal: 0,
        term: 2,
        event_id: Uuid::from_u128(1000 + u128::from(seq)),
        task_id: id,
        kind: EventKind::TaskCreated,
        payload: serde_json::to_string(&payload).unwrap(),
        at: Timestamp(1_795_774_512_345),
        request_id: Uuid::from_u128(1000 + u128::from(seq)),
    }
}

fn key(raft_index: u64) -> KeyRow {
    KeyRow {
        key: format!("k{raft_index}"),
        fingerprint: "0123456789abcdef".into(),
        raft_index,
        outcome: "{}".into(),
    }
}

const LOCAL: AppliedState = AppliedState {
    applied_index: 10,
    applied_term: 1,
    last_seq: 4,
};

const ASKED: PageRequest = PageRequest {
    after_index: 10,
    after_seq: 4,
    upto: 50,
};

fn page(upto: u64, events: Vec<EventRow>, keys: Vec<KeyRow>) -> Page {
    Page {
        source_applied: 60,
        upto,
        upto_term: Some(2),
        events,
        keys,
    }
}

#[test]
fn a_page_that_continues_where_mysql_is_is_accepted() {
    let events = check(
        LOCAL,
        ASKED,
        &page(20, vec![row(5, 11), row(6, 14), row(7, 20)], vec![key(12)]),
    )
    .unwrap();
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![5, 6, 7]
    );
    assert_eq!(events[0].task.title, "task v1", "the payload is read");
    check(LOCAL, ASKED, &page(13, Vec::new(), Vec::new()))
        .expect("entries without events are progress too");
}

#[test]
fn a_page_with_a_gap_a_repeat_or_a_stray_entry_is_refused() {
    for (why, bad) in [
        ("a gap", page(20, vec![row(6, 11)], Vec::new())),
        ("a repeat", page(20, vec![row(4, 11)], Vec::new())),
        (
            "out of order",
            page(20, vec![row(5, 15), row(6, 12)], Vec::new()),
        ),
        ("an event before", page(20, vec![row(5, 10)], Vec::new())),
        ("an event after", page(20, vec![row(5, 21)], Vec::new())),
        ("a key before", page(20, Vec::new(), vec![key(10)])),
        ("a key after", page(20, Vec::new(), vec![key(21)])),
        ("no progress", page(10, Vec::new(), Vec::new())),
        ("past the snapshot", page(51, Vec::new(), Vec::new())),
    ] {
        assert!(check(LOCAL, ASKED, &bad).is_err(), "{why} was accepted");
    }
    let mut garbled = row(5, 11);
    garbled.payload = "{".into();
    assert!(check(LOCAL, ASKED, &page(20, vec![garbled], Vec::new())).is_err());
}
