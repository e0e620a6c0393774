//! What the applier knows of its database without asking it.
//!
//! The applier is the only writer of its database (a running node holds a
//! MySQL named lock on it), so after each COMMIT it can record in memory
//! what it wrote: the applied index, the last seq, the column tails, every
//! task id ever used and whether it is live or deleted, the rows of
//! recently touched tasks, and which idempotency keys exist (a Bloom
//! filter, plus the outcomes of recent ones). Most batches are then decided
//! without a single SELECT. Anything it does not hold is read from MySQL.
//! After any error the whole state is dropped and read again, so it can
//! never drift from what MySQL committed.

use std::collections::{HashMap, VecDeque};

use crate::task::{Changes, ColumnTails, Remembered, Slot, Task, TaskId};

/// Task rows kept in memory (the rest are re-read when needed).
const CACHED_TASKS: usize = 20_000;
/// Outcomes of recently used idempotency keys kept in memory.
const RECENT_KEYS: usize = 20_000;

/// What is known of one task id.
#[derive(Clone, Debug, PartialEq)]
enum Known {
    /// Live; the row if it is cached.
    Live(Option<Box<Task>>),
    Deleted,
}

/// The answer for one task id: the slot, or "ask MySQL".
#[derive(Debug, PartialEq)]
pub enum Lookup {
    Known(Option<Slot>),
    Fetch,
}

pub struct ApplyState {
    pub applied_index: u64,
    pub applied_term: u64,
    pub last_seq: u64,
    pub tails: ColumnTails,
    known: HashMap<TaskId, Known>,
    /// Ids whose rows are cached, oldest first (evicted in this order).
    cached: VecDeque<TaskId>,
    keys: Bloom,
    recent_keys: HashMap<String, Remembered>,
    recent_order: VecDeque<String>,
}

impl ApplyState {
    /// A state read from MySQL: `live` and `deleted` list every id used.
    pub fn new(
        applied_index: u64,
        applied_term: u64,
        last_seq: u64,
        tails: ColumnTails,
        live: impl IntoIterator<Item = TaskId>,
        deleted: impl IntoIterator<Item = TaskId>,
        keys: impl IntoIterator<Item = String>,
    ) -> ApplyState {
        let mut known = HashMap::new();
        for id in deleted {
            known.insert(id, Known::Deleted);
        }
        for id in live {
            known.insert(id, Known::Live(None));
        }
        let mut bloom = Bloom::new();
        for key in keys {
            bloom.insert(&key);
        }
        ApplyState {
            applied_index,
            applied_term,
            last_seq,
            tails,
            known,
            cached: VecDeque::new(),
            keys: bloom,
            recent_keys: HashMap::new(),
            recent_order: VecDeque::new(),
        }
    }

    pub fn task(&self, id: &TaskId) -> Lookup {
        match self.known.get(id) {
            None => Lookup::Known(None),
            Some(Known::Deleted) => Lookup::Known(Some(Slot::Deleted)),
            Some(Known::Live(Some(task))) => Lookup::Known(Some(Slot::Live((**task).clone()))),
            Some(Known::Live(None)) => Lookup::Fetch,
        }
    }

    /// `Known(None)` for a key never used; `Fetch` when it may have been.
    pub fn key(&self, key: &str) -> Result<Option<Remembered>, ()> {
        if let Some(remembered) = self.recent_keys.get(key) {
            return Ok(Some(remembered.clone()));
        }
        if self.keys.may_contain(key) {
            Err(())
        } else {
            Ok(None)
        }
    }

    /// Keeps a row read from MySQL for next time.
    pub fn cache_task(&mut self, task: &Task) {
        self.keep(task.clone());
    }

    fn keep(&mut self, task: Task) {
        let id = task.id;
        let was_cached = matches!(self.known.get(&id), Some(Known::Live(Some(_))));
        self.known.insert(id, Known::Live(Some(Box::new(task))));
        if !was_cached {
            self.cached.push_back(id);
        }
        while self.cached.len() > CACHED_TASKS {
            if let Some(old) = self.cached.pop_front() {
                if let Some(Known::Live(row)) = self.known.get_mut(&old) {
                    *row = None;
                }
            }
        }
    }

    fn remember_key(&mut self, key: &str, remembered: &Remembered) {
        self.keys.insert(key);
        if self
            .recent_keys
            .insert(key.to_string(), remembered.clone())
            .is_none()
        {
            self.recent_order.push_back(key.to_string());
        }
        while self.recent_order.len() > RECENT_KEYS {
            if let Some(old) = self.recent_order.pop_front() {
                self.recent_keys.remove(&old);
            }
        }
    }

    /// Records a batch that MySQL has committed.
    pub fn committed(&mut self, changes: &Changes, applied_index: u64, applied_term: u64) {
        for task in &changes.upserts {
            self.keep(task.clone());
        }
        for id in &changes.deletes {
            self.known.insert(*id, Known::Deleted);
        }
        for (key, remembered) in &changes.keys {
            self.remember_key(key, remembered);
        }
        if let Some(tails) = changes.tails {
            self.tails = tails;
        }
        self.last_seq = changes.last_seq;
        self.applied_index = applied_index;
        self.applied_term = applied_term;
    }

    pub fn known_tasks(&self) -> usize {
        self.known.len()
    }
}

