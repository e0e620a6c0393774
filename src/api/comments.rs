//! `/api/tasks/{id}/comments`, `/api/comments/{id}`: a card's thread.
//!
//! Who sees a comment is who sees its card: a user not on the card's board
//! gets 404 for its comments as for the card. Writes are commands through
//! Raft, checked here against this node's catalog first (a viewer gets
//! 403, someone else's comment 403) and decided again at apply
//! (`task::board::comments`), where the role and authorship at that entry
//! count. An edit or a deletion names the comment's task in its command,
//! which this node looks up (after a ReadIndex round if it does not hold
//! the comment yet).

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::error::ApiError;
use super::request::{self, Consistency};
use super::tasks::{committed_task, read_barrier, submit, visible_task};
use super::{auth, boards, AppState};
use crate::db::comments;
use crate::task::{validate, Comment, CommentId, NewComment, Op, Outcome, TaskId};
use crate::time::Timestamp;

const PAGE_DEFAULT: usize = 100;
const PAGE_MAX: usize = 500;

/// The body of `POST /api/tasks/{id}/comments` and `PATCH /api/comments/{id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CommentBody {
    body: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThreadQuery {
    limit: Option<usize>,
    cursor: Option<String>,
    #[serde(default)]
    consistency: Consistency,
}

fn task_id(path: &str) -> Result<TaskId, ApiError> {
    path.parse()
        .map_err(|_| ApiError::invalid("id", format!("`{path}` is not a task id (a UUID)")))
}

fn comment_id(path: &str) -> Result<CommentId, ApiError> {
    path.parse()
        .map_err(|_| ApiError::invalid("id", format!("`{path}` is not a comment id (a UUID)")))
}

fn etag(comment: &Comment) -> (header::HeaderName, String) {
    (header::ETAG, format!("\"{}\"", comment.version))
}

/// A page ends after a comment: `created_at` in milliseconds `~` its id.
fn parse_cursor(text: &str) -> Option<comments::After> {
    let (at, id) = text.split_once('~')?;
    Some((Timestamp(at.parse().ok()?), id.parse().ok()?))
}

/// `GET /api/tasks/{id}/comments`: the thread, oldest first, a page at a
/// time, with how many comments the task has.
pub async fn list(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<ThreadQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = task_id(&path)?;
    let limit = request::limit(query.limit, PAGE_DEFAULT, PAGE_MAX)?;
    let after = query
        .cursor
        .as_deref()
        .map(|c| {
            parse_cursor(c)
                .ok_or_else(|| ApiError::invalid("cursor", "is not a cursor this server issued"))
        })
        .transpose()?;
    read_barrier(&state, query.consistency).await?;
    visible_task(&state, &auth::principal(&req), id).await?;
    let mut conn = state
        .pool
        .get_conn()
        .await
        .map_err(crate::db::DbError::from)?;
    let (thread, more) = comments::thread(&mut conn, id, after, limit).await?;
    let total = comments::counts(&mut conn, &[id])
        .await?
        .get(&id)
        .copied()
        .unwrap_or(0);
    let next = more
        .then(|| {
            thread
                .last()
                .map(|c| format!("{}~{}", c.created_at.0, c.id))
        })
        .flatten();
    Ok(HttpResponse::Ok().json(json!({
        "comments": thread,
        "next_cursor": next,
        "total": total,
    })))
}

/// `POST /api/tasks/{id}/comments` `{body}`: 201 with the comment.
pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let task = task_id(&path)?;
    let body = request::json_body(&req, payload).await?;
    let draft: CommentBody = request::from_json(body.clone())?;
    let text = validate::comment_body(&draft.body)?;
    let principal = auth::principal(&req);
    if let Some(current) = committed_task(&state, task).await? {
        boards::checked(&state, |catalog| {
            boards::editor(boards::role_on(catalog, &principal, &current.board_id)?)
        })
        .await?;
    }
    let op = Op::CommentAdd(NewComment {
        id: CommentId::generate(),
        task_id: task,
        body: text,
    });
    propose(&state, &req, op, Some(&body)).await
}

/// `PATCH /api/comments/{id}` `{body}`: its author only; `If-Match` with
/// its version makes the edit conditional (412 on another version).
pub async fn update(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id = comment_id(&path)?;
    let body = request::json_body(&req, payload).await?;
    let draft: CommentBody = request::from_json(body.clone())?;
    let text = validate::comment_body(&draft.body)?;
    let expected_version = request::if_match(&req)?;
    let principal = auth::principal(&req);
    let current = visible_comment(&state, &principal, id).await?;
    if current.author.id != principal.actor.id {
        return Err(ApiError::Forbidden(format!(
            "only the author of comment {id} can edit it"
        )));
    }
    let op = Op::CommentEdit {
        id,
        task_id: current.task_id,
        expected_version,
        body: text,
    };
    propose(&state, &req, op, Some(&body)).await
}

/// `DELETE /api/comments/{id}`: its author, or an admin of its board.
pub async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = comment_id(&path)?;
    let principal = auth::principal(&req);
    let current = visible_comment(&state, &principal, id).await?;
    let op = Op::CommentDelete {
        id,
        task_id: current.task_id,
    };
    propose(&state, &req, op, None).await
}

/// The comment `id` as this node holds it (after a ReadIndex round if it
/// does not yet), if the caller may see its card; else 404.
async fn visible_comment(
    state: &AppState,
    principal: &crate::accounts::Principal,
    id: CommentId,
) -> Result<Comment, ApiError> {
    let found = match held_comment(state, id).await? {
        Some(comment) => Some(comment),
        None => {
            state.raft.read_barrier().await?;
            held_comment(state, id).await?
        }
    };
    let missing = || ApiError::NotFound(format!("no comment with id {id}"));
    let comment = found.ok_or_else(missing)?;
    boards::role_on(&state.rows.catalog(), principal, &comment.board_id).map_err(|_| missing())?;
    Ok(comment)
}

async fn held_comment(state: &AppState, id: CommentId) -> Result<Option<Comment>, ApiError> {
    let mut conn = state
        .pool
        .get_conn()
        .await
        .map_err(crate::db::DbError::from)?;
    Ok(comments::by_ids(&mut conn, vec![id.to_string().into()])
        .await?
        .pop())
}

async fn propose(
    state: &AppState,
    req: &HttpRequest,
    op: Op,
    body: Option<&serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    let applied = submit(state, req, op, request::idempotency(req, body)?).await?;
    let seq = applied.outcome.seq();
    let (comment, deleted) = match applied.outcome {
        Outcome::Comment {
            comment, deleted, ..
        } => (comment, deleted),
        Outcome::Rejected { rejection } => return Err(rejection.into()),
        _ => {
            return Err(ApiError::Internal(
                "a comment command came to another command's outcome".into(),
            ))
        }
    };
    let status = match (&req.method().as_str(), deleted) {
        (_, true) => StatusCode::NO_CONTENT,
        (&"POST", false) => StatusCode::CREATED,
        _ => StatusCode::OK,
    };
    let mut response = HttpResponse::build(status);
    if let Some(seq) = seq {
        response.insert_header(("X-Taskraft-Seq", seq.to_string()));
    }
    if applied.replayed {
        response.insert_header(("Idempotent-Replayed", "true"));
    }
    if deleted {
        return Ok(response.finish());
    }
    if status == StatusCode::CREATED {
        response.insert_header((header::LOCATION, format!("/api/comments/{}", comment.id)));
    }
    Ok(response.insert_header(etag(&comment)).json(comment))
}
