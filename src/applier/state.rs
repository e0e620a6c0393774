//! What the applier knows of its database without asking it.
//!
//! The applier is the only writer of its database (a running node holds a
//! MySQL named lock on it), so after each COMMIT it can record in memory
//! what it wrote: the applied index, the last seq, the column tails, which
//! task ids were ever used and which idempotency keys exist (a [`Filter`]
//! each: "certainly not" or "perhaps"), the rows of recently touched tasks
//! (in the [`ProjectionCache`] the api reads too) and the outcomes of
//! recent keys. Most batches are then decided without a single SELECT: a
//! fresh id or key is certainly new, and a recent task's row is at hand.
//! Anything it does not hold is read from MySQL. The filters take a scan of
//! the history, so they are read in the background (see [`Filters`]):
//! nothing waits for them. An expiry cannot take keys out of a filter, so
//! once most of the key filter's keys have expired ([`KeyAges`]) that
//! filter alone is read again, the same way. After any error the whole
//! state, and the row cache with it, is dropped and read again, so it can
//! never drift from what MySQL committed.
//!
//! Nothing here grows by more than the filters' bits as history grows
//! (about 1.5 bytes per id or key): the rows and the outcomes are bounded
//! caches, and whether an id is live or deleted is not held at all (a
//! task neither cached nor certainly new is read from MySQL).

mod ages;
mod filter;
mod load;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

pub use self::ages::KeyAges;
pub use self::filter::{hash_id, hash_key, Filter};
pub use self::load::{load_filters, load_key_filter, with_events};

use crate::accounts::{Accounts, AccountsCache};
use crate::projection::{self, ProjectionCache};
use crate::task::{Catalog, Changes, ColumnTails, Outcome, Remembered, Slot, Task, TaskId};
use crate::version::{Version, BASELINE};

/// Outcomes of recently used idempotency keys kept in memory: at most
/// this many, and at most this many bytes (an outcome holds the whole task,
/// description included, so a count alone let 20,000 keys of large tasks
/// hold hundreds of megabytes). Older ones are read from MySQL.
const RECENT_KEYS: usize = 20_000;
const RECENT_KEY_BYTES: usize = 8 << 20;

/// The answer for one task id or idempotency key: what the state knows
/// (`None`: it does not exist), or "ask MySQL". For a task, "ask" means
/// its row if it is live, else whether it has events (deleted) or not
/// (never used).
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
    /// Every id ever used and every idempotency key held, once read.
    filters: Filters,
    /// Rows of recently touched tasks, shared with the api's reads.
    rows: ProjectionCache,
    /// When the keys of the key filter were first used, as far as known.
    key_ages: KeyAges,
    recent_keys: HashMap<String, Remembered>,
    recent_order: VecDeque<String>,
    /// Set when an expiry left the key filter worth rebuilding.
    keys_stale: bool,
    /// About how much memory `recent_keys` holds.
    recent_bytes: usize,
    /// Every account, as committed; published to the api through `cache`.
    accounts: Arc<Accounts>,
    cache: AccountsCache,
    /// The cluster version as the log decided it (`set_cluster_version`).
    pub cluster_version: Version,
    /// Boards, columns, members and cards per column, as committed;
    /// published to the api through `rows`.
    catalog: Arc<Catalog>,
}

/// The filters of every task id ever used (live or deleted) and of every
/// idempotency key MySQL holds (and some expired ones). Reading them takes
/// a scan of the history (about 2 s a million events), so a node does not
/// wait for it: a filter being read answers "ask MySQL" for every value it
/// does not cache, and keeps what is committed meanwhile, to add once read.
struct Filters {
    ids: FilterSlot,
    keys: FilterSlot,
}

enum FilterSlot {
    /// Being read; the hashes committed since the read began.
    Loading(Vec<u64>),
    Ready(Filter),
}

