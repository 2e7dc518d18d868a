//! Recording a terminal session as it runs: output bytes with the time they arrived (output
//! chunks of one output event), keystrokes when the connection records them (an output event of
//! the `stdin` stream), each resize as an event, and keyframes of the screen.
//!
//! The relay hands pieces over a bounded queue and never waits for a commit: a task gathers
//! what arrives for up to [`FLUSH_EVERY`] (or [`MAX_CHUNK_BYTES`]) into one chunk and records
//! it. When recording falls behind by [`QUEUE`] pieces the relay waits, and the program's
//! output with it: nothing shown is left out of the record.
//!
//! Keyframes are derived from the record, off the relay's path: the keyframer is told what is
//! committed (with a copy of the bytes while fewer than [`COPIES_HELD`] wait for it, else it
//! reads them back from the store) and feeds them to a screen on a thread of its own at the
//! lowest CPU priority (nice 19). Emulating the terminal (asciinema's avt, about
//! 50 MB/s on one core) is most of what a busy terminal costs Loupe, so it takes only the CPU
//! the relay, the SSH crypto and the store leave, and a terminal pouring out output is never
//! slowed by it. Keyframes then come late (they catch up once the machine has room), which only
//! makes a seek into the newest output replay more from the keyframe before it; memory stays
//! bounded however far behind the keyframer is: past [`COPIES_HELD`] the bytes wait in the
//! store, and what queues is a few bytes per commit. A keyframer that cannot read the store
//! stops for the rest of the session (its keyframes are only a shortcut).
//!
//! A keyframe (the screen as escape sequences, see [`Screen::dump`]) is stored once the output
//! since the last one reaches [`KEYFRAME_BYTES`], or [`KEYFRAME_EVERY`] of the recording's time
//! has passed since it, and in either case at least 20 times the last keyframe's size, so
//! keyframes add at most about 5% to what a recording stores.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

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
/// Time between keyframes at most while output arrives, in the recording's time (a player
/// seeking in a quiet session replays at most this much).
pub const KEYFRAME_EVERY: Duration = Duration::from_secs(30);
/// Keyframes are this many times smaller than the output between them, at least.
const KEYFRAME_RATIO: u64 = 20;
/// Bytes of output copied for the keyframer that may wait for it: past this it reads the
/// output back from the store instead, so a keyframer far behind costs no memory.
pub const COPIES_HELD: u64 = 4 * 1024 * 1024;
/// Output the keyframer reads back from the store at once, in bytes.
const READ_BACK_BYTES: u64 = 1024 * 1024;
/// Chunks (copied or read back, about 64 KiB each) that may wait for the screen thread: the
/// keyframer reads no further ahead than this and one read ([`READ_BACK_BYTES`]).
const SCREEN_QUEUE: usize = 16;

enum Piece {
    Output(i64, Bytes),
    Keys(i64, Bytes),
    Resize(i64, Size),
}

/// The relay's side of a recording.
pub struct Recording {
    pieces: mpsc::Sender<Piece>,
    task: tokio::task::JoinHandle<Result<(), String>>,
    keyframes: tokio::task::JoinHandle<()>,
}

impl Recording {
    /// Starts recording `session_id`, whose terminal opened at `size` (its first event).
    pub fn start(recorder: Recorder, store: Store, session_id: String, size: Size) -> Recording {
        Self::start_copying(recorder, store, session_id, size, COPIES_HELD)
    }

