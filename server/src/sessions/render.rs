//! Rendering a session for download, streamed from storage a window at a time, so memory stays
//! flat however large the output is.
//!
//! - `txt`: the output as the user saw it. A command session's output events byte for byte; a
//!   database session's statements (as `-- ` lines), result sets as tab-separated lines with a
//!   header, notes and errors.
//! - `csv`: one result set, RFC 4180 (written by [`super::delimited`]): a header row, CRLF line
//!   ends, fields with a comma, quote, CR or LF quoted with quotes doubled. NULL is an empty
//!   field; the empty string is `""`.
//! - `jsonl`: the whole log. One line per event (`"type":"event"`), then, for output events, one
//!   line per stored chunk (`"type":"output"`, with `text`, or `base64` where the bytes are not
//!   UTF-8), and for result sets one line per page of rows (`"type":"rows"`).
//!
//! Stored output goes out as the chunks' own buffers (no copy per chunk on the way out), and the
//! next window is read from storage while the last one is being sent.

use std::collections::VecDeque;

use axum::body::Bytes;
use futures_util::{Stream, StreamExt};
use loupe_protocol::{Cell, Column, EventKind, SessionType, Timestamp};
use serde_json::json;

use super::delimited::Delimited;
use crate::store::{EventRecord, MAX_PAGE_ROWS, SessionRecord, Store, StoreError};

/// Bytes of output, or rows, read from storage per step: fewer, larger reads spread each
/// query's round trip over more bytes (`bench download` from PostgreSQL: txt 0.59-0.64x of the
/// static file with 4 MiB windows, 0.78-0.84x with 16 MiB; csv 189 -> 257 MB/s with 16 row
/// pages rather than 4). A download holds at most [`READ_AHEAD`] + 2 windows (the one read,
/// those waiting, the one sent); a window of rows holds what its rows hold.
const WINDOW_BYTES: u64 = 16 * 1024 * 1024;
const WINDOW_ROWS: u64 = 16 * MAX_PAGE_ROWS as u64;
const EVENTS_PER_PAGE: u32 = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Txt,
    Csv,
    Jsonl,
    /// asciicast v2, for terminal sessions (see [`super::cast`]).
    Cast,
}

impl Format {
    pub fn parse(text: &str) -> Option<Format> {
        match text {
            "txt" => Some(Format::Txt),
            "csv" => Some(Format::Csv),
            "jsonl" => Some(Format::Jsonl),
            "cast" => Some(Format::Cast),
            _ => None,
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Txt => "txt",
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
            Format::Cast => "cast",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Txt => "text/plain; charset=utf-8",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Jsonl => "application/x-ndjson",
            Format::Cast => "application/x-asciicast",
        }
    }
}

/// The download's exact length when it is known without rendering it: a command session's
/// `txt` is its output bytes.
pub fn known_length(session: &SessionRecord, format: Format) -> Option<u64> {
    (format == Format::Txt
        && session.session_type != SessionType::Database
        && !super::cast::is_terminal(session))
    .then_some(session.output_bytes as u64)
}

/// `<connection>-<session id>-<date>.<ext>`, with only characters safe in a file name.
pub fn file_name(session: &SessionRecord, format: Format) -> String {
    let connection: String = session
        .connection_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let date = &Timestamp::from_micros(session.started_at_us).to_string()[..10];
    format!("{connection}-{}-{date}.{}", session.id, format.extension())
}

/// Windows read ahead of the one being sent: storage and the network work at the same time
/// (each window is at most [`WINDOW_BYTES`] of output or [`WINDOW_ROWS`] rows).
const READ_AHEAD: usize = 1;

