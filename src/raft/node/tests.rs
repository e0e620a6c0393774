//! The node's decisions driven by explicit ticks and events, without
//! actix or raft-rs's timers: what it refuses, how it reacts to a new
//! leader, when it asks a read again, and how it hands over on shutdown.

use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use uuid::Uuid;

use super::super::handle::{ConsensusError, Overload, TransferRefused};
use super::super::waiters::{PendingWrites, ReadQueue};
use super::decide::*;

fn facts() -> Facts {
    Facts {
        shutting_down: false,
        leader_known: true,
        committed: 100,
        applied: 100,
        backlog: None,
    }
}

#[test]
fn a_write_is_refused_unproposed_once_mysql_lags_past_the_apply_lag_guard() {
    let at_the_guard = Facts {
        committed: 100 + MAX_APPLY_LAG,
        ..facts()
    };
    assert_eq!(admit_write(&at_the_guard), Ok(()));
    let past_it = Facts {
        committed: 101 + MAX_APPLY_LAG,
        ..facts()
    };
    assert_eq!(
        admit_write(&past_it),
        Err(ConsensusError::Overloaded(Overload::Entries {
            entries: MAX_APPLY_LAG + 1
        }))
    );
    assert_eq!(
        admit_read(&past_it),
        Ok(()),
        "a read waits for MySQL instead"
    );
    let bytes = Overload::Bytes {
        mib: 65,
        limit_mib: 64,
    };
    assert_eq!(
        admit_write(&Facts {
            backlog: Some(bytes.clone()),
            ..facts()
        }),
        Err(ConsensusError::Overloaded(bytes)),
        "the bytes waiting refuse a write too"
    );
}

#[test]
fn requests_are_refused_while_shutting_down_and_while_no_leader_is_known() {
    let stopping = Facts {
        shutting_down: true,
        ..facts()
    };
    let leaderless = Facts {
        leader_known: false,
        ..facts()
    };
    for admit in [admit_write, admit_read] {
        assert_eq!(admit(&stopping), Err(ConsensusError::ShuttingDown));
        assert_eq!(admit(&leaderless), Err(ConsensusError::NoLeader));
    }
}

#[test]
fn a_new_leader_fails_the_writes_it_cannot_answer_and_keeps_committed_ones() {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = Leadership { term: 2, leader: 1 };
    let mut writes = PendingWrites::default();
    // Node 1 leads term 2: it proposed entries 5 and 6; a write it forwarded
    // earlier as a follower has no known place in the log.
    let (forwarded_tx, mut forwarded) = oneshot::channel();
    let (committed_tx, mut committed) = oneshot::channel();
    let (lost_tx, mut lost) = oneshot::channel();
    writes.insert(Uuid::from_u128(1), forwarded_tx, deadline, None);
    writes.insert(Uuid::from_u128(2), committed_tx, deadline, Some((5, 2)));
    writes.insert(Uuid::from_u128(3), lost_tx, deadline, Some((6, 2)));

    assert_eq!(
        seen.observe(Leadership { term: 2, leader: 1 }),
        None,
        "no change"
    );

    // Node 3 wins term 3; entry 5 had committed, entry 6 had not.
    let change = seen.observe(Leadership { term: 3, leader: 3 });
    assert_eq!(change, Some(LeadershipChange { new_leader: true }));
    writes.fail_uncommitted(|index, term| index <= 5 && term == 2);

    for (what, answer) in [("forwarded", &mut forwarded), ("uncommitted", &mut lost)] {
        let failed = answer.try_recv().unwrap();
        assert_eq!(failed, Err(ConsensusError::LeaderChanged), "{what}");
    }
    assert!(
        committed.try_recv().is_err(),
        "entry 5 will still be applied"
    );
    assert_eq!(writes.len(), 1);

    // A new term with no leader yet is a change too, not a new leader.
    assert_eq!(
        seen.observe(Leadership { term: 4, leader: 0 }),
        Some(LeadershipChange { new_leader: false })
    );
}

#[test]
fn a_read_round_nobody_answers_is_asked_again_after_two_election_timeouts() {
    let tick = Duration::from_millis(100);
    let retry_after = read_retry_after(tick, 10);
    assert_eq!(retry_after, Duration::from_secs(2));

    let start = Instant::now();
    let mut reads = ReadQueue::new(1);
    let (reply, mut answer) = oneshot::channel();
    reads.push(reply, start + Duration::from_secs(5));
    let first_round = reads.start_round(start);

    // The node's tick: expire, then ask again what is older than the retry.
    let mut asked_again_at = None;
    for n in 1..=30u32 {
        let now = start + tick * n;
        reads.expire(now, Duration::from_secs(5));
        if let Some(sent_before) = now.checked_sub(retry_after) {
            reads.retry_unanswered(sent_before);
        }
        if reads.has_queued() {
            asked_again_at = Some(n);
            break;
        }
    }
    assert_eq!(asked_again_at, Some(21), "the first tick past two timeouts");

    let second_round = reads.start_round(start + tick * 21);
    reads.on_read_state(&first_round, 7, 7);
    assert!(
        answer.try_recv().is_err(),
        "the stale round's answer is ignored"
    );
    reads.on_read_state(&second_round, 8, 7);
    assert!(answer.try_recv().is_err(), "index 8 is not applied yet");
    reads.on_applied(8);
    assert_eq!(answer.try_recv().unwrap(), Ok(()));
}

#[test]
fn a_new_leader_sends_unanswered_read_rounds_again_at_once() {
    let now = Instant::now();
    let mut reads = ReadQueue::new(1);
    let (reply, _answer) = oneshot::channel();
    reads.push(reply, now + Duration::from_secs(5));
    reads.start_round(now);
    let mut seen = Leadership { term: 2, leader: 2 };
    if seen.observe(Leadership { term: 3, leader: 3 }).is_some() {
        reads.retry_unanswered(now + Duration::from_nanos(1));
    }
    assert!(reads.has_queued(), "the round sent to the old leader");
}

#[test]
fn a_leader_shutting_down_hands_over_to_the_most_up_to_date_voter_then_stops_waiting() {
    let matched = |id| match id {
        2 => 40,
        3 => 42,
        4 => 42,
        _ => 0,
    };
    assert_eq!(
        successor(1, [1, 2, 3, 4], matched),
        Some(3),
        "ties: lowest id"
    );
    assert_eq!(successor(1, [1], matched), None, "nobody to hand over to");

    let asked = Instant::now();
    let until = asked + Duration::from_secs(3);
    assert!(!shutdown_done(true, asked, until), "still leading: wait");
    assert!(shutdown_done(false, asked, until), "a follower now: done");
    assert!(
        shutdown_done(true, until, until),
        "no successor took over in time"
    );
}

#[test]
fn only_the_leader_transfers_leadership_and_only_to_a_voter() {
    assert_eq!(check_transfer(1, true, 1, true, 2), Ok(()));
    assert_eq!(
        check_transfer(2, false, 1, true, 3),
        Err(TransferRefused::NotLeader { node: 2, leader: 1 })
    );
    assert_eq!(
        check_transfer(1, true, 1, false, 4),
        Err(TransferRefused::NotVoter(4))
    );
}
