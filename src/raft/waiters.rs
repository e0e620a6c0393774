//! Requests parked in the Raft node: writes waiting for their entry to be
//! applied here, and reads waiting for a read index and then for apply.
//!
//! Every waiter has a deadline, because raft-rs drops proposals and read
//! requests silently (no leader, a leader transfer in progress, a leader
//! that has not yet committed in its term). None waits forever.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use uuid::Uuid;

use super::handle::ConsensusError;
use crate::task::Applied;

type WriteReply = oneshot::Sender<Result<Applied, ConsensusError>>;
type ReadReply = oneshot::Sender<Result<(), ConsensusError>>;

struct PendingWrite {
    reply: WriteReply,
    deadline: Instant,
    /// Index and term of the entry, when this node proposed it as leader.
    entry: Option<(u64, u64)>,
}

/// Writes proposed through this node, by request id.
#[derive(Default)]
pub struct PendingWrites {
    writes: HashMap<Uuid, PendingWrite>,
}

impl PendingWrites {
    pub fn insert(
        &mut self,
        request_id: Uuid,
        reply: WriteReply,
        deadline: Instant,
        entry: Option<(u64, u64)>,
    ) {
        self.writes.insert(
            request_id,
            PendingWrite {
                reply,
                deadline,
                entry,
            },
        );
    }

    /// Answers the request `request_id`, if this node still holds it.
    pub fn resolve(&mut self, request_id: &Uuid, applied: Applied) {
        if let Some(write) = self.writes.remove(request_id) {
            let _ = write.reply.send(Ok(applied));
        }
    }

    /// After a change of leader or term: fails every write whose entry is
    /// not known to be committed. `committed(index, term)` says whether the
    /// entry at `index` with `term` is committed; those will still be applied.
    pub fn fail_uncommitted(&mut self, committed: impl Fn(u64, u64) -> bool) {
        self.writes.retain(|_, write| match write.entry {
            Some((index, term)) if committed(index, term) => true,
            _ => {
                let (reply, _) = oneshot::channel();
                let reply = std::mem::replace(&mut write.reply, reply);
                let _ = reply.send(Err(ConsensusError::LeaderChanged));
                false
            }
        });
    }

    pub fn expire(&mut self, now: Instant, timeout: Duration) {
        self.writes.retain(|_, write| {
            if write.deadline > now {
                return true;
            }
            let (reply, _) = oneshot::channel();
            let reply = std::mem::replace(&mut write.reply, reply);
            let _ = reply.send(Err(ConsensusError::Timeout(timeout)));
            false
        });
    }

    pub fn fail_all(&mut self, error: ConsensusError) {
        for (_, write) in self.writes.drain() {
            let _ = write.reply.send(Err(error.clone()));
        }
    }

    pub fn len(&self) -> usize {
        self.writes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }
}

struct ReadWaiter {
    reply: ReadReply,
    deadline: Instant,
}

struct InFlight {
    waiters: Vec<ReadWaiter>,
    sent: Instant,
}

/// Linearizable reads, batched: all reads that arrive while one ReadIndex
/// round is being set up share the next round.
///
/// A round's context must be unique in the whole cluster: the leader keeps
/// pending ReadIndex requests by context and silently drops one whose
/// context is already pending (raft-rs `ReadOnly::add_request`). So it is
/// this node's id followed by a counter that starts from the clock, which a
/// restarted node does not repeat either.
#[derive(Default)]
pub struct ReadQueue {
    node_id: u64,
    next_ctx: u64,
    queued: Vec<ReadWaiter>,
    in_flight: HashMap<u64, InFlight>,
    /// Read index → reads that may go ahead once it is applied.
    awaiting_apply: BTreeMap<u64, Vec<ReadWaiter>>,
}

impl ReadQueue {
    pub fn new(node_id: u64) -> Self {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        ReadQueue {
            node_id,
            next_ctx: since_epoch.as_nanos() as u64,
            ..ReadQueue::default()
        }
    }

