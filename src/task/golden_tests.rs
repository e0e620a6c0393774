//! Golden fixtures: commands as the Raft log holds them, events as the
//! WebSocket and the `task_events.payload` column hold them, and outcomes
//! as `idempotency_keys.outcome` holds them, each written once by this
//! version into `tests/fixtures/log/`. They must decode, for ever, to the
//! values below: a log entry or a row written today is read by every later
//! version (an upgraded node replays its log and reads its tables).
//!
//! Files are never rewritten. A format change adds fixtures; it never edits
//! one. `TASKRAFT_BLESS_FIXTURES=1` writes the fixtures that are missing
//! (a new kind's), from the encoders of the build that runs it.
//!
//! Every [`Op`] kind must have fixtures: [`every_kind_has_a_fixture`]
//! matches on it exhaustively, so a new kind does not compile until it is
//! listed there.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::json;
use uuid::Uuid;

use super::*;
use crate::accounts::{Actor, NewSession, NewToken, NewUser, Role, UserUpdate};
use crate::raft::proposal::{decode_command, encode_command};
use crate::time::{Date, Timestamp};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/log")
}

/// The fixture `name`'s bytes; with `TASKRAFT_BLESS_FIXTURES=1`, a missing
/// one is first written as `fresh` encodes it.
fn fixture(name: &str, fresh: impl FnOnce() -> Vec<u8>) -> Vec<u8> {
    let path = dir().join(name);
    if !path.exists() && std::env::var_os("TASKRAFT_BLESS_FIXTURES").is_some() {
        std::fs::create_dir_all(dir()).expect("fixture dir");
        std::fs::write(&path, fresh()).expect("fixture written");
    }
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "fixture {} is missing ({e}); golden fixtures are never deleted \
             (TASKRAFT_BLESS_FIXTURES=1 writes a new kind's)",
            path.display()
        )
    })
}

fn id(n: u128) -> TaskId {
    TaskId(Uuid::from_u128(n))
}

fn at(n: i64) -> Timestamp {
    Timestamp(1_767_225_600_000 + n)
}

fn key(name: &str) -> Option<Idempotency> {
    Some(Idempotency {
        key: name.to_string(),
        fingerprint: format!("{:064x}", name.len()),
    })
}

/// A user, as commands and events written since accounts name one.
fn ada() -> Actor {
    Actor {
        id: Uuid::from_u128(0x3000).to_string(),
        name: "ada".into(),
    }
}

