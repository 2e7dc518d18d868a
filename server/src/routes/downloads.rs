//! `GET /api/sessions/{id}/download?format=txt|csv|jsonl[&event=SEQ]`: the full output or log,
//! streamed. An ended session's download is stable, so it honours `Range` (a broken download
//! resumes); a running one's is served whole. With `DISABLE_SESSIONS_DOWNLOAD` every download
//! answers 403 `downloads_disabled`. Every download is written to the audit trail with the bytes
//! actually sent.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use axum::{
    body::{Body, Bytes},
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use futures_util::{Stream, StreamExt};
use loupe_protocol::{EventKind, SessionStatus};
use serde::Deserialize;

use crate::{
    auth::Actor,
    downloads::{self, Format},
    error::ApiError,
    extract::ApiQuery,
    sessions,
    state::AppState,
    store::{NewAuditEvent, SessionRecord, Store},
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DownloadQuery {
    format: String,
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
        .ok_or_else(|| ApiError::bad_request("format", "format must be txt, csv or jsonl"))?;
    let only_event = match format {
        Format::Csv => Some(result_event(&state.store, &id, query.event).await?),
        _ if query.event.is_some() => {
            return Err(ApiError::bad_request("event", "event goes with format=csv"));
        }
        _ => None,
    };
    let ended = SessionStatus::parse(&session.status).is_some_and(SessionStatus::is_final);
    let range = ended.then(|| requested_range(&headers)).flatten();

    let mut response_headers = HeaderMap::new();
    response_headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    let disposition = format!(
        "attachment; filename=\"{}\"",
        downloads::file_name(&session, format)
    );
    response_headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&disposition).map_err(ApiError::internal)?,
    );
    response_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if ended {
        response_headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    }

    let known = downloads::known_length(&session, format);
    let (status, skip, length) = match range {
        None => (StatusCode::OK, 0, known),
        Some((first, last)) => {
            let total = match known {
                Some(total) => total,
                None => downloads::measure(state.store.clone(), &session, format, only_event)
                    .await
                    .map_err(ApiError::internal)?,
            };
            if first >= total {
                let mut refused =
                    (StatusCode::RANGE_NOT_SATISFIABLE, response_headers).into_response();
                refused.headers_mut().insert(
                    header::CONTENT_RANGE,
                    HeaderValue::from_str(&format!("bytes */{total}"))
                        .map_err(ApiError::internal)?,
                );
                return Ok(refused);
            }
            let last = last.unwrap_or(total - 1).min(total - 1);
            let content_range = format!("bytes {first}-{last}/{total}");
            response_headers.insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&content_range).map_err(ApiError::internal)?,
            );
            (StatusCode::PARTIAL_CONTENT, first, Some(last - first + 1))
        }
    };
    if let Some(length) = length {
        response_headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    }

    let stream = downloads::render(state.store.clone(), &session, format, only_event, skip);
    let limited = limit(stream, length);
    let audited = Audited {
        inner: Box::pin(limited),
        sent: 0,
        expected: length,
        report: Some(report(&state.store, &actor, &session, format, skip)),
    };
    Ok((status, response_headers, Body::from_stream(audited)).into_response())
}

/// The seq of the result set a `csv` is made of: the one asked for, or the session's first.
async fn result_event(store: &Store, id: &str, asked: Option<u64>) -> Result<i64, ApiError> {
    if let Some(seq) = asked {
        let seq =
            i64::try_from(seq).map_err(|_| ApiError::bad_request("event", "no such event"))?;
        return match store.event(id, seq).await? {
            Some(event) if event.kind == EventKind::Result.as_str() => Ok(seq),
            Some(_) => Err(ApiError::bad_request(
                "event",
                format!("event {seq} is not a result set"),
            )),
            None => Err(ApiError::bad_request(
                "event",
                format!("the session has no event {seq}"),
            )),
        };
    }
    let mut after = 0;
    loop {
        let page = store.session_events(id, after, 500).await?;
        if let Some(first) = page
            .iter()
            .find(|event| event.kind == EventKind::Result.as_str())
        {
            return Ok(first.seq);
        }
        match page.last() {
            Some(last) if page.len() == 500 => after = last.seq,
            _ => {
                return Err(ApiError::bad_request(
                    "format",
                    "this session has no result set to download as csv",
                ));
            }
        }
    }
}

