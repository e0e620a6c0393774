//! The hub's memory and pacing, as a plain value: which committed frames
//! a joining session missed, and when the sessions are fed next. No actix
//! and no clock of its own: the hub passes `now`, so the tests below drive
//! it with made-up instants.
//!
//! Pacing. Each delivery costs a session a write (a system call); one per
//! event at 200 events/s to 1,000 sockets (200,000 writes/s) saturated a
//! 2-core machine: delivery p99 ~100 ms, and writes queued behind the
//! fan-out (p50 ~40 ms). So sessions are fed at most once per
//! `sessions / DELIVERIES_PER_SECOND` seconds: frames that find the last
//! delivery older go out at once, later ones wait for the next turn and go
//! together. A board or two are fed immediately; 333 sessions on a node,
//! every 25 ms (the figures this gives are in the README, "Performance").

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Frame;

/// Deliveries per second this node may make across all its sessions.
pub const DELIVERIES_PER_SECOND: u32 = 13_000;
/// Bytes of frames kept for sessions that join, whatever `ws_backlog`
/// says: 10,000 events of 20 kB descriptions would otherwise hold 200 MB.
pub const MAX_KEPT_BYTES: usize = 32 << 20;
/// However many sessions, no frame waits longer than this for its turn.
pub const MAX_DELIVERY_INTERVAL: Duration = Duration::from_millis(50);

/// How long sessions wait between two deliveries when there are `sessions`.
pub fn delivery_interval(sessions: usize) -> Duration {
    (Duration::from_secs(1) * sessions as u32 / DELIVERIES_PER_SECOND).min(MAX_DELIVERY_INTERVAL)
}

/// Committed frames: the recent ones for sessions that join, and the ones
/// not yet delivered to the sessions already fed.
pub struct Feed {
    /// The last seq committed and published.
    last_seq: u64,
    /// The most recent frames, contiguous, ending at `last_seq`: at most
    /// `capacity` of them, and at most [`MAX_KEPT_BYTES`] of JSON. A
    /// client further behind reloads (`resync`).
    recent: VecDeque<Frame>,
    capacity: usize,
    recent_bytes: usize,
    /// Frames committed but not delivered yet.
    pending: Vec<Frame>,
    last_delivery: Instant,
    /// A turn is already scheduled; frames published meanwhile wait for it.
    turn_scheduled: bool,
}

/// What publishing a batch did to the feed.
#[derive(Debug, PartialEq, Eq)]
pub enum Published {
    /// Every frame was one the feed already had.
    Nothing,
    /// The frames follow `last_seq` without a hole.
    InOrder,
    /// Frames went by unpublished (the applier resumed after a lost COMMIT
    /// reply): the feed dropped what it kept and starts again at `got`; no
    /// session can be fed without a hole, so every one must resync.
    AfterGap { expected: u64, got: u64 },
}

/// When the sessions get the pending frames.
#[derive(Debug, PartialEq)]
pub enum Turn {
    /// Nothing is pending, or a turn is already scheduled.
    Idle,
    /// Deliver these now.
    Now(Arc<[Frame]>),
    /// Come back after this long (and call [`Feed::turn_came`]).
    Later(Duration),
}

impl Feed {
    /// An empty feed keeping up to `capacity` frames; `now` counts as the
    /// last delivery.
    pub fn new(capacity: usize, now: Instant) -> Feed {
        Feed {
            last_seq: 0,
            recent: VecDeque::with_capacity(capacity.min(100_000)),
            capacity,
            recent_bytes: 0,
            pending: Vec::new(),
            last_delivery: now,
            turn_scheduled: false,
        }
    }

    /// The last seq committed and published.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// How many frames are kept for sessions that join.
    pub fn kept(&self) -> usize {
        self.recent.len()
    }

    /// Fills the memory from the event table at start-up: `frames` are its
    /// last rows, `last` its last seq.
    pub fn prefill(&mut self, last: u64, frames: impl IntoIterator<Item = Frame>) {
        for frame in frames {
            self.remember(frame);
        }
        self.last_seq = self.last_seq.max(last);
    }

