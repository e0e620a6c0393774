//! The log store's recovery, bootstrap and cache.

use std::fs::OpenOptions;
use std::io::Write;

use super::tail::{TailCache, TAIL_ENTRIES};
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
fn bootstrap_writes_the_initial_voters_as_the_first_committed_entries() {
    let voters = std::collections::BTreeMap::from([
        (1, "a:9081".to_string()),
        (2, "b:9082".to_string()),
        (3, "c:9083".to_string()),
    ]);
    let dir = tempfile::tempdir().unwrap();
    {
        let store = LogStore::open(dir.path()).unwrap();
        assert!(store.is_fresh());
        store.bootstrap(2, &voters, "t").unwrap();
    }
    let store = LogStore::open(dir.path()).unwrap();
    assert!(!store.is_fresh());
    let state = store.initial_state().unwrap();
    assert_eq!(state.conf_state.voters, vec![1, 2, 3]);
    assert_eq!((state.hard_state.term, state.hard_state.commit), (1, 3));
    assert_eq!(store.conf_index(), 3);
    let entries = store
        .entries(1, 4, None, GetEntriesContext::empty(false))
        .unwrap();
    let added: Vec<u64> = entries
        .iter()
        .map(|e| {
            assert_eq!(
                (e.get_entry_type(), e.term),
                (EntryType::EntryConfChange, 1)
            );
            decode::<ConfChange>(&e.data).unwrap().node_id
        })
        .collect();
    assert_eq!(added, vec![1, 2, 3]);
    assert_eq!(store.members()[&2].raft_addr, "b:9082");
    let identity = store.identity().unwrap();
    assert_eq!(identity.node_id, 2);
    assert_eq!(
        (identity.cluster_id.as_str(), identity.forming),
        (Identity::bootstrap_cluster_id("t", &voters).as_str(), true),
        "not the lowest voter: forming, with the base of the id"
    );
    store.adopt_cluster_id("abc.0123").unwrap();
    drop(store);
    let store = LogStore::open(dir.path()).unwrap();
    let settled = store.identity().unwrap();
    assert_eq!(
        (settled.cluster_id.as_str(), settled.forming),
        ("abc.0123", false)
    );

    // Another initial member writes byte-identical entries.
    let other = tempfile::tempdir().unwrap();
    let peer = LogStore::open(other.path()).unwrap();
    peer.bootstrap(3, &voters, "t").unwrap();
    assert_eq!(
        peer.entries(1, 4, None, GetEntriesContext::empty(false))
            .unwrap(),
        entries
    );
}

#[test]
fn a_joining_nodes_identity_and_members_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let identity = Identity {
        node_id: 4,
        cluster_id: "c".into(),
        forming: false,
        admitted_at: 7,
    };
    let members = Members::from([(
        1,
        MemberAddr {
            raft_addr: "a:1".into(),
            url: Some("http://a".into()),
        },
    )]);
    {
        let store = LogStore::open(dir.path()).unwrap();
        store.set_identity(&identity, &members).unwrap();
        assert!(!store.is_fresh(), "an identity makes the store not fresh");
    }
    let store = LogStore::open(dir.path()).unwrap();
    assert_eq!(store.identity(), Some(identity));
    assert_eq!(store.members(), members);
    assert_eq!(
        store.last_index().unwrap(),
        0,
        "the log itself is still empty"
    );
}

#[test]
fn recent_entries_are_served_from_memory_and_agree_with_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path()).unwrap();
    store
        .persist(&[entry(1, 1), entry(2, 1), entry(3, 1)], None, true)
        .unwrap();
    store
        .persist(&[entry(2, 2), entry(3, 2)], None, true)
        .unwrap();
    let cached = store.tail().range(1, 4, None).expect("all cached");
    assert_eq!(
        cached,
        vec![entry(1, 1), entry(2, 2), entry(3, 2)],
        "the overruled tail is replaced"
    );
    drop(store);
    let reopened = LogStore::open(dir.path()).unwrap();
    assert!(
        reopened.tail().range(1, 4, None).is_none(),
        "nothing cached after a restart"
    );
    let from_files = reopened
        .entries(1, 4, None, GetEntriesContext::empty(false))
        .unwrap();
    assert_eq!(from_files, cached, "memory and files agree");
    let one = reopened.read_entries(1, 4, 1).unwrap();
    assert_eq!(
        one.len(),
        1,
        "a size limit still returns at least one entry"
    );
}

