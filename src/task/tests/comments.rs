//! Comment commands: who may add, edit and delete, against what.

use super::*;
use crate::accounts::Role;

fn cid(n: u128) -> CommentId {
    CommentId(Uuid::from_u128(0xc000 + n))
}

fn add(n: u128, comment: u128, task: u128, body: &str) -> Command {
    command(
        n,
        Op::CommentAdd(NewComment {
            id: cid(comment),
            task_id: id(task),
            body: body.into(),
        }),
    )
}

fn edit(n: u128, comment: u128, task: u128, expected: Option<u64>, body: &str) -> Command {
    command(
        n,
        Op::CommentEdit {
            id: cid(comment),
            task_id: id(task),
            expected_version: expected,
            body: body.into(),
        },
    )
}

fn remove(n: u128, comment: u128, task: u128) -> Command {
    command(
        n,
        Op::CommentDelete {
            id: cid(comment),
            task_id: id(task),
        },
    )
}

pub(super) const ANA: u128 = 0xa; // the board's admin
pub(super) const BO: u128 = 0xb; // a member
pub(super) const CY: u128 = 0xc; // a viewer
pub(super) const DI: u128 = 0xd; // another member
pub(super) const BOARD: u128 = 0xb0;

/// A board with Ana (admin), Bo and Di (members) and Cy (viewer), and
/// card 10 on it; commands after it are applied as `user` with site role
/// member (`run`).
pub(super) struct Setup {
    pub(super) board: Board,
    pub(super) index: u64,
}

impl Setup {
    pub(super) fn new() -> Setup {
        let mut setup = Setup {
            board: Board::new(),
            index: 0,
        };
        let board_id = BoardId(Uuid::from_u128(BOARD));
        let columns = [0xc0, 0xc1, 0xc2].map(|n| ColumnId(Uuid::from_u128(n)));
        let made = setup.run(
            ANA,
            command(
                1,
                Op::BoardCreate(NewBoard {
                    id: board_id,
                    name: "Ops".into(),
                    columns,
                }),
            ),
        );
        assert!(matches!(made, Outcome::Board { .. }), "{made:?}");
        for (n, user, role) in [
            (2, BO, BoardRole::Member),
            (3, CY, BoardRole::Viewer),
            (4, DI, BoardRole::Member),
        ] {
            let set = command(
                n,
                Op::BoardMemberSet {
                    board_id,
                    user_id: Uuid::from_u128(user).to_string(),
                    role: Some(role),
                },
            );
            setup.run(ANA, set);
        }
        let mut card = create(10, "card", Status::Todo);
        if let Op::Create(new) = &mut card.op {
            new.board_id = Some(board_id);
        }
        assert!(matches!(setup.run(BO, card), Outcome::Created { .. }));
        setup
    }

    pub(super) fn run_as(&mut self, user: u128, command: Command, site: Role) -> Outcome {
        self.index += 1;
        self.board
            .apply_as(self.index, 1, &by(user, command), Some(site))
            .outcome
    }

    pub(super) fn run(&mut self, user: u128, command: Command) -> Outcome {
        self.run_as(user, command, Role::Member)
    }
}

fn comment_of(outcome: &Outcome) -> &Comment {
    match outcome {
        Outcome::Comment { comment, .. } => comment,
        other => panic!("expected a comment, got {other:?}"),
    }
}

#[test]
fn a_member_comments_on_a_card_and_the_event_carries_the_comment_and_its_author() {
    let mut s = Setup::new();
    let before = s.board.last_seq();
    let added = s.run(BO, add(20, 1, 10, "Looks **good** 🚀"));
    let comment = comment_of(&added).clone();
    assert_eq!(comment.version, 1);
    assert_eq!(comment.task_id, id(10));
    assert_eq!(comment.board_id, BoardId(Uuid::from_u128(BOARD)));
    assert_eq!(comment.author.id, Uuid::from_u128(BO).to_string());
    assert_eq!(comment.created_at, comment.updated_at);
    assert_eq!(added.seq(), Some(before + 1));
    let events = s.board.take_changes().events;
    let event = events.last().unwrap();
    assert_eq!(event.kind, EventKind::CommentAdded);
    assert_eq!(event.task_id, Some(id(10)), "the task's history lists it");
    assert_eq!(event.comment.as_ref(), Some(&comment));
    assert_eq!(event.actor.id, Uuid::from_u128(BO).to_string());
    assert_eq!(event.board_id(), Some(BoardId(Uuid::from_u128(BOARD))));
    assert!(event.task.is_none(), "the card itself is unchanged");
}