/// The fixtures of commands: (file name, the command it decodes to).
/// Those written before accounts carry no actor and decode as `system`.
fn commands() -> Vec<(&'static str, Command)> {
    let command = |n: u128, idempotency, op| Command {
        request_id: Uuid::from_u128(0x1000 + n),
        idempotency,
        at: at(n as i64),
        actor: Actor::system(),
        op,
    };
    let by = |actor: Actor, n: u128, idempotency, op| Command {
        actor,
        ..command(n, idempotency, op)
    };
    vec![
        (
            "command_create_minimal.json",
            command(
                1,
                None,
                Op::Create(NewTask {
                    id: id(1),
                    title: "Write the runbook".into(),
                    description: String::new(),
                    status: Status::Todo,
                    position: None,
                    priority: Priority::Medium,
                    assignee: None,
                    labels: vec![],
                    due_date: None,
                    board_id: None,
                    column_id: None,
                }),
            ),
        ),
        (
            "command_create_full_with_key.json",
            command(
                2,
                key("create-2"),
                Op::Create(NewTask {
                    id: id(2),
                    title: "Ünïcode \"quoted\" 😀".into(),
                    description: "# Markdown\n\n- line\\two".into(),
                    status: Status::InProgress,
                    position: Some(1536.25),
                    priority: Priority::Urgent,
                    assignee: Some("ada".into()),
                    labels: vec!["ops".into(), "backend".into()],
                    due_date: Date::new(2026, 2, 28),
                    board_id: None,
                    column_id: None,
                }),
            ),
        ),
        (
            "command_update_title.json",
            command(
                3,
                None,
                Op::Update {
                    id: id(1),
                    expected_version: None,
                    patch: TaskPatch {
                        title: Some("Write the upgrade runbook".into()),
                        ..TaskPatch::default()
                    },
                },
            ),
        ),
        (
            "command_update_every_field_expected_version_with_key.json",
            command(
                4,
                key("update-4"),
                Op::Update {
                    id: id(2),
                    expected_version: Some(3),
                    patch: TaskPatch {
                        title: Some("t".into()),
                        description: Some("d".into()),
                        status: Some(Status::Done),
                        position: Some(-0.5),
                        priority: Some(Priority::Low),
                        assignee: Some(Some("grace".into())),
                        labels: Some(vec!["x".into()]),
                        due_date: Some(Date::new(2030, 12, 31)),
                        archived: None,
                        board_id: None,
                        column_id: None,
                    },
                },
            ),
        ),
        (
            "command_update_clears.json",
            command(
                5,
                None,
                Op::Update {
                    id: id(2),
                    expected_version: None,
                    patch: TaskPatch {
                        assignee: Some(None),
                        labels: Some(vec![]),
                        due_date: Some(None),
                        ..TaskPatch::default()
                    },
                },
            ),
        ),
        (
            "command_delete.json",
            command(
                6,
                None,
                Op::Delete {
                    id: id(1),
                    expected_version: None,
                },
            ),
        ),
        (
            "command_expire_keys.json",
            command(
                8,
                None,
                Op::ExpireKeys {
                    before: Timestamp(1_766_620_800_000),
                },
            ),
        ),
        (
            "command_delete_expected_version_with_key.json",
            command(
                7,
                key("delete-7"),
                Op::Delete {
                    id: id(2),
                    expected_version: Some(5),
                },
            ),
        ),
        // Since accounts (0.2.0): a task command names who asked.
        (
            "command_create_by_user_with_key.json",
            by(
                ada(),
                9,
                key("create-9"),
                Op::Create(NewTask {
                    id: id(9),
                    title: "Rotate the cluster secret".into(),
                    description: String::new(),
                    status: Status::Todo,
                    position: None,
                    priority: Priority::High,
                    assignee: None,
                    labels: vec![],
                    due_date: None,
                    board_id: None,
                    column_id: None,
                }),
            ),
        ),
        (
            "command_bootstrap_admin.json",
            command(
                10,
                None,
                Op::BootstrapAdmin(NewUser {
                    id: Uuid::from_u128(0x3000),
                    username: "ada".into(),
                    display_name: "ada".into(),
                    role: Role::Admin,
                    password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA".into(),
                }),
            ),
        ),
        (
            "command_user_create.json",
            by(
                ada(),
                11,
                None,
                Op::UserCreate(NewUser {
                    id: Uuid::from_u128(0x3001),
                    username: "grace".into(),
                    display_name: "Grace Hopper".into(),
                    role: Role::Member,
                    password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$Z3JhY2U".into(),
                }),
            ),
        ),
        (
            "command_user_update_every_field.json",
            by(
                ada(),
                12,
                None,
                Op::UserUpdate(UserUpdate {
                    id: Uuid::from_u128(0x3001),
                    role: Some(Role::Viewer),
                    disabled: Some(true),
                    display_name: Some("G. Hopper".into()),
                    password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$bmV3".into()),
                }),
            ),
        ),
        (
            "command_user_update_role.json",
            by(
                ada(),
                13,
                None,
                Op::UserUpdate(UserUpdate {
                    id: Uuid::from_u128(0x3001),
                    role: Some(Role::Admin),
                    ..UserUpdate::default()
                }),
            ),
        ),
        (
            "command_session_create.json",
            by(
                ada(),
                14,
                None,
                Op::SessionCreate(NewSession {
                    hash: format!("{:064x}", 14),
                    user_id: Uuid::from_u128(0x3000),
                    expires_at: at(86_400_000),
                }),
            ),
        ),
        (
            "command_session_end.json",
            by(
                ada(),
                15,
                None,
                Op::SessionEnd {
                    hash: format!("{:064x}", 14),
                },
            ),
        ),
        (
            "command_token_create.json",
            by(
                ada(),
                16,
                None,
                Op::TokenCreate(NewToken {
                    id: Uuid::from_u128(0x4000),
                    hash: format!("{:064x}", 16),
                    user_id: Uuid::from_u128(0x3000),
                    name: "ci".into(),
                    expires_at: Some(at(30 * 86_400_000)),
                }),
            ),
        ),
        (
            "command_token_create_no_expiry.json",
            by(
                ada(),
                17,
                None,
                Op::TokenCreate(NewToken {
                    id: Uuid::from_u128(0x4001),
                    hash: format!("{:064x}", 17),
                    user_id: Uuid::from_u128(0x3001),
                    name: "laptop".into(),
                    expires_at: None,
                }),
            ),
        ),
        (
            "command_token_revoke.json",
            by(
                ada(),
                18,
                None,
                Op::TokenRevoke {
                    id: Uuid::from_u128(0x4000),
                },
            ),
        ),
        (
            "command_prune_sessions.json",
            by(
                Actor::system(),
                19,
                None,
                Op::PruneSessions {
                    before: at(7 * 86_400_000),
                },
            ),
        ),
        // Since 0.3.0: the cluster version in the log, and recoveries.
        (
            "command_set_cluster_version.json",
            by(
                Actor::system(),
                20,
                None,
                Op::SetClusterVersion {
                    version: "0.3.0".into(),
                },
            ),
        ),
        (
            "command_record_recovery.json",
            by(Actor::system(), 21, None, Op::RecordRecovery(recovery())),
        ),
        (
            "command_board_create.json",
            by(
                ada(),
                30,
                None,
                Op::BoardCreate(NewBoard {
                    id: BoardId(Uuid::from_u128(0x4000)),
                    name: "Launch \"Q3\" 🚀".into(),
                    columns: [
                        ColumnId(Uuid::from_u128(0x4001)),
                        ColumnId(Uuid::from_u128(0x4002)),
                        ColumnId(Uuid::from_u128(0x4003)),
                    ],
                }),
            ),
        ),
        (
            "command_board_update.json",
            by(
                ada(),
                31,
                None,
                Op::BoardUpdate {
                    id: BoardId(Uuid::from_u128(0x4000)),
                    name: Some("Launch".into()),
                    archived: Some(true),
                },
            ),
        ),
        (
            "command_board_member_set.json",
            by(
                ada(),
                32,
                None,
                Op::BoardMemberSet {
                    board_id: BoardId(Uuid::from_u128(0x4000)),
                    user_id: Uuid::from_u128(0x3001).to_string(),
                    role: Some(BoardRole::Viewer),
                },
            ),
        ),
        (
            "command_column_create.json",
            by(
                ada(),
                33,
                None,
                Op::ColumnCreate(NewColumn {
                    id: ColumnId(Uuid::from_u128(0x4004)),
                    board_id: BoardId(Uuid::from_u128(0x4000)),
                    name: "Review".into(),
                    position: Some(2560.0),
                    wip_limit: Some(3),
                    color: Some("#aa3300".into()),
                    category: Some(Status::InProgress),
                    archive_after_days: None,
                }),
            ),
        ),
        (
            "command_column_update.json",
            by(
                ada(),
                34,
                None,
                Op::ColumnUpdate {
                    id: ColumnId(Uuid::from_u128(0x4004)),
                    expected_version: None,
                    patch: ColumnPatch {
                        name: Some("Code review".into()),
                        wip_limit: Some(None),
                        ..ColumnPatch::default()
                    },
                },
            ),
        ),
        (
            "command_column_update_auto_archive.json",
            by(
                ada(),
                36,
                None,
                Op::ColumnUpdate {
                    id: ColumnId(Uuid::from_u128(0x4004)),
                    expected_version: None,
                    patch: ColumnPatch {
                        archive_after_days: Some(Some(30)),
                        ..ColumnPatch::default()
                    },
                },
            ),
        ),
        (
            "command_column_delete.json",
            by(
                ada(),
                35,
                None,
                Op::ColumnDelete {
                    id: ColumnId(Uuid::from_u128(0x4004)),
                    expected_version: None,
                },
            ),
        ),
        (
            "command_column_update_if_match.json",
            by(
                ada(),
                37,
                None,
                Op::ColumnUpdate {
                    id: ColumnId(Uuid::from_u128(0x4004)),
                    expected_version: Some(2),
                    patch: ColumnPatch {
                        position: Some(512.0),
                        ..ColumnPatch::default()
                    },
                },
            ),
        ),
        (
            "command_column_delete_if_match.json",
            by(
                ada(),
                38,
                None,
                Op::ColumnDelete {
                    id: ColumnId(Uuid::from_u128(0x4004)),
                    expected_version: Some(3),
                },
            ),
        ),
        (
            "command_create_on_board.json",
            by(
                ada(),
                36,
                key("create-on-board"),
                Op::Create(NewTask {
                    id: id(40),
                    title: "Placed".into(),
                    description: String::new(),
                    status: Status::Todo,
                    position: None,
                    priority: Priority::Medium,
                    assignee: None,
                    labels: vec![],
                    due_date: None,
                    board_id: Some(BoardId(Uuid::from_u128(0x4000))),
                    column_id: Some(ColumnId(Uuid::from_u128(0x4004))),
                }),
            ),
        ),
        (
            "command_update_move_archive.json",
            by(
                ada(),
                37,
                None,
                Op::Update {
                    id: id(40),
                    expected_version: Some(1),
                    patch: TaskPatch {
                        board_id: Some(DEFAULT_BOARD),
                        column_id: Some(ColumnId(Uuid::from_u128(0x4001))),
                        archived: Some(true),
                        ..TaskPatch::default()
                    },
                },
            ),
        ),
        (
            "command_checklist_item_update.json",
            by(
                ada(),
                41,
                None,
                Op::Checklist(crate::task::checklist::ChecklistCommand {
                    id: crate::task::ChecklistId(Uuid::from_u128(0x6001)),
                    task_id: id(40),
                    expected_version: Some(3),
                    action: crate::task::checklist::ChecklistAction::UpdateItem {
                        item: crate::task::ItemId(Uuid::from_u128(0x6101)),
                        text: Some("Write \"it\" 🚀".into()),
                        done: Some(true),
                        position: Some(0),
                    },
                }),
            ),
        ),
        (
            "command_checklist_create_with_key.json",
            by(
                ada(),
                42,
                key("checklist-1"),
                Op::Checklist(crate::task::checklist::ChecklistCommand {
                    id: crate::task::ChecklistId(Uuid::from_u128(0x6001)),
                    task_id: id(40),
                    expected_version: None,
                    action: crate::task::checklist::ChecklistAction::Create {
                        title: "Checklist".into(),
                    },
                }),
            ),
        ),
        (
            "command_comment_add.json",
            by(
                ada(),
                38,
                None,
                Op::CommentAdd(NewComment {
                    id: comment_id(),
                    task_id: id(40),
                    body: "Looks \"good\" \\o/ 🚀\n\n- [x] *done*".into(),
                }),
            ),
        ),
        (
            "command_comment_add_with_key.json",
            by(
                ada(),
                39,
                key("comment-1"),
                Op::CommentAdd(NewComment {
                    id: CommentId(Uuid::from_u128(0x5002)),
                    task_id: id(40),
                    body: "Second".into(),
                }),
            ),
        ),
        (
            "command_comment_edit.json",
            by(
                ada(),
                40,
                None,
                Op::CommentEdit {
                    id: comment_id(),
                    task_id: id(40),
                    expected_version: None,
                    body: "Edited".into(),
                },
            ),
        ),
        (
            "command_comment_edit_expected_version_with_key.json",
            by(
                ada(),
                41,
                key("comment-edit"),
                Op::CommentEdit {
                    id: comment_id(),
                    task_id: id(40),
                    expected_version: Some(2),
                    body: "Edited again".into(),
                },
            ),
        ),
        (
            "command_comment_delete.json",
            by(
                ada(),
                42,
                None,
                Op::CommentDelete {
                    id: comment_id(),
                    task_id: id(40),
                },
            ),
        ),
        (
            "command_comment_delete_with_key.json",
            by(
                ada(),
                43,
                key("comment-delete"),
                Op::CommentDelete {
                    id: CommentId(Uuid::from_u128(0x5002)),
                    task_id: id(40),
                },
            ),
        ),
        (
            "command_notifications_read.json",
            by(
                ada(),
                44,
                None,
                Op::NotificationsRead(ReadMark {
                    user_id: ada().id,
                    upto: Some(30),
                    ids: vec![41, 45],
                }),
            ),
        ),
        (
            "command_due_remind.json",
            command(
                45,
                None,
                Op::DueRemind {
                    task_id: id(40),
                    due_date: Date::new(2026, 2, 28).unwrap(),
                },
            ),
        ),
        (
            "command_webhook_add.json",
            by(
                ada(),
                46,
                None,
                Op::WebhookAdd(NewWebhook {
                    id: webhook_id(),
                    board_id: board().id,
                    url: "https://hooks.example.com/T0/B0?x=\"1\"".into(),
                    events: vec![EventKind::TaskCreated, EventKind::CommentAdded],
                    description: "Team chat 🚀".into(),
                    secret: "0f".repeat(32),
                }),
            ),
        ),
        (
            "command_webhook_remove.json",
            by(
                ada(),
                47,
                None,
                Op::WebhookRemove {
                    id: webhook_id(),
                    board_id: board().id,
                },
            ),
        ),
        (
            "command_webhook_progress.json",
            by(
                crate::webhooks::actor(),
                48,
                None,
                Op::WebhookProgress(progress()),
            ),
        ),
    ]
}

