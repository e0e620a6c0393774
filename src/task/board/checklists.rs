//! Checklist commands, decided against the checklist, its task, the task's
//! other checklists (for the per-card limit) and the acting user's role on
//! the task's board at this entry.
//!
//! Every change needs a user who may edit the board (member or admin; a
//! viewer reads only); the checklist must be on the task named, the item
//! on the checklist named, and `If-Match` (if sent) the list's version.
//! A change that changes nothing (the same title, a tick on a ticked item)
//! records no event and answers the list as it is.

use super::super::catalog::CatalogRejection;
use super::super::checklist::{
    self, Checklist, ChecklistAction, ChecklistChange, ChecklistCommand, ChecklistId,
    ChecklistItem, CHECKLISTS_PER_TASK, ITEMS_PER_CHECKLIST,
};
use super::super::event::event_id;
use super::super::{Command, Event, EventKind, Op, TaskId};
use super::{Board, Outcome, Rejection};

impl Board {
    /// Records the checklists the store holds for `task` (all of them).
    pub fn load_task_checklists(&mut self, task: TaskId, checklists: Vec<Checklist>) {
        if let Some(tasks) = &mut self.loaded_checklists {
            tasks.insert(task);
        }
        for list in checklists {
            self.checklists.insert(list.id, Some(list));
        }
    }

    fn assert_checklists_loaded(&self, task: &TaskId) {
        if let Some(tasks) = &self.loaded_checklists {
            assert!(
                tasks.contains(task),
                "the checklists of task {task} were not loaded for this batch"
            );
        }
    }

    /// The checklist `id` (tests, and the decisions).
    pub fn checklist(&self, id: &ChecklistId) -> Option<&Checklist> {
        self.checklists.get(id).and_then(Option::as_ref)
    }

    /// The live checklists of `task`, oldest first.
    pub fn task_checklists(&self, task: &TaskId) -> Vec<&Checklist> {
        let mut lists: Vec<&Checklist> = self
            .checklists
            .values()
            .flatten()
            .filter(|c| c.task_id == *task)
            .collect();
        lists.sort_by_key(|c| (c.created_at, c.id));
        lists
    }

