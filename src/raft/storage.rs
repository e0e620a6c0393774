//! The durable Raft log: entries, `HardState`, `ConfState` and snapshot
//! metadata, kept by TiKV's raft-engine under `data_dir`.
//!
//! raft-engine writes each batch as one checksummed record and, on open,
//! replays the files, dropping a torn last record (a crash mid-write) and
//! refusing corruption anywhere else. One [`LogStore::persist`] call is one
//! batch and at most one fsync: a Ready's entries and its `HardState`
//! become durable together.
//!
//! The store is shared: the Raft node writes it and reads it through
//! raft-rs's [`Storage`] trait, and the applier reads committed entries from
//! it by index, so committed-but-unapplied entries wait on disk, not in
//! memory, while MySQL is slow or down.
//!
//! Not implemented yet: compaction and snapshots. The log keeps every entry;
//! `snapshot()` reports a snapshot as temporarily unavailable, which is never
//! asked for while nothing is compacted.

use std::path::Path;
use std::sync::{Arc, RwLock};

use raft::eraftpb::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft::{GetEntriesContext, RaftState, Storage, StorageError};
use raft_engine::{Config as EngineConfig, Engine, LogBatch, MessageExt, ReadableSize};

/// raft-engine keeps many Raft groups; a taskraft node has exactly one.
const GROUP: u64 = 1;
const HARD_STATE_KEY: &[u8] = b"hard_state";
const CONF_STATE_KEY: &[u8] = b"conf_state";
const SNAPSHOT_META_KEY: &[u8] = b"snapshot_meta";
/// The log index of the membership change that produced `conf_state`.
const CONF_INDEX_KEY: &[u8] = b"conf_index";

struct EntryType;

impl MessageExt for EntryType {
    type Entry = Entry;
    fn index(e: &Entry) -> u64 {
        e.index
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("raft log engine: {0}")]
    Engine(#[from] raft_engine::Error),
}

/// The raft-rs `Storage` of this node, backed by raft-engine.
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    /// The durable state, cached: raft-rs asks for it often.
    meta: RwLock<Meta>,
}

#[derive(Clone, Default)]
struct Meta {
    hard_state: HardState,
    conf_state: ConfState,
    conf_index: u64,
    /// Index and term of the last entry a snapshot replaced (0, 0 if none).
    snapshot: SnapshotMetadata,
}

impl LogStore {
    /// Opens (or creates) the log under `dir`, recovering what was written.
    pub fn open(dir: &Path) -> Result<LogStore, LogError> {
        let config = EngineConfig {
            dir: dir.to_string_lossy().into_owned(),
            target_file_size: ReadableSize::mb(32),
            // Recycled files are pre-filled; plain appends keep the files
            // readable by eye and a torn tail easy to reason about.
            enable_log_recycle: false,
            // The applier reads entries back one by one; uncompressed blocks
            // keep that cheap.
            batch_compression_threshold: ReadableSize(0),
            ..EngineConfig::default()
        };
        let engine = Engine::open(config)?;
        let meta = Meta {
            hard_state: engine
                .get_message::<HardState>(GROUP, HARD_STATE_KEY)?
                .unwrap_or_default(),
            conf_state: engine
                .get_message::<ConfState>(GROUP, CONF_STATE_KEY)?
                .unwrap_or_default(),
            conf_index: engine
                .get(GROUP, CONF_INDEX_KEY)
                .and_then(|bytes| bytes.try_into().ok().map(u64::from_be_bytes))
                .unwrap_or(0),
            snapshot: engine
                .get_message::<SnapshotMetadata>(GROUP, SNAPSHOT_META_KEY)?
                .unwrap_or_default(),
        };
        Ok(LogStore {
            inner: Arc::new(Inner {
                engine,
                meta: RwLock::new(meta),
            }),
        })
    }