    /// Takes a batch the applier committed. Frames at or below `last_seq`
    /// (already had from the prefill) are dropped; the rest are kept at
    /// once, so a session that joins now gets them from memory, and wait
    /// for the next turn.
    pub fn publish(&mut self, frames: Vec<Frame>) -> Published {
        let fresh: Vec<Frame> = frames
            .into_iter()
            .filter(|f| f.seq > self.last_seq)
            .collect();
        let Some(first) = fresh.first() else {
            return Published::Nothing;
        };
        let published = if first.seq == self.last_seq + 1 {
            Published::InOrder
        } else {
            let gap = Published::AfterGap {
                expected: self.last_seq + 1,
                got: first.seq,
            };
            self.recent.clear();
            self.recent_bytes = 0;
            self.pending.clear();
            gap
        };
        for frame in &fresh {
            self.remember(frame.clone());
        }
        self.pending.extend(fresh);
        published
    }

    /// The frames after `since`, if memory still holds all of them; `None`
    /// when the session is too far behind and must resync. A `since` at or
    /// past `last_seq` misses nothing.
    pub fn frames_after(&self, since: u64) -> Option<Vec<Frame>> {
        if since >= self.last_seq {
            return Some(Vec::new());
        }
        let oldest = self.recent.front()?.seq;
        if oldest > since + 1 {
            return None;
        }
        Some(
            self.recent
                .iter()
                .filter(|f| f.seq > since)
                .cloned()
                .collect(),
        )
    }

    /// Whether the pending frames go to the `sessions` now or later.
    pub fn turn(&mut self, sessions: usize, now: Instant) -> Turn {
        if self.turn_scheduled || self.pending.is_empty() {
            return Turn::Idle;
        }
        let due = self.last_delivery + delivery_interval(sessions);
        if now < due {
            self.turn_scheduled = true;
            return Turn::Later(due - now);
        }
        self.last_delivery = now;
        Turn::Now(std::mem::take(&mut self.pending).into())
    }

    /// The turn scheduled by [`Feed::turn`] has come: ask for it again.
    pub fn turn_came(&mut self) {
        self.turn_scheduled = false;
    }

