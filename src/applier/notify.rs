//! Deciding notifications at apply (`crate::task::notification`).
//!
//! The board decides the cards and comments; this looks at the events it
//! just recorded for one entry and, against the users and the catalog at
//! that entry, records a `notification_added` event for each user newly
//! mentioned. Every node runs the same function on the same entries, so
//! every node records the same notifications with the same seqs.

use std::collections::BTreeMap;
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
        kind,
        task_id: None,
        task: None,
        user: None,
        member: None,
        recovery: None,
        board: None,
        column: None,
        board_member: None,
        comment: None,
        checklist: None,
        checklist_change: None,
        notification: Some(change),
        changes: BTreeMap::new(),
        at: command.at,
        request_id: command.request_id,
        actor: command.actor.clone(),
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