    fn meta(&self) -> std::sync::RwLockReadGuard<'_, Meta> {
        // A writer never panics while holding the lock, so it is never poisoned.
        self.inner.meta.read().expect("log meta lock poisoned")
    }

    fn meta_mut(&self) -> std::sync::RwLockWriteGuard<'_, Meta> {
        self.inner.meta.write().expect("log meta lock poisoned")
    }

    /// True for a log that has never been written: no voters, no term.
    pub fn is_fresh(&self) -> bool {
        let meta = self.meta();
        meta.conf_state.voters.is_empty()
            && meta.conf_state.learners.is_empty()
            && meta.hard_state.term == 0
            && self.inner.engine.last_index(GROUP).is_none()
    }

    /// Writes the initial membership of a new cluster.
    pub fn bootstrap(&self, voters: Vec<u64>) -> Result<(), LogError> {
        let conf_state = ConfState {
            voters,
            ..ConfState::default()
        };
        self.set_conf_state(conf_state, 0)
    }

    /// Records the membership that the change at log index `index` produced.
    pub fn set_conf_state(&self, conf_state: ConfState, index: u64) -> Result<(), LogError> {
        let mut batch = LogBatch::default();
        batch.put_message(GROUP, CONF_STATE_KEY.to_vec(), &conf_state)?;
        batch.put(GROUP, CONF_INDEX_KEY.to_vec(), index.to_be_bytes().to_vec())?;
        self.inner.engine.write(&mut batch, true)?;
        let mut meta = self.meta_mut();
        meta.conf_state = conf_state;
        meta.conf_index = index;
        Ok(())
    }

    /// The log index of the last membership change applied (0: the bootstrap).
    pub fn conf_index(&self) -> u64 {
        self.meta().conf_index
    }

    /// Makes a Ready's entries and hard state durable in one batch, fsynced
    /// when `sync` (raft-rs's `must_sync`). Entries that overlap the tail
    /// replace it, as Raft requires when a leader overrules this log.
    pub fn persist(
        &self,
        entries: &[Entry],
        hard_state: Option<&HardState>,
        sync: bool,
    ) -> Result<(), LogError> {
        if entries.is_empty() && hard_state.is_none() {
            return Ok(());
        }
        let mut batch = LogBatch::default();
        if !entries.is_empty() {
            batch.add_entries::<EntryType>(GROUP, entries)?;
        }
        if let Some(hs) = hard_state {
            batch.put_message(GROUP, HARD_STATE_KEY.to_vec(), hs)?;
        }
        self.inner.engine.write(&mut batch, sync)?;
        if let Some(hs) = hard_state {
            self.meta_mut().hard_state = hs.clone();
        }
        Ok(())
    }

    /// Raises the commit index the next `initial_state` reports. Not written
    /// at once: after a crash the node recovers a commit index at least as
    /// high as MySQL's applied index (see [`LogStore::recover_commit`]).
    pub fn set_commit(&self, commit: u64) {
        let mut meta = self.meta_mut();
        if commit > meta.hard_state.commit {
            meta.hard_state.commit = commit;
        }
    }

    /// Reconciles the log with the applied index MySQL holds, at start-up.
    ///
    /// Everything MySQL applied was committed, so the commit index is raised
    /// to it (raft-rs refuses an applied index above the commit index). An
    /// applied index beyond the log's end means the log was lost or belongs
    /// to another node: starting would corrupt the cluster, so it is refused.
    pub fn recover_commit(&self, applied: u64) -> Result<(), String> {
        let last = self.last_index_now();
        if applied > last {
            return Err(format!(
                "MySQL has applied up to log index {applied} but the Raft log in this data_dir \
                 ends at {last}: the data_dir was lost or belongs to another node; refusing to start"
            ));
        }
        self.set_commit(applied);
        Ok(())
    }

    pub fn hard_state(&self) -> HardState {
        self.meta().hard_state.clone()
    }

    pub fn conf_state(&self) -> ConfState {
        self.meta().conf_state.clone()
    }

    fn first_index_now(&self) -> u64 {
        let snapshot_index = self.meta().snapshot.index;
        match self.inner.engine.first_index(GROUP) {
            Some(first) => first.max(snapshot_index + 1),
            None => snapshot_index + 1,
        }
    }

    fn last_index_now(&self) -> u64 {
        let snapshot_index = self.meta().snapshot.index;
        self.inner
            .engine
            .last_index(GROUP)
            .unwrap_or(snapshot_index)
            .max(snapshot_index)
    }

    /// Up to `max_bytes` of the durable entries in `[low, high)`, at least one.
    pub fn read_entries(
        &self,
        low: u64,
        high: u64,
        max_bytes: usize,
    ) -> Result<Vec<Entry>, String> {
        let mut entries = Vec::new();
        self.inner
            .engine
            .fetch_entries_to::<EntryType>(GROUP, low, high, Some(max_bytes), &mut entries)
            .map_err(|e| format!("reading log entries [{low}, {high}): {e}"))?;
        Ok(entries)
    }

    /// Bytes the log occupies on disk.
    pub fn disk_bytes(&self) -> usize {
        self.inner.engine.get_used_size()
    }
}

