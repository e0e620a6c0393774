//! Every error the api returns, and the one place that maps them to status
//! codes and the JSON error body `{"error": {"code", "message", …}}`.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde_json::{json, Map, Value};

use crate::db::DbError;
use crate::raft::ConsensusError;
use crate::task::validate::Invalid;
use crate::task::CatalogRejection;
use crate::task::{Rejection, Task};

/// Seconds a client should wait before retrying a 503.
const RETRY_AFTER_SECS: &str = "1";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Invalid(Invalid),
    #[error("{0}")]
    BadRequest(String),
    #[error("a valid bearer token is required for writes")]
    Unauthorized,
    /// `auth = "on"`: no valid session or token.
    #[error("sign in first: a session cookie or a bearer token is required")]
    Unauthenticated,
    /// Valid credentials whose role does not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// The session cookie on a write without its `X-Taskraft-CSRF` header.
    #[error("a write with the session cookie needs the X-Taskraft-CSRF header of the session")]
    CsrfFailed,
    #[error("wrong user name or password")]
    InvalidCredentials,
    /// Too many failed logins lately; retry after this long.
    #[error("too many failed logins: try again in {} s", .0.as_secs())]
    Throttled(std::time::Duration),
    /// A request on a peers-only endpoint that is not from a peer.
    #[error("{0}")]
    PeerRefused(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("task is at version {}, not {expected}", current.version)]
    VersionMismatch { expected: u64, current: Box<Task> },
    #[error("comment is at version {}, not {expected}", current.version)]
    CommentVersionMismatch {
        expected: u64,
        current: Box<crate::task::Comment>,
    },
    #[error("checklist is at version {}, not {expected}", current.version)]
    ChecklistVersionMismatch {
        expected: u64,
        current: Box<crate::task::Checklist>,
    },
    #[error("column is at version {}, not {expected}", current.version)]
    ColumnVersionMismatch {
        expected: u64,
        current: Box<crate::task::Column>,
    },
    #[error("the request body exceeds {0} bytes")]
    TooLarge(usize),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("the request body did not arrive within {0:?}")]
    RequestTimeout(std::time::Duration),
    /// A browser page of an origin this node does not serve (CORS).
    #[error("{0}")]
    OriginNotAllowed(String),
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String },
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Consensus(#[from] ConsensusError),
    /// A write whose outcome is unknown after the deadline.
    #[error("{0}")]
    WriteTimeout(ConsensusError),
    #[error("storage unavailable: {0}")]
    Storage(String),
    /// An upstream this node relies on (the OpenID provider) failed or
    /// answered something unusable.
    #[error("{0}")]
    BadGateway(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn invalid(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::Invalid(Invalid {
            field: field.to_string(),
            message: message.into(),
        })
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::Invalid(_) => "validation_failed",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthorized => "unauthorized",
            ApiError::Unauthenticated => "unauthenticated",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::CsrfFailed => "csrf_failed",
            ApiError::InvalidCredentials => "invalid_credentials",
            ApiError::Throttled(_) => "throttled",
            ApiError::PeerRefused(_) => "peer_refused",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict { code, .. } | ApiError::Unprocessable { code, .. } => code,
            ApiError::VersionMismatch { .. }
            | ApiError::CommentVersionMismatch { .. }
            | ApiError::ChecklistVersionMismatch { .. }
            | ApiError::ColumnVersionMismatch { .. } => "version_mismatch",
            ApiError::TooLarge(_) => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::RequestTimeout(_) => "request_timeout",
            ApiError::OriginNotAllowed(_) => "origin_not_allowed",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::Consensus(ConsensusError::NoLeader) => "no_leader",
            ApiError::Consensus(ConsensusError::LeaderChanged) => "leader_changed",
            ApiError::Consensus(ConsensusError::Timeout(_)) => "not_confirmed",
            ApiError::Consensus(ConsensusError::Overloaded(_)) => "overloaded",
            ApiError::Consensus(ConsensusError::ShuttingDown) => "shutting_down",
            ApiError::Consensus(ConsensusError::ClusterTooOld(_)) => "cluster_version_too_old",
            ApiError::WriteTimeout(_) => "timeout",
            ApiError::Storage(_) => "storage_unavailable",
            ApiError::BadGateway(_) => "bad_gateway",
            ApiError::Internal(_) => "internal",
        }
    }

    /// Fields beyond code and message that help the client act.
    fn details(&self) -> Map<String, Value> {
        let mut details = Map::new();
        match self {
            ApiError::Invalid(invalid) => {
                details.insert("field".into(), json!(invalid.field));
            }
            ApiError::VersionMismatch { expected, current } => {
                details.insert("expected_version".into(), json!(expected));
                details.insert("current_version".into(), json!(current.version));
                details.insert("current".into(), json!(current));
            }
            // Beside, not in, `current` (a task there), so each key has
            // one shape.
            ApiError::CommentVersionMismatch { expected, current } => {
                details.insert("expected_version".into(), json!(expected));
                details.insert("current_version".into(), json!(current.version));
                details.insert("current_comment".into(), json!(current));
            }
            ApiError::ChecklistVersionMismatch { expected, current } => {
                details.insert("expected_version".into(), json!(expected));
                details.insert("current_version".into(), json!(current.version));
                details.insert("current_checklist".into(), json!(current));
            }
            ApiError::ColumnVersionMismatch { expected, current } => {
                details.insert("expected_version".into(), json!(expected));
                details.insert("current_version".into(), json!(current.version));
                details.insert("current_column".into(), json!(current));
            }
            ApiError::Consensus(e) | ApiError::WriteTimeout(e) => {
                // Whether the write may have happened: retry with the same
                // Idempotency-Key to find out without doubling it.
                let unknown = !matches!(
                    e,
                    ConsensusError::NoLeader
                        | ConsensusError::Overloaded(_)
                        | ConsensusError::ShuttingDown
                        | ConsensusError::ClusterTooOld(_)
                );
                details.insert("outcome_unknown".into(), json!(unknown));
                if let ConsensusError::ClusterTooOld(too_old) = e {
                    details.insert("kind".into(), json!(too_old.kind));
                    details.insert("needs_version".into(), json!(too_old.needs.to_string()));
                    details.insert(
                        "cluster_version".into(),
                        json!(too_old.cluster_version.to_string()),
                    );
                }
            }
            _ => {}
        }
        details
    }
}

