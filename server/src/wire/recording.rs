//! What a relayed client connection becomes in Loupe, whatever its protocol: one session per
//! connection, opened when the client is admitted and ended when either side leaves or Loupe
//! stops it; each statement an input, its parameters a note, each result set a result with its
//! rows, each command tag or count a note, each error an error with the database's code.
//!
//! What the relay sees goes through a bounded queue ([`Notes`]). Rows and COPY data never make
//! the relay wait: when the queue is full they are relayed but not kept, and the record says so
//! at the end. Statements, counts and errors are always kept.

use std::sync::{
    Arc, OnceLock,
    atomic::{AtomicBool, Ordering},
};

use loupe_protocol::{Cell, Column, EventKind, SessionStatus, Stream, Verb};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::admission::Admitted;
use crate::{
    error::ApiError,
    gateway::Gateway,
    sessions::{
        recorder::{Append, NewEvent, ROWS_PER_APPEND, RecordError, Recorded, Recorder},
        summarize,
    },
    store::now_us,
};

/// Decoded messages waiting for the recorder; past this the relay goes on and the record says
/// what it could not keep (the client is never slowed down by recording).
const RECORDING_QUEUE: usize = 4096;

/// What the relay saw, in the order it saw it, for the recorder.
pub(super) enum Seen {
    /// A statement's text: a simple query, or one being prepared.
    Query(String),
    /// The values a prepared statement runs with, as text (`$1 = …` or `?1 = …`).
    Parameters(Vec<String>),
    /// A result set's columns; its rows follow.
    Columns(Vec<Column>),
    Row(Vec<Cell>),
    /// A statement's end: its command tag or count (not recorded after rows, which say more).
    Complete(String),
    /// Something Loupe itself did or learned (a statement held for review, its decision).
    Note(String),
    /// Data of a `COPY` (either way), as sent: recorded as the statement's output.
    Copy(Vec<u8>),
    /// The database's error, with its code (SQLSTATE, or MySQL's error number and SQLSTATE).
    Failed {
        code: String,
        message: String,
    },
}

/// How a relayed connection ended.
pub(super) enum Ended {
    /// The client said goodbye or closed: a normal end.
    ClientLeft,
    TargetClosed(String),
    /// Killed in Loupe, or its access ended: the client was told why.
    Stopped(String),
}

/// A client connection's session while it is relayed: its id, and what stopping it (kill, the
/// end of its just-in-time access) signals.
pub(super) struct WireSession {
    pub id: String,
    pub stop: CancellationToken,
    why: Arc<OnceLock<String>>,
}

impl WireSession {
    /// Creates the running session (its summary names the client) and registers it, so kill,
    /// stop and the end of its access reach it like any run on this node.
    pub async fn open(
        gateway: &Gateway,
        admitted: &Admitted,
        summary: &str,
    ) -> Result<WireSession, ApiError> {
        let id = gateway
            .create_session(
                &admitted.actor,
                &admitted.connection,
                summary,
                None,
                SessionStatus::Running,
                Verb::Connect,
            )
            .await?;
        let (stop, why) = gateway.register(&id, admitted.access.clone());
        Ok(WireSession { id, stop, why })
    }

    /// Why it was stopped, once `stop` has fired.
    pub fn stop_reason(&self) -> String {
        self.why
            .get()
            .cloned()
            .unwrap_or_else(|| "stopped in Loupe by a person".to_owned())
    }

    /// Ends the session as `ended` says. The caller has already cancelled, on the target,
    /// whatever a stopped client was running.
    pub async fn close(self, gateway: &Gateway, recorder: &Recorder, ended: Ended) {
        gateway.forget(&self.id);
        let mut appends = Vec::new();
        let (status, error) = match ended {
            Ended::ClientLeft => (SessionStatus::Done, None),
            Ended::TargetClosed(reason) => (SessionStatus::Failed, Some(reason)),
            Ended::Stopped(reason) => {
                appends.push(Append::Event(NewEvent::new(
                    EventKind::Note,
                    reason.clone(),
                )));
                (SessionStatus::Cancelled, Some(reason))
            }
        };
        appends.push(Append::Finish {
            status,
            exit_code: None,
            error,
        });
        if let Err(error) = recorder.record(&self.id, appends).await {
            tracing::warn!(session = %self.id, %error, "could not end a wire-protocol session");
        }
    }
}

