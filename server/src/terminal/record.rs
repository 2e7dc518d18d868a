//! Recording a terminal session as it runs: output bytes with the time they arrived (output
//! chunks of one output event), keystrokes when the connection records them (an output event of
//! the `stdin` stream), each resize as an event, and keyframes of the screen.
//!
//! The relay hands pieces over a bounded queue and never waits for a commit: a task gathers
//! what arrives for up to [`FLUSH_EVERY`] (or [`MAX_CHUNK_BYTES`]) into one chunk and records
//! it. When recording falls behind by [`QUEUE`] pieces the relay waits, and the program's
//! output with it: nothing shown is left out of the record.
//!
//! The screen is kept by a second task (the keyframer), handed the same pieces in order, so
//! emulating the terminal (asciinema's avt, about 50 MB/s on one core) and committing to the
//! store run side by side rather than one after the other.
//!
//! A keyframe (the screen as escape sequences, see [`Screen::dump`]) is stored once the output
//! since the last one reaches [`KEYFRAME_BYTES`], or [`KEYFRAME_EVERY`] has passed since it, and
//! in either case at least 20 times the last keyframe's size, so keyframes add at most about 5%
//! to what a recording stores.

use std::time::{Duration, Instant};

use bytes::Bytes;
use loupe_protocol::{EventKind, Stream};
use tokio::sync::mpsc;

use super::screen::{Screen, Size};
use crate::{
    sessions::recorder::{Append, NewEvent, RecordError, Recorded, Recorder},
    store::{KeyframeRecord, MAX_CHUNK_BYTES, Store, now_us},
};

/// How long output waits to be recorded at most (as a command run's): what arrives within it is
/// one chunk with one time, which a player cannot tell apart at human speed.
const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// Pieces the relay may hand over before it waits for the recording.
const QUEUE: usize = 256;
/// Output between keyframes at least (a screen of 200×60 dumps to about 20 KiB at most with
/// colours; 20 times that is the floor past the first).
pub const KEYFRAME_BYTES: u64 = 256 * 1024;
/// Time between keyframes at most while output arrives (a player seeking in a quiet session
/// replays at most this much).
pub const KEYFRAME_EVERY: Duration = Duration::from_secs(30);
/// Keyframes are this many times smaller than the output between them, at least.
const KEYFRAME_RATIO: u64 = 20;

enum Piece {
    Output(i64, Bytes),
    Keys(i64, Bytes),
    Resize(i64, Size),
}

/// The relay's side of a recording.
pub struct Recording {
    pieces: mpsc::Sender<Piece>,
    task: tokio::task::JoinHandle<Result<(), String>>,
}

impl Recording {
    /// Starts recording `session_id`, whose terminal opened at `size` (its first event).
    pub fn start(recorder: Recorder, store: Store, session_id: String, size: Size) -> Recording {
        let (pieces, receiver) = mpsc::channel(QUEUE);
        let (screen, screen_ops) = mpsc::channel(QUEUE);
        let keyframer = Keyframer {
            store,
            session_id: session_id.clone(),
            screen: Screen::new(size),
            clock: KeyframeClock {
                bytes_since: 0,
                since: Instant::now(),
                last_len: 0,
            },
            screen_at_us: now_us(),
        };
        let keyframes = tokio::spawn(keyframer.run(screen_ops));
        let writer = Writer {
            recorder,
            session_id,
            screen: Some(screen),
            output: Pending::default(),
            keys: Pending::default(),
            output_bytes: 0,
            in_flight: None,
        };
        let task = tokio::spawn(async move {
            let written = writer.run(receiver, size).await;
            // The writer has dropped its side: the keyframer finishes what it was handed.
            let _ = keyframes.await;
            written
        });
        Recording { pieces, task }
    }

    /// False once the recording has failed (see [`Recording::finish`] for why).
    pub async fn output(&self, bytes: Bytes) -> bool {
        self.output_at(now_us(), bytes).await
    }

    /// Output that arrived at `at_us` (microseconds since the epoch), for a recording replayed
    /// from elsewhere (a bench's hour of terminal, an imported cast): the pieces' times must not
    /// go back.
    pub async fn output_at(&self, at_us: i64, bytes: Bytes) -> bool {
        self.pieces.send(Piece::Output(at_us, bytes)).await.is_ok()
    }

    pub async fn keys(&self, bytes: Bytes) -> bool {
        self.pieces.send(Piece::Keys(now_us(), bytes)).await.is_ok()
    }

    pub async fn resize(&self, size: Size) -> bool {
        self.pieces
            .send(Piece::Resize(now_us(), size))
            .await
            .is_ok()
    }

