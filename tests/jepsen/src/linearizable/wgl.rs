//! The Wing–Gong–Lowe search over one object's calls.
//!
//! The history becomes a doubly linked list of entries: a call and a return
//! per operation, sorted by time, a call before a return at equal times (so
//! touching operations count as concurrent, the permissive reading). An
//! indeterminate operation's return sits after everything.
//!
//! From the head, the search walks the calls that precede the first return.
//! Placing a call ("lifting" it) steps the model, removes the call and its
//! return from the list and restarts from the head. Meeting a return means
//! its operation should already have been placed: the last placement is
//! undone ("unlifted") and the walk resumes after it. The memo of (placed
//! set, state) pairs stops a walk into a configuration already explored.
//!
//! Beyond Porcupine, the candidates of a configuration are tried in an
//! order that finds valid histories fast and prunes without losing any
//! (see [`Pass`]): a read-like operation that fits is placed without
//! branching, and unknown writes come last, the one a blocked operation
//! needs first.
//!
//! The list lives in index arrays (`prev`, `next`) rather than pointers;
//! the sentinel head is the index one past the last entry.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::{Budget, Call, Checked, Counterexample, Exhausted, Finding, Model};
use crate::history::{OpId, Time};

/// "No entry": the end of the list.
const NIL: usize = usize::MAX;

/// How often (in loop turns) the clock is read.
const CLOCK_EVERY: u64 = 1024;

/// The set of placed operations, as a bitset (the memo hashes it).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Placed(Vec<u64>);

impl Placed {
    fn new(n: usize) -> Placed {
        Placed(vec![0; n.div_ceil(64)])
    }

    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }

    fn clear(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }
}

/// The entry list.
struct Entries {
    /// Index of the call (in the slice being checked) an entry belongs to.
    call: Vec<usize>,
    /// For a call entry, its return entry; `NIL` for a return entry.
    matching: Vec<usize>,
    prev: Vec<usize>,
    next: Vec<usize>,
    head: usize,
}

impl Entries {
    fn new<I, O>(calls: &[Call<I, O>]) -> Entries {
        // (time, 0 = call / 1 = return, call index)
        let mut order: Vec<(Time, u8, usize)> = Vec::with_capacity(calls.len() * 2);
        for (i, c) in calls.iter().enumerate() {
            order.push((c.invoke, 0, i));
            // A return recorded before its invocation is a recording error;
            // clamping keeps the list well formed (call before return).
            let end = c
                .returned
                .as_ref()
                .map_or(Time::MAX, |r| r.time.max(c.invoke));
            order.push((end, 1, i));
        }
        order.sort_unstable();

        let n = order.len();
        let head = n;
        let mut entries = Entries {
            call: Vec::with_capacity(n),
            matching: vec![NIL; n],
            prev: Vec::with_capacity(n + 1),
            next: Vec::with_capacity(n + 1),
            head,
        };
        let mut call_entry = vec![NIL; calls.len()];
        for (e, &(_, kind, i)) in order.iter().enumerate() {
            entries.call.push(i);
            if kind == 0 {
                call_entry[i] = e;
            } else {
                entries.matching[call_entry[i]] = e;
            }
            entries.prev.push(if e == 0 { head } else { e - 1 });
            entries.next.push(if e + 1 == n { NIL } else { e + 1 });
        }
        entries.prev.push(NIL);
        entries.next.push(if n == 0 { NIL } else { 0 });
        entries
    }

    fn is_call(&self, e: usize) -> bool {
        self.matching[e] != NIL
    }

    /// Removes a call entry and its return from the list.
    fn lift(&mut self, e: usize) {
        let (p, n) = (self.prev[e], self.next[e]);
        self.next[p] = n;
        if n != NIL {
            self.prev[n] = p;
        }
        let r = self.matching[e];
        let (p, n) = (self.prev[r], self.next[r]);
        self.next[p] = n;
        if n != NIL {
            self.prev[n] = p;
        }
    }

    /// Puts back what `lift(e)` removed, in reverse order.
    fn unlift(&mut self, e: usize) {
        let r = self.matching[e];
        self.next[self.prev[r]] = r;
        if self.next[r] != NIL {
            self.prev[self.next[r]] = r;
        }
        self.next[self.prev[e]] = e;
        if self.next[e] != NIL {
            self.prev[self.next[e]] = e;
        }
    }
}

/// Which candidates the walk is trying. Every configuration is scanned in
/// up to four passes over the calls before the first pending return.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pass {
    /// A definite call that fits the state and leaves it unchanged (a
    /// read, a 404, a 412) is placed at once and decides the
    /// configuration: any order placing it later can place it here
    /// instead, so there is no alternative to try.
    Forced,
    /// Definite calls, each a branch.
    Definite,
    /// Indeterminate calls after which the blocking operation (the one of
    /// the first pending return) fits: usually the write a read observed.
    /// Indeterminate calls come after definite ones, so an unknown write
    /// is placed as late as the history allows.
    Enabling,
    /// The other indeterminate calls. (Those tried in the enabling pass
    /// come up again and are skipped by the memo.)
    Indeterminate,
}

