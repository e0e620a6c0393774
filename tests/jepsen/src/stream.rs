//! The WebSocket feed's promise, per subscriber: events in `seq` order with
//! no gap and no repeat, within a connection and across resumes, and each
//! one the event the cluster agreed on.
//!
//! A subscriber is a sequence of [`Connection`]s. Each starts where it
//! asked to: after `since` when given (a resume), else after the `seq` of
//! its `hello` (live only). From there its events must go up by exactly
//! one. A resume must also continue the subscriber's own sequence: `since`
//! is the last seq it saw (`bad_resume` otherwise), unless the previous
//! connection ended with `resync`, after which the client reloads and picks
//! a new `since`.
//!
//! Every event received must match the event table (taken from a node
//! after the run, once the nodes agree — see [`crate::convergence`]) at its
//! seq: same event id, task id and kind.
//!
//! Not here: the `cluster` frames, and whether the subscriber received the
//! events soon enough.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::events::{Event, EventRow};
use crate::report::{Anomaly, Check, Verdict};

/// One WebSocket connection of a subscriber.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    /// The node it was connected to.
    pub node: String,
    /// The `since` of `/ws?since=`; `None` for a live-only subscription.
    pub since: Option<u64>,
    /// The `seq` of its `hello`, if it arrived.
    pub hello_seq: Option<u64>,
    /// The `event` frames, in arrival order.
    pub events: Vec<Event>,
    /// It ended with `resync`: the next connection need not continue it.
    pub resynced: bool,
}

/// One client of the feed, across reconnections.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscriber {
    /// Its name in the report.
    pub name: String,
    /// Its connections, oldest first.
    pub connections: Vec<Connection>,
}

/// Where a subscriber's feed broke its promise.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StreamAnomaly {
    /// An event came after a hole: `expected` was skipped.
    Gap {
        subscriber: String,
        connection: usize,
        node: String,
        expected: u64,
        got: u64,
    },
    /// An event at or below one already delivered on this connection.
    Repeat {
        subscriber: String,
        connection: usize,
        node: String,
        expected: u64,
        got: u64,
    },
    /// A resume from another point than the last event seen.
    BadResume {
        subscriber: String,
        connection: usize,
        since: u64,
        last_seen: u64,
    },
    /// A received event differs from the table at its seq.
    Mismatch {
        subscriber: String,
        connection: usize,
        seq: u64,
        seen: Event,
        table: Event,
    },
    /// A received event whose seq the table does not hold.
    NotInTable {
        subscriber: String,
        connection: usize,
        seq: u64,
    },
}

impl StreamAnomaly {
    /// The anomaly kind in the report.
    pub fn kind(&self) -> &'static str {
        match self {
            StreamAnomaly::Gap { .. } => "gap",
            StreamAnomaly::Repeat { .. } => "repeat",
            StreamAnomaly::BadResume { .. } => "bad_resume",
            StreamAnomaly::Mismatch { .. } => "event_mismatch",
            StreamAnomaly::NotInTable { .. } => "event_not_in_table",
        }
    }

    fn detail(&self) -> String {
        match self {
            StreamAnomaly::Gap { subscriber, connection, node, expected, got } => {
                format!("{subscriber} connection {connection} ({node}): expected seq {expected}, got {got}")
            }
            StreamAnomaly::Repeat { subscriber, connection, node, expected, got } => format!(
                "{subscriber} connection {connection} ({node}): expected seq {expected}, got {got} again"
            ),
            StreamAnomaly::BadResume { subscriber, connection, since, last_seen } => format!(
                "{subscriber} connection {connection} resumed since {since}, but had seen up to {last_seen}"
            ),
            StreamAnomaly::Mismatch { subscriber, connection, seq, seen, table } => format!(
                "{subscriber} connection {connection}: seq {seq} received as {} {} {}, the table has {} {} {}",
                seen.kind.as_str(),
                seen.task_id,
                seen.event_id,
                table.kind.as_str(),
                table.task_id,
                table.event_id
            ),
            StreamAnomaly::NotInTable { subscriber, connection, seq } => {
                format!("{subscriber} connection {connection}: seq {seq} is not in the event table")
            }
        }
    }
}

