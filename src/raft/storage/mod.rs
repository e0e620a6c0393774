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
//! it by index (through `CommittedLog`, which decodes them), so
//! committed-but-unapplied entries wait on disk, not in memory, while MySQL
//! is slow or down.
//!
//! Beside the Raft state it keeps the node's identity (node id and cluster
//! id, written on first start) and the members' addresses, updated with each
//! membership change in the same batch as the `ConfState`.
//!
//! Compaction and snapshots. Entries that MySQL has applied (and made
//! durable) are dropped from the front of the log by [`LogStore::compact`],
//! which records in the same batch the snapshot metadata raft-rs needs in
//! their place: the index and term of the last entry dropped, the
//! membership at that index, and the members' addresses. A snapshot of this
//! node is only that metadata: the state it stands for is the node's MySQL
//! database, which a follower that installs the snapshot copies from a peer
//! page by page (`applier::catchup`), never whole in memory. Installing one
//! ([`LogStore::apply_snapshot`]) drops every entry and records the
//! snapshot's membership, in one batch.

use std::path::Path;
use std::sync::{Arc, RwLock};

use protobuf::Message as _;
use raft::eraftpb::{
    ConfChange, ConfChangeType, ConfState, Entry, EntryType, HardState, Snapshot, SnapshotMetadata,
};
use raft::{GetEntriesContext, RaftState, Storage, StorageError};
use raft_engine::{Config as EngineConfig, Engine, LogBatch, MessageExt, ReadableSize};

pub use self::recover::{RecoverError, Recovery};
pub use self::snapshot::SnapshotData;
use self::tail::TailCache;
use super::membership::{Identity, MemberAddr, Members};

mod recover;
mod restore;
mod snapshot;
mod tail;

/// raft-engine keeps many Raft groups; a taskraft node has exactly one.
const GROUP: u64 = 1;
const HARD_STATE_KEY: &[u8] = b"hard_state";
const CONF_STATE_KEY: &[u8] = b"conf_state";
const SNAPSHOT_META_KEY: &[u8] = b"snapshot_meta";
/// The members' addresses as of the snapshot's index.
const SNAPSHOT_MEMBERS_KEY: &[u8] = b"snapshot_members";
/// The log index of the membership change that produced `conf_state`.
const CONF_INDEX_KEY: &[u8] = b"conf_index";
const MEMBERS_KEY: &[u8] = b"members";
const IDENTITY_KEY: &[u8] = b"identity";
/// Present once this node learned it was removed from the cluster.
const REMOVED_KEY: &[u8] = b"removed";

/// raft-engine's handle on raft-rs's entry type.
struct EntryType_;

impl MessageExt for EntryType_ {
    type Entry = Entry;
    fn index(e: &Entry) -> u64 {
        e.index
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("raft log engine: {0}")]
    Engine(#[from] raft_engine::Error),
    #[error("raft log metadata: {0}")]
    Meta(String),
    /// The entries asked for were dropped by compaction; the state they led
    /// to must come from a snapshot (a peer's database).
    #[error("log entry {0} was compacted away")]
    Compacted(u64),
    /// MySQL applied entries this log never held: the data_dir was lost or
    /// belongs to another node.
    #[error(
        "MySQL has applied up to log index {applied} but the Raft log in this data_dir ends at \
         {last}: the data_dir was lost or belongs to another node; refusing to start"
    )]
    BehindMysql { applied: u64, last: u64 },
}

/// The raft-rs `Storage` of this node, backed by raft-engine.
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    /// A purge of obsolete files is running (they run off the Raft thread).
    purging: std::sync::atomic::AtomicBool,
    /// How far this node's MySQL has applied: a snapshot may name that
    /// index, since peers can copy the rows up to it from this node.
    applied: std::sync::atomic::AtomicU64,
    /// The durable state, cached: raft-rs asks for it often.
    meta: RwLock<Meta>,
    /// The newest entries, also in memory.
    tail: RwLock<TailCache>,
}