    pub fn push(&mut self, reply: ReadReply, deadline: Instant) {
        self.queued.push(ReadWaiter { reply, deadline });
    }

    pub fn has_queued(&self) -> bool {
        !self.queued.is_empty()
    }

    /// No read waits, for a round or for apply.
    pub fn is_empty(&self) -> bool {
        self.queued.is_empty() && self.in_flight.is_empty() && self.awaiting_apply.is_empty()
    }

    /// Moves the queued reads into a new round and returns its context, to
    /// be passed to `RawNode::read_index`.
    pub fn start_round(&mut self, now: Instant) -> Vec<u8> {
        self.next_ctx += 1;
        let waiters = std::mem::take(&mut self.queued);
        self.in_flight
            .insert(self.next_ctx, InFlight { waiters, sent: now });
        let mut ctx = self.node_id.to_be_bytes().to_vec();
        ctx.extend_from_slice(&self.next_ctx.to_be_bytes());
        ctx
    }

    /// raft-rs answered a round: its reads may go once `index` is applied.
    pub fn on_read_state(&mut self, ctx: &[u8], index: u64, applied: u64) {
        let Some((node, counter)) = ctx.split_at_checked(8) else {
            return;
        };
        if node != self.node_id.to_be_bytes() {
            return;
        }
        let Some(ctx) = counter.try_into().ok().map(u64::from_be_bytes) else {
            return;
        };
        if let Some(round) = self.in_flight.remove(&ctx) {
            self.awaiting_apply
                .entry(index)
                .or_default()
                .extend(round.waiters);
        }
        self.on_applied(applied);
    }

    /// Releases every read whose read index is now applied.
    pub fn on_applied(&mut self, applied: u64) {
        let later = self.awaiting_apply.split_off(&(applied + 1));
        for waiter in std::mem::replace(&mut self.awaiting_apply, later)
            .into_values()
            .flatten()
        {
            let _ = waiter.reply.send(Ok(()));
        }
    }

    /// Rounds that got no answer (the leader changed, or dropped them) are
    /// asked again: a read is safe to repeat.
    pub fn retry_unanswered(&mut self, sent_before: Instant) {
        let stale: Vec<u64> = self
            .in_flight
            .iter()
            .filter(|(_, round)| round.sent < sent_before)
            .map(|(ctx, _)| *ctx)
            .collect();
        for ctx in stale {
            if let Some(round) = self.in_flight.remove(&ctx) {
                self.queued.extend(round.waiters);
            }
        }
    }

    pub fn fail_queued(&mut self, error: ConsensusError) {
        for waiter in self.queued.drain(..) {
            let _ = waiter.reply.send(Err(error.clone()));
        }
    }

    pub fn expire(&mut self, now: Instant, timeout: Duration) {
        let expired = |waiters: &mut Vec<ReadWaiter>| {
            let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(waiters)
                .into_iter()
                .partition(|w| w.deadline <= now);
            *waiters = kept;
            for waiter in gone {
                let _ = waiter.reply.send(Err(ConsensusError::Timeout(timeout)));
            }
        };
        expired(&mut self.queued);
        for round in self.in_flight.values_mut() {
            expired(&mut round.waiters);
        }
        self.in_flight.retain(|_, round| !round.waiters.is_empty());
        for waiters in self.awaiting_apply.values_mut() {
            expired(waiters);
        }
        self.awaiting_apply.retain(|_, waiters| !waiters.is_empty());
    }

    pub fn fail_all(&mut self, error: ConsensusError) {
        self.fail_queued(error.clone());
        let rounds = self.in_flight.drain().flat_map(|(_, r)| r.waiters);
        let applying = std::mem::take(&mut self.awaiting_apply)
            .into_values()
            .flatten();
        for waiter in rounds.chain(applying) {
            let _ = waiter.reply.send(Err(error.clone()));
        }
    }

