//! Downloading a session: the full output (txt), one result set (csv) or the whole log (jsonl),
//! streamed from the store with flat memory (see [`super::render`]). An ended session's download
//! is stable, so a byte range of it can be served (a broken download resumes); a running one's
//! is served whole. Every download is written to the audit trail with the bytes actually sent,
//! also when the client goes away part-way.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use axum::body::Bytes;
use futures_util::{Stream, StreamExt};
use loupe_protocol::EventKind;

use super::{
    cast,
    render::{self, Format},
};
use crate::{
    error::ApiError,
    identity::auth::Actor,
    store::{NewAuditEvent, SessionRecord, Store},
};

/// A download ready to stream, or a range past its end.
pub enum Download {
    Ready(Ready),
    /// The requested range starts past the end; `total` is the download's length.
    Unsatisfiable {
        total: u64,
    },
}

pub struct Ready {
    pub format: Format,
    pub file_name: String,
    /// Whether byte ranges of it may be asked for (the session has ended).
    pub resumable: bool,
    /// `(first, last, total)` when a range is served.
    pub range: Option<(u64, u64, u64)>,
    /// The bytes that will be sent, when known in advance.
    pub length: Option<u64>,
    /// The bytes, audited when the stream ends or is dropped.
    pub body: Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>,
}

/// Prepares `session`'s download in `format` (`event`: which result set, for csv), from the
/// `Range` header's value when there is one.
pub async fn open(
    store: &Store,
    actor: &Actor,
    session: SessionRecord,
    format: Format,
    event: Option<u64>,
    range: Option<&str>,
) -> Result<Download, ApiError> {
    let terminal = cast::is_terminal(&session);
    match format {
        Format::Cast if !terminal => {
            return Err(ApiError::bad_request(
                "format",
                "format=cast is for terminal sessions; this one downloads as txt, csv or jsonl",
            ));
        }
        Format::Csv if terminal => {
            return Err(ApiError::bad_request(
                "format",
                "a terminal session has no result set: download it as cast, txt or jsonl",
            ));
        }
        _ => {}
    }
    let only_event = match format {
        Format::Csv => Some(result_event(store, &session.id, event).await?),
        _ if event.is_some() => {
            return Err(ApiError::bad_request("event", "event goes with format=csv"));
        }
        _ => None,
    };
    let resumable = session.status.is_final();
    let range = range.filter(|_| resumable).and_then(requested_range);
    let known = render::known_length(&session, format);
    let (served, skip, length) = match range {
        None => (None, 0, known),
        Some((first, last)) => {
            let total = match known {
                Some(total) => total,
                None => render::measure(store.clone(), &session, format, only_event)
                    .await
                    .map_err(ApiError::internal)?,
            };
            if first >= total {
                return Ok(Download::Unsatisfiable { total });
            }
            let last = last.unwrap_or(total - 1).min(total - 1);
            (Some((first, last, total)), first, Some(last - first + 1))
        }
    };
    let stream: Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>> = match format {
        Format::Cast => Box::pin(skip_bytes(
            cast::render(store.clone(), &session, cast::Kind::Cast),
            skip,
        )),
        Format::Txt if terminal => Box::pin(skip_bytes(
            cast::render(store.clone(), &session, cast::Kind::Text),
            skip,
        )),
        _ => Box::pin(render::render(
            store.clone(),
            &session,
            format,
            only_event,
            skip,
        )),
    };
    let body = Audited {
        inner: Box::pin(limit(stream, length)),
        sent: 0,
        expected: length,
        report: Some(report(store, actor, &session, format, skip)),
    };
    Ok(Download::Ready(Ready {
        format,
        file_name: render::file_name(&session, format),
        resumable,
        range: served,
        length,
        body: Box::pin(body),
    }))
}

/// The seq of the result set a `csv` is made of: the one asked for, or the session's first.
async fn result_event(store: &Store, id: &str, asked: Option<u64>) -> Result<i64, ApiError> {
    if let Some(seq) = asked {
        let seq =
            i64::try_from(seq).map_err(|_| ApiError::bad_request("event", "no such event"))?;
        return match store.event(id, seq).await? {
            Some(event) if event.kind == EventKind::Result => Ok(seq),
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
        if let Some(first) = page.iter().find(|event| event.kind == EventKind::Result) {
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

/// A `Range` header's value, `bytes=FIRST-[LAST]`; anything else (several ranges, suffix
/// ranges) is ignored and the whole download served, as HTTP allows (RFC 9110 §14.2).
pub fn requested_range(value: &str) -> Option<(u64, Option<u64>)> {
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

/// `stream` without its first `skip` bytes (a ranged request of a rendering that cannot jump).
fn skip_bytes(
    stream: impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
    skip: u64,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let mut left = skip;
    stream.filter_map(move |piece| {
        let piece = match piece {
            Ok(mut bytes) if left > 0 => {
                let dropped = left.min(bytes.len() as u64);
                left -= dropped;
                let _ = bytes.split_to(dropped as usize);
                (!bytes.is_empty()).then_some(Ok(bytes))
            }
            other => Some(other),
        };
        std::future::ready(piece)
    })
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
        requested_range(value)
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
