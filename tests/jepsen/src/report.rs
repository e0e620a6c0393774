//! The verdict of a run: every check's result, gathered for people and CI.
//!
//! Each checker turns its result into a [`Check`]: a name, a [`Verdict`], a
//! one-line summary and its [`Anomaly`]s. A [`Report`] holds the operation
//! counts of the history and the checks, and derives the rest: anomalies
//! grouped by kind with a few examples each, the run's verdict, and the
//! closing line `N passed, N failed` that CI counts.
//!
//! A check that could not decide (the linearizability search ran out of
//! budget, a run produced fewer ok operations than its floor) is
//! *inconclusive*: it is not a pass, so it counts among the failed in the
//! closing line, and the run's verdict says `inconclusive` rather than
//! `invalid` so that a reader knows nothing wrong was *found*.
//!
//! Not here: timing figures of the system (latency, unavailability) — the
//! harness adds those as it sees fit, e.g. as [`Report::floor`] checks.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::history::{History, OutcomeKind};

/// How many examples of each anomaly kind the grouped view keeps.
const EXAMPLES_PER_KIND: usize = 5;

/// What a check, or a run, concluded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Nothing wrong found, and enough happened to say so.
    Valid,
    /// Something wrong found.
    Invalid,
    /// Undecided: out of budget, or too little happened to judge.
    Inconclusive,
}

impl Verdict {
    /// Invalid beats inconclusive beats valid.
    pub fn and(self, other: Verdict) -> Verdict {
        match (self, other) {
            (Verdict::Invalid, _) | (_, Verdict::Invalid) => Verdict::Invalid,
            (Verdict::Inconclusive, _) | (_, Verdict::Inconclusive) => Verdict::Inconclusive,
            (Verdict::Valid, Verdict::Valid) => Verdict::Valid,
        }
    }

    /// The name used in JSON and text.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Invalid => "invalid",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

/// One thing found wrong (or, for inconclusive checks, left undecided).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anomaly {
    /// A stable snake_case name: `nonlinearizable`, `lost`, `duplicated`,
    /// `failed_but_visible`, `gap`, `repeat`, `divergence`…
    pub kind: String,
    /// Enough to find it again: operation ids, task ids, nodes, seqs.
    pub detail: String,
}

impl Anomaly {
    /// An anomaly of `kind`.
    pub fn new(kind: &str, detail: impl Into<String>) -> Anomaly {
        Anomaly {
            kind: kind.to_string(),
            detail: detail.into(),
        }
    }
}

/// One checker's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// `linearizable`, `set`, `columns`, `stream`, `convergence`…
    pub name: String,
    /// What it concluded.
    pub verdict: Verdict,
    /// A line with the figures that matter for this check.
    pub summary: String,
    /// What it found wrong (or, if inconclusive, left undecided).
    pub anomalies: Vec<Anomaly>,
}

impl Check {
    /// Valid when there are no anomalies, invalid otherwise.
    pub fn from_anomalies(name: &str, summary: String, anomalies: Vec<Anomaly>) -> Check {
        let verdict = if anomalies.is_empty() {
            Verdict::Valid
        } else {
            Verdict::Invalid
        };
        Check {
            name: name.to_string(),
            verdict,
            summary,
            anomalies,
        }
    }
}

/// Operations counted by how they ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeCounts {
    /// 2xx.
    pub ok: usize,
    /// Definite 4xx.
    pub fail: usize,
    /// Indeterminate, pending included.
    pub info: usize,
}

impl OutcomeCounts {
    fn add(&mut self, kind: OutcomeKind) {
        match kind {
            OutcomeKind::Ok => self.ok += 1,
            OutcomeKind::Fail => self.fail += 1,
            OutcomeKind::Info => self.info += 1,
        }
    }

    /// All operations.
    pub fn total(&self) -> usize {
        self.ok + self.fail + self.info
    }
}

/// All anomalies of one kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnomalyGroup {
    /// How many there are.
    pub count: usize,
    /// The first few, in check order.
    pub examples: Vec<String>,
}

/// The whole run's verdict.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// All operations by outcome.
    pub operations: OutcomeCounts,
    /// Per operation name (`create`, `update`…).
    pub operations_by_name: BTreeMap<String, OutcomeCounts>,
    /// Every check, in the order added.
    pub checks: Vec<Check>,
}