    /// [`Recording::start`] with at most `copies_held` bytes of output copied for the
    /// keyframer ([`COPIES_HELD`] there): with 0, every byte is read back from the store, as
    /// for a keyframer far behind.
    pub fn start_copying(
        recorder: Recorder,
        store: Store,
        session_id: String,
        size: Size,
        copies_held: u64,
    ) -> Recording {
        let (pieces, receiver) = mpsc::channel(QUEUE);
        let (progress, progress_receiver) = mpsc::unbounded_channel();
        let held = Arc::new(AtomicU64::new(0));
        let keyframer = Keyframer {
            store,
            session_id: session_id.clone(),
            read: 0,
            held: held.clone(),
        };
        let keyframes = tokio::spawn(keyframer.run(size, progress_receiver));
        let writer = Writer {
            recorder,
            session_id,
            keyframer: Some(progress),
            cut_said: false,
            held,
            copies_held,
            output: Pending::default(),
            keys: Pending::default(),
            output_bytes: 0,
            in_flight: None,
        };
        let task = tokio::spawn(writer.run(receiver, size));
        Recording {
            pieces,
            task,
            keyframes,
        }
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

    /// Records everything handed over; `Err` says why recording failed. Keyframes may still
    /// be on their way (see the module's docs): they finish on their own.
    pub async fn finish(self) -> Result<(), String> {
        self.finish_record().await.0
    }

    /// [`Recording::finish`], then waits for the keyframes too (a bench or a test reading
    /// them next).
    pub async fn finish_with_keyframes(self) -> Result<(), String> {
        let (recorded, keyframes) = self.finish_record().await;
        let _ = keyframes.await;
        recorded
    }

    /// Closes the queue and waits for the writer; the keyframer's task is handed back.
    async fn finish_record(self) -> (Result<(), String>, tokio::task::JoinHandle<()>) {
        drop(self.pieces);
        let recorded = self
            .task
            .await
            .unwrap_or_else(|error| Err(format!("the recording task failed: {error}")));
        (recorded, self.keyframes)
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

/// What the writer tells the keyframer, in the order of the recording.
enum Progress {
    /// The output event `seq` has its first `recorded` bytes committed to the store; the last
    /// of them arrived from `at_us` on and are in `copy` when the writer could spare one.
    Committed {
        seq: u64,
        recorded: u64,
        at_us: i64,
        copy: Option<Bytes>,
    },
    /// The terminal took this size after everything committed so far.
    Resize(Size),
}

/// Writes the recording to the store and tells the keyframer how far it is.
struct Writer {
    recorder: Recorder,
    session_id: String,
    /// None once keyframes stop (output reached the storage limit: keyframes past what is kept
    /// would be of nothing; or the keyframer gave up). Unbounded, as what it carries is a few
    /// bytes per chunk committed (and the copies, bounded by `copies_held`).
    keyframer: Option<mpsc::UnboundedSender<Progress>>,
    /// Whether the storage limit's note is recorded (once, where it happened).
    cut_said: bool,
    /// Bytes of the copies made for the keyframer that it has not taken yet (the one under way
    /// included), and how many there may be.
    held: Arc<AtomicU64>,
    copies_held: u64,
    output: Pending,
    keys: Pending,
    /// Output bytes committed so far.
    output_bytes: u64,
    /// The commit of the output written last, while it is under way: the next piece is queued
    /// before it returns, so gathering and committing overlap (the recorder keeps the order).
    in_flight: Option<InFlight>,
}

struct InFlight {
    commit: Commit,
    at_us: i64,
    bytes: u64,
    copy: Option<Bytes>,
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
                        // The keyframer reads what is committed: the output before the resize
                        // must be, before it hears of the resize.
                        self.flush().await?;
                        self.settle().await?;
                        self.tell(Progress::Resize(size));
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

    fn tell(&mut self, progress: Progress) {
        if let Some(keyframer) = &self.keyframer
            && keyframer.send(progress).is_err()
        {
            self.keyframer = None;
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
            let at_us = self.output.at_us;
            return self.committed(seq, truncated, at_us, bytes, None).await;
        };
        if self.output.data.is_empty() {
            return Ok(());
        }
        let data = std::mem::take(&mut self.output.data);
        let at_us = self.output.at_us;
        let bytes = data.len() as u64;
        let copy = self.copy_for_keyframer(&data);
        let append = Append::Output {
            seq: Some(seq),
            stream: Stream::Stdout,
            at_us,
            data,
        };
        let commit = self
            .recorder
            .submit(&self.session_id, vec![append])
            .await
            .map_err(|error| error.to_string())?;
        let under_way = InFlight {
            commit: Box::pin(commit),
            at_us,
            bytes,
            copy,
        };
        match self.in_flight.replace(under_way) {
            Some(previous) => self.settled(seq, previous).await,
            None => Ok(()),
        }
    }

    /// A copy of `data` for the keyframer, unless the copies it has not taken yet would be
    /// more than `copies_held` (or keyframes stopped).
    fn copy_for_keyframer(&self, data: &[u8]) -> Option<Bytes> {
        self.keyframer.as_ref()?;
        let length = data.len() as u64;
        let held = self.held.load(Ordering::Relaxed);
        (held + length <= self.copies_held).then(|| {
            self.held.fetch_add(length, Ordering::Relaxed);
            Bytes::copy_from_slice(data)
        })
    }

    /// Waits for the output under way to be committed.
    async fn settle(&mut self) -> Result<(), String> {
        if let (Some(under_way), Some(seq)) = (self.in_flight.take(), self.output.seq) {
            self.settled(seq, under_way).await?;
        }
        Ok(())
    }

    async fn settled(&mut self, seq: u64, under_way: InFlight) -> Result<(), String> {
        let InFlight {
            commit,
            at_us,
            bytes,
            copy,
        } = under_way;
        let truncated = commit.await.map_err(|error| error.to_string())?.truncated;
        self.committed(seq, truncated, at_us, bytes, copy).await
    }

    /// Tells the keyframer that `bytes` more of the output event `seq`, from `at_us` on, are
    /// committed (keyframes stop once the storage limit cut the output).
    async fn committed(
        &mut self,
        seq: u64,
        truncated: bool,
        at_us: i64,
        bytes: u64,
        copy: Option<Bytes>,
    ) -> Result<(), String> {
        if truncated && !self.cut_said {
            // Said once, where it happened: the terminal goes on, its record does not.
            self.cut_said = true;
            self.keyframer = None;
            self.event(NewEvent::new(
                EventKind::Note,
                "output past the storage limit (LOUPE_MAX_OUTPUT_BYTES) is not kept",
            ))
            .await?;
        }
        self.output_bytes += bytes;
        let recorded = self.output_bytes;
        self.tell(Progress::Committed {
            seq,
            recorded,
            at_us,
            copy,
        });
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

/// What the screen thread is handed, in the order of the recording.
enum ScreenWork {
    /// A chunk of output event `seq` that arrived at `at_us` and ends `end` bytes into it.
    Output {
        seq: u64,
        at_us: i64,
        end: u64,
        data: Bytes,
    },
    Resize(Size),
}

/// Hands committed output to the screen thread (the writer's copy, or read back from the
/// store) and stores the keyframes it makes.
struct Keyframer {
    store: Store,
    session_id: String,
    /// Output bytes handed to the screen thread.
    read: u64,
    /// The writer's count of the copies not taken yet.
    held: Arc<AtomicU64>,
}

impl Keyframer {
    async fn run(mut self, size: Size, mut progress: mpsc::UnboundedReceiver<Progress>) {
        let (work, work_queue) = mpsc::channel(SCREEN_QUEUE);
        let (made, mut keyframes) = mpsc::unbounded_channel();
        let started = std::thread::Builder::new()
            .name("loupe-keyframes".into())
            .spawn(move || keep_screen(size, work_queue, made));
        if let Err(error) = started {
            tracing::warn!(session = %self.session_id, %error, "could not start keyframing");
            return;
        }
        while let Some(next) = progress.recv().await {
            let handed = match next {
                Progress::Committed {
                    seq,
                    recorded,
                    at_us,
                    copy,
                } => {
                    self.committed(seq, recorded, at_us, copy, &work, &mut keyframes)
                        .await
                }
                Progress::Resize(size) => work.send(ScreenWork::Resize(size)).await.is_ok(),
            };
            if !handed {
                break;
            }
            self.store_made(&mut keyframes).await;
        }
        // The screen thread ends once it has drawn what it was handed.
        drop(work);
        while let Some(keyframe) = keyframes.recv().await {
            self.store_keyframe(keyframe).await;
        }
    }

    /// Hands the screen thread output `seq` up to `recorded` bytes (which arrived from `at_us`
    /// on): the writer's copy when it is exactly what comes next, else read back from the
    /// store; false when keyframes stop.
    async fn committed(
        &mut self,
        seq: u64,
        recorded: u64,
        at_us: i64,
        copy: Option<Bytes>,
        work: &mpsc::Sender<ScreenWork>,
        keyframes: &mut mpsc::UnboundedReceiver<KeyframeRecord>,
    ) -> bool {
        if let Some(copy) = &copy {
            self.held.fetch_sub(copy.len() as u64, Ordering::Relaxed);
        }
        match copy {
            _ if recorded <= self.read => true,
            Some(data) if self.read + data.len() as u64 == recorded => {
                self.read = recorded;
                let output = ScreenWork::Output {
                    seq,
                    at_us,
                    end: recorded,
                    data,
                };
                work.send(output).await.is_ok()
            }
            _ => self.read_back(seq, recorded, work, keyframes).await,
        }
    }

    /// Hands the screen thread output `seq` up to `recorded` bytes, read back from the store;
    /// false when keyframes stop (the store failed, or the thread is gone).
    async fn read_back(
        &mut self,
        seq: u64,
        recorded: u64,
        work: &mpsc::Sender<ScreenWork>,
        keyframes: &mut mpsc::UnboundedReceiver<KeyframeRecord>,
    ) -> bool {
        while self.read < recorded {
            let end = (self.read + READ_BACK_BYTES).min(recorded);
            let chunks = match self
                .store
                .output_chunks(&self.session_id, seq as i64, self.read as i64, end as i64)
                .await
            {
                Ok(chunks) => chunks,
                Err(error) => {
                    tracing::warn!(session = %self.session_id, %error, "keyframes stop: could not read the output back");
                    return false;
                }
            };
            let before = self.read;
            for chunk in chunks {
                let start = chunk.byte_offset as u64;
                let chunk_end = start + chunk.data.len() as u64;
                if chunk_end <= self.read {
                    continue;
                }
                let skip = self.read.saturating_sub(start) as usize;
                let data = Bytes::from(chunk.data).slice(skip..);
                self.read = chunk_end;
                let output = ScreenWork::Output {
                    seq,
                    at_us: chunk.at_us,
                    end: chunk_end,
                    data,
                };
                if work.send(output).await.is_err() {
                    return false;
                }
                self.store_made(keyframes).await;
            }
            if self.read == before {
                tracing::warn!(session = %self.session_id, "keyframes stop: committed output is not in the store");
                return false;
            }
        }
        true
    }

    /// Stores the keyframes made so far.
    async fn store_made(&self, keyframes: &mut mpsc::UnboundedReceiver<KeyframeRecord>) {
        while let Ok(keyframe) = keyframes.try_recv() {
            self.store_keyframe(keyframe).await;
        }
    }

    async fn store_keyframe(&self, keyframe: KeyframeRecord) {
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

/// The screen thread: feeds what it is handed to a screen at the lowest CPU priority and
/// sends back a keyframe whenever one is due.
fn keep_screen(
    size: Size,
    mut work: mpsc::Receiver<ScreenWork>,
    made: mpsc::UnboundedSender<KeyframeRecord>,
) {
    // Linux's nice value is the thread's own (setpriority(2), "BUGS"): the runtime's threads
    // keep theirs.
    if let Err(error) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), NICEST)
    {
        tracing::debug!(%error, "keyframes run at the usual priority");
    }
    let mut screen = Screen::new(size);
    let mut clock = KeyframeClock::default();
    while let Some(item) = work.blocking_recv() {
        match item {
            ScreenWork::Resize(size) => screen.resize(size),
            ScreenWork::Output {
                seq,
                at_us,
                end,
                data,
            } => {
                screen.feed(&data);
                if !clock.due(data.len() as u64, at_us) {
                    continue;
                }
                let size = screen.size();
                let keyframe = KeyframeRecord {
                    seq: seq as i64,
                    byte_offset: end as i64,
                    // Every byte after this one arrived at or after it.
                    at_us,
                    cols: i32::from(size.cols),
                    rows: i32::from(size.rows),
                    screen: screen.dump(),
                };
                clock.taken(at_us, keyframe.screen.len() as u64);
                if made.send(keyframe).is_err() {
                    return;
                }
            }
        }
    }
}

/// The lowest CPU priority a thread can give itself (nice 19).
const NICEST: i32 = 19;

/// When the next keyframe is due, by the output since the last one and the recording's time.
#[derive(Debug, Default)]
struct KeyframeClock {
    bytes_since: u64,
    /// When the last keyframe was taken (the first output, before any).
    since_us: Option<i64>,
    last_len: u64,
}

impl KeyframeClock {
    /// Counts `bytes` more output that arrived at `at_us`; true when a keyframe is due after it.
    fn due(&mut self, bytes: u64, at_us: i64) -> bool {
        let since_us = *self.since_us.get_or_insert(at_us);
        self.bytes_since += bytes;
        let floor = self.last_len * KEYFRAME_RATIO;
        let every_us = KEYFRAME_EVERY.as_micros() as i64;
        self.bytes_since >= KEYFRAME_BYTES.max(floor)
            || (self.bytes_since > 0
                && self.bytes_since >= floor
                && at_us.saturating_sub(since_us) >= every_us)
    }

    /// A keyframe of `len` bytes was taken at `at_us`.
    fn taken(&mut self, at_us: i64, len: u64) {
        *self = KeyframeClock {
            bytes_since: 0,
            since_us: Some(at_us),
            last_len: len,
        };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyframes_come_by_bytes_or_by_the_recordings_time_and_stay_twenty_times_apart() {
        let mut clock = KeyframeClock::default();
        let t0 = 1_700_000_000_000_000;
        let every = KEYFRAME_EVERY.as_micros() as i64;
        assert!(!clock.due(KEYFRAME_BYTES - 1, t0));
        assert!(clock.due(1, t0 + 1), "KEYFRAME_BYTES of output");
        // A 20,000-byte screen: the next keyframe waits for 400,000 bytes.
        clock.taken(t0 + 1, 20_000);
        assert!(!clock.due(300_000, t0 + 2));
        assert!(
            !clock.due(99_999, t0 + every * 2),
            "below the floor, however late"
        );
        assert!(clock.due(1, t0 + every * 2));
        // A small screen in a quiet session: due by the recording's time, not by bytes.
        clock.taken(t0 + every * 2, 100);
        assert!(!clock.due(3_000, t0 + every * 3 - 1));
        assert!(clock.due(1, t0 + every * 3));
        clock.taken(t0 + every * 3, 100);
        assert!(
            !clock.due(1_999, t0 + every * 5),
            "the floor holds past KEYFRAME_EVERY"
        );
    }
}