/// The relay's side of the recording queue; cheap to clone, one per direction.
#[derive(Clone)]
pub(super) struct Notes {
    queue: mpsc::Sender<Seen>,
    missed: Arc<AtomicBool>,
}

impl Notes {
    /// Hands `seen` to the recorder. Rows and COPY data never wait: when the queue is full they
    /// are dropped and the record says so at the end. Everything else (statements, parameters,
    /// counts, errors, notes) is kept, waiting for room if it must, so no statement is left
    /// out of the record by a flood of rows before it.
    pub async fn note(&self, seen: Seen) {
        if matches!(seen, Seen::Row(_) | Seen::Copy(_)) {
            if self.queue.try_send(seen).is_err() {
                self.missed.store(true, Ordering::Relaxed);
            }
        } else if self.queue.send(seen).await.is_err() {
            self.missed.store(true, Ordering::Relaxed);
        }
    }

    /// Something was relayed that could not be decoded for the record (the record says so).
    pub fn skipped(&self) {
        self.missed.store(true, Ordering::Relaxed);
    }
}

/// The queue to the recorder, and the work that records what comes through it into
/// `session` until every [`Notes`] is dropped.
pub(super) fn start(
    recorder: &Recorder,
    session: &str,
) -> (Notes, impl Future<Output = ()> + use<>) {
    let (queue, mut seen) = mpsc::channel::<Seen>(RECORDING_QUEUE);
    let missed = Arc::new(AtomicBool::new(false));
    let notes = Notes {
        queue,
        missed: missed.clone(),
    };
    let (recorder, session) = (recorder.clone(), session.to_owned());
    let recording = async move {
        let mut state = Recording {
            missed: missed.clone(),
            ..Recording::default()
        };
        loop {
            // While a request is being committed, what arrives gathers into the next one: a
            // connection running thousands of statements a second sends the recorder a request
            // per commit, not one per statement.
            let oldest = state.outstanding.front_mut();
            let waiting = oldest.is_some();
            let next = tokio::select! {
                biased;
                Some(result) = async { Some(oldest?.await) }, if waiting => Next::Committed(result),
                noted = seen.recv() => noted.map_or(Next::Closed, Next::Seen),
            };
            match next {
                Next::Committed(result) => {
                    state.outstanding.pop_front();
                    acknowledged(&missed, &session, result);
                }
                Next::Seen(noted) => {
                    state.take(&recorder, &session, noted).await;
                    // What else is already waiting goes into the same request.
                    while state.pending.len() < BATCH
                        && let Ok(more) = seen.try_recv()
                    {
                        state.take(&recorder, &session, more).await;
                    }
                }
                Next::Closed => break,
            }
            if state.outstanding.is_empty() || state.pending.len() >= BATCH {
                state.submit(&recorder, &session).await;
            }
        }
        state.flush();
        state.submit(&recorder, &session).await;
        state.settle(&session).await;
        if missed.load(Ordering::Relaxed) {
            let note = NewEvent::new(
                EventKind::Note,
                "some statements or rows were relayed but not recorded: they came faster than they could be stored, or were too long to decode",
            );
            if let Err(error) = recorder.record(&session, vec![Append::Event(note)]).await {
                tracing::warn!(%session, %error, "recording a wire-protocol note");
            }
        }
    };
    (notes, recording)
}

/// What the recording waited for: the commit of its oldest request, or what the relay saw.
enum Next {
    Committed(Result<Recorded, RecordError>),
    Seen(Seen),
    Closed,
}

/// Requests queued but not known to be committed yet, at most: past this the recording waits
/// for the oldest (so a slow store slows the relay's statements, never loses them).
const OUTSTANDING: usize = 64;
/// Appends gathered into one request at most (each is all or nothing: a batch of a few
/// statements' worth).
const BATCH: usize = 64;

/// What a queued append resolves to once committed.
type Ack = std::pin::Pin<Box<dyn Future<Output = Result<Recorded, RecordError>> + Send>>;