#[test]
fn the_cache_keeps_only_the_newest_entries() {
    let mut cache = TailCache::default();
    let batch: Vec<Entry> = (1..=(TAIL_ENTRIES as u64 + 10))
        .map(|i| entry(i, 1))
        .collect();
    cache.append(&batch);
    assert_eq!(cache.first_index(), Some(11));
    assert!(cache.range(1, 20, None).is_none());
    assert_eq!(cache.term(TAIL_ENTRIES as u64 + 10), Some(1));
    cache.append(&[entry(TAIL_ENTRIES as u64 + 20, 2)]);
    assert_eq!(
        cache.first_index(),
        Some(TAIL_ENTRIES as u64 + 20),
        "a gap starts the cache over"
    );
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
    assert!(err.to_string().contains("refusing to start"), "{err}");
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

fn member(addr: &str) -> MemberAddr {
    MemberAddr {
        raft_addr: addr.into(),
        url: Some(format!("http://{addr}")),
    }
}

/// A log with entries 1..=n of term 1, voters 1-3, committed up to n.
fn filled(dir: &Path, n: u64) -> LogStore {
    let store = LogStore::open(dir).unwrap();
    let voters = ConfState {
        voters: vec![1, 2, 3],
        ..ConfState::default()
    };
    let members = Members::from([(1, member("a:1")), (2, member("b:2")), (3, member("c:3"))]);
    store.set_conf_state(voters, 0, members).unwrap();
    let entries: Vec<Entry> = (1..=n).map(|i| entry(i, 1)).collect();
    store
        .persist(&entries, Some(&hard_state(1, 1, n)), true)
        .unwrap();
    store
}

#[test]
fn compaction_drops_applied_entries_and_leaves_a_snapshot_in_their_place() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = filled(dir.path(), 10);
        assert!(store.compact(6).unwrap());
        assert!(!store.compact(6).unwrap(), "compacting twice is a no-op");
        assert!(!store.compact(11).unwrap(), "nothing past the log's end");
        store.purge();
    }
    let store = LogStore::open(dir.path()).unwrap();
    assert_eq!(
        (store.first_index().unwrap(), store.last_index().unwrap()),
        (7, 10)
    );
    assert_eq!(store.term(6).unwrap(), 1, "the snapshot keeps its term");
    assert!(matches!(
        store.term(5),
        Err(raft::Error::Store(StorageError::Compacted))
    ));
    assert!(matches!(
        store.entries(5, 8, None, GetEntriesContext::empty(false)),
        Err(raft::Error::Store(StorageError::Compacted))
    ));
    assert!(matches!(
        store.read_entries(6, 8, usize::MAX),
        Err(LogError::Compacted(6))
    ));
    assert_eq!(store.read_entries(7, 11, usize::MAX).unwrap().len(), 4);
    assert!(store.hard_state().commit >= 6);

    let snapshot = store.snapshot(0, 2).unwrap();
    let meta = snapshot.get_metadata();
    assert_eq!((meta.index, meta.term), (6, 1));
    assert_eq!(meta.get_conf_state().voters, vec![1, 2, 3]);
    let data: SnapshotData = serde_json::from_slice(&snapshot.data).unwrap();
    assert_eq!(data.members[&2], member("b:2"));
    assert!(
        store.snapshot(7, 2).is_err(),
        "a snapshot older than asked for is not offered"
    );
}

