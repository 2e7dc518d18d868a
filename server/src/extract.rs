//! Request extractors whose rejections are [`ApiError`]s that name the offending field, instead
//! of axum's plain-text ones.

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Request},
    http::{header, request::Parts},
};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Largest JSON body the API accepts, unless a route says otherwise.
pub const MAX_JSON_BODY: usize = 64 * 1024;

/// A JSON request body.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        JsonBody::from_request(request, state)
            .await?
            .parse()
            .map(ApiJson)
    }
}

/// A request body read but not yet parsed. Routes that only some callers may use take this and
/// parse it after the access check, so a caller who may not use the route learns nothing about
/// its fields from validation errors.
pub struct JsonBody {
    bytes: Bytes,
    is_json: bool,
}

impl JsonBody {
    /// The body as `T`; errors name the offending field.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        if !self.is_json {
            return Err(ApiError::unsupported_media_type(
                "send the body as JSON with Content-Type: application/json",
            ));
        }
        let mut deserializer = serde_json::Deserializer::from_slice(&self.bytes);
        let value = serde_path_to_error::deserialize(&mut deserializer)
            .map_err(|error| field_error(error.path().to_string(), error.inner().to_string()))?;
        deserializer
            .end()
            .map_err(|error| ApiError::bad_request("body", format!("invalid JSON: {error}")))?;
        Ok(value)
    }
}

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| {
                value
                    .split(';')
                    .next()
                    .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
            });
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::payload_too_large(
                        "body",
                        "the body is larger than this route accepts",
                    )
                } else {
                    ApiError::bad_request("body", rejection.body_text())
                }
            })?;
        Ok(JsonBody { bytes, is_json })
    }
}

/// Path parameters. Deserialize into a struct whose fields are named like the route's
/// parameters (`{id}`, `{seq}`), so a malformed one is named in the error.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        use axum::extract::{Path, path::ErrorKind, rejection::PathRejection};
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(ApiPath(value)),
            Err(PathRejection::FailedToDeserializePathParams(error)) => {
                let field = match error.kind() {
                    ErrorKind::ParseErrorAtKey { key, .. }
                    | ErrorKind::InvalidUtf8InPathParam { key }
                    | ErrorKind::DeserializeError { key, .. } => key.clone(),
                    _ => "path".to_owned(),
                };
                Err(ApiError::bad_request(
                    field.clone(),
                    format!("{field}: {}", error.body_text()),
                ))
            }
            Err(other) => Err(ApiError::bad_request("path", other.body_text())),
        }
    }
}

/// A query string.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or("");
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer)
            .map(ApiQuery)
            .map_err(|error| field_error(error.path().to_string(), error.inner().to_string()))
    }
}

/// serde names the field in the path (`role`) or, for a missing or unknown one, only in the
/// message (``missing field `username` ``); either way the client gets the field.
fn field_error(path: String, message: String) -> ApiError {
    let field = if path.is_empty() || path == "." {
        message
            .split('`')
            .nth(1)
            .map(str::to_owned)
            .unwrap_or_else(|| "body".into())
    } else {
        path
    };
    let message = format!("{field}: {message}");
    ApiError::bad_request(field, message)
}