/// `Range: bytes=FIRST-[LAST]`; anything else (several ranges, suffix ranges) is ignored and the
/// whole download served, as HTTP allows.
fn requested_range(headers: &HeaderMap) -> Option<(u64, Option<u64>)> {
    let value = headers.get(header::RANGE)?.to_str().ok()?;
    let spec = value.strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let first = first.trim().parse().ok()?;
    let last = match last.trim() {
        "" => None,
        last => Some(last.parse().ok()?),
    };
    match last {
        Some(last) if last < first => None,
        _ => Some((first, last)),
    }
}

/// At most `length` bytes of `stream`.
fn limit(
    stream: impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
    length: Option<u64>,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let mut left = length.unwrap_or(u64::MAX);
    stream
        .take_while(move |_| std::future::ready(left > 0))
        .map(move |piece| {
            piece.map(|mut bytes| {
                if bytes.len() as u64 > left {
                    bytes.truncate(left as usize);
                }
                left -= bytes.len() as u64;
                bytes
            })
        })
}

type Report = Box<dyn FnOnce(u64, bool) + Send>;

/// What to write to the audit trail once the download ended (fully or not).
fn report(
    store: &Store,
    actor: &Actor,
    session: &SessionRecord,
    format: Format,
    skip: u64,
) -> Report {
    let store = store.clone();
    let mut event: NewAuditEvent =
        actor.audit("session.downloaded", format!("session:{}", session.id));
    Box::new(move |sent, complete| {
        let from = if skip > 0 {
            format!(", from byte {skip}")
        } else {
            String::new()
        };
        let ending = if complete { "" } else { ", interrupted" };
        event.detail = Some(format!(
            "{}, {sent} bytes{from}{ending}",
            format.extension()
        ));
        tokio::spawn(async move {
            if let Err(error) = store.record_audit(&event).await {
                tracing::error!(%error, "could not record a download in the audit trail");
            }
        });
    })
}

/// Counts what the client was sent and reports it when the stream ends or is dropped. With a
/// known length the server stops polling once it has sent that much, so having sent it all is
/// completion too.
struct Audited {
    inner: Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>,
    sent: u64,
    expected: Option<u64>,
    report: Option<Report>,
}

impl Stream for Audited {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.inner.as_mut().poll_next(context);
        match &polled {
            Poll::Ready(Some(Ok(bytes))) => self.sent += bytes.len() as u64,
            Poll::Ready(None) => {
                if let Some(report) = self.report.take() {
                    report(self.sent, true);
                }
            }
            _ => {}
        }
        polled
    }
}

impl Drop for Audited {
    fn drop(&mut self) {
        if let Some(report) = self.report.take() {
            let complete = self.expected.is_some_and(|expected| self.sent >= expected);
            report(self.sent, complete);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(value: &'static str) -> Option<(u64, Option<u64>)> {
        let mut headers = HeaderMap::new();
        headers.insert(header::RANGE, HeaderValue::from_static(value));
        requested_range(&headers)
    }

    #[test]
    fn reads_single_byte_ranges_and_ignores_the_rest() {
        assert_eq!(range("bytes=100-"), Some((100, None)));
        assert_eq!(range("bytes=0-99"), Some((0, Some(99))));
        assert_eq!(range("bytes=-500"), None);
        assert_eq!(range("bytes=0-1,5-9"), None);
        assert_eq!(range("bytes=9-1"), None);
        assert_eq!(range("items=0-1"), None);
    }
}
