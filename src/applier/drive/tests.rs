//! The applier's error handling, driven by a fake executor: one test per
//! error class.

use super::*;
use crate::db::ErrorClass;

/// Commits what `refuse` lets through; records every call.
struct Fake<F: FnMut(usize, &[CommittedEntry], bool) -> Option<u16>> {
    refuse: F,
    calls: Vec<(u64, usize, bool)>,
    committed: Vec<u64>,
}

impl<F: FnMut(usize, &[CommittedEntry], bool) -> Option<u16>> Fake<F> {
    fn new(refuse: F) -> Self {
        Fake {
            refuse,
            calls: Vec::new(),
            committed: Vec::new(),
        }
    }
}

fn server_error(code: u16) -> DbError {
    DbError::Mysql(mysql_async::Error::Server(mysql_async::ServerError {
        code,
        message: format!("the server says no ({code})"),
        state: "HY000".into(),
    }))
}

impl<F: FnMut(usize, &[CommittedEntry], bool) -> Option<u16>> Executor for Fake<F> {
    async fn apply(
        &mut self,
        entries: &[CommittedEntry],
        per_row: bool,
    ) -> Result<BatchResult, DbError> {
        let call = self.calls.len();
        self.calls.push((entries[0].index, entries.len(), per_row));
        if let Some(code) = (self.refuse)(call, entries, per_row) {
            return Err(server_error(code));
        }
        self.committed.extend(entries.iter().map(|e| e.index));
        Ok(BatchResult {
            applied_index: entries.last().unwrap().index,
            ..BatchResult::default()
        })
    }
}

fn entries(n: u64) -> Vec<CommittedEntry> {
    (1..=n)
        .map(|index| CommittedEntry {
            index,
            term: 1,
            command: None,
            undecodable: None,
            origin: None,
            membership: None,
        })
        .collect()
}

/// The applier's loop: apply what is left, back off on a failure, retry
/// from the first entry not committed. Returns the apply_error seen after
/// each failed round.
async fn run<E: Executor>(
    executor: &mut E,
    all: &[CommittedEntry],
    retry: &mut Retry,
) -> Vec<String> {
    let mut next = 0;
    let mut reported = Vec::new();
    for _ in 0..100 {
        let progress = apply_all(executor, &all[next..]).await;
        if let Some(last) = progress.done.last() {
            next = all
                .iter()
                .position(|e| e.index == last.applied_index)
                .unwrap()
                + 1;
            retry.succeeded();
        }
        match progress.failure {
            Some(failure) => {
                let delay = retry.failed(failure);
                assert!(delay <= RETRY_MAX, "backoff is capped");
                reported.push(retry.apply_error().expect("a failure is reported"));
            }
            None => {
                assert_eq!(next, all.len());
                assert_eq!(retry.apply_error(), None, "no error once applied");
                return reported;
            }
        }
    }
    panic!("never finished");
}

fn count(class: ErrorClass) -> u64 {
    metrics::MYSQL_ERRORS
        .with_label_values(&[class.as_str()])
        .get()
}

#[tokio::test]
async fn a_transient_error_retries_the_same_batch_until_it_commits() {
    let all = entries(10);
    let before = count(ErrorClass::Transient);
    // A deadlock, then the server gone, then fine.
    let mut fake = Fake::new(|call, _, _| match call {
        0 => Some(1213),
        1 => Some(2006),
        _ => None,
    });
    let mut retry = Retry::default();
    let reported = run(&mut fake, &all, &mut retry).await;
    assert_eq!(
        fake.calls,
        vec![(1, 10, false), (1, 10, false), (1, 10, false)],
        "the same work, as is"
    );
    assert_eq!(fake.committed, (1..=10).collect::<Vec<_>>());
    assert_eq!(reported.len(), 2);
    assert!(reported[0].starts_with("transient error: "), "{reported:?}");
    assert!(reported[0].contains("(1213)"), "{reported:?}");
    assert!(count(ErrorClass::Transient) >= before + 2);
}

#[tokio::test]
async fn a_batch_refused_for_its_size_is_split_down_to_what_fits() {
    let all = entries(10);
    let before = count(ErrorClass::Size);
    // The server takes at most 3 entries at once.
    let mut fake =
        Fake::new(|_, entries: &[CommittedEntry], _| (entries.len() > 3).then_some(1153));
    let mut retry = Retry::default();
    let reported = run(&mut fake, &all, &mut retry).await;
    assert!(
        reported.is_empty(),
        "a split is not a failure: {reported:?}"
    );
    assert_eq!(
        fake.committed,
        (1..=10).collect::<Vec<_>>(),
        "every entry once, in order"
    );
    assert_eq!(fake.calls[0], (1, 10, false));
    assert_eq!(fake.calls[1], (1, 5, false), "halved");
    assert!(fake.calls.iter().all(|&(_, _, per_row)| !per_row));
    assert!(count(ErrorClass::Size) >= before + 2);

    // One entry that fits only one row per statement.
    let mut fake = Fake::new(|_, entries: &[CommittedEntry], per_row| {
        (entries.iter().any(|e| e.index == 4) && !per_row).then_some(1153)
    });
    let mut retry = Retry::default();
    let reported = run(&mut fake, &all, &mut retry).await;
    assert!(reported.is_empty(), "{reported:?}");
    assert_eq!(fake.committed, (1..=10).collect::<Vec<_>>());
    assert!(fake.calls.contains(&(4, 1, true)), "{:?}", fake.calls);
}

#[tokio::test]
async fn any_other_error_makes_the_node_unready_with_its_cause_and_skips_nothing() {
    let all = entries(10);
    let before = count(ErrorClass::Other);
    // Entry 5 fails three times with a table missing, then the operator fixes it.
    let mut failures = 0;
    let mut fake = Fake::new(move |_, entries: &[CommittedEntry], _| {
        if entries.iter().any(|e| e.index == 5) && failures < 3 {
            failures += 1;
            return Some(1146);
        }
        // Keep entry 5 in its own batch's way: refuse the batch it is in.
        None
    });
    let mut retry = Retry::default();
    let reported = run(&mut fake, &all, &mut retry).await;
    assert_eq!(reported.len(), 3, "{reported:?}");
    for cause in &reported {
        assert_eq!(
            cause,
            "other error: MySQL: Server error: `ERROR 1146 (HY000): the server says no (1146)'"
        );
    }
    assert_eq!(
        fake.committed,
        (1..=10).collect::<Vec<_>>(),
        "nothing skipped, nothing twice"
    );
    assert!(count(ErrorClass::Other) >= before + 3);

    // A single entry that does not fit even one row per statement is
    // reported as a failure the operator must fix, not skipped.
    let mut fake = Fake::new(|_, entries: &[CommittedEntry], _| {
        entries.iter().any(|e| e.index == 7).then_some(1153)
    });
    let progress = apply_all(&mut fake, &all).await;
    let failure = progress.failure.expect("a failure");
    assert_eq!(failure.class, ErrorClass::Size);
    assert!(failure.error.contains("entry 7"), "{}", failure.error);
    assert!(
        failure.error.contains("max_allowed_packet"),
        "{}",
        failure.error
    );
    assert_eq!(fake.committed, (1..=6).collect::<Vec<_>>());
    let mut retry = Retry::default();
    retry.failed(failure);
    assert!(retry
        .apply_error()
        .unwrap()
        .starts_with("size error: entry 7"));
}