impl FilterSlot {
    fn may_contain(&self, hash: u64) -> bool {
        match self {
            FilterSlot::Loading(_) => true,
            FilterSlot::Ready(filter) => filter.may_contain(hash),
        }
    }

    fn insert(&mut self, hash: u64) {
        match self {
            FilterSlot::Loading(committed) => committed.push(hash),
            FilterSlot::Ready(filter) => filter.insert(hash),
        }
    }

    /// Takes the filter read, with what was committed while it was read.
    fn loaded(&mut self, mut filter: Filter) {
        if let FilterSlot::Loading(committed) = self {
            for hash in committed.drain(..) {
                filter.insert(hash);
            }
        }
        *self = FilterSlot::Ready(filter);
    }
}

impl Filters {
    fn may_contain_id(&self, hash: u64) -> bool {
        self.ids.may_contain(hash)
    }

    fn may_contain_key(&self, hash: u64) -> bool {
        self.keys.may_contain(hash)
    }

    fn insert_id(&mut self, hash: u64) {
        self.ids.insert(hash)
    }

    fn insert_key(&mut self, hash: u64) {
        self.keys.insert(hash)
    }
}

/// About how much memory one remembered key takes.
fn remembered_size(key: &str, remembered: &Remembered) -> usize {
    let task = match &remembered.outcome {
        Outcome::Created { task, .. }
        | Outcome::Updated { task, .. }
        | Outcome::Unchanged { task, .. }
        | Outcome::Deleted { task, .. } => projection::size_of(task),
        Outcome::Comment { comment, .. } => 512 + comment.body.len(),
        Outcome::Webhook { webhook, .. } => 512 + webhook.url.len() + webhook.description.len(),
        Outcome::Checklist { checklist, .. } => {
            512 + checklist
                .items
                .iter()
                .map(|i| 64 + i.text.len())
                .sum::<usize>()
        }
        Outcome::Rejected { .. }
        | Outcome::Account { .. }
        | Outcome::KeysExpired { .. }
        | Outcome::Recorded { .. }
        | Outcome::Board { .. }
        | Outcome::Column { .. }
        | Outcome::Member { .. } => 512,
    };
    2 * key.len() + remembered.fingerprint.len() + task
}

impl ApplyState {
    /// A state read from MySQL, without its filters until
    /// [`ApplyState::filters_loaded`]. `rows` is emptied.
    pub fn new(
        applied_index: u64,
        applied_term: u64,
        last_seq: u64,
        tails: ColumnTails,
        rows: ProjectionCache,
    ) -> ApplyState {
        rows.clear();
        ApplyState {
            applied_index,
            applied_term,
            last_seq,
            tails,
            filters: Filters {
                ids: FilterSlot::Loading(Vec::new()),
                keys: FilterSlot::Loading(Vec::new()),
            },
            rows,
            key_ages: KeyAges::default(),
            recent_keys: HashMap::new(),
            recent_order: VecDeque::new(),
            keys_stale: false,
            recent_bytes: 0,
            accounts: Arc::default(),
            cache: AccountsCache::default(),
            cluster_version: BASELINE,
            catalog: Arc::default(),
        }
    }

    /// Takes the filters read from MySQL ([`load_filters`]) after this
    /// state was: `ids` of every task id ever used ([`hash_id`]), `keys` of
    /// every idempotency key ([`hash_key`]) with their `ages`, as MySQL held
    /// them at some moment since. What was committed since the state was
    /// read is added, so they miss nothing MySQL holds.
    pub fn filters_loaded(&mut self, ids: Filter, keys: Filter, ages: KeyAges) {
        self.filters.ids.loaded(ids);
        self.keys_loaded(keys, ages);
    }

    /// Takes a key filter read afresh ([`load_key_filter`]) after
    /// [`ApplyState::take_key_rebuild`], likewise.
    pub fn keys_loaded(&mut self, keys: Filter, ages: KeyAges) {
        self.filters.keys.loaded(keys);
        self.key_ages.merge(ages);
    }