/// Bytes of every file under `dir` (both of raft-engine's queues).
fn bytes_on_disk(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

#[test]
fn files_of_compacted_entries_are_deleted_though_the_first_holds_the_members() {
    // Small files, so a few MB of entries make many of them. The members
    // are written once, at the start, into the first file.
    let sizes = FileSizes {
        file: 64 << 10,
        purge_above: 256 << 10,
    };
    let dir = tempfile::tempdir().unwrap();
    let payload = "x".repeat(1_000);
    let last = {
        let store = LogStore::open_sized(dir.path(), sizes).unwrap();
        let voters = ConfState {
            voters: vec![1, 2, 3],
            ..ConfState::default()
        };
        let members = Members::from([(1, member("a:1")), (2, member("b:2")), (3, member("c:3"))]);
        store.set_conf_state(voters, 0, members).unwrap();
        let mut last = 0;
        // 4,000 entries of 1 kB, compacted as the node does: all but the
        // newest 50 of each round of 100, then a purge.
        for _ in 0..40 {
            let entries: Vec<Entry> = (last + 1..=last + 100)
                .map(|i| Entry {
                    data: payload.clone().into_bytes().into(),
                    ..entry(i, 1)
                })
                .collect();
            last += 100;
            store
                .persist(&entries, Some(&hard_state(1, 1, last)), true)
                .unwrap();
            assert!(store.compact(last - 50).unwrap());
            store.purge();
        }
        let on_disk = bytes_on_disk(dir.path());
        assert!(
            on_disk < 1 << 20,
            "{on_disk} bytes on disk for 4 MB written, 50 kB live"
        );
        last
    };
    // What the deleted files held that is still live was kept.
    let store = LogStore::open_sized(dir.path(), sizes).unwrap();
    assert_eq!(
        (store.first_index().unwrap(), store.last_index().unwrap()),
        (last - 49, last)
    );
    assert_eq!(
        store.initial_state().unwrap().conf_state.voters,
        vec![1, 2, 3]
    );
    assert_eq!(store.members()[&2], member("b:2"));
    assert_eq!(store.hard_state(), hard_state(1, 1, last));
    assert_eq!(
        store
            .read_entries(last - 49, last + 1, usize::MAX)
            .unwrap()
            .len(),
        50
    );
}

#[test]
fn the_log_is_not_compacted_past_a_membership_change_it_cannot_describe() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled(dir.path(), 10);
    store
        .set_conf_state(
            ConfState {
                voters: vec![1, 2, 3],
                learners: vec![4],
                ..ConfState::default()
            },
            8,
            store.members(),
        )
        .unwrap();
    assert!(!store.compact(7).unwrap(), "the membership at 7 is gone");
    assert!(store.compact(8).unwrap());
    let snapshot = store.snapshot(0, 4).unwrap();
    assert_eq!(snapshot.get_metadata().get_conf_state().learners, vec![4]);
}

#[test]
fn an_installed_snapshot_replaces_the_whole_log_and_survives_a_reopen() {
    let source = tempfile::tempdir().unwrap();
    let leader = filled(source.path(), 40);
    assert!(leader.compact(30).unwrap());
    let snapshot = leader.snapshot(0, 2).unwrap();

    let dir = tempfile::tempdir().unwrap();
    {
        let follower = LogStore::open(dir.path()).unwrap();
        // An old, partly conflicting log: entries 1..=12 of term 1, and 13
        // of a deposed leader's term 2.
        let mut entries: Vec<Entry> = (1..=12).map(|i| entry(i, 1)).collect();
        entries.push(entry(13, 2));
        follower
            .persist(&entries, Some(&hard_state(2, 0, 10)), true)
            .unwrap();
        let members = follower
            .apply_snapshot(&snapshot, Some(&hard_state(3, 0, 30)))
            .unwrap();
        assert_eq!(members.len(), 3);
        assert_eq!(
            (
                follower.first_index().unwrap(),
                follower.last_index().unwrap()
            ),
            (31, 30),
            "nothing but the snapshot"
        );
        // The leader's entries after the snapshot append cleanly.
        follower
            .persist(&[entry(31, 3), entry(32, 3)], None, true)
            .unwrap();
    }
    let follower = LogStore::open(dir.path()).unwrap();
    assert_eq!(
        (
            follower.first_index().unwrap(),
            follower.last_index().unwrap()
        ),
        (31, 32)
    );
    assert_eq!(follower.term(30).unwrap(), 1);
    assert_eq!(follower.term(32).unwrap(), 3);
    assert_eq!(follower.hard_state(), hard_state(3, 0, 30));
    assert_eq!(follower.conf_state().voters, vec![1, 2, 3]);
    assert_eq!(follower.conf_index(), 30);
    assert_eq!(follower.members()[&3], member("c:3"));
    assert_eq!(
        follower.snapshot(0, 1).unwrap().get_metadata().index,
        30,
        "it can pass the snapshot on as leader"
    );
}

