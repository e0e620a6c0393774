//! The state machine's behaviour, one rule per test, and properties over
//! random command sequences.

use std::collections::{BTreeMap, HashMap};

use proptest::prelude::*;
use uuid::Uuid;

use super::*;
use crate::time::{Date, Timestamp};

fn id(n: u128) -> TaskId {
    TaskId(Uuid::from_u128(n))
}

fn command(n: u128, op: Op) -> Command {
    Command {
        request_id: Uuid::from_u128(1_000_000 + n),
        idempotency: None,
        at: Timestamp(1_700_000_000_000 + n as i64),
        actor: Default::default(),
        op,
    }
}

fn create(n: u128, title: &str, status: Status) -> Command {
    command(
        n,
        Op::Create(NewTask {
            id: id(n),
            title: title.to_string(),
            description: String::new(),
            status,
            position: None,
            priority: Priority::Medium,
            assignee: None,
            labels: vec![],
            due_date: None,
            board_id: None,
            column_id: None,
        }),
    )
}

fn update(n: u128, task: u128, expected_version: Option<u64>, patch: TaskPatch) -> Command {
    command(
        n,
        Op::Update {
            id: id(task),
            expected_version,
            patch,
        },
    )
}

fn delete(n: u128, task: u128, expected_version: Option<u64>) -> Command {
    command(
        n,
        Op::Delete {
            id: id(task),
            expected_version,
        },
    )
}

fn apply(board: &mut Board, commands: &[Command]) -> Vec<Outcome> {
    commands
        .iter()
        .enumerate()
        .map(|(i, c)| board.apply(i as u64 + 1, 1, c).outcome)
        .collect()
}

