//! Replica convergence: after healing, every node's event table holds the
//! same rows — seq by seq, field by field, payload byte by byte.
//!
//! Each table must first be dense (seqs 1, 2, 3, … in order: `seq_gap`
//! otherwise). Then each node is compared with the first one (the
//! reference), and the first place they part is reported: a row that
//! differs (which field, and for payloads the first differing byte), or
//! rows one of them does not have yet.
//!
//! Not here: the projection (`taskraft rebuild --check` compares it with
//! the fold of the events on each node), and when the nodes converged.

use serde::{Deserialize, Serialize};

use crate::events::EventRow;
use crate::report::{Anomaly, Check, Verdict};

/// One node's event table, in seq order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeTable {
    /// The node's name in the report.
    pub node: String,
    /// Its `task_events` rows, by seq.
    pub rows: Vec<EventRow>,
}

/// Where two tables, or one table and the rule, part.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Divergence {
    /// The table's row where seq `expected` belongs has seq `got`.
    SeqGap {
        node: String,
        expected: u64,
        got: u64,
    },
    /// Both have a row at `seq`, and they differ.
    RowDiffers {
        node: String,
        reference: String,
        seq: u64,
        field: String,
        detail: String,
    },
    /// `node` has no rows from `from_seq` on; `other` has `count` of them.
    Missing {
        node: String,
        other: String,
        from_seq: u64,
        count: usize,
    },
}

impl Divergence {
    /// The anomaly kind in the report.
    pub fn kind(&self) -> &'static str {
        match self {
            Divergence::SeqGap { .. } => "seq_gap",
            Divergence::RowDiffers { .. } => "divergence",
            Divergence::Missing { .. } => "missing_rows",
        }
    }

    /// The seq it is about, to find the first divergence.
    pub fn seq(&self) -> u64 {
        match self {
            Divergence::SeqGap { expected, .. } => *expected,
            Divergence::RowDiffers { seq, .. } => *seq,
            Divergence::Missing { from_seq, .. } => *from_seq,
        }
    }

    fn detail(&self) -> String {
        match self {
            Divergence::SeqGap {
                node,
                expected,
                got,
            } => {
                format!("{node}: seq {expected} expected, row has seq {got}")
            }
            Divergence::RowDiffers {
                node,
                reference,
                seq,
                field,
                detail,
            } => {
                format!("seq {seq}: {node} and {reference} differ in {field}: {detail}")
            }
            Divergence::Missing {
                node,
                other,
                from_seq,
                count,
            } => {
                format!("{node} lacks {count} rows from seq {from_seq} that {other} has")
            }
        }
    }
}

/// The convergence check's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConvergenceResult {
    /// The nodes compared, the reference first.
    pub nodes: Vec<String>,
    /// Rows of the longest table.
    pub rows: usize,
    /// Per node at most one gap and one divergence from the reference.
    pub divergences: Vec<Divergence>,
}

impl ConvergenceResult {
    /// The divergence at the lowest seq.
    pub fn first(&self) -> Option<&Divergence> {
        self.divergences.iter().min_by_key(|d| d.seq())
    }
}

/// Compares every node's table with the first one's.
pub fn check(tables: &[NodeTable]) -> ConvergenceResult {
    let mut divergences = Vec::new();
    for table in tables {
        let gap = table
            .rows
            .iter()
            .zip(1u64..)
            .find(|(row, expected)| row.seq != *expected);
        if let Some((row, expected)) = gap {
            divergences.push(Divergence::SeqGap {
                node: table.node.clone(),
                expected,
                got: row.seq,
            });
        }
    }
    if let Some((reference, others)) = tables.split_first() {
        divergences.extend(
            others
                .iter()
                .filter_map(|other| first_difference(reference, other)),
        );
    }
    ConvergenceResult {
        nodes: tables.iter().map(|t| t.node.clone()).collect(),
        rows: tables.iter().map(|t| t.rows.len()).max().unwrap_or(0),
        divergences,
    }
}

/// Where `other` first parts from `reference`.
fn first_difference(reference: &NodeTable, other: &NodeTable) -> Option<Divergence> {
    let pairs = reference.rows.iter().zip(&other.rows);
    for (a, b) in pairs {
        let differs = |field: &str, detail: String| Divergence::RowDiffers {
            node: other.node.clone(),
            reference: reference.node.clone(),
            seq: a.seq,
            field: field.to_string(),
            detail,
        };
        if a.seq != b.seq {
            return Some(differs("seq", format!("{} vs {}", b.seq, a.seq)));
        }
        if a.event_id != b.event_id {
            return Some(differs(
                "event_id",
                format!("{} vs {}", b.event_id, a.event_id),
            ));
        }
        if a.task_id != b.task_id {
            return Some(differs(
                "task_id",
                format!("{} vs {}", b.task_id, a.task_id),
            ));
        }
        if a.kind != b.kind {
            return Some(differs(
                "kind",
                format!("{} vs {}", b.kind.as_str(), a.kind.as_str()),
            ));
        }
        if a.payload != b.payload {
            return Some(differs(
                "payload",
                payload_difference(&b.payload, &a.payload),
            ));
        }
    }
    let (short, long) = if reference.rows.len() < other.rows.len() {
        (reference, other)
    } else {
        (other, reference)
    };
    let extra = &long.rows[short.rows.len()..];
    extra.first().map(|row| Divergence::Missing {
        node: short.node.clone(),
        other: long.node.clone(),
        from_seq: row.seq,
        count: extra.len(),
    })
}