#[test]
fn a_snapshot_names_what_mysql_applied_unless_the_membership_changed_since() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled(dir.path(), 40);
    assert!(store.compact(20).unwrap());
    store.set_applied(35);
    let snapshot = store.snapshot(0, 4).unwrap();
    assert_eq!(
        snapshot.get_metadata().index,
        35,
        "the newest state peers can copy"
    );
    // A learner added at 38, after what MySQL applied: the membership at
    // 35 is not known any more, only the compaction's.
    let mut with_learner = store.conf_state();
    with_learner.learners = vec![4];
    let mut members = store.members();
    members.insert(4, member("d:4"));
    store.set_conf_state(with_learner, 38, members).unwrap();
    assert_eq!(store.snapshot(0, 4).unwrap().get_metadata().index, 20);
    store.set_applied(39);
    let snapshot = store.snapshot(0, 4).unwrap();
    let meta = snapshot.get_metadata();
    assert_eq!(meta.index, 39);
    assert_eq!(
        meta.get_conf_state().learners,
        vec![4],
        "the new member finds itself in it"
    );
    let data: SnapshotData = serde_json::from_slice(&snapshot.data).unwrap();
    assert_eq!(data.members[&4], member("d:4"));
}

/// A conf change entry as the leader writes one.
fn conf_entry(index: u64, term: u64, id: u64, change_type: ConfChangeType) -> Entry {
    let mut cc = raft::eraftpb::ConfChangeV2::default();
    cc.set_changes(vec![raft_proto::new_conf_change_single(id, change_type)].into());
    let mut entry = Entry {
        index,
        term,
        data: cc.write_to_bytes().unwrap().into(),
        ..Entry::default()
    };
    entry.set_entry_type(EntryType::EntryConfChangeV2);
    entry
}

#[test]
fn recovery_keeps_every_entry_commits_them_and_leaves_this_node_the_only_voter() {
    let dir = tempfile::tempdir().unwrap();
    let voters = std::collections::BTreeMap::from([
        (1, "a:1".to_string()),
        (2, "b:2".to_string()),
        (3, "c:3".to_string()),
    ]);
    let before_id;
    {
        let store = LogStore::open(dir.path()).unwrap();
        store.bootstrap(2, &voters, "t").unwrap();
        store.adopt_cluster_id("base.0123456789abcdef").unwrap();
        before_id = store.identity().unwrap().cluster_id;
        // Committed through 5; 6..=8 (a learner added, more commands) were
        // never known committed here.
        store
            .persist(
                &[
                    entry(4, 2),
                    entry(5, 2),
                    conf_entry(6, 3, 4, ConfChangeType::AddLearnerNode),
                    entry(7, 3),
                    entry(8, 3),
                ],
                Some(&hard_state(3, 1, 5)),
                true,
            )
            .unwrap();
        let own = member("b:2");
        let wrong = store.force_new_cluster(3, own.clone(), "now".into());
        assert!(matches!(
            wrong,
            Err(RecoverError::OtherNode {
                owner: 2,
                node_id: 3
            })
        ));
        let recovery = store.force_new_cluster(2, own, "now".into()).unwrap();
        assert_eq!(recovery.previous_voters, vec![1, 2, 3]);
        assert_eq!(
            recovery.previous_learners,
            vec![4],
            "the tail's learner too"
        );
        assert_eq!(
            (recovery.previous_commit, recovery.previous_last_index),
            (5, 8)
        );
        assert_eq!(
            (recovery.appended, recovery.commit, recovery.term),
            (3, 11, 4)
        );
    }
    let store = LogStore::open(dir.path()).unwrap();
    // Every entry kept, the removals after them, all committed.
    let kept = store.read_entries(1, 12, usize::MAX).unwrap();
    assert_eq!(kept.len(), 11);
    assert_eq!(kept[6].data, entry(7, 3).data);
    let removed: Vec<u64> = kept[8..]
        .iter()
        .map(|e| {
            assert_eq!(e.term, 4);
            let cc: raft::eraftpb::ConfChangeV2 = decode(&e.data).unwrap();
            assert_eq!(cc.get_changes().len(), 1, "single-step changes");
            assert_eq!(
                cc.get_changes()[0].get_change_type(),
                ConfChangeType::RemoveNode
            );
            cc.get_changes()[0].node_id
        })
        .collect();
    assert_eq!(removed, vec![1, 3, 4]);
    let state = store.initial_state().unwrap();
    assert_eq!(state.hard_state, hard_state(4, 2, 11));
    assert_eq!(state.conf_state.voters, vec![2]);
    assert!(state.conf_state.learners.is_empty());
    assert_eq!(store.conf_index(), 11, "the replayed changes are skipped");
    assert_eq!(store.members().keys().copied().collect::<Vec<_>>(), vec![2]);
    let identity = store.identity().unwrap();
    assert_eq!(identity.node_id, 2);
    assert!(identity.cluster_id.starts_with("base."));
    assert_ne!(
        identity.cluster_id, before_id,
        "a lost member's old id is refused"
    );
    assert_eq!(
        store.recovery().unwrap().unwrap().cluster_id,
        identity.cluster_id
    );
}

