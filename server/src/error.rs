//! The one error type handlers return. It always answers with `protocol::ErrorBody`: a stable
//! code, a message naming the problem, and the request id. Server-side failures are logged here
//! with their cause; the client only learns that something went wrong and which request it was.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use loupe_protocol::{ErrorBody, ErrorCode};

use crate::{request_context, store::StoreError};

#[derive(Debug, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct ApiError {
    code: ErrorCode,
    message: String,
    field: Option<String>,
    /// Seconds a client should wait before trying again (sent as `Retry-After`).
    retry_after: Option<u64>,
    /// The underlying cause of a 5xx, for the log only.
    source: Option<anyhow::Error>,
}

impl ApiError {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            field: None,
            retry_after: None,
            source: None,
        }
    }

    /// A request value that is missing, malformed or out of range; `field` names it.
    pub fn bad_request(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError {
            field: Some(field.into()),
            ..Self::new(ErrorCode::BadRequest, message)
        }
    }

    /// A body that is larger than the route accepts.
    pub fn payload_too_large(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError {
            field: Some(field.into()),
            ..Self::new(ErrorCode::PayloadTooLarge, message)
        }
    }

    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        ApiError {
            field: Some("content-type".into()),
            ..Self::new(ErrorCode::UnsupportedMediaType, message)
        }
    }

    /// No credentials, or credentials that no longer work.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthenticated, message)
    }

    /// Known caller, not allowed; the message says what would be needed.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }

    pub fn too_many_requests(message: impl Into<String>, retry_after_seconds: u64) -> Self {
        ApiError {
            retry_after: Some(retry_after_seconds),
            ..Self::new(ErrorCode::TooManyRequests, message)
        }
    }

    /// `DISABLE_SESSIONS_DOWNLOAD` is on.
    pub fn downloads_disabled() -> Self {
        Self::new(
            ErrorCode::DownloadsDisabled,
            "an administrator disabled session downloads on this server (DISABLE_SESSIONS_DOWNLOAD); sessions can still be viewed in the browser",
        )
    }

    /// The connection's rules ask for approved access, and the caller holds none now.
    pub fn access_required(connection: &str) -> Self {
        Self::new(
            ErrorCode::AccessRequired,
            format!(
                "{connection} needs approved access: request it, and run again once a reviewer approves"
            ),
        )
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, message)
    }

    /// A dependency (the database) is not answering; the request may succeed later.
    pub fn unavailable(message: impl Into<String>, cause: impl Into<anyhow::Error>) -> Self {
        ApiError {
            source: Some(cause.into()),
            ..Self::new(ErrorCode::Unavailable, message)
        }
    }

    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        ApiError {
            source: Some(cause.into()),
            ..Self::new(ErrorCode::Internal, "internal error")
        }
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// What a person reads: the CLI prints this.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => ApiError::not_found("not found"),
            StoreError::Conflict(message) => ApiError::conflict(message),
            other => ApiError::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let request_id = request_context::current_request_id();
        if let Some(cause) = &self.source {
            tracing::error!(request_id = request_id.as_deref(), code = ?self.code, "{cause:#}");
        }
        let status =
            StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let retry_after = self.retry_after;
        let body = ErrorBody {
            code: self.code,
            message: self.message,
            field: self.field,
            request_id,
        };
        let mut response = (status, Json(body)).into_response();
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
