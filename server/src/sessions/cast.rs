//! A terminal session's downloads: asciicast v2 (the timed recording, as asciinema plays it:
//! <https://docs.asciinema.org/manual/asciicast/v2/>) and its text (the lines the terminal
//! showed, escape sequences resolved, see [`Transcriber`]).
//!
//! Both merge, in time order, the output event's chunks, the keystrokes' (where they were
//! recorded) and the resize events, reading a window of each at a time: memory stays flat
//! whatever the recording's length.

use std::collections::VecDeque;

use axum::body::Bytes;
use futures_util::Stream;
use loupe_protocol::{EventKind, SessionType, Stream as OutputStream, Verb};
use serde_json::json;

use crate::{
    store::{ChunkRecord, SessionRecord, Store, StoreError},
    terminal::screen::{Size, Transcriber, Utf8Carry},
};

/// Output read from the store at once, per stream.
const WINDOW_BYTES: u64 = 1024 * 1024;
/// What one piece of the download holds before it is sent, at least.
const PIECE_BYTES: usize = 64 * 1024;
const EVENTS_PER_PAGE: u32 = 500;

/// Whether `session` is an interactive terminal's (downloads as a cast, its text resolved).
pub fn is_terminal(session: &SessionRecord) -> bool {
    session.session_type == SessionType::Ssh && session.verb == Verb::Connect
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Cast,
    Text,
}

/// One stream of bytes of the recording, read a window at a time.
struct Source {
    seq: i64,
    /// asciicast's event code: `o` output, `i` input.
    code: &'static str,
    offset: u64,
    total: u64,
    chunks: VecDeque<ChunkRecord>,
    carry: Utf8Carry,
}

struct Renderer {
    store: Store,
    session_id: String,
    kind: Kind,
    started_at_us: i64,
    title: String,
    sources: Vec<Source>,
    resizes: VecDeque<(i64, Size)>,
    /// The header (cast) or the first size (text) is still to come.
    first: Option<Size>,
    transcriber: Option<Transcriber>,
    done: bool,
}

/// The download of a terminal session as `kind`.
pub fn render(
    store: Store,
    session: &SessionRecord,
    kind: Kind,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let opening = Opening {
        store,
        session_id: session.id.clone(),
        kind,
        started_at_us: session.started_at_us,
        title: session.summary.clone(),
    };
    futures_util::stream::try_unfold(Step::Opening(opening), |step| async move {
        let mut renderer = match step {
            Step::Opening(opening) => Renderer::open(opening)
                .await
                .map_err(std::io::Error::other)?,
            Step::Open(renderer) => *renderer,
        };
        match renderer.next_piece().await.map_err(std::io::Error::other)? {
            Some(piece) => Ok(Some((piece, Step::Open(Box::new(renderer))))),
            None => Ok(None),
        }
    })
}

/// What opening a renderer needs (it reads the session's events first).
struct Opening {
    store: Store,
    session_id: String,
    kind: Kind,
    started_at_us: i64,
    title: String,
}

enum Step {
    Opening(Opening),
    Open(Box<Renderer>),
}

impl Renderer {
    async fn open(opening: Opening) -> Result<Renderer, StoreError> {
        let Opening {
            store,
            session_id,
            kind,
            started_at_us,
            title,
        } = opening;
        let mut sources = Vec::new();
        let mut resizes = VecDeque::new();
        let mut after = 0;
        loop {
            let page = store
                .session_events(&session_id, after, EVENTS_PER_PAGE)
                .await?;
            for event in &page {
                match event.kind {
                    EventKind::Output => sources.push(Source {
                        seq: event.seq,
                        // The keystrokes' event is named for its stream (see the recorder).
                        code: if event.summary == OutputStream::Stdin.as_str() {
                            "i"
                        } else {
                            "o"
                        },
                        offset: 0,
                        total: event.bytes as u64,
                        chunks: VecDeque::new(),
                        carry: Utf8Carry::default(),
                    }),
                    EventKind::Resize => {
                        if let Some(size) = event.body.as_deref().and_then(Size::parse) {
                            resizes.push_back((event.at_us, size));
                        }
                    }
                    _ => {}
                }
            }
            match page.last() {
                Some(last) if page.len() == EVENTS_PER_PAGE as usize => after = last.seq,
                _ => break,
            }
        }
        if kind == Kind::Text {
            sources.retain(|source| source.code == "o");
        }
        let first = resizes.pop_front().map_or(Size::DEFAULT, |(_, size)| size);
        Ok(Renderer {
            store,
            session_id,
            kind,
            started_at_us,
            title,
            sources,
            resizes,
            first: Some(first),
            transcriber: None,
            done: false,
        })
    }