/// The rendered bytes from `skip` on; `only_event` picks the result set of a `csv`. Read by a
/// task of its own, [`READ_AHEAD`] windows ahead; it stops when the stream is dropped.
pub fn render(
    store: Store,
    session: &SessionRecord,
    format: Format,
    only_event: Option<i64>,
    skip: u64,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let renderer = Renderer {
        store,
        session_id: session.id.clone(),
        format,
        database: session.session_type == SessionType::Database,
        only_event,
        after_seq: 0,
        events: VecDeque::new(),
        exhausted: false,
        current: None,
        skip,
    };
    let (windows, received) = tokio::sync::mpsc::channel(READ_AHEAD);
    let reader = tokio::spawn(renderer.run(windows));
    futures_util::stream::unfold(
        (received, Some(reader)),
        |(mut received, reader)| async move {
            match received.recv().await {
                Some(window) => Some((window, (received, reader))),
                // The reader ended: at the end, or by panicking, which must not pass for the
                // end of the download.
                None => match reader?.await {
                    Ok(()) => None,
                    Err(error) => Some((Err(std::io::Error::other(error)), (received, None))),
                },
            }
        },
    )
    .flat_map(|window: Result<Vec<Bytes>, std::io::Error>| match window {
        Ok(pieces) => futures_util::stream::iter(pieces.into_iter().map(Ok)).left_stream(),
        Err(error) => futures_util::stream::once(async move { Err(error) }).right_stream(),
    })
}

/// How long the rendering is: renders it once, keeping nothing.
pub async fn measure(
    store: Store,
    session: &SessionRecord,
    format: Format,
    only_event: Option<i64>,
) -> Result<u64, std::io::Error> {
    use futures_util::TryStreamExt;
    render(store, session, format, only_event, 0)
        .try_fold(0u64, |total, piece| async move {
            Ok(total + piece.len() as u64)
        })
        .await
}

enum Current {
    Output { seq: i64, offset: u64, total: u64 },
    Rows { seq: i64, offset: u64, total: u64 },
}

struct Renderer {
    store: Store,
    session_id: String,
    format: Format,
    database: bool,
    only_event: Option<i64>,
    after_seq: i64,
    events: VecDeque<EventRecord>,
    exhausted: bool,
    current: Option<Current>,
    /// Bytes still to be dropped from the front (a ranged request).
    skip: u64,
}

impl Renderer {
    /// Sends each window's pieces to `windows` until the end, an error (sent last), or the
    /// reader's going away.
    async fn run(mut self, windows: tokio::sync::mpsc::Sender<Result<Vec<Bytes>, std::io::Error>>) {
        loop {
            let window = match self.next_window().await {
                Ok(Some(pieces)) => Ok(pieces),
                Ok(None) => return,
                Err(error) => Err(std::io::Error::other(error)),
            };
            let failed = window.is_err();
            if windows.send(window).await.is_err() || failed {
                return;
            }
        }
    }

    /// The next window's non-empty pieces, or None at the end.
    async fn next_window(&mut self) -> Result<Option<Vec<Bytes>>, StoreError> {
        loop {
            let pieces = match self.current.take() {
                Some(current) => self.continue_current(current).await?,
                None => match self.next_event().await? {
                    Some(event) => vec![Bytes::from(self.start_event(&event))],
                    None => return Ok(None),
                },
            };
            let pieces = self.after_skip(pieces);
            if !pieces.is_empty() {
                return Ok(Some(pieces));
            }
        }
    }

    async fn next_event(&mut self) -> Result<Option<EventRecord>, StoreError> {
        if self.events.is_empty() && !self.exhausted {
            let page = self
                .store
                .session_events(&self.session_id, self.after_seq, EVENTS_PER_PAGE)
                .await?;
            self.exhausted = page.len() < EVENTS_PER_PAGE as usize;
            self.events.extend(page);
        }
        let event = self.events.pop_front();
        if let Some(event) = &event {
            self.after_seq = event.seq;
        }
        Ok(event)
    }

