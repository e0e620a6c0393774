//! Hand-made histories, each pinning one rule of the checker or the task
//! model: valid ones it must accept, invalid ones it must reject.

use std::time::Duration;

use super::tasks::{self, Config, TaskLinearizability};
use super::{check, Budget, Call, Finding, Model, Returned};
use crate::history::{Failure, OpId, Status, Value};
use crate::report::Verdict;
use crate::testkit::*;

const T: &str = "t1";

fn judge(script: &Script) -> TaskLinearizability {
    tasks::check(&script.history, &Config::default())
}

fn assert_valid(script: &Script) {
    let result = judge(script);
    assert_eq!(
        result.verdict(),
        Verdict::Valid,
        "expected a linearizable history, got {:#?}",
        result.keys
    );
}

fn assert_invalid(script: &Script) -> TaskLinearizability {
    let result = judge(script);
    assert_eq!(
        result.verdict(),
        Verdict::Invalid,
        "expected a violation, got {:#?}",
        result.keys
    );
    result
}

/// A task created as "a" at version 1, ending at time 10.
fn created() -> Script {
    let mut s = Script::new();
    s.ok(0, create(T, "a"), (0, 10), task(1, "a"));
    s
}

#[test]
fn a_sequential_create_update_read_history_is_linearizable() {
    let mut s = created();
    s.ok(0, retitle(T, Some(1), "b"), (20, 30), task(2, "b"));
    s.ok(0, read(T), (40, 50), task(2, "b"));
    s.ok(0, delete(T, Some(2)), (60, 70), Value::Deleted);
    s.fail(0, read(T), (80, 90), Failure::NotFound);
    assert_valid(&s);
}

#[test]
fn a_stale_read_after_a_completed_write_is_not_linearizable() {
    let mut s = created();
    s.ok(0, retitle(T, None, "b"), (20, 30), task(2, "b"));
    s.ok(1, read(T), (40, 50), task(1, "a"));
    assert_invalid(&s);
}

#[test]
fn a_read_concurrent_with_a_write_may_see_it() {
    let mut s = created();
    s.ok(0, retitle(T, None, "b"), (20, 60), task(2, "b"));
    s.ok(1, read(T), (30, 40), task(2, "b"));
    assert_valid(&s);
}

#[test]
fn a_read_concurrent_with_a_write_may_miss_it() {
    let mut s = created();
    s.ok(0, retitle(T, None, "b"), (20, 60), task(2, "b"));
    s.ok(1, read(T), (30, 40), task(1, "a"));
    assert_valid(&s);
}

#[test]
fn reading_an_older_version_after_a_newer_one_was_read_is_not_linearizable() {
    let mut s = created();
    s.ok(0, retitle(T, None, "b"), (20, 100), task(2, "b"));
    s.ok(1, read(T), (30, 40), task(2, "b"));
    s.ok(2, read(T), (50, 60), task(1, "a"));
    assert_invalid(&s);
}

#[test]
fn two_creates_of_the_same_id_both_ok_is_not_linearizable() {
    let mut s = Script::new();
    s.ok(0, create(T, "a"), (0, 10), task(1, "a"));
    s.ok(1, create(T, "b"), (5, 15), task(1, "b"));
    assert_invalid(&s);
}

#[test]
fn a_create_racing_another_may_find_the_id_taken() {
    let mut s = Script::new();
    s.ok(0, create(T, "a"), (0, 10), task(1, "a"));
    s.fail(1, create(T, "b"), (5, 15), Failure::IdTaken);
    assert_valid(&s);
}

#[test]
fn an_unknown_write_that_shows_up_later_is_linearizable() {
    let mut s = created();
    s.info(1, retitle(T, None, "b"), (20, 30));
    s.ok(0, read(T), (40, 50), task(1, "a"));
    // Its effect lands after the client gave up, and after a read missed it.
    s.ok(0, read(T), (60, 70), task(2, "b"));
    assert_valid(&s);
}

#[test]
fn an_unknown_write_never_showing_up_is_linearizable() {
    let mut s = created();
    s.info(1, retitle(T, None, "b"), (20, 30));
    s.ok(0, read(T), (40, 50), task(1, "a"));
    s.pending(2, retitle(T, None, "c"), 55);
    s.ok(0, read(T), (60, 70), task(1, "a"));
    assert_valid(&s);
}

#[test]
fn an_unknown_write_cannot_show_up_before_it_was_invoked() {
    let mut s = created();
    s.ok(0, read(T), (20, 30), task(2, "b"));
    s.info(1, retitle(T, None, "b"), (40, 50));
    assert_invalid(&s);
}

#[test]
fn a_412_claiming_a_version_the_task_did_not_have_is_not_linearizable() {
    let mut s = created();
    s.ok(0, retitle(T, Some(1), "b"), (20, 30), task(2, "b"));
    // The true version was 2 from time 30 on.
    s.fail(1, retitle(T, Some(1), "c"), (40, 50), mismatch(3, "b"));
    assert_invalid(&s);
}