/// A Bloom filter over idempotency keys: "certainly never used" saves a
/// SELECT for every fresh key. 2^23 bits (1 MiB) and 5 hashes keep false
/// positives under 1 % up to about 800,000 keys.
struct Bloom {
    bits: Vec<u64>,
}

const BLOOM_BITS: u64 = 1 << 23;
const BLOOM_HASHES: u64 = 5;

impl Bloom {
    fn new() -> Bloom {
        Bloom {
            bits: vec![0; (BLOOM_BITS / 64) as usize],
        }
    }

    /// Two independent 64-bit hashes (FNV-1a with different seeds), combined
    /// by double hashing into `BLOOM_HASHES` bit positions.
    fn positions(key: &str) -> impl Iterator<Item = u64> {
        let hash = |seed: u64| {
            let mut h = seed;
            for byte in key.bytes() {
                h ^= u64::from(byte);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
            h ^ (h >> 29)
        };
        let (a, b) = (hash(0xcbf2_9ce4_8422_2325), hash(0x8422_2325_cbf2_9ce4) | 1);
        (0..BLOOM_HASHES).map(move |i| a.wrapping_add(i.wrapping_mul(b)) % BLOOM_BITS)
    }

    fn insert(&mut self, key: &str) {
        for bit in Bloom::positions(key) {
            self.bits[(bit / 64) as usize] |= 1 << (bit % 64);
        }
    }

    fn may_contain(&self, key: &str) -> bool {
        Bloom::positions(key).all(|bit| self.bits[(bit / 64) as usize] & (1 << (bit % 64)) != 0)
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::task::{Outcome, Priority, Status};
    use crate::time::Timestamp;

    fn task(n: u128) -> Task {
        Task {
            id: TaskId(Uuid::from_u128(n)),
            title: format!("t{n}"),
            description: String::new(),
            status: Status::Todo,
            position: 1024.0,
            priority: Priority::Low,
            assignee: None,
            labels: vec![],
            due_date: None,
            version: 1,
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
        }
    }

    fn state() -> ApplyState {
        let live = [TaskId(Uuid::from_u128(1))];
        let deleted = [TaskId(Uuid::from_u128(2))];
        ApplyState::new(
            10,
            2,
            5,
            ColumnTails::default(),
            live,
            deleted,
            ["old-key".to_string()],
        )
    }

    #[test]
    fn ids_never_used_are_known_without_asking_and_live_rows_are_fetched_once() {
        let mut state = state();
        assert_eq!(state.task(&TaskId(Uuid::from_u128(9))), Lookup::Known(None));
        assert_eq!(
            state.task(&TaskId(Uuid::from_u128(2))),
            Lookup::Known(Some(Slot::Deleted))
        );
        assert_eq!(
            state.task(&TaskId(Uuid::from_u128(1))),
            Lookup::Fetch,
            "live, row not held"
        );
        state.cache_task(&task(1));
        assert_eq!(
            state.task(&TaskId(Uuid::from_u128(1))),
            Lookup::Known(Some(Slot::Live(task(1))))
        );
    }

    #[test]
    fn a_committed_batch_updates_everything_it_touched() {
        let mut state = state();
        let remembered = Remembered {
            fingerprint: "f".into(),
            outcome: Outcome::Created {
                task: task(3),
                seq: 6,
            },
            raft_index: 11,
        };
        let changes = Changes {
            events: vec![],
            upserts: vec![task(3)],
            deletes: vec![TaskId(Uuid::from_u128(1))],
            keys: vec![("new-key".into(), remembered.clone())],
            tails: Some(ColumnTails([2048.0, 0.0, 0.0])),
            last_seq: 7,
        };
        state.committed(&changes, 12, 3);
        assert_eq!(
            (state.applied_index, state.applied_term, state.last_seq),
            (12, 3, 7)
        );
        assert_eq!(state.tails, ColumnTails([2048.0, 0.0, 0.0]));
        assert_eq!(
            state.task(&TaskId(Uuid::from_u128(3))),
            Lookup::Known(Some(Slot::Live(task(3))))
        );
        assert_eq!(
            state.task(&TaskId(Uuid::from_u128(1))),
            Lookup::Known(Some(Slot::Deleted))
        );
        assert_eq!(state.key("new-key"), Ok(Some(remembered)));
    }

    #[test]
    fn keys_never_used_skip_the_database_and_others_are_looked_up() {
        let state = state();
        assert_eq!(state.key("old-key"), Err(()), "it may exist: ask MySQL");
        let fresh = (0..10_000)
            .filter(|i| state.key(&format!("fresh-{i}")).is_err())
            .count();
        assert!(
            fresh < 20,
            "{fresh} false positives in 10,000 with one key stored"
        );
    }

    #[test]
    fn only_a_bounded_number_of_rows_is_cached() {
        let mut state = ApplyState::new(0, 0, 0, ColumnTails::default(), [], [], []);
        for n in 0..(CACHED_TASKS as u128 + 10) {
            state.cache_task(&task(n));
        }
        assert_eq!(
            state.task(&TaskId(Uuid::from_u128(0))),
            Lookup::Fetch,
            "the oldest row was dropped"
        );
        assert!(matches!(
            state.task(&TaskId(Uuid::from_u128(CACHED_TASKS as u128 + 9))),
            Lookup::Known(Some(_))
        ));
        assert_eq!(
            state.known_tasks(),
            CACHED_TASKS + 10,
            "but every id is still known"
        );
    }
}