fn rejection(outcome: &Outcome) -> &Rejection {
    match outcome {
        Outcome::Rejected { rejection } => rejection,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn create_makes_version_1_stamped_with_the_command_time() {
    let mut board = Board::new();
    let outcome = board.apply(7, 2, &create(1, "Write the report", Status::Todo));
    let Outcome::Created { task, seq } = outcome.outcome else {
        panic!("expected created, got {:?}", outcome.outcome)
    };
    assert_eq!(seq, 1);
    assert_eq!(task.version, 1);
    assert_eq!(task.created_at, Timestamp(1_700_000_000_001));
    assert_eq!(task.updated_at, task.created_at);

    let changes = board.take_changes();
    assert_eq!(changes.events.len(), 1);
    let event = &changes.events[0];
    assert_eq!(
        (event.seq, event.raft_index, event.term, event.kind),
        (1, 7, 2, EventKind::TaskCreated)
    );
    assert_eq!(
        event.event_id,
        Uuid::from_u128(1_000_001),
        "first event id is the request id"
    );
    assert_eq!(changes.upserts, vec![task]);
}

#[test]
fn new_cards_go_to_the_end_of_their_column() {
    let mut board = Board::new();
    apply(
        &mut board,
        &[
            create(1, "a", Status::Todo),
            create(2, "b", Status::Todo),
            create(3, "c", Status::Done),
        ],
    );
    let pos = |n| board.task(&id(n)).unwrap().position;
    assert_eq!((pos(1), pos(2), pos(3)), (1024.0, 2048.0, 1024.0));
}

#[test]
fn a_column_end_never_moves_back_when_its_last_card_leaves() {
    // Deterministic defaults must not depend on where the applier cut the
    // log into batches, so the tail is the highest position ever used.
    let mut board = Board::new();
    apply(
        &mut board,
        &[
            create(1, "a", Status::Todo),
            create(2, "b", Status::Todo),
            delete(3, 2, None),
            create(4, "c", Status::Todo),
        ],
    );
    assert_eq!(board.task(&id(4)).unwrap().position, 3072.0);
}

#[test]
fn an_id_in_use_or_once_used_cannot_be_created_again() {
    let mut board = Board::new();
    let outcomes = apply(
        &mut board,
        &[
            create(1, "a", Status::Todo),
            create(1, "again", Status::Todo),
            delete(2, 1, None),
            create(1, "resurrected", Status::Todo),
        ],
    );
    assert_eq!(rejection(&outcomes[1]), &Rejection::IdTaken { id: id(1) });
    assert_eq!(rejection(&outcomes[3]), &Rejection::IdTaken { id: id(1) });
    assert_eq!(board.last_seq(), 2, "rejections take no seq");
}

#[test]
fn update_changes_only_the_named_fields_and_records_old_and_new_values() {
    let mut board = Board::new();
    apply(&mut board, &[create(1, "a", Status::Todo)]);
    board.take_changes();
    let patch = TaskPatch {
        title: Some("b".into()),
        assignee: Some(Some("ana".into())),
        due_date: Some(Some(Date::parse("2026-12-01").unwrap())),
        ..TaskPatch::default()
    };
    let outcome = board.apply(2, 1, &update(2, 1, None, patch)).outcome;
    let Outcome::Updated { task, seq } = outcome else {
        panic!("expected updated, got {outcome:?}")
    };
    assert_eq!((task.title.as_str(), task.version, seq), ("b", 2, 2));
    assert_eq!(task.status, Status::Todo);
    assert_eq!(task.assignee.as_deref(), Some("ana"));
    assert_eq!(task.updated_at, Timestamp(1_700_000_000_002));
    assert_eq!(task.created_at, Timestamp(1_700_000_000_001));

    let event = board.take_changes().events.remove(0);
    let changed: Vec<&str> = event.changes.keys().map(String::as_str).collect();
    assert_eq!(changed, ["assignee", "due_date", "title"]);
    assert_eq!(event.changes["title"].from, "a");
    assert_eq!(event.changes["title"].to, "b");
    assert_eq!(event.changes["assignee"].from, serde_json::Value::Null);
}

#[test]
fn nullable_fields_are_cleared_by_null() {
    let mut board = Board::new();
    let set = TaskPatch {
        assignee: Some(Some("ana".into())),
        ..TaskPatch::default()
    };
    let clear = TaskPatch {
        assignee: Some(None),
        ..TaskPatch::default()
    };
    apply(
        &mut board,
        &[
            create(1, "a", Status::Todo),
            update(2, 1, None, set),
            update(3, 1, None, clear),
        ],
    );
    let task = board.task(&id(1)).unwrap();
    assert_eq!((task.assignee.clone(), task.version), (None, 3));
}

#[test]
fn an_update_that_changes_nothing_writes_no_event_and_keeps_the_version() {
    let mut board = Board::new();
    apply(&mut board, &[create(1, "a", Status::Todo)]);
    board.take_changes();
    let same = TaskPatch {
        title: Some("a".into()),
        status: Some(Status::Todo),
        ..TaskPatch::default()
    };
    let outcome = board.apply(2, 1, &update(2, 1, Some(1), same)).outcome;
    assert!(
        matches!(&outcome, Outcome::Unchanged { task, seq: 1 } if task.version == 1),
        "{outcome:?}"
    );
    assert_eq!(board.take_changes().events, vec![]);
}

#[test]
fn moving_to_another_column_without_a_position_goes_to_its_end() {
    let mut board = Board::new();
    let to_done = TaskPatch {
        status: Some(Status::Done),
        ..TaskPatch::default()
    };
    apply(
        &mut board,
        &[
            create(1, "a", Status::Done),
            create(2, "b", Status::Todo),
            update(3, 2, None, to_done),
        ],
    );
    let task = board.task(&id(2)).unwrap();
    assert_eq!((task.status, task.position), (Status::Done, 2048.0));
}

#[test]
fn an_explicit_position_is_kept_and_raises_the_column_end() {
    let mut board = Board::new();
    let move_far = TaskPatch {
        position: Some(10_000.5),
        ..TaskPatch::default()
    };
    apply(
        &mut board,
        &[
            create(1, "a", Status::Todo),
            update(2, 1, None, move_far),
            create(3, "b", Status::Todo),
        ],
    );
    assert_eq!(board.task(&id(1)).unwrap().position, 10_000.5);
    assert_eq!(board.task(&id(3)).unwrap().position, 11_024.5);
}

#[test]
fn a_stale_version_is_refused_with_the_current_task() {
    let mut board = Board::new();
    let rename = |n: u128, title: &str| TaskPatch {
        title: Some(format!("{title}{n}")),
        ..TaskPatch::default()
    };
    let outcomes = apply(
        &mut board,
        &[
            create(1, "a", Status::Todo),
            update(2, 1, Some(1), rename(2, "b")),
            update(3, 1, Some(1), rename(3, "c")),
            delete(4, 1, Some(1)),
        ],
    );
    assert!(matches!(outcomes[1], Outcome::Updated { .. }));
    for refused in &outcomes[2..] {
        let Rejection::VersionMismatch { expected, current } = rejection(refused) else {
            panic!("expected a version mismatch, got {refused:?}")
        };
        assert_eq!(
            (*expected, current.version, current.title.as_str()),
            (1, 2, "b2")
        );
    }
    assert!(
        board.task(&id(1)).is_some(),
        "a refused delete deletes nothing"
    );
}

#[test]
fn unknown_and_deleted_tasks_are_not_found() {
    let mut board = Board::new();
    let outcomes = apply(
        &mut board,
        &[
            update(
                1,
                9,
                None,
                TaskPatch {
                    title: Some("x".into()),
                    ..TaskPatch::default()
                },
            ),
            delete(2, 9, None),
            create(3, "a", Status::Todo),
            delete(4, 3, Some(1)),
            delete(5, 3, None),
            update(
                6,
                3,
                None,
                TaskPatch {
                    title: Some("x".into()),
                    ..TaskPatch::default()
                },
            ),
        ],
    );
    for i in [0, 1] {
        assert_eq!(rejection(&outcomes[i]), &Rejection::NotFound { id: id(9) });
    }
    assert!(matches!(&outcomes[3], Outcome::Deleted { seq: 2, task } if task.title == "a"));
    for i in [4, 5] {
        assert_eq!(rejection(&outcomes[i]), &Rejection::NotFound { id: id(3) });
    }
}

#[test]
fn a_retry_under_the_same_key_returns_the_first_outcome_and_writes_nothing() {
    let mut board = Board::new();
    let keyed = |n: u128, fingerprint: &str| Command {
        idempotency: Some(Idempotency {
            key: "k1".into(),
            fingerprint: fingerprint.into(),
        }),
        ..create(n, "a", Status::Todo)
    };
    let first = board.apply(1, 1, &keyed(1, "f"));
    let changes = board.take_changes();
    assert_eq!(changes.events.len(), 1);
    assert_eq!(changes.keys.len(), 1);

    // The retry went through another node: a new request id, a new task id.
    let retry = board.apply(2, 1, &keyed(2, "f"));
    assert!(retry.replayed);
    assert_eq!(retry.outcome, first.outcome);
    assert_eq!(
        board.take_changes(),
        Changes {
            last_seq: 1,
            ..Changes::default()
        }
    );
    assert!(board.task(&id(2)).is_none());

    let misuse = board.apply(3, 1, &keyed(3, "other request"));
    assert!(!misuse.replayed);
    assert_eq!(
        rejection(&misuse.outcome),
        &Rejection::KeyReused { key: "k1".into() }
    );
    assert!(
        board.take_changes().keys.is_empty(),
        "a misuse is not remembered"
    );
}

fn expire(n: u128, before: i64) -> Command {
    command(
        n,
        Op::ExpireKeys {
            before: Timestamp(before),
        },
    )
}

/// A create of task `n` under key `key`, stamped at `at`.
fn keyed_create(n: u128, key: &str, at: i64) -> Command {
    Command {
        idempotency: Some(Idempotency {
            key: key.into(),
            fingerprint: "f".into(),
        }),
        at: Timestamp(at),
        ..create(n, "a", Status::Todo)
    }
}

#[test]
fn an_expired_key_is_forgotten_and_its_retry_creates_a_new_task() {
    let mut board = Board::new();
    board.apply(1, 1, &keyed_create(1, "old", 1_000));
    board.apply(2, 1, &keyed_create(2, "young", 5_000));
    board.take_changes();

    let expired = board.apply(3, 1, &expire(3, 5_000));
    assert_eq!(
        expired.outcome,
        Outcome::KeysExpired {
            before: Timestamp(5_000)
        }
    );
    let changes = board.take_changes();
    assert_eq!(changes.expired_before, Some(Timestamp(5_000)));
    assert!(changes.events.is_empty() && changes.keys.is_empty());
    assert_eq!(
        board.remembered_keys().keys().collect::<Vec<_>>(),
        ["young"],
        "a key used at the cutoff or later stays"
    );

    // The retry of the expired key is a new request: a new task.
    let retry = board.apply(4, 1, &keyed_create(4, "old", 9_000));
    assert!(!retry.replayed);
    assert!(matches!(&retry.outcome, Outcome::Created { task, .. } if task.id == id(4)));
    assert!(board.task(&id(1)).is_some() && board.task(&id(4)).is_some());
    // The young key still replays.
    let again = board.apply(5, 1, &keyed_create(5, "young", 9_000));
    assert!(again.replayed);
}

#[test]
fn keys_of_the_same_run_before_a_cutoff_are_never_written_and_later_ones_are() {
    let mut board = Board::new();
    board.apply(1, 1, &keyed_create(1, "a", 1_000));
    board.apply(2, 1, &expire(2, 2_000));
    // Stamped before the cutoff (another node's clock), used after it.
    board.apply(3, 1, &keyed_create(3, "b", 1_500));
    board.apply(4, 1, &expire(4, 1_200));
    let changes = board.take_changes();
    assert_eq!(
        changes.expired_before,
        Some(Timestamp(2_000)),
        "the highest cutoff"
    );
    let written: Vec<&str> = changes.keys.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(written, ["b"], "`a` expired in the run, `b` came after");
    assert_eq!(board.remembered_keys().keys().collect::<Vec<_>>(), ["b"]);
}

#[test]
fn a_rejection_is_remembered_under_its_key_too() {
    let mut board = Board::new();
    let keyed = |n| Command {
        idempotency: Some(Idempotency {
            key: "k".into(),
            fingerprint: "f".into(),
        }),
        ..delete(n, 5, None)
    };
    let first = board.apply(1, 1, &keyed(1));
    apply(&mut board, &[create(5, "now it exists", Status::Todo)]);
    let retry = board.apply(3, 1, &keyed(2));
    assert_eq!(retry.outcome, first.outcome);
    assert!(board.task(&id(5)).is_some());
}

#[test]
fn take_changes_lists_final_states_once_per_task() {
    let mut board = Board::new();
    let rename = TaskPatch {
        title: Some("b".into()),
        ..TaskPatch::default()
    };
    apply(
        &mut board,
        &[
            create(1, "a", Status::Todo),
            update(2, 1, None, rename),
            create(3, "c", Status::InProgress),
            delete(4, 3, None),
        ],
    );
    let changes = board.take_changes();
    assert_eq!(changes.events.len(), 4);
    assert_eq!(changes.upserts.len(), 1);
    assert_eq!(changes.upserts[0].title, "b");
    assert_eq!(changes.deletes, vec![id(3)]);
    assert_eq!(changes.tails, Some(ColumnTails([1024.0, 1024.0, 0.0])));
    assert_eq!(changes.last_seq, 4);
    assert_eq!(
        board.take_changes().events,
        vec![],
        "changes are handed over once"
    );
}

#[test]
#[should_panic(expected = "was not loaded")]
fn a_partial_board_refuses_to_decide_about_an_id_it_was_not_given() {
    let mut board = Board::partial(0, ColumnTails::default());
    board.apply(1, 1, &create(1, "a", Status::Todo));
}

#[test]
fn commands_survive_a_trip_through_json() {
    let patch = TaskPatch {
        assignee: Some(None),
        due_date: Some(Some(Date::parse("2027-01-31").unwrap())),
        labels: Some(vec!["x".into()]),
        ..TaskPatch::default()
    };
    let original = Command {
        idempotency: Some(Idempotency {
            key: "k".into(),
            fingerprint: "f".into(),
        }),
        ..update(1, 2, Some(3), patch)
    };
    let json = serde_json::to_string(&original).unwrap();
    assert!(json.contains(r#""assignee":null"#), "{json}");
    let back: Command = serde_json::from_str(&json).unwrap();
    assert_eq!(back, original);
}

// ---- properties over random histories --------------------------------------

const IDS: u128 = 6;

fn arb_patch() -> impl Strategy<Value = TaskPatch> {
    (
        proptest::option::of("[a-c]{1,2}"),
        proptest::option::of(prop_oneof![
            Just(Status::Todo),
            Just(Status::InProgress),
            Just(Status::Done)
        ]),
        proptest::option::of((0u32..8).prop_map(|p| f64::from(p) * 512.0)),
        proptest::option::of(proptest::option::of("(ana|bo)")),
        proptest::option::of(proptest::collection::vec("(x|y|z)", 0..3)),
    )
        .prop_map(|(title, status, position, assignee, labels)| TaskPatch {
            title,
            status,
            position,
            assignee,
            labels,
            ..TaskPatch::default()
        })
}

fn comment_id(n: u128) -> CommentId {
    CommentId(Uuid::from_u128(0xc000 + n))
}

fn arb_op() -> impl Strategy<Value = Op> {
    let version = proptest::option::of(1u64..4);
    prop_oneof![
        3 => (0..IDS, "[a-c]{1,3}", proptest::option::of(0u32..4)).prop_map(|(n, title, pos)| {
            Op::Create(NewTask {
                id: id(n),
                title,
                description: String::new(),
                status: Status::ALL[(n % 3) as usize],
                position: pos.map(|p| f64::from(p) * 100.0),
                priority: Priority::High,
                assignee: None,
                labels: vec!["b".into(), "a".into(), "b".into()],
                due_date: None,
    board_id: None,
    column_id: None,
            })
        }),
        4 => (0..IDS, version.clone(), arb_patch())
            .prop_map(|(n, expected_version, patch)| Op::Update { id: id(n), expected_version, patch }),
        1 => (0..IDS, version).prop_map(|(n, expected_version)| Op::Delete { id: id(n), expected_version }),
        // Commands are stamped 1,000 ms apart: a cutoff anywhere in the run
        // (before or after the keys of the same batch).
        1 => (0i64..60).prop_map(|t| Op::ExpireKeys { before: Timestamp(t * 1_000 + 500) }),
        // Comments on a few ids, sometimes naming another task than theirs.
        2 => (0..IDS, 0u128..4, "[a-c]{1,3}").prop_map(|(n, c, body)| {
            Op::CommentAdd(NewComment { id: comment_id(c), task_id: id(n), body })
        }),
        2 => (0..IDS, 0u128..4, proptest::option::of(1u64..4), "[a-c]{1,3}").prop_map(
            |(n, c, expected_version, body)| Op::CommentEdit {
                id: comment_id(c),
                task_id: id(n),
                expected_version,
                body,
            },
        ),
        1 => (0..IDS, 0u128..4)
            .prop_map(|(n, c)| Op::CommentDelete { id: comment_id(c), task_id: id(n) }),
    ]
}

fn arb_commands() -> impl Strategy<Value = Vec<Command>> {
    let keyed = proptest::option::of((0u8..3, 0u8..2));
    proptest::collection::vec((arb_op(), keyed), 1..60).prop_map(|ops| {
        ops.into_iter()
            .enumerate()
            .map(|(i, (op, key))| Command {
                request_id: Uuid::from_u128(i as u128 + 1),
                idempotency: key.map(|(k, f)| Idempotency {
                    key: format!("key-{k}"),
                    fingerprint: format!("fp-{f}"),
                }),
                at: Timestamp(1_000 * i as i64),
                actor: Default::default(),
                op,
            })
            .collect()
    })
}

/// What the applier keeps in MySQL between batches, for the batching test.
#[derive(Default)]
struct Store {
    slots: HashMap<TaskId, Slot>,
    keys: HashMap<String, Remembered>,
    tails: ColumnTails,
    last_seq: u64,
    comments: BTreeMap<CommentId, Comment>,
}

impl Store {
    /// Applies one batch the way the applier does: load what the batch
    /// names into a partial board, apply, write the changes back.
    fn apply_batch(&mut self, first_index: u64, batch: &[Command]) -> (Vec<Outcome>, Vec<Event>) {
        let mut board = Board::partial(self.last_seq, self.tails);
        for command in batch {
            if let Some(id) = command.op.task_id() {
                board.load_task(id, self.slots.get(&id).cloned());
            }
            if let Some(idem) = &command.idempotency {
                board.load_key(idem.key.clone(), self.keys.get(&idem.key).cloned());
            }
            if let Some(id) = command.op.comment_id() {
                board.load_comment(id, self.comments.get(&id).cloned());
            }
        }
        let outcomes = batch
            .iter()
            .enumerate()
            .map(|(i, c)| board.apply(first_index + i as u64, 1, c).outcome)
            .collect();
        let changes = board.take_changes();
        for task in &changes.upserts {
            self.slots.insert(task.id, Slot::Live(task.clone()));
        }
        for id in &changes.deletes {
            self.slots.insert(*id, Slot::Deleted);
        }
        // As the applier writes them: comments, then those of deleted tasks.
        for comment in &changes.comment_upserts {
            self.comments.insert(comment.id, comment.clone());
        }
        for id in &changes.comment_deletes {
            self.comments.remove(id);
        }
        self.comments
            .retain(|_, c| !changes.deletes.contains(&c.task_id));
        // As the applier writes them: the expired keys deleted, then the new.
        if let Some(before) = changes.expired_before {
            self.keys.retain(|_, r| r.at >= before);
        }
        self.keys.extend(changes.keys.iter().cloned());
        if let Some(tails) = changes.tails {
            self.tails = tails;
        }
        self.last_seq = changes.last_seq;
        (outcomes, changes.events)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn replaying_the_events_rebuilds_the_same_tasks(commands in arb_commands()) {
        let mut board = Board::new();
        apply(&mut board, &commands);
        let events = board.take_changes().events;
        let replayed = replay(&events);
        prop_assert_eq!(&replayed.tasks, &board.tasks());
        prop_assert_eq!(replayed.tails, board.tails());
        prop_assert_eq!(replayed.last_seq, board.last_seq());
        prop_assert_eq!(&replayed.comments, &board.comments());
        let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
        prop_assert_eq!(seqs, (1..=events.len() as u64).collect::<Vec<_>>());
    }

    #[test]
    fn how_the_log_is_cut_into_batches_changes_nothing(
        commands in arb_commands(),
        cuts in proptest::collection::vec(1usize..8, 1..20),
    ) {
        let mut whole = Board::new();
        let expected_outcomes = apply(&mut whole, &commands);
        let expected_events = whole.take_changes().events;

        let mut store = Store::default();
        let (mut outcomes, mut events) = (vec![], vec![]);
        let mut start = 0;
        for cut in cuts.iter().cycle() {
            if start >= commands.len() {
                break;
            }
            let end = (start + cut).min(commands.len());
            let (o, e) = store.apply_batch(start as u64 + 1, &commands[start..end]);
            outcomes.extend(o);
            events.extend(e);
            start = end;
        }
        prop_assert_eq!(outcomes, expected_outcomes);
        prop_assert_eq!(events, expected_events);
        let live: BTreeMap<TaskId, Task> = store.slots.iter().filter_map(|(id, s)| match s {
            Slot::Live(t) => Some((*id, t.clone())),
            Slot::Deleted => None,
        }).collect();
        prop_assert_eq!(live, whole.tasks());
        let keys: BTreeMap<String, Remembered> = store.keys.clone().into_iter().collect();
        prop_assert_eq!(keys, whole.remembered_keys());
        prop_assert_eq!(&store.comments, &whole.comments());
    }

    #[test]
    fn labels_are_always_stored_sorted_and_unique(commands in arb_commands()) {
        let mut board = Board::new();
        apply(&mut board, &commands);
        for task in board.tasks().values() {
            let mut sorted = task.labels.clone();
            sorted.sort();
            sorted.dedup();
            prop_assert_eq!(&task.labels, &sorted);
        }
    }
}

/// `command` by the user `user` (their id, a UUID).
fn by(user: u128, mut command: Command) -> Command {
    command.actor = crate::accounts::Actor {
        id: Uuid::from_u128(user).to_string(),
        name: format!("user {user}"),
    };
    command
}

#[test]
fn a_users_card_commands_are_checked_against_their_board_role_at_that_entry() {
    use crate::accounts::Role;

    let (ana, bo, cy) = (0xa, 0xb, 0xc);
    let board_id = BoardId(Uuid::from_u128(0xb0));
    let columns = [0xc0, 0xc1, 0xc2].map(|n| ColumnId(Uuid::from_u128(n)));
    let mut board = Board::new();
    let mut index = 0;
    let mut run = |board: &mut Board, command: Command, site: Option<Role>| {
        index += 1;
        board.apply_as(index, 1, &command, site).outcome
    };
    // Ana makes a board (its admin); Bo is a member, Cy a viewer.
    let made = run(
        &mut board,
        by(
            ana,
            command(
                1,
                Op::BoardCreate(NewBoard {
                    id: board_id,
                    name: "Ops".into(),
                    columns,
                }),
            ),
        ),
        Some(Role::Member),
    );
    assert!(matches!(made, Outcome::Board { .. }), "{made:?}");
    for (n, user, role) in [(2, bo, BoardRole::Member), (3, cy, BoardRole::Viewer)] {
        let set = command(
            n,
            Op::BoardMemberSet {
                board_id,
                user_id: Uuid::from_u128(user).to_string(),
                role: Some(role),
            },
        );
        run(&mut board, by(ana, set), Some(Role::Member));
    }
    let on_board = |n: u128| {
        let mut c = create(n, "card", Status::Todo);
        if let Op::Create(new) = &mut c.op {
            new.board_id = Some(board_id);
        }
        c
    };
    let refused = |outcome: &Outcome| match rejection(outcome) {
        Rejection::Catalog { refused } => refused.clone(),
        other => panic!("expected a board refusal, got {other:?}"),
    };

    // A member creates; a viewer is read-only; someone not on it is told
    // there is no such board; a site admin may; the system is not checked.
    assert!(matches!(
        run(&mut board, by(bo, on_board(10)), Some(Role::Member)),
        Outcome::Created { .. }
    ));
    assert_eq!(
        refused(&run(&mut board, by(cy, on_board(11)), Some(Role::Member))),
        CatalogRejection::ReadOnly { id: board_id }
    );
    let stranger = 0xd;
    assert_eq!(
        refused(&run(
            &mut board,
            by(stranger, on_board(12)),
            Some(Role::Member)
        )),
        CatalogRejection::NotOnBoard { id: board_id }
    );
    assert!(matches!(
        run(&mut board, by(stranger, on_board(13)), Some(Role::Admin)),
        Outcome::Created { .. }
    ));
    assert!(matches!(
        run(&mut board, on_board(14), None),
        Outcome::Created { .. }
    ));
    // A default-board card moved onto the board by someone not on it: the
    // target board is checked too.
    run(&mut board, create(15, "default", Status::Todo), None);
    let onto = TaskPatch {
        board_id: Some(board_id),
        ..TaskPatch::default()
    };
    assert_eq!(
        refused(&run(
            &mut board,
            by(stranger, update(16, 15, None, onto)),
            Some(Role::Member)
        )),
        CatalogRejection::NotOnBoard { id: board_id }
    );

    // Bo is taken off the board: his next change, proposed before he
    // knew, is refused at its entry, and so is his delete.
    let off = command(
        17,
        Op::BoardMemberSet {
            board_id,
            user_id: Uuid::from_u128(bo).to_string(),
            role: None,
        },
    );
    run(&mut board, by(ana, off), Some(Role::Member));
    let rename = TaskPatch {
        title: Some("renamed".into()),
        ..TaskPatch::default()
    };
    assert_eq!(
        refused(&run(
            &mut board,
            by(bo, update(18, 10, None, rename)),
            Some(Role::Member)
        )),
        CatalogRejection::NotOnBoard { id: board_id }
    );
    assert_eq!(
        refused(&run(
            &mut board,
            by(bo, delete(19, 10, None)),
            Some(Role::Member)
        )),
        CatalogRejection::NotOnBoard { id: board_id }
    );
    // Ana still may.
    assert!(matches!(
        run(
            &mut board,
            by(ana, delete(20, 10, None)),
            Some(Role::Member)
        ),
        Outcome::Deleted { .. }
    ));
}

mod checklists;
mod columns;
mod comments;
