//! Deciding notifications at apply (`crate::task::notification`).
//!
//! The board decides the cards and comments; this looks at the events it
//! just recorded for one entry and, against the users and the catalog at
//! that entry, records a `notification_added` event for each user newly
//! mentioned. Every node runs the same function on the same entries, so
//! every node records the same notifications with the same seqs.

use std::collections::BTreeSet;

use crate::accounts::{Accounts, User};
use crate::raft::CommittedEntry;
use crate::task::notification::{excerpt, new_mentions};
use crate::task::{
    event_id, Board, BoardId, Command, Event, EventKind, Notice, NotificationChange,
    NotificationKind, ReadMark, TaskId,
};
use crate::time::Date;

/// What a mention in the entry's change is compared with: the text before
/// it, which the events do not all carry (a comment edit's old body).
pub fn text_before(board: &Board, command: &Command) -> Option<String> {
    match &command.op {
        crate::task::Op::CommentEdit { id, .. } => board.comment(id).map(|c| c.body.clone()),
        _ => None,
    }
}

/// The user `name` (a username, any case) if they may be notified about
/// `board_id`: enabled, and able to see the board.
fn recipient<'a>(
    accounts: &'a Accounts,
    board: &Board,
    board_id: &BoardId,
    name: &str,
) -> Option<&'a User> {
    let user = accounts.user_by_name(&name.trim_start_matches('@').to_ascii_lowercase())?;
    if user.disabled {
        return None;
    }
    board
        .catalog()
        .role(board_id, &user.id.to_string(), user.role)
        .map(|_| user)
}

/// A `notification_added` or `notifications_read` event of the entry,
/// numbered by the board.
fn record(
    board: &mut Board,
    entry: &CommittedEntry,
    command: &Command,
    ordinal: u32,
    kind: EventKind,
    change: NotificationChange,
) -> u64 {
    board.record_event(Event {
        seq: 0,
        raft_index: entry.index,
        ordinal,
        term: entry.term,
        event_id: event_id(command.request_id, ordinal),
        notification: Some(change),
        at: command.at,
        request_id: command.request_id,
        actor: command.actor.clone(),
        ..Event::blank(kind)
    })
}

/// Records a notification for each user the events from `from` on newly
/// mention (`before`: the text a comment edit replaced).
pub fn mentions(
    board: &mut Board,
    accounts: &Accounts,
    entry: &CommittedEntry,
    command: &Command,
    from: usize,
    before: Option<&str>,
) {
    // (board, task, comment, text before, text after) of each change.
    let mut changed = Vec::new();
    for event in &board.pending_events()[from..] {
        match (event.kind, &event.task, &event.comment) {
            (EventKind::TaskCreated, Some(task), _) => changed.push((
                task.board_id,
                task.id,
                None,
                String::new(),
                task.description.clone(),
            )),
            (EventKind::TaskUpdated, Some(task), _) => {
                // Only a changed description can mention anyone new.
                let Some(change) = event.changes.get("description") else {
                    continue;
                };
                let old = change.from.as_str().unwrap_or_default().to_string();
                changed.push((task.board_id, task.id, None, old, task.description.clone()));
            }
            (EventKind::CommentAdded, _, Some(c)) => changed.push((
                c.board_id,
                c.task_id,
                Some(c.id),
                String::new(),
                c.body.clone(),
            )),
            (EventKind::CommentEdited, _, Some(c)) => changed.push((
                c.board_id,
                c.task_id,
                Some(c.id),
                before.unwrap_or_default().to_string(),
                c.body.clone(),
            )),
            _ => {}
        }
    }
    let mut ordinal = 0;
    for (board_id, task_id, comment_id, old, new) in changed {
        for name in new_mentions(&old, &new) {
            let Some(user) = recipient(accounts, board, &board_id, &name) else {
                continue;
            };
            let user_id = user.id.to_string();
            if user_id == command.actor.id {
                continue;
            }
            ordinal += 1;
            let notice = Notice {
                user_id,
                kind: NotificationKind::Mention,
                board_id,
                task_id,
                comment_id,
                due_date: None,
                excerpt: excerpt(&new, &name),
            };
            record(
                board,
                entry,
                command,
                ordinal,
                EventKind::NotificationAdded,
                NotificationChange::Added(notice),
            );
        }
    }
}

