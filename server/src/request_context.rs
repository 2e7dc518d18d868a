//! Per-request bookkeeping: a request id (taken from a well-formed `x-request-id` header or made
//! up), echoed in the response, attached to every log line of the request, and readable by
//! [`crate::error::ApiError`] so an error body names the request it belongs to.

use std::time::Instant;

use axum::{
    extract::Request,
    http::{HeaderName, HeaderValue},
    middleware::Next,
    response::Response,
};
use tracing::Instrument;

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being handled on this task, if any.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

pub async fn track_request(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(&REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|value| is_acceptable_id(value))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let path = request.uri().path().to_owned();
    let span = tracing::info_span!("request", id = %id, method = %request.method(), path = %path);
    let started = Instant::now();

    let mut response = REQUEST_ID
        .scope(id.clone(), next.run(request).instrument(span.clone()))
        .await;

    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    let status = response.status().as_u16();
    let elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    // API calls are worth a line each; the app's static files would only drown them.
    span.in_scope(|| {
        if path.starts_with("/api/") {
            tracing::info!(status, elapsed_us, "served");
        } else {
            tracing::debug!(status, elapsed_us, "served");
        }
    });
    response
}

/// A caller-supplied id is kept only if it is short and plain, so it cannot forge log lines.
fn is_acceptable_id(value: &str) -> bool {
    (1..=64).contains(&value.len())
        && value
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
}

#[cfg(test)]
mod tests {
    use super::is_acceptable_id;

    #[test]
    fn rejects_request_ids_that_could_forge_log_lines() {
        assert!(is_acceptable_id("req-0123_abc"));
        assert!(!is_acceptable_id("evil\nstatus=200"));
        assert!(!is_acceptable_id(""));
        assert!(!is_acceptable_id(&"x".repeat(65)));
    }
}
