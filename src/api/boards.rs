//! `/api/boards`, `/api/columns`: boards, their columns and members, and a
//! column's cards a page at a time.
//!
//! Who sees what is decided here, from the catalog as this node last
//! committed it (`ProjectionCache::catalog`): a board a user is not on
//! answers 404, as if it did not exist; a viewer gets 403 for a change.
//! Writes are commands through Raft like every other.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::error::ApiError;
use super::request::{self, Consistency};
use super::tasks::read_barrier;
use super::AppState;
use crate::accounts::Principal;
use crate::db::queries::{self, TaskFilter};
use crate::task::catalog::expect_version;
use crate::task::{
    BoardId, BoardRecord, BoardRole, Catalog, Column, ColumnId, ColumnPatch, NewBoard, NewColumn,
    Op, Outcome, Priority, Status, TaskId, TaskPatch,
};

const PAGE_DEFAULT: usize = 50;
const PAGE_MAX: usize = 500;
const NAME_MAX: usize = 100;
const COLUMN_NAME_MAX: usize = 60;

/// What `principal` may do on `board`, or 404 when it may not see it.
pub fn role_on(
    catalog: &Catalog,
    principal: &Principal,
    board: &BoardId,
) -> Result<BoardRole, ApiError> {
    catalog
        .role(board, &principal.actor.id, principal.role)
        .ok_or_else(|| ApiError::NotFound(format!("no board {board}")))
}

/// What `check` finds in the catalog: this node's, or, when `check`
/// refuses with it, the catalog after a ReadIndex round. This node may lag
/// the write that made the board, the column or the membership a request
/// names (it was taken by another node): a refusal is only ever given
/// from a catalog as fresh as a linearizable read.
pub async fn checked<T>(
    state: &AppState,
    check: impl Fn(&Catalog) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    if let Ok(found) = check(&state.rows.catalog()) {
        return Ok(found);
    }
    state.raft.read_barrier().await?;
    check(&state.rows.catalog())
}

/// 403 unless `role` may change the board's cards and columns.
pub fn editor(role: BoardRole) -> Result<(), ApiError> {
    if role.can_edit() {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "a viewer of this board cannot change it".into(),
        ))
    }
}

/// 403 unless `role` is the board's admin (a site admin is admin on
/// every board).
pub fn board_admin(role: BoardRole) -> Result<(), ApiError> {
    if role == BoardRole::Admin {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "only an admin of this board can do that".into(),
        ))
    }
}

/// A board as the api shows it: with its columns (and their card counts)
/// and the caller's role.
pub fn board_view(catalog: &Catalog, board: &BoardRecord, role: BoardRole) -> Value {
    let columns: Vec<Value> = catalog
        .columns_of(&board.id)
        .into_iter()
        .map(|c| column_view(catalog, c))
        .collect();
    json!({
        "id": board.id,
        "name": board.name,
        "archived": board.archived,
        "default": board.id.is_default(),
        "role": role.as_str(),
        "columns": columns,
    })
}

pub fn column_view(catalog: &Catalog, column: &Column) -> Value {
    let counts = catalog.counts(&column.id);
    json!({
        "id": column.id,
        "board_id": column.board_id,
        "name": column.name,
        "key": column.key,
        "category": column.category,
        "position": column.position,
        "wip_limit": column.wip_limit,
        "color": column.color,
        "archive_after_days": column.archive_after_days,
        "version": column.version,
        "cards": counts.live,
        "archived_cards": counts.archived,
    })
}

pub(super) fn board_id(path: &str) -> Result<BoardId, ApiError> {
    path.parse()
        .map_err(|_| ApiError::invalid("id", format!("`{path}` is not a board id (a UUID)")))
}

fn column_id(path: &str) -> Result<ColumnId, ApiError> {
    path.parse()
        .map_err(|_| ApiError::invalid("id", format!("`{path}` is not a column id (a UUID)")))
}

