//! Installing one page of a peer's committed rows: checked against where
//! MySQL is, then committed in one transaction with the applied index.

use std::collections::BTreeSet;

use mysql_async::Conn;

use super::super::batch::{
    insert_events, insert_keys, transaction, write_checklists, write_comments, write_tails,
    write_tasks,
};
use super::CatchupError;
use crate::db::catchup::{EventRowError, Page, PageRequest};
use crate::db::rows::EventRecord;
use crate::db::sql::Sql;
use crate::db::{column_tails, AppliedState};
use crate::task::catalog::CatalogDirty;
use crate::task::{
    Catalog, Checklist, ChecklistId, ColumnTails, Comment, CommentId, Event, Replayed, Task, TaskId,
};

/// Why a peer's page cannot be installed here.
#[derive(Debug, thiserror::Error)]
pub enum PageMisfit {
    #[error(
        "the peer's page does not fit: it ends at entry {upto} (applied here: {applied}, asked \
         up to {asked})"
    )]
    End { upto: u64, applied: u64, asked: u64 },
    #[error("the peer's page does not fit: event seq {seq} follows seq {after}")]
    Gap { seq: u64, after: u64 },
    #[error(
        "the peer's page does not fit: event {seq} is from entry {index}, outside ({applied}, \
         {upto}]"
    )]
    EventOutside {
        seq: u64,
        index: u64,
        applied: u64,
        upto: u64,
    },
    #[error(
        "the peer's page does not fit: idempotency key from entry {index} is outside the page"
    )]
    KeyOutside { index: u64 },
    #[error(
        "the peer's page does not fit: the cluster version of entry {index} is outside the page \
         or not a version"
    )]
    VersionOutside { index: u64 },
    #[error("the peer's page: {0}")]
    Event(#[from] EventRowError),
}

/// Checks `page` against where MySQL is, and commits it in one
/// transaction. Returns the events it added, for live subscribers.
pub async fn install(
    conn: &mut Conn,
    local: AppliedState,
    request: PageRequest,
    upto_term: u64,
    page: &Page,
    budget: usize,
) -> Result<Vec<Event>, CatchupError> {
    let events = check(local, request, page)?;
    let board_tails = column_tails(conn).await?;
    let catalog = crate::db::catalog::load_rows(conn, crate::db::catalog::Cards::Skip).await?;
    let folded = fold(&events, local.last_seq, board_tails, catalog)?;
    let last_seq = page.events.last().map_or(local.last_seq, |e| e.seq);

    let mut sql = Sql::new();
    sql.push("START TRANSACTION")
        .end()
        .push("UPDATE raft_applied SET applied_index = IF(applied_index = ")
        .uint(local.applied_index)
        .push(" AND last_seq = ")
        .uint(local.last_seq)
        .push(", ")
        .uint(page.upto)
        .push(", NULL), applied_term = ")
        .uint(upto_term)
        .push(", last_seq = ")
        .uint(last_seq)
        // The stored cards per column are not kept here: counted again
        // at the applier's next start (`db::catalog::load`).
        .push(", counts_index = NULL WHERE id = 1")
        .end();
    let rows: Vec<EventRecord<'_>> = events
        .iter()
        .zip(&page.events)
        .map(|(event, row)| EventRecord::of(event, &row.payload))
        .collect();
    insert_events(&mut sql, budget, &rows);
    write_tasks(&mut sql, budget, &folded.upserts, &folded.deletes);
    write_comments(
        &mut sql,
        budget,
        &folded.comment_upserts,
        &folded.comment_deletes,
    );
    write_checklists(
        &mut sql,
        budget,
        &folded.checklist_upserts,
        &folded.checklist_deletes,
    );
    crate::db::notifications::write(&mut sql, &events);
    crate::db::webhooks::write(&mut sql, &events);
    insert_keys(&mut sql, budget, &page.keys);
    if let Some(accounts) = &page.accounts {
        crate::db::accounts::replace_all(&mut sql, budget, accounts);
    }
    for (index, version) in &page.cluster_versions {
        let outside = *index <= local.applied_index || *index > page.upto;
        if outside || version.parse::<crate::version::Version>().is_err() {
            return Err(PageMisfit::VersionOutside { index: *index }.into());
        }
        sql.end()
            .push("INSERT INTO cluster_versions (raft_index, version) VALUES (")
            .uint(*index)
            .push(", ")
            .ascii(version)
            .push(")")
            .end();
    }
    if folded.tails != board_tails {
        write_tails(&mut sql, folded.tails);
    }
    let (catalog, dirty) = &folded.catalog;
    crate::db::catalog::write(&mut sql, catalog, dirty);
    sql.push("COMMIT");
    transaction(conn, sql, budget).await?;
    crate::crash::point("catchup_after_page");
    Ok(events)
}

