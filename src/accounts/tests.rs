use std::collections::BTreeSet;

use uuid::Uuid;

use super::*;
use crate::task::{Command, Op};
use crate::time::Timestamp;

fn command(op: Op) -> Command {
    Command {
        request_id: Uuid::new_v4(),
        idempotency: None,
        at: Timestamp(1_000),
        actor: Actor::system(),
        op,
    }
}

fn new_user(n: u128, name: &str, role: Role) -> NewUser {
    NewUser {
        id: Uuid::from_u128(n),
        username: name.into(),
        display_name: name.to_uppercase(),
        role,
        password_hash: format!("hash-{name}"),
    }
}

/// Applies `ops` from log index `first` on; the outcomes in order.
fn run(accounts: &mut Accounts, first: u64, ops: Vec<Op>) -> Vec<AccountOutcome> {
    let mut changes = AccountChanges::default();
    ops.into_iter()
        .enumerate()
        .map(|(i, op)| {
            let command = command(op);
            let op = command.op.account().expect("an account command");
            accounts.apply(first + i as u64, command.at, op, &mut changes)
        })
        .collect()
}

fn rejected(outcome: &AccountOutcome) -> Option<&AccountRejection> {
    match outcome {
        AccountOutcome::Rejected { rejection } => Some(rejection),
        _ => None,
    }
}

#[test]
fn users_are_created_once_per_name_and_bootstrap_only_on_an_empty_cluster() {
    let mut a = Accounts::default();
    let out = run(
        &mut a,
        1,
        vec![
            Op::BootstrapAdmin(new_user(1, "root", Role::Admin)),
            Op::BootstrapAdmin(new_user(2, "root", Role::Admin)),
            Op::UserCreate(new_user(3, "alice", Role::Member)),
            Op::UserCreate(new_user(4, "alice", Role::Viewer)),
            Op::UserCreate(new_user(3, "carol", Role::Viewer)),
        ],
    );
    assert!(rejected(&out[0]).is_none());
    assert_eq!(rejected(&out[1]), Some(&AccountRejection::HasUsers));
    assert!(rejected(&out[2]).is_none());
    assert!(matches!(
        rejected(&out[3]),
        Some(AccountRejection::UsernameTaken { .. })
    ));
    assert!(matches!(
        rejected(&out[4]),
        Some(AccountRejection::IdTaken { .. })
    ));
    assert_eq!(a.users().len(), 2);
    assert_eq!(a.user_by_name("alice").unwrap().role, Role::Member);
}

#[test]
fn a_session_is_good_until_logout_disable_expiry_or_a_password_change() {
    let mut a = Accounts::default();
    let alice = Uuid::from_u128(3);
    let session = |hash: &str| {
        Op::SessionCreate(NewSession {
            hash: hash.into(),
            user_id: alice,
            expires_at: Timestamp(10_000),
        })
    };
    run(
        &mut a,
        1,
        vec![
            Op::UserCreate(new_user(1, "root", Role::Admin)),
            Op::UserCreate(new_user(3, "alice", Role::Member)),
            session("s1"),
            session("s2"),
        ],
    );
    let now = Timestamp(2_000);
    assert_eq!(a.session_user("s1", now).unwrap().id, alice);
    assert!(a.session_user("s1", Timestamp(10_000)).is_none(), "expired");
    assert!(a.session_user("nope", now).is_none());
    run(&mut a, 5, vec![Op::SessionEnd { hash: "s1".into() }]);
    assert!(a.session_user("s1", now).is_none(), "logged out");
    assert!(a.session_user("s2", now).is_some());
    // A role change takes effect on the next request.
    run(
        &mut a,
        6,
        vec![Op::UserUpdate(UserUpdate {
            id: alice,
            role: Some(Role::Viewer),
            ..Default::default()
        })],
    );
    assert_eq!(a.session_user("s2", now).unwrap().role, Role::Viewer);
    // Disabled: refused; enabled again: good again.
    let disable = |d| {
        Op::UserUpdate(UserUpdate {
            id: alice,
            disabled: Some(d),
            ..Default::default()
        })
    };
    run(&mut a, 7, vec![disable(true)]);
    assert!(a.session_user("s2", now).is_none());
    let out = run(&mut a, 8, vec![session("s3")]);
    assert!(matches!(
        rejected(&out[0]),
        Some(AccountRejection::UserDisabled { .. })
    ));
    run(&mut a, 9, vec![disable(false)]);
    assert!(a.session_user("s2", now).is_some());
    // A password change ends the sessions created before it, not after.
    run(
        &mut a,
        10,
        vec![
            Op::UserUpdate(UserUpdate {
                id: alice,
                password_hash: Some("new".into()),
                ..Default::default()
            }),
            session("s4"),
        ],
    );
    assert!(a.session_user("s2", now).is_none());
    assert!(a.session_user("s4", now).is_some());
}

