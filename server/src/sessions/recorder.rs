//! The recorder: the one writer of session events, output and rows on this node.
//!
//! Producers (the ingest API, the gateway's executors) send appends through a bounded channel;
//! one task drains whatever is waiting, writes it all in one transaction and only then
//! acknowledges each request. Many small appends thus cost one commit, and an acknowledged event
//! is always committed: after a crash, everything acknowledged is there.
//!
//! The task assigns sequence numbers and output offsets from its own view of each open session,
//! loaded from the store on first use, so producers need no coordination.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use loupe_protocol::{Cell, Column, EventKind, SessionStatus, Stream};
use tokio::sync::{mpsc, oneshot};

use crate::{
    error::ApiError,
    sessions::{
        self,
        notice::{Notice, Publish},
        text::LiveText,
    },
    store::{
        ChunkRecord, EventRecord, MAX_CHUNK_BYTES, MAX_PAGE_ROWS, RowPageRecord, Store, StoreError,
        WriteOp, now_us,
    },
};

/// Rows recorded per append while a result streams in, by every path that records results
/// (Loupe's own runs and the wire relays): a page of rows is stored as one.
pub const ROWS_PER_APPEND: usize = 1000;

/// How often a running session's counters are published to the sessions list at most.
const SNAPSHOT_EVERY: Duration = Duration::from_millis(500);

/// Requests written per transaction at most, and bytes of payload: enough to amortise a commit,
/// small enough to keep acknowledgements prompt.
const MAX_BATCH_REQUESTS: usize = 512;
const MAX_BATCH_BYTES: usize = 16 * 1024 * 1024;
/// Open sessions whose state the task keeps; past this it forgets them all and reloads.
const MAX_CACHED_SESSIONS: usize = 10_000;

/// A new entry in a session's activity log.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub kind: EventKind,
    pub at_us: i64,
    pub summary: String,
    pub text: Option<String>,
    pub code: Option<String>,
    pub exit_code: Option<i32>,
    pub columns: Option<Vec<Column>>,
}

impl NewEvent {
    pub fn new(kind: EventKind, summary: impl Into<String>) -> NewEvent {
        NewEvent {
            kind,
            at_us: now_us(),
            summary: summary.into(),
            text: None,
            code: None,
            exit_code: None,
            columns: None,
        }
    }
}

/// One thing to record. A request's appends are recorded together or not at all.
#[derive(Debug, Clone)]
pub enum Append {
    Event(NewEvent),
    /// Output bytes; to the output event `seq`, or to a new output event when `seq` is none.
    Output {
        seq: Option<u64>,
        stream: Stream,
        at_us: i64,
        data: Vec<u8>,
    },
    /// Rows of the result event `seq`.
    Rows {
        seq: u64,
        rows: Vec<Vec<Cell>>,
    },
    /// Rows of the session's latest result event, for a producer that does not wait for its
    /// result's seq (the wire relays record without waiting for each commit).
    LatestRows {
        rows: Vec<Vec<Cell>>,
    },
    /// Ends the session; later appends are refused.
    Finish {
        status: SessionStatus,
        exit_code: Option<i32>,
        error: Option<String>,
    },
}

/// A session that finished with a non-zero exit code failed: a program's exit status 0 means
/// success and anything else failure (POSIX `exit`, and SSH's `exit-status`, RFC 4254 §6.10),
/// so the list shows it as failed and `status=failed` finds it. The error names the code unless
/// the producer gave its own reason. Applied to every `Finish`; a producer that also tells its
/// client how the session ended calls it too, so both say the same.
pub fn status_after_exit(
    status: SessionStatus,
    exit_code: Option<i32>,
    error: Option<String>,
) -> (SessionStatus, Option<String>) {
    match (status, exit_code) {
        (SessionStatus::Done, Some(code)) if code != 0 => (
            SessionStatus::Failed,
            error.or_else(|| Some(format!("exited with code {code}"))),
        ),
        _ => (status, error),
    }
}

