//! `/api/tasks/{id}/checklists`, `/api/checklists/{id}`,
//! `/api/checklists/{id}/items`, `/api/checklist-items/{id}`: a card's
//! checklists (`crate::task::checklist`).
//!
//! Who sees a checklist is who sees its card (else 404, as for the card).
//! Writes are commands through Raft, checked here against this node's
//! catalog first (a viewer gets 403) and decided again at apply, where the
//! role, the limits and the list's version at that entry count. Every
//! write answers the checklist after it, with its version as the ETag;
//! `If-Match` with that version makes any write to the list or one of its
//! items conditional (412 with `current_checklist` on another version).
//!
//! `POST /api/checklist-items/{id}/card` turns an item into a card: a card
//! with the item's text as its title (the text in full in its description
//! when longer than a title may be) in the column of the item's card, then
//! the item removed from its list. Two commands: the card's id is derived
//! from the item's, so a retry after a failure between them finds the card
//! made (and answers it) and removes the item then.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::request::{self, Consistency};
use super::tasks::{committed_task, read_barrier, submit, visible_task};
use super::{auth, boards, AppState};
use crate::db::checklists;
use crate::task::checklist::{
    self, ChecklistAction, ChecklistCommand, ItemId, ITEM_MAX, TITLE_MAX,
};
use crate::task::{
    validate, Checklist, ChecklistId, NewTask, Op, Outcome, Priority, Rejection, Task, TaskId,
};

/// The body of `POST /api/tasks/{id}/checklists` and `PATCH /api/checklists/{id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TitleBody {
    title: String,
}

/// The body of `POST /api/checklists/{id}/items`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ItemBody {
    text: String,
}

/// The body of `PATCH /api/checklist-items/{id}`: any of the three.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ItemPatch {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    done: Option<bool>,
    #[serde(default)]
    position: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    consistency: Consistency,
}

fn parse<T: std::str::FromStr>(path: &str, what: &str) -> Result<T, ApiError> {
    path.parse()
        .map_err(|_| ApiError::invalid("id", format!("`{path}` is not a {what} id (a UUID)")))
}

async fn conn(state: &AppState) -> Result<mysql_async::Conn, ApiError> {
    Ok(state
        .pool
        .get_conn()
        .await
        .map_err(crate::db::DbError::from)?)
}

/// `GET /api/tasks/{id}/checklists`: the card's checklists, oldest first,
/// each with its items in order.
pub async fn list(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let id: TaskId = parse(&path, "task")?;
    read_barrier(&state, query.consistency).await?;
    visible_task(&state, &auth::principal(&req), id).await?;
    let lists = checklists::of_tasks(&mut conn(&state).await?, &[id]).await?;
    let (done, total) = lists.iter().fold((0, 0), |(d, t), l| {
        let (ld, lt) = l.progress();
        (d + ld, t + lt)
    });
    Ok(HttpResponse::Ok().json(json!({
        "checklists": lists,
        "progress": { "done": done, "total": total },
    })))
}

/// `POST /api/tasks/{id}/checklists` `{title}`: 201 with the checklist.
pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let task: TaskId = parse(&path, "task")?;
    let body = request::json_body(&req, payload).await?;
    let draft: TitleBody = request::from_json(body.clone())?;
    let title = checklist::line("title", &draft.title, TITLE_MAX)?;
    let principal = auth::principal(&req);
    if let Some(current) = committed_task(&state, task).await? {
        boards::checked(&state, |catalog| {
            boards::editor(boards::role_on(catalog, &principal, &current.board_id)?)
        })
        .await?;
    }
    let command = ChecklistCommand {
        id: ChecklistId::generate(),
        task_id: task,
        expected_version: None,
        action: ChecklistAction::Create { title },
    };
    propose(&state, &req, command, Some(&body), None).await
}

/// `PATCH /api/checklists/{id}` `{title}`: renames it.
pub async fn rename(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id: ChecklistId = parse(&path, "checklist")?;
    let body = request::json_body(&req, payload).await?;
    let draft: TitleBody = request::from_json(body.clone())?;
    let title = checklist::line("title", &draft.title, TITLE_MAX)?;
    let current = editable(&state, &req, Found::List(id)).await?;
    let command = change(&req, &current, ChecklistAction::Rename { title })?;
    propose(&state, &req, command, Some(&body), None).await
}

