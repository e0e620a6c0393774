//! Why a WebSocket upgrade was refused, answered in the API's error body
//! (`{"error": {"code", "message"}}`) so a client handles it like any other
//! 4xx. Once upgraded, a session speaks in close codes, not in errors.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum WsError {
    /// Not a WebSocket handshake this server takes (no upgrade headers, a
    /// version other than 13, no key).
    #[error("WebSocket upgrade: {0}")]
    Upgrade(#[source] actix_web::Error),
}

impl WsError {
    fn code(&self) -> &'static str {
        match self {
            WsError::Upgrade(_) => "bad_request",
        }
    }
}

impl ResponseError for WsError {
    fn status_code(&self) -> StatusCode {
        match self {
            WsError::Upgrade(_) => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code()).json(json!({
            "error": { "code": self.code(), "message": self.to_string() }
        }))
    }
}

#[cfg(test)]
mod tests {
    use actix_web::body::MessageBody;

    use super::*;

    #[test]
    fn a_refused_upgrade_is_a_400_with_the_api_error_body() {
        let error = WsError::Upgrade(actix_web::error::ErrorBadRequest("no Upgrade header"));
        let response = error.error_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body = response
            .into_body()
            .try_into_bytes()
            .expect("a complete body");
        let body: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(
            body,
            json!({ "error": {
                "code": "bad_request",
                "message": "WebSocket upgrade: no Upgrade header"
            }})
        );
    }
}
