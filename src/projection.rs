//! Recently committed task rows, in memory, in front of the `tasks` table.
//!
//! Only the applier writes it, right after its MySQL COMMIT and before it
//! reports the applied index to the Raft node; a linearizable read waits
//! for that report (ReadIndex) before looking here, so it sees every write
//! acknowledged before it began, exactly as if it had read MySQL. The api
//! never fills it from a SELECT of its own: a row read from MySQL could be
//! overtaken by a commit before it was cached, and the cache would go back
//! in time. A task not held here is read from MySQL.
//!
//! The applier also decides commands against these rows. When its state is
//! in doubt (after any error), it clears the cache along with it.
//!
//! Beside the rows it holds the catalog (boards, columns, members and the
//! cards per column) as last committed, whole: the api and the WebSocket
//! sessions decide who sees which board with it. The applier replaces it
//! after each COMMIT, before it reports the applied index, so a read after
//! the ReadIndex barrier sees the catalog as of that write.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, RwLock};

use crate::task::{Catalog, Task, TaskId};

/// Rows kept; beyond this the oldest cached are dropped first.
const CAPACITY: usize = 50_000;
/// Bytes of rows kept (a row can hold 80 kB of description).
const CAPACITY_BYTES: usize = 64 << 20;

#[derive(Clone, Default)]
pub struct ProjectionCache {
    inner: Arc<RwLock<Inner>>,
    catalog: Arc<RwLock<Arc<Catalog>>>,
}

#[derive(Default)]
struct Inner {
    /// Each row with the stamp of its entry in `order`.
    rows: HashMap<TaskId, (Arc<Task>, u64)>,
    /// Ids in the order they were first cached, for eviction; an entry
    /// whose stamp no longer matches its row (removed, or cached again) is
    /// stale, and skipped. Compacted once stale entries outnumber the rows,
    /// so it stays within twice the rows (plus a little).
    order: VecDeque<(TaskId, u64)>,
    next_stamp: u64,
    bytes: usize,
}

/// About how much memory a task held in memory takes.
pub fn size_of(task: &Task) -> usize {
    256 + task.title.len()
        + task.description.len()
        + task.assignee.as_ref().map_or(0, String::len)
        + task.labels.iter().map(|l| l.len() + 24).sum::<usize>()
}

impl Inner {
    fn forget(&mut self, id: &TaskId) {
        if let Some((task, _)) = self.rows.remove(id) {
            self.bytes -= size_of(&task);
        }
    }

    fn evict(&mut self) {
        while self.rows.len() > CAPACITY || self.bytes > CAPACITY_BYTES {
            let Some((old, stamp)) = self.order.pop_front() else {
                break;
            };
            if self.rows.get(&old).is_some_and(|(_, s)| *s == stamp) {
                self.forget(&old);
            }
        }
        if self.order.len() > 2 * self.rows.len() + 1024 {
            let rows = &self.rows;
            self.order
                .retain(|(id, stamp)| rows.get(id).is_some_and(|(_, s)| s == stamp));
        }
    }
}

impl ProjectionCache {
    /// The catalog as last committed (the default board alone until the
    /// applier has loaded it).
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Publishes the catalog as MySQL now holds it (applier only).
    pub fn set_catalog(&self, catalog: Arc<Catalog>) {
        *self.catalog.write().unwrap_or_else(|e| e.into_inner()) = catalog;
    }

    pub fn get(&self, id: &TaskId) -> Option<Arc<Task>> {
        // Writers never panic while holding the lock; a poisoned one still
        // holds consistent rows.
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        inner.rows.get(id).map(|(task, _)| task.clone())
    }

