//! A committed entry this version cannot decode stops the applier.
//!
//! Such an entry holds a command of a kind a newer version added (the
//! cluster-version gate, [`crate::version`], keeps a leader from proposing
//! one while a voter of an older version remains; a learner, or a gate
//! bypassed, can still meet one). Skipping it would let this node's rows
//! silently diverge from its peers', so the applier applies everything
//! before it and stops there: the node says why in `/readyz` (not ready),
//! in `/api/cluster` (`apply_error`) and in its log, and goes on voting and
//! replicating. The entry stays in the log (compaction never passes the
//! applied index), so once the node runs a version that knows the kind it
//! applies it and goes on.

use crate::raft::CommittedEntry;

/// Why the applier stopped: the entry it cannot go past.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stopped {
    pub index: u64,
    pub term: u64,
    pub error: String,
}

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "stopped at log entry {} (term {}): version {} cannot decode it ({}); \
             it is kept in the log and applied once this node runs a version that knows it",
            self.index,
            self.term,
            crate::version::VERSION,
            self.error
        )
    }
}

/// Cuts `batch` before its first entry that did not decode: the entries
/// to apply, and the stop when there is one.
pub fn until_undecodable(mut batch: Vec<CommittedEntry>) -> (Vec<CommittedEntry>, Option<Stopped>) {
    let Some(at) = batch.iter().position(|e| e.undecodable.is_some()) else {
        return (batch, None);
    };
    let entry = &batch[at];
    let stopped = Stopped {
        index: entry.index,
        term: entry.term,
        error: entry.undecodable.clone().unwrap_or_default(),
    };
    batch.truncate(at);
    (batch, Some(stopped))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, undecodable: Option<&str>) -> CommittedEntry {
        CommittedEntry {
            index,
            term: 2,
            command: None,
            undecodable: undecodable.map(str::to_string),
            origin: None,
            membership: None,
        }
    }

    #[test]
    fn entries_before_an_undecodable_one_are_applied_and_none_after_it() {
        let batch = vec![
            entry(5, None),
            entry(6, None),
            entry(7, Some("unknown variant `create_board`")),
            entry(8, None),
        ];
        let (apply, stopped) = until_undecodable(batch);
        assert_eq!(apply.iter().map(|e| e.index).collect::<Vec<_>>(), [5, 6]);
        let stopped = stopped.expect("it stops");
        assert_eq!((stopped.index, stopped.term), (7, 2));
        let text = stopped.to_string();
        assert!(
            text.contains("log entry 7") && text.contains("create_board"),
            "{text}"
        );
    }

    #[test]
    fn a_batch_starting_with_one_applies_nothing_and_a_clean_one_everything() {
        let (apply, stopped) = until_undecodable(vec![entry(5, Some("x")), entry(6, None)]);
        assert!(apply.is_empty());
        assert_eq!(stopped.map(|s| s.index), Some(5));
        let (apply, stopped) = until_undecodable(vec![entry(5, None), entry(6, None)]);
        assert_eq!(apply.len(), 2);
        assert_eq!(stopped, None);
    }
}
