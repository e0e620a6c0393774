//! Checklist commands: who may change a list, against what, within what.

use super::comments::{Setup, ANA, BO, BOARD, CY};
use super::*;
use crate::task::checklist::{
    ChecklistAction as Do, ChecklistChange, ChecklistCommand, ChecklistItem, CHECKLISTS_PER_TASK,
    ITEMS_PER_CHECKLIST,
};

fn lid(n: u128) -> ChecklistId {
    ChecklistId(Uuid::from_u128(0x1100 + n))
}

fn iid(n: u128) -> ItemId {
    ItemId(Uuid::from_u128(0x1200 + n))
}

fn on(n: u128, list: u128, task: u128, expected: Option<u64>, action: Do) -> Command {
    command(
        n,
        Op::Checklist(ChecklistCommand {
            id: lid(list),
            task_id: id(task),
            expected_version: expected,
            action,
        }),
    )
}

fn make(n: u128, list: u128, title: &str) -> Command {
    on(
        n,
        list,
        10,
        None,
        Do::Create {
            title: title.into(),
        },
    )
}

fn add(n: u128, list: u128, item: u128, text: &str) -> Command {
    on(
        n,
        list,
        10,
        None,
        Do::AddItem {
            item: iid(item),
            text: text.into(),
            done: false,
        },
    )
}

fn tick(n: u128, list: u128, item: u128, done: bool) -> Command {
    on(
        n,
        list,
        10,
        None,
        Do::UpdateItem {
            item: iid(item),
            text: None,
            done: Some(done),
            position: None,
        },
    )
}

fn list_of(outcome: &Outcome) -> &Checklist {
    match outcome {
        Outcome::Checklist { checklist, .. } => checklist,
        other => panic!("expected a checklist, got {other:?}"),
    }
}

fn texts(list: &Checklist) -> Vec<&str> {
    list.items.iter().map(|i| i.text.as_str()).collect()
}

#[test]
fn a_member_builds_a_checklist_and_every_change_is_one_checklist_changed_event() {
    let mut s = Setup::new();
    s.board.take_changes();
    let made = s.run(BO, make(20, 1, "  Launch  "));
    assert_eq!(list_of(&made).title, "Launch", "trimmed");
    assert_eq!(list_of(&made).version, 1);
    s.run(BO, add(21, 1, 1, "Write it"));
    s.run(BO, add(22, 1, 2, "Review it 🚀 \"q\" \\"));
    let ticked = s.run(BO, tick(23, 1, 1, true));
    let list = list_of(&ticked);
    assert_eq!(list.progress(), (1, 2));
    assert_eq!(list.version, 4);
    assert_eq!(texts(list), ["Write it", "Review it 🚀 \"q\" \\"]);

    let events = s.board.take_changes().events;
    assert_eq!(events.len(), 4);
    assert!(events.iter().all(|e| e.kind == EventKind::ChecklistChanged));
    let last = events.last().unwrap();
    assert_eq!(last.task_id, Some(id(10)));
    assert_eq!(last.board_id(), Some(BoardId(Uuid::from_u128(BOARD))));
    assert_eq!(last.actor.id, Uuid::from_u128(BO).to_string());
    assert_eq!(last.checklist.as_ref(), Some(list));
    assert_eq!(
        last.checklist_change,
        Some(ChecklistChange::ItemUpdated {
            item: iid(1),
            text_from: None,
            done_from: Some(false),
            position_from: None,
        })
    );
}

#[test]
fn items_move_by_index_and_are_removed_with_what_they_were() {
    let mut s = Setup::new();
    s.run(BO, make(20, 1, "L"));
    for (n, text) in ["a", "b", "c"].iter().enumerate() {
        s.run(BO, add(21 + n as u128, 1, n as u128, text));
    }
    let moved = s.run(
        BO,
        on(
            30,
            1,
            10,
            None,
            Do::UpdateItem {
                item: iid(2),
                text: None,
                done: None,
                position: Some(0),
            },
        ),
    );
    assert_eq!(texts(list_of(&moved)), ["c", "a", "b"]);
    let past_the_end = s.run(
        BO,
        on(
            31,
            1,
            10,
            None,
            Do::UpdateItem {
                item: iid(2),
                text: None,
                done: None,
                position: Some(99),
            },
        ),
    );
    assert_eq!(texts(list_of(&past_the_end)), ["a", "b", "c"]);
    let removed = s.run(BO, on(32, 1, 10, None, Do::RemoveItem { item: iid(0) }));
    assert_eq!(texts(list_of(&removed)), ["b", "c"]);
    let event = s.board.take_changes().events.pop().unwrap();
    assert_eq!(
        event.checklist_change,
        Some(ChecklistChange::ItemRemoved {
            item: ChecklistItem {
                id: iid(0),
                text: "a".into(),
                done: false,
            },
            position: 0,
        })
    );
    assert_eq!(
        rejection(&s.run(BO, on(33, 1, 10, None, Do::RemoveItem { item: iid(0) }))),
        &Rejection::ChecklistItemNotFound { id: iid(0) }
    );
}

