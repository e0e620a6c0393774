//! `/api/tasks`: create, read, list, update, delete, history.
//!
//! Writes are stamped (request id, time, task id) and proposed; the answer
//! comes once this node has applied the entry. Reads wait for a ReadIndex
//! round first unless `?consistency=local`.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::request::{self, Consistency};
use super::{auth, boards, AppState};
use crate::accounts::Role;
use crate::db::as_of;
use crate::db::queries::{self, Cursor, TaskFilter};
use crate::db::search::{self, RankCursor, Scope, Words};
use crate::task::{
    validate, BoardId, ColumnId, Command, NewTask, Op, Outcome, Priority, Status, Task, TaskId,
    TaskPatch, DEFAULT_BOARD,
};
use crate::time::{Date, Timestamp};

const LIST_LIMIT_DEFAULT: usize = 100;
const LIST_LIMIT_MAX: usize = 1000;
const SEARCH_LIMIT_DEFAULT: usize = 20;
const SEARCH_LIMIT_MAX: usize = 100;

/// The body of `POST /api/tasks`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateBody {
    id: Option<TaskId>,
    title: String,
    #[serde(default)]
    description: String,
    status: Option<Status>,
    position: Option<f64>,
    priority: Option<Priority>,
    assignee: Option<String>,
    #[serde(default)]
    labels: Vec<String>,
    due_date: Option<Date>,
    board_id: Option<BoardId>,
    column_id: Option<ColumnId>,
}

fn task_id(path: &str) -> Result<TaskId, ApiError> {
    path.parse()
        .map_err(|_| ApiError::invalid("id", format!("`{path}` is not a task id (a UUID)")))
}

/// Reads run after a ReadIndex round unless the client asked for local.
pub(super) async fn read_barrier(
    state: &AppState,
    consistency: Consistency,
) -> Result<(), ApiError> {
    if consistency == Consistency::Linearizable {
        state.raft.read_barrier().await?;
    }
    Ok(())
}

async fn propose(
    state: &AppState,
    req: &HttpRequest,
    op: Op,
    body: Option<&Value>,
) -> Result<HttpResponse, ApiError> {
    let applied = submit(state, req, op, request::idempotency(req, body)?).await?;
    respond(state, applied.outcome, applied.replayed)
}

/// Proposes `op` as the request's caller, now, under `idempotency`, and
/// waits until this node applied it: every write of the api goes through
/// here (counted in `taskraft_proposals_total`). A refusal of the log is
/// still an `Ok` outcome (`Outcome::Rejected`); not knowing is an error.
pub(super) async fn submit(
    state: &AppState,
    req: &HttpRequest,
    op: Op,
    idempotency: Option<crate::task::Idempotency>,
) -> Result<crate::task::Applied, ApiError> {
    let command = Command {
        request_id: crate::task::new_request_id(),
        idempotency,
        at: Timestamp::now(),
        actor: super::auth::principal(req).actor,
        op,
    };
    let applied = state.raft.propose(command).await;
    crate::metrics::proposal(match &applied {
        Ok(a) if matches!(a.outcome, Outcome::Rejected { .. }) => "rejected",
        Ok(_) => "ok",
        Err(_) => "failed",
    });
    match applied {
        Ok(applied) => Ok(applied),
        Err(e @ crate::raft::ConsensusError::Timeout(_)) => Err(ApiError::WriteTimeout(e)),
        Err(e) => Err(e.into()),
    }
}