/// The stream check's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamResult {
    /// Subscribers checked.
    pub subscribers: usize,
    /// Their connections.
    pub connections: usize,
    /// Connections that resumed with `since` after an earlier one.
    pub resumes: usize,
    /// Events received, in all.
    pub events: usize,
    /// Everything found wrong, in subscriber order.
    pub anomalies: Vec<StreamAnomaly>,
}

/// Checks every subscriber's feed against the event table.
pub fn check(subscribers: &[Subscriber], table: &[EventRow]) -> StreamResult {
    let rows: BTreeMap<u64, &EventRow> = table.iter().map(|r| (r.seq, r)).collect();
    let mut result = StreamResult {
        subscribers: subscribers.len(),
        connections: 0,
        resumes: 0,
        events: 0,
        anomalies: Vec::new(),
    };
    for subscriber in subscribers {
        let name = || subscriber.name.clone();
        let mut last_seen: Option<u64> = None;
        let mut after_resync = false;
        for (c, conn) in subscriber.connections.iter().enumerate() {
            result.connections += 1;
            if let (Some(since), Some(last)) = (conn.since, last_seen) {
                result.resumes += 1;
                if since != last && !after_resync {
                    result.anomalies.push(StreamAnomaly::BadResume {
                        subscriber: name(),
                        connection: c,
                        since,
                        last_seen: last,
                    });
                }
            }
            let mut expected = conn.since.or(conn.hello_seq).map(|s| s + 1);
            for event in &conn.events {
                result.events += 1;
                match expected {
                    Some(e) if event.seq > e => result.anomalies.push(StreamAnomaly::Gap {
                        subscriber: name(),
                        connection: c,
                        node: conn.node.clone(),
                        expected: e,
                        got: event.seq,
                    }),
                    Some(e) if event.seq < e => result.anomalies.push(StreamAnomaly::Repeat {
                        subscriber: name(),
                        connection: c,
                        node: conn.node.clone(),
                        expected: e,
                        got: event.seq,
                    }),
                    _ => {}
                }
                // After a repeat, keep waiting for the seq still owed.
                expected = Some(expected.map_or(event.seq + 1, |e| e.max(event.seq + 1)));
                last_seen = last_seen.max(Some(event.seq));
                match rows.get(&event.seq) {
                    None => result.anomalies.push(StreamAnomaly::NotInTable {
                        subscriber: name(),
                        connection: c,
                        seq: event.seq,
                    }),
                    Some(row) if row.event() != *event => {
                        result.anomalies.push(StreamAnomaly::Mismatch {
                            subscriber: name(),
                            connection: c,
                            seq: event.seq,
                            seen: event.clone(),
                            table: row.event(),
                        })
                    }
                    Some(_) => {}
                }
            }
            after_resync = conn.resynced;
        }
    }
    result
}

impl StreamResult {
    /// As a report check; inconclusive when no event was received at all.
    pub fn to_check(&self) -> Check {
        let summary = format!(
            "{} subscribers, {} connections ({} resumes), {} events: {} anomalies",
            self.subscribers,
            self.connections,
            self.resumes,
            self.events,
            self.anomalies.len()
        );
        let anomalies = self
            .anomalies
            .iter()
            .map(|a| Anomaly::new(a.kind(), a.detail()))
            .collect();
        let mut check = Check::from_anomalies("stream", summary, anomalies);
        if self.events == 0 && check.verdict == Verdict::Valid {
            check.verdict = Verdict::Inconclusive;
        }
        check
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::EventKind;

    fn event(seq: u64) -> Event {
        Event {
            seq,
            event_id: format!("e{seq}"),
            task_id: format!("t{}", seq % 3),
            kind: if seq <= 3 {
                EventKind::TaskCreated
            } else {
                EventKind::TaskUpdated
            },
        }
    }

    fn table(n: u64) -> Vec<EventRow> {
        (1..=n)
            .map(|seq| {
                let e = event(seq);
                EventRow {
                    seq,
                    event_id: e.event_id,
                    task_id: e.task_id,
                    kind: e.kind,
                    payload: vec![],
                }
            })
            .collect()
    }

    fn conn(since: Option<u64>, hello: u64, seqs: &[u64]) -> Connection {
        Connection {
            node: "n1".into(),
            since,
            hello_seq: Some(hello),
            events: seqs.iter().map(|&s| event(s)).collect(),
            resynced: false,
        }
    }

    fn run(connections: Vec<Connection>) -> StreamResult {
        let subscriber = Subscriber {
            name: "s1".into(),
            connections,
        };
        check(&[subscriber], &table(10))
    }

    fn kinds(result: &StreamResult) -> Vec<&'static str> {
        result.anomalies.iter().map(|a| a.kind()).collect()
    }

