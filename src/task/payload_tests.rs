//! The stored event payload: each changed value once, and rows written in
//! the first format (every change with `from` and `to`) still decode and
//! fold to the same tasks.

use std::collections::BTreeMap;

use serde_json::json;
use uuid::Uuid;

use super::*;
use crate::time::{Date, Timestamp};

fn command(n: u128, op: Op) -> Command {
    Command {
        request_id: Uuid::from_u128(1_000 + n),
        idempotency: None,
        at: Timestamp(1_800_000_000_000 + n as i64),
        actor: Default::default(),
        op,
    }
}

fn new_task(id: TaskId, description: &str) -> Op {
    Op::Create(NewTask {
        id,
        title: "t".to_string(),
        description: description.to_string(),
        status: Status::Todo,
        position: None,
        priority: Priority::Medium,
        assignee: None,
        labels: vec![],
        due_date: None,
        board_id: None,
        column_id: None,
    })
}

fn stored(event: &Event) -> String {
    serde_json::to_string(&EventPayload::of(event)).unwrap()
}

fn decoded(text: &str) -> EventPayload {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("payload {text} does not decode: {e}"))
}

/// Events of a board that a few commands made, in order.
fn events_of(commands: &[Command]) -> Vec<Event> {
    let mut board = Board::new();
    for (i, c) in commands.iter().enumerate() {
        board.apply(i as u64 + 1, 1, c);
    }
    board.take_changes().events
}

#[test]
fn a_stored_update_holds_each_changed_value_once() {
    let id = TaskId(Uuid::from_u128(7));
    let old = "\\\"😀".repeat(5_000);
    let new = "'\\x".repeat(6_000);
    let events = events_of(&[
        command(1, new_task(id, &old)),
        command(
            2,
            Op::Update {
                id,
                expected_version: None,
                patch: TaskPatch {
                    description: Some(new.clone()),
                    ..TaskPatch::default()
                },
            },
        ),
    ]);
    let update = &events[1];
    assert_eq!(update.changes["description"].to, json!(new));
    let text = stored(update);
    let escaped = |s: &str| serde_json::to_string(s).unwrap();
    assert_eq!(
        text.matches(&escaped(&new)).count(),
        1,
        "the new description once"
    );
    assert_eq!(
        text.matches(&escaped(&old)).count(),
        1,
        "the old description once"
    );
    let head: String = text.chars().take(200).collect();
    assert!(!text.contains("\"to\""), "no `to` is stored: {head}");
    let back = decoded(&text);
    assert_eq!(
        (back.task, back.changes),
        (update.task.clone(), update.changes.clone())
    );
}

#[test]
fn every_event_of_a_busy_board_round_trips_through_its_stored_form() {
    let ids: Vec<TaskId> = (0..4).map(|n| TaskId(Uuid::from_u128(100 + n))).collect();
    let mut commands = Vec::new();
    for (n, &id) in ids.iter().enumerate() {
        commands.push(command(n as u128, new_task(id, "")));
    }
    let patches = [
        TaskPatch {
            title: Some("renamed \"quoted\" \\ 😀".into()),
            ..TaskPatch::default()
        },
        TaskPatch {
            status: Some(Status::Done),
            position: Some(-0.5),
            ..TaskPatch::default()
        },
        TaskPatch {
            assignee: Some(Some("ana".into())),
            labels: Some(vec!["b".into(), "a".into(), "a".into()]),
            due_date: Some(Date::parse("2026-12-01")),
            ..TaskPatch::default()
        },
        TaskPatch {
            assignee: Some(None),
            due_date: Some(None),
            priority: Some(Priority::Urgent),
            description: Some("x".repeat(20_000)),
            ..TaskPatch::default()
        },
    ];
    for (n, patch) in patches.iter().cycle().take(16).enumerate() {
        // Each task gets every patch in turn: assigned, then unassigned.
        let id = ids[(n / patches.len()) % ids.len()];
        let op = Op::Update {
            id,
            expected_version: None,
            patch: patch.clone(),
        };
        commands.push(command(100 + n as u128, op));
    }
    commands.push(command(
        999,
        Op::Delete {
            id: ids[0],
            expected_version: None,
        },
    ));
    let events = events_of(&commands);
    assert!(events
        .iter()
        .any(|e| e.changes.contains_key("assignee") && e.changes["assignee"].to.is_null()));
    for event in &events {
        let back = decoded(&stored(event));
        assert_eq!(back.task, event.task, "seq {}", event.seq);
        assert_eq!(back.changes, event.changes, "seq {}", event.seq);
    }
}

