//! `POST /api/boards/import?format=trello|csv|json&name=`: a board from a
//! file, written through the log by a job ([`crate::import`]); `GET
//! /api/jobs/{id}`: how far it is.
//!
//! The file is read whole (at most [`MAX_FILE`]) and checked before
//! anything is written: a malformed one is a 400 naming where its first
//! problem is (`field`: a JSON path or a CSV line), and nothing is written.
//! With an `Idempotency-Key`, the same file sent again by the same user is
//! the same job: it answers with the job running, or resumes one that
//! stopped (on a node that died, say) without writing anything twice.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::error::ApiError;
use super::AppState;
use crate::accounts::Role;
use crate::import::{self, Problem};
use crate::task::validate::Invalid;

/// The largest file taken (a 5,000-card Trello export is about 10 MB).
pub const MAX_FILE: usize = 32 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Trello,
    Csv,
    Json,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    format: Format,
    /// The board's name, for a CSV (which has none); default "Imported board".
    name: Option<String>,
}

pub async fn import(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<ImportQuery>,
    mut payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let key = super::request::idempotency(&req, None)?.map(|i| i.key);
    let busy = || ApiError::Conflict {
        code: "imports_busy",
        message: format!(
            "{} imports are being read or run on this node; try again when one ends",
            import::MAX_RUNNING
        ),
    };
    let upload = state.jobs.upload().ok_or_else(busy)?;
    let body = super::request::body_bytes(&req, &mut payload, MAX_FILE).await?;
    let principal = super::auth::principal(&req);
    let format = query.format;
    let name = super::request::nonempty(query.name.as_deref())
        .unwrap_or_else(|| "Imported board".to_string());
    let id = import::job_id(&principal.actor.id, key.as_deref(), &body);
    // Reading a large file takes a while: off the server's threads.
    let plan = web::block(move || match format {
        Format::Trello => import::trello::plan(&body),
        Format::Json => import::taskraft::plan(&body),
        Format::Csv => std::str::from_utf8(&body)
            .map_err(|e| Problem::new("the file", format!("is not UTF-8: {e}")))
            .and_then(|text| import::csv::plan(text, &name)),
    })
    .await
    .map_err(|e| ApiError::Internal(format!("reading the file: {e}")))?
    .map_err(|p| ApiError::Invalid(Invalid::new(&p.at, p.message)))?;
    drop(upload);
    let job = state
        .jobs
        .start(id, plan, principal.actor, state.raft.clone())
        .ok_or_else(busy)?;
    Ok(HttpResponse::build(StatusCode::ACCEPTED)
        .insert_header(("Location", format!("/api/jobs/{id}")))
        .json(json!({ "job": job })))
}

/// `GET /api/jobs/{id}`: the job's progress, for who started it (and admins).
pub async fn job(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let not_found = || ApiError::NotFound(format!("no job {} on this node", path.as_str()));
    let id: Uuid = path.parse().map_err(|_| not_found())?;
    let principal = super::auth::principal(&req);
    let job = state
        .jobs
        .get(&id)
        .filter(|j| j.owner == principal.actor.id || principal.role == Role::Admin)
        .ok_or_else(not_found)?;
    Ok(HttpResponse::Ok().json(json!({ "job": job })))
}