/// The serialized form: the report plus what is derived from it.
#[derive(Serialize)]
struct ReportDoc<'a> {
    verdict: Verdict,
    operations: &'a OutcomeCounts,
    operations_by_name: &'a BTreeMap<String, OutcomeCounts>,
    checks: Vec<CheckDoc<'a>>,
    anomalies: BTreeMap<String, AnomalyGroup>,
    passed: usize,
    failed: usize,
    summary: String,
}

#[derive(Serialize)]
struct CheckDoc<'a> {
    name: &'a str,
    verdict: Verdict,
    summary: &'a str,
    anomalies: usize,
}

impl Report {
    /// A report counting the operations of `history`, with no checks yet.
    pub fn new(history: &History) -> Report {
        let mut report = Report::default();
        for op in history.ops() {
            let kind = op.outcome_kind();
            report.operations.add(kind);
            report
                .operations_by_name
                .entry(op.op.name().to_string())
                .or_default()
                .add(kind);
        }
        report
    }

    /// Adds a check's result.
    pub fn add(&mut self, check: Check) -> &mut Report {
        self.checks.push(check);
        self
    }

    /// A check that the run did enough to be judged: valid when `actual`
    /// reaches `minimum`, inconclusive otherwise (a quiet run must not pass).
    pub fn floor(&mut self, name: &str, actual: u64, minimum: u64) -> &mut Report {
        let verdict = if actual >= minimum {
            Verdict::Valid
        } else {
            Verdict::Inconclusive
        };
        let anomalies = match verdict {
            Verdict::Valid => Vec::new(),
            _ => vec![Anomaly::new(
                "below_floor",
                format!("{name}: {actual} < {minimum}"),
            )],
        };
        self.add(Check {
            name: name.to_string(),
            verdict,
            summary: format!("{actual} (floor {minimum})"),
            anomalies,
        })
    }

    /// Invalid if any check is; else inconclusive if any check is, or if
    /// there is no check at all; else valid.
    pub fn verdict(&self) -> Verdict {
        if self.checks.is_empty() {
            return Verdict::Inconclusive;
        }
        self.checks
            .iter()
            .fold(Verdict::Valid, |acc, check| acc.and(check.verdict))
    }

    /// Valid checks.
    pub fn passed(&self) -> usize {
        self.checks
            .iter()
            .filter(|c| c.verdict == Verdict::Valid)
            .count()
    }

    /// Invalid and inconclusive checks.
    pub fn failed(&self) -> usize {
        self.checks.len() - self.passed()
    }

    /// The closing line: `N passed, N failed`.
    pub fn closing_line(&self) -> String {
        format!("{} passed, {} failed", self.passed(), self.failed())
    }

    /// The checks that did not pass, one line each with their first
    /// anomalies: what a CI log must show when the report file is gone
    /// with the machine. Empty when every check passed.
    pub fn failures(&self) -> String {
        let mut out = String::new();
        for check in self.checks.iter().filter(|c| c.verdict != Verdict::Valid) {
            out.push_str(&format!(
                "[{}] {}: {}\n",
                check.verdict.as_str(),
                check.name,
                check.summary
            ));
            for anomaly in check.anomalies.iter().take(EXAMPLES_PER_KIND) {
                out.push_str(&format!("    - {}: {}\n", anomaly.kind, anomaly.detail));
            }
            if check.anomalies.len() > EXAMPLES_PER_KIND {
                out.push_str(&format!(
                    "    ({} more)\n",
                    check.anomalies.len() - EXAMPLES_PER_KIND
                ));
            }
        }
        out
    }

    /// Every anomaly of every check, grouped by kind.
    pub fn anomalies_by_kind(&self) -> BTreeMap<String, AnomalyGroup> {
        let mut groups: BTreeMap<String, AnomalyGroup> = BTreeMap::new();
        for anomaly in self.checks.iter().flat_map(|c| &c.anomalies) {
            let group = groups
                .entry(anomaly.kind.clone())
                .or_insert_with(|| AnomalyGroup {
                    count: 0,
                    examples: Vec::new(),
                });
            group.count += 1;
            if group.examples.len() < EXAMPLES_PER_KIND {
                group.examples.push(anomaly.detail.clone());
            }
        }
        groups
    }

    /// The report as JSON, with the derived verdict, groups and counts.
    pub fn to_json(&self) -> serde_json::Value {
        let doc = ReportDoc {
            verdict: self.verdict(),
            operations: &self.operations,
            operations_by_name: &self.operations_by_name,
            checks: self
                .checks
                .iter()
                .map(|c| CheckDoc {
                    name: &c.name,
                    verdict: c.verdict,
                    summary: &c.summary,
                    anomalies: c.anomalies.len(),
                })
                .collect(),
            anomalies: self.anomalies_by_kind(),
            passed: self.passed(),
            failed: self.failed(),
            summary: self.closing_line(),
        };
        // A map with string keys and plain fields always serializes.
        serde_json::to_value(doc).unwrap_or(serde_json::Value::Null)
    }
}