/// Two rows as the first format stored them: a create and an update that
/// changed the title, set an assignee and cleared the due date.
const FIRST_FORMAT_ROWS: [&str; 2] = [
    r#"{"task":{"id":"00000000-0000-0000-0000-00000000002a","title":"Write \"the\" report","description":"C:\\tmp 😀","status":"todo","position":1024.0,"priority":"medium","assignee":null,"labels":["docs"],"due_date":"2026-12-01","version":1,"created_at":"2026-11-24T10:00:00.000Z","updated_at":"2026-11-24T10:00:00.000Z"}}"#,
    r#"{"task":{"id":"00000000-0000-0000-0000-00000000002a","title":"Ship it","description":"C:\\tmp 😀","status":"todo","position":1024.0,"priority":"medium","assignee":"ana","labels":["docs"],"due_date":null,"version":2,"created_at":"2026-11-24T10:00:00.000Z","updated_at":"2026-11-24T10:05:12.345Z"},"changes":{"assignee":{"from":null,"to":"ana"},"due_date":{"from":"2026-12-01","to":null},"title":{"from":"Write \"the\" report","to":"Ship it"}}}"#,
];

#[test]
fn rows_of_the_first_format_decode_and_fold_as_they_did() {
    let payloads: Vec<EventPayload> = FIRST_FORMAT_ROWS.into_iter().map(decoded).collect();
    let update = &payloads[1];
    let expected: BTreeMap<String, FieldChange> = [
        ("assignee", json!(null), json!("ana")),
        ("due_date", json!("2026-12-01"), json!(null)),
        ("title", json!("Write \"the\" report"), json!("Ship it")),
    ]
    .into_iter()
    .map(|(field, from, to)| (field.to_string(), FieldChange { from, to }))
    .collect();
    assert_eq!(update.changes, expected);

    let events: Vec<Event> = payloads
        .iter()
        .enumerate()
        .map(|(i, payload)| Event {
            seq: i as u64 + 1,
            raft_index: i as u64 + 10,
            ordinal: 0,
            term: 2,
            event_id: Uuid::from_u128(i as u128),
            kind: if i == 0 {
                EventKind::TaskCreated
            } else {
                EventKind::TaskUpdated
            },
            task_id: payload.task.as_ref().map(|t| t.id),
            task: payload.task.clone(),
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
            changes: payload.changes.clone(),
            at: payload.task.as_ref().unwrap().updated_at,
            request_id: Uuid::from_u128(i as u128),
            actor: payload.actor.clone(),
        })
        .collect();
    let folded = replay(&events);
    let task = &folded.tasks[&TaskId(Uuid::from_u128(42))];
    assert_eq!(task.title, "Ship it");
    assert_eq!(task.description, "C:\\tmp 😀");
    assert_eq!(task.assignee.as_deref(), Some("ana"));
    assert_eq!(task.due_date, None);
    assert_eq!(task.version, 2);

    // Written again, the same event is smaller and decodes the same.
    let rewritten = serde_json::to_string(update).unwrap();
    assert!(rewritten.len() < FIRST_FORMAT_ROWS[1].len());
    assert_eq!(&decoded(&rewritten), update);
}

#[test]
fn a_stored_change_of_an_unknown_field_is_refused_not_guessed() {
    let row = FIRST_FORMAT_ROWS[1].replace(
        r#""title":{"from":"Write \"the\" report","to":"Ship it"}"#,
        r#""colour":{"from":"red"}"#,
    );
    let err = serde_json::from_str::<EventPayload>(&row).unwrap_err();
    assert!(err.to_string().contains("colour"), "{err}");
}