    /// What an event contributes by itself; output and rows follow through `current`.
    fn start_event(&mut self, event: &EventRecord) -> Vec<u8> {
        let kind = Some(event.kind);
        let columns: Option<Vec<Column>> = event
            .columns
            .as_deref()
            .and_then(|json| serde_json::from_str(json).ok());
        match kind {
            Some(EventKind::Output) if self.format != Format::Csv => {
                self.current = Some(Current::Output {
                    seq: event.seq,
                    offset: 0,
                    total: event.bytes as u64,
                });
            }
            Some(EventKind::Result)
                if self.format != Format::Csv || self.only_event == Some(event.seq) =>
            {
                self.current = Some(Current::Rows {
                    seq: event.seq,
                    offset: 0,
                    total: event.row_count as u64,
                });
            }
            _ => {}
        }
        match self.format {
            Format::Jsonl => {
                let line = json!({
                    "type": "event",
                    "seq": event.seq,
                    "at": Timestamp::from_micros(event.at_us),
                    "kind": event.kind,
                    "summary": event.summary,
                    "text": event.body,
                    "code": event.code,
                    "exit_code": event.exit_code,
                    "columns": columns,
                    "bytes": event.bytes,
                    "rows": event.row_count,
                });
                json_line(&line)
            }
            Format::Csv if self.only_event == Some(event.seq) => {
                let names: Vec<Cell> = columns
                    .unwrap_or_default()
                    .into_iter()
                    .map(|column| Cell::Text(column.name))
                    .collect();
                let mut header = Vec::new();
                Delimited::Csv.row(&mut header, &names);
                header
            }
            // Never rendered here: a cast is `super::cast`'s, and only terminal sessions have one.
            Format::Csv | Format::Cast => Vec::new(),
            // A command session's text is its output, byte for byte, so its length is known
            // up front and ranges resume exactly; notes and errors are in the jsonl log.
            Format::Txt if !self.database => Vec::new(),
            Format::Txt => match kind {
                Some(EventKind::Input) if self.database => {
                    let text = event.body.as_deref().unwrap_or(&event.summary);
                    let commented: Vec<String> =
                        text.lines().map(|line| format!("-- {line}\n")).collect();
                    commented.concat().into_bytes()
                }
                Some(EventKind::Result) => {
                    let names: Vec<String> = columns
                        .unwrap_or_default()
                        .into_iter()
                        .map(|column| column.name)
                        .collect();
                    format!("{}\n", names.join("\t")).into_bytes()
                }
                Some(EventKind::Error) => format!(
                    "ERROR: {}\n",
                    event.body.as_deref().unwrap_or(&event.summary)
                )
                .into_bytes(),
                Some(EventKind::Note) => format!("-- {}\n", event.summary).into_bytes(),
                _ => Vec::new(),
            },
        }
    }