impl From<Invalid> for ApiError {
    fn from(invalid: Invalid) -> Self {
        ApiError::Invalid(invalid)
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Corrupt(_) => ApiError::Internal(e.to_string()),
            _ => ApiError::Storage(e.to_string()),
        }
    }
}

impl From<Rejection> for ApiError {
    fn from(rejection: Rejection) -> Self {
        match rejection {
            Rejection::NotFound { id } => ApiError::NotFound(format!("no task with id {id}")),
            Rejection::VersionMismatch { expected, current } => {
                ApiError::VersionMismatch { expected, current }
            }
            Rejection::IdTaken { id } => ApiError::Conflict {
                code: "id_taken",
                message: format!("task id {id} is, or was, in use"),
            },
            Rejection::KeyReused { key } => ApiError::Unprocessable {
                code: "idempotency_key_reused",
                message: format!("Idempotency-Key `{key}` was first used for a different request"),
            },
            Rejection::Catalog { refused } => refused.into(),
            Rejection::CommentNotFound { id } => {
                ApiError::NotFound(format!("no comment with id {id}"))
            }
            Rejection::CommentVersionMismatch { expected, current } => {
                ApiError::CommentVersionMismatch { expected, current }
            }
            Rejection::NotAuthor { id, admin_may } => ApiError::Forbidden(if admin_may {
                format!("only the author of comment {id} or an admin of its board can delete it")
            } else {
                format!("only the author of comment {id} can edit it")
            }),
            Rejection::ChecklistNotFound { id } => {
                ApiError::NotFound(format!("no checklist with id {id}"))
            }
            Rejection::ChecklistItemNotFound { id } => {
                ApiError::NotFound(format!("no checklist item with id {id}"))
            }
            Rejection::ChecklistVersionMismatch { expected, current } => {
                ApiError::ChecklistVersionMismatch { expected, current }
            }
            Rejection::ChecklistLimit { limit, what } => ApiError::Unprocessable {
                code: "limit_reached",
                message: format!("at most {limit} {what}"),
            },
            Rejection::ChecklistInvalid { field, message } => {
                ApiError::Invalid(Invalid { field, message })
            }
            Rejection::Webhook { refused } => refused.into(),
        }
    }
}