    /// Seconds since the start, as asciicast writes them (microsecond precision).
    fn seconds(&self, at_us: i64) -> f64 {
        (at_us - self.started_at_us).max(0) as f64 / 1e6
    }

    /// Makes sure every source with bytes left has its next chunk in memory.
    async fn fill(&mut self) -> Result<(), StoreError> {
        for source in &mut self.sources {
            if !source.chunks.is_empty() || source.offset >= source.total {
                continue;
            }
            let end = (source.offset + WINDOW_BYTES).min(source.total);
            let chunks = self
                .store
                .output_chunks(
                    &self.session_id,
                    source.seq,
                    source.offset as i64,
                    end as i64,
                )
                .await?;
            for chunk in chunks {
                let chunk_end = chunk.byte_offset as u64 + chunk.data.len() as u64;
                if chunk_end > source.offset {
                    source.offset = chunk_end;
                    source.chunks.push_back(chunk);
                }
            }
            if source.chunks.is_empty() {
                // The event says more bytes than are stored (cut by the storage limit).
                source.offset = source.total;
            }
        }
        Ok(())
    }

    async fn next_piece(&mut self) -> Result<Option<Bytes>, StoreError> {
        if self.done {
            return Ok(None);
        }
        let mut piece = Vec::with_capacity(PIECE_BYTES + 4096);
        if let Some(size) = self.first.take() {
            match self.kind {
                Kind::Cast => {
                    let header = json!({
                        "version": 2,
                        "width": size.cols,
                        "height": size.rows,
                        "timestamp": self.started_at_us / 1_000_000,
                        "title": self.title,
                        "env": { "TERM": "xterm-256color" },
                    });
                    piece.extend_from_slice(header.to_string().as_bytes());
                    piece.push(b'\n');
                }
                Kind::Text => self.transcriber = Some(Transcriber::new(size)),
            }
        }
        while piece.len() < PIECE_BYTES {
            self.fill().await?;
            let next_chunk = self
                .sources
                .iter()
                .enumerate()
                .filter_map(|(index, source)| {
                    source.chunks.front().map(|chunk| (chunk.at_us, index))
                })
                .min();
            let next_resize = self.resizes.front().map(|(at_us, _)| *at_us);
            match (next_chunk, next_resize) {
                (None, None) => {
                    if let Some(transcriber) = self.transcriber.take() {
                        push_lines(&mut piece, transcriber.finish());
                    }
                    self.done = true;
                    break;
                }
                (Some((at_us, index)), resize) if resize.is_none_or(|resize| at_us <= resize) => {
                    let chunk = self.sources[index]
                        .chunks
                        .pop_front()
                        .expect("a front chunk");
                    let seconds = self.seconds(at_us);
                    let source = &mut self.sources[index];
                    match self.kind {
                        Kind::Cast => {
                            let text = source.carry.decode(&chunk.data);
                            if !text.is_empty() {
                                let line = json!([seconds, source.code, text]);
                                piece.extend_from_slice(line.to_string().as_bytes());
                                piece.push(b'\n');
                            }
                        }
                        Kind::Text => {
                            if let Some(transcriber) = &mut self.transcriber {
                                push_lines(&mut piece, transcriber.feed(&chunk.data));
                            }
                        }
                    }
                }
                _ => {
                    let (at_us, size) = self.resizes.pop_front().expect("a front resize");
                    match self.kind {
                        Kind::Cast => {
                            let line = json!([self.seconds(at_us), "r", size.to_text()]);
                            piece.extend_from_slice(line.to_string().as_bytes());
                            piece.push(b'\n');
                        }
                        Kind::Text => {
                            if let Some(transcriber) = &mut self.transcriber {
                                push_lines(&mut piece, transcriber.resize(size));
                            }
                        }
                    }
                }
            }
        }
        Ok((!piece.is_empty()).then(|| Bytes::from(piece)))
    }
}

fn push_lines(piece: &mut Vec<u8>, lines: Vec<String>) {
    for line in lines {
        piece.extend_from_slice(line.as_bytes());
        piece.push(b'\n');
    }
}