    /// Records everything handed over; `Err` says why recording failed.
    pub async fn finish(self) -> Result<(), String> {
        drop(self.pieces);
        self.task
            .await
            .unwrap_or_else(|error| Err(format!("the recording task failed: {error}")))
    }
}

/// Bytes of one stream gathered for one chunk.
#[derive(Default)]
struct Pending {
    at_us: i64,
    data: Vec<u8>,
    /// The output event they go to, once it exists.
    seq: Option<u64>,
}

struct KeyframeClock {
    bytes_since: u64,
    since: Instant,
    last_len: u64,
}

impl KeyframeClock {
    fn due(&self) -> bool {
        let floor = self.last_len * KEYFRAME_RATIO;
        self.bytes_since >= KEYFRAME_BYTES.max(floor)
            || (self.bytes_since > 0
                && self.bytes_since >= floor
                && self.since.elapsed() >= KEYFRAME_EVERY)
    }
}

/// What the keyframer is handed, in the order of the recording.
enum ScreenOp {
    Feed(i64, Bytes),
    Resize(Size),
    /// Everything fed so far is recorded: the output event `seq` has `byte_offset` bytes.
    Recorded {
        seq: u64,
        byte_offset: u64,
        bytes: u64,
    },
}

/// Writes the recording to the store. The screen is the keyframer's, in a task of its own, so
/// emulating the terminal and committing run side by side.
struct Writer {
    recorder: Recorder,
    session_id: String,
    /// None once keyframes stop (output reached the storage limit: keyframes past what is kept
    /// would be of nothing).
    screen: Option<mpsc::Sender<ScreenOp>>,
    output: Pending,
    keys: Pending,
    /// Output bytes recorded so far.
    output_bytes: u64,
    /// The commit of the output written last, while it is under way: the next piece is queued
    /// before it returns, so gathering and committing overlap (the recorder keeps the order).
    in_flight: Option<Commit>,
}

type Commit = std::pin::Pin<Box<dyn Future<Output = Result<Recorded, RecordError>> + Send + Sync>>;

impl Writer {
    async fn run(mut self, mut pieces: mpsc::Receiver<Piece>, size: Size) -> Result<(), String> {
        self.event(NewEvent {
            text: Some(size.to_text()),
            ..NewEvent::new(
                EventKind::Resize,
                format!("terminal {}×{}", size.cols, size.rows),
            )
        })
        .await?;
        let mut tick = tokio::time::interval(FLUSH_EVERY);
        loop {
            tokio::select! {
                piece = pieces.recv() => match piece {
                    Some(Piece::Output(at_us, bytes)) => {
                        self.hand_to_keyframer(ScreenOp::Feed(at_us, bytes.clone())).await;
                        if gather(&mut self.output, at_us, &bytes) {
                            self.flush_output().await?;
                        }
                    }
                    Some(Piece::Keys(at_us, bytes)) => {
                        if gather(&mut self.keys, at_us, &bytes) {
                            self.flush_keys().await?;
                        }
                    }
                    Some(Piece::Resize(at_us, size)) => {
                        self.flush().await?;
                        self.hand_to_keyframer(ScreenOp::Resize(size)).await;
                        self.event(NewEvent {
                            at_us,
                            text: Some(size.to_text()),
                            ..NewEvent::new(EventKind::Resize, format!("resized to {}×{}", size.cols, size.rows))
                        })
                        .await?;
                    }
                    None => {
                        self.flush().await?;
                        return self.settle().await;
                    }
                },
                _ = tick.tick() => self.flush().await?,
            }
        }
    }

    async fn hand_to_keyframer(&mut self, op: ScreenOp) {
        if let Some(screen) = &self.screen
            && screen.send(op).await.is_err()
        {
            self.screen = None;
        }
    }

    async fn event(&self, event: NewEvent) -> Result<(), String> {
        self.recorder
            .record(&self.session_id, vec![Append::Event(event)])
            .await
            .map(drop)
            .map_err(|error| error.to_string())
    }

    async fn flush(&mut self) -> Result<(), String> {
        self.flush_keys().await?;
        self.flush_output().await
    }

    async fn flush_output(&mut self) -> Result<(), String> {
        let Some(seq) = self.output.seq else {
            // The first piece creates the output event: its seq is needed before the next.
            let Some((seq, truncated, bytes)) = record(
                &self.recorder,
                &self.session_id,
                &mut self.output,
                Stream::Stdout,
            )
            .await?
            else {
                return Ok(());
            };
            return self.recorded(seq, truncated, bytes).await;
        };
        if self.output.data.is_empty() {
            return Ok(());
        }
        let data = std::mem::take(&mut self.output.data);
        let bytes = data.len() as u64;
        let append = Append::Output {
            seq: Some(seq),
            stream: Stream::Stdout,
            at_us: self.output.at_us,
            data,
        };
        let commit = self
            .recorder
            .submit(&self.session_id, vec![append])
            .await
            .map_err(|error| error.to_string())?;
        let truncated = match self.in_flight.replace(Box::pin(commit)) {
            Some(previous) => previous.await.map_err(|error| error.to_string())?.truncated,
            None => false,
        };
        self.recorded(seq, truncated, bytes).await
    }