    fn remember(&mut self, frame: Frame) {
        self.last_seq = frame.seq;
        self.recent_bytes += frame.json.len();
        self.recent.push_back(frame);
        while self.recent.len() > self.capacity
            || (self.recent_bytes > MAX_KEPT_BYTES && self.recent.len() > 1)
        {
            if let Some(old) = self.recent.pop_front() {
                self.recent_bytes -= old.json.len();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(seq: u64) -> Frame {
        Frame {
            seq,
            json: format!("{{\"seq\":{seq}}}").into(),
            board: None,
            member: None,
            recipient: None,
            admins_only: false,
        }
    }

    fn frames(seqs: std::ops::RangeInclusive<u64>) -> Vec<Frame> {
        seqs.map(frame).collect()
    }

    fn seqs(frames: &[Frame]) -> Vec<u64> {
        frames.iter().map(|f| f.seq).collect()
    }

    /// A feed whose last delivery was long ago, so its first turn is now.
    fn feed(capacity: usize) -> (Feed, Instant) {
        let start = Instant::now();
        (Feed::new(capacity, start), start + Duration::from_secs(1))
    }

    #[test]
    fn a_session_resuming_within_memory_gets_exactly_the_frames_it_missed() {
        let (mut feed, _) = feed(10);
        assert_eq!(feed.publish(frames(1..=6)), Published::InOrder);
        assert_eq!(seqs(&feed.frames_after(3).unwrap()), [4, 5, 6]);
        assert_eq!(seqs(&feed.frames_after(0).unwrap()), [1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn a_session_that_is_up_to_date_or_ahead_misses_nothing() {
        let (mut feed, _) = feed(10);
        feed.publish(frames(1..=3));
        assert_eq!(feed.frames_after(3), Some(Vec::new()));
        assert_eq!(feed.frames_after(99), Some(Vec::new()));
    }

    #[test]
    fn a_session_further_behind_than_memory_must_resync() {
        let (mut feed, _) = feed(4);
        feed.publish(frames(1..=10));
        assert_eq!(feed.kept(), 4, "memory keeps the last four");
        assert_eq!(seqs(&feed.frames_after(6).unwrap()), [7, 8, 9, 10]);
        assert_eq!(feed.frames_after(5), None, "seq 6 is forgotten");
    }

    #[test]
    fn large_frames_are_kept_up_to_a_byte_budget_not_the_frame_count() {
        // A regression: only the count was capped, so 10,000 frames of
        // 20 kB descriptions held 200 MB for sessions that might resume.
        let (mut feed, _) = feed(10_000);
        let big = "x".repeat(100_000);
        let frames: Vec<Frame> = (1..=1_000)
            .map(|seq| Frame {
                seq,
                json: format!("{{\"seq\":{seq},\"d\":\"{big}\"}}").into(),
                board: None,
                member: None,
                recipient: None,
                admins_only: false,
            })
            .collect();
        feed.publish(frames);
        let kept: usize = feed.recent.iter().map(|f| f.json.len()).sum();
        assert!(kept <= MAX_KEPT_BYTES, "{kept} bytes kept");
        assert_eq!(kept, feed.recent_bytes, "bytes are counted exactly");
        assert!(feed.kept() > 300, "as many as fit: {}", feed.kept());
        assert_eq!(feed.frames_after(0), None, "the first ones are forgotten");
        assert_eq!(feed.frames_after(999).map(|f| seqs(&f)), Some(vec![1_000]));
    }

    #[test]
    fn frames_already_had_from_the_prefill_are_not_published_twice() {
        let (mut feed, now) = feed(10);
        feed.prefill(5, frames(1..=5));
        assert_eq!(feed.publish(frames(4..=5)), Published::Nothing);
        assert_eq!(feed.turn(1, now), Turn::Idle, "nothing to deliver");
        assert_eq!(feed.publish(frames(5..=7)), Published::InOrder);
        let Turn::Now(sent) = feed.turn(1, now) else {
            panic!("one session is fed at once");
        };
        assert_eq!(seqs(&sent), [6, 7]);
    }

    #[test]
    fn a_prefill_of_an_empty_table_still_knows_the_last_seq() {
        let (mut feed, _) = feed(10);
        feed.prefill(42, Vec::new());
        assert_eq!(feed.last_seq(), 42);
        assert_eq!(feed.frames_after(41), None, "seq 42 is not in memory");
    }

    #[test]
    fn a_hole_in_the_published_seqs_drops_memory_and_pending_frames() {
        let (mut feed, now) = feed(10);
        feed.publish(frames(1..=3));
        assert_eq!(
            feed.publish(frames(6..=7)),
            Published::AfterGap {
                expected: 4,
                got: 6
            }
        );
        assert_eq!(feed.last_seq(), 7);
        assert_eq!(feed.frames_after(3), None, "nobody can bridge the hole");
        assert_eq!(seqs(&feed.frames_after(5).unwrap()), [6, 7]);
        let Turn::Now(sent) = feed.turn(0, now) else {
            panic!("the frames after the hole are due");
        };
        assert_eq!(seqs(&sent), [6, 7], "1 to 3 were dropped");
    }

    #[test]
    fn a_board_or_two_are_fed_at_once() {
        assert_eq!(delivery_interval(0), Duration::ZERO);
        assert_eq!(delivery_interval(2), Duration::from_nanos(153_846));
        let start = Instant::now();
        let mut feed = Feed::new(10, start);
        feed.publish(frames(1..=1));
        assert!(matches!(
            feed.turn(2, start + Duration::from_millis(1)),
            Turn::Now(_)
        ));
    }

    #[test]
    fn many_sessions_are_fed_in_turns_and_frames_that_wait_go_together() {
        let start = Instant::now();
        let mut feed = Feed::new(100, start);
        let sessions = 333;
        assert_eq!(
            delivery_interval(sessions),
            Duration::from_nanos(25_615_384)
        );
        let t = start + Duration::from_secs(1);

        feed.publish(frames(1..=1));
        assert!(
            matches!(feed.turn(sessions, t), Turn::Now(_)),
            "the last delivery is old"
        );

        let soon = t + Duration::from_millis(5);
        feed.publish(frames(2..=2));
        let Turn::Later(wait) = feed.turn(sessions, soon) else {
            panic!("a frame right after a delivery waits for the next turn");
        };
        assert_eq!(soon + wait, t + delivery_interval(sessions));

        feed.publish(frames(3..=4));
        assert_eq!(
            feed.turn(sessions, soon),
            Turn::Idle,
            "the turn is already scheduled"
        );

        feed.turn_came();
        let Turn::Now(sent) = feed.turn(sessions, soon + wait) else {
            panic!("the turn has come");
        };
        assert_eq!(seqs(&sent), [2, 3, 4], "one delivery for all that waited");
    }

    #[test]
    fn however_many_sessions_no_frame_waits_longer_than_the_cap() {
        assert_eq!(delivery_interval(1_000_000), MAX_DELIVERY_INTERVAL);
        let start = Instant::now();
        let mut feed = Feed::new(10, start);
        feed.publish(frames(1..=1));
        assert_eq!(
            feed.turn(1_000_000, start),
            Turn::Later(MAX_DELIVERY_INTERVAL)
        );
    }
}