/// Bytes shown on each side of the first difference.
const EXCERPT: usize = 16;

/// The first differing byte and what surrounds it on both sides.
fn payload_difference(a: &[u8], b: &[u8]) -> String {
    let at = a
        .iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    let excerpt = |bytes: &[u8]| {
        let from = at.saturating_sub(EXCERPT);
        let to = (at + EXCERPT).min(bytes.len());
        String::from_utf8_lossy(&bytes[from.min(to)..to]).into_owned()
    };
    format!(
        "first at byte {at} ({} vs {} bytes): {:?} vs {:?}",
        a.len(),
        b.len(),
        excerpt(a),
        excerpt(b)
    )
}

impl ConvergenceResult {
    /// As a report check; inconclusive with fewer than two tables.
    pub fn to_check(&self) -> Check {
        let first = self
            .first()
            .map_or(String::new(), |d| format!(", first at seq {}", d.seq()));
        let summary = format!(
            "{} nodes, {} rows: {} divergences{first}",
            self.nodes.len(),
            self.rows,
            self.divergences.len()
        );
        let anomalies = self
            .divergences
            .iter()
            .map(|d| Anomaly::new(d.kind(), d.detail()))
            .collect();
        let mut check = Check::from_anomalies("convergence", summary, anomalies);
        if self.nodes.len() < 2 && check.verdict == Verdict::Valid {
            check.verdict = Verdict::Inconclusive;
        }
        check
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::EventKind;

    fn row(seq: u64) -> EventRow {
        EventRow {
            seq,
            event_id: format!("e{seq}"),
            task_id: "t1".into(),
            kind: EventKind::TaskUpdated,
            payload: format!("{{\"seq\":{seq},\"title\":\"x\"}}").into_bytes(),
        }
    }

    fn table(node: &str, n: u64) -> NodeTable {
        NodeTable {
            node: node.into(),
            rows: (1..=n).map(row).collect(),
        }
    }

    #[test]
    fn identical_tables_converge() {
        let result = check(&[table("n1", 5), table("n2", 5), table("n3", 5)]);
        assert_eq!(result.divergences, vec![]);
        assert_eq!(result.to_check().verdict, Verdict::Valid);
    }

    #[test]
    fn one_differing_payload_byte_is_found_with_its_offset() {
        let mut n2 = table("n2", 5);
        n2.rows[2].payload[15] = b'y';
        let result = check(&[table("n1", 5), n2]);
        let Some(Divergence::RowDiffers {
            seq, field, detail, ..
        }) = result.first()
        else {
            panic!("expected a differing row, got {:?}", result.divergences);
        };
        assert_eq!((*seq, field.as_str()), (3, "payload"));
        assert!(
            detail.starts_with("first at byte 15 (21 vs 21 bytes)"),
            "{detail}"
        );
        assert_eq!(result.to_check().verdict, Verdict::Invalid);
    }

    #[test]
    fn a_different_event_at_the_same_seq_is_a_divergence() {
        let mut n3 = table("n3", 4);
        n3.rows[1].event_id = "other".into();
        let result = check(&[table("n1", 4), table("n2", 4), n3]);
        assert_eq!(result.divergences.len(), 1);
        assert_eq!(
            result.first().map(|d| (d.kind(), d.seq())),
            Some(("divergence", 2))
        );
    }

    #[test]
    fn a_node_that_is_behind_lacks_rows() {
        let result = check(&[table("n1", 5), table("n2", 3)]);
        assert_eq!(
            result.divergences,
            vec![Divergence::Missing {
                node: "n2".into(),
                other: "n1".into(),
                from_seq: 4,
                count: 2
            }]
        );
    }

    #[test]
    fn a_table_with_a_hole_in_its_seqs_is_invalid() {
        let mut n1 = table("n1", 5);
        n1.rows.remove(2);
        let result = check(&[n1]);
        assert_eq!(
            result.divergences,
            vec![Divergence::SeqGap {
                node: "n1".into(),
                expected: 3,
                got: 4
            }]
        );
    }

    #[test]
    fn the_first_divergence_is_the_lowest_seq() {
        let mut n2 = table("n2", 5);
        n2.rows[3].kind = EventKind::TaskDeleted;
        let mut n3 = table("n3", 5);
        n3.rows[1].task_id = "t2".into();
        let result = check(&[table("n1", 5), n2, n3]);
        assert_eq!(result.first().map(|d| d.seq()), Some(2));
    }
}
