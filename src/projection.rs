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

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, RwLock};

use crate::task::{Task, TaskId};

/// Rows kept; beyond this the oldest cached are dropped first.
const CAPACITY: usize = 50_000;

#[derive(Clone, Default)]
pub struct ProjectionCache {
    inner: Arc<RwLock<Inner>>,
}

#[derive(Default)]
struct Inner {
    rows: HashMap<TaskId, Arc<Task>>,
    /// Ids in the order they were first cached, for eviction.
    order: VecDeque<TaskId>,
}

impl ProjectionCache {
    pub fn get(&self, id: &TaskId) -> Option<Arc<Task>> {
        // Writers never panic while holding the lock; a poisoned one still
        // holds consistent rows.
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        inner.rows.get(id).cloned()
    }

    /// Records a row as MySQL holds it now (applier only).
    pub fn put(&self, task: Task) {
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let id = task.id;
        if inner.rows.insert(id, Arc::new(task)).is_none() {
            inner.order.push_back(id);
        }
        while inner.rows.len() > CAPACITY {
            let Some(old) = inner.order.pop_front() else {
                break;
            };
            inner.rows.remove(&old);
        }
    }

    /// Forgets a deleted task (applier only).
    pub fn remove(&self, id: &TaskId) {
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        inner.rows.remove(id);
        // Its place in `order` goes when it reaches the front.
    }

    /// Forgets everything, when the applier's view of MySQL is in doubt.
    pub fn clear(&self) {
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        inner.rows.clear();
        inner.order.clear();
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