fn webhook_id() -> WebhookId {
    WebhookId(Uuid::from_u128(0x6001))
}

fn webhook() -> Webhook {
    Webhook {
        id: webhook_id(),
        board_id: board().id,
        url: "https://hooks.example.com/T0/B0?x=\"1\"".into(),
        events: vec![EventKind::TaskCreated, EventKind::CommentAdded],
        description: "Team chat 🚀".into(),
        created_at: at(46),
        created_by: ada(),
    }
}

fn progress() -> Progress {
    use crate::task::webhook::Attempt;
    Progress {
        webhook_id: webhook_id(),
        board_id: board().id,
        delivered_seq: 30,
        attempts: vec![
            Attempt {
                seq: 30,
                attempt: 1,
                at: at(47),
                status: Some(500),
                error: None,
                duration_ms: 12,
            },
            Attempt {
                seq: 30,
                attempt: 2,
                at: at(48),
                status: None,
                error: Some("connection refused".into()),
                duration_ms: 3,
            },
            Attempt {
                seq: 30,
                attempt: 3,
                at: at(49),
                status: Some(204),
                error: None,
                duration_ms: 40,
            },
        ],
    }
}

fn comment_id() -> CommentId {
    CommentId(Uuid::from_u128(0x5001))
}

fn comment(version: u64) -> Comment {
    Comment {
        id: comment_id(),
        task_id: id(40),
        board_id: board().id,
        author: ada(),
        body: format!("Looks \"good\" \\o/ 🚀 (v{version})"),
        version,
        created_at: at(38),
        updated_at: at(37 + version as i64),
    }
}