impl Storage for LogStore {
    fn initial_state(&self) -> raft::Result<RaftState> {
        let meta = self.meta();
        Ok(RaftState {
            hard_state: meta.hard_state.clone(),
            conf_state: meta.conf_state.clone(),
        })
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        if low < self.first_index_now() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > self.last_index_now() + 1 {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        let max = max_size.into().map(|m| m as usize);
        let mut entries = Vec::with_capacity((high - low) as usize);
        self.inner
            .engine
            .fetch_entries_to::<EntryType>(GROUP, low, high, max, &mut entries)
            .map_err(|e| raft::Error::Store(StorageError::Other(Box::new(e))))?;
        Ok(entries)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        let (snapshot_index, snapshot_term) = {
            let meta = self.meta();
            (meta.snapshot.index, meta.snapshot.term)
        };
        if idx == snapshot_index {
            return Ok(snapshot_term);
        }
        if idx < self.first_index_now() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if idx > self.last_index_now() {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        match self.inner.engine.get_entry::<EntryType>(GROUP, idx) {
            Ok(Some(entry)) => Ok(entry.term),
            Ok(None) => Err(raft::Error::Store(StorageError::Unavailable)),
            Err(e) => Err(raft::Error::Store(StorageError::Other(Box::new(e)))),
        }
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.first_index_now())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.last_index_now())
    }

    fn snapshot(&self, _request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        Err(raft::Error::Store(
            StorageError::SnapshotTemporarilyUnavailable,
        ))
    }
}

/// Decodes a protobuf message from raft-rs (conf changes travel as bytes).
pub fn decode<M: protobuf::Message>(bytes: &[u8]) -> Result<M, protobuf::ProtobufError> {
    let mut message = M::new();
    message.merge_from_bytes(bytes)?;
    Ok(message)
}

#[cfg(test)]
mod tests {
    use std::fs::OpenOptions;
    use std::io::Write;

    use super::*;

    fn entry(index: u64, term: u64) -> Entry {
        Entry {
            index,
            term,
            data: format!("command {index}").into_bytes().into(),
            ..Entry::default()
        }
    }

    fn hard_state(term: u64, vote: u64, commit: u64) -> HardState {
        HardState {
            term,
            vote,
            commit,
            ..HardState::default()
        }
    }