#[test]
fn tokens_are_found_by_hash_until_revoked_or_expired() {
    let mut a = Accounts::default();
    let alice = Uuid::from_u128(3);
    let tid = Uuid::from_u128(77);
    run(
        &mut a,
        1,
        vec![
            Op::UserCreate(new_user(3, "alice", Role::Member)),
            Op::TokenCreate(NewToken {
                id: tid,
                hash: secret_hash("secret"),
                user_id: alice,
                name: "ci".into(),
                expires_at: Some(Timestamp(5_000)),
            }),
        ],
    );
    let hash = secret_hash("secret");
    assert_eq!(a.token_user(&hash, Timestamp(1)).unwrap().1.id, alice);
    assert!(a.token_user(&hash, Timestamp(5_000)).is_none(), "expired");
    assert!(a.token_user(&secret_hash("other"), Timestamp(1)).is_none());
    run(&mut a, 3, vec![Op::TokenRevoke { id: tid }]);
    assert!(a.token_user(&hash, Timestamp(1)).is_none(), "revoked");
    assert_eq!(a.tokens(Some(alice)).len(), 1, "kept, as revoked");
}

#[test]
fn the_last_enabled_admin_stays_one() {
    let mut a = Accounts::default();
    let root = Uuid::from_u128(1);
    run(
        &mut a,
        1,
        vec![Op::BootstrapAdmin(new_user(1, "root", Role::Admin))],
    );
    for update in [
        UserUpdate {
            id: root,
            role: Some(Role::Member),
            ..Default::default()
        },
        UserUpdate {
            id: root,
            disabled: Some(true),
            ..Default::default()
        },
    ] {
        let out = run(&mut a, 2, vec![Op::UserUpdate(update)]);
        assert_eq!(rejected(&out[0]), Some(&AccountRejection::LastAdmin));
    }
    run(
        &mut a,
        3,
        vec![Op::UserCreate(new_user(2, "second", Role::Admin))],
    );
    let out = run(
        &mut a,
        4,
        vec![Op::UserUpdate(UserUpdate {
            id: root,
            role: Some(Role::Member),
            ..Default::default()
        })],
    );
    assert!(rejected(&out[0]).is_none());
}

/// The catch-up copies the account tables at the source's applied index,
/// which may be past the snapshot; the entries in between are then applied
/// again. Every prefix of a history, re-applied over the state the whole
/// history led to, must leave that state unchanged.
#[test]
fn re_applying_entries_already_in_the_state_changes_nothing() {
    let alice = Uuid::from_u128(3);
    let history = vec![
        Op::BootstrapAdmin(new_user(1, "root", Role::Admin)),
        Op::UserCreate(new_user(3, "alice", Role::Member)),
        Op::SessionCreate(NewSession {
            hash: "s1".into(),
            user_id: alice,
            expires_at: Timestamp(9_000),
        }),
        Op::TokenCreate(NewToken {
            id: Uuid::from_u128(50),
            hash: "t1".into(),
            user_id: alice,
            name: "ci".into(),
            expires_at: None,
        }),
        Op::UserUpdate(UserUpdate {
            id: alice,
            password_hash: Some("h2".into()),
            role: Some(Role::Viewer),
            ..Default::default()
        }),
        Op::SessionCreate(NewSession {
            hash: "s2".into(),
            user_id: alice,
            expires_at: Timestamp(9_000),
        }),
        Op::SessionEnd { hash: "s1".into() },
        Op::TokenRevoke {
            id: Uuid::from_u128(50),
        },
        Op::UserUpdate(UserUpdate {
            id: alice,
            role: Some(Role::Member),
            display_name: Some("Alice".into()),
            ..Default::default()
        }),
    ];
    let mut full = Accounts::default();
    run(&mut full, 1, history.clone());
    for from in 0..history.len() {
        let mut again = full.clone();
        run(&mut again, 1 + from as u64, history[from..].to_vec());
        assert_eq!(again, full, "re-applying from entry {}", from + 1);
    }
    assert!(full.session_user("s2", Timestamp(1)).is_some());
}