/// A due reminder for the card's assignee, unless the card's due date is
/// no longer `due_date`, nobody who can see it is assigned, or it rang
/// already (`reminded`: the (card, due date) pairs that have). The seq of
/// its event, if it rang.
pub fn remind(
    board: &mut Board,
    accounts: &Accounts,
    reminded: &mut BTreeSet<(TaskId, Date)>,
    entry: &CommittedEntry,
    command: &Command,
    task_id: TaskId,
    due_date: Date,
) -> Option<u64> {
    if reminded.contains(&(task_id, due_date)) {
        return None;
    }
    let task = board.task(&task_id)?;
    if task.archived || task.due_date != Some(due_date) {
        return None;
    }
    let user = recipient(accounts, board, &task.board_id, task.assignee.as_deref()?)?;
    let notice = Notice {
        user_id: user.id.to_string(),
        kind: NotificationKind::Due,
        board_id: task.board_id,
        task_id,
        comment_id: None,
        due_date: Some(due_date),
        excerpt: task.title.clone(),
    };
    reminded.insert((task_id, due_date));
    Some(record(
        board,
        entry,
        command,
        0,
        EventKind::NotificationAdded,
        NotificationChange::Added(notice),
    ))
}

/// A user's read mark, as an event; nothing when the command is not the
/// user's own (the api never proposes that).
pub fn read(
    board: &mut Board,
    entry: &CommittedEntry,
    command: &Command,
    mark: &ReadMark,
) -> Option<u64> {
    (mark.user_id == command.actor.id).then(|| {
        record(
            board,
            entry,
            command,
            0,
            EventKind::NotificationsRead,
            NotificationChange::Read(mark.clone()),
        )
    })
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::accounts::{AccountChanges, Actor, NewUser, Role};
    use crate::task::{BoardRole, ColumnId, NewBoard, NewComment, NewTask, Op, Priority, Status};
    use crate::time::Timestamp;

    fn user_id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    /// Ana, Bo and Eve, members of the site; Dee disabled.
    fn accounts() -> Accounts {
        let mut accounts = Accounts::default();
        let mut changes = AccountChanges::default();
        for (n, name) in [(1, "ana"), (2, "bo"), (3, "eve"), (4, "dee")] {
            let new = NewUser {
                id: user_id(n),
                username: name.into(),
                display_name: name.into(),
                role: Role::Member,
                password_hash: "h".into(),
            };
            let op = Op::UserCreate(new);
            accounts.apply(n as u64, Timestamp(0), op.account().unwrap(), &mut changes);
        }
        let op = Op::UserUpdate(crate::accounts::UserUpdate {
            id: user_id(4),
            role: None,
            disabled: Some(true),
            display_name: None,
            password_hash: None,
        });
        accounts.apply(5, Timestamp(0), op.account().unwrap(), &mut changes);
        assert!(accounts.user(&user_id(4)).unwrap().disabled);
        accounts
    }

    fn entry(index: u64) -> CommittedEntry {
        CommittedEntry {
            index,
            term: 1,
            command: None,
            undecodable: None,
            origin: None,
            membership: None,
        }
    }

    fn by(n: u128, index: u64, op: Op) -> Command {
        Command {
            request_id: Uuid::from_u128(0x1000 + u128::from(index)),
            idempotency: None,
            at: Timestamp(index as i64),
            actor: Actor {
                id: user_id(n).to_string(),
                name: format!("user {n}"),
            },
            op,
        }
    }

    /// Ana's board with Bo and Dee on it (Eve not), and a card.
    fn board() -> (Board, BoardId, TaskId) {
        let mut board = Board::new();
        let board_id = BoardId(Uuid::from_u128(0x40));
        let columns = [0x41, 0x42, 0x43].map(|n| ColumnId(Uuid::from_u128(n)));
        let ops = [
            Op::BoardCreate(NewBoard {
                id: board_id,
                name: "Ops".into(),
                columns,
            }),
            Op::BoardMemberSet {
                board_id,
                user_id: user_id(2).to_string(),
                role: Some(BoardRole::Member),
            },
            Op::BoardMemberSet {
                board_id,
                user_id: user_id(4).to_string(),
                role: Some(BoardRole::Member),
            },
        ];
        for (i, op) in ops.into_iter().enumerate() {
            board.apply_as(
                1 + i as u64,
                1,
                &by(1, 1 + i as u64, op),
                Some(Role::Member),
            );
        }
        let task = TaskId(Uuid::from_u128(0x50));
        board.apply_as(
            10,
            1,
            &by(
                1,
                10,
                Op::Create(NewTask {
                    id: task,
                    title: "Card".into(),
                    description: String::new(),
                    status: Status::Todo,
                    position: None,
                    priority: Priority::Medium,
                    assignee: Some("Bo".into()),
                    labels: vec![],
                    due_date: Date::new(2026, 12, 7),
                    board_id: Some(board_id),
                    column_id: Some(columns[0]),
                }),
            ),
            Some(Role::Member),
        );
        board.take_changes();
        (board, board_id, task)
    }

    fn notices(board: &mut Board) -> Vec<Notice> {
        board
            .take_changes()
            .events
            .into_iter()
            .filter_map(|e| match e.notification {
                Some(NotificationChange::Added(n)) => Some(n),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_comment_rings_the_members_it_names_not_the_author_nor_others() {
        let accounts = accounts();
        let (mut board, board_id, task) = board();
        let command = by(
            1,
            11,
            Op::CommentAdd(NewComment {
                id: crate::task::CommentId(Uuid::from_u128(0x60)),
                task_id: task,
                body: "@BO look, @eve @dee @ana @nobody".into(),
            }),
        );
        let from = board.pending_events().len();
        board.apply_as(11, 1, &command, Some(Role::Member));
        mentions(&mut board, &accounts, &entry(11), &command, from, None);
        let rung = notices(&mut board);
        assert_eq!(rung.len(), 1, "{rung:?}");
        assert_eq!(rung[0].user_id, user_id(2).to_string());
        assert_eq!(rung[0].board_id, board_id);
        assert_eq!(rung[0].kind, NotificationKind::Mention);
        assert!(rung[0].comment_id.is_some());
    }

    #[test]
    fn a_due_reminder_rings_the_assignee_once_per_due_date() {
        let accounts = accounts();
        let (mut board, _, task) = board();
        let due = Date::new(2026, 12, 7).unwrap();
        let mut reminded = BTreeSet::new();
        let command = by(
            9,
            20,
            Op::DueRemind {
                task_id: task,
                due_date: due,
            },
        );
        let rung = remind(
            &mut board,
            &accounts,
            &mut reminded,
            &entry(20),
            &command,
            task,
            due,
        );
        assert!(rung.is_some(), "Bo is assigned (any case)");
        let again = remind(
            &mut board,
            &accounts,
            &mut reminded,
            &entry(21),
            &command,
            task,
            due,
        );
        assert_eq!(again, None, "a second one for the same due date");
        let other = Date::new(2026, 12, 8).unwrap();
        let stale = remind(
            &mut board,
            &accounts,
            &mut reminded,
            &entry(22),
            &command,
            task,
            other,
        );
        assert_eq!(stale, None, "not the card's due date");
        let rung = notices(&mut board);
        assert_eq!(rung.len(), 1);
        assert_eq!(rung[0].user_id, user_id(2).to_string());
        assert_eq!(rung[0].due_date, Some(due));
    }

    #[test]
    fn a_read_mark_is_only_its_users_own() {
        let (mut board, _, _) = board();
        let mark = ReadMark {
            user_id: user_id(2).to_string(),
            upto: Some(5),
            ids: vec![],
        };
        let theirs = by(2, 30, Op::NotificationsRead(mark.clone()));
        assert!(read(&mut board, &entry(30), &theirs, &mark).is_some());
        let someone_else = by(1, 31, Op::NotificationsRead(mark.clone()));
        assert_eq!(read(&mut board, &entry(31), &someone_else, &mark), None);
    }
}
