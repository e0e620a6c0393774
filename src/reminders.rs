//! Due reminders: every `due_reminder_interval` the leader reads, in its
//! own database, the cards due today or tomorrow (UTC, by its clock) that
//! have an assignee and no reminder for that due date yet, and proposes
//! `due_remind` for each (`task::notification`).
//!
//! The sweep only proposes; the applier decides, against the card and the
//! users at that entry, and refuses a second reminder for the same card
//! and due date. So a stale read, two leaders in a row sweeping the same
//! card, or a proposal retried after a leader change still ring the
//! assignee once. A follower proposes nothing; a cluster not yet at 0.5.0
//! refuses the kind at the version gate and the sweep waits.

use std::time::Duration;

use mysql_async::Pool;

use crate::accounts::{AccountsCache, Actor};
use crate::raft::{ConsensusError, RaftHandle};
use crate::task::{Command, Op, TaskId};
use crate::time::{Date, Timestamp};

/// `due_reminder_interval` unless configured.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// Cards reminded per sweep at most; the rest wait for the next sweep.
pub const BATCH: usize = 500;

const DAY_MS: i64 = 86_400_000;

/// Who reminds: named on the notification.
pub fn actor() -> Actor {
    Actor {
        id: "due-reminder".into(),
        name: "due-reminder".into(),
    }
}

/// The UTC days a reminder is for at `now`: today and tomorrow.
pub fn window(now: Timestamp) -> (Date, Date) {
    let today = now.millis().div_euclid(DAY_MS);
    (Date::from_days(today), Date::from_days(today + 1))
}

/// The command reminding the assignee of `task` that it is due on `due`.
pub fn remind(task: TaskId, due: Date, now: Timestamp) -> Command {
    Command {
        request_id: crate::task::new_request_id(),
        idempotency: None,
        at: now,
        actor: actor(),
        op: Op::DueRemind {
            task_id: task,
            due_date: due,
        },
    }
}

/// Whether `assignee` names a user a reminder could ring (the applier
/// decides; this only spares the log entries that would ring nobody, every
/// sweep, for a card assigned to a name that is no user's — or to anyone,
/// before this node has read the accounts).
fn rings_someone(accounts: Option<&crate::accounts::Accounts>, assignee: &str) -> bool {
    let name = assignee.trim().trim_start_matches('@').to_ascii_lowercase();
    accounts.is_some_and(|a| a.user_by_name(&name).is_some_and(|u| !u.disabled))
}

/// One sweep at `now`; returns how many reminders rang.
pub async fn sweep(
    raft: &RaftHandle,
    pool: &Pool,
    accounts: &AccountsCache,
    now: Timestamp,
) -> usize {
    let (today, tomorrow) = window(now);
    let due = match pool.get_conn().await {
        Ok(mut conn) => {
            crate::db::notifications::due_unreminded(&mut conn, today, tomorrow, BATCH).await
        }
        Err(e) => Err(e.into()),
    };
    let due = match due {
        Ok(due) => due,
        Err(e) => {
            tracing::warn!(error = %e, "due reminders: could not read the cards");
            return 0;
        }
    };
    let users = accounts.get();
    let mut rang = 0;
    for (task, date, assignee) in due {
        if !rings_someone(users.as_deref(), &assignee) {
            continue;
        }
        match raft.propose(remind(task, date, now)).await {
            Ok(applied) if applied.outcome.seq().is_some() => rang += 1,
            // Nobody to ring (no such user, not on the board) or rung.
            Ok(_) => {}
            Err(ConsensusError::ClusterTooOld(e)) => {
                tracing::info!(%e, "due reminders wait for every voter to run 0.5.0");
                return rang;
            }
            Err(e) => {
                tracing::warn!(error = %e, "due reminders stopped for this sweep");
                return rang;
            }
        }
    }
    rang
}

/// Runs for the node's life: a sweep every `every` while this node leads.
pub async fn run(raft: RaftHandle, pool: Pool, accounts: AccountsCache, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let status = raft.status();
        if status.removed || status.leader_id != status.node_id {
            continue;
        }
        let rang = sweep(&raft, &pool, &accounts, Timestamp::now()).await;
        if rang > 0 {
            tracing::info!(rang, "due reminders: assignees of cards due soon notified");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reminder_is_for_cards_due_today_or_tomorrow_in_utc() {
        let now = Timestamp(Date::new(2026, 12, 31).unwrap().days() * DAY_MS + DAY_MS - 1);
        assert_eq!(
            window(now),
            (
                Date::new(2026, 12, 31).unwrap(),
                Date::new(2027, 1, 1).unwrap()
            )
        );
    }

    #[test]
    fn a_card_assigned_to_no_user_is_not_proposed() {
        assert!(!rings_someone(None, "bo"), "accounts not read yet");
        let accounts = crate::accounts::Accounts::default();
        assert!(!rings_someone(Some(&accounts), "bo"));
    }

    #[test]
    fn the_sweep_proposes_a_reminder_for_the_card_and_its_due_date() {
        let task = TaskId::generate();
        let due = Date::new(2026, 12, 7).unwrap();
        let command = remind(task, due, Timestamp(0));
        assert_eq!(command.actor.id, "due-reminder");
        assert_eq!(
            command.op,
            Op::DueRemind {
                task_id: task,
                due_date: due
            }
        );
    }
}