#[test]
fn a_412_with_the_current_version_is_linearizable() {
    let mut s = created();
    s.ok(0, retitle(T, Some(1), "b"), (20, 30), task(2, "b"));
    s.fail(1, retitle(T, Some(1), "c"), (40, 50), mismatch(2, "b"));
    s.ok(1, retitle(T, Some(2), "c"), (60, 70), task(3, "c"));
    assert_valid(&s);
}

#[test]
fn a_refused_conditional_write_has_no_effect() {
    let mut s = created();
    s.fail(1, retitle(T, Some(7), "c"), (20, 30), mismatch(1, "a"));
    s.ok(0, read(T), (40, 50), task(2, "c"));
    assert_invalid(&s);
}

#[test]
fn a_version_that_skips_a_number_is_not_linearizable() {
    let mut s = created();
    s.ok(0, retitle(T, None, "b"), (20, 30), task(3, "b"));
    assert_invalid(&s);
}

#[test]
fn an_update_that_changes_nothing_keeps_its_version() {
    let mut s = created();
    s.ok(0, retitle(T, Some(1), "a"), (20, 30), task(1, "a"));
    s.ok(0, move_to(T, Some(1), Status::Todo), (40, 50), task(1, "a"));
    s.ok(
        0,
        move_to(T, Some(1), Status::Done),
        (60, 70),
        Value::Task(view(2, "a", Status::Done)),
    );
    assert_valid(&s);
}

#[test]
fn a_404_for_a_task_known_to_be_live_is_not_linearizable() {
    let mut s = created();
    s.fail(1, retitle(T, None, "b"), (20, 30), Failure::NotFound);
    assert_invalid(&s);
}

#[test]
fn a_deleted_id_cannot_be_created_again() {
    let mut s = created();
    s.ok(0, delete(T, None), (20, 30), Value::Deleted);
    s.fail(0, create(T, "again"), (40, 50), Failure::IdTaken);
    assert_valid(&s);
    s.ok(0, create(T, "again"), (60, 70), task(1, "again"));
    assert_invalid(&s);
}

#[test]
fn a_retried_create_under_its_key_is_answered_with_the_first_outcome() {
    let mut s = Script::new();
    s.info(0, create_keyed(T, "a", "k1"), (0, 10));
    s.ok(1, read(T), (20, 30), task(1, "a"));
    s.ok(1, retitle(T, Some(1), "b"), (40, 50), task(2, "b"));
    // The retry comes after the first attempt took effect and after a change.
    s.ok(2, create_keyed(T, "a", "k1"), (60, 70), task(1, "a"));
    assert_valid(&s);
}

#[test]
fn a_retry_under_another_key_finds_the_id_taken() {
    let mut s = Script::new();
    s.info(0, create_keyed(T, "a", "k1"), (0, 10));
    s.ok(1, read(T), (20, 30), task(1, "a"));
    s.ok(2, create_keyed(T, "a", "k2"), (60, 70), task(1, "a"));
    assert_invalid(&s);
}

#[test]
fn a_stale_list_is_not_linearizable() {
    let mut s = created();
    s.ok(
        0,
        move_to(T, None, Status::Done),
        (20, 30),
        Value::Task(view(2, "a", Status::Done)),
    );
    s.ok(
        1,
        crate::history::Op::List,
        (40, 50),
        tasks(vec![listed(T, 1, "a", Status::Todo)]),
    );
    assert_invalid(&s);
}

#[test]
fn a_list_that_misses_a_created_task_is_not_linearizable() {
    let mut s = created();
    s.ok(1, crate::history::Op::List, (40, 50), tasks(vec![]));
    assert_invalid(&s);
}

#[test]
fn a_list_that_shows_one_task_twice_is_not_linearizable() {
    let mut s = created();
    let twice = vec![
        listed(T, 1, "a", Status::Todo),
        listed(T, 1, "a", Status::Todo),
    ];
    s.ok(1, crate::history::Op::List, (40, 50), tasks(twice));
    assert_invalid(&s);
}

#[test]
fn a_list_before_any_create_sees_nothing_and_that_is_fine() {
    let mut s = Script::new();
    s.ok(1, crate::history::Op::List, (0, 5), tasks(vec![]));
    s.ok(0, create(T, "a"), (10, 20), task(1, "a"));
    s.ok(
        1,
        crate::history::Op::List,
        (30, 40),
        tasks(vec![listed(T, 1, "a", Status::Todo)]),
    );
    assert_valid(&s);
}

#[test]
fn rejections_and_unknown_reads_say_nothing_and_are_ignored() {
    let mut s = created();
    let rejected = Failure::Rejected {
        status: 422,
        message: "title too long".into(),
    };
    s.fail(1, retitle(T, None, "x"), (20, 30), rejected);
    s.info(2, read(T), (20, 30));
    s.ok(0, read(T), (40, 50), task(1, "a"));
    assert_valid(&s);
}

#[test]
fn each_task_is_judged_on_its_own() {
    let mut s = created();
    s.ok(0, create("t2", "x"), (0, 10), task(1, "x"));
    s.ok(1, read("t2"), (20, 30), task(5, "x"));
    let result = assert_invalid(&s);
    let bad: Vec<_> = result.violations().map(|k| k.task_id.as_str()).collect();
    assert_eq!(bad, vec!["t2"], "only t2 is wrong");
    assert_eq!(result.keys.len(), 2);
}