    /// Once, after an expiry that left most of the key filter's keys
    /// expired: starts its rebuild (the key filter answers "ask MySQL"
    /// until [`ApplyState::keys_loaded`]) and says the caller must read it.
    /// The id filter, the rows and the rest stay as they are.
    pub fn take_key_rebuild(&mut self) -> bool {
        if !std::mem::take(&mut self.keys_stale) {
            return false;
        }
        if let FilterSlot::Ready(_) = self.filters.keys {
            self.filters.keys = FilterSlot::Loading(Vec::new());
            self.key_ages = KeyAges::default();
            return true;
        }
        false
    }

    /// Whether the filters are read (until then every id and key not in
    /// memory is asked of MySQL).
    #[cfg(test)]
    fn filters_ready(&self) -> bool {
        matches!(
            self.filters,
            Filters {
                ids: FilterSlot::Ready(_),
                keys: FilterSlot::Ready(_)
            }
        )
    }

    /// Takes the catalog read from MySQL, and publishes it to the api.
    pub fn with_catalog(mut self, catalog: Catalog) -> ApplyState {
        self.catalog = Arc::new(catalog);
        self.rows.set_catalog(self.catalog.clone());
        self
    }

    /// The catalog a committed batch left, published to the api.
    pub fn catalog_committed(&mut self, catalog: Catalog) {
        self.catalog = Arc::new(catalog);
        self.rows.set_catalog(self.catalog.clone());
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
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

    /// The cache holds only live rows as committed (a delete removes its
    /// row), so a row found there is the answer; an id the filter has
    /// never seen was never used.
    pub fn task(&self, id: &TaskId) -> Lookup<Slot> {
        if let Some(task) = self.rows.get(id) {
            return Lookup::Known(Some(Slot::Live((*task).clone())));
        }
        if self.filters.may_contain_id(hash_id(id)) {
            Lookup::Fetch
        } else {
            Lookup::Known(None)
        }
    }

    /// `Known(None)` for a key never used; `Fetch` when it may have been.
    pub fn key(&self, key: &str) -> Lookup<Remembered> {
        if let Some(remembered) = self.recent_keys.get(key) {
            return Lookup::Known(Some(remembered.clone()));
        }
        if self.filters.may_contain_key(hash_key(key)) {
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
        self.filters.insert_key(hash_key(key));
        self.key_ages.add(remembered.at);
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
            // Repeats (updates) only take bits that are set already.
            self.filters.insert_id(hash_id(&task.id));
            self.rows.put(task.clone());
        }
        for id in &changes.deletes {
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
        self.key_ages.expire(before);
        if self.key_ages.worth_rebuilding() {
            self.keys_stale = true;
        }
    }

    /// Bytes the id and key filters take.
    #[cfg(test)]
    fn filter_bytes(&self) -> usize {
        [&self.filters.ids, &self.filters.keys]
            .iter()
            .map(|slot| match slot {
                FilterSlot::Loading(_) => 0,
                FilterSlot::Ready(filter) => filter.bytes(),
            })
            .sum()
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
            archived: false,
            board_id: crate::task::DEFAULT_BOARD,
            column_id: None,
        }
    }

    fn remembered(at: i64) -> Remembered {
        Remembered {
            fingerprint: "f".into(),
            outcome: Outcome::Rejected {
                rejection: crate::task::Rejection::NotFound {
                    id: TaskId(Uuid::from_u128(9)),
                },
            },
            raft_index: 11,
            at: Timestamp(at),
        }
    }

    /// Ids 1 (live) and 2 (deleted) were used, and the key `old-key`.
    fn state() -> ApplyState {
        let used = [
            hash_id(&TaskId(Uuid::from_u128(1))),
            hash_id(&TaskId(Uuid::from_u128(2))),
        ];
        let mut state =
            ApplyState::new(10, 2, 5, ColumnTails::default(), ProjectionCache::default());
        state.filters_loaded(
            Filter::of(&used),
            Filter::of(&[hash_key("old-key")]),
            KeyAges::default(),
        );
        state
    }

    fn empty(rows: ProjectionCache) -> ApplyState {
        let mut state = ApplyState::new(0, 0, 0, ColumnTails::default(), rows);
        state.filters_loaded(Filter::of(&[]), Filter::of(&[]), KeyAges::default());
        state
    }

    #[test]
    fn ids_never_used_are_known_without_asking_and_live_rows_are_fetched_once() {
        let mut state = state();
        assert_eq!(state.task(&TaskId(Uuid::from_u128(9))), Lookup::Known(None));
        assert_eq!(
            state.task(&TaskId(Uuid::from_u128(2))),
            Lookup::Fetch,
            "used: MySQL says whether live or deleted"
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
            catalog: Default::default(),
            comment_upserts: vec![],
            comment_deletes: vec![],
            checklist_upserts: vec![],
            checklist_deletes: vec![],
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
            Lookup::Fetch,
            "deleted: its row is gone, MySQL says it was deleted"
        );
        assert_eq!(state.key("new-key"), Lookup::Known(Some(remembered)));
    }

    #[test]
    fn an_expiry_forgets_the_remembered_keys_before_its_cutoff() {
        let mut state = state();
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
        assert!(!state.take_key_rebuild(), "a small filter is kept");
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
        let mut state = empty(rows.clone());
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
        let _reloaded = ApplyState::new(1, 1, 1, ColumnTails::default(), rows.clone());
        assert!(rows.is_empty(), "a state read afresh starts with no rows");
    }

    #[test]
    fn a_deleted_task_is_never_taken_for_live_or_for_new() {
        let mut state = empty(ProjectionCache::default());
        let id = TaskId(Uuid::from_u128(7));
        let created = Changes {
            upserts: vec![task(7)],
            last_seq: 1,
            ..Changes::default()
        };
        state.committed(&created, 1, 1);
        assert_eq!(state.task(&id), Lookup::Known(Some(Slot::Live(task(7)))));
        let deleted = Changes {
            deletes: vec![id],
            last_seq: 2,
            ..Changes::default()
        };
        state.committed(&deleted, 2, 1);
        assert_eq!(
            state.task(&id),
            Lookup::Fetch,
            "its id was used: MySQL says it is deleted (a create with it is refused)"
        );
    }

    #[test]
    fn ids_created_beyond_the_room_the_filter_was_built_with_are_still_known() {
        // The filter was sized for an empty table; 300,000 creates later
        // every one of them is still "perhaps" (never taken for new), and
        // fresh ids still mostly skip MySQL.
        let mut state = empty(ProjectionCache::default());
        for chunk in 0..30u128 {
            let changes = Changes {
                upserts: (0..10_000).map(|i| task(chunk * 10_000 + i)).collect(),
                last_seq: chunk as u64,
                ..Changes::default()
            };
            state.committed(&changes, chunk as u64 + 1, 1);
        }
        assert!((0..300_000u128)
            .all(|n| state.task(&TaskId(Uuid::from_u128(n))) != Lookup::Known(None)));
        let fresh = (0..100_000u128)
            .filter(|n| state.task(&TaskId(Uuid::from_u128(1 << 64 | n))) == Lookup::Fetch)
            .count();
        assert!(
            fresh < 1_000,
            "{fresh} of 100,000 fresh ids would pay a SELECT"
        );
        assert!(
            state.filter_bytes() < 4 << 20,
            "{} bytes",
            state.filter_bytes()
        );
    }

    #[test]
    fn until_the_filters_arrive_everything_is_asked_and_nothing_committed_meanwhile_is_lost() {
        let mut state =
            ApplyState::new(10, 2, 5, ColumnTails::default(), ProjectionCache::default());
        assert!(!state.filters_ready());
        // Not even a fresh id or key is taken for new without its filter.
        assert_eq!(state.task(&TaskId(Uuid::from_u128(9))), Lookup::Fetch);
        assert_eq!(state.key("fresh"), Lookup::Fetch);

        // Committed while the filters were being read: task 3 and key
        // `during`, perhaps after the scan passed them.
        let changes = Changes {
            upserts: vec![task(3)],
            keys: vec![("during".into(), remembered(1_000))],
            last_seq: 6,
            ..Changes::default()
        };
        state.committed(&changes, 11, 2);
        // Its row and outcome are cached; forget them, as a full cache would.
        state.rows.clear();
        state.recent_keys.clear();
        state.recent_order.clear();

        // The scan saw only what came before: ids 1 and 2, key `old-key`.
        let scanned = [
            hash_id(&TaskId(Uuid::from_u128(1))),
            hash_id(&TaskId(Uuid::from_u128(2))),
        ];
        state.filters_loaded(
            Filter::of(&scanned),
            Filter::of(&[hash_key("old-key")]),
            KeyAges::default(),
        );
        assert!(state.filters_ready());
        for used in [1, 2, 3] {
            assert_eq!(
                state.task(&TaskId(Uuid::from_u128(used))),
                Lookup::Fetch,
                "id {used}"
            );
        }
        assert_eq!(state.key("during"), Lookup::Fetch);
        assert_eq!(state.key("old-key"), Lookup::Fetch);
        assert_eq!(state.task(&TaskId(Uuid::from_u128(9))), Lookup::Known(None));
        assert_eq!(state.key("fresh"), Lookup::Known(None));
    }

    #[test]
    fn an_expiry_of_most_keys_reads_the_key_filter_again_and_nothing_else() {
        // It used to drop the whole state: every id of the history read
        // again, the cards counted, the row cache emptied, each time an
        // expiry came after 200,000 keys, whether it expired any or not.
        let mut state = state();
        state.cache_task(&task(1));
        let minute = |m: i64| Timestamp(m * 60_000);
        state.key_ages.add_minute(1, ages::REBUILD_AFTER);
        let expiry = |before: Timestamp| Changes {
            last_seq: 5,
            expired_before: Some(before),
            ..Changes::default()
        };
        state.key_ages.add_minute(100, ages::REBUILD_AFTER + 1);
        state.committed(&expiry(minute(2)), 11, 2);
        assert!(!state.take_key_rebuild(), "fewer expired than live");

        state.committed(&expiry(minute(101)), 12, 2);
        assert!(state.take_key_rebuild());
        assert!(!state.take_key_rebuild(), "asked once");
        assert_eq!(
            state.task(&TaskId(Uuid::from_u128(1))),
            Lookup::Known(Some(Slot::Live(task(1)))),
            "the rows stay"
        );
        assert_eq!(
            state.task(&TaskId(Uuid::from_u128(9))),
            Lookup::Known(None),
            "the id filter stays"
        );
        assert_eq!(
            state.key("fresh"),
            Lookup::Fetch,
            "keys: ask MySQL meanwhile"
        );

        // Committed while the keys were read, perhaps after the scan passed.
        let during = Changes {
            keys: vec![("during".into(), remembered(200 * 60_000))],
            last_seq: 5,
            ..Changes::default()
        };
        state.committed(&during, 13, 2);
        state.recent_keys.clear();
        state.recent_order.clear();
        let mut read = KeyAges::default();
        read.add_minute(150, 10);
        state.keys_loaded(Filter::of(&[hash_key("kept")]), read);
        assert_eq!(state.key("during"), Lookup::Fetch);
        assert_eq!(state.key("kept"), Lookup::Fetch);
        assert_eq!(state.key("fresh"), Lookup::Known(None));
        assert_eq!(state.key_ages.live(), 11, "read and committed since");
        assert_eq!(state.key_ages.expired(), 0);
        assert!(!state.take_key_rebuild());
    }
}