/// The session being written: whether a result's rows are arriving, rows not yet stored, and
/// appends queued but not yet committed. Appends are queued without waiting for each commit
/// (rows go to the latest result, so no seq is awaited); while one request is being committed
/// the next gathers what arrives, so the recorder commits many appends at once.
#[derive(Default)]
struct Recording {
    /// Rows now belong to the latest result event.
    result: bool,
    rows: Vec<Vec<Cell>>,
    /// The output event a `COPY`'s data goes to.
    copy: Option<u64>,
    outstanding: std::collections::VecDeque<Ack>,
    /// Appends not yet queued: what arrived together goes as one request.
    pending: Vec<Append>,
    /// Set when an append fails: the record then says something was not kept.
    missed: Arc<AtomicBool>,
}

impl Recording {
    async fn take(&mut self, recorder: &Recorder, session: &str, seen: Seen) {
        if !matches!(seen, Seen::Copy(_)) {
            // Whatever comes next is not the same COPY's data.
            self.copy = None;
        }
        let event = match seen {
            Seen::Query(text) => NewEvent {
                text: Some(text.clone()),
                ..NewEvent::new(EventKind::Input, summarize(&text))
            },
            Seen::Parameters(values) if values.is_empty() => return,
            Seen::Parameters(values) => NewEvent::new(
                EventKind::Note,
                summarize(&format!("parameters: {}", values.join(", "))),
            ),
            Seen::Columns(columns) => {
                self.flush();
                self.result = true;
                NewEvent {
                    columns: Some(columns.clone()),
                    ..NewEvent::new(EventKind::Result, format!("{} columns", columns.len()))
                }
            }
            // Rows of a result whose description was not recorded are not kept.
            Seen::Row(_) if !self.result => return,
            Seen::Row(cells) => {
                self.rows.push(cells);
                if self.rows.len() >= ROWS_PER_APPEND {
                    self.flush();
                }
                return;
            }
            Seen::Complete(tag) => {
                let had_rows = self.result;
                self.flush();
                self.result = false;
                if had_rows {
                    return;
                }
                NewEvent::new(EventKind::Note, tag)
            }
            Seen::Note(text) => NewEvent::new(EventKind::Note, text),
            Seen::Copy(data) => {
                self.submit(recorder, session).await;
                // Its pieces go to one output event, whose seq the first one's commit gives.
                let output = Append::Output {
                    seq: self.copy,
                    stream: Stream::Stdout,
                    at_us: now_us(),
                    data,
                };
                match recorder.record(session, vec![output]).await {
                    Ok(recorded) => self.copy = recorded.seqs.first().copied(),
                    Err(error) => tracing::warn!(%session, %error, "recording COPY data"),
                }
                return;
            }
            Seen::Failed { code, message } => {
                self.flush();
                self.result = false;
                NewEvent {
                    text: Some(message.clone()),
                    code: Some(code),
                    ..NewEvent::new(EventKind::Error, summarize(&message))
                }
            }
        };
        self.queue(Append::Event(event));
    }

    /// Adds the rows gathered so far to the next request.
    fn flush(&mut self) {
        if !self.result || self.rows.is_empty() {
            return;
        }
        let rows = std::mem::take(&mut self.rows);
        self.queue(Append::LatestRows { rows });
    }

    /// Adds one append to the next request.
    fn queue(&mut self, append: Append) {
        self.pending.push(append);
    }

    /// Queues what is pending as one request, waiting for the oldest outstanding commit past
    /// [`OUTSTANDING`].
    async fn submit(&mut self, recorder: &Recorder, session: &str) {
        if self.pending.is_empty() {
            return;
        }
        if self.outstanding.len() >= OUTSTANDING
            && let Some(oldest) = self.outstanding.pop_front()
        {
            let result = oldest.await;
            acknowledged(&self.missed, session, result);
        }
        let appends = std::mem::take(&mut self.pending);
        match recorder.submit(session, appends).await {
            Ok(ack) => self.outstanding.push_back(Box::pin(ack)),
            Err(error) => acknowledged(&self.missed, session, Err(error)),
        }
    }

    /// Waits until everything queued is committed.
    async fn settle(&mut self, session: &str) {
        while let Some(ack) = self.outstanding.pop_front() {
            let result = ack.await;
            acknowledged(&self.missed, session, result);
        }
    }
}

/// Logs a failed append, and remembers that the record misses something.
fn acknowledged(missed: &AtomicBool, session: &str, result: Result<Recorded, RecordError>) {
    if let Err(error) = result {
        tracing::warn!(%session, %error, "recording a wire-protocol event");
        missed.store(true, Ordering::Relaxed);
    }
}
