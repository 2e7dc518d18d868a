//! `GET /api/sessions/{id}/download?format=txt|csv|jsonl|cast[&event=SEQ]`: the full output or log,
//! streamed, honouring `Range` for ended sessions (see [`sessions::download`]). With
//! `DISABLE_SESSIONS_DOWNLOAD` every download answers 403 `downloads_disabled`.

use axum::{
    body::Body,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;

use crate::{
    error::ApiError,
    extract::ApiQuery,
    identity::auth::Actor,
    routes::state::AppState,
    sessions::{
        self,
        download::{self, Download},
        render::Format,
    },
};

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DownloadQuery {
    /// `txt` (the output as written), `csv` (one result set: give `event`) or `jsonl` (the
    /// whole activity log).
    format: String,
    /// The result event, for `csv`.
    #[serde(default)]
    event: Option<u64>,
}

pub async fn download_session(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<DownloadQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if state.config.disable_sessions_download {
        return Err(ApiError::downloads_disabled());
    }
    let session = sessions::visible_session(&state.store, &actor, &id).await?;
    let format = Format::parse(&query.format)
        .ok_or_else(|| ApiError::bad_request("format", "format must be txt, csv, jsonl or cast"))?;
    let range = headers
        .get(header::RANGE)
        .and_then(|value| value.to_str().ok());
    let header = |value: &str| HeaderValue::from_str(value).map_err(ApiError::internal);
    let ready =
        match download::open(&state.store, &actor, session, format, query.event, range).await? {
            Download::Ready(ready) => ready,
            Download::Unsatisfiable { total } => {
                let mut refused = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
                refused
                    .headers_mut()
                    .insert(header::CONTENT_RANGE, header(&format!("bytes */{total}"))?);
                return Ok(refused);
            }
        };
    let mut response_headers = attachment_headers(ready.format, &ready.file_name)?;
    if ready.resumable {
        response_headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    }
    if let Some((first, last, total)) = ready.range {
        response_headers.insert(
            header::CONTENT_RANGE,
            header(&format!("bytes {first}-{last}/{total}"))?,
        );
    }
    if let Some(length) = ready.length {
        response_headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    let status = if ready.range.is_some() {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    Ok((status, response_headers, Body::from_stream(ready.body)).into_response())
}

/// The headers of a file download: its type, its name (`Content-Disposition: attachment`), and
/// `no-store` (a recording is not for caches).
pub(super) fn attachment_headers(format: Format, file_name: &str) -> Result<HeaderMap, ApiError> {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&format!("attachment; filename=\"{file_name}\""))
            .map_err(ApiError::internal)?,
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(headers)
}