/// The HTTP form of an outcome.
fn respond(state: &AppState, outcome: Outcome, replayed: bool) -> Result<HttpResponse, ApiError> {
    let seq = outcome.seq();
    let (status, task) = match outcome {
        Outcome::Created { task, .. } => (StatusCode::CREATED, Some(task)),
        Outcome::Updated { task, .. } | Outcome::Unchanged { task, .. } => {
            (StatusCode::OK, Some(task))
        }
        Outcome::Deleted { .. } => (StatusCode::NO_CONTENT, None),
        Outcome::Rejected { rejection } => return Err(rejection.into()),
        // Only the leader proposes expiries, never through the api.
        Outcome::KeysExpired { .. } => {
            return Err(ApiError::Internal(
                "a key expiry is not a task request".into(),
            ))
        }
        Outcome::Account { .. }
        | Outcome::Recorded { .. }
        | Outcome::Board { .. }
        | Outcome::Column { .. }
        | Outcome::Member { .. }
        | Outcome::Comment { .. }
        | Outcome::Checklist { .. }
        | Outcome::Webhook { .. } => {
            return Err(ApiError::Internal(
                "a task command came to another command's outcome".into(),
            ))
        }
    };
    let mut response = HttpResponse::build(status);
    if let Some(seq) = seq {
        response.insert_header(("X-Taskraft-Seq", seq.to_string()));
    }
    if replayed {
        response.insert_header(("Idempotent-Replayed", "true"));
    }
    match task {
        Some(task) => {
            if status == StatusCode::CREATED {
                response.insert_header((header::LOCATION, format!("/api/tasks/{}", task.id)));
            }
            response.insert_header(etag(&task));
            // Over its column's WIP limit: accepted, and reported.
            let catalog = state.rows.catalog();
            let column = task.column();
            let cards = catalog.counts(&column).live;
            let limit = catalog.column(&column).and_then(|c| c.wip_limit);
            match limit {
                Some(limit) if !task.archived && cards > u64::from(limit) => {
                    let mut body = serde_json::to_value(&task)
                        .map_err(|e| ApiError::Internal(e.to_string()))?;
                    body["wip_breach"] =
                        json!({ "column_id": column, "cards": cards, "limit": limit });
                    Ok(response.json(body))
                }
                _ => Ok(response.json(task)),
            }
        }
        None => Ok(response.finish()),
    }
}

fn etag(task: &Task) -> (header::HeaderName, String) {
    (header::ETAG, format!("\"{}\"", task.version))
}

pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = request::json_body(&req, payload).await?;
    let draft: CreateBody = request::from_json(body.clone())?;
    let mut new = NewTask {
        id: draft.id.unwrap_or_else(TaskId::generate),
        title: draft.title,
        description: draft.description,
        status: draft.status.unwrap_or(Status::Todo),
        position: draft.position,
        priority: draft.priority.unwrap_or(Priority::Medium),
        assignee: draft.assignee,
        labels: draft.labels,
        due_date: draft.due_date,
        board_id: draft.board_id,
        column_id: draft.column_id,
    };
    validate::new_task(&mut new)?;
    let principal = auth::principal(&req);
    boards::checked(&state, |catalog| {
        let board = match (new.column_id, new.board_id) {
            (Some(column), _) => catalog
                .column(&column)
                .map(|c| c.board_id)
                .ok_or_else(|| ApiError::NotFound(format!("no column {column}")))?,
            (None, Some(board)) => board,
            (None, None) => crate::task::DEFAULT_BOARD,
        };
        boards::editor(boards::role_on(catalog, &principal, &board)?)
    })
    .await?;
    // Fault tests only (the `failpoints` build): propose the create as a
    // kind release builds cannot decode (see `crate::version`).
    #[cfg(feature = "failpoints")]
    if crate::crash::switch("api_propose_future_kind") {
        return propose(&state, &req, Op::FutureCreate(new), Some(&body)).await;
    }
    propose(&state, &req, Op::Create(new), Some(&body)).await
}

pub async fn update(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id = task_id(&path)?;
    let body = request::json_body(&req, payload).await?;
    let mut patch: TaskPatch = request::from_json(body.clone())?;
    validate::patch(&mut patch)?;
    let principal = auth::principal(&req);
    if let Some(current) = held_task(&state, id).await? {
        boards::checked(&state, |catalog| {
            boards::editor(boards::role_on(catalog, &principal, &current.board_id)?)?;
            let target = match (patch.column_id, patch.board_id) {
                (Some(column), _) => catalog.column(&column).map(|c| c.board_id),
                (None, board) => board,
            };
            match target.filter(|b| *b != current.board_id) {
                Some(target) => boards::editor(boards::role_on(catalog, &principal, &target)?),
                None => Ok(()),
            }
        })
        .await?;
    }
    let op = Op::Update {
        id,
        expected_version: request::if_match(&req)?,
        patch,
    };
    propose(&state, &req, op, Some(&body)).await
}

