//! Jepsen's set check: every acknowledged create survives, exactly once, and
//! nothing refused appears.
//!
//! The harness gives each logical create a unique title; the title names
//! the element, and every attempt at it (retries included) counts towards
//! it. After healing, it reads every node's full list ([`FinalRead`]). Then,
//! node by node:
//!
//! - an element with an ok attempt must be listed (`lost` otherwise), unless
//!   a delete of its id may have happened;
//! - no element may be listed twice (`duplicated`): two ids with one title,
//!   or one id twice;
//! - an element whose every attempt failed definitely must not be listed
//!   (`failed_but_visible`: the server said no, yet did it — redisraft#23);
//! - an element whose outcome is unknown may be listed, at most once;
//! - an id deleted with an ok answer must not be listed (`resurrected`);
//! - a task listed under an element's title but with an id no attempt used
//!   (`wrong_id`), or matching no create at all (`unexpected`), is reported.
//!
//! A listed task whose title changed since (an update) is still matched by
//! its id. Not here: when an element became visible (Jepsen's stale/latency
//! figures); the linearizability check covers reads during the run.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::history::{History, ListedTask, Op, OpId, Outcome, OutcomeKind};
use crate::report::{Anomaly, Check, Verdict};

/// One node's full list after healing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalRead {
    /// The node's name in the report.
    pub node: String,
    /// Its full list, one page, read after healing.
    pub tasks: Vec<ListedTask>,
}

/// What the clients know about one element.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Known {
    /// An attempt answered 2xx.
    Acknowledged,
    /// Neither acknowledged nor failed: it may or may not exist.
    Unknown,
    /// Every attempt answered a definite 4xx.
    Failed,
}

/// One element of the set: a logical create and its attempts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Element {
    /// The unique title that names it.
    pub title: String,
    /// Task ids its attempts used (one, unless the harness changed it).
    pub ids: BTreeSet<String>,
    /// Every create operation with its title.
    pub attempts: Vec<OpId>,
    /// What the clients were told, over all attempts.
    pub known: Known,
}

/// A set anomaly on one node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SetAnomaly {
    Lost {
        node: String,
        title: String,
        attempts: Vec<OpId>,
    },
    Duplicated {
        node: String,
        title: String,
        ids: Vec<String>,
    },
    FailedButVisible {
        node: String,
        title: String,
        attempts: Vec<OpId>,
    },
    Resurrected {
        node: String,
        id: String,
        delete: OpId,
    },
    WrongId {
        node: String,
        title: String,
        id: String,
    },
    Unexpected {
        node: String,
        title: String,
        id: String,
    },
}

impl SetAnomaly {
    /// The anomaly kind in the report.
    pub fn kind(&self) -> &'static str {
        match self {
            SetAnomaly::Lost { .. } => "lost",
            SetAnomaly::Duplicated { .. } => "duplicated",
            SetAnomaly::FailedButVisible { .. } => "failed_but_visible",
            SetAnomaly::Resurrected { .. } => "resurrected",
            SetAnomaly::WrongId { .. } => "wrong_id",
            SetAnomaly::Unexpected { .. } => "unexpected",
        }
    }

    fn detail(&self) -> String {
        let ops = |ops: &[OpId]| {
            ops.iter()
                .map(|o| o.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        };
        match self {
            SetAnomaly::Lost {
                node,
                title,
                attempts,
            } => {
                format!(
                    "{node}: acknowledged {title:?} (create {}) is missing",
                    ops(attempts)
                )
            }
            SetAnomaly::Duplicated { node, title, ids } => {
                format!(
                    "{node}: {title:?} listed {} times, ids {}",
                    ids.len(),
                    ids.join(" ")
                )
            }
            SetAnomaly::FailedButVisible {
                node,
                title,
                attempts,
            } => format!(
                "{node}: {title:?} is listed though every attempt failed ({})",
                ops(attempts)
            ),
            SetAnomaly::Resurrected { node, id, delete } => {
                format!("{node}: {id} is listed after its acknowledged delete {delete}")
            }
            SetAnomaly::WrongId { node, title, id } => {
                format!("{node}: {title:?} listed under {id}, an id none of its attempts used")
            }
            SetAnomaly::Unexpected { node, title, id } => {
                format!("{node}: {id} {title:?} matches no create")
            }
        }
    }
}