/// One placement on the current path.
struct Placement<S> {
    entry: usize,
    /// The state before it, restored when it is undone.
    before: S,
    /// The pass it was placed in; undoing a forced placement undoes its
    /// parent as well.
    pass: Pass,
}

/// The deepest configuration reached, for the counterexample.
struct Deepest {
    /// Placements on it.
    depth: usize,
    /// Definite placements on it.
    definite: usize,
    /// Its operations, in order.
    linearized: Vec<OpId>,
    /// The model state at its end.
    state: String,
    /// The operation that could not be placed after it.
    stuck: Option<OpId>,
    /// The open calls at that point.
    candidates: Vec<OpId>,
    /// The current path still is this one (nothing on it undone since), so
    /// a return met at its depth belongs to it.
    on_path: bool,
}

/// The walk's state.
struct Search<'a, M: Model> {
    model: &'a M,
    calls: &'a [Call<M::Input, M::Output>],
    /// The entries not yet placed.
    list: Entries,
    /// The calls placed on the current path.
    placed: Placed,
    /// Every configuration entered; those not on the path have failed.
    memo: HashSet<(Placed, M::State)>,
    /// The placements of the current path, oldest first.
    path: Vec<Placement<M::State>>,
    /// The model state after them.
    state: M::State,
    /// How many of them are definite (success when all are placed).
    definite_placed: usize,
    /// The entry the walk is looking at.
    entry: usize,
    /// The pass it is in.
    pass: Pass,
    /// In the enabling pass, the first pending return's entry.
    blocking: usize,
    deepest: Deepest,
}

/// What a step of the walk leads to.
enum Next {
    Continue,
    /// Nothing left to undo: no linearization exists.
    Exhausted,
}

impl<'a, M: Model> Search<'a, M> {
    fn new(model: &'a M, calls: &'a [Call<M::Input, M::Output>]) -> Self {
        let list = Entries::new(calls);
        let state = model.init();
        let deepest = Deepest {
            depth: 0,
            definite: 0,
            linearized: Vec::new(),
            state: format!("{state:?}"),
            stuck: None,
            candidates: Vec::new(),
            on_path: true,
        };
        let entry = list.next[list.head];
        Search {
            model,
            calls,
            placed: Placed::new(calls.len()),
            memo: HashSet::new(),
            path: Vec::new(),
            state,
            definite_placed: 0,
            entry,
            pass: Pass::Forced,
            blocking: NIL,
            deepest,
            list,
        }
    }

    /// Looks at the current entry: tries a call, or ends the pass at a
    /// return.
    fn advance(&mut self) -> Next {
        let entry = self.entry;
        if entry == NIL || !self.list.is_call(entry) {
            return self.end_pass();
        }
        let call = &self.calls[self.list.call[entry]];
        let definite = call.returned.is_some();
        let wanted = match self.pass {
            Pass::Forced | Pass::Definite => definite,
            Pass::Enabling | Pass::Indeterminate => !definite,
        };
        if wanted {
            let output = call.returned.as_ref().map(|r| &r.output);
            if let Some(next) = self.model.step(&self.state, &call.input, output) {
                let keeps = next == self.state;
                match self.pass {
                    Pass::Forced if keeps => {
                        if !self.place(entry, next) {
                            // Explored before and failed: so does this one.
                            self.remember_stuck(self.first_return());
                            return self.backtrack();
                        }
                        return Next::Continue;
                    }
                    // Placing an unknown operation as a no-op is the same
                    // as never placing it, which stays possible.
                    Pass::Forced | Pass::Enabling | Pass::Indeterminate if keeps => {}
                    Pass::Forced => {}
                    Pass::Enabling if !self.enables(&next) => {}
                    Pass::Definite | Pass::Enabling | Pass::Indeterminate => {
                        if self.place(entry, next) {
                            return Next::Continue;
                        }
                    }
                }
            }
        }
        self.entry = self.list.next[entry];
        Next::Continue
    }

    /// Whether the blocking operation fits in `state`.
    fn enables(&self, state: &M::State) -> bool {
        if self.blocking == NIL {
            return false;
        }
        let call = &self.calls[self.list.call[self.blocking]];
        let output = call.returned.as_ref().map(|r| &r.output);
        output.is_some() && self.model.step(state, &call.input, output).is_some()
    }