fn checklist() -> crate::task::Checklist {
    crate::task::Checklist {
        id: crate::task::ChecklistId(Uuid::from_u128(0x6001)),
        task_id: id(40),
        board_id: board().id,
        title: "Launch \"day\" 🚀".into(),
        items: vec![crate::task::checklist::ChecklistItem {
            id: crate::task::ItemId(Uuid::from_u128(0x6101)),
            text: "Write \\it\\".into(),
            done: true,
        }],
        version: 3,
        created_at: at(41),
        updated_at: at(42),
    }
}

fn recovery() -> crate::audit::RecoveryRecord {
    crate::audit::RecoveryRecord {
        node_id: 1,
        previous_cluster_id: "c0ffee".into(),
        cluster_id: "c0ffee-r1".into(),
        previous_voters: vec![1, 2, 3],
        previous_learners: vec![],
        previous_last_index: 1234,
        recovered_at: at(99),
    }
}

fn task(version: u64) -> Task {
    Task {
        id: id(2),
        title: "Ünïcode \"quoted\" 😀".into(),
        description: "# Markdown".into(),
        status: Status::InProgress,
        position: 1536.25,
        priority: Priority::Urgent,
        assignee: Some("ada".into()),
        labels: vec!["backend".into(), "ops".into()],
        due_date: Date::new(2026, 2, 28),
        version,
        created_at: at(2),
        updated_at: at(version as i64),
        archived: false,
        board_id: crate::task::DEFAULT_BOARD,
        column_id: None,
    }
}

