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
}

/// What happened at a moment of a terminal session.
pub enum Moment {
    /// Bytes of a stream: `o` what the terminal showed, `i` what was typed.
    Bytes {
        code: &'static str,
        data: Vec<u8>,
    },
    Resize(Size),
}

/// What a terminal session's events say of its recording: read once, a page at a time.
pub struct TerminalEvents {
    /// The terminal's output event: its seq and its bytes.
    pub output: Option<(u64, u64)>,
    /// The keystrokes' event, where the connection records them (named for its stream, see
    /// the terminal recorder).
    pub keystrokes: Option<(u64, u64)>,
    /// Every size the terminal had, in order, with when (µs): the first is the one it opened
    /// with.
    pub sizes: Vec<(i64, Size)>,
}

impl TerminalEvents {
    pub async fn read(store: &Store, session_id: &str) -> Result<TerminalEvents, StoreError> {
        let mut found = TerminalEvents {
            output: None,
            keystrokes: None,
            sizes: Vec::new(),
        };
        let mut after = 0;
        loop {
            let page = store
                .session_events(session_id, after, EVENTS_PER_PAGE)
                .await?;
            for event in &page {
                let stream = (event.seq as u64, event.bytes as u64);
                match event.kind {
                    EventKind::Output if event.summary == OutputStream::Stdin.as_str() => {
                        found.keystrokes = Some(stream);
                    }
                    EventKind::Output => found.output = Some(stream),
                    EventKind::Resize => {
                        if let Some(size) = event.body.as_deref().and_then(Size::parse) {
                            found.sizes.push((event.at_us, size));
                        }
                    }
                    _ => {}
                }
            }
            match page.last() {
                Some(last) if page.len() == EVENTS_PER_PAGE as usize => after = last.seq,
                _ => return Ok(found),
            }
        }
    }
}

/// A terminal session's recording in time order: its output, its keystrokes (where recorded)
/// and its resizes merged, read a window of each stream at a time.
pub struct Timeline {
    store: Store,
    session_id: String,
    sources: Vec<Source>,
    resizes: VecDeque<(i64, Size)>,
    /// The size the terminal opened with.
    pub first_size: Size,
}

impl Timeline {
    /// The session's timeline; with `with_keystrokes` false, only what the terminal showed.
    pub async fn open(
        store: Store,
        session_id: &str,
        with_keystrokes: bool,
    ) -> Result<Timeline, StoreError> {
        let events = TerminalEvents::read(&store, session_id).await?;
        let typed = events.keystrokes.filter(|_| with_keystrokes);
        let sources = [(events.output, "o"), (typed, "i")]
            .into_iter()
            .filter_map(|(event, code)| {
                let (seq, total) = event?;
                Some(Source {
                    seq: seq as i64,
                    code,
                    offset: 0,
                    total,
                    chunks: VecDeque::new(),
                })
            })
            .collect();
        let mut resizes = VecDeque::from(events.sizes);
        let first_size = resizes.pop_front().map_or(Size::DEFAULT, |(_, size)| size);
        Ok(Timeline {
            store,
            session_id: session_id.to_owned(),
            sources,
            resizes,
            first_size,
        })
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

    /// The next moment and when it was (microseconds since the epoch); none at the end.
    pub async fn next(&mut self) -> Result<Option<(i64, Moment)>, StoreError> {
        self.fill().await?;
        let next_chunk = self
            .sources
            .iter()
            .enumerate()
            .filter_map(|(index, source)| source.chunks.front().map(|chunk| (chunk.at_us, index)))
            .min();
        let next_resize = self.resizes.front().map(|(at_us, _)| *at_us);
        Ok(match (next_chunk, next_resize) {
            (None, None) => None,
            (Some((at_us, index)), resize) if resize.is_none_or(|resize| at_us <= resize) => {
                let source = &mut self.sources[index];
                let chunk = source.chunks.pop_front().expect("a front chunk");
                Some((
                    at_us,
                    Moment::Bytes {
                        code: source.code,
                        data: chunk.data,
                    },
                ))
            }
            _ => self
                .resizes
                .pop_front()
                .map(|(at_us, size)| (at_us, Moment::Resize(size))),
        })
    }
}

struct Renderer {
    kind: Kind,
    started_at_us: i64,
    title: String,
    timeline: Timeline,
    /// One carry per stream code, so a character cut between chunks stays whole.
    carries: [Utf8Carry; 2],
    /// The header (cast) or the transcriber (text) is still to be set up.
    started: bool,
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
        let timeline = Timeline::open(
            opening.store,
            &opening.session_id,
            opening.kind == Kind::Cast,
        )
        .await?;
        Ok(Renderer {
            kind: opening.kind,
            started_at_us: opening.started_at_us,
            title: opening.title,
            timeline,
            carries: [Utf8Carry::default(), Utf8Carry::default()],
            started: false,
            transcriber: None,
            done: false,
        })
    }

    /// Seconds since the start, as asciicast writes them (microsecond precision).
    fn seconds(&self, at_us: i64) -> f64 {
        (at_us - self.started_at_us).max(0) as f64 / 1e6
    }

    async fn next_piece(&mut self) -> Result<Option<Bytes>, StoreError> {
        if self.done {
            return Ok(None);
        }
        let mut piece = Vec::with_capacity(PIECE_BYTES + 4096);
        if !self.started {
            self.started = true;
            let size = self.timeline.first_size;
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
            let Some((at_us, moment)) = self.timeline.next().await? else {
                if let Some(transcriber) = self.transcriber.take() {
                    push_lines(&mut piece, transcriber.finish());
                }
                self.done = true;
                break;
            };
            let seconds = self.seconds(at_us);
            match (self.kind, moment) {
                (Kind::Cast, Moment::Bytes { code, data }) => {
                    let carry = &mut self.carries[usize::from(code == "i")];
                    let text = carry.decode(&data);
                    if !text.is_empty() {
                        push_json(&mut piece, &json!([seconds, code, text]));
                    }
                }
                (Kind::Cast, Moment::Resize(size)) => {
                    push_json(&mut piece, &json!([seconds, "r", size.to_text()]));
                }
                (Kind::Text, Moment::Bytes { data, .. }) => {
                    if let Some(transcriber) = &mut self.transcriber {
                        push_lines(&mut piece, transcriber.feed(&data));
                    }
                }
                (Kind::Text, Moment::Resize(size)) => {
                    if let Some(transcriber) = &mut self.transcriber {
                        push_lines(&mut piece, transcriber.resize(size));
                    }
                }
            }
        }
        Ok((!piece.is_empty()).then(|| Bytes::from(piece)))
    }
}

fn push_json(piece: &mut Vec<u8>, value: &serde_json::Value) {
    piece.extend_from_slice(value.to_string().as_bytes());
    piece.push(b'\n');
}

fn push_lines(piece: &mut Vec<u8>, lines: Vec<String>) {
    for line in lines {
        piece.extend_from_slice(line.as_bytes());
        piece.push(b'\n');
    }
}