    /// Records a row as MySQL holds it now (applier only).
    pub fn put(&self, task: Task) {
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let id = task.id;
        let size = size_of(&task);
        let stamp = match inner.rows.get(&id) {
            Some((old, stamp)) => {
                let (old_size, stamp) = (size_of(old), *stamp);
                inner.bytes -= old_size;
                stamp
            }
            None => {
                inner.next_stamp += 1;
                let stamp = inner.next_stamp;
                inner.order.push_back((id, stamp));
                stamp
            }
        };
        inner.bytes += size;
        inner.rows.insert(id, (Arc::new(task), stamp));
        inner.evict();
    }

    /// Forgets a deleted task (applier only).
    pub fn remove(&self, id: &TaskId) {
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        inner.forget(id);
        // Its entry in `order` is stale now: skipped, and compacted away.
        inner.evict();
    }

    /// Forgets everything, when the applier's view of MySQL is in doubt.
    pub fn clear(&self) {
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        inner.rows.clear();
        inner.order.clear();
        inner.bytes = 0;
    }

    pub fn len(&self) -> usize {
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .rows
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::task::{Priority, Status};
    use crate::time::Timestamp;

    fn task(n: u128, version: u64) -> Task {
        Task {
            id: TaskId(Uuid::from_u128(n)),
            title: format!("t{n}"),
            description: String::new(),
            status: Status::Todo,
            position: 1.0,
            priority: Priority::Low,
            assignee: None,
            labels: vec![],
            due_date: None,
            version,
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
            archived: false,
            board_id: crate::task::DEFAULT_BOARD,
            column_id: None,
        }
    }

    #[test]
    fn the_latest_row_wins_and_a_delete_forgets_it() {
        let cache = ProjectionCache::default();
        let id = TaskId(Uuid::from_u128(1));
        cache.put(task(1, 1));
        cache.put(task(1, 2));
        assert_eq!(cache.get(&id).map(|t| t.version), Some(2));
        cache.remove(&id);
        assert!(cache.get(&id).is_none());
        cache.put(task(2, 1));
        cache.clear();
        assert!(cache.is_empty());
    }

    #[test]
    fn creating_and_deleting_forever_keeps_the_eviction_order_bounded() {
        let cache = ProjectionCache::default();
        for n in 0..200_000u128 {
            cache.put(task(n, 1));
            if n % 10 != 0 {
                cache.remove(&TaskId(Uuid::from_u128(n)));
            }
            // Deleted and created again: one live entry, not two.
            if n % 7 == 0 {
                cache.put(task(n, 2));
            }
        }
        let inner = cache.inner.read().unwrap();
        assert!(inner.rows.len() <= CAPACITY);
        assert!(
            inner.order.len() <= 2 * inner.rows.len() + 1024,
            "{} ids in order for {} rows",
            inner.order.len(),
            inner.rows.len()
        );
        let bytes: usize = inner.rows.values().map(|(t, _)| size_of(t)).sum();
        assert_eq!(inner.bytes, bytes, "bytes are counted exactly");
        // The survivors are the newest live rows.
        assert!(inner.rows.contains_key(&TaskId(Uuid::from_u128(199_990))));
    }

    #[test]
    fn big_rows_are_capped_by_bytes() {
        let cache = ProjectionCache::default();
        for n in 0..2_000u128 {
            let mut t = task(n, 1);
            t.description = "🦀".repeat(20_000);
            cache.put(t);
        }
        let inner = cache.inner.read().unwrap();
        assert!(inner.bytes <= CAPACITY_BYTES, "{}", inner.bytes);
        assert!(inner.rows.len() < 2_000);
    }

    #[test]
    fn it_holds_at_most_its_capacity_dropping_the_oldest() {
        let cache = ProjectionCache::default();
        for n in 0..(CAPACITY as u128 + 5) {
            cache.put(task(n, 1));
        }
        assert_eq!(cache.len(), CAPACITY);
        assert!(cache.get(&TaskId(Uuid::from_u128(0))).is_none());
        assert!(cache
            .get(&TaskId(Uuid::from_u128(CAPACITY as u128 + 4)))
            .is_some());
    }
}