impl From<crate::task::WebhookRejection> for ApiError {
    fn from(refused: crate::task::WebhookRejection) -> Self {
        use crate::task::WebhookRejection;
        match refused {
            // Who may not see the board learns nothing of it (as for cards).
            WebhookRejection::BoardNotFound { board_id } => {
                ApiError::NotFound(format!("no board {board_id}"))
            }
            WebhookRejection::NotAdmin { .. } => {
                ApiError::Forbidden("only an admin of this board can change its webhooks".into())
            }
            WebhookRejection::NotFound { id } => {
                ApiError::NotFound(format!("no webhook with id {id} on this board"))
            }
            WebhookRejection::Limit { limit } => ApiError::Unprocessable {
                code: "limit_reached",
                message: format!("a board has at most {limit} webhooks"),
            },
        }
    }
}

impl From<CatalogRejection> for ApiError {
    fn from(refused: CatalogRejection) -> Self {
        let message = refused.to_string();
        let code = match refused {
            CatalogRejection::BoardNotFound { .. }
            | CatalogRejection::ColumnNotFound { .. }
            | CatalogRejection::NotOnBoard { .. } => return ApiError::NotFound(message),
            CatalogRejection::ReadOnly { .. } => return ApiError::Forbidden(message),
            CatalogRejection::ColumnElsewhere { .. } => {
                return ApiError::Unprocessable {
                    code: "column_elsewhere",
                    message,
                }
            }
            CatalogRejection::BoardArchived { .. } => "board_archived",
            CatalogRejection::IdTaken { .. } => "id_taken",
            CatalogRejection::ColumnNotEmpty { .. } => "column_not_empty",
            CatalogRejection::LastColumn { .. } => "last_column",
            CatalogRejection::FixedColumn { .. } => "fixed_column",
            CatalogRejection::DefaultBoard => "default_board",
            CatalogRejection::ColumnVersionMismatch { expected, current } => {
                return ApiError::ColumnVersionMismatch { expected, current }
            }
        };
        ApiError::Conflict { code, message }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Invalid(_) | ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized | ApiError::Unauthenticated | ApiError::InvalidCredentials => {
                StatusCode::UNAUTHORIZED
            }
            ApiError::Forbidden(_) | ApiError::CsrfFailed => StatusCode::FORBIDDEN,
            ApiError::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::PeerRefused(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::VersionMismatch { .. }
            | ApiError::CommentVersionMismatch { .. }
            | ApiError::ChecklistVersionMismatch { .. }
            | ApiError::ColumnVersionMismatch { .. } => StatusCode::PRECONDITION_FAILED,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::OriginNotAllowed(_) => StatusCode::FORBIDDEN,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Consensus(_) | ApiError::Storage(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::WriteTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let mut error = Map::new();
        error.insert("code".into(), json!(self.code()));
        error.insert("message".into(), json!(self.to_string()));
        error.extend(self.details());
        let mut response = HttpResponse::build(status);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.insert_header((header::RETRY_AFTER, RETRY_AFTER_SECS));
        }
        // The body was not read (or not all of it): the connection cannot
        // carry another request.
        if matches!(
            status,
            StatusCode::REQUEST_TIMEOUT | StatusCode::PAYLOAD_TOO_LARGE
        ) {
            response.force_close();
        }
        if let ApiError::Throttled(wait) = self {
            response.insert_header((header::RETRY_AFTER, wait.as_secs().max(1).to_string()));
        }
        if status == StatusCode::UNAUTHORIZED {
            response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        let current_version = match self {
            ApiError::VersionMismatch { current, .. } => Some(current.version),
            ApiError::ColumnVersionMismatch { current, .. } => Some(current.version),
            _ => None,
        };
        if let Some(version) = current_version {
            response.insert_header((header::ETAG, format!("\"{version}\"")));
        }
        if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
            tracing::error!(error = %self, "request failed");
        }
        response.json(json!({ "error": error }))
    }
}

#[cfg(test)]
mod tests {
    use actix_web::ResponseError;

    use super::*;

    #[test]
    fn a_write_lost_to_a_leader_change_is_a_503_the_client_may_retry() {
        let error = ApiError::from(ConsensusError::LeaderChanged);
        assert_eq!(error.status_code(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(error.code(), "leader_changed");
    }
}