pub async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = task_id(&path)?;
    let principal = auth::principal(&req);
    // Only a board's admins delete its cards (a site admin is admin on
    // every board); so the card's board is looked up after a ReadIndex
    // round when this node does not hold it yet. Not held even then: the
    // log answers (404, or a retry's first answer under its key).
    if let Some(current) = held_task(&state, id).await? {
        boards::checked(&state, |catalog| {
            boards::board_admin(boards::role_on(catalog, &principal, &current.board_id)?)
        })
        .await?;
    }
    let op = Op::Delete {
        id,
        expected_version: request::if_match(&req)?,
    };
    propose(&state, &req, op, None).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadQuery {
    #[serde(default)]
    consistency: Consistency,
}

pub async fn get(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<ReadQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = task_id(&path)?;
    read_barrier(&state, query.consistency).await?;
    let task = visible_task(&state, &auth::principal(&req), id).await?;
    Ok(HttpResponse::Ok().insert_header(etag(&task)).json(task))
}

/// The task `id` as this node has committed it, if it has, without a
/// ReadIndex round (a write checked against the card's board looks again
/// after one: [`held_task`]).
pub(super) async fn committed_task(state: &AppState, id: TaskId) -> Result<Option<Task>, ApiError> {
    Ok(match state.rows.get(&id) {
        Some(task) => Some((*task).clone()),
        None => queries::task(&state.pool, id).await?,
    })
}

/// The task `id` as this node holds it, after a ReadIndex round if it
/// does not yet: a write checked against its board is never let through
/// unchecked because this node lagged the card's creation.
async fn held_task(state: &AppState, id: TaskId) -> Result<Option<Task>, ApiError> {
    if let Some(task) = committed_task(state, id).await? {
        return Ok(Some(task));
    }
    state.raft.read_barrier().await?;
    committed_task(state, id).await
}

/// The task `id` as committed, if it is on a board `principal` is on
/// (else 404, as if it did not exist). Call after the read's barrier.
pub(super) async fn visible_task(
    state: &AppState,
    principal: &crate::accounts::Principal,
    id: TaskId,
) -> Result<Task, ApiError> {
    // After a barrier the applier has committed, and cached, at least
    // everything acknowledged before this read began.
    let task = committed_task(state, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no task with id {id}")))?;
    let catalog = state.rows.catalog();
    if catalog
        .role(&task.board_id, &principal.actor.id, principal.role)
        .is_none()
    {
        return Err(ApiError::NotFound(format!("no task with id {id}")));
    }
    Ok(task)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    status: Option<Status>,
    assignee: Option<String>,
    label: Option<String>,
    priority: Option<Priority>,
    q: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
    /// The tasks as they were at this time (RFC 3339): read-only, folded
    /// from the event table (`db::as_of`).
    as_of: Option<String>,
    #[serde(default)]
    consistency: Consistency,
}

pub async fn list(
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    if let Some(time) = &query.as_of {
        return list_as_of(&state, &query, time).await;
    }
    let limit = request::limit(query.limit, LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX)?;
    let after = query
        .cursor
        .as_deref()
        .map(|c| {
            c.parse::<Cursor>()
                .map_err(|_| ApiError::invalid("cursor", "is not a cursor this server issued"))
        })
        .transpose()?;
    let text = request::nonempty(query.q.as_deref())
        .map(|q| words(&q))
        .transpose()?;
    let filter = TaskFilter {
        status: query.status,
        assignee: request::nonempty(query.assignee.as_deref()),
        label: request::nonempty(query.label.as_deref()),
        priority: query.priority,
        text,
        after,
        limit,
        ..TaskFilter::default()
    };
    read_barrier(&state, query.consistency).await?;
    let catalog = state.rows.catalog();
    let page = queries::tasks(&state.pool, &state.planner, &filter, |status| {
        let ids: Vec<ColumnId> = catalog
            .columns_of(&DEFAULT_BOARD)
            .into_iter()
            .filter(|c| c.category == status)
            .map(|c| c.id)
            .collect();
        let cards = ids.iter().map(|id| catalog.counts(id).live).sum();
        (ids, cards)
    })
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("X-Taskraft-Seq", page.last_seq.to_string()))
        .json(json!({
            "tasks": page.tasks,
            "next_cursor": page.next.map(|c| c.to_string()),
            "last_seq": page.last_seq,
        })))
}