#[test]
fn the_counterexample_names_the_operation_that_cannot_be_placed() {
    let mut s = created();
    s.ok(0, retitle(T, None, "b"), (20, 30), task(2, "b"));
    let stale = s.ok(1, read(T), (40, 50), task(1, "a"));
    let result = assert_invalid(&s);
    let key = &result.keys[0];
    let Finding::NotLinearizable(cx) = &key.finding else {
        panic!("expected a counterexample, got {:?}", key.finding);
    };
    assert_eq!(
        cx.linearized,
        vec![OpId(0), OpId(1)],
        "create then update fit"
    );
    assert_eq!(cx.stuck, Some(stale), "the stale read does not");
    let text = key.explanation.join("\n");
    assert!(
        text.contains("cannot place #2 p1 read(t1) -> ok v1 \"a\" todo"),
        "{text}"
    );
    let check = result.to_check();
    assert_eq!(check.anomalies.len(), 1);
    assert_eq!(check.anomalies[0].kind, "nonlinearizable");
}

#[test]
fn a_task_created_before_the_history_is_judged_from_its_first_answer() {
    let mut s = Script::new();
    s.ok(0, read(T), (0, 10), task(3, "a"));
    s.ok(0, retitle(T, Some(3), "b"), (20, 30), task(4, "b"));
    s.fail(1, retitle(T, Some(3), "c"), (40, 50), mismatch(4, "b"));
    s.ok(
        1,
        crate::history::Op::List,
        (60, 70),
        tasks(vec![listed(T, 4, "b", Status::Todo)]),
    );
    assert_valid(&s);
}

#[test]
fn a_task_created_before_the_history_still_cannot_go_back() {
    let mut s = Script::new();
    s.ok(0, read(T), (0, 10), task(3, "a"));
    s.ok(1, read(T), (20, 30), task(2, "a"));
    assert_invalid(&s);
}

#[test]
fn a_task_created_before_the_history_cannot_answer_an_update_it_ignored() {
    let mut s = Script::new();
    s.ok(0, retitle(T, Some(3), "b"), (0, 10), task(4, "not b"));
    assert_invalid(&s);
}

/// Many concurrent unknown writes and a read no order can explain: the
/// search must try every subset of the writes before giving up.
fn pathological() -> Script {
    let mut s = created();
    for p in 0..18 {
        s.info(p + 1, retitle(T, None, &format!("w{p}")), (20 + p, 1000));
    }
    s.ok(30, read(T), (2000, 2010), task(99, "never written"));
    s
}

#[test]
fn a_pathological_history_with_a_tiny_state_budget_is_inconclusive() {
    let config = Config {
        budget: Budget {
            max_states: 200,
            ..Budget::default()
        },
        ..Config::default()
    };
    let result = tasks::check(&pathological().history, &config);
    assert_eq!(
        result.verdict(),
        Verdict::Inconclusive,
        "{:#?}",
        result.keys
    );
    let check = result.to_check();
    assert_eq!(check.verdict, Verdict::Inconclusive);
    assert_eq!(check.anomalies[0].kind, "undecided");
}

#[test]
fn a_pathological_history_with_a_tiny_time_budget_is_inconclusive() {
    let config = Config {
        budget: Budget {
            per_key: Duration::from_micros(1),
            ..Budget::default()
        },
        ..Config::default()
    };
    let result = tasks::check(&pathological().history, &config);
    assert_eq!(
        result.verdict(),
        Verdict::Inconclusive,
        "{:#?}",
        result.keys
    );
}

/// A counter that only goes up by one: the checker is generic.
struct Counter;

impl Model for Counter {
    type State = u32;
    type Input = &'static str;
    type Output = u32;

    fn init(&self) -> u32 {
        0
    }

    fn step(&self, state: &u32, input: &&'static str, output: Option<&u32>) -> Option<u32> {
        let (answer, next) = match *input {
            "inc" => (state + 1, state + 1),
            _ => (*state, *state),
        };
        match output {
            Some(o) if *o != answer => None,
            _ => Some(next),
        }
    }
}

fn call(
    op: usize,
    input: &'static str,
    window: (u64, u64),
    output: u32,
) -> Call<&'static str, u32> {
    Call {
        op: OpId(op),
        input,
        invoke: window.0,
        returned: Some(Returned {
            time: window.1,
            output,
        }),
    }
}

#[test]
fn the_search_works_for_any_model() {
    let ok = [
        call(0, "inc", (0, 10), 1),
        call(1, "inc", (0, 10), 2),
        call(2, "get", (5, 20), 2),
    ];
    assert_eq!(
        check(&Counter, &ok, &Budget::default()).finding,
        Finding::Linearizable
    );
    let bad = [call(0, "inc", (0, 10), 1), call(1, "get", (20, 30), 0)];
    let found = check(&Counter, &bad, &Budget::default()).finding;
    assert!(matches!(found, Finding::NotLinearizable(_)), "{found:?}");
}