/// The fixtures of events: (file name, the event it decodes to). Those
/// written before accounts carry no actor and decode as `system`.
fn events() -> Vec<(&'static str, Event)> {
    let event = |seq: u64, kind, task: Task, changes| Event {
        seq,
        raft_index: 10 + seq,
        ordinal: 0,
        term: 2,
        event_id: Uuid::from_u128(0x2000 + u128::from(seq)),
        task_id: Some(task.id),
        at: task.updated_at,
        task: Some(task),
        changes,
        request_id: Uuid::from_u128(0x2000 + u128::from(seq)),
        actor: Actor::system(),
        ..Event::blank(kind)
    };
    let mut changes = BTreeMap::new();
    changes.insert(
        "assignee".to_string(),
        FieldChange {
            from: json!(null),
            to: json!("ada"),
        },
    );
    changes.insert(
        "position".to_string(),
        FieldChange {
            from: json!(1024.0),
            to: json!(1536.25),
        },
    );
    vec![
        (
            "event_task_created.json",
            event(1, EventKind::TaskCreated, task(1), BTreeMap::new()),
        ),
        (
            "event_task_updated.json",
            event(2, EventKind::TaskUpdated, task(2), changes),
        ),
        (
            "event_task_deleted.json",
            event(3, EventKind::TaskDeleted, task(2), BTreeMap::new()),
        ),
        // Since accounts (0.2.0): who asked.
        (
            "event_task_created_by_user.json",
            Event {
                actor: ada(),
                ..event(4, EventKind::TaskCreated, task(1), BTreeMap::new())
            },
        ),
        // Since 0.3.0: events that are not about a task.
        ("event_user_created.json", {
            let mut e = other(5, EventKind::UserCreated);
            e.user = Some(user(false));
            e
        }),
        ("event_user_updated.json", {
            let mut e = other(6, EventKind::UserUpdated);
            e.user = Some(user(true));
            e.changes.insert(
                "disabled".into(),
                FieldChange {
                    from: json!(false),
                    to: json!(true),
                },
            );
            e.changes.insert(
                "password".into(),
                FieldChange {
                    from: json!(null),
                    to: json!("changed"),
                },
            );
            e
        }),
        ("event_cluster_member_added.json", {
            let mut e = other(7, EventKind::ClusterMemberAdded);
            e.member = Some(crate::audit::MemberRecord {
                id: 4,
                change: crate::audit::MemberChange::Added,
                raft_addr: Some("10.0.0.4:7000".into()),
                url: Some("https://node-4.example:8080".into()),
            });
            e
        }),
        ("event_cluster_member_removed.json", {
            let mut e = other(8, EventKind::ClusterMemberRemoved);
            e.member = Some(crate::audit::MemberRecord {
                id: 4,
                change: crate::audit::MemberChange::Removed,
                raft_addr: None,
                url: None,
            });
            e
        }),
        ("event_cluster_recovered.json", {
            let mut e = other(9, EventKind::ClusterRecovered);
            e.recovery = Some(recovery());
            e.actor = Actor::system();
            e
        }),
        ("event_board_created.json", {
            let mut e = other(10, EventKind::BoardCreated);
            e.board = Some(board());
            e
        }),
        ("event_board_updated.json", {
            let mut e = other(11, EventKind::BoardUpdated);
            e.board = Some(BoardRecord {
                archived: true,
                ..board()
            });
            e.changes.insert(
                "archived".into(),
                FieldChange {
                    from: json!(false),
                    to: json!(true),
                },
            );
            e
        }),
        ("event_board_member_changed.json", {
            let mut e = other(12, EventKind::BoardMemberChanged);
            e.board_member = Some(BoardMember {
                board_id: board().id,
                user_id: Uuid::from_u128(0x3001).to_string(),
                role: None,
            });
            e
        }),
        ("event_column_created.json", {
            let mut e = other(13, EventKind::ColumnCreated);
            e.column = Some(column());
            e
        }),
        ("event_column_updated.json", {
            let mut e = other(14, EventKind::ColumnUpdated);
            e.column = Some(Column {
                wip_limit: None,
                ..column()
            });
            e.changes.insert(
                "wip_limit".into(),
                FieldChange {
                    from: json!(3),
                    to: json!(null),
                },
            );
            e
        }),
        ("event_column_updated_auto_archive.json", {
            let mut e = other(17, EventKind::ColumnUpdated);
            e.column = Some(Column {
                archive_after_days: Some(30),
                ..column()
            });
            e.changes.insert(
                "archive_after_days".into(),
                FieldChange {
                    from: json!(null),
                    to: json!(30),
                },
            );
            e
        }),
        ("event_column_updated_versioned.json", {
            let mut e = other(27, EventKind::ColumnUpdated);
            e.column = Some(Column {
                position: 512.0,
                ..versioned_column(3)
            });
            e.changes.insert(
                "position".into(),
                FieldChange {
                    from: json!(2560.0),
                    to: json!(512.0),
                },
            );
            e
        }),
        ("event_column_deleted.json", {
            let mut e = other(15, EventKind::ColumnDeleted);
            e.column = Some(column());
            e
        }),
        ("event_checklist_changed.json", {
            let mut e = other(21, EventKind::ChecklistChanged);
            e.task_id = Some(id(40));
            e.checklist = Some(checklist());
            e.checklist_change = Some(crate::task::checklist::ChecklistChange::ItemUpdated {
                item: crate::task::ItemId(Uuid::from_u128(0x6101)),
                text_from: Some("Write it".into()),
                done_from: Some(false),
                position_from: Some(1),
            });
            e
        }),
        ("event_checklist_item_removed.json", {
            let mut e = other(22, EventKind::ChecklistChanged);
            e.task_id = Some(id(40));
            e.checklist = Some(checklist());
            e.checklist_change = Some(crate::task::checklist::ChecklistChange::ItemRemoved {
                item: crate::task::checklist::ChecklistItem {
                    id: crate::task::ItemId(Uuid::from_u128(0x6102)),
                    text: "Gone".into(),
                    done: false,
                },
                position: 1,
            });
            e
        }),
        ("event_comment_added.json", {
            let mut e = other(18, EventKind::CommentAdded);
            e.task_id = Some(id(40));
            e.comment = Some(comment(1));
            e
        }),
        ("event_comment_edited.json", {
            let mut e = other(19, EventKind::CommentEdited);
            e.task_id = Some(id(40));
            e.comment = Some(comment(2));
            e
        }),
        ("event_comment_deleted.json", {
            let mut e = other(20, EventKind::CommentDeleted);
            e.task_id = Some(id(40));
            e.comment = Some(comment(2));
            e
        }),
        ("event_task_created_on_board.json", {
            let mut e = other(16, EventKind::TaskCreated);
            let t = Task {
                board_id: board().id,
                column_id: Some(column().id),
                archived: true,
                ..task(3)
            };
            e.task_id = Some(t.id);
            e.task = Some(t);
            e
        }),
        ("event_notification_added.json", {
            let mut e = other(21, EventKind::NotificationAdded);
            e.ordinal = 1;
            e.notification = Some(NotificationChange::Added(Notice {
                user_id: "00000000-0000-0000-0000-00000000b0b0".into(),
                kind: NotificationKind::Mention,
                board_id: board().id,
                task_id: id(40),
                comment_id: Some(comment_id()),
                due_date: None,
                excerpt: "ask @bob 🚀".into(),
            }));
            e
        }),
        ("event_notification_added_due.json", {
            let mut e = other(22, EventKind::NotificationAdded);
            e.notification = Some(NotificationChange::Added(Notice {
                user_id: "00000000-0000-0000-0000-00000000b0b0".into(),
                kind: NotificationKind::Due,
                board_id: board().id,
                task_id: id(40),
                comment_id: None,
                due_date: Date::new(2026, 2, 28),
                excerpt: "Ship it".into(),
            }));
            e
        }),
        ("event_notifications_read.json", {
            let mut e = other(23, EventKind::NotificationsRead);
            e.notification = Some(NotificationChange::Read(ReadMark {
                user_id: ada().id,
                upto: Some(21),
                ids: vec![22],
            }));
            e
        }),
        // As a client reads it: the secret is never on the wire (the
        // stored payload keeps it: `an_added_webhook_s_payload_keeps_its_secret`).
        ("event_webhook_added.json", {
            let mut e = other(24, EventKind::WebhookAdded);
            e.webhook = Some(WebhookChange::Added {
                webhook: webhook(),
                secret: None,
            });
            e
        }),
        ("event_webhook_removed.json", {
            let mut e = other(25, EventKind::WebhookRemoved);
            e.webhook = Some(WebhookChange::Removed { webhook: webhook() });
            e
        }),
        ("event_webhook_delivered.json", {
            let mut e = other(26, EventKind::WebhookDelivered);
            e.actor = crate::webhooks::actor();
            e.webhook = Some(WebhookChange::Delivered(progress()));
            e
        }),
    ]
}