    /// Places the call at `entry` (in the current pass) if the
    /// configuration it leads to is new.
    fn place(&mut self, entry: usize, next: M::State) -> bool {
        let i = self.list.call[entry];
        self.placed.set(i);
        if !self.memo.insert((self.placed.clone(), next.clone())) {
            self.placed.clear(i);
            return false;
        }
        let before = std::mem::replace(&mut self.state, next);
        self.path.push(Placement {
            entry,
            before,
            pass: self.pass,
        });
        if self.calls[i].returned.is_some() {
            self.definite_placed += 1;
        }
        self.list.lift(entry);
        if self.path.len() > self.deepest.depth {
            self.deepest = Deepest {
                depth: self.path.len(),
                definite: self.definite_placed,
                linearized: self.path.iter().map(|p| self.op_at(p.entry)).collect(),
                state: format!("{:?}", self.state),
                stuck: None,
                candidates: Vec::new(),
                on_path: true,
            };
        }
        self.entry = self.list.next[self.list.head];
        self.pass = Pass::Forced;
        true
    }

    /// At a return (or the end): start the next pass, or, after the last,
    /// give up on this configuration.
    fn end_pass(&mut self) -> Next {
        self.pass = match self.pass {
            Pass::Forced => Pass::Definite,
            Pass::Definite => {
                self.blocking = self.entry;
                Pass::Enabling
            }
            Pass::Enabling => Pass::Indeterminate,
            Pass::Indeterminate => {
                // The return's operation had to be placed by now and could
                // not be.
                self.remember_stuck(self.entry);
                return self.backtrack();
            }
        };
        self.entry = self.list.next[self.list.head];
        Next::Continue
    }

    /// Undoes the last placement (and its forced ancestors) and resumes the
    /// pass it was made in, after it.
    fn backtrack(&mut self) -> Next {
        loop {
            let Some(placement) = self.path.pop() else {
                return Next::Exhausted;
            };
            self.deepest.on_path = false;
            self.state = placement.before;
            let i = self.list.call[placement.entry];
            self.placed.clear(i);
            if self.calls[i].returned.is_some() {
                self.definite_placed -= 1;
            }
            self.list.unlift(placement.entry);
            if placement.pass != Pass::Forced {
                self.pass = placement.pass;
                self.blocking = self.first_return();
                self.entry = self.list.next[placement.entry];
                return Next::Continue;
            }
        }
    }

    /// If the walk is at the deepest point, records the operation whose
    /// return (`at`) it could not get past, and the open calls before it.
    fn remember_stuck(&mut self, at: usize) {
        let deepest = &self.deepest;
        if deepest.on_path && self.path.len() == deepest.depth && deepest.stuck.is_none() {
            self.deepest.stuck = (at != NIL).then(|| self.op_at(at));
            self.deepest.candidates = self.open_calls(at);
        }
    }

    /// The first return entry in the list (`NIL` if none).
    fn first_return(&self) -> usize {
        let mut e = self.list.next[self.list.head];
        while e != NIL && self.list.is_call(e) {
            e = self.list.next[e];
        }
        e
    }

    fn op_at(&self, entry: usize) -> OpId {
        self.calls[self.list.call[entry]].op
    }

    /// The operations whose calls lie between the head and `until` (the
    /// stuck operation's own call among them).
    fn open_calls(&self, until: usize) -> Vec<OpId> {
        let mut open = Vec::new();
        let mut e = self.list.next[self.list.head];
        while e != NIL {
            if self.list.is_call(e) {
                open.push(self.op_at(e));
            }
            if e == until {
                break;
            }
            e = self.list.next[e];
        }
        open
    }
}

/// Searches for a linearization of `calls` (one object) under `model`.
pub fn check<M: Model>(model: &M, calls: &[Call<M::Input, M::Output>], budget: &Budget) -> Checked {
    let start = Instant::now();
    let deadline = start.checked_add(budget.per_key);
    let definite = calls.iter().filter(|c| c.returned.is_some()).count();
    let finish = |finding, states| Checked {
        finding,
        states,
        elapsed: start.elapsed(),
    };
    let exhausted = |limit: &str, deepest: usize| Exhausted {
        limit: limit.to_string(),
        deepest,
        definite,
    };
    if definite == 0 {
        return finish(Finding::Linearizable, 0);
    }
    if budget.per_key == Duration::ZERO {
        return finish(Finding::Inconclusive(exhausted("time", 0)), 0);
    }

    let mut search = Search::new(model, calls);
    let mut turns: u64 = 0;
    loop {
        if search.definite_placed == definite {
            return finish(Finding::Linearizable, search.memo.len());
        }
        turns += 1;
        let out_of_time =
            turns.is_multiple_of(CLOCK_EVERY) && deadline.is_none_or(|d| Instant::now() >= d);
        if out_of_time || search.memo.len() > budget.max_states {
            let limit = if out_of_time { "time" } else { "states" };
            let found = exhausted(limit, search.deepest.definite);
            return finish(Finding::Inconclusive(found), search.memo.len());
        }
        if let Next::Exhausted = search.advance() {
            let states = search.memo.len();
            let deepest = search.deepest;
            let counterexample = Counterexample {
                linearized: deepest.linearized,
                state: deepest.state,
                stuck: deepest.stuck,
                candidates: deepest.candidates,
            };
            return finish(Finding::NotLinearizable(counterexample), states);
        }
    }
}
