//! `/api/boards/{id}/webhooks`: a board's outgoing webhooks.
//!
//! Only the board's admins (and site admins) see or change them: a
//! webhook's URL is itself a secret (a chat's incoming-webhook URL posts
//! as anyone who knows it). Who may not see the board gets 404, a member
//! who is not its admin 403. Changes are commands through Raft, checked
//! here against this node's catalog first and decided again at apply
//! (`task::webhook::decide`), where the role at that entry counts.
//!
//! The signing secret is made here (like an id) and shown once, in the
//! 201 of the POST; later reads never repeat it (as GitHub's webhooks).

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::error::ApiError;
use super::tasks::submit;
use super::{auth, boards, request, AppState};
use crate::db::webhooks::{self as rows, Delivery};
use crate::task::webhook::never_sent;
use crate::task::{BoardId, BoardRole, EventKind, NewWebhook, Op, Outcome, WebhookId};
use crate::webhooks::{guard, sign};

/// The longest description.
const MAX_DESCRIPTION: usize = 500;

/// The body of `POST /api/boards/{id}/webhooks`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewWebhookBody {
    url: String,
    #[serde(default)]
    events: Vec<String>,
    #[serde(default)]
    description: String,
}

fn webhook_id(path: &str) -> Result<WebhookId, ApiError> {
    path.parse().map_err(|_| {
        ApiError::invalid(
            "webhook_id",
            format!("`{path}` is not a webhook id (a UUID)"),
        )
    })
}

/// 404 unless the caller sees the board, 403 unless they are its admin.
async fn admin_of(state: &AppState, req: &HttpRequest, board: BoardId) -> Result<(), ApiError> {
    let principal = auth::principal(req);
    let role = boards::checked(state, |catalog| {
        boards::role_on(catalog, &principal, &board)
    })
    .await?;
    if role == BoardRole::Admin {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "only an admin of this board can see or change its webhooks".into(),
        ))
    }
}

/// The kinds a body names, each one a webhook may be sent.
fn kinds(names: &[String]) -> Result<Vec<EventKind>, ApiError> {
    let mut kinds = Vec::new();
    for name in names {
        let kind: EventKind = name
            .parse()
            .map_err(|_| ApiError::invalid("events", format!("`{name}` is not an event kind")))?;
        if never_sent(kind) {
            return Err(ApiError::invalid(
                "events",
                format!("`{name}` events are never sent to webhooks"),
            ));
        }
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    Ok(kinds)
}

/// `POST /api/boards/{id}/webhooks` `{url, events?, description?}`: 201
/// with the webhook and its secret (shown this once).
pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let board = boards::board_id(&path)?;
    let body = request::json_body(&req, payload).await?;
    let draft: NewWebhookBody = request::from_json(body)?;
    admin_of(&state, &req, board).await?;
    let url = guard::check_url(&draft.url, state.webhook_allow_private)
        .map_err(|why| ApiError::invalid("url", why))?;
    let events = kinds(&draft.events)?;
    let description = draft.description.trim().to_string();
    if description.chars().count() > MAX_DESCRIPTION {
        return Err(ApiError::invalid(
            "description",
            format!("must be at most {MAX_DESCRIPTION} characters"),
        ));
    }
    let op = Op::WebhookAdd(NewWebhook {
        id: WebhookId::generate(),
        board_id: board,
        url,
        events,
        description,
        secret: sign::new_secret(),
    });
    let applied = submit(&state, &req, op, None).await?;
    match applied.outcome {
        Outcome::Webhook {
            webhook,
            secret,
            seq,
            ..
        } => Ok(HttpResponse::Created()
            .insert_header(("X-Taskraft-Seq", seq.to_string()))
            .insert_header((
                header::LOCATION,
                format!("/api/boards/{board}/webhooks/{}", webhook.id),
            ))
            .json(json!({
                "id": webhook.id,
                "board_id": webhook.board_id,
                "url": webhook.url,
                "events": webhook.events,
                "description": webhook.description,
                "created_at": webhook.created_at,
                "created_by": webhook.created_by,
                "secret": secret,
            }))),
        Outcome::Rejected { rejection } => Err(rejection.into()),
        _ => Err(ApiError::Internal(
            "a webhook command came to another command's outcome".into(),
        )),
    }
}

/// When the current run of failed attempts began (`log` newest first),
/// if the newest attempt failed.
fn failing_since(log: &[Delivery]) -> Option<crate::time::Timestamp> {
    log.iter()
        .take_while(|d| !d.attempt.delivered())
        .last()
        .map(|d| d.attempt.at)
}

/// `GET /api/boards/{id}/webhooks`: `{webhooks: [...]}`, oldest first,
/// each with how far its delivery got (never the secret).
pub async fn list(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let board = boards::board_id(&path)?;
    admin_of(&state, &req, board).await?;
    state.raft.read_barrier().await?;
    let mut conn = state
        .pool
        .get_conn()
        .await
        .map_err(crate::db::DbError::from)?;
    let mut shown = Vec::new();
    for hook in rows::of_board(&mut conn, board).await? {
        let log = rows::log(&mut conn, hook.webhook.id).await?;
        let mut view = json!({
            "id": hook.webhook.id,
            "board_id": hook.webhook.board_id,
            "url": hook.webhook.url,
            "events": hook.webhook.events,
            "description": hook.webhook.description,
            "created_at": hook.webhook.created_at,
            "created_by": hook.webhook.created_by,
            "delivered_seq": hook.delivered_seq,
            "last_delivery": log.first(),
        });
        if let Some(since) = failing_since(&log) {
            view["failing_since"] = json!(since);
        }
        shown.push(view);
    }
    Ok(HttpResponse::Ok().json(json!({ "webhooks": shown })))
}

/// `DELETE /api/boards/{id}/webhooks/{webhook_id}`: 204; its delivery
/// stops and its log goes with it.
pub async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (board, id) = path.into_inner();
    let board = boards::board_id(&board)?;
    let id = webhook_id(&id)?;
    admin_of(&state, &req, board).await?;
    let applied = submit(
        &state,
        &req,
        Op::WebhookRemove {
            id,
            board_id: board,
        },
        None,
    )
    .await?;
    match applied.outcome {
        Outcome::Webhook { seq, .. } => Ok(HttpResponse::build(StatusCode::NO_CONTENT)
            .insert_header(("X-Taskraft-Seq", seq.to_string()))
            .finish()),
        Outcome::Rejected { rejection } => Err(rejection.into()),
        _ => Err(ApiError::Internal(
            "a webhook command came to another command's outcome".into(),
        )),
    }
}

/// `GET /api/boards/{id}/webhooks/{webhook_id}/deliveries`: `{deliveries:
/// [...]}`, the newest attempts first (the last 100 are kept).
pub async fn deliveries(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (board, id) = path.into_inner();
    let board = boards::board_id(&board)?;
    let id = webhook_id(&id)?;
    admin_of(&state, &req, board).await?;
    state.raft.read_barrier().await?;
    let mut conn = state
        .pool
        .get_conn()
        .await
        .map_err(crate::db::DbError::from)?;
    let known = rows::of_board(&mut conn, board)
        .await?
        .iter()
        .any(|w| w.webhook.id == id);
    if !known {
        return Err(ApiError::NotFound(format!(
            "no webhook with id {id} on this board"
        )));
    }
    let log = rows::log(&mut conn, id).await?;
    Ok(HttpResponse::Ok().json(json!({ "deliveries": log })))
}