#[derive(Clone, Default)]
struct Meta {
    hard_state: HardState,
    conf_state: ConfState,
    conf_index: u64,
    members: Members,
    identity: Option<Identity>,
    removed: bool,
    /// Index and term of the last entry a snapshot replaced (0, 0 if none),
    /// with the membership at that index.
    snapshot: SnapshotMetadata,
    /// The members' addresses at the snapshot's index.
    snapshot_members: Members,
}

/// How large the log's files grow, and how large all of them may grow
/// before raft-engine copies the records still live in the oldest ones
/// (the identity and members, written once, and any key written since)
/// forward, so that files holding only compacted entries can be deleted.
/// raft-engine's default for the second, 10 GB, is sized for TiKV's
/// thousands of regions: here one record written at bootstrap kept every
/// file after it, and a node held its whole history on disk (900 MB at a
/// million events, each re-read at every start).
#[derive(Clone, Copy, Debug)]
pub struct FileSizes {
    pub file: u64,
    pub purge_above: u64,
}

impl FileSizes {
    pub const DEFAULT: FileSizes = FileSizes {
        file: 32 << 20,
        purge_above: 128 << 20,
    };
}

impl LogStore {
    /// Opens (or creates) the log under `dir`, recovering what was written.
    pub fn open(dir: &Path) -> Result<LogStore, LogError> {
        LogStore::open_sized(dir, FileSizes::DEFAULT)
    }

