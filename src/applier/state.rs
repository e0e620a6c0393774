//! What the applier knows of its database without asking it.
//!
//! The applier is the only writer of its database (a running node holds a
//! MySQL named lock on it), so after each COMMIT it can record in memory
//! what it wrote: the applied index, the last seq, the column tails, every
//! task id ever used and whether it is live or deleted, the rows of
//! recently touched tasks (in the [`ProjectionCache`] the api reads too),
//! and which idempotency keys exist (a Bloom filter, plus the outcomes of
//! recent ones). Most batches are then decided without a single SELECT.
//! Anything it does not hold is read from MySQL. After any error the whole
//! state, and the row cache with it, is dropped and read again, so it can
//! never drift from what MySQL committed.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::accounts::{Accounts, AccountsCache};
use crate::projection::{self, ProjectionCache};
use crate::task::{Changes, ColumnTails, Outcome, Remembered, Slot, Task, TaskId};
use crate::version::{Version, BASELINE};

/// Outcomes of recently used idempotency keys kept in memory: at most
/// this many, and at most this many bytes (an outcome holds the whole task,
/// description included, so a count alone let 20,000 keys of large tasks
/// hold hundreds of megabytes). Older ones are read from MySQL.
const RECENT_KEYS: usize = 20_000;
const RECENT_KEY_BYTES: usize = 8 << 20;
/// Keys added to the Bloom filter after which an expiry has the state read
/// afresh, rebuilding the filter from the keys still in MySQL: expired keys
/// cannot be taken out of it, and a filter never rebuilt would fill up
/// (false positives cost a SELECT each, never a wrong answer).
const BLOOM_REBUILD_AFTER: usize = 200_000;

/// The answer for one task id or idempotency key: what the state knows
/// (`None`: it does not exist), or "ask MySQL".
#[derive(Debug, PartialEq)]
pub enum Lookup<T> {
    Known(Option<T>),
    Fetch,
}

pub struct ApplyState {
    pub applied_index: u64,
    pub applied_term: u64,
    pub last_seq: u64,
    pub tails: ColumnTails,
    /// Every id ever used: true while live, false once deleted.
    known: HashMap<TaskId, bool>,
    /// Rows of recently touched tasks, shared with the api's reads.
    rows: ProjectionCache,
    keys: Bloom,
    recent_keys: HashMap<String, Remembered>,
    recent_order: VecDeque<String>,
    /// Set when an expiry found the Bloom filter worth rebuilding.
    stale: bool,
    /// About how much memory `recent_keys` holds.
    recent_bytes: usize,
    /// Every account, as committed; published to the api through `cache`.
    accounts: Arc<Accounts>,
    cache: AccountsCache,
    /// The cluster version as the log decided it (`set_cluster_version`).
    pub cluster_version: Version,
}

/// About how much memory one remembered key takes.
fn remembered_size(key: &str, remembered: &Remembered) -> usize {
    let task = match &remembered.outcome {
        Outcome::Created { task, .. }
        | Outcome::Updated { task, .. }
        | Outcome::Unchanged { task, .. }
        | Outcome::Deleted { task, .. } => projection::size_of(task),
        Outcome::Rejected { .. }
        | Outcome::Account { .. }
        | Outcome::KeysExpired { .. }
        | Outcome::Recorded { .. } => 512,
    };
    2 * key.len() + remembered.fingerprint.len() + task
}