impl Append {
    fn payload_bytes(&self) -> usize {
        match self {
            Append::Event(event) => event.text.as_ref().map_or(0, String::len),
            Append::Output { data, .. } => data.len(),
            Append::Rows { rows, .. } | Append::LatestRows { rows } => rows.len() * 64,
            Append::Finish { .. } => 0,
        }
    }
}

/// What a committed request produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The seq of each append: a new event's own, or the event appended to.
    pub seqs: Vec<u64>,
    /// Output was dropped because the session reached its storage limit.
    pub truncated: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("no such session")]
    NoSession,
    #[error("the session has ended; nothing more can be recorded")]
    Ended,
    #[error("event {0} does not exist")]
    NoSuchEvent(u64),
    #[error("the session has no result event for rows")]
    NoResult,
    #[error("event {seq} is not {expected} event")]
    WrongKind { seq: u64, expected: &'static str },
    #[error("storage failed: {0}")]
    Store(String),
    #[error("the recorder has stopped")]
    Stopped,
}

impl From<RecordError> for ApiError {
    fn from(error: RecordError) -> Self {
        match error {
            RecordError::NoSession => ApiError::not_found("no such session"),
            RecordError::Ended => ApiError::conflict(error.to_string()),
            RecordError::NoSuchEvent(_) | RecordError::NoResult => {
                ApiError::bad_request("seq", error.to_string())
            }
            RecordError::WrongKind { .. } => ApiError::bad_request("seq", error.to_string()),
            RecordError::Store(_) | RecordError::Stopped => ApiError::internal(error),
        }
    }
}

struct Request {
    session_id: String,
    appends: Vec<Append>,
    ack: oneshot::Sender<Result<Recorded, RecordError>>,
}

/// A handle on the recorder task, cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    requests: mpsc::Sender<Request>,
}

impl Recorder {
    /// Starts the task. `max_output_bytes` is the most output stored per session.
    pub fn start(store: Store, max_output_bytes: u64, queue: usize, hub: impl Publish) -> Recorder {
        let (requests, receiver) = mpsc::channel(queue);
        let task = Task {
            store,
            max_output_bytes,
            sessions: HashMap::new(),
            hub,
            snapshots: HashMap::new(),
            live_text: HashMap::new(),
        };
        tokio::spawn(task.run(receiver));
        Recorder { requests }
    }

    /// Queues `appends` for the session, in order after everything queued before, and answers
    /// what resolves once they are committed: a producer may queue its next appends before
    /// then (the recorder commits many in one transaction).
    pub async fn submit(
        &self,
        session_id: &str,
        appends: Vec<Append>,
    ) -> Result<impl Future<Output = Result<Recorded, RecordError>> + use<>, RecordError> {
        let (ack, acked) = oneshot::channel();
        let request = Request {
            session_id: session_id.to_owned(),
            appends,
            ack,
        };
        self.requests
            .send(request)
            .await
            .map_err(|_| RecordError::Stopped)?;
        Ok(async move { acked.await.map_err(|_| RecordError::Stopped)? })
    }

    /// Records `appends` to the session and returns once they are committed.
    pub async fn record(
        &self,
        session_id: &str,
        appends: Vec<Append>,
    ) -> Result<Recorded, RecordError> {
        self.submit(session_id, appends).await?.await
    }
}

/// What the task knows of one open session.
#[derive(Debug, Clone)]
struct SessionState {
    next_seq: u64,
    output_bytes: u64,
    truncated: bool,
    ended: bool,
    /// Sizes of the events that can still grow (output and result events), by seq.
    events: HashMap<u64, EventState>,
    /// The latest result event recorded since this state was loaded, for `LatestRows`.
    latest_result: Option<u64>,
}

/// Events of one session whose sizes the task keeps at most; older ones are read from the
/// store again if they grow (an agent appending to an early output, rarely). A relayed database
/// connection makes a result event per statement: without a bound each request would copy
/// state that grows with the session.
const MAX_CACHED_EVENTS: usize = 64;