    /// Waits for the output under way to be committed.
    async fn settle(&mut self) -> Result<(), String> {
        if let Some(commit) = self.in_flight.take() {
            commit.await.map_err(|error| error.to_string())?;
        }
        Ok(())
    }

    /// Tells the keyframer that `bytes` more of the output event `seq` are recorded (keyframes
    /// stop once the storage limit cut the output).
    async fn recorded(&mut self, seq: u64, truncated: bool, bytes: u64) -> Result<(), String> {
        if truncated && self.screen.take().is_some() {
            // Said once, where it happened: the terminal goes on, its record does not.
            self.event(NewEvent::new(
                EventKind::Note,
                "output past the storage limit (LOUPE_MAX_OUTPUT_BYTES) is not kept",
            ))
            .await?;
        }
        self.output_bytes += bytes;
        let recorded = ScreenOp::Recorded {
            seq,
            byte_offset: self.output_bytes,
            bytes,
        };
        self.hand_to_keyframer(recorded).await;
        Ok(())
    }

    async fn flush_keys(&mut self) -> Result<(), String> {
        record(
            &self.recorder,
            &self.session_id,
            &mut self.keys,
            Stream::Stdin,
        )
        .await
        .map(drop)
    }
}

/// Keeps the terminal's screen from the recorded output and stores a keyframe when one is due.
struct Keyframer {
    store: Store,
    session_id: String,
    screen: Screen,
    clock: KeyframeClock,
    /// When the last output the screen holds arrived: a keyframe's time, so that every byte
    /// after a keyframe arrived at or after it.
    screen_at_us: i64,
}

impl Keyframer {
    async fn run(mut self, mut ops: mpsc::Receiver<ScreenOp>) {
        while let Some(op) = ops.recv().await {
            match op {
                ScreenOp::Feed(at_us, bytes) => {
                    self.screen.feed(&bytes);
                    self.screen_at_us = at_us;
                }
                ScreenOp::Resize(size) => self.screen.resize(size),
                ScreenOp::Recorded {
                    seq,
                    byte_offset,
                    bytes,
                } => {
                    self.clock.bytes_since += bytes;
                    if self.clock.due() {
                        self.keyframe(seq, byte_offset).await;
                    }
                }
            }
        }
    }

    async fn keyframe(&mut self, seq: u64, byte_offset: u64) {
        let size = self.screen.size();
        let keyframe = KeyframeRecord {
            seq: seq as i64,
            byte_offset: byte_offset as i64,
            at_us: self.screen_at_us,
            cols: i32::from(size.cols),
            rows: i32::from(size.rows),
            screen: self.screen.dump(),
        };
        self.clock = KeyframeClock {
            bytes_since: 0,
            since: Instant::now(),
            last_len: keyframe.screen.len() as u64,
        };
        // A keyframe is derived from the output: one that is lost only makes seeking replay
        // more.
        if let Err(error) = self
            .store
            .insert_keyframe(&self.session_id, &keyframe)
            .await
        {
            tracing::warn!(session = %self.session_id, %error, "could not store a keyframe");
        }
    }
}

/// Adds `bytes` to `pending`; true when it is full and must be written now.
fn gather(pending: &mut Pending, at_us: i64, bytes: &[u8]) -> bool {
    if pending.data.is_empty() {
        pending.at_us = at_us;
    }
    pending.data.extend_from_slice(bytes);
    pending.data.len() >= MAX_CHUNK_BYTES
}

/// Writes what `pending` holds as output of `stream`: the event's seq, whether the storage
/// limit cut it, and how many bytes were kept; none when nothing was pending.
async fn record(
    recorder: &Recorder,
    session_id: &str,
    pending: &mut Pending,
    stream: Stream,
) -> Result<Option<(u64, bool, u64)>, String> {
    if pending.data.is_empty() {
        return Ok(None);
    }
    let data = std::mem::take(&mut pending.data);
    let length = data.len() as u64;
    let recorded = recorder
        .record(
            session_id,
            vec![Append::Output {
                seq: pending.seq,
                stream,
                at_us: pending.at_us,
                data,
            }],
        )
        .await
        .map_err(|error| error.to_string())?;
    let seq = recorded.seqs[0];
    pending.seq = Some(seq);
    Ok(Some((
        seq,
        recorded.truncated,
        if recorded.truncated { 0 } else { length },
    )))
}