fn board() -> BoardRecord {
    BoardRecord {
        id: BoardId(Uuid::from_u128(0x4000)),
        name: "Launch \"Q3\" 🚀".into(),
        archived: false,
    }
}

fn column() -> Column {
    Column {
        id: ColumnId(Uuid::from_u128(0x4004)),
        board_id: board().id,
        name: "Review".into(),
        key: "review".into(),
        category: Status::InProgress,
        position: 2560.0,
        wip_limit: Some(3),
        color: Some("#aa3300".into()),
        archive_after_days: None,
        // Written before columns had versions: none recorded.
        version: 0,
    }
}

/// The column as events and outcomes carry it since 0.7.0.
fn versioned_column(version: u64) -> Column {
    Column {
        version,
        ..column()
    }
}

/// An event that is not about a task, by ada, without its subject.
fn other(seq: u64, kind: EventKind) -> Event {
    Event {
        seq,
        raft_index: 10 + seq,
        ordinal: 0,
        term: 2,
        event_id: Uuid::from_u128(0x2000 + u128::from(seq)),
        at: at(seq as i64),
        request_id: Uuid::from_u128(0x2000 + u128::from(seq)),
        actor: ada(),
        ..Event::blank(kind)
    }
}

fn user(disabled: bool) -> crate::accounts::UserView {
    crate::accounts::UserView {
        id: Uuid::from_u128(0x3001),
        username: "grace".into(),
        display_name: "Grace Hopper".into(),
        role: crate::accounts::Role::Member,
        disabled,
    }
}