#[test]
fn task_commands_are_not_ours_and_old_commands_decode_with_the_system_actor() {
    let json = r#"{"request_id":"00000000-0000-0000-0000-000000000001","at":"2026-01-01T00:00:00.000Z","op":{"type":"delete","id":"00000000-0000-0000-0000-000000000002"}}"#;
    let old: Command = serde_json::from_str(json).unwrap();
    assert_eq!(old.actor, Actor::system());
    assert!(old.op.account().is_none());
    let mut with_actor = old.clone();
    with_actor.actor = Actor {
        id: "u1".into(),
        name: "alice".into(),
    };
    let text = serde_json::to_string(&with_actor).unwrap();
    assert!(
        text.contains(r#""actor":{"id":"u1","name":"alice"}"#),
        "{text}"
    );
    assert_eq!(serde_json::from_str::<Command>(&text).unwrap(), with_actor);
    // The system actor is not written: old and new encodings agree.
    assert!(!serde_json::to_string(&old).unwrap().contains("actor"));
    // An account command round-trips through the log encoding.
    let create = command(Op::UserCreate(new_user(9, "zed", Role::Viewer)));
    let text = serde_json::to_string(&create).unwrap();
    assert!(text.contains(r#""type":"user_create""#), "{text}");
    assert_eq!(serde_json::from_str::<Command>(&text).unwrap(), create);
}

#[test]
fn passwords_hash_with_argon2id_and_verify() {
    let hash = hash_password("correct horse");
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(verify_password("correct horse", &hash));
    assert!(!verify_password("correct hors", &hash));
    assert!(!verify_password("x", "not a hash"));
    assert_ne!(hash, hash_password("correct horse"), "salted");
    assert_eq!(random_secret().len(), 64);
    assert_ne!(random_secret(), random_secret());
    assert_ne!(csrf_token("a"), csrf_token("b"));
    assert_eq!(secret_hash("a").len(), 64);
}

#[test]
fn a_held_credential_ends_with_a_reason_for_each_way_it_can_end() {
    use super::access::Ended;
    let mut a = Accounts::default();
    let alice = Uuid::from_u128(3);
    let session = |hash: &str| {
        Op::SessionCreate(NewSession {
            hash: hash.into(),
            user_id: alice,
            expires_at: Timestamp(10_000),
        })
    };
    let token = |n: u128, expires_at| {
        Op::TokenCreate(NewToken {
            id: Uuid::from_u128(n),
            hash: format!("t{n}"),
            user_id: alice,
            name: "script".into(),
            expires_at,
        })
    };
    run(
        &mut a,
        1,
        vec![
            Op::UserCreate(new_user(1, "root", Role::Admin)),
            Op::UserCreate(new_user(3, "alice", Role::Member)),
            session("s1"),
            session("s2"),
            token(10, None),
            token(11, Some(Timestamp(5_000))),
        ],
    );
    let via_session = |hash: &str| Via::Session {
        hash: hash.into(),
        csrf: String::new(),
    };
    let via_token = |n: u128| Via::Token {
        id: Uuid::from_u128(n),
    };
    let now = Timestamp(2_000);
    assert_eq!(a.credential(&via_session("s1"), now), Ok(()));
    assert_eq!(a.credential(&via_token(10), now), Ok(()));
    assert_eq!(
        a.credential(&via_session("s1"), Timestamp(10_000)),
        Err(Ended::Expired)
    );
    assert_eq!(
        a.credential(&via_token(11), Timestamp(5_000)),
        Err(Ended::Expired)
    );
    assert_eq!(
        a.credential(&via_session("gone"), now),
        Err(Ended::LoggedOut)
    );
    assert_eq!(a.credential(&via_token(99), now), Err(Ended::Revoked));
    for via in [Via::Service, Via::Peer { node_id: 2 }, Via::Open] {
        assert_eq!(a.credential(&via, Timestamp(i64::MAX)), Ok(()));
    }

    run(
        &mut a,
        7,
        vec![
            Op::SessionEnd { hash: "s1".into() },
            Op::TokenRevoke {
                id: Uuid::from_u128(10),
            },
        ],
    );
    assert_eq!(a.credential(&via_session("s1"), now), Err(Ended::LoggedOut));
    assert_eq!(a.credential(&via_token(10), now), Err(Ended::Revoked));
    assert_eq!(a.credential(&via_session("s2"), now), Ok(()));

    run(
        &mut a,
        9,
        vec![Op::UserUpdate(UserUpdate {
            id: alice,
            password_hash: Some("new".into()),
            ..Default::default()
        })],
    );
    assert_eq!(
        a.credential(&via_session("s2"), now),
        Err(Ended::PasswordChanged)
    );
    run(&mut a, 10, vec![session("s3")]);
    assert_eq!(a.credential(&via_session("s3"), now), Ok(()));
    run(
        &mut a,
        11,
        vec![Op::UserUpdate(UserUpdate {
            id: alice,
            disabled: Some(true),
            ..Default::default()
        })],
    );
    assert_eq!(a.credential(&via_session("s3"), now), Err(Ended::Disabled));
    assert_eq!(a.credential(&via_token(11), now), Err(Ended::Disabled));
    for ended in [
        Ended::LoggedOut,
        Ended::Expired,
        Ended::Revoked,
        Ended::Disabled,
        Ended::PasswordChanged,
    ] {
        assert!(ended.reason().len() <= 123, "a close reason fits a frame");
    }
}

#[test]
fn pruning_removes_exactly_the_sessions_that_can_never_be_good_again() {
    let mut a = Accounts::default();
    let alice = Uuid::from_u128(3);
    let bob = Uuid::from_u128(4);
    let session = |hash: &str, user_id, expires_at| {
        Op::SessionCreate(NewSession {
            hash: hash.into(),
            user_id,
            expires_at: Timestamp(expires_at),
        })
    };
    run(
        &mut a,
        1,
        vec![
            Op::UserCreate(new_user(1, "root", Role::Admin)),
            Op::UserCreate(new_user(3, "alice", Role::Member)),
            Op::UserCreate(new_user(4, "bob", Role::Member)),
            session("logged-out", alice, 50_000),
            session("expired", alice, 3_000),
            session("before-password", bob, 50_000),
            session("live", alice, 50_000),
            session("disabled-user", bob, 50_000),
        ],
    );
    run(
        &mut a,
        9,
        vec![
            Op::SessionEnd {
                hash: "logged-out".into(),
            },
            Op::UserUpdate(UserUpdate {
                id: bob,
                password_hash: Some("new".into()),
                ..Default::default()
            }),
        ],
    );
    // After the password change: bob's new session, then bob disabled
    // (enabling him again restores it, so it stays).
    run(
        &mut a,
        11,
        vec![
            session("after-password", bob, 50_000),
            Op::UserUpdate(UserUpdate {
                id: bob,
                disabled: Some(true),
                ..Default::default()
            }),
        ],
    );
    let before = Timestamp(3_000);
    let mut gone = a.prunable_sessions(before);
    gone.sort_unstable();
    assert_eq!(
        gone,
        vec!["before-password", "disabled-user", "expired", "logged-out"],
        "`disabled-user` was made before bob's password change"
    );
    let mut changes = AccountChanges::default();
    let outcome = a.apply(
        13,
        before,
        AccountOp::PruneSessions { before },
        &mut changes,
    );
    assert_eq!(outcome, AccountOutcome::Pruned { sessions: 4 });
    assert_eq!(changes.removed_sessions.len(), 4);
    let left: BTreeSet<&str> = a.all_sessions().map(|s| s.hash.as_str()).collect();
    assert_eq!(left, BTreeSet::from(["after-password", "live"]));
    assert!(a.prunable_sessions(before).is_empty());
    // Nothing left to prune: a second pruning removes nothing.
    let again = run(&mut a, 14, vec![Op::PruneSessions { before }]);
    assert_eq!(again, vec![AccountOutcome::Pruned { sessions: 0 }]);
}

#[test]
fn replaying_a_pruned_session_with_the_log_after_it_prunes_it_again() {
    // A node that copied a peer's tables (which no longer hold a pruned
    // session) replays the entries from its snapshot on: the session's
    // creation brings it back, and the pruning after it removes it again.
    let entries = vec![
        Op::UserCreate(new_user(1, "root", Role::Admin)),
        Op::SessionCreate(NewSession {
            hash: "s".into(),
            user_id: Uuid::from_u128(1),
            expires_at: Timestamp(50_000),
        }),
        Op::SessionEnd { hash: "s".into() },
        Op::PruneSessions {
            before: Timestamp(1_000),
        },
    ];
    let mut peer = Accounts::default();
    run(&mut peer, 1, entries.clone());
    assert!(peer.session("s").is_none());
    let mut copied = peer.clone();
    run(&mut copied, 2, entries[1..].to_vec());
    assert_eq!(copied, peer);
}