    #[test]
    fn a_live_subscription_starts_after_hello_and_goes_up_by_one() {
        let result = run(vec![conn(None, 2, &[3, 4, 5])]);
        assert_eq!(kinds(&result), Vec::<&str>::new());
        assert_eq!(result.to_check().verdict, Verdict::Valid);
    }

    #[test]
    fn a_gap_in_a_stream_is_invalid() {
        let result = run(vec![conn(Some(0), 5, &[1, 2, 4])]);
        assert_eq!(
            result.anomalies,
            vec![StreamAnomaly::Gap {
                subscriber: "s1".into(),
                connection: 0,
                node: "n1".into(),
                expected: 3,
                got: 4
            }]
        );
        assert_eq!(result.to_check().verdict, Verdict::Invalid);
    }

    #[test]
    fn a_repeat_in_a_stream_is_invalid() {
        assert_eq!(
            kinds(&run(vec![conn(Some(0), 5, &[1, 2, 2, 3])])),
            vec!["repeat"]
        );
    }

    #[test]
    fn a_first_event_that_skips_past_since_is_a_gap() {
        assert_eq!(kinds(&run(vec![conn(Some(4), 9, &[6, 7])])), vec!["gap"]);
    }

    #[test]
    fn a_resume_with_no_gap_is_valid() {
        let result = run(vec![
            conn(Some(0), 2, &[1, 2, 3]),
            conn(Some(3), 3, &[4, 5]),
            conn(Some(5), 7, &[6, 7, 8]),
        ]);
        assert_eq!(kinds(&result), Vec::<&str>::new());
        assert_eq!(result.resumes, 2);
    }

    #[test]
    fn a_resume_that_replays_what_was_seen_is_a_repeat() {
        assert_eq!(
            kinds(&run(vec![
                conn(Some(0), 3, &[1, 2, 3]),
                conn(Some(3), 4, &[3, 4])
            ])),
            vec!["repeat"]
        );
    }

    #[test]
    fn a_resume_from_the_wrong_point_is_reported() {
        let result = run(vec![conn(Some(0), 3, &[1, 2, 3]), conn(Some(5), 6, &[6])]);
        assert_eq!(kinds(&result), vec!["bad_resume"]);
    }

    #[test]
    fn after_a_resync_the_client_may_start_afresh() {
        let mut first = conn(Some(0), 3, &[1, 2]);
        first.resynced = true;
        let result = run(vec![first, conn(Some(7), 8, &[8])]);
        assert_eq!(kinds(&result), Vec::<&str>::new());
    }

    #[test]
    fn an_event_that_differs_from_the_table_is_invalid() {
        let mut c = conn(Some(0), 3, &[1, 2]);
        c.events[1].task_id = "elsewhere".into();
        c.events.push(Event {
            seq: 3,
            kind: EventKind::TaskDeleted,
            ..event(3)
        });
        assert_eq!(
            kinds(&run(vec![c])),
            vec!["event_mismatch", "event_mismatch"]
        );
    }

    #[test]
    fn an_event_beyond_the_table_is_invalid() {
        assert_eq!(
            kinds(&run(vec![conn(Some(9), 9, &[10, 11])])),
            vec!["event_not_in_table"]
        );
    }
}