/// The fixtures of stored outcomes: (file name, the outcome).
fn outcomes() -> Vec<(&'static str, Outcome)> {
    vec![
        (
            "outcome_created.json",
            Outcome::Created {
                task: task(1),
                seq: 1,
            },
        ),
        (
            "outcome_unchanged.json",
            Outcome::Unchanged {
                task: task(2),
                seq: 2,
            },
        ),
        (
            "outcome_rejected_version_mismatch.json",
            Outcome::Rejected {
                rejection: Rejection::VersionMismatch {
                    expected: 1,
                    current: Box::new(task(2)),
                },
            },
        ),
        (
            "outcome_keys_expired.json",
            Outcome::KeysExpired {
                before: Timestamp(1_766_620_800_000),
            },
        ),
        ("outcome_recorded.json", Outcome::Recorded { seq: Some(42) }),
        (
            "outcome_board.json",
            Outcome::Board {
                board: board(),
                seq: 43,
            },
        ),
        (
            "outcome_column_deleted.json",
            Outcome::Column {
                column: column(),
                deleted: true,
                seq: 44,
            },
        ),
        (
            "outcome_column_versioned.json",
            Outcome::Column {
                column: versioned_column(2),
                deleted: false,
                seq: 45,
            },
        ),
        (
            "outcome_rejected_column_version_mismatch.json",
            Outcome::Rejected {
                rejection: Rejection::Catalog {
                    refused: CatalogRejection::ColumnVersionMismatch {
                        expected: 1,
                        current: Box::new(versioned_column(2)),
                    },
                },
            },
        ),
        (
            "outcome_member.json",
            Outcome::Member {
                member: BoardMember {
                    board_id: board().id,
                    user_id: "u".into(),
                    role: Some(BoardRole::Admin),
                },
                seq: 45,
            },
        ),
        (
            "outcome_rejected_column_not_empty.json",
            Outcome::Rejected {
                rejection: Rejection::Catalog {
                    refused: CatalogRejection::ColumnNotEmpty {
                        id: column().id,
                        cards: 2,
                    },
                },
            },
        ),
        (
            "outcome_comment.json",
            Outcome::Comment {
                comment: comment(1),
                deleted: false,
                seq: 46,
            },
        ),
        (
            "outcome_comment_deleted.json",
            Outcome::Comment {
                comment: comment(2),
                deleted: true,
                seq: 47,
            },
        ),
        (
            "outcome_rejected_comment_version_mismatch.json",
            Outcome::Rejected {
                rejection: Rejection::CommentVersionMismatch {
                    expected: 1,
                    current: Box::new(comment(2)),
                },
            },
        ),
        (
            "outcome_rejected_not_author.json",
            Outcome::Rejected {
                rejection: Rejection::NotAuthor {
                    id: comment_id(),
                    admin_may: true,
                },
            },
        ),
        (
            "outcome_rejected_comment_not_found.json",
            Outcome::Rejected {
                rejection: Rejection::CommentNotFound { id: comment_id() },
            },
        ),
        (
            "outcome_webhook_added.json",
            Outcome::Webhook {
                webhook: webhook(),
                secret: Some("0f".repeat(32)),
                deleted: false,
                seq: 24,
            },
        ),
        (
            "outcome_rejected_webhook_limit.json",
            Outcome::Rejected {
                rejection: Rejection::Webhook {
                    refused: WebhookRejection::Limit { limit: 10 },
                },
            },
        ),
        (
            "outcome_rejected_key_reused.json",
            Outcome::Rejected {
                rejection: Rejection::KeyReused {
                    key: "create-2".into(),
                },
            },
        ),
    ]
}