/// The searchable words of `q`, or a 400 saying why there are none.
pub(super) fn words(q: &str) -> Result<Words, ApiError> {
    Words::parse(q).map_err(|e| ApiError::invalid("q", e.to_string()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    q: Option<String>,
    status: Option<Status>,
    assignee: Option<String>,
    label: Option<String>,
    priority: Option<Priority>,
    /// Only archived cards (`true`) or only cards on their boards (`false`).
    archived: Option<bool>,
    /// Only this board's cards (else every board the caller is on).
    board: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
    #[serde(default)]
    consistency: Consistency,
}

/// `GET /api/search?q=`: the tasks with every word of `q` in their title
/// or description, most relevant first (`db::search`), paged by cursor.
pub async fn search(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<SearchQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let principal = auth::principal(&req);
    let board = query
        .board
        .as_deref()
        .map(|b| {
            b.parse::<BoardId>()
                .map_err(|_| ApiError::invalid("board", format!("`{b}` is not a board id")))
        })
        .transpose()?;
    if let Some(board) = &board {
        boards::checked(&state, |catalog| {
            boards::role_on(catalog, &principal, board)
        })
        .await?;
    }
    let q = query.q.as_deref().map(str::trim).unwrap_or("");
    if q.is_empty() {
        return Err(ApiError::invalid(
            "q",
            "is required: the words to search for",
        ));
    }
    let words = words(q)?;
    let limit = request::limit(query.limit, SEARCH_LIMIT_DEFAULT, SEARCH_LIMIT_MAX)?;
    let after = query
        .cursor
        .as_deref()
        .map(|c| {
            c.parse::<RankCursor>()
                .map_err(|_| ApiError::invalid("cursor", "is not a cursor this server issued"))
        })
        .transpose()?;
    if let Some(cursor) = &after {
        if !cursor.plan.fits(&words) || !cursor.comments.fits(&words) {
            return Err(ApiError::invalid(
                "cursor",
                "is not a cursor of this query's search",
            ));
        }
    }
    read_barrier(&state, query.consistency).await?;
    // The boards the caller may see are part of the query (so a page is
    // full while more visible hits exist): the one asked for (checked
    // above), or every board the caller is on; a site admin sees all.
    let catalog = state.rows.catalog();
    let scope = match board {
        Some(board) => Scope::Boards(vec![board]),
        None if principal.role == Role::Admin => Scope::All,
        None => Scope::Boards(
            catalog
                .boards()
                .filter(|b| {
                    catalog
                        .role(&b.id, &principal.actor.id, principal.role)
                        .is_some()
                })
                .map(|b| b.id)
                .collect(),
        ),
    };
    let filter = search::SearchFilter {
        status: query.status,
        assignee: request::nonempty(query.assignee.as_deref()),
        label: request::nonempty(query.label.as_deref()),
        priority: query.priority,
        archived: query.archived,
    };
    // When every word is common, the newest tasks searched hold about as
    // many of this scope's matches whatever share of the cards it has.
    let visible = catalog.share_of_cards(match &scope {
        Scope::All => None,
        Scope::Boards(boards) => Some(boards),
    });
    let page = search::search(
        &state.pool,
        &state.planner,
        visible,
        &words,
        &scope,
        &filter,
        search::Page {
            after: after.as_ref(),
            limit,
        },
    )
    .await?;
    let results: Vec<Value> = page
        .hits
        .iter()
        .map(|hit| {
            json!({
                "task": hit.task,
                "score": hit.score,
                // "card": its title or description holds the words;
                // "comments": only one of its comments does.
                "matched": if hit.in_comments { "comments" } else { "card" },
            })
        })
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header(("X-Taskraft-Seq", page.last_seq.to_string()))
        .json(json!({
            "results": results,
            "words": words.as_slice(),
            "next_cursor": page.next.map(|c| c.to_string()),
            "last_seq": page.last_seq,
            // "all": every task was searched; "newest": every word is
            // common, and only the newest `window` tasks were (a rarer
            // word searches them all). The same of the comments.
            "searched": searched(&page.plan, &page.comments),
        })))
}

/// What a search read: `{"tasks": "all"}` or `{"tasks": "newest",
/// "window": N}`, and `"comments"` the same way (`"comment_window"`).
fn searched(plan: &search::Plan, comments: &search::CommentPlan) -> Value {
    let mut searched = match plan {
        search::Plan::Fulltext { .. } => json!({ "tasks": "all" }),
        search::Plan::Newest { window, .. } => json!({ "tasks": "newest", "window": window }),
    };
    match comments {
        search::CommentPlan::Index { .. } => searched["comments"] = json!("all"),
        search::CommentPlan::Newest { window, .. } => {
            searched["comments"] = json!("newest");
            searched["comment_window"] = json!(window);
        }
    }
    searched
}

/// `?as_of=TIME`: the whole board at TIME, in one answer (its size is
/// bounded by the events the fold may read, `db::as_of::MAX_EVENTS`).
async fn list_as_of(
    state: &AppState,
    query: &ListQuery,
    time: &str,
) -> Result<HttpResponse, ApiError> {
    let time = Timestamp::parse_rfc3339(time).ok_or_else(|| {
        ApiError::invalid(
            "as_of",
            "is not an RFC 3339 time (e.g. 2026-11-24T10:00:00Z or 2026-11-24T11:00:00+01:00)",
        )
    })?;
    let others = [
        ("status", query.status.is_some()),
        ("assignee", query.assignee.is_some()),
        ("label", query.label.is_some()),
        ("priority", query.priority.is_some()),
        ("q", query.q.is_some()),
        ("limit", query.limit.is_some()),
        ("cursor", query.cursor.is_some()),
    ];
    if let Some((name, _)) = others.iter().find(|(_, given)| *given) {
        return Err(ApiError::invalid(
            name,
            "cannot be combined with as_of, which answers the whole board at that time",
        ));
    }
    read_barrier(state, query.consistency).await?;
    let board = as_of::tasks_as_of(&state.pool, time)
        .await
        .map_err(|e| match e {
            as_of::AsOfError::TooFar { .. } => ApiError::Unprocessable {
                code: "as_of_too_far",
                message: e.to_string(),
            },
            as_of::AsOfError::Db(e) => e.into(),
        })?;
    // The list's board: the default board's cards, not archived.
    let tasks: Vec<&Task> = board
        .tasks
        .iter()
        .filter(|t| t.board_id.is_default() && !t.archived)
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header(("X-Taskraft-Seq", board.last_seq.to_string()))
        .json(json!({
            "tasks": tasks,
            "next_cursor": null,
            "last_seq": board.last_seq,
            "as_of": time,
        })))
}

pub async fn history(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<ReadQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = task_id(&path)?;
    read_barrier(&state, query.consistency).await?;
    let events = queries::task_events(&state.pool, id).await?;
    // The card's history is its board's: it is where the card is now (or
    // was when deleted).
    let principal = auth::principal(&req);
    let hidden = events
        .last()
        .and_then(|e| e.board_id())
        .is_some_and(|board| {
            state
                .rows
                .catalog()
                .role(&board, &principal.actor.id, principal.role)
                .is_none()
        });
    if events.is_empty() || hidden {
        return Err(ApiError::NotFound(format!(
            "no task with id {id} ever existed"
        )));
    }
    Ok(HttpResponse::Ok().json(json!({ "events": events })))
}
