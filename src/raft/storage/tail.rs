//! The newest entries, kept in memory beside the files.

use raft::eraftpb::Entry;

/// Entries most recently written, kept in memory. raft-rs reads each new
/// entry back to send it to followers and to hand it out as committed, and
/// the applier reads it again to apply it: served from here, none of that
/// touches the files. Contiguous, ending at the log's last index.
#[derive(Default)]
pub(super) struct TailCache {
    entries: std::collections::VecDeque<Entry>,
    bytes: usize,
}

/// Enough for a few seconds of writes at full speed.
pub(super) const TAIL_ENTRIES: usize = 16_384;
pub(super) const TAIL_BYTES: usize = 32 << 20;

impl TailCache {
    fn size(entry: &Entry) -> usize {
        entry.data.len() + entry.context.len() + 32
    }

    /// Adds entries just made durable; they replace any cached suffix from
    /// their first index on (a new leader overruling this log).
    pub(super) fn append(&mut self, new: &[Entry]) {
        let Some(first) = new.first() else {
            return;
        };
        while self.entries.back().is_some_and(|e| e.index >= first.index) {
            if let Some(e) = self.entries.pop_back() {
                self.bytes -= TailCache::size(&e);
            }
        }
        if self
            .entries
            .back()
            .is_some_and(|e| e.index + 1 != first.index)
        {
            self.entries.clear();
            self.bytes = 0;
        }
        for entry in new {
            self.bytes += TailCache::size(entry);
            self.entries.push_back(entry.clone());
        }
        while self.entries.len() > TAIL_ENTRIES || self.bytes > TAIL_BYTES {
            if let Some(e) = self.entries.pop_front() {
                self.bytes -= TailCache::size(&e);
            }
        }
    }

    /// Forgets everything (the log was replaced by a snapshot).
    pub(super) fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }

    pub(super) fn first_index(&self) -> Option<u64> {
        self.entries.front().map(|e| e.index)
    }

    /// `[low, high)` if all of it is cached, at most `max_bytes` (at least one).
    pub(super) fn range(
        &self,
        low: u64,
        high: u64,
        max_bytes: Option<usize>,
    ) -> Option<Vec<Entry>> {
        let first = self.first_index()?;
        let last = self.entries.back()?.index;
        if low < first || high > last + 1 || low >= high {
            return None;
        }
        let mut out = Vec::with_capacity((high - low) as usize);
        let mut total = 0;
        for entry in self
            .entries
            .range((low - first) as usize..(high - first) as usize)
        {
            total += protobuf::Message::compute_size(entry) as usize;
            if !out.is_empty() && max_bytes.is_some_and(|max| total > max) {
                break;
            }
            out.push(entry.clone());
        }
        Some(out)
    }

    pub(super) fn term(&self, index: u64) -> Option<u64> {
        let first = self.first_index()?;
        let offset = index.checked_sub(first)? as usize;
        self.entries.get(offset).map(|e| e.term)
    }
}