#[test]
fn every_kind_has_a_fixture() {
    let listed: Vec<Command> = commands().into_iter().map(|(_, c)| c).collect();
    // A new kind fails to compile here until its fixtures are listed above.
    // (kind, whether clients send it with an idempotency key)
    let kinds = |op: &Op| match op {
        Op::Create(_) => ("create", true),
        Op::Update { .. } => ("update", true),
        Op::Delete { .. } => ("delete", true),
        Op::ExpireKeys { .. } => ("expire_keys", false),
        Op::UserCreate(_) => ("user_create", false),
        Op::BootstrapAdmin(_) => ("bootstrap_admin", false),
        Op::UserUpdate(_) => ("user_update", false),
        Op::SessionCreate(_) => ("session_create", false),
        Op::SessionEnd { .. } => ("session_end", false),
        Op::TokenCreate(_) => ("token_create", false),
        Op::TokenRevoke { .. } => ("token_revoke", false),
        Op::PruneSessions { .. } => ("prune_sessions", false),
        Op::SetClusterVersion { .. } => ("set_cluster_version", false),
        Op::RecordRecovery(_) => ("record_recovery", false),
        Op::BoardCreate(_) => ("board_create", false),
        Op::BoardUpdate { .. } => ("board_update", false),
        Op::BoardMemberSet { .. } => ("board_member_set", false),
        Op::ColumnCreate(_) => ("column_create", false),
        Op::ColumnUpdate { .. } => ("column_update", false),
        Op::ColumnDelete { .. } => ("column_delete", false),
        Op::CommentAdd(_) => ("comment_add", true),
        Op::CommentEdit { .. } => ("comment_edit", true),
        Op::CommentDelete { .. } => ("comment_delete", true),
        Op::Checklist(_) => ("checklist", true),
        Op::NotificationsRead(_) => ("notifications_read", false),
        Op::DueRemind { .. } => ("due_remind", false),
        Op::WebhookAdd(_) => ("webhook_add", false),
        Op::WebhookRemove { .. } => ("webhook_remove", false),
        Op::WebhookProgress(_) => ("webhook_progress", false),
        // Test builds only: never in a log a release build writes.
        #[cfg(feature = "failpoints")]
        Op::FutureCreate(_) => ("delete", true),
    };
    let kinds = |op: &Op| kinds(op).0;
    for (kind, keyed_too) in [
        ("create", true),
        ("update", true),
        ("delete", true),
        ("expire_keys", false),
        ("user_create", false),
        ("bootstrap_admin", false),
        ("user_update", false),
        ("session_create", false),
        ("session_end", false),
        ("token_create", false),
        ("token_revoke", false),
        ("prune_sessions", false),
        ("set_cluster_version", false),
        ("record_recovery", false),
        ("board_create", false),
        ("board_update", false),
        ("board_member_set", false),
        ("column_create", false),
        ("column_update", false),
        ("column_delete", false),
        ("comment_add", true),
        ("comment_edit", true),
        ("comment_delete", true),
        ("checklist", true),
        ("notifications_read", false),
        ("due_remind", false),
        ("webhook_add", false),
        ("webhook_remove", false),
        ("webhook_progress", false),
    ] {
        assert!(
            listed.iter().any(|c| kinds(&c.op) == kind),
            "no fixture of {kind}"
        );
        for keyed in [false, keyed_too] {
            assert!(
                listed
                    .iter()
                    .any(|c| kinds(&c.op) == kind && c.idempotency.is_some() == keyed),
                "no fixture of {kind} with idempotency {keyed}"
            );
        }
    }
}

#[test]
fn fixtures_name_each_kind_as_the_version_table_does() {
    // The kind `introduced` gates is the `type` the log holds.
    for (name, command) in commands() {
        let encoded: serde_json::Value = serde_json::to_value(&command).unwrap();
        assert_eq!(
            encoded["op"]["type"],
            json!(crate::version::introduced(&command.op).0),
            "{name}"
        );
    }
}

#[test]
fn fixtures_from_before_accounts_have_no_actor_and_read_as_system() {
    for name in [
        "command_create_minimal.json",
        "command_create_full_with_key.json",
        "command_update_title.json",
        "command_delete_expected_version_with_key.json",
        "command_expire_keys.json",
        "event_task_created.json",
        "payload_task_updated.json",
    ] {
        let bytes = fixture(name, || unreachable!("{name} was written before accounts"));
        let text = String::from_utf8(bytes).unwrap();
        assert!(
            !text.contains("actor"),
            "{name} was written before accounts"
        );
    }
    // ...and each decodes to its value, whose actor is `system`
    // (`commands_of_the_log_decode_for_ever` and the events' test).
}

#[test]
fn commands_of_the_log_decode_for_ever() {
    for (name, expected) in commands() {
        let bytes = fixture(name, || encode_command(&expected));
        let decoded =
            decode_command(&bytes).unwrap_or_else(|e| panic!("{name} no longer decodes: {e}"));
        assert_eq!(decoded, expected, "{name}");
    }
}

#[test]
fn events_on_the_wire_and_stored_payloads_decode_for_ever() {
    for (name, expected) in events() {
        let bytes = fixture(name, || serde_json::to_vec(&expected).unwrap());
        let decoded: Event = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{name} no longer decodes: {e}"));
        assert_eq!(decoded, expected, "{name}");

        let stored = name.replace("event_", "payload_");
        let bytes = fixture(&stored, || {
            crate::db::rows::event_payload(&expected).into_bytes()
        });
        let decoded: EventPayload = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{stored} no longer decodes: {e}"));
        assert_eq!(decoded, EventPayload::of(&expected), "{stored}");
    }
}

#[test]
fn an_added_webhook_s_payload_keeps_its_secret() {
    let mut event = other(24, EventKind::WebhookAdded);
    event.webhook = Some(WebhookChange::Added {
        webhook: webhook(),
        secret: Some("0f".repeat(32)),
    });
    let name = "payload_webhook_added_with_secret.json";
    let bytes = fixture(name, || crate::db::rows::event_payload(&event).into_bytes());
    let decoded: EventPayload =
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{name} no longer decodes: {e}"));
    assert_eq!(decoded, EventPayload::of(&event), "{name}");
    let shown = serde_json::to_string(&event).unwrap();
    assert!(
        !shown.contains(&"0f".repeat(32)),
        "the event as clients read it carries the secret: {shown}"
    );
}

#[test]
fn remembered_outcomes_decode_for_ever() {
    for (name, expected) in outcomes() {
        let bytes = fixture(name, || serde_json::to_vec(&expected).unwrap());
        let decoded: Outcome = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{name} no longer decodes: {e}"));
        assert_eq!(decoded, expected, "{name}");
    }
}