/// `DELETE /api/checklists/{id}`: 204.
pub async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id: ChecklistId = parse(&path, "checklist")?;
    let current = editable(&state, &req, Found::List(id)).await?;
    let command = change(&req, &current, ChecklistAction::Delete)?;
    propose(&state, &req, command, None, None).await
}

/// `POST /api/checklists/{id}/items` `{text}`: 201 with the checklist,
/// the new item last; `Location` names the item.
pub async fn add_item(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id: ChecklistId = parse(&path, "checklist")?;
    let body = request::json_body(&req, payload).await?;
    let draft: ItemBody = request::from_json(body.clone())?;
    let text = checklist::line("text", &draft.text, ITEM_MAX)?;
    let current = editable(&state, &req, Found::List(id)).await?;
    let item = ItemId::generate();
    let command = change(
        &req,
        &current,
        ChecklistAction::AddItem {
            item,
            text,
            done: false,
        },
    )?;
    propose(&state, &req, command, Some(&body), Some(item)).await
}

/// `PATCH /api/checklist-items/{id}` `{text?, done?, position?}`: 200
/// with the checklist. `position` is the item's index after the move,
/// from 0 (past the end: last).
pub async fn update_item(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let item: ItemId = parse(&path, "checklist item")?;
    let body = request::json_body(&req, payload).await?;
    let patch: ItemPatch = request::from_json(body.clone())?;
    if patch.text.is_none() && patch.done.is_none() && patch.position.is_none() {
        return Err(ApiError::invalid(
            "body",
            "names none of text, done and position",
        ));
    }
    let text = patch
        .text
        .as_deref()
        .map(|t| checklist::line("text", t, ITEM_MAX))
        .transpose()?;
    let current = editable(&state, &req, Found::Item(item)).await?;
    let command = change(
        &req,
        &current,
        ChecklistAction::UpdateItem {
            item,
            text,
            done: patch.done,
            position: patch.position,
        },
    )?;
    propose(&state, &req, command, Some(&body), None).await
}

/// `DELETE /api/checklist-items/{id}`: 200 with the checklist after.
pub async fn delete_item(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let item: ItemId = parse(&path, "checklist item")?;
    let current = editable(&state, &req, Found::Item(item)).await?;
    let command = change(&req, &current, ChecklistAction::RemoveItem { item })?;
    propose(&state, &req, command, None, None).await
}