#[test]
fn a_viewer_or_someone_not_on_the_board_cannot_comment() {
    let mut s = Setup::new();
    let refused = |outcome: &Outcome| match rejection(outcome) {
        Rejection::Catalog { refused } => refused.clone(),
        other => panic!("expected a board refusal, got {other:?}"),
    };
    let board_id = BoardId(Uuid::from_u128(BOARD));
    assert_eq!(
        refused(&s.run(CY, add(20, 1, 10, "hi"))),
        CatalogRejection::ReadOnly { id: board_id }
    );
    assert_eq!(
        refused(&s.run(0xe, add(21, 2, 10, "hi"))),
        CatalogRejection::NotOnBoard { id: board_id }
    );
    assert!(s.board.comments().is_empty());
}

#[test]
fn only_the_author_edits_a_comment_and_if_match_names_its_version() {
    let mut s = Setup::new();
    s.run(BO, add(20, 1, 10, "first"));
    assert_eq!(
        rejection(&s.run(DI, edit(21, 1, 10, None, "mine now"))),
        &Rejection::NotAuthor {
            id: cid(1),
            admin_may: false
        }
    );
    assert_eq!(
        rejection(&s.run(ANA, edit(22, 1, 10, None, "admin"))),
        &Rejection::NotAuthor {
            id: cid(1),
            admin_may: false
        },
        "a board admin deletes, but does not put words in someone's mouth"
    );
    let edited = s.run(BO, edit(23, 1, 10, Some(1), "second"));
    let comment = comment_of(&edited);
    assert_eq!((comment.version, comment.body.as_str()), (2, "second"));
    assert_eq!(comment.updated_at, Timestamp(1_700_000_000_000 + 23));
    match rejection(&s.run(BO, edit(24, 1, 10, Some(1), "stale"))) {
        Rejection::CommentVersionMismatch { expected, current } => {
            assert_eq!((*expected, current.version), (1, 2));
            assert_eq!(current.body, "second");
        }
        other => panic!("expected a version mismatch, got {other:?}"),
    }
    // The same body again: no event, no new version.
    let seq = s.board.last_seq();
    let same = s.run(BO, edit(25, 1, 10, Some(2), "second"));
    assert_eq!((comment_of(&same).version, same.seq()), (2, Some(seq)));
    let kinds: Vec<EventKind> = s
        .board
        .take_changes()
        .events
        .iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == EventKind::CommentEdited)
            .count(),
        1
    );
}

#[test]
fn the_author_a_board_admin_or_a_site_admin_deletes_a_comment_and_no_one_else() {
    let mut s = Setup::new();
    for (n, comment) in [(20, 1), (21, 2), (22, 3)] {
        s.run(BO, add(n, comment, 10, "note"));
    }
    assert_eq!(
        rejection(&s.run(DI, remove(30, 1, 10))),
        &Rejection::NotAuthor {
            id: cid(1),
            admin_may: true
        }
    );
    assert!(matches!(
        rejection(&s.run(CY, remove(31, 1, 10))),
        Rejection::NotAuthor { .. }
    ));
    for (n, user, comment, site) in [
        (32, BO, 1, Role::Member),
        (33, ANA, 2, Role::Member),
        (34, 0xe, 3, Role::Admin),
    ] {
        let outcome = s.run_as(user, remove(n, comment, 10), site);
        assert!(
            matches!(outcome, Outcome::Comment { deleted: true, .. }),
            "{outcome:?}"
        );
    }
    assert!(s.board.comments().is_empty());
    assert_eq!(
        rejection(&s.run(BO, remove(35, 1, 10))),
        &Rejection::CommentNotFound { id: cid(1) },
        "deleted once"
    );
}

#[test]
fn a_comment_on_a_missing_or_deleted_task_is_refused_and_a_deleted_tasks_comments_go_with_it() {
    let mut s = Setup::new();
    assert_eq!(
        rejection(&s.run(BO, add(20, 1, 99, "nobody home"))),
        &Rejection::NotFound { id: id(99) }
    );
    s.run(BO, add(21, 2, 10, "kept?"));
    assert_eq!(
        rejection(&s.run(BO, edit(22, 2, 11, None, "wrong task"))),
        &Rejection::CommentNotFound { id: cid(2) },
        "a comment is only found under its own task"
    );
    assert!(matches!(
        s.run(BO, delete(23, 10, None)),
        Outcome::Deleted { .. }
    ));
    assert!(s.board.comments().is_empty(), "gone with the card");
    assert_eq!(
        rejection(&s.run(BO, add(24, 3, 10, "too late"))),
        &Rejection::NotFound { id: id(10) }
    );
    assert_eq!(
        rejection(&s.run(BO, edit(25, 2, 10, None, "too late"))),
        &Rejection::CommentNotFound { id: cid(2) }
    );
    let changes = s.board.take_changes();
    assert!(changes.comment_upserts.is_empty());
    assert_eq!(changes.comment_deletes, vec![cid(2)]);
    assert_eq!(changes.deletes, vec![id(10)]);
}

