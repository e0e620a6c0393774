//! `GET /api/tasks?as_of=TIME`: the tasks as they were at TIME, folded
//! from the event table with the domain's fold ([`Replayed`]).
//!
//! The events folded are a prefix of the table, `1..=N`: those up to the
//! first event stamped after TIME (events are stamped by the leader that
//! proposed them, so after a leader change one may carry a slightly
//! earlier time than the event before it; stopping at the first later
//! event keeps the answer a state the board really passed through, the
//! one every reader at seq N saw).
//!
//! Cost: the events are read a page at a time in seq order and folded
//! into the tasks they leave, so memory is the board at TIME plus one
//! page; a TIME that needs more than [`MAX_EVENTS`] events is refused
//! (422 `as_of_too_far`) rather than read. There is no index by time and
//! no checkpoint of past boards: a TIME late in a long history costs its
//! whole prefix, hence the bound.

use mysql_async::prelude::*;
use mysql_async::{Pool, Row};

use super::rows::{event_from_row, EVENT_COLUMNS};
use super::DbError;
use crate::task::{Event, Replayed, Task};
use crate::time::Timestamp;

/// Events folded for one `as_of` read at most.
pub const MAX_EVENTS: u64 = 100_000;
/// Events read per query.
const PAGE_EVENTS: u64 = 1_000;

/// The board at a time.
#[derive(Debug, PartialEq)]
pub struct AsOf {
    /// In board order (column, position, id).
    pub tasks: Vec<Task>,
    /// The events folded are `1..=last_seq`.
    pub last_seq: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum AsOfError {
    #[error("the board at that time is more than {max} events into the history: as_of folds at most {max} events")]
    TooFar { max: u64 },
    #[error("{0}")]
    Db(#[from] DbError),
}

/// Folds the events up to `time`, at most `max` of them.
pub struct Folding {
    time: Timestamp,
    max: u64,
    replayed: Replayed,
    done: bool,
}

impl Folding {
    pub fn new(time: Timestamp, max: u64) -> Folding {
        Folding {
            time,
            max,
            replayed: Replayed::default(),
            done: false,
        }
    }

    /// Takes the next event (in seq order); `Ok(false)` once the fold is
    /// complete (this event is after the time).
    pub fn push(&mut self, event: &Event) -> Result<bool, AsOfError> {
        if self.done || event.at > self.time {
            self.done = true;
            return Ok(false);
        }
        if self.replayed.last_seq >= self.max {
            return Err(AsOfError::TooFar { max: self.max });
        }
        self.replayed
            .push(event)
            .map_err(|e| DbError::Corrupt(e.to_string()))?;
        Ok(true)
    }

    pub fn last_seq(&self) -> u64 {
        self.replayed.last_seq
    }

    pub fn finish(self) -> AsOf {
        let mut tasks: Vec<Task> = self.replayed.tasks.into_values().collect();
        tasks.sort_by(|a, b| {
            (a.status.rank(), a.position, a.id)
                .partial_cmp(&(b.status.rank(), b.position, b.id))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        AsOf {
            tasks,
            last_seq: self.replayed.last_seq,
        }
    }
}

/// The tasks as they were at `time`.
pub async fn tasks_as_of(pool: &Pool, time: Timestamp) -> Result<AsOf, AsOfError> {
    let mut conn = pool.get_conn().await.map_err(DbError::from)?;
    let mut folding = Folding::new(time, MAX_EVENTS);
    let select =
        format!("SELECT {EVENT_COLUMNS} FROM task_events WHERE seq > ? ORDER BY seq LIMIT ?");
    loop {
        let rows: Vec<Row> = conn
            .exec(&select, (folding.last_seq(), PAGE_EVENTS))
            .await
            .map_err(DbError::from)?;
        let full = rows.len() as u64 == PAGE_EVENTS;
        for row in rows {
            if !folding.push(&event_from_row(row)?)? {
                return Ok(folding.finish());
            }
        }
        if !full {
            return Ok(folding.finish());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::{replay, EventKind, Priority, Status, TaskId};

    fn event(seq: u64, at: i64, task: u128, kind: EventKind) -> Event {
        let id = TaskId(uuid::Uuid::from_u128(task));
        Event {
            seq,
            raft_index: seq + 10,
            ordinal: 0,
            term: 1,
            event_id: uuid::Uuid::from_u128(u128::from(seq) + 1000),
            task_id: Some(id),
            task: Some(Task {
                id,
                title: format!("task {task} at {seq}"),
                description: String::new(),
                status: Status::Todo,
                position: seq as f64,
                priority: Priority::Medium,
                assignee: None,
                labels: Vec::new(),
                due_date: None,
                version: seq,
                created_at: Timestamp(at),
                updated_at: Timestamp(at),
                archived: false,
                board_id: crate::task::DEFAULT_BOARD,
                column_id: None,
            }),
            changes: Default::default(),
            at: Timestamp(at),
            request_id: uuid::Uuid::from_u128(u128::from(seq)),
            actor: Default::default(),
            ..Event::blank(kind)
        }
    }

    fn history() -> Vec<Event> {
        vec![
            event(1, 100, 1, EventKind::TaskCreated),
            event(2, 200, 2, EventKind::TaskCreated),
            event(3, 300, 1, EventKind::TaskUpdated),
            event(4, 400, 2, EventKind::TaskDeleted),
            // A new leader's clock, slightly behind.
            event(5, 390, 3, EventKind::TaskCreated),
        ]
    }

    fn as_of(events: &[Event], time: i64, max: u64) -> Result<AsOf, AsOfError> {
        let mut folding = Folding::new(Timestamp(time), max);
        for event in events {
            if !folding.push(event)? {
                break;
            }
        }
        Ok(folding.finish())
    }

    #[test]
    fn the_board_at_a_time_is_the_fold_of_the_events_up_to_it() {
        let events = history();
        for (time, upto) in [(50, 0), (100, 1), (250, 2), (300, 3), (399, 3), (400, 5)] {
            let got = as_of(&events, time, 10).unwrap();
            // In board order: all in To do here, so by position.
            let mut want: Vec<Task> = replay(&events[..upto]).tasks.into_values().collect();
            want.sort_by(|a, b| a.position.total_cmp(&b.position));
            assert_eq!(got.last_seq, upto as u64, "at {time}");
            assert_eq!(got.tasks, want, "at {time}");
        }
    }

    #[test]
    fn a_time_past_the_bound_is_refused_not_read() {
        let events = history();
        assert!(as_of(&events, 200, 2).is_ok(), "exactly the bound");
        assert!(matches!(
            as_of(&events, 300, 2),
            Err(AsOfError::TooFar { max: 2 })
        ));
    }
}
