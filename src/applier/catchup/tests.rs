//! What a page must look like to be installed.

use uuid::Uuid;

use super::install::{check, fold};
use super::*;
use crate::db::catchup::EventRow;
use crate::db::rows::KeyRow;
use crate::db::AppliedState;
use crate::task::{ColumnTails, EventKind, EventPayload, Priority, Status, Task, TaskId};
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
        archived: false,
        board_id: crate::task::DEFAULT_BOARD,
        column_id: None,
    }
}

fn row(seq: u64, raft_index: u64) -> EventRow {
    let id = TaskId(Uuid::from_u128(u128::from(seq)));
    let payload = EventPayload {
        task: Some(task(id, 1)),
        user: None,
        member: None,
        recovery: None,
        board: None,
        column: None,
        board_member: None,
        comment: None,
        checklist: None,
        checklist_change: None,
        notification: None,
        webhook: None,
        changes: Default::default(),
        actor: Default::default(),
    };
    EventRow {
        seq,
        raft_index,
        ordinal: 0,
        term: 2,
        event_id: Uuid::from_u128(1000 + u128::from(seq)),
        task_id: Some(id),
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
        created_at: Timestamp(1_795_774_512_345),
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
        accounts: None,
        cluster_versions: Vec::new(),
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
    assert_eq!(
        events[0].task.as_ref().unwrap().title,
        "task v1",
        "the payload is read"
    );
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

fn updated(seq: u64, raft_index: u64, task_n: u128, status: Status, position: f64) -> Event {
    let mut event = row(seq, raft_index).event().unwrap();
    let id = TaskId(Uuid::from_u128(task_n));
    event.task_id = Some(id);
    event.kind = EventKind::TaskUpdated;
    let task = event.task.as_mut().unwrap();
    task.id = id;
    task.status = status;
    task.position = position;
    event
}

#[test]
fn a_page_is_folded_with_the_domains_fold_into_upserts_deletes_and_tails() {
    let created = row(5, 11).event().unwrap();
    let mut deleted = row(6, 12).event().unwrap();
    deleted.task_id = created.task_id;
    deleted.kind = EventKind::TaskDeleted;
    let moved = updated(7, 13, 9, Status::Done, 9000.0);
    let before = ColumnTails([5000.0, 0.0, 100.0]);

    let folded = fold(
        &[created.clone(), deleted, moved.clone()],
        4,
        before,
        Default::default(),
    )
    .unwrap();

    assert_eq!(
        folded.upserts,
        vec![moved.task.unwrap()],
        "the task as its last event left it"
    );
    assert_eq!(
        folded.deletes,
        vec![created.task_id.unwrap()],
        "created, then deleted"
    );
    assert_eq!(folded.tails.get(Status::Done), 9000.0, "the tail rose");
    assert_eq!(
        folded.tails.get(Status::Todo),
        5000.0,
        "a lower position leaves it"
    );
    assert!(
        fold(
            &[updated(6, 11, 1, Status::Todo, 1.0)],
            4,
            before,
            Default::default()
        )
        .is_err(),
        "the fold refuses an event that is not next"
    );
}

#[test]
fn peers_are_asked_leader_first_then_reachable_ones_never_this_node_or_twice() {
    use crate::raft::membership::MemberAddr;
    use crate::transport::PeerInfo;
    let peer = |id: u64, url: Option<&str>, reachable| PeerInfo {
        id,
        raft_addr: format!("127.0.0.1:900{id}"),
        url: url.map(str::to_string),
        reachable,
    };
    let known = vec![
        peer(1, Some("http://n1"), true),
        peer(2, Some("http://n2"), false),
        peer(3, Some("http://n3"), true),
        peer(4, None, true),
    ];
    let members = [
        (
            4,
            MemberAddr {
                raft_addr: "127.0.0.1:9004".into(),
                url: Some("http://n4".into()),
            },
        ),
        (
            5,
            MemberAddr {
                raft_addr: "127.0.0.1:9005".into(),
                url: Some("http://n3".into()),
            },
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        peers::order(1, 2, known, &members),
        vec!["http://n2", "http://n3", "http://n4"],
        "node 1 asks the leader (2), then the reachable 3, then 4 known from the log; \
         5 shares 3's URL"
    );
}

fn size_error() -> CatchupError {
    CatchupError::Db(crate::db::DbError::Mysql(mysql_async::Error::Server(
        mysql_async::ServerError {
            code: 1153,
            message: "Got a packet bigger than 'max_allowed_packet' bytes".into(),
            state: "08S01".into(),
        },
    )))
}

#[test]
fn a_page_refused_for_its_size_is_retried_one_row_per_statement_until_one_commits() {
    let mut pace = PagePace::default();
    let mut retry = crate::applier::drive::Retry::default();

    let failure = pace.failed(&size_error());
    assert_eq!(failure.class, ErrorClass::Size);
    assert!(pace.per_row, "the next page goes one row per statement");
    retry.failed(failure);
    assert!(
        retry
            .apply_error()
            .is_some_and(|e| e.contains("catching up from a peer")),
        "the node reports why it is not ready: {:?}",
        retry.apply_error()
    );

    let no_peer = CatchupError::NoPage(PeerFailures::default());
    let failure = pace.failed(&no_peer);
    assert_eq!(failure.class, ErrorClass::Transient);
    assert_eq!(
        failure.error,
        "catching up from a peer: no peer is known yet"
    );
    assert!(
        pace.per_row,
        "a peer's trouble does not undo what MySQL refused"
    );

    pace.copied();
    assert!(retry.succeeded().is_some(), "the failure ends with a page");
    assert_eq!(
        pace,
        PagePace::default(),
        "packed again after a page commits"
    );
}

#[test]
fn a_peer_without_a_usable_page_is_transient_and_every_peer_asked_is_named() {
    let behind = PeerFailure::Behind {
        url: "http://n2".into(),
        applied: 7,
    };
    let misfit = CatchupError::Misfit(PageMisfit::Gap { seq: 9, after: 7 });
    let none = CatchupError::NoPage(PeerFailures(vec![
        behind,
        PeerFailure::Behind {
            url: "http://n3".into(),
            applied: 8,
        },
    ]));
    assert_eq!(misfit.class(), ErrorClass::Transient);
    assert_eq!(none.class(), ErrorClass::Transient);
    assert_eq!(
        none.to_string(),
        "http://n2 has applied only up to entry 7; http://n3 has applied only up to entry 8"
    );
    let mut pace = PagePace::default();
    pace.failed(&misfit);
    assert!(
        !pace.per_row,
        "only a size error changes how pages are sent"
    );
}

/// A comment event of task `task_n` at `seq`, with the comment `n` at `version`.
fn comment_event(seq: u64, kind: EventKind, task_n: u128, n: u128, version: u64) -> Event {
    let mut event = row(seq, 10 + seq).event().unwrap();
    let task = TaskId(Uuid::from_u128(task_n));
    event.kind = kind;
    event.task_id = Some(task);
    event.task = None;
    event.comment = Some(crate::task::Comment {
        id: crate::task::CommentId(Uuid::from_u128(0xc000 + n)),
        task_id: task,
        board_id: crate::task::DEFAULT_BOARD,
        author: Default::default(),
        body: format!("comment {n} v{version}"),
        version,
        created_at: Timestamp(1_795_774_512_345),
        updated_at: Timestamp(1_795_774_512_345),
    });
    event
}

#[test]
fn a_pages_comment_events_fold_into_comment_rows_and_leave_their_task_alone() {
    // Task 77 is live before the page (not in it): its comments' events
    // must not take it for deleted.
    let events = [
        comment_event(5, EventKind::CommentAdded, 77, 1, 1),
        comment_event(6, EventKind::CommentAdded, 77, 2, 1),
        comment_event(7, EventKind::CommentEdited, 77, 1, 2),
        comment_event(8, EventKind::CommentDeleted, 77, 2, 1),
        // A comment deleted whose add was on an earlier page.
        comment_event(9, EventKind::CommentDeleted, 77, 3, 1),
    ];
    let folded = fold(&events, 4, ColumnTails::default(), Default::default()).unwrap();
    assert!(folded.upserts.is_empty(), "{:?}", folded.upserts);
    assert!(folded.deletes.is_empty(), "the task is not deleted");
    let upserts: Vec<(u128, u64)> = folded
        .comment_upserts
        .iter()
        .map(|c| (c.id.0.as_u128() - 0xc000, c.version))
        .collect();
    assert_eq!(upserts, [(1, 2)], "comment 1 as its last event left it");
    let deletes: Vec<u128> = folded
        .comment_deletes
        .iter()
        .map(|id| id.0.as_u128() - 0xc000)
        .collect();
    assert_eq!(deletes, [2, 3]);
}

#[test]
fn the_page_asked_for_ahead_starts_where_the_page_installing_leaves_mysql() {
    let installing = page(20, vec![row(5, 11), row(6, 14), row(7, 20)], vec![key(12)]);
    let next = next_request(ASKED, &installing).expect("the page stops short of the snapshot");
    assert_eq!(
        next,
        PageRequest {
            after_index: 20,
            after_seq: 7,
            upto: 50
        }
    );
    let after = AppliedState {
        applied_index: 20,
        applied_term: 2,
        last_seq: 7,
    };
    check(after, next, &page(30, vec![row(8, 25)], Vec::new()))
        .expect("the page after continues where the one before left MySQL");
    let without_events = page(24, Vec::new(), Vec::new());
    assert_eq!(
        next_request(next, &without_events).map(|r| (r.after_index, r.after_seq)),
        Some((24, 7)),
        "entries without events move the index, not the seq"
    );
    assert_eq!(
        next_request(next, &page(50, vec![row(8, 25)], Vec::new())),
        None,
        "a page that reaches the snapshot is the last"
    );
}