    /// [`LogStore::open`] with files of other sizes (tests).
    pub fn open_sized(dir: &Path, sizes: FileSizes) -> Result<LogStore, LogError> {
        let config = EngineConfig {
            dir: dir.to_string_lossy().into_owned(),
            target_file_size: ReadableSize(sizes.file),
            purge_threshold: ReadableSize(sizes.purge_above),
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
            members: json_value(&engine, MEMBERS_KEY)?.unwrap_or_default(),
            identity: json_value(&engine, IDENTITY_KEY)?,
            removed: engine.get(GROUP, REMOVED_KEY).is_some(),
            snapshot: engine
                .get_message::<SnapshotMetadata>(GROUP, SNAPSHOT_META_KEY)?
                .unwrap_or_default(),
            snapshot_members: json_value(&engine, SNAPSHOT_MEMBERS_KEY)?.unwrap_or_default(),
        };
        Ok(LogStore {
            inner: Arc::new(Inner {
                engine,
                purging: std::sync::atomic::AtomicBool::new(false),
                applied: std::sync::atomic::AtomicU64::new(0),
                meta: RwLock::new(meta),
                tail: RwLock::new(TailCache::default()),
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

    /// True for a log that has never been written: no identity, no voters,
    /// no term, no entries.
    pub fn is_fresh(&self) -> bool {
        let meta = self.meta();
        meta.identity.is_none()
            && meta.conf_state.voters.is_empty()
            && meta.conf_state.learners.is_empty()
            && meta.hard_state.term == 0
            && self.inner.engine.last_index(GROUP).is_none()
    }

    /// Writes a new cluster's first entries: one conf change adding each
    /// initial voter, at indexes 1..=n of term 1, committed. Every initial
    /// member writes exactly these entries, so their logs agree, and a node
    /// that joins later learns the initial voters by replaying them.
    pub fn bootstrap(
        &self,
        node_id: u64,
        voters: &std::collections::BTreeMap<u64, String>,
        token: &str,
    ) -> Result<(), LogError> {
        let mut entries = Vec::new();
        let mut members = Members::new();
        for (i, (id, raft_addr)) in voters.iter().enumerate() {
            let addr = MemberAddr {
                raft_addr: raft_addr.clone(),
                url: None,
            };
            let change = ConfChange {
                change_type: ConfChangeType::AddNode,
                node_id: *id,
                context: serde_json::to_vec(&addr)
                    .map_err(|e| LogError::Meta(e.to_string()))?
                    .into(),
                ..ConfChange::default()
            };
            let data = change
                .write_to_bytes()
                .map_err(|e| LogError::Meta(e.to_string()))?;
            let mut entry = Entry {
                index: i as u64 + 1,
                term: 1,
                data: data.into(),
                ..Entry::default()
            };
            entry.set_entry_type(EntryType::EntryConfChange);
            entries.push(entry);
            members.insert(*id, addr);
        }
        let last = entries.len() as u64;
        let hard_state = HardState {
            term: 1,
            commit: last,
            ..HardState::default()
        };
        let conf_state = ConfState {
            voters: voters.keys().copied().collect(),
            ..ConfState::default()
        };
        let identity = Identity::at_bootstrap(node_id, token, voters);
        let mut batch = LogBatch::default();
        batch.add_entries::<EntryType_>(GROUP, &entries)?;
        batch.put_message(GROUP, HARD_STATE_KEY.to_vec(), &hard_state)?;
        self.add_conf(&mut batch, &conf_state, last, &members)?;
        batch.put(GROUP, IDENTITY_KEY.to_vec(), json_bytes(&identity)?)?;
        self.inner.engine.write(&mut batch, true)?;
        let mut meta = self.meta_mut();
        meta.hard_state = hard_state;
        meta.conf_state = conf_state;
        meta.conf_index = last;
        meta.members = members;
        meta.identity = Some(identity);
        Ok(())
    }

    /// Records the identity a joining node was given (its log stays empty:
    /// the leader sends it everything from the first entry).
    pub fn set_identity(&self, identity: &Identity, members: &Members) -> Result<(), LogError> {
        let mut batch = LogBatch::default();
        batch.put(GROUP, IDENTITY_KEY.to_vec(), json_bytes(identity)?)?;
        batch.put(GROUP, MEMBERS_KEY.to_vec(), json_bytes(members)?)?;
        self.inner.engine.write(&mut batch, true)?;
        let mut meta = self.meta_mut();
        meta.identity = Some(identity.clone());
        meta.members = members.clone();
        Ok(())
    }

    /// Records the cluster id a forming node was shown by an authenticated
    /// peer (see `transport::auth`): its id is settled from then on.
    pub fn adopt_cluster_id(&self, cluster_id: &str) -> Result<(), LogError> {
        let mut identity = self
            .identity()
            .ok_or_else(|| LogError::Meta("no identity to update".into()))?;
        identity.cluster_id = cluster_id.to_string();
        identity.forming = false;
        let mut batch = LogBatch::default();
        batch.put(GROUP, IDENTITY_KEY.to_vec(), json_bytes(&identity)?)?;
        self.inner.engine.write(&mut batch, true)?;
        self.meta_mut().identity = Some(identity);
        Ok(())
    }

    /// Records that this node is no longer a member, so that it refuses to
    /// act as one after a restart.
    pub fn mark_removed(&self) -> Result<(), LogError> {
        let mut batch = LogBatch::default();
        batch.put(GROUP, REMOVED_KEY.to_vec(), vec![1])?;
        self.inner.engine.write(&mut batch, true)?;
        self.meta_mut().removed = true;
        Ok(())
    }

    /// Forgets a removal, when the node is added back (as a learner).
    pub fn clear_removed(&self) -> Result<(), LogError> {
        let mut batch = LogBatch::default();
        batch.delete(GROUP, REMOVED_KEY.to_vec());
        self.inner.engine.write(&mut batch, true)?;
        self.meta_mut().removed = false;
        Ok(())
    }

    pub fn is_removed(&self) -> bool {
        self.meta().removed
    }

    pub fn identity(&self) -> Option<Identity> {
        self.meta().identity.clone()
    }

    pub fn members(&self) -> Members {
        self.meta().members.clone()
    }

    fn add_conf(
        &self,
        batch: &mut LogBatch,
        conf_state: &ConfState,
        index: u64,
        members: &Members,
    ) -> Result<(), LogError> {
        batch.put_message(GROUP, CONF_STATE_KEY.to_vec(), conf_state)?;
        batch.put(GROUP, CONF_INDEX_KEY.to_vec(), index.to_be_bytes().to_vec())?;
        batch.put(GROUP, MEMBERS_KEY.to_vec(), json_bytes(members)?)?;
        Ok(())
    }

    /// Records the membership (and the members' addresses) that the change
    /// at log index `index` produced.
    pub fn set_conf_state(
        &self,
        conf_state: ConfState,
        index: u64,
        members: Members,
    ) -> Result<(), LogError> {
        let mut batch = LogBatch::default();
        self.add_conf(&mut batch, &conf_state, index, &members)?;
        self.inner.engine.write(&mut batch, true)?;
        let mut meta = self.meta_mut();
        meta.conf_state = conf_state;
        meta.conf_index = index;
        meta.members = members;
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
            batch.add_entries::<EntryType_>(GROUP, entries)?;
        }
        if let Some(hs) = hard_state {
            batch.put_message(GROUP, HARD_STATE_KEY.to_vec(), hs)?;
        }
        let started = std::time::Instant::now();
        self.inner.engine.write(&mut batch, sync)?;
        if sync {
            crate::metrics::WAL_FSYNC_SECONDS.observe(started.elapsed().as_secs_f64());
        }
        if !entries.is_empty() {
            self.tail_mut().append(entries);
        }
        if let Some(hs) = hard_state {
            self.meta_mut().hard_state = hs.clone();
        }
        Ok(())
    }

    fn tail(&self) -> std::sync::RwLockReadGuard<'_, TailCache> {
        // A writer never panics while holding the lock, so it is never poisoned.
        self.inner.tail.read().expect("tail cache lock poisoned")
    }

    fn tail_mut(&self) -> std::sync::RwLockWriteGuard<'_, TailCache> {
        self.inner.tail.write().expect("tail cache lock poisoned")
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
    pub fn recover_commit(&self, applied: u64) -> Result<(), LogError> {
        let last = self.last_index_now();
        if applied > last {
            return Err(LogError::BehindMysql { applied, last });
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

    /// The first entry the log holds (the snapshot's index + 1 once compacted).
    pub fn first_index_now(&self) -> u64 {
        let snapshot_index = self.meta().snapshot.index;
        match self.inner.engine.first_index(GROUP) {
            Some(first) => first.max(snapshot_index + 1),
            None => snapshot_index + 1,
        }
    }

    pub fn last_index_now(&self) -> u64 {
        let snapshot_index = self.meta().snapshot.index;
        self.inner
            .engine
            .last_index(GROUP)
            .unwrap_or(snapshot_index)
            .max(snapshot_index)
    }

    /// Up to `max_bytes` of the durable entries in `[low, high)`, at least
    /// one; [`LogError::Compacted`] when `low` was compacted away.
    pub fn read_entries(
        &self,
        low: u64,
        high: u64,
        max_bytes: usize,
    ) -> Result<Vec<Entry>, LogError> {
        if low < self.first_index_now() {
            return Err(LogError::Compacted(low));
        }
        if let Some(entries) = self.tail().range(low, high, Some(max_bytes)) {
            return Ok(entries);
        }
        let mut entries = Vec::new();
        self.inner.engine.fetch_entries_to::<EntryType_>(
            GROUP,
            low,
            high,
            Some(max_bytes),
            &mut entries,
        )?;
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
        if let Some(entries) = self.tail().range(low, high, max) {
            return Ok(entries);
        }
        let mut entries = Vec::with_capacity((high - low) as usize);
        self.inner
            .engine
            .fetch_entries_to::<EntryType_>(GROUP, low, high, max, &mut entries)
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
        if let Some(term) = self.tail().term(idx) {
            return Ok(term);
        }
        match self.inner.engine.get_entry::<EntryType_>(GROUP, idx) {
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

    /// See [`LogStore::build_snapshot`].
    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        self.build_snapshot(request_index)
    }
}

fn json_bytes<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, LogError> {
    serde_json::to_vec(value).map_err(|e| LogError::Meta(e.to_string()))
}

fn json_value<T: serde::de::DeserializeOwned>(
    engine: &Engine,
    key: &[u8],
) -> Result<Option<T>, LogError> {
    match engine.get(GROUP, key) {
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| LogError::Meta(format!("{}: {e}", String::from_utf8_lossy(key)))),
        None => Ok(None),
    }
}

/// Decodes a protobuf message from raft-rs (conf changes travel as bytes).
pub fn decode<M: protobuf::Message>(bytes: &[u8]) -> Result<M, protobuf::ProtobufError> {
    let mut message = M::new();
    message.merge_from_bytes(bytes)?;
    Ok(message)
}

#[cfg(test)]
mod tests;