#[test]
fn an_id_in_use_is_refused() {
    let mut s = Setup::new();
    s.run(BO, add(20, 1, 10, "one"));
    assert!(matches!(
        rejection(&s.run(BO, add(21, 1, 10, "two"))),
        Rejection::Catalog {
            refused: CatalogRejection::IdTaken { .. }
        }
    ));
}

#[test]
fn replaying_the_events_gives_the_comments_the_board_holds() {
    let mut s = Setup::new();
    s.run(BO, add(20, 1, 10, "one"));
    s.run(DI, add(21, 2, 10, "two"));
    s.run(BO, edit(22, 1, 10, None, "one, edited"));
    s.run(ANA, remove(23, 2, 10));
    let mut other = create(24, "other", Status::Todo);
    if let Op::Create(new) = &mut other.op {
        new.board_id = Some(BoardId(Uuid::from_u128(BOARD)));
    }
    s.run(BO, other);
    s.run(BO, add(25, 3, 24, "on the other card"));
    s.run(BO, delete(26, 24, None));
    let events = s.board.take_changes().events;
    let replayed = replay(&events);
    assert_eq!(replayed.comments, s.board.comments());
    assert_eq!(replayed.comments.len(), 1);
    assert_eq!(replayed.comments[&cid(1)].body, "one, edited");
}

#[test]
fn a_partial_board_decides_comments_loaded_for_the_batch_as_a_complete_one_does() {
    let mut whole = Setup::new();
    whole.run(BO, add(20, 1, 10, "one"));
    let task = whole.board.task(&id(10)).cloned();
    let comment = whole.board.comment(&cid(1)).cloned();
    let seq = whole.board.last_seq();
    let expected = whole.run(BO, edit(21, 1, 10, Some(1), "two"));

    let mut partial =
        Board::partial(seq, ColumnTails::default()).with_catalog(whole.board.catalog().clone());
    partial.load_task(id(10), task.map(Slot::Live));
    partial.load_comment(cid(1), comment);
    let outcome = partial
        .apply_as(
            whole.index,
            1,
            &by(BO, edit(21, 1, 10, Some(1), "two")),
            Some(Role::Member),
        )
        .outcome;
    assert_eq!(outcome, expected);
    assert_eq!(
        partial.take_changes().comment_upserts,
        vec![comment_of(&expected).clone()]
    );
}

#[test]
fn a_card_moved_to_another_board_takes_its_thread_and_its_events_follow() {
    let mut s = Setup::new();
    s.run(BO, add(20, 1, 10, "before the move"));
    let other = BoardId(Uuid::from_u128(0xb1));
    let columns = [0xd0, 0xd1, 0xd2].map(|n| ColumnId(Uuid::from_u128(n)));
    s.run(
        BO,
        command(
            21,
            Op::BoardCreate(NewBoard {
                id: other,
                name: "Elsewhere".into(),
                columns,
            }),
        ),
    );
    let onto = TaskPatch {
        board_id: Some(other),
        ..TaskPatch::default()
    };
    assert!(matches!(
        s.run(BO, update(22, 10, None, onto)),
        Outcome::Updated { .. }
    ));
    // Ana is not on the other board: the thread is no longer hers to touch.
    assert_eq!(
        rejection(&s.run(ANA, remove(23, 1, 10))),
        &Rejection::Catalog {
            refused: CatalogRejection::NotOnBoard { id: other }
        }
    );
    let edited = s.run(BO, edit(24, 1, 10, None, "after the move"));
    assert_eq!(comment_of(&edited).board_id, other);
    let same = s.run(BO, edit(25, 1, 10, None, "after the move"));
    assert_eq!(
        comment_of(&same).board_id,
        other,
        "unchanged: the board now"
    );
    let events = s.board.take_changes().events;
    assert_eq!(events.last().unwrap().board_id(), Some(other));
}