#[test]
fn recovery_refuses_a_fresh_log_and_a_removed_node_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path()).unwrap();
    assert!(matches!(
        store.force_new_cluster(1, member("a:1"), "now".into()),
        Err(RecoverError::Fresh)
    ));
    assert!(store.is_fresh());
    let voters = std::collections::BTreeMap::from([(1, "a:1".to_string())]);
    store.bootstrap(1, &voters, "t").unwrap();
    store.mark_removed().unwrap();
    assert!(matches!(
        store.force_new_cluster(1, member("a:1"), "now".into()),
        Err(RecoverError::Removed { node_id: 1 })
    ));
    assert_eq!(store.last_index_now(), 1);
    assert!(store.recovery().unwrap().is_none());
}

#[test]
fn a_restored_log_starts_after_a_snapshot_at_the_backups_index_with_one_voter() {
    let dir = tempfile::tempdir().unwrap();
    let identity = Identity {
        node_id: 1,
        cluster_id: "base.0123456789abcdef".into(),
        forming: false,
        admitted_at: 0,
    };
    let own = MemberAddr {
        raft_addr: "a:1".into(),
        url: Some("http://a".into()),
    };
    {
        let store = LogStore::open(dir.path()).unwrap();
        store
            .restore_as_first_member(&identity, own.clone(), 500, 7)
            .unwrap();
        assert!(
            store
                .restore_as_first_member(&identity, own.clone(), 500, 7)
                .is_err(),
            "a restored log is not fresh any more"
        );
    }
    let store = LogStore::open(dir.path()).unwrap();
    assert_eq!(store.identity(), Some(identity));
    assert_eq!(store.first_index().unwrap(), 501);
    assert_eq!(store.last_index().unwrap(), 500);
    assert_eq!(store.term(500).unwrap(), 7);
    assert_eq!(store.conf_state().voters, vec![1]);
    assert_eq!(store.conf_index(), 500);
    assert_eq!(store.members(), Members::from([(1, own.clone())]));
    let hard_state = store.hard_state();
    assert_eq!(
        (hard_state.term, hard_state.commit, hard_state.vote),
        (7, 500, 0)
    );
    // MySQL applied 500: the restored rows are all there is.
    store.recover_commit(500).unwrap();
    assert!(matches!(
        store.recover_commit(501),
        Err(LogError::BehindMysql { .. })
    ));
    // A joiner is sent a snapshot naming index 500 and this member.
    store.set_applied(500);
    let snapshot = store.snapshot(0, 2).unwrap();
    assert_eq!(snapshot.get_metadata().index, 500);
    assert_eq!(snapshot.get_metadata().term, 7);
    let data: SnapshotData = serde_json::from_slice(&snapshot.data).unwrap();
    assert_eq!(data.members, Members::from([(1, own)]));
}