    pub fn len(&self) -> usize {
        self.queued.len()
            + self
                .in_flight
                .values()
                .map(|r| r.waiters.len())
                .sum::<usize>()
            + self.awaiting_apply.values().map(Vec::len).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(
        queue: &mut ReadQueue,
        deadline: Instant,
    ) -> oneshot::Receiver<Result<(), ConsensusError>> {
        let (tx, rx) = oneshot::channel();
        queue.push(tx, deadline);
        rx
    }

    #[test]
    fn reads_in_one_round_go_ahead_only_once_their_index_is_applied() {
        let now = Instant::now();
        let later = now + Duration::from_secs(5);
        let mut queue = ReadQueue::new(1);
        let mut a = read(&mut queue, later);
        let mut b = read(&mut queue, later);
        let ctx = queue.start_round(now);
        let mut c = read(&mut queue, later);

        queue.on_read_state(&ctx, 10, 9);
        assert!(a.try_recv().is_err(), "index 10 is not applied yet");
        queue.on_applied(10);
        assert_eq!(a.try_recv().unwrap(), Ok(()));
        assert_eq!(b.try_recv().unwrap(), Ok(()));
        assert!(c.try_recv().is_err(), "c joined after the round started");
        assert!(queue.has_queued());
    }

    #[test]
    fn round_contexts_differ_between_nodes_and_across_restarts() {
        let now = Instant::now();
        let mut one = ReadQueue::new(1);
        let mut two = ReadQueue::new(2);
        let first = one.start_round(now);
        assert_ne!(first, two.start_round(now));
        assert_ne!(first, ReadQueue::new(1).start_round(now), "restarted");
        assert_ne!(first, one.start_round(now));
        let mut a = read(&mut two, now + Duration::from_secs(5));
        let ctx = two.start_round(now);
        one.on_read_state(&ctx, 1, 1);
        assert!(a.try_recv().is_err(), "another node's answer");
        two.on_read_state(&ctx, 1, 1);
        assert_eq!(a.try_recv().unwrap(), Ok(()));
    }

    #[test]
    fn an_unanswered_round_is_asked_again_and_a_late_read_times_out() {
        let now = Instant::now();
        let mut queue = ReadQueue::new(1);
        let mut a = read(&mut queue, now + Duration::from_secs(5));
        let mut b = read(&mut queue, now + Duration::from_millis(10));
        queue.start_round(now);
        queue.retry_unanswered(now + Duration::from_millis(1));
        assert!(queue.has_queued());
        queue.expire(now + Duration::from_millis(20), Duration::from_millis(10));
        assert_eq!(
            b.try_recv().unwrap(),
            Err(ConsensusError::Timeout(Duration::from_millis(10)))
        );
        assert!(a.try_recv().is_err());
        let ctx = queue.start_round(now);
        queue.on_read_state(&ctx, 3, 3);
        assert_eq!(a.try_recv().unwrap(), Ok(()));
        assert_eq!(queue.len(), 0);
    }

    #[test]
    fn a_leader_change_fails_only_writes_not_known_to_be_committed() {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut writes = PendingWrites::default();
        let (tx1, mut forwarded) = oneshot::channel();
        let (tx2, mut committed) = oneshot::channel();
        let (tx3, mut lost) = oneshot::channel();
        writes.insert(Uuid::from_u128(1), tx1, deadline, None);
        writes.insert(Uuid::from_u128(2), tx2, deadline, Some((5, 2)));
        writes.insert(Uuid::from_u128(3), tx3, deadline, Some((6, 2)));
        writes.fail_uncommitted(|index, term| index <= 5 && term == 2);
        assert_eq!(
            forwarded.try_recv().unwrap(),
            Err(ConsensusError::LeaderChanged)
        );
        assert_eq!(lost.try_recv().unwrap(), Err(ConsensusError::LeaderChanged));
        assert!(
            committed.try_recv().is_err(),
            "still waiting: it will be applied"
        );
        assert_eq!(writes.len(), 1);
    }
}