    fn log_files(dir: &Path) -> Vec<std::path::PathBuf> {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "raftlog"))
            .collect();
        files.sort();
        files
    }

    #[test]
    fn entries_and_state_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = LogStore::open(dir.path()).unwrap();
            assert!(store.is_fresh());
            store.bootstrap(vec![1, 2, 3]).unwrap();
            store
                .persist(
                    &[entry(1, 1), entry(2, 1)],
                    Some(&hard_state(1, 2, 1)),
                    true,
                )
                .unwrap();
            store
                .persist(&[entry(3, 2)], Some(&hard_state(2, 3, 2)), true)
                .unwrap();
        }
        let store = LogStore::open(dir.path()).unwrap();
        assert!(!store.is_fresh());
        let state = store.initial_state().unwrap();
        assert_eq!(state.hard_state, hard_state(2, 3, 2));
        assert_eq!(state.conf_state.voters, vec![1, 2, 3]);
        assert_eq!(
            (store.first_index().unwrap(), store.last_index().unwrap()),
            (1, 3)
        );
        assert_eq!(store.term(3).unwrap(), 2);
        assert_eq!(store.term(0).unwrap(), 0, "the empty prefix has term 0");
        let entries = store
            .entries(1, 4, None, GetEntriesContext::empty(false))
            .unwrap();
        assert_eq!(entries, vec![entry(1, 1), entry(2, 1), entry(3, 2)]);
    }

    #[test]
    fn a_new_leaders_entries_replace_a_conflicting_tail() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(dir.path()).unwrap();
        store
            .persist(&[entry(1, 1), entry(2, 1), entry(3, 1)], None, true)
            .unwrap();
        store.persist(&[entry(2, 2)], None, true).unwrap();
        drop(store);
        let store = LogStore::open(dir.path()).unwrap();
        assert_eq!(store.last_index().unwrap(), 2);
        assert_eq!(store.term(2).unwrap(), 2);
    }

    #[test]
    fn a_torn_last_record_is_dropped_and_everything_before_it_kept() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = LogStore::open(dir.path()).unwrap();
            store
                .persist(
                    &[entry(1, 1), entry(2, 1)],
                    Some(&hard_state(1, 1, 2)),
                    true,
                )
                .unwrap();
            store
                .persist(
                    &[entry(3, 1), entry(4, 1)],
                    Some(&hard_state(1, 1, 4)),
                    true,
                )
                .unwrap();
        }
        // A crash in the middle of writing the second batch: cut it short.
        let file = log_files(dir.path()).pop().expect("a log file");
        let len = std::fs::metadata(&file).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&file)
            .unwrap()
            .set_len(len - 7)
            .unwrap();

        let store = LogStore::open(dir.path()).unwrap();
        assert_eq!(
            store.last_index().unwrap(),
            2,
            "the torn batch is gone, whole"
        );
        assert_eq!(
            store.hard_state(),
            hard_state(1, 1, 2),
            "with its hard state"
        );
        // The log is writable again where the torn batch was.
        store.persist(&[entry(3, 2)], None, true).unwrap();
        assert_eq!(store.term(3).unwrap(), 2);
    }

    #[test]
    fn garbage_after_the_last_record_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = LogStore::open(dir.path()).unwrap();
            store
                .persist(&[entry(1, 1)], Some(&hard_state(1, 1, 1)), true)
                .unwrap();
        }
        let file = log_files(dir.path()).pop().expect("a log file");
        OpenOptions::new()
            .append(true)
            .open(&file)
            .unwrap()
            .write_all(&[0xAB; 100])
            .unwrap();
        let store = LogStore::open(dir.path()).unwrap();
        assert_eq!(store.last_index().unwrap(), 1);
    }

    #[test]
    fn an_applied_index_beyond_the_log_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(dir.path()).unwrap();
        store
            .persist(
                &[entry(1, 1), entry(2, 1)],
                Some(&hard_state(1, 1, 1)),
                true,
            )
            .unwrap();
        store.recover_commit(2).unwrap();
        assert_eq!(
            store.hard_state().commit,
            2,
            "commit raised to what MySQL applied"
        );
        let err = store.recover_commit(5).unwrap_err();
        assert!(err.contains("refusing to start"), "{err}");
    }

    #[test]
    fn reading_below_the_first_entry_reports_compaction_not_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(dir.path()).unwrap();
        assert_eq!(
            (store.first_index().unwrap(), store.last_index().unwrap()),
            (1, 0),
            "an empty log"
        );
        assert!(matches!(
            store.entries(1, 2, None, GetEntriesContext::empty(false)),
            Err(raft::Error::Store(StorageError::Unavailable))
        ));
    }
}