    /// The next window of the event being rendered, as pieces: stored output chunks as they
    /// were read, anything rendered as one piece.
    async fn continue_current(&mut self, current: Current) -> Result<Vec<Bytes>, StoreError> {
        match current {
            Current::Output {
                seq,
                mut offset,
                total,
            } => {
                // Whole stretches of output that a ranged request skips are not even read.
                if self.format == Format::Txt && self.skip > 0 {
                    let jump = self.skip.min(total - offset);
                    offset += jump;
                    self.skip -= jump;
                }
                if offset >= total {
                    return Ok(Vec::new());
                }
                let end = (offset + WINDOW_BYTES).min(total);
                let chunks = self
                    .store
                    .output_chunks(&self.session_id, seq, offset as i64, end as i64)
                    .await?;
                let mut pieces = Vec::with_capacity(chunks.len());
                let mut lines = Vec::new();
                for chunk in chunks {
                    let start = chunk.byte_offset as u64;
                    let from = offset.saturating_sub(start) as usize;
                    let to = ((end - start) as usize).min(chunk.data.len());
                    if from >= to {
                        continue;
                    }
                    let bytes = &chunk.data[from..to];
                    match self.format {
                        Format::Jsonl => {
                            let mut line = json!({ "type": "output", "seq": seq, "offset": start + from as u64,
                                "at": Timestamp::from_micros(chunk.at_us), "stream": chunk.stream });
                            match std::str::from_utf8(bytes) {
                                Ok(text) => line["text"] = text.into(),
                                Err(_) => line["base64"] = base64(bytes).into(),
                            }
                            lines.extend(json_line(&line));
                        }
                        // The chunk's own buffer, not a copy of it.
                        _ => pieces.push(Bytes::from(chunk.data).slice(from..to)),
                    }
                }
                if !lines.is_empty() {
                    pieces.push(Bytes::from(lines));
                }
                if end < total {
                    self.current = Some(Current::Output {
                        seq,
                        offset: end,
                        total,
                    });
                }
                Ok(pieces)
            }
            Current::Rows { seq, offset, total } => {
                if offset >= total {
                    return Ok(Vec::new());
                }
                let end = (offset + WINDOW_ROWS).min(total);
                let mut piece = Vec::new();
                for page in self
                    .store
                    .row_pages(&self.session_id, seq, offset as i64, end as i64)
                    .await?
                {
                    let first = page.first_row as u64;
                    let from = first.max(offset);
                    let skip = (from - first) as usize;
                    let take = (end - from) as usize;
                    let unreadable =
                        |error: serde_json::Error| StoreError::Config(error.to_string());
                    match self.format {
                        Format::Csv => Delimited::Csv
                            .page(&mut piece, &page.data, skip, take)
                            .map_err(unreadable)?,
                        Format::Txt | Format::Cast => Delimited::Tsv
                            .page(&mut piece, &page.data, skip, take)
                            .map_err(unreadable)?,
                        // The whole page is wanted: its stored JSON is the line's rows as they are.
                        Format::Jsonl if skip == 0 && first + page.row_count as u64 <= end => {
                            rows_line(&mut piece, seq, from, |out| {
                                out.extend_from_slice(page.data.as_bytes())
                            });
                        }
                        Format::Jsonl => {
                            let rows: Vec<Vec<Cell>> =
                                serde_json::from_str(&page.data).map_err(unreadable)?;
                            let wanted = rows.get(skip..).unwrap_or_default();
                            let wanted = &wanted[..take.min(wanted.len())];
                            if !wanted.is_empty() {
                                rows_line(&mut piece, seq, from, |out| {
                                    serde_json::to_writer(out, wanted)
                                        .expect("writing JSON to memory cannot fail");
                                });
                            }
                        }
                    }
                }
                if end < total {
                    self.current = Some(Current::Rows {
                        seq,
                        offset: end,
                        total,
                    });
                }
                Ok(vec![Bytes::from(piece)])
            }
        }
    }

    /// Drops what a ranged request skips, and empty pieces.
    fn after_skip(&mut self, pieces: Vec<Bytes>) -> Vec<Bytes> {
        pieces
            .into_iter()
            .filter_map(|piece| {
                let dropped = self.skip.min(piece.len() as u64) as usize;
                self.skip -= dropped as u64;
                (dropped < piece.len()).then(|| piece.slice(dropped..))
            })
            .collect()
    }
}

fn json_line(value: &serde_json::Value) -> Vec<u8> {
    let mut line = serde_json::to_vec(value).expect("JSON values serialise");
    line.push(b'\n');
    line
}

/// A `"type":"rows"` line of the jsonl log; `rows` writes the JSON array of rows.
fn rows_line(out: &mut Vec<u8>, seq: i64, offset: u64, rows: impl FnOnce(&mut Vec<u8>)) {
    use std::io::Write;
    // Keys in the order the other lines' `json!` maps write them (sorted).
    write!(out, r#"{{"offset":{offset},"rows":"#).expect("writing to memory cannot fail");
    rows(out);
    writeln!(out, r#","seq":{seq},"type":"rows"}}"#).expect("writing to memory cannot fail");
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_base64_with_padding() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(&[0xff, 0xfe, 0x00, 0x80]), "//4AgA==");
    }
}
