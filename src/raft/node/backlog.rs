//! Backpressure: the bytes of committed entries MySQL has not applied yet.
//!
//! When MySQL stalls, entries keep committing; each waits in the log for
//! the applier, and every request behind it waits in memory for its
//! answer. Past [`MAX_BACKLOG_BYTES`] (or [`super::decide::MAX_APPLY_LAG`]
//! entries) the node answers new writes `503 overloaded` with a
//! `Retry-After` instead of queueing them behind a backlog that only grows.

use std::collections::VecDeque;

use super::super::handle::Overload;

/// Bytes of committed, unapplied entries beyond which new writes are refused.
pub(crate) const MAX_BACKLOG_BYTES: usize = 64 << 20;

#[derive(Debug, Default)]
pub(crate) struct Backlog {
    /// (index, bytes) of each committed entry not yet applied, in order.
    entries: VecDeque<(u64, usize)>,
    bytes: usize,
}

impl Backlog {
    /// An entry committed (each index once, in order; later repeats ignored).
    pub fn committed(&mut self, index: u64, bytes: usize) {
        if self.entries.back().is_some_and(|(last, _)| *last >= index) {
            return;
        }
        self.entries.push_back((index, bytes));
        self.bytes += bytes;
    }

    /// MySQL applied everything up to `index`.
    pub fn applied(&mut self, index: u64) {
        while let Some(&(first, bytes)) = self.entries.front() {
            if first > index {
                break;
            }
            self.entries.pop_front();
            self.bytes -= bytes;
        }
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Why a new write is refused, if it is.
    pub fn overloaded(&self) -> Option<Overload> {
        (self.bytes > MAX_BACKLOG_BYTES).then_some(Overload::Bytes {
            mib: self.bytes >> 20,
            limit_mib: MAX_BACKLOG_BYTES >> 20,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backlog_counts_committed_bytes_until_applied_and_refuses_past_its_bound() {
        let mut backlog = Backlog::default();
        let big = 100 << 10;
        let mut index = 0;
        while backlog.overloaded().is_none() {
            index += 1;
            backlog.committed(index, big);
        }
        assert_eq!(backlog.bytes(), index as usize * big);
        assert!(backlog.bytes() > MAX_BACKLOG_BYTES);
        assert!(
            backlog.bytes() <= MAX_BACKLOG_BYTES + big,
            "refused right past the bound"
        );
        backlog.committed(index, big);
        assert_eq!(
            backlog.bytes(),
            index as usize * big,
            "a repeat is not counted"
        );
        backlog.applied(index / 2);
        assert!(
            backlog.overloaded().is_none(),
            "accepted again once applied"
        );
        backlog.applied(index);
        assert_eq!(backlog.bytes(), 0);
        assert!(backlog.entries.is_empty());
    }
}
