//! Comment commands, decided against the comment, its task and the acting
//! user's role on the task's board at this entry.
//!
//! - add: the task is live, and the user may edit its board (member or
//!   admin; a viewer reads only);
//! - edit: the comment is on the task named, the user is its author and
//!   may still edit the board, and `If-Match` (if sent) is its version;
//! - delete: the comment is on the task named, and the user is its author
//!   and may still edit the board, or an admin of the board (a site admin
//!   is admin of every board).
//!
//! A command that is not a user's (`system`, or a node with accounts off)
//! is not checked against a role, as for cards.

use super::super::catalog::CatalogRejection;
use super::super::comment::{Comment, CommentId};
use super::super::event::event_id;
use super::super::{BoardId, BoardRole, Command, Event, EventKind, Op, Task, TaskId};
use super::{Board, Outcome, Rejection};

impl Board {
    /// Records what the store knows of comment `id`: `None`, there is none.
    pub fn load_comment(&mut self, id: CommentId, comment: Option<Comment>) {
        if let Some(ids) = &mut self.loaded_comments {
            ids.insert(id);
        }
        self.comments.insert(id, comment);
    }

    /// The comment `id`, if there is one.
    pub fn comment(&self, id: &CommentId) -> Option<&Comment> {
        if let Some(ids) = &self.loaded_comments {
            assert!(
                ids.contains(id),
                "comment {id} was not loaded for this batch"
            );
        }
        self.comments.get(id).and_then(Option::as_ref)
    }

    /// The comments the board holds (tests).
    #[cfg(test)]
    pub fn comments(&self) -> std::collections::BTreeMap<CommentId, Comment> {
        self.comments
            .iter()
            .filter_map(|(id, c)| c.clone().map(|c| (*id, c)))
            .collect()
    }

    /// Forgets the comments of a deleted task that the board holds; the
    /// applier deletes every row of the task's (`write_tasks`).
    pub(super) fn task_comments_deleted(&mut self, task: TaskId) {
        let gone: Vec<CommentId> = self
            .comments
            .iter()
            .filter(|(_, c)| c.as_ref().is_some_and(|c| c.task_id == task))
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            self.comments.insert(id, None);
            self.comments_dirty.insert(id);
        }
    }

    /// The acting user's role on `board`: `Ok(None)` when the command is
    /// not a user's (nothing to check), else their role, or `not_on_board`.
    fn acting_role(&self, actor: &str, board: &BoardId) -> Result<Option<BoardRole>, Rejection> {
        let Some(site) = self.acting else {
            return Ok(None);
        };
        match self.catalog.role(board, actor, site) {
            Some(role) => Ok(Some(role)),
            None => Err(Rejection::Catalog {
                refused: CatalogRejection::NotOnBoard { id: *board },
            }),
        }
    }

    /// The comment `id` of the live task `task_id`, with that task.
    fn comment_on(&self, id: &CommentId, task_id: &TaskId) -> Result<(Comment, Task), Rejection> {
        let mut comment = self
            .comment(id)
            .filter(|c| c.task_id == *task_id)
            .cloned()
            .ok_or(Rejection::CommentNotFound { id: *id })?;
        let task = self.live(task_id, None)?.clone();
        // Its board is its task's now (as the projection reads it), however
        // the board held it: every answer about it says the same.
        comment.board_id = task.board_id;
        Ok((comment, task))
    }

    pub(super) fn comment_command(
        &mut self,
        raft_index: u64,
        term: u64,
        command: &Command,
    ) -> Outcome {
        match self.decide_comment(command) {
            Ok((kind, comment)) => self.record_comment(raft_index, term, command, kind, comment),
            Err(Decided::Unchanged(comment)) => Outcome::Comment {
                comment: *comment,
                deleted: false,
                seq: self.last_seq,
            },
            Err(Decided::Refused(rejection)) => Outcome::Rejected { rejection },
        }
    }

    fn decide_comment(&self, command: &Command) -> Result<(EventKind, Comment), Decided> {
        let actor = &command.actor.id;
        match &command.op {
            Op::CommentAdd(new) => {
                let task = self.live(&new.task_id, None)?;
                self.may_edit(actor, &task.board_id)
                    .map_err(|refused| Rejection::Catalog { refused })?;
                if self.comment(&new.id).is_some() {
                    return Err(Rejection::Catalog {
                        refused: CatalogRejection::IdTaken { id: new.id.0 },
                    }
                    .into());
                }
                Ok((
                    EventKind::CommentAdded,
                    Comment {
                        id: new.id,
                        task_id: new.task_id,
                        board_id: task.board_id,
                        author: command.actor.clone(),
                        body: new.body.clone(),
                        version: 1,
                        created_at: command.at,
                        updated_at: command.at,
                    },
                ))
            }
            Op::CommentEdit {
                id,
                task_id,
                expected_version,
                body,
            } => {
                let (comment, task) = self.comment_on(id, task_id)?;
                self.acting_role(actor, &task.board_id)?;
                if self.acting.is_some() && comment.author.id != *actor {
                    return Err(Rejection::NotAuthor {
                        id: *id,
                        admin_may: false,
                    }
                    .into());
                }
                self.may_edit(actor, &task.board_id)
                    .map_err(|refused| Rejection::Catalog { refused })?;
                if let Some(expected) = *expected_version {
                    if expected != comment.version {
                        return Err(Rejection::CommentVersionMismatch {
                            expected,
                            current: Box::new(comment),
                        }
                        .into());
                    }
                }
                if comment.body == *body {
                    return Err(Decided::Unchanged(Box::new(comment)));
                }
                Ok((
                    EventKind::CommentEdited,
                    Comment {
                        body: body.clone(),
                        version: comment.version + 1,
                        updated_at: command.at,
                        ..comment
                    },
                ))
            }
            Op::CommentDelete { id, task_id } => {
                let (comment, task) = self.comment_on(id, task_id)?;
                let role = self.acting_role(actor, &task.board_id)?;
                let admin = role.is_none_or(|r| r == BoardRole::Admin);
                let author = comment.author.id == *actor && role.is_some_and(|r| r.can_edit());
                if !admin && !author {
                    return Err(Rejection::NotAuthor {
                        id: *id,
                        admin_may: true,
                    }
                    .into());
                }
                Ok((EventKind::CommentDeleted, comment))
            }
            _ => unreachable!("only comment commands come here"),
        }
    }

    /// Numbers the comment's event, updates the board and queues both.
    fn record_comment(
        &mut self,
        raft_index: u64,
        term: u64,
        command: &Command,
        kind: EventKind,
        comment: Comment,
    ) -> Outcome {
        self.last_seq += 1;
        let seq = self.last_seq;
        let deleted = kind == EventKind::CommentDeleted;
        self.comments
            .insert(comment.id, (!deleted).then(|| comment.clone()));
        self.comments_dirty.insert(comment.id);
        self.pending.events.push(Event {
            seq,
            raft_index,
            ordinal: 0,
            term,
            event_id: event_id(command.request_id, 0),
            task_id: Some(comment.task_id),
            comment: Some(comment.clone()),
            at: command.at,
            request_id: command.request_id,
            actor: command.actor.clone(),
            ..Event::blank(kind)
        });
        Outcome::Comment {
            comment,
            deleted,
            seq,
        }
    }
}

/// Why a comment command records no event.
enum Decided {
    /// An edit to the body the comment has.
    Unchanged(Box<Comment>),
    Refused(Rejection),
}

impl From<Rejection> for Decided {
    fn from(rejection: Rejection) -> Decided {
        Decided::Refused(rejection)
    }
}
