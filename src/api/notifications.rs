//! `/api/notifications`: the caller's bell.
//!
//! A user sees only their own notifications. The list is read from this
//! node's projection (`?consistency=linearizable` waits for the leader's
//! commit first); marking read is a command through Raft, answered once
//! this node applied it, with the unread count after it.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::error::ApiError;
use super::request::{self, Consistency};
use super::tasks::{read_barrier, submit};
use super::{auth, AppState};
use crate::db::notifications;
use crate::task::{Op, Outcome, ReadMark};

const PAGE_DEFAULT: usize = 50;
const PAGE_MAX: usize = 200;
/// Ids one `{ids}` may name.
const IDS_MAX: usize = 500;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    limit: Option<usize>,
    /// The id the previous page ended at (newer ones came before).
    cursor: Option<String>,
    #[serde(default)]
    consistency: Consistency,
}

/// The body of `POST /api/notifications/read`: every one up to `upto`
/// (an id), and/or those listed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReadBody {
    #[serde(default)]
    upto: Option<u64>,
    #[serde(default)]
    ids: Vec<u64>,
}

/// `GET /api/notifications`: the caller's, newest first, with the unread
/// count and the cursor of the next page.
pub async fn list(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit.unwrap_or(PAGE_DEFAULT);
    if !(1..=PAGE_MAX).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            format!("must be 1 to {PAGE_MAX}"),
        ));
    }
    let before = query
        .cursor
        .as_deref()
        .map(|c| {
            c.parse::<u64>()
                .map_err(|_| ApiError::invalid("cursor", "is not a cursor this server issued"))
        })
        .transpose()?;
    read_barrier(&state, query.consistency).await?;
    let user = auth::principal(&req).actor.id;
    let mut conn = state
        .pool
        .get_conn()
        .await
        .map_err(crate::db::DbError::from)?;
    let (page, more) = notifications::page(&mut conn, &user, before, limit).await?;
    let unread = notifications::unread(&mut conn, &user).await?;
    let next = more
        .then(|| page.last().map(|n| n.id.to_string()))
        .flatten();
    Ok(HttpResponse::Ok().json(json!({
        "notifications": page,
        "unread": unread,
        "next_cursor": next,
    })))
}

/// `POST /api/notifications/read` `{upto}` or `{ids: […]}`: marks the
/// caller's read; answers `{unread}`.
pub async fn read(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = request::json_body(&req, payload).await?;
    let draft: ReadBody = request::from_json(body)?;
    if draft.upto.is_none() && draft.ids.is_empty() {
        return Err(ApiError::invalid("upto", "give `upto` (an id) or `ids`"));
    }
    if draft.ids.len() > IDS_MAX {
        return Err(ApiError::invalid("ids", format!("at most {IDS_MAX}")));
    }
    let user = auth::principal(&req).actor.id;
    let mut ids = draft.ids;
    ids.sort_unstable();
    ids.dedup();
    let op = Op::NotificationsRead(ReadMark {
        user_id: user.clone(),
        upto: draft.upto,
        ids,
    });
    let applied = submit(&state, &req, op, None).await?;
    let seq = match applied.outcome {
        Outcome::Recorded { seq } => seq,
        Outcome::Rejected { rejection } => return Err(rejection.into()),
        _ => {
            return Err(ApiError::Internal(
                "a read mark came to another command's outcome".into(),
            ))
        }
    };
    let mut conn = state
        .pool
        .get_conn()
        .await
        .map_err(crate::db::DbError::from)?;
    let unread = notifications::unread(&mut conn, &user).await?;
    let mut response = HttpResponse::Ok();
    if let Some(seq) = seq {
        response.insert_header(("X-Taskraft-Seq", seq.to_string()));
    }
    Ok(response.json(json!({ "unread": unread })))
}