impl fmt::Display for Report {
    /// The text form; its last line is the closing line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ops = &self.operations;
        writeln!(
            f,
            "operations: {} (ok {}, fail {}, info {})",
            ops.total(),
            ops.ok,
            ops.fail,
            ops.info
        )?;
        for (name, counts) in &self.operations_by_name {
            writeln!(
                f,
                "  {name}: ok {}, fail {}, info {}",
                counts.ok, counts.fail, counts.info
            )?;
        }
        writeln!(f, "checks:")?;
        for check in &self.checks {
            let mark = match check.verdict {
                Verdict::Valid => "pass",
                Verdict::Invalid => "FAIL",
                Verdict::Inconclusive => "UNDECIDED",
            };
            writeln!(f, "  [{mark}] {}: {}", check.name, check.summary)?;
        }
        let groups = self.anomalies_by_kind();
        if !groups.is_empty() {
            writeln!(f, "anomalies:")?;
            for (kind, group) in &groups {
                writeln!(f, "  {kind} ({}):", group.count)?;
                for example in &group.examples {
                    for (i, line) in example.lines().enumerate() {
                        let lead = if i == 0 { "    - " } else { "      " };
                        writeln!(f, "{lead}{line}")?;
                    }
                }
            }
        }
        writeln!(f, "verdict: {}", self.verdict().as_str())?;
        write!(f, "{}", self.closing_line())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Op, Outcome, ProcessId};

    fn check(name: &str, verdict: Verdict) -> Check {
        Check {
            name: name.to_string(),
            verdict,
            summary: String::new(),
            anomalies: match verdict {
                Verdict::Valid => vec![],
                _ => vec![Anomaly::new("lost", format!("{name} lost something"))],
            },
        }
    }

    #[test]
    fn closing_line_counts_inconclusive_checks_as_failed() {
        let mut report = Report::default();
        report
            .add(check("a", Verdict::Valid))
            .add(check("b", Verdict::Inconclusive))
            .add(check("c", Verdict::Valid));
        assert_eq!(report.closing_line(), "2 passed, 1 failed");
        assert_eq!(report.verdict(), Verdict::Inconclusive);
    }

    #[test]
    fn one_invalid_check_makes_the_run_invalid() {
        let mut report = Report::default();
        report
            .add(check("a", Verdict::Inconclusive))
            .add(check("b", Verdict::Invalid));
        assert_eq!(report.verdict(), Verdict::Invalid);
    }

    #[test]
    fn a_report_without_checks_does_not_pass() {
        assert_eq!(Report::default().verdict(), Verdict::Inconclusive);
    }

    #[test]
    fn text_ends_with_the_closing_line_and_json_carries_the_groups() {
        let mut history = History::new();
        let a = history.invoke(ProcessId(0), Op::List, 1);
        history
            .complete(a, Outcome::Info("timeout".into()), 2)
            .expect("a was invoked");
        history.invoke(ProcessId(1), Op::List, 3);
        let mut report = Report::new(&history);
        report
            .add(check("set", Verdict::Invalid))
            .floor("ok operations", 0, 1);
        let text = report.to_string();
        assert_eq!(text.lines().last(), Some("0 passed, 2 failed"));
        assert!(
            text.contains("operations: 2 (ok 0, fail 0, info 2)"),
            "{text}"
        );
        let json = report.to_json();
        assert_eq!(json["verdict"], "invalid");
        assert_eq!(json["anomalies"]["lost"]["count"], 1);
        assert_eq!(json["summary"], "0 passed, 2 failed");
    }

    #[test]
    fn failures_name_each_failed_check_with_its_anomalies_and_nothing_else() {
        let mut report = Report::default();
        report
            .add(check("set", Verdict::Invalid))
            .add(check("stream", Verdict::Valid))
            .floor("ok operations", 10, 1125);
        let failures = report.failures();
        assert_eq!(
            failures,
            "[invalid] set: \n    - lost: set lost something\n\
             [inconclusive] ok operations: 10 (floor 1125)\n    - below_floor: ok operations: 10 < 1125\n"
        );
        assert_eq!(Report::default().failures(), "");
    }
}