impl SessionState {
    /// Forgets the sizes of all but the latest [`MAX_CACHED_EVENTS`] events. Only called once
    /// what was planned is committed, so the store holds what is forgotten.
    fn forget_old_events(&mut self) {
        if self.events.len() > 2 * MAX_CACHED_EVENTS {
            let keep_from = self.next_seq.saturating_sub(MAX_CACHED_EVENTS as u64);
            self.events.retain(|seq, _| *seq >= keep_from);
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct EventState {
    kind: EventKind,
    bytes: u64,
    rows: u64,
}

struct Task<P> {
    store: Store,
    max_output_bytes: u64,
    sessions: HashMap<String, SessionState>,
    hub: P,
    /// When each running session's snapshot was last published.
    snapshots: HashMap<String, Instant>,
    /// Each output event's live text, by (session, seq): see [`LiveText`].
    live_text: HashMap<(String, i64), LiveText>,
}

impl<P: Publish> Task<P> {
    async fn run(mut self, mut receiver: mpsc::Receiver<Request>) {
        while let Some(first) = receiver.recv().await {
            let mut bytes = first
                .appends
                .iter()
                .map(Append::payload_bytes)
                .sum::<usize>();
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH_REQUESTS && bytes < MAX_BATCH_BYTES {
                match receiver.try_recv() {
                    Ok(request) => {
                        bytes += request
                            .appends
                            .iter()
                            .map(Append::payload_bytes)
                            .sum::<usize>();
                        batch.push(request);
                    }
                    Err(_) => break,
                }
            }
            self.write(batch).await;
        }
    }

    async fn write(&mut self, batch: Vec<Request>) {
        let mut writes = Vec::new();
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut planned = Vec::with_capacity(batch.len());
        for request in &batch {
            let start = writes.len();
            outcomes.push(self.plan(request, &mut writes).await);
            planned.push((request.session_id.clone(), start..writes.len()));
        }
        let committed = if writes.is_empty() {
            Ok(())
        } else {
            self.store.write_batch(&writes).await
        };
        match committed {
            Ok(()) => {
                for (request, outcome) in batch.into_iter().zip(outcomes) {
                    // A producer that went away no longer needs its answer.
                    let _ = request.ack.send(outcome);
                }
                // Only what is committed is published, in commit order: one notice per session
                // and batch (a relayed connection sends many small requests).
                let mut by_session: Vec<(String, Vec<&WriteOp>)> = Vec::new();
                let mut index: HashMap<String, usize> = HashMap::new();
                for (session_id, range) in planned {
                    let ops = &writes[range];
                    match index.get(&session_id) {
                        Some(&at) => by_session[at].1.extend(ops),
                        None => {
                            index.insert(session_id.clone(), by_session.len());
                            by_session.push((session_id, ops.iter().collect()));
                        }
                    }
                }
                for (session_id, ops) in by_session {
                    if let Some(state) = self.sessions.get_mut(&session_id) {
                        state.forget_old_events();
                    }
                    self.publish(session_id, &ops).await;
                }
            }
            Err(error) => {
                tracing::error!(%error, requests = batch.len(), "recording a batch failed");
                // Our view may now be ahead of the database: start again from what it holds.
                self.sessions.clear();
                let message = error.to_string();
                for request in batch {
                    let _ = request.ack.send(Err(RecordError::Store(message.clone())));
                }
            }
        }
        if self.sessions.len() > MAX_CACHED_SESSIONS {
            self.sessions.clear();
        }
    }

    /// Turns one request into writes. On any error the request adds nothing and the task's view
    /// of the session is left as it was.
    async fn plan(
        &mut self,
        request: &Request,
        writes: &mut Vec<WriteOp>,
    ) -> Result<Recorded, RecordError> {
        let session_id = request.session_id.as_str();
        let mut state = self.session_state(session_id).await?;
        for append in &request.appends {
            let growing = match append {
                Append::Output { seq: Some(seq), .. } | Append::Rows { seq, .. } => Some(*seq),
                Append::LatestRows { .. } => state.latest_result,
                _ => None,
            };
            if let Some(seq) = growing {
                self.load_event(session_id, &mut state, seq).await?;
            }
        }
        let mut planned = Vec::new();
        let mut recorded = Recorded {
            seqs: Vec::with_capacity(request.appends.len()),
            truncated: false,
        };
        let mut growth = Growth::default();
        for append in &request.appends {
            if state.ended {
                return Err(RecordError::Ended);
            }
            let seq = match append {
                Append::Event(event) => {
                    let seq = new_event(session_id, &mut state, event, &mut planned, &mut growth);
                    if event.kind == EventKind::Result {
                        state.latest_result = Some(seq);
                    }
                    if event.kind == EventKind::Input {
                        growth.input_bytes += event.text.as_ref().map_or(0, String::len) as i64;
                    }
                    seq
                }
                Append::Output {
                    seq,
                    stream,
                    at_us,
                    data,
                } => {
                    let seq = match seq {
                        Some(seq) => expect_kind(&state, *seq, EventKind::Output, "an output")?,
                        None => {
                            let event = NewEvent {
                                at_us: *at_us,
                                ..NewEvent::new(EventKind::Output, stream.as_str())
                            };
                            new_event(session_id, &mut state, &event, &mut planned, &mut growth)
                        }
                    };
                    let room = self.max_output_bytes.saturating_sub(state.output_bytes) as usize;
                    let kept = &data[..data.len().min(room)];
                    if kept.len() < data.len() {
                        recorded.truncated = true;
                        if !state.truncated {
                            state.truncated = true;
                            planned.push(WriteOp::Truncated {
                                session_id: session_id.to_owned(),
                            });
                        }
                    }
                    let event = state.events.get_mut(&seq).expect("checked above");
                    for piece in kept.chunks(MAX_CHUNK_BYTES) {
                        planned.push(WriteOp::Chunk {
                            session_id: session_id.to_owned(),
                            seq: seq as i64,
                            chunk: ChunkRecord {
                                byte_offset: event.bytes as i64,
                                at_us: *at_us,
                                stream: *stream,
                                data: piece.to_vec(),
                            },
                        });
                        event.bytes += piece.len() as u64;
                    }
                    state.output_bytes += kept.len() as u64;
                    growth.output_bytes += kept.len() as i64;
                    growth.event(seq).0 += kept.len() as i64;
                    seq
                }
                Append::Rows { seq, rows } => append_rows(
                    session_id,
                    &mut state,
                    *seq,
                    rows,
                    &mut planned,
                    &mut growth,
                )?,
                Append::LatestRows { rows } => {
                    let seq = state.latest_result.ok_or(RecordError::NoResult)?;
                    append_rows(session_id, &mut state, seq, rows, &mut planned, &mut growth)?
                }
                Append::Finish {
                    status,
                    exit_code,
                    error,
                } => {
                    state.ended = true;
                    let (status, error) = status_after_exit(*status, *exit_code, error.clone());
                    planned.push(WriteOp::Finish {
                        session_id: session_id.to_owned(),
                        status: status.as_str().to_owned(),
                        ended_at_us: now_us(),
                        exit_code: *exit_code,
                        error,
                    });
                    0
                }
            };
            recorded.seqs.push(seq);
        }
        // Counters go before the end state, so a finished session's counts are complete.
        let finish = planned
            .iter()
            .position(|op| matches!(op, WriteOp::Finish { .. }));
        let counters = growth.into_writes(session_id);
        let tail = planned.split_off(finish.unwrap_or(planned.len()));
        planned.extend(counters);
        planned.extend(tail);
        writes.extend(planned);
        if state.ended {
            self.sessions.remove(session_id);
        } else {
            self.sessions.insert(session_id.to_owned(), state);
        }
        Ok(recorded)
    }

    /// Tells watchers what a committed batch wrote to one session (`writes`, in commit order).
    async fn publish(&mut self, session_id: String, writes: &[&WriteOp]) {
        if writes.is_empty() {
            return;
        }
        // Output text is only made for watchers on this node; other nodes read it themselves.
        let local_watchers = self.hub.has_local_watchers();
        let mut notice = Notice {
            session_id,
            ..Notice::default()
        };
        let mut snapshot = false;
        for op in writes.iter().copied() {
            match op {
                WriteOp::Event { event, .. } => {
                    snapshot |= event.seq == 1;
                    notice.events.push(sessions::to_event(event.clone()));
                }
                WriteOp::Chunk { seq, chunk, .. } => {
                    if self.live_text.len() > MAX_CACHED_SESSIONS {
                        self.live_text.clear();
                    }
                    let live = self
                        .live_text
                        .entry((notice.session_id.clone(), *seq))
                        .or_default();
                    if let Some((piece, length)) = live.piece(
                        chunk.byte_offset as u64,
                        chunk.at_us,
                        chunk.stream,
                        &chunk.data,
                        local_watchers,
                    ) {
                        notice.output.push((*seq as u64, piece, length));
                    }
                }
                WriteOp::RowPage { seq, page, .. } => {
                    let total = (page.first_row + i64::from(page.row_count)) as u64;
                    match notice
                        .rows
                        .iter_mut()
                        .find(|(known, _)| *known == *seq as u64)
                    {
                        Some(entry) => entry.1 = total,
                        None => notice.rows.push((*seq as u64, total)),
                    }
                }
                WriteOp::Finish { .. } => {
                    snapshot = true;
                    let session = notice.session_id.clone();
                    self.live_text.retain(|(id, _), _| *id != session);
                }
                WriteOp::Truncated { .. } => snapshot = true,
                WriteOp::EventGrowth { .. } | WriteOp::SessionGrowth { .. } => {}
            }
        }
        let now = Instant::now();
        let due = self
            .snapshots
            .get(&notice.session_id)
            .is_none_or(|last| now.duration_since(*last) >= SNAPSHOT_EVERY);
        if snapshot || due {
            match self.store.session(&notice.session_id).await {
                Ok(Some(record)) => {
                    let session = sessions::to_session(record);
                    if session.status.is_final() {
                        self.snapshots.remove(&notice.session_id);
                    } else {
                        self.snapshots.insert(notice.session_id.clone(), now);
                    }
                    notice.session = Some(session);
                }
                Ok(None) => {}
                Err(error) => tracing::warn!(%error, "could not read a session to publish it"),
            }
        }
        self.hub.publish(&self.store, notice).await;
        if self.snapshots.len() > MAX_CACHED_SESSIONS {
            self.snapshots.clear();
        }
    }

    /// The session's state, from the cache or the store (a copy: the caller puts it back).
    async fn session_state(&mut self, session_id: &str) -> Result<SessionState, RecordError> {
        if let Some(state) = self.sessions.get(session_id) {
            return Ok(state.clone());
        }
        let stored = self
            .store
            .session_write_state(session_id)
            .await
            .map_err(store_error)?
            .ok_or(RecordError::NoSession)?;
        let ended = stored.status.is_final();
        Ok(SessionState {
            next_seq: stored.event_count as u64 + 1,
            output_bytes: stored.output_bytes as u64,
            truncated: stored.truncated,
            ended,
            events: HashMap::new(),
            latest_result: None,
        })
    }

    async fn load_event(
        &self,
        session_id: &str,
        state: &mut SessionState,
        seq: u64,
    ) -> Result<(), RecordError> {
        if state.events.contains_key(&seq) || seq >= state.next_seq {
            return Ok(());
        }
        let event = self
            .store
            .event(session_id, seq as i64)
            .await
            .map_err(store_error)?
            .ok_or(RecordError::NoSuchEvent(seq))?;
        state.events.insert(
            seq,
            EventState {
                kind: event.kind,
                bytes: event.bytes as u64,
                rows: event.row_count as u64,
            },
        );
        Ok(())
    }
}

fn store_error(error: StoreError) -> RecordError {
    RecordError::Store(error.to_string())
}

/// Plans `rows` as the next pages of result event `seq`.
fn append_rows(
    session_id: &str,
    state: &mut SessionState,
    seq: u64,
    rows: &[Vec<Cell>],
    planned: &mut Vec<WriteOp>,
    growth: &mut Growth,
) -> Result<u64, RecordError> {
    let seq = expect_kind(state, seq, EventKind::Result, "a result")?;
    let event = state.events.get_mut(&seq).expect("checked above");
    for page in rows.chunks(MAX_PAGE_ROWS) {
        let data =
            serde_json::to_string(page).map_err(|error| RecordError::Store(error.to_string()))?;
        planned.push(WriteOp::RowPage {
            session_id: session_id.to_owned(),
            seq: seq as i64,
            page: RowPageRecord {
                first_row: event.rows as i64,
                row_count: page.len() as i32,
                data,
            },
        });
        event.rows += page.len() as u64;
    }
    growth.rows += rows.len() as i64;
    growth.event(seq).1 += rows.len() as i64;
    Ok(seq)
}

fn expect_kind(
    state: &SessionState,
    seq: u64,
    kind: EventKind,
    expected: &'static str,
) -> Result<u64, RecordError> {
    match state.events.get(&seq) {
        Some(event) if event.kind == kind => Ok(seq),
        Some(_) => Err(RecordError::WrongKind { seq, expected }),
        None => Err(RecordError::NoSuchEvent(seq)),
    }
}

fn new_event(
    session_id: &str,
    state: &mut SessionState,
    event: &NewEvent,
    planned: &mut Vec<WriteOp>,
    growth: &mut Growth,
) -> u64 {
    let seq = state.next_seq;
    state.next_seq += 1;
    if matches!(event.kind, EventKind::Output | EventKind::Result) {
        state.events.insert(
            seq,
            EventState {
                kind: event.kind,
                bytes: 0,
                rows: 0,
            },
        );
    }
    planned.push(WriteOp::Event {
        session_id: session_id.to_owned(),
        event: EventRecord {
            seq: seq as i64,
            at_us: event.at_us,
            kind: event.kind,
            summary: event.summary.clone(),
            body: event.text.clone(),
            code: event.code.clone(),
            exit_code: event.exit_code,
            columns: event
                .columns
                .as_ref()
                .map(|columns| serde_json::to_string(columns).expect("columns serialise")),
            bytes: 0,
            row_count: 0,
        },
    });
    growth.events += 1;
    seq
}

/// Counter increments of one request, written as one update per row touched.
#[derive(Default)]
struct Growth {
    events: i64,
    input_bytes: i64,
    output_bytes: i64,
    rows: i64,
    /// (bytes, rows) per event.
    per_event: Vec<(u64, (i64, i64))>,
}

impl Growth {
    fn event(&mut self, seq: u64) -> &mut (i64, i64) {
        let index = match self.per_event.iter().position(|(known, _)| *known == seq) {
            Some(index) => index,
            None => {
                self.per_event.push((seq, (0, 0)));
                self.per_event.len() - 1
            }
        };
        &mut self.per_event[index].1
    }

    fn into_writes(self, session_id: &str) -> Vec<WriteOp> {
        let mut writes: Vec<WriteOp> = self
            .per_event
            .into_iter()
            .map(|(seq, (bytes, rows))| WriteOp::EventGrowth {
                session_id: session_id.to_owned(),
                seq: seq as i64,
                bytes,
                rows,
            })
            .collect();
        if self.events != 0 || self.input_bytes != 0 || self.output_bytes != 0 || self.rows != 0 {
            writes.push(WriteOp::SessionGrowth {
                session_id: session_id.to_owned(),
                events: self.events,
                input_bytes: self.input_bytes,
                output_bytes: self.output_bytes,
                rows: self.rows,
            });
        }
        writes
    }
}
