//! Column versions: made at 1, one more per change, `If-Match` decided at
//! apply, and the same versions from a replay of the events, old or new.

use super::*;
use crate::task::catalog::fixed_column;

fn cid(n: u128) -> ColumnId {
    ColumnId(Uuid::from_u128(0xc0_0000 + n))
}

fn make(n: u128, column: u128) -> Command {
    command(
        n,
        Op::ColumnCreate(NewColumn {
            id: cid(column),
            board_id: DEFAULT_BOARD,
            name: format!("Column {column}"),
            position: None,
            wip_limit: None,
            color: None,
            category: None,
            archive_after_days: None,
        }),
    )
}

fn change(n: u128, column: u128, expected: Option<u64>, patch: ColumnPatch) -> Command {
    command(
        n,
        Op::ColumnUpdate {
            id: cid(column),
            expected_version: expected,
            patch,
        },
    )
}

fn rename(n: u128, column: u128, expected: Option<u64>, name: &str) -> Command {
    let patch = ColumnPatch {
        name: Some(name.into()),
        ..ColumnPatch::default()
    };
    change(n, column, expected, patch)
}

fn remove(n: u128, column: u128, expected: Option<u64>) -> Command {
    command(
        n,
        Op::ColumnDelete {
            id: cid(column),
            expected_version: expected,
        },
    )
}

fn column_of(outcome: &Outcome) -> &Column {
    match outcome {
        Outcome::Column { column, .. } => column,
        other => panic!("expected a column, got {other:?}"),
    }
}

fn refused(outcome: &Outcome) -> &CatalogRejection {
    match rejection(outcome) {
        Rejection::Catalog { refused } => refused,
        other => panic!("expected a catalog refusal, got {other:?}"),
    }
}

#[test]
fn a_column_is_made_at_version_1_and_each_change_adds_one() {
    let mut board = Board::new();
    let fixed = fixed_column(Status::Todo);
    assert_eq!(board.catalog().column(&fixed).map(|c| c.version), Some(1));
    let reorder = ColumnPatch {
        position: Some(10.0),
        ..ColumnPatch::default()
    };
    let limit = ColumnPatch {
        wip_limit: Some(Some(4)),
        color: Some(Some("#00aa00".into())),
        ..ColumnPatch::default()
    };
    let outcomes = apply(
        &mut board,
        &[
            make(1, 1),
            rename(2, 1, None, "Review"),
            change(3, 1, None, reorder),
            change(4, 1, Some(3), limit.clone()),
            // The same again: nothing changes, so neither does the version.
            change(5, 1, Some(4), limit),
        ],
    );
    let versions: Vec<u64> = outcomes.iter().map(|o| column_of(o).version).collect();
    assert_eq!(versions, [1, 2, 3, 4, 4]);
    let events = board.take_changes().events;
    assert_eq!(
        events.len(),
        4,
        "the change that changed nothing wrote no event"
    );
    let last = events.last().expect("an event");
    assert_eq!(last.column.as_ref().map(|c| c.version), Some(4));
    assert!(
        !last.changes.contains_key("version"),
        "the changes list what the user changed: {:?}",
        last.changes
    );
}

#[test]
fn a_stale_if_match_is_refused_with_the_column_as_it_is_and_changes_nothing() {
    let mut board = Board::new();
    apply(&mut board, &[make(1, 1), rename(2, 1, Some(1), "Review")]);
    let before = board.catalog().column(&cid(1)).cloned();
    let seq = board.last_seq();
    let outcomes = apply(
        &mut board,
        &[rename(3, 1, Some(1), "Stale"), remove(4, 1, Some(1))],
    );
    for outcome in &outcomes {
        let CatalogRejection::ColumnVersionMismatch { expected, current } = refused(outcome) else {
            panic!("expected a version mismatch, got {outcome:?}");
        };
        assert_eq!(*expected, 1);
        assert_eq!(Some(current.as_ref()), before.as_ref());
    }
    assert_eq!(board.catalog().column(&cid(1)).cloned(), before);
    assert_eq!(board.last_seq(), seq, "no event");
}

#[test]
fn of_two_changes_under_the_same_if_match_the_log_lets_the_first_win() {
    let mut board = Board::new();
    let outcomes = apply(
        &mut board,
        &[
            make(1, 1),
            rename(2, 1, Some(1), "Mine"),
            rename(3, 1, Some(1), "Theirs"),
        ],
    );
    assert_eq!(column_of(&outcomes[1]).name, "Mine");
    assert!(matches!(
        refused(&outcomes[2]),
        CatalogRejection::ColumnVersionMismatch { expected: 1, .. }
    ));
    assert_eq!(
        board.catalog().column(&cid(1)).map(|c| c.name.as_str()),
        Some("Mine")
    );
}

#[test]
fn a_delete_under_the_current_version_goes_through() {
    let mut board = Board::new();
    let outcomes = apply(
        &mut board,
        &[
            make(1, 1),
            rename(2, 1, None, "Gone"),
            remove(3, 1, Some(2)),
        ],
    );
    assert!(matches!(outcomes[2], Outcome::Column { deleted: true, .. }));
    assert!(board.catalog().column(&cid(1)).is_none());
}

/// Commands that change columns, some refused.
fn history() -> Vec<Command> {
    let fixed = ColumnPatch {
        name: Some("Backlog".into()),
        ..ColumnPatch::default()
    };
    vec![
        make(1, 1),
        make(2, 2),
        rename(3, 1, None, "Review"),
        rename(4, 1, Some(1), "Stale"),
        rename(5, 2, Some(1), "QA"),
        command(
            6,
            Op::ColumnUpdate {
                id: fixed_column(Status::Todo),
                expected_version: Some(1),
                patch: fixed,
            },
        ),
        remove(7, 2, Some(2)),
        rename(8, 1, Some(2), "Code review"),
    ]
}

#[test]
fn replaying_the_events_gives_every_column_the_version_apply_gave() {
    let mut board = Board::new();
    apply(&mut board, &history());
    let events = board.take_changes().events;
    assert_eq!(replay(&events).catalog.rows(), board.catalog().rows());
}

#[test]
fn events_from_before_column_versions_fold_to_the_same_versions() {
    let mut board = Board::new();
    apply(&mut board, &history());
    let mut events = board.take_changes().events;
    for event in &mut events {
        if let Some(column) = &mut event.column {
            column.version = 0;
        }
    }
    let rows = replay(&events).catalog.rows();
    assert_eq!(rows, board.catalog().rows());
    let versions: Vec<(ColumnId, u64)> = rows
        .columns
        .iter()
        .map(|(c, _)| (c.id, c.version))
        .filter(|(id, _)| *id == cid(1) || *id == fixed_column(Status::Todo))
        .collect();
    assert_eq!(
        versions,
        [(fixed_column(Status::Todo), 2), (cid(1), 3)],
        "1 when made, one more per change"
    );
}