/// What the page's events do to the tasks they touch: each task as its
/// last event left it, and the column tails after them. The domain's fold
/// ([`Replayed`]) from the tasks' absence: a touched task it does not end
/// with was deleted.
pub(crate) struct Folded {
    pub upserts: Vec<Task>,
    pub deletes: Vec<TaskId>,
    pub tails: ColumnTails,
    /// The catalog after the page, with the rows it changed.
    pub catalog: (Catalog, CatalogDirty),
    /// The comments the page's events leave, and those they delete (the
    /// comments of `deletes` go with their tasks in `write_tasks`).
    pub comment_upserts: Vec<Comment>,
    pub comment_deletes: Vec<CommentId>,
    /// Likewise the checklists.
    pub checklist_upserts: Vec<Checklist>,
    pub checklist_deletes: Vec<ChecklistId>,
}

pub(crate) fn fold(
    events: &[Event],
    last_seq: u64,
    tails: ColumnTails,
    catalog: Catalog,
) -> Result<Folded, PageMisfit> {
    let mut replayed = Replayed {
        tasks: Default::default(),
        tails,
        last_seq,
        catalog,
        comments: Default::default(),
        checklists: Default::default(),
    };
    let mut touched = BTreeSet::new();
    let mut touched_comments = BTreeSet::new();
    let mut touched_checklists = BTreeSet::new();
    for event in events {
        let after = replayed.last_seq;
        // The fold refuses only an event that is not next in seq order.
        if replayed.push(event).is_err() {
            return Err(PageMisfit::Gap {
                seq: event.seq,
                after,
            });
        }
        // A comment's event names its task but leaves the task as it is.
        if event.kind.is_task() {
            touched.extend(event.task_id);
        }
        touched_comments.extend(event.comment.as_ref().map(|c| c.id));
        touched_checklists.extend(event.checklist.as_ref().map(|c| c.id));
    }
    let comment_deletes = touched_comments
        .into_iter()
        .filter(|id| !replayed.comments.contains_key(id))
        .collect();
    let checklist_deletes = touched_checklists
        .into_iter()
        .filter(|id| !replayed.checklists.contains_key(id))
        .collect();
    let deletes = touched
        .into_iter()
        .filter(|id| !replayed.tasks.contains_key(id))
        .collect();
    let dirty = replayed.catalog.take_dirty();
    Ok(Folded {
        upserts: replayed.tasks.into_values().collect(),
        deletes,
        tails: replayed.tails,
        catalog: (replayed.catalog, dirty),
        comment_upserts: replayed.comments.into_values().collect(),
        comment_deletes,
        checklist_upserts: replayed.checklists.into_values().collect(),
        checklist_deletes,
    })
}

/// The page must continue exactly where MySQL is: dense seqs, entries in
/// the range asked for, and progress.
pub(super) fn check(
    local: AppliedState,
    request: PageRequest,
    page: &Page,
) -> Result<Vec<Event>, PageMisfit> {
    if page.upto <= local.applied_index || page.upto > request.upto {
        return Err(PageMisfit::End {
            upto: page.upto,
            applied: local.applied_index,
            asked: request.upto,
        });
    }
    let mut seq = local.last_seq;
    let mut index = local.applied_index;
    let mut events = Vec::with_capacity(page.events.len());
    for row in &page.events {
        if row.seq != seq + 1 {
            return Err(PageMisfit::Gap {
                seq: row.seq,
                after: seq,
            });
        }
        if row.raft_index < index.max(local.applied_index + 1) || row.raft_index > page.upto {
            return Err(PageMisfit::EventOutside {
                seq: row.seq,
                index: row.raft_index,
                applied: local.applied_index,
                upto: page.upto,
            });
        }
        seq = row.seq;
        index = row.raft_index;
        events.push(row.event()?);
    }
    if let Some(key) = page
        .keys
        .iter()
        .find(|k| k.raft_index <= local.applied_index || k.raft_index > page.upto)
    {
        return Err(PageMisfit::KeyOutside {
            index: key.raft_index,
        });
    }
    Ok(events)
}