#[test]
fn a_change_to_what_the_list_is_records_nothing() {
    let mut s = Setup::new();
    s.run(BO, make(20, 1, "L"));
    s.run(BO, add(21, 1, 1, "a"));
    s.board.take_changes();
    let same = s.run(BO, tick(22, 1, 1, false));
    assert_eq!(list_of(&same).version, 2);
    let renamed = s.run(BO, on(23, 1, 10, None, Do::Rename { title: "L".into() }));
    assert_eq!(list_of(&renamed).version, 2);
    assert!(s.board.take_changes().events.is_empty());
}

#[test]
fn if_match_names_the_lists_version() {
    let mut s = Setup::new();
    s.run(BO, make(20, 1, "L"));
    s.run(BO, add(21, 1, 1, "a"));
    match rejection(&s.run(BO, on(22, 1, 10, Some(1), Do::RemoveItem { item: iid(1) }))) {
        Rejection::ChecklistVersionMismatch { expected, current } => {
            assert_eq!((*expected, current.version), (1, 2));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        s.run(BO, on(23, 1, 10, Some(2), Do::RemoveItem { item: iid(1) })),
        Outcome::Checklist { .. }
    ));
}

#[test]
fn viewers_and_strangers_are_refused_at_apply() {
    let mut s = Setup::new();
    s.run(BO, make(20, 1, "L"));
    assert!(matches!(
        rejection(&s.run(CY, add(21, 1, 1, "a"))),
        Rejection::Catalog {
            refused: CatalogRejection::ReadOnly { .. }
        }
    ));
    assert!(matches!(
        rejection(&s.run(0xe, make(22, 2, "M"))),
        Rejection::Catalog {
            refused: CatalogRejection::NotOnBoard { .. }
        }
    ));
    assert!(matches!(
        s.run(ANA, on(23, 1, 10, None, Do::Delete)),
        Outcome::Checklist { deleted: true, .. }
    ));
}

#[test]
fn limits_hold_at_apply() {
    let mut s = Setup::new();
    for n in 0..CHECKLISTS_PER_TASK as u128 {
        assert!(matches!(
            s.run(BO, make(100 + n, n, "L")),
            Outcome::Checklist { .. }
        ));
    }
    assert!(matches!(
        rejection(&s.run(BO, make(200, 99, "one too many"))),
        Rejection::ChecklistLimit { limit, .. } if *limit == CHECKLISTS_PER_TASK
    ));
    for n in 0..ITEMS_PER_CHECKLIST as u128 {
        s.run(BO, add(300 + n, 0, n, "x"));
    }
    assert!(matches!(
        rejection(&s.run(BO, add(600, 0, 999, "one too many"))),
        Rejection::ChecklistLimit { limit, .. } if *limit == ITEMS_PER_CHECKLIST
    ));
    assert!(matches!(
        rejection(&s.run(BO, add(601, 1, 1000, &"x".repeat(501)))),
        Rejection::ChecklistInvalid { .. }
    ));
    assert!(matches!(
        rejection(&s.run(BO, add(602, 1, 1001, "two\nlines"))),
        Rejection::ChecklistInvalid { .. }
    ));
    assert!(matches!(
        rejection(&s.run(BO, make(603, 1, "  "))),
        Rejection::ChecklistInvalid { .. }
    ));
}

#[test]
fn deleting_the_card_deletes_its_checklists_and_replay_agrees() {
    let mut s = Setup::new();
    s.run(BO, make(20, 1, "L"));
    s.run(BO, add(21, 1, 1, "a"));
    s.run(BO, make(22, 2, "M"));
    s.run(BO, on(23, 2, 10, None, Do::Delete));
    let events_before = s.board.take_changes().events;
    let replayed = replay(&events_before);
    assert_eq!(replayed.checklists.len(), 1);
    assert_eq!(replayed.checklists[&lid(1)].items.len(), 1);

    assert!(matches!(
        s.run(BO, delete(24, 10, None)),
        Outcome::Deleted { .. }
    ));
    assert!(s.board.task_checklists(&id(10)).is_empty());
    let changes = s.board.take_changes();
    assert_eq!(changes.checklist_deletes, vec![lid(1)]);
    assert_eq!(
        rejection(&s.run(BO, add(25, 1, 2, "too late"))),
        &Rejection::NotFound { id: id(10) }
    );
    let mut all = events_before;
    all.extend(changes.events);
    assert!(replay(&all).checklists.is_empty());
}

#[test]
fn a_partial_board_decides_as_a_complete_one_does() {
    let mut whole = Setup::new();
    whole.run(BO, make(20, 1, "L"));
    whole.run(BO, add(21, 1, 1, "a"));
    let task = whole.board.task(&id(10)).cloned();
    let lists: Vec<Checklist> = whole
        .board
        .task_checklists(&id(10))
        .into_iter()
        .cloned()
        .collect();
    let seq = whole.board.last_seq();
    let expected = whole.run(BO, tick(22, 1, 1, true));

    let mut partial =
        Board::partial(seq, ColumnTails::default()).with_catalog(whole.board.catalog().clone());
    partial.load_task(id(10), task.map(Slot::Live));
    partial.load_task_checklists(id(10), lists);
    let outcome = partial
        .apply_as(
            whole.index,
            1,
            &by(BO, tick(22, 1, 1, true)),
            Some(crate::accounts::Role::Member),
        )
        .outcome;
    assert_eq!(outcome, expected);
    assert_eq!(
        partial.take_changes().checklist_upserts,
        vec![list_of(&expected).clone()]
    );
}