/// `POST /api/checklist-items/{id}/card`: 201 with the new card (in the
/// column of the item's card), the item removed from its list.
pub async fn make_card(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let item: ItemId = parse(&path, "checklist item")?;
    let card_id = TaskId(crate::import::derived(&Sha256::digest(
        format!("checklist-item-card:{item}").as_bytes(),
    )));
    // Made, then the item removed: a retry answers the card.
    let made = || async {
        let card = visible_task(&state, &auth::principal(&req), card_id).await?;
        Ok(created(card))
    };
    let list = match editable(&state, &req, Found::Item(item)).await {
        Ok(list) => list,
        Err(ApiError::NotFound(_)) => return made().await,
        Err(e) => return Err(e),
    };
    // The list found by the item holds it (`checklists::by_item`).
    let Some(position) = list.position_of(&item) else {
        return made().await;
    };
    let text = list.items[position].text.clone();
    let parent = committed_task(&state, list.task_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no task with id {}", list.task_id)))?;
    let title: String = if text.chars().count() > validate::TITLE_MAX {
        text.chars()
            .take(validate::TITLE_MAX - 1)
            .collect::<String>()
            + "…"
    } else {
        text.clone()
    };
    let description = if title == text {
        String::new()
    } else {
        text.clone()
    };
    let new = NewTask {
        id: card_id,
        title,
        description,
        status: parent.status,
        position: None,
        priority: Priority::Medium,
        assignee: None,
        labels: Vec::new(),
        due_date: None,
        board_id: Some(parent.board_id),
        column_id: Some(parent.column()),
    };
    let card = match submit(&state, &req, Op::Create(new), None).await?.outcome {
        Outcome::Created { task, .. } => task,
        // Made by an earlier try that did not get to remove the item.
        Outcome::Rejected {
            rejection: Rejection::IdTaken { .. },
        } => committed_task(&state, card_id)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no task with id {card_id}")))?,
        Outcome::Rejected { rejection } => return Err(rejection.into()),
        _ => {
            return Err(ApiError::Internal(
                "a create came to another outcome".into(),
            ))
        }
    };
    let remove = Op::Checklist(ChecklistCommand {
        id: list.id,
        task_id: list.task_id,
        expected_version: None,
        action: ChecklistAction::RemoveItem { item },
    });
    match submit(&state, &req, remove, None).await?.outcome {
        Outcome::Checklist { .. }
        | Outcome::Rejected {
            rejection: Rejection::ChecklistItemNotFound { .. } | Rejection::ChecklistNotFound { .. },
        } => Ok(created(card)),
        Outcome::Rejected { rejection } => Err(rejection.into()),
        _ => Err(ApiError::Internal(
            "a checklist command came to another outcome".into(),
        )),
    }
}

fn created(card: Task) -> HttpResponse {
    HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/tasks/{}", card.id)))
        .insert_header((header::ETAG, format!("\"{}\"", card.version)))
        .json(card)
}

/// How a write names its checklist.
enum Found {
    List(ChecklistId),
    Item(ItemId),
}

/// `action` on the checklist as found, at the version the request's
/// `If-Match` names (none: any).
fn change(
    req: &HttpRequest,
    current: &Checklist,
    action: ChecklistAction,
) -> Result<ChecklistCommand, ApiError> {
    Ok(ChecklistCommand {
        id: current.id,
        task_id: current.task_id,
        expected_version: request::if_match(req)?,
        action,
    })
}

/// The checklist named as this node holds it (after a ReadIndex round if
/// it does not yet), if the caller may edit its card's board: 404 if they
/// may not see it, 403 if they only read.
async fn editable(
    state: &AppState,
    req: &HttpRequest,
    named: Found,
) -> Result<Checklist, ApiError> {
    let found = match held(state, &named).await? {
        Some(list) => Some(list),
        None => {
            state.raft.read_barrier().await?;
            held(state, &named).await?
        }
    };
    let missing = || {
        ApiError::NotFound(match named {
            Found::List(id) => format!("no checklist with id {id}"),
            Found::Item(id) => format!("no checklist item with id {id}"),
        })
    };
    let list = found.ok_or_else(missing)?;
    let principal = auth::principal(req);
    let role = boards::role_on(&state.rows.catalog(), &principal, &list.board_id)
        .map_err(|_| missing())?;
    boards::editor(role)?;
    Ok(list)
}

async fn held(state: &AppState, named: &Found) -> Result<Option<Checklist>, ApiError> {
    let mut conn = conn(state).await?;
    Ok(match *named {
        Found::List(id) => checklists::by_id(&mut conn, id).await?,
        Found::Item(id) => checklists::by_item(&mut conn, id).await?,
    })
}

async fn propose(
    state: &AppState,
    req: &HttpRequest,
    command: ChecklistCommand,
    body: Option<&serde_json::Value>,
    item: Option<ItemId>,
) -> Result<HttpResponse, ApiError> {
    let applied = submit(
        state,
        req,
        Op::Checklist(command),
        request::idempotency(req, body)?,
    )
    .await?;
    let seq = applied.outcome.seq();
    let (list, deleted) = match applied.outcome {
        Outcome::Checklist {
            checklist, deleted, ..
        } => (checklist, deleted),
        Outcome::Rejected { rejection } => return Err(rejection.into()),
        _ => {
            return Err(ApiError::Internal(
                "a checklist command came to another command's outcome".into(),
            ))
        }
    };
    let status = match (req.method().as_str(), deleted) {
        (_, true) => StatusCode::NO_CONTENT,
        ("POST", false) => StatusCode::CREATED,
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
        let location = match item {
            Some(item) => format!("/api/checklist-items/{item}"),
            None => format!("/api/checklists/{}", list.id),
        };
        response.insert_header((header::LOCATION, location));
    }
    Ok(response
        .insert_header((header::ETAG, format!("\"{}\"", list.version)))
        .json(list))
}