/// The set check's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetResult {
    /// Every element, in order of first attempt.
    pub elements: Vec<Element>,
    /// Nodes whose final read was checked.
    pub nodes: Vec<String>,
    /// Everything found wrong, node by node.
    pub anomalies: Vec<SetAnomaly>,
}

/// Deletes of one task id, by what is known of them.
#[derive(Default)]
struct Deletes {
    acknowledged: Option<OpId>,
    possible: bool,
}

/// Checks the creates of `history` against every node's final list.
pub fn check(history: &History, finals: &[FinalRead]) -> SetResult {
    let elements = elements(history);
    let mut deletes: BTreeMap<&str, Deletes> = BTreeMap::new();
    for op in history.ops() {
        if let Op::Delete { id, .. } = &op.op {
            let entry = deletes.entry(id).or_default();
            match op.outcome_kind() {
                OutcomeKind::Ok => {
                    entry.acknowledged.get_or_insert(op.id);
                    entry.possible = true;
                }
                OutcomeKind::Info => entry.possible = true,
                OutcomeKind::Fail => {}
            }
        }
    }
    let by_title: BTreeMap<&str, usize> = elements
        .iter()
        .enumerate()
        .map(|(i, e)| (e.title.as_str(), i))
        .collect();
    // Ids are never reused, so of the elements whose attempts share an id
    // only one can have created it: the acknowledged one, else an unknown.
    let mut by_id: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, element) in elements.iter().enumerate() {
        for id in &element.ids {
            let best = by_id.entry(id).or_insert(i);
            if element.known < elements[*best].known {
                *best = i;
            }
        }
    }

    let mut anomalies = Vec::new();
    for read in finals {
        let node = || read.node.clone();
        // The listed tasks of each element, matched by title, else by id.
        let mut listed: Vec<Vec<&ListedTask>> = vec![Vec::new(); elements.len()];
        for task in &read.tasks {
            if let Some(delete) = deletes.get(task.id.as_str()).and_then(|d| d.acknowledged) {
                anomalies.push(SetAnomaly::Resurrected {
                    node: node(),
                    id: task.id.clone(),
                    delete,
                });
            }
            let element = by_title
                .get(task.title.as_str())
                .or_else(|| by_id.get(task.id.as_str()));
            match element {
                Some(&i) => {
                    if !elements[i].ids.contains(&task.id) {
                        anomalies.push(SetAnomaly::WrongId {
                            node: node(),
                            title: task.title.clone(),
                            id: task.id.clone(),
                        });
                    }
                    listed[i].push(task);
                }
                None => anomalies.push(SetAnomaly::Unexpected {
                    node: node(),
                    title: task.title.clone(),
                    id: task.id.clone(),
                }),
            }
        }
        for (element, seen) in elements.iter().zip(&listed) {
            let maybe_deleted = element
                .ids
                .iter()
                .any(|id| deletes.get(id.as_str()).is_some_and(|d| d.possible));
            if seen.len() > 1 {
                anomalies.push(SetAnomaly::Duplicated {
                    node: node(),
                    title: element.title.clone(),
                    ids: seen.iter().map(|t| t.id.clone()).collect(),
                });
            }
            match element.known {
                Known::Acknowledged if seen.is_empty() && !maybe_deleted => {
                    anomalies.push(SetAnomaly::Lost {
                        node: node(),
                        title: element.title.clone(),
                        attempts: element.attempts.clone(),
                    });
                }
                Known::Failed if !seen.is_empty() => anomalies.push(SetAnomaly::FailedButVisible {
                    node: node(),
                    title: element.title.clone(),
                    attempts: element.attempts.clone(),
                }),
                _ => {}
            }
        }
    }
    SetResult {
        elements,
        nodes: finals.iter().map(|f| f.node.clone()).collect(),
        anomalies,
    }
}

