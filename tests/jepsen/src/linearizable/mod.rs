//! Linearizability checking: could the operations have taken effect one at a
//! time, each at some instant between its invocation and its completion, in
//! an order a sequential model accepts?
//!
//! The search is Wing & Gong's, with Lowe's memoization, as in Porcupine
//! (`wgl.rs`). Operations are entries in a list of calls and returns sorted
//! by time; the search repeatedly picks a call that comes before the first
//! pending return, steps the [`Model`] with it, and backtracks when it meets
//! a return whose operation it has not yet placed. A set of (operations
//! placed, model state) pairs already explored prunes every path that
//! reaches a known configuration again.
//!
//! - **Partitioning.** Linearizability is compositional, so a history of
//!   independent objects is checked one object at a time
//!   ([`check_partitioned`]); for taskraft, one task id at a time
//!   ([`tasks`]).
//! - **Indeterminate operations** (`info`, pending) have no return entry
//!   inside the history: they may take effect anywhere after their
//!   invocation, or never. The search succeeds once every *definite*
//!   operation is placed; an indeterminate one is only placed where it
//!   changes the state (placing it as a no-op is the same as never).
//! - **Budget.** The problem is NP-complete; a [`Budget`] bounds the time and
//!   the explored states, and running out yields
//!   [`Finding::Inconclusive`], never a guess.
//! - **Counterexample.** When no order exists, [`Counterexample`] gives the
//!   longest order the search found, the state it led to, the operation
//!   that could not be placed next and the calls that were candidates.
//!
//! Not here: multi-object atomicity (a list is checked only through its
//! per-task projections, see [`tasks`]), real-time order across objects
//! (strict serializability of several tasks), and symmetry reductions
//! beyond the memo.

pub mod tasks;
mod wgl;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::hash::Hash;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::history::{OpId, Time};

pub use wgl::check;

/// A sequential specification of one object.
pub trait Model {
    /// Must be cheap to clone and to hash: the memo stores one per explored
    /// configuration.
    type State: Clone + Eq + Hash + Debug;
    /// An operation's arguments.
    type Input: Debug;
    /// An operation's answer.
    type Output: Debug;

    /// The state before any operation.
    fn init(&self) -> Self::State;

    /// The state after `input` applied to `state`, if `output` is what that
    /// returns; `None` when it is not. An `output` of `None` means the
    /// answer is unknown: the step must then succeed, with the state the
    /// operation would leave if it took effect here.
    fn step(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: Option<&Self::Output>,
    ) -> Option<Self::State>;
}

/// How an operation that returned, returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Returned<O> {
    /// When the answer reached the client.
    pub time: Time,
    /// The answer.
    pub output: O,
}

/// One operation on one object, as the search sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call<I, O> {
    /// The history operation it comes from (several calls may share one,
    /// e.g. a list projected onto each task).
    pub op: OpId,
    /// Its arguments.
    pub input: I,
    /// When the request left the client.
    pub invoke: Time,
    /// `None` for an indeterminate operation.
    pub returned: Option<Returned<O>>,
}

/// Limits of one search.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Wall-clock time for one object.
    pub per_key: Duration,
    /// Wall-clock time for all objects of a partitioned check; objects
    /// after it is spent are inconclusive without being searched.
    pub total: Duration,
    /// Explored configurations kept in the memo, which bounds memory.
    pub max_states: usize,
}

impl Default for Budget {
    /// Generous for CI: a healthy key of a few hundred operations needs
    /// milliseconds; the limits only stop pathological ones. A million
    /// states of a 2,000-operation key take about 400 MB.
    fn default() -> Budget {
        Budget {
            per_key: Duration::from_secs(10),
            total: Duration::from_secs(120),
            max_states: 1_000_000,
        }
    }
}

/// Why a search stopped undecided.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exhausted {
    /// `time` or `states`.
    pub limit: String,
    /// Definite operations placed on the deepest path reached.
    pub deepest: usize,
    /// Definite operations to place.
    pub definite: usize,
}

/// A failed search's best attempt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counterexample {
    /// The longest order found (operations, oldest first).
    pub linearized: Vec<OpId>,
    /// The model state after it, as `Debug` prints it.
    pub state: String,
    /// The operation whose return was reached without it being placeable:
    /// it had to take effect next, and neither it nor any candidate could.
    pub stuck: Option<OpId>,
    /// The calls that were open at that point (the stuck one included).
    pub candidates: Vec<OpId>,
}

/// What a search found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "finding", rename_all = "snake_case")]
pub enum Finding {
    /// An order exists.
    Linearizable,
    /// None does; the search's best attempt.
    NotLinearizable(Counterexample),
    /// The budget ran out first.
    Inconclusive(Exhausted),
}

/// A finding with what it cost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checked {
    /// The answer.
    pub finding: Finding,
    /// Configurations explored (the memo's size).
    pub states: usize,
    /// Time spent searching.
    pub elapsed: Duration,
}

/// The calls of one object under model `M`.
pub type Calls<M> = Vec<Call<<M as Model>::Input, <M as Model>::Output>>;

/// Checks each object's calls separately, under the model `model_for`
/// gives it, in key order, within `budget.per_key` each and
/// `budget.total` for all.
pub fn check_partitioned<K: Ord + Clone, M: Model>(
    model_for: impl Fn(&K) -> M,
    partitions: &BTreeMap<K, Calls<M>>,
    budget: &Budget,
) -> BTreeMap<K, Checked> {
    let start = Instant::now();
    partitions
        .iter()
        .map(|(key, calls)| {
            let left = budget.total.saturating_sub(start.elapsed());
            let key_budget = Budget {
                per_key: budget.per_key.min(left),
                ..*budget
            };
            (key.clone(), check(&model_for(key), calls, &key_budget))
        })
        .collect()
}