    /// Forgets the checklists of a deleted task that the board holds; the
    /// applier deletes every row of the task's (`write_tasks`).
    pub(super) fn task_checklists_deleted(&mut self, task: TaskId) {
        let gone: Vec<ChecklistId> = self
            .checklists
            .iter()
            .filter(|(_, c)| c.as_ref().is_some_and(|c| c.task_id == task))
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            self.checklists.insert(id, None);
            self.checklists_dirty.insert(id);
        }
    }

    pub(super) fn checklist_command(
        &mut self,
        raft_index: u64,
        term: u64,
        command: &Command,
    ) -> Outcome {
        let Op::Checklist(cmd) = &command.op else {
            unreachable!("only checklist commands come here")
        };
        match self.decide_checklist(&command.actor.id, command.at, cmd) {
            Ok((checklist, change)) => {
                self.record_checklist(raft_index, term, command, checklist, change)
            }
            Err(Decided::Unchanged(checklist)) => Outcome::Checklist {
                checklist: *checklist,
                deleted: false,
                seq: self.last_seq,
            },
            Err(Decided::Refused(rejection)) => Outcome::Rejected { rejection },
        }
    }

    fn decide_checklist(
        &self,
        actor: &str,
        at: crate::time::Timestamp,
        cmd: &ChecklistCommand,
    ) -> Result<(Checklist, ChecklistChange), Decided> {
        self.assert_checklists_loaded(&cmd.task_id);
        let task = self.live(&cmd.task_id, None)?;
        let board_id = task.board_id;
        self.may_edit(actor, &board_id)
            .map_err(|refused| Rejection::Catalog { refused })?;
        if let ChecklistAction::Create { title } = &cmd.action {
            let title = checklist::line("title", title, checklist::TITLE_MAX).map_err(invalid)?;
            if self.checklists.contains_key(&cmd.id) {
                return Err(Rejection::Catalog {
                    refused: CatalogRejection::IdTaken { id: cmd.id.0 },
                }
                .into());
            }
            if self.task_checklists(&cmd.task_id).len() >= CHECKLISTS_PER_TASK {
                return Err(Rejection::ChecklistLimit {
                    limit: CHECKLISTS_PER_TASK,
                    what: "checklists on a card".into(),
                }
                .into());
            }
            let list = Checklist {
                id: cmd.id,
                task_id: cmd.task_id,
                board_id,
                title,
                items: Vec::new(),
                version: 1,
                created_at: at,
                updated_at: at,
            };
            return Ok((list, ChecklistChange::Created));
        }
        let mut list = self
            .checklist(&cmd.id)
            .filter(|c| c.task_id == cmd.task_id)
            .cloned()
            .ok_or(Rejection::ChecklistNotFound { id: cmd.id })?;
        // Its board is its task's now, however the board held it.
        list.board_id = board_id;
        if let Some(expected) = cmd.expected_version {
            if expected != list.version {
                return Err(Rejection::ChecklistVersionMismatch {
                    expected,
                    current: Box::new(list),
                }
                .into());
            }
        }
        let item_at = |list: &Checklist, item| {
            list.position_of(&item)
                .ok_or(Decided::Refused(Rejection::ChecklistItemNotFound {
                    id: item,
                }))
        };
        let change = match &cmd.action {
            ChecklistAction::Create { .. } => unreachable!("decided above"),
            ChecklistAction::Delete => return Ok((list, ChecklistChange::Deleted)),
            ChecklistAction::Rename { title } => {
                let title =
                    checklist::line("title", title, checklist::TITLE_MAX).map_err(invalid)?;
                if title == list.title {
                    return Err(Decided::Unchanged(Box::new(list)));
                }
                let from = std::mem::replace(&mut list.title, title);
                ChecklistChange::Renamed { from }
            }
            ChecklistAction::AddItem { item, text, done } => {
                let text = checklist::line("text", text, checklist::ITEM_MAX).map_err(invalid)?;
                if list.items.len() >= ITEMS_PER_CHECKLIST {
                    return Err(Rejection::ChecklistLimit {
                        limit: ITEMS_PER_CHECKLIST,
                        what: "items on a checklist".into(),
                    }
                    .into());
                }
                if list.position_of(item).is_some() {
                    return Err(Rejection::Catalog {
                        refused: CatalogRejection::IdTaken { id: item.0 },
                    }
                    .into());
                }
                list.items.push(ChecklistItem {
                    id: *item,
                    text,
                    done: *done,
                });
                ChecklistChange::ItemAdded { item: *item }
            }
            ChecklistAction::UpdateItem {
                item,
                text,
                done,
                position,
            } => {
                let at = item_at(&list, *item)?;
                let mut text_from = None;
                let mut done_from = None;
                let mut position_from = None;
                if let Some(text) = text {
                    let text =
                        checklist::line("text", text, checklist::ITEM_MAX).map_err(invalid)?;
                    if text != list.items[at].text {
                        text_from = Some(std::mem::replace(&mut list.items[at].text, text));
                    }
                }
                if let Some(done) = *done {
                    if done != list.items[at].done {
                        done_from = Some(list.items[at].done);
                        list.items[at].done = done;
                    }
                }
                if let Some(position) = *position {
                    let to = position.min(list.items.len() - 1);
                    if to != at {
                        let moved = list.items.remove(at);
                        list.items.insert(to, moved);
                        position_from = Some(at);
                    }
                }
                if text_from.is_none() && done_from.is_none() && position_from.is_none() {
                    return Err(Decided::Unchanged(Box::new(list)));
                }
                ChecklistChange::ItemUpdated {
                    item: *item,
                    text_from,
                    done_from,
                    position_from,
                }
            }
            ChecklistAction::RemoveItem { item } => {
                let at = item_at(&list, *item)?;
                let removed = list.items.remove(at);
                ChecklistChange::ItemRemoved {
                    item: removed,
                    position: at,
                }
            }
        };
        list.version += 1;
        list.updated_at = at;
        Ok((list, change))
    }

    /// Numbers the checklist's event, updates the board and queues both.
    fn record_checklist(
        &mut self,
        raft_index: u64,
        term: u64,
        command: &Command,
        checklist: Checklist,
        change: ChecklistChange,
    ) -> Outcome {
        self.last_seq += 1;
        let seq = self.last_seq;
        let deleted = change == ChecklistChange::Deleted;
        self.checklists
            .insert(checklist.id, (!deleted).then(|| checklist.clone()));
        self.checklists_dirty.insert(checklist.id);
        let event = Event {
            seq,
            raft_index,
            ordinal: 0,
            term,
            event_id: event_id(command.request_id, 0),
            task_id: Some(checklist.task_id),
            checklist: Some(checklist.clone()),
            checklist_change: Some(change),
            at: command.at,
            request_id: command.request_id,
            actor: command.actor.clone(),
            ..Event::blank(EventKind::ChecklistChanged)
        };
        self.pending.events.push(event);
        Outcome::Checklist {
            checklist,
            deleted,
            seq,
        }
    }
}

/// A length or shape the decision refuses (the api checks the same first).
fn invalid(e: crate::invalid::Invalid) -> Decided {
    Decided::Refused(Rejection::ChecklistInvalid {
        field: e.field,
        message: e.message,
    })
}

/// Why a checklist command records no event.
enum Decided {
    /// A change to what the list already is.
    Unchanged(Box<Checklist>),
    Refused(Rejection),
}

impl From<Rejection> for Decided {
    fn from(rejection: Rejection) -> Decided {
        Decided::Refused(rejection)
    }
}