/// The elements of a history: its creates grouped by title.
fn elements(history: &History) -> Vec<Element> {
    let mut elements: Vec<Element> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for op in history.ops() {
        let Op::Create { id, title, .. } = &op.op else {
            continue;
        };
        let i = *index.entry(title.clone()).or_insert_with(|| {
            elements.push(Element {
                title: title.clone(),
                ids: BTreeSet::new(),
                attempts: Vec::new(),
                known: Known::Failed,
            });
            elements.len() - 1
        });
        let element = &mut elements[i];
        element.ids.insert(id.clone());
        element.attempts.push(op.id);
        let this = match op.completion.as_ref().map(|c| &c.outcome) {
            Some(Outcome::Ok(_)) => Known::Acknowledged,
            Some(Outcome::Fail(_)) => Known::Failed,
            Some(Outcome::Info(_)) | None => Known::Unknown,
        };
        // Acknowledged beats unknown beats failed: the variants' order.
        element.known = element.known.min(this);
    }
    elements
}

impl SetResult {
    /// How many elements the clients know this much about.
    pub fn count(&self, known: Known) -> usize {
        self.elements.iter().filter(|e| e.known == known).count()
    }

    /// As a report check; inconclusive when no node's final read was given.
    pub fn to_check(&self) -> Check {
        let mut by_kind: BTreeMap<&str, usize> = BTreeMap::new();
        for a in &self.anomalies {
            *by_kind.entry(a.kind()).or_default() += 1;
        }
        let found = if by_kind.is_empty() {
            "no anomaly".to_string()
        } else {
            by_kind
                .iter()
                .map(|(k, n)| format!("{n} {k}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let summary = format!(
            "{} elements ({} acknowledged, {} failed, {} unknown) on {} nodes: {found}",
            self.elements.len(),
            self.count(Known::Acknowledged),
            self.count(Known::Failed),
            self.count(Known::Unknown),
            self.nodes.len()
        );
        let anomalies = self
            .anomalies
            .iter()
            .map(|a| Anomaly::new(a.kind(), a.detail()))
            .collect();
        let mut check = Check::from_anomalies("set", summary, anomalies);
        if self.nodes.is_empty() {
            check.verdict = Verdict::Inconclusive;
            check.summary.push_str(" (no final read to check)");
        }
        check
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Failure, Status};
    use crate::testkit::*;

    fn final_read(node: &str, tasks: &[(&str, &str)]) -> FinalRead {
        FinalRead {
            node: node.into(),
            tasks: tasks
                .iter()
                .map(|(id, title)| listed(id, 1, title, Status::Todo))
                .collect(),
        }
    }

    fn kinds(result: &SetResult) -> Vec<&'static str> {
        result.anomalies.iter().map(|a| a.kind()).collect()
    }

    /// "a" acknowledged, "b" failed, "c" unknown.
    fn three_creates() -> Script {
        let mut s = Script::new();
        s.ok(0, create("1", "a"), (0, 10), task(1, "a"));
        s.fail(
            1,
            create("2", "b"),
            (0, 10),
            Failure::Rejected {
                status: 422,
                message: "no".into(),
            },
        );
        s.info(2, create("3", "c"), (0, 10));
        s
    }

    #[test]
    fn acknowledged_present_failed_absent_and_unknown_either_way_is_valid() {
        let s = three_creates();
        let finals = [
            final_read("n1", &[("1", "a")]),
            final_read("n2", &[("1", "a"), ("3", "c")]),
        ];
        let result = check(&s.history, &finals);
        assert_eq!(kinds(&result), Vec::<&str>::new());
        assert_eq!(result.to_check().verdict, Verdict::Valid);
        assert_eq!(
            result.to_check().summary,
            "3 elements (1 acknowledged, 1 failed, 1 unknown) on 2 nodes: no anomaly"
        );
    }

    #[test]
    fn a_lost_acknowledged_create_is_invalid_on_the_node_that_lost_it() {
        let s = three_creates();
        let finals = [final_read("n1", &[("1", "a")]), final_read("n2", &[])];
        let result = check(&s.history, &finals);
        assert_eq!(
            result.anomalies,
            vec![SetAnomaly::Lost {
                node: "n2".into(),
                title: "a".into(),
                attempts: vec![OpId(0)]
            }]
        );
        assert_eq!(result.to_check().verdict, Verdict::Invalid);
    }

    #[test]
    fn a_duplicated_create_is_invalid() {
        let s = three_creates();
        let finals = [final_read("n1", &[("1", "a"), ("9", "a")])];
        assert_eq!(
            kinds(&check(&s.history, &finals)),
            vec!["wrong_id", "duplicated"]
        );
    }

    #[test]
    fn an_unknown_create_listed_twice_is_a_duplicate() {
        let s = three_creates();
        let finals = [final_read("n1", &[("1", "a"), ("3", "c"), ("3", "c")])];
        assert_eq!(kinds(&check(&s.history, &finals)), vec!["duplicated"]);
    }

    #[test]
    fn a_definitely_failed_create_that_is_visible_is_invalid() {
        let s = three_creates();
        let finals = [final_read("n1", &[("1", "a"), ("2", "b")])];
        assert_eq!(
            kinds(&check(&s.history, &finals)),
            vec!["failed_but_visible"]
        );
    }

    #[test]
    fn an_element_is_acknowledged_if_any_retry_was() {
        let mut s = Script::new();
        s.info(0, create_keyed("1", "a", "k"), (0, 10));
        s.ok(1, create_keyed("1", "a", "k"), (20, 30), task(1, "a"));
        let result = check(&s.history, &[final_read("n1", &[])]);
        assert_eq!(result.elements[0].known, Known::Acknowledged);
        assert_eq!(kinds(&result), vec!["lost"]);
    }

    #[test]
    fn a_task_whose_title_changed_is_found_by_its_id() {
        let mut s = three_creates();
        s.ok(
            0,
            retitle("1", None, "renamed"),
            (20, 30),
            task(2, "renamed"),
        );
        let result = check(&s.history, &[final_read("n1", &[("1", "renamed")])]);
        assert_eq!(kinds(&result), Vec::<&str>::new());
    }

    #[test]
    fn a_shared_id_belongs_to_the_create_that_succeeded() {
        let mut s = Script::new();
        s.ok(0, create("1", "a"), (0, 10), task(1, "a"));
        s.fail(1, create("1", "b"), (5, 15), Failure::IdTaken);
        s.ok(
            0,
            retitle("1", None, "renamed"),
            (20, 30),
            task(2, "renamed"),
        );
        let result = check(&s.history, &[final_read("n1", &[("1", "renamed")])]);
        assert_eq!(kinds(&result), Vec::<&str>::new());
    }

    #[test]
    fn a_deleted_task_may_be_absent_but_not_listed_after_an_acknowledged_delete() {
        let mut s = three_creates();
        s.ok(
            0,
            delete("1", None),
            (20, 30),
            crate::history::Value::Deleted,
        );
        assert_eq!(
            kinds(&check(&s.history, &[final_read("n1", &[])])),
            Vec::<&str>::new()
        );
        let result = check(&s.history, &[final_read("n1", &[("1", "a")])]);
        assert_eq!(kinds(&result), vec!["resurrected"]);
    }

    #[test]
    fn a_task_no_create_made_is_unexpected() {
        let s = three_creates();
        let result = check(&s.history, &[final_read("n1", &[("1", "a"), ("7", "zzz")])]);
        assert_eq!(kinds(&result), vec!["unexpected"]);
    }

    #[test]
    fn without_a_final_read_the_set_check_is_inconclusive() {
        let s = three_creates();
        assert_eq!(
            check(&s.history, &[]).to_check().verdict,
            Verdict::Inconclusive
        );
    }
}