impl ApplyState {
    /// A state read from MySQL: `used` lists every id ever used and `live`
    /// those still live. `rows` is emptied.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        applied_index: u64,
        applied_term: u64,
        last_seq: u64,
        tails: ColumnTails,
        live: impl IntoIterator<Item = TaskId>,
        used: impl IntoIterator<Item = TaskId>,
        keys: impl IntoIterator<Item = String>,
        rows: ProjectionCache,
    ) -> ApplyState {
        let mut known = HashMap::new();
        for id in used {
            known.insert(id, false);
        }
        for id in live {
            known.insert(id, true);
        }
        rows.clear();
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
            rows,
            keys: bloom,
            recent_keys: HashMap::new(),
            recent_order: VecDeque::new(),
            stale: false,
            recent_bytes: 0,
            accounts: Arc::default(),
            cache: AccountsCache::default(),
            cluster_version: BASELINE,
        }
    }

    /// Takes the accounts read from MySQL along with the rest, and
    /// publishes them to the api through `cache`.
    pub fn with_accounts(mut self, accounts: Accounts, cache: AccountsCache) -> ApplyState {
        self.accounts = Arc::new(accounts);
        cache.set(Some(self.accounts.clone()));
        self.cache = cache;
        self
    }

    pub fn accounts(&self) -> &Accounts {
        &self.accounts
    }

    /// Records accounts that MySQL has committed, for the api too.
    pub fn accounts_committed(&mut self, accounts: Accounts) {
        self.accounts = Arc::new(accounts);
        self.cache.set(Some(self.accounts.clone()));
    }

    pub fn task(&self, id: &TaskId) -> Lookup<Slot> {
        match self.known.get(id) {
            None => Lookup::Known(None),
            Some(false) => Lookup::Known(Some(Slot::Deleted)),
            Some(true) => match self.rows.get(id) {
                Some(task) => Lookup::Known(Some(Slot::Live((*task).clone()))),
                None => Lookup::Fetch,
            },
        }
    }

    /// `Known(None)` for a key never used; `Fetch` when it may have been.
    pub fn key(&self, key: &str) -> Lookup<Remembered> {
        if let Some(remembered) = self.recent_keys.get(key) {
            return Lookup::Known(Some(remembered.clone()));
        }
        if self.keys.may_contain(key) {
            Lookup::Fetch
        } else {
            Lookup::Known(None)
        }
    }

    /// Keeps a row read from MySQL for next time (nothing else writes the
    /// table, so it is the row as committed).
    pub fn cache_task(&mut self, task: &Task) {
        self.rows.put(task.clone());
    }

    fn remember_key(&mut self, key: &str, remembered: &Remembered) {
        self.keys.insert(key);
        self.recent_bytes += remembered_size(key, remembered);
        match self.recent_keys.insert(key.to_string(), remembered.clone()) {
            Some(old) => self.recent_bytes -= remembered_size(key, &old),
            None => self.recent_order.push_back(key.to_string()),
        }
        while self.recent_order.len() > RECENT_KEYS || self.recent_bytes > RECENT_KEY_BYTES {
            let Some(old) = self.recent_order.pop_front() else {
                break;
            };
            if let Some(forgotten) = self.recent_keys.remove(&old) {
                self.recent_bytes -= remembered_size(&old, &forgotten);
            }
        }
    }

    /// Bytes the remembered outcomes hold (tests).
    #[cfg(test)]
    fn recent_key_bytes(&self) -> usize {
        self.recent_bytes
    }

    /// Records a batch that MySQL has committed.
    pub fn committed(&mut self, changes: &Changes, applied_index: u64, applied_term: u64) {
        for task in &changes.upserts {
            self.known.insert(task.id, true);
            self.rows.put(task.clone());
        }
        for id in &changes.deletes {
            self.known.insert(*id, false);
            self.rows.remove(id);
        }
        if let Some(before) = changes.expired_before {
            self.expire_keys(before);
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

    /// Forgets the remembered keys first used before `before`, as MySQL
    /// just deleted them.
    fn expire_keys(&mut self, before: crate::time::Timestamp) {
        let mut freed = 0;
        self.recent_keys.retain(|key, remembered| {
            let keep = remembered.at >= before;
            if !keep {
                freed += remembered_size(key, remembered);
            }
            keep
        });
        self.recent_bytes -= freed;
        let recent = &self.recent_keys;
        self.recent_order.retain(|key| recent.contains_key(key));
        if self.keys.inserted > BLOOM_REBUILD_AFTER {
            self.stale = true;
        }
    }

    /// Whether the state should be read afresh (after an expiry, to
    /// rebuild the Bloom filter without the expired keys).
    pub fn stale(&self) -> bool {
        self.stale
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
    /// Keys inserted since it was built.
    inserted: usize,
}

const BLOOM_BITS: u64 = 1 << 23;
const BLOOM_HASHES: u64 = 5;

impl Bloom {
    fn new() -> Bloom {
        Bloom {
            bits: vec![0; (BLOOM_BITS / 64) as usize],
            inserted: 0,
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
        self.inserted += 1;
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
        let used = [TaskId(Uuid::from_u128(1)), TaskId(Uuid::from_u128(2))];
        ApplyState::new(
            10,
            2,
            5,
            ColumnTails::default(),
            live,
            used,
            ["old-key".to_string()],
            ProjectionCache::default(),
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
            at: Timestamp(100),
        };
        let changes = Changes {
            events: vec![],
            upserts: vec![task(3)],
            deletes: vec![TaskId(Uuid::from_u128(1))],
            keys: vec![("new-key".into(), remembered.clone())],
            tails: Some(ColumnTails([2048.0, 0.0, 0.0])),
            last_seq: 7,
            expired_before: None,
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
        assert_eq!(state.key("new-key"), Lookup::Known(Some(remembered)));
    }

    #[test]
    fn an_expiry_forgets_the_remembered_keys_before_its_cutoff() {
        let mut state = state();
        let remembered = |at: i64| Remembered {
            fingerprint: "f".into(),
            outcome: Outcome::Rejected {
                rejection: crate::task::Rejection::NotFound {
                    id: TaskId(Uuid::from_u128(9)),
                },
            },
            raft_index: 11,
            at: Timestamp(at),
        };
        let changes = Changes {
            keys: vec![
                ("old".into(), remembered(10)),
                ("new".into(), remembered(20)),
            ],
            last_seq: 5,
            ..Changes::default()
        };
        state.committed(&changes, 11, 2);
        let expiry = Changes {
            last_seq: 5,
            expired_before: Some(Timestamp(15)),
            ..Changes::default()
        };
        state.committed(&expiry, 12, 2);
        assert_eq!(
            state.key("old"),
            Lookup::Fetch,
            "no longer known in memory: MySQL says (it was deleted)"
        );
        assert_eq!(state.key("new"), Lookup::Known(Some(remembered(20))));
        assert_eq!(state.recent_order.len(), 1);
        assert!(!state.stale(), "a small filter is kept");
    }

    #[test]
    fn keys_never_used_skip_the_database_and_others_are_looked_up() {
        let state = state();
        assert_eq!(
            state.key("old-key"),
            Lookup::Fetch,
            "it may exist: ask MySQL"
        );
        let fresh = (0..10_000)
            .filter(|i| state.key(&format!("fresh-{i}")) == Lookup::Fetch)
            .count();
        assert!(
            fresh < 20,
            "{fresh} false positives in 10,000 with one key stored"
        );
    }

    #[test]
    fn remembered_outcomes_of_large_tasks_are_capped_by_bytes() {
        // A regression: the cap was 20,000 keys whatever their size, and
        // each outcome holds the whole task, so 1,000 creates with 19 kB
        // descriptions grew a node by over 100 MiB (tests/ws.rs).
        let mut state = state();
        let mut big = task(3);
        big.description = "x".repeat(80_000);
        for i in 0..1_000 {
            let remembered = Remembered {
                fingerprint: "f".into(),
                outcome: Outcome::Created {
                    task: big.clone(),
                    seq: i,
                },
                raft_index: i,
                at: Timestamp(i as i64),
            };
            let changes = Changes {
                keys: vec![(format!("key-{i}"), remembered)],
                last_seq: i,
                ..Changes::default()
            };
            state.committed(&changes, i, 1);
        }
        assert!(
            state.recent_key_bytes() <= RECENT_KEY_BYTES,
            "{} bytes remembered",
            state.recent_key_bytes()
        );
        assert!(matches!(state.key("key-999"), Lookup::Known(Some(_))));
        assert_eq!(state.key("key-0"), Lookup::Fetch, "forgotten: ask MySQL");
        let held: usize = state
            .recent_keys
            .iter()
            .map(|(k, r)| remembered_size(k, r))
            .sum();
        assert_eq!(held, state.recent_key_bytes(), "bytes are counted exactly");
    }

    /// The bytes remembered, counted afresh.
    fn held_bytes(state: &ApplyState) -> usize {
        state
            .recent_keys
            .iter()
            .map(|(k, r)| remembered_size(k, r))
            .sum()
    }

    #[test]
    fn an_expiry_gives_back_the_bytes_of_the_keys_it_forgets() {
        // Merging retention with the byte cap: an expiry that dropped keys
        // but not their bytes would leave the cap believing memory full, and
        // every later key would be forgotten at once.
        let mut state = state();
        let mut big = task(3);
        big.description = "x".repeat(80_000);
        let remembered = |i: u64| Remembered {
            fingerprint: "f".into(),
            outcome: Outcome::Created {
                task: big.clone(),
                seq: i,
            },
            raft_index: i,
            at: Timestamp(i as i64),
        };
        for i in 0..60 {
            let changes = Changes {
                keys: vec![(format!("key-{i}"), remembered(i))],
                last_seq: i,
                ..Changes::default()
            };
            state.committed(&changes, i, 1);
        }
        let before = state.recent_key_bytes();
        assert!(before > 0);
        assert_eq!(held_bytes(&state), before);

        // Keys first used at 0..30 expire, 30..60 stay.
        let expiry = Changes {
            last_seq: 60,
            expired_before: Some(Timestamp(30)),
            ..Changes::default()
        };
        state.committed(&expiry, 60, 1);
        assert_eq!(state.recent_keys.len(), 30);
        assert_eq!(held_bytes(&state), state.recent_key_bytes());
        assert!(state.recent_key_bytes() < before);

        // Every remaining key expires: nothing is held, nothing counted.
        let all = Changes {
            last_seq: 60,
            expired_before: Some(Timestamp(1_000)),
            ..Changes::default()
        };
        state.committed(&all, 61, 1);
        assert_eq!(state.recent_key_bytes(), 0);
        assert!(state.recent_order.is_empty());

        // And the freed room is used again: a new key is held in memory.
        let changes = Changes {
            keys: vec![("fresh".into(), remembered(2_000))],
            last_seq: 61,
            ..Changes::default()
        };
        state.committed(&changes, 62, 1);
        assert!(matches!(state.key("fresh"), Lookup::Known(Some(_))));
        assert_eq!(held_bytes(&state), state.recent_key_bytes());
    }

    #[test]
    fn committed_rows_are_shared_with_readers_and_a_reload_clears_them() {
        let rows = ProjectionCache::default();
        let mut state = ApplyState::new(0, 0, 0, ColumnTails::default(), [], [], [], rows.clone());
        let changes = Changes {
            upserts: vec![task(7)],
            last_seq: 1,
            ..Changes::default()
        };
        state.committed(&changes, 1, 1);
        assert_eq!(
            rows.get(&TaskId(Uuid::from_u128(7))).map(|t| t.version),
            Some(1)
        );
        let _reloaded = ApplyState::new(
            1,
            1,
            1,
            ColumnTails::default(),
            [TaskId(Uuid::from_u128(7))],
            [],
            [],
            rows.clone(),
        );
        assert!(rows.is_empty(), "a state read afresh starts with no rows");
    }
}