/// Trimmed, 1 to `max` characters.
fn name(field: &'static str, text: &str, max: usize) -> Result<String, ApiError> {
    let trimmed = text.trim();
    let n = trimmed.chars().count();
    if n == 0 || n > max {
        return Err(ApiError::invalid(
            field,
            format!("must be 1 to {max} characters"),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(ApiError::invalid(field, "must not hold control characters"));
    }
    Ok(trimmed.to_string())
}

fn color(text: Option<String>) -> Result<Option<String>, ApiError> {
    match text {
        None => Ok(None),
        Some(c) => {
            let ok = c.len() == 7
                && c.starts_with('#')
                && c[1..].chars().all(|ch| ch.is_ascii_hexdigit());
            if ok {
                Ok(Some(c.to_ascii_lowercase()))
            } else {
                Err(ApiError::invalid("color", "must be #rrggbb"))
            }
        }
    }
}

fn wip_limit(n: Option<u32>) -> Result<Option<u32>, ApiError> {
    match n {
        Some(0) | Some(10_001..) => Err(ApiError::invalid("wip_limit", "must be 1 to 10000")),
        other => Ok(other),
    }
}

/// Auto-archive after 1 to 3650 days (ten years) without a change.
fn archive_after_days(n: Option<u32>) -> Result<Option<u32>, ApiError> {
    match n {
        Some(0) | Some(3_651..) => Err(ApiError::invalid(
            "archive_after_days",
            "must be 1 to 3650 (days a card stays unchanged before it is archived), or null",
        )),
        other => Ok(other),
    }
}

fn position(p: Option<f64>) -> Result<Option<f64>, ApiError> {
    match p {
        Some(p) if !p.is_finite() || p.abs() > 1e15 => {
            Err(ApiError::invalid("position", "must be a finite number"))
        }
        other => Ok(other),
    }
}

/// Proposes `op` as the caller, under the request's idempotency key, and
/// gives back its outcome (a rejection as its error).
async fn propose(
    state: &AppState,
    req: &HttpRequest,
    op: Op,
    body: Option<&Value>,
) -> Result<Outcome, ApiError> {
    let idempotency = request::idempotency(req, body)?;
    propose_keyed(state, req, op, idempotency).await
}

/// Proposes `op` as the caller under `idempotency` (`None`: one of several
/// commands a request makes, which must not share its key).
async fn propose_keyed(
    state: &AppState,
    req: &HttpRequest,
    op: Op,
    idempotency: Option<crate::task::Idempotency>,
) -> Result<Outcome, ApiError> {
    match super::tasks::submit(state, req, op, idempotency)
        .await?
        .outcome
    {
        Outcome::Rejected { rejection } => Err(rejection.into()),
        outcome => Ok(outcome),
    }
}

fn seq_header(outcome: &Outcome) -> (&'static str, String) {
    ("X-Taskraft-Seq", outcome.seq().unwrap_or(0).to_string())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    archived: bool,
    #[serde(default)]
    consistency: Consistency,
}

/// `GET /api/boards`: the boards the caller is on.
pub async fn list(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    read_barrier(&state, query.consistency).await?;
    let principal = super::auth::principal(&req);
    let catalog = state.rows.catalog();
    let boards: Vec<Value> = catalog
        .boards()
        .filter(|b| query.archived || !b.archived)
        .filter_map(|b| {
            let role = catalog.role(&b.id, &principal.actor.id, principal.role)?;
            Some(board_view(&catalog, b, role))
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "boards": boards })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewBoardBody {
    name: String,
}

/// `POST /api/boards`: a board with three columns; the caller is its admin.
pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = request::json_body(&req, payload).await?;
    let draft: NewBoardBody = request::from_json(body.clone())?;
    let new = NewBoard {
        id: BoardId(Uuid::now_v7()),
        name: name("name", &draft.name, NAME_MAX)?,
        columns: [
            ColumnId(Uuid::now_v7()),
            ColumnId(Uuid::now_v7()),
            ColumnId(Uuid::now_v7()),
        ],
    };
    let outcome = propose(&state, &req, Op::BoardCreate(new), Some(&body)).await?;
    let Outcome::Board { board, .. } = &outcome else {
        return Err(ApiError::Internal(
            "a board command came to another outcome".into(),
        ));
    };
    let catalog = state.rows.catalog();
    let principal = super::auth::principal(&req);
    let role = catalog
        .role(&board.id, &principal.actor.id, principal.role)
        .unwrap_or(BoardRole::Admin);
    Ok(HttpResponse::build(StatusCode::CREATED)
        .insert_header(seq_header(&outcome))
        .insert_header(("Location", format!("/api/boards/{}", board.id)))
        .json(board_view(&catalog, board, role)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadQuery {
    #[serde(default)]
    consistency: Consistency,
}

/// `GET /api/boards/{id}`: the board, with its explicit members.
pub async fn get(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<ReadQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = board_id(&path)?;
    read_barrier(&state, query.consistency).await?;
    let catalog = state.rows.catalog();
    let role = role_on(&catalog, &super::auth::principal(&req), &id)?;
    let board = catalog
        .board(&id)
        .ok_or_else(|| ApiError::NotFound(format!("no board {id}")))?;
    let accounts = state.accounts.get();
    let members: Vec<Value> = catalog
        .members_of(&id)
        .into_iter()
        .map(|(user, role)| {
            let username = accounts.as_ref().and_then(|a| {
                user.parse::<Uuid>()
                    .ok()
                    .and_then(|u| a.user(&u))
                    .map(|u| u.username.clone())
            });
            json!({ "user_id": user, "username": username, "role": role.as_str() })
        })
        .collect();
    let mut view = board_view(&catalog, board, role);
    view["members"] = Value::Array(members);
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BoardPatchBody {
    name: Option<String>,
    archived: Option<bool>,
}

/// `PATCH /api/boards/{id}`: rename, archive, restore (board admins).
pub async fn update(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id = board_id(&path)?;
    let body = request::json_body(&req, payload).await?;
    let patch: BoardPatchBody = request::from_json(body.clone())?;
    let principal = super::auth::principal(&req);
    checked(&state, |c| board_admin(role_on(c, &principal, &id)?)).await?;
    let op = Op::BoardUpdate {
        id,
        name: patch.name.map(|n| name("name", &n, NAME_MAX)).transpose()?,
        archived: patch.archived,
    };
    let outcome = propose(&state, &req, op, Some(&body)).await?;
    let Outcome::Board { board, .. } = &outcome else {
        return Err(ApiError::Internal(
            "a board command came to another outcome".into(),
        ));
    };
    let catalog = state.rows.catalog();
    let role = role_on(&catalog, &principal, &id).unwrap_or(BoardRole::Admin);
    Ok(HttpResponse::Ok()
        .insert_header(seq_header(&outcome))
        .json(board_view(&catalog, board, role)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MemberBody {
    role: BoardRole,
}

/// `PUT /api/boards/{id}/members/{user_id}` (board admins).
pub async fn put_member(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (board, user) = path.into_inner();
    let body = request::json_body(&req, payload).await?;
    let member: MemberBody = request::from_json(body.clone())?;
    set_member(&state, &req, &board, &user, Some(member.role), Some(&body)).await
}

/// `DELETE /api/boards/{id}/members/{user_id}` (board admins).
pub async fn delete_member(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (board, user) = path.into_inner();
    set_member(&state, &req, &board, &user, None, None).await
}

async fn set_member(
    state: &AppState,
    req: &HttpRequest,
    board: &str,
    user: &str,
    role: Option<BoardRole>,
    body: Option<&Value>,
) -> Result<HttpResponse, ApiError> {
    let id = board_id(board)?;
    let principal = super::auth::principal(req);
    checked(state, |c| board_admin(role_on(c, &principal, &id)?)).await?;
    if id.is_default() {
        return Err(ApiError::Conflict {
            code: "default_board",
            message: "every user is on the default board with their site role".into(),
        });
    }
    let user_id: Uuid = user
        .parse()
        .map_err(|_| ApiError::invalid("user_id", format!("`{user}` is not a user id")))?;
    let known = state
        .accounts
        .get()
        .is_some_and(|a| a.user(&user_id).is_some());
    if !known && role.is_some() {
        return Err(ApiError::NotFound(format!("no user {user_id}")));
    }
    let op = Op::BoardMemberSet {
        board_id: id,
        user_id: user_id.to_string(),
        role,
    };
    let outcome = propose(state, req, op, body).await?;
    if role.is_none() {
        return Ok(HttpResponse::NoContent()
            .insert_header(seq_header(&outcome))
            .finish());
    }
    let catalog = state.rows.catalog();
    let board = catalog
        .board(&id)
        .ok_or_else(|| ApiError::NotFound(format!("no board {id}")))?;
    let mine = role_on(&catalog, &principal, &id).unwrap_or(BoardRole::Admin);
    Ok(HttpResponse::Ok()
        .insert_header(seq_header(&outcome))
        .json(board_view(&catalog, board, mine)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewColumnBody {
    name: String,
    position: Option<f64>,
    wip_limit: Option<u32>,
    color: Option<String>,
    category: Option<Status>,
    archive_after_days: Option<u32>,
}

/// `POST /api/boards/{id}/columns` (board members).
pub async fn create_column(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let board = board_id(&path)?;
    let body = request::json_body(&req, payload).await?;
    let draft: NewColumnBody = request::from_json(body.clone())?;
    let principal = super::auth::principal(&req);
    checked(&state, |c| editor(role_on(c, &principal, &board)?)).await?;
    let new = NewColumn {
        id: ColumnId(Uuid::now_v7()),
        board_id: board,
        name: name("name", &draft.name, COLUMN_NAME_MAX)?,
        position: position(draft.position)?,
        wip_limit: wip_limit(draft.wip_limit)?,
        color: color(draft.color)?,
        category: draft.category,
        archive_after_days: archive_after_days(draft.archive_after_days)?,
    };
    let outcome = propose(&state, &req, Op::ColumnCreate(new), Some(&body)).await?;
    column_response(&state, StatusCode::CREATED, &outcome)
}

fn column_response(
    state: &AppState,
    status: StatusCode,
    outcome: &Outcome,
) -> Result<HttpResponse, ApiError> {
    let Outcome::Column { column, .. } = outcome else {
        return Err(ApiError::Internal(
            "a column command came to another outcome".into(),
        ));
    };
    Ok(HttpResponse::build(status)
        .insert_header(seq_header(outcome))
        .insert_header((header::ETAG, format!("\"{}\"", column.version)))
        .json(column_view(&state.rows.catalog(), column)))
}

/// The column `id`, if the caller may change its board.
async fn editable_column(
    state: &AppState,
    req: &HttpRequest,
    id: ColumnId,
) -> Result<Column, ApiError> {
    let principal = super::auth::principal(req);
    checked(state, |catalog| {
        let column = catalog
            .column(&id)
            .ok_or_else(|| ApiError::NotFound(format!("no column {id}")))?;
        editor(role_on(catalog, &principal, &column.board_id)?)?;
        Ok(column.clone())
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ColumnPatchBody {
    name: Option<String>,
    position: Option<f64>,
    #[serde(default, deserialize_with = "crate::task::present")]
    wip_limit: Option<Option<u32>>,
    #[serde(default, deserialize_with = "crate::task::present")]
    color: Option<Option<String>>,
    category: Option<Status>,
    #[serde(default, deserialize_with = "crate::task::present")]
    archive_after_days: Option<Option<u32>>,
}

/// `PATCH /api/columns/{id}`: rename, move, limit, colour, auto-archive
/// (board members).
pub async fn update_column(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id = column_id(&path)?;
    let body = request::json_body(&req, payload).await?;
    let draft: ColumnPatchBody = request::from_json(body.clone())?;
    editable_column(&state, &req, id).await?;
    let patch = ColumnPatch {
        name: draft
            .name
            .map(|n| name("name", &n, COLUMN_NAME_MAX))
            .transpose()?,
        position: position(draft.position)?,
        wip_limit: draft.wip_limit.map(wip_limit).transpose()?,
        color: draft.color.map(color).transpose()?,
        category: draft.category,
        archive_after_days: draft
            .archive_after_days
            .map(archive_after_days)
            .transpose()?,
    };
    let op = Op::ColumnUpdate {
        id,
        expected_version: request::if_match(&req)?,
        patch,
    };
    let outcome = propose(&state, &req, op, Some(&body)).await?;
    column_response(&state, StatusCode::OK, &outcome)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteColumnQuery {
    move_to: Option<String>,
}

/// Cards moved per round while emptying a column (`move_to`).
const MOVE_PAGE: usize = 100;
/// Rounds of moving before the delete gives up (cards keep arriving).
const MOVE_ROUNDS: usize = 1000;

/// `DELETE /api/columns/{id}?move_to=COLUMN`: deletes an empty column; with
/// `move_to`, moves its cards (archived ones too) there first, one update
/// each, then deletes it.
pub async fn delete_column(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<DeleteColumnQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = column_id(&path)?;
    let expected_version = request::if_match(&req)?;
    let delete = Op::ColumnDelete {
        id,
        expected_version,
    };
    let column = match editable_column(&state, &req, id).await {
        Ok(column) => column,
        // A retry of a delete that went through: the state machine gives
        // the first answer under its key (and 404 under a new one).
        Err(ApiError::NotFound(_)) if req.headers().contains_key("Idempotency-Key") => {
            let outcome = propose(&state, &req, delete, None).await?;
            return Ok(HttpResponse::NoContent()
                .insert_header(seq_header(&outcome))
                .finish());
        }
        Err(e) => return Err(e),
    };
    if let Some(target) = &query.move_to {
        let target = column_id(target)?;
        if target == id {
            return Err(ApiError::invalid("move_to", "must be another column"));
        }
        editable_column(&state, &req, target).await?;
        if let Some(expected) = expected_version {
            still_at(&state, id, expected).await?;
        }
        for _ in 0..MOVE_ROUNDS {
            let mut moved = 0;
            for archived in [false, true] {
                let cards = queries::column_page(
                    &state.pool,
                    &state.planner,
                    column.board_id,
                    // No text: the count does not matter.
                    Some((id, 0)),
                    archived,
                    &TaskFilter {
                        limit: MOVE_PAGE,
                        ..TaskFilter::default()
                    },
                    None,
                )
                .await?
                .tasks;
                for card in cards {
                    moved += 1;
                    move_card(&state, &req, card.id, target).await?;
                }
            }
            if moved == 0 {
                break;
            }
        }
    }
    let outcome = propose(&state, &req, delete, None).await?;
    Ok(HttpResponse::NoContent()
        .insert_header(seq_header(&outcome))
        .finish())
}

/// 412 unless column `id` is at version `expected`, before a delete moves
/// any card out: a stale `If-Match` must not empty the column. The log
/// still decides the delete itself.
async fn still_at(state: &AppState, id: ColumnId, expected: u64) -> Result<(), ApiError> {
    checked(state, |catalog| match catalog.column(&id) {
        Some(column) => Ok(expect_version(column, Some(expected))?),
        None => Ok(()),
    })
    .await
}

/// Moves one card to `column`; a card deleted or moved meanwhile is not an
/// error.
async fn move_card(
    state: &AppState,
    req: &HttpRequest,
    id: TaskId,
    column: ColumnId,
) -> Result<(), ApiError> {
    let patch = TaskPatch {
        column_id: Some(column),
        ..TaskPatch::default()
    };
    let op = Op::Update {
        id,
        expected_version: None,
        patch,
    };
    // Not under the request's key: that answers the delete itself.
    match propose_keyed(state, req, op, None).await {
        Ok(_) | Err(ApiError::NotFound(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TasksQuery {
    column: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
    #[serde(default)]
    archived: bool,
    assignee: Option<String>,
    label: Option<String>,
    priority: Option<Priority>,
    q: Option<String>,
    #[serde(default)]
    consistency: Consistency,
}

/// `GET /api/boards/{id}/tasks?column=`: one column's cards in order (or,
/// with `archived=true`, the board's archived cards, or one column's), a
/// page at a time, with the count of all of them (`total`: the column's,
/// whatever the filters). A column's page takes the list's filters
/// (`assignee`, `label`, `priority`, `q`), each read through an index
/// (`queries::column_statement`).
pub async fn tasks(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<TasksQuery>,
) -> Result<HttpResponse, ApiError> {
    let board = board_id(&path)?;
    let limit = request::limit(query.limit, PAGE_DEFAULT, PAGE_MAX)?;
    let column = query.column.as_deref().map(column_id).transpose()?;
    if column.is_none() && !query.archived {
        return Err(ApiError::invalid(
            "column",
            "is required (the board is read a column at a time), except with archived=true",
        ));
    }
    let filter = TaskFilter {
        assignee: request::nonempty(query.assignee.as_deref()),
        label: request::nonempty(query.label.as_deref()),
        priority: query.priority,
        text: request::nonempty(query.q.as_deref())
            .map(|q| super::tasks::words(&q))
            .transpose()?,
        limit,
        ..TaskFilter::default()
    };
    let filtered = filter.assignee.is_some()
        || filter.label.is_some()
        || filter.priority.is_some()
        || filter.text.is_some();
    if filtered && column.is_none() {
        return Err(ApiError::invalid(
            "column",
            "is required with assignee, label, priority or q (filters apply to one column's cards)",
        ));
    }
    let after = query
        .cursor
        .as_deref()
        .map(|c| {
            parse_cursor(c)
                .ok_or_else(|| ApiError::invalid("cursor", "is not a cursor this server issued"))
        })
        .transpose()?;
    read_barrier(&state, query.consistency).await?;
    let catalog = state.rows.catalog();
    role_on(&catalog, &super::auth::principal(&req), &board)?;
    if let Some(column) = column {
        if catalog.column(&column).is_none_or(|c| c.board_id != board) {
            return Err(ApiError::NotFound(format!(
                "no column {column} on board {board}"
            )));
        }
    }
    let counted = |c: &ColumnId| {
        let counts = catalog.counts(c);
        if query.archived {
            counts.archived
        } else {
            counts.live
        }
    };
    let page = queries::column_page(
        &state.pool,
        &state.planner,
        board,
        column.map(|c| (c, counted(&c))),
        query.archived,
        &filter,
        after,
    )
    .await?;
    let total: u64 = match column {
        Some(column) => counted(&column),
        None => catalog
            .columns_of(&board)
            .iter()
            .map(|c| counted(&c.id))
            .sum(),
    };
    let next = page
        .more
        .then(|| {
            page.tasks
                .last()
                .map(|t| format!("{}~{}", t.position, t.id))
        })
        .flatten();
    // Each card with its comment count, for the badge.
    let tasks: Vec<Value> = page
        .tasks
        .iter()
        .map(|task| {
            let mut card = serde_json::to_value(task).unwrap_or_default();
            card["comment_count"] = json!(page.comment_counts.get(&task.id).copied().unwrap_or(0));
            if let Some((done, total)) = page.checklist_progress.get(&task.id) {
                card["checklist_progress"] = json!({ "done": done, "total": total });
            }
            card
        })
        .collect();
    let last_seq = page.last_seq;
    Ok(HttpResponse::Ok()
        .insert_header(("X-Taskraft-Seq", last_seq.to_string()))
        .json(json!({
            "tasks": tasks,
            "next_cursor": next,
            "total": total,
            "last_seq": last_seq,
        })))
}

fn parse_cursor(text: &str) -> Option<(f64, TaskId)> {
    let (position, id) = text.split_once('~')?;
    let position: f64 = position.parse().ok()?;
    position.is_finite().then_some(())?;
    Some((position, id.parse().ok()?))
}

const ACTIVITY_DEFAULT: usize = 50;
const ACTIVITY_MAX: usize = 200;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivityQuery {
    /// Only what this user did (a user id, or `system`).
    actor: Option<String>,
    /// The `next_cursor` of the page before: events older than it.
    cursor: Option<String>,
    limit: Option<usize>,
    #[serde(default)]
    consistency: Consistency,
}

/// `GET /api/boards/{id}/activity?actor=&cursor=`: who did what on the
/// board, newest first, a page at a time: its cards', columns' and
/// members' events (a card moved to another board shows on the board it
/// went to). Read through an index of the board's events (V11), so a page
/// costs the same whatever else the cluster holds.
pub async fn activity(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<ActivityQuery>,
) -> Result<HttpResponse, ApiError> {
    let board = board_id(&path)?;
    let limit = request::limit(query.limit, ACTIVITY_DEFAULT, ACTIVITY_MAX)?;
    let before = query
        .cursor
        .as_deref()
        .map(|c| {
            c.parse::<u64>()
                .ok()
                .filter(|seq| *seq > 0)
                .ok_or_else(|| ApiError::invalid("cursor", "is not a cursor this server issued"))
        })
        .transpose()?;
    let actor = request::nonempty(query.actor.as_deref());
    if actor.as_deref().is_some_and(|a| a.chars().count() > 100) {
        return Err(ApiError::invalid("actor", "is not a user id"));
    }
    read_barrier(&state, query.consistency).await?;
    let role = role_on(&state.rows.catalog(), &super::auth::principal(&req), &board)?;
    let (mut events, more) =
        queries::board_activity(&state.pool, board, actor.as_deref(), before, limit).await?;
    // The cursor is taken before this, so a page of hidden events still
    // moves on.
    let next = more
        .then(|| events.last().map(|e| e.seq.to_string()))
        .flatten();
    // A webhook's events are its board admins' alone; its delivery
    // reports (about one a second while it sends) are no one's activity:
    // its delivery log shows them.
    events.retain(|e| {
        e.kind != crate::task::EventKind::WebhookDelivered
            && (role == BoardRole::Admin || !e.admins_only())
    });
    Ok(HttpResponse::Ok().json(json!({ "events": events, "next_cursor": next })))
}
