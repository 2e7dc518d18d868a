//! Ingest: other gateways and agents record sessions into Loupe (`/api/ingest/…`). Agents authenticate
//! with an API token; a session recorded this way belongs to that token (its "agent"), is marked
//! as agent-recorded, and only that token appends to it or closes it. Sessions Loupe runs itself
//! are written by Loupe's recorder alone: the ingest API answers 404 for them, as for any
//! session that is not the caller's recording. Every append is acknowledged once it is
//! committed.

use loupe_protocol::{
    CloseSession, EventKind, IngestAck, IngestBatch, IngestEvent, NewRecordedSession,
    RawOutputQuery, Session, SessionStatus, Verb,
};

use super::recorder::{Append, NewEvent, Recorder};
use crate::{
    error::ApiError,
    identity::policy::{self, ensure},
    identity::{
        auth::{Actor, Credential},
        validate,
    },
    sessions,
    store::{NewSessionRecord, Store, now_us},
};

/// Largest ingest request body: a batch of events, or raw output.
pub const MAX_INGEST_BODY: usize = 16 * 1024 * 1024;
const MAX_INPUT_BYTES: usize = 1024 * 1024;
/// How far from now an agent's `started_at` may be: a week back (an agent that buffered while
/// Loupe was unreachable) to five minutes ahead (clock skew). Anything else is a mistake or a
/// forgery, and would sort the session among others it did not run beside.
const STARTED_AT_PAST_US: i64 = 7 * 24 * 3600 * 1_000_000;
const STARTED_AT_FUTURE_US: i64 = 5 * 60 * 1_000_000;

/// The API token an agent records with; a browser login cannot record.
fn agent_token(actor: &Actor) -> Result<&str, ApiError> {
    match &actor.credential {
        Credential::Token { id, .. } => Ok(id),
        _ => Err(ApiError::forbidden(
            "recording sessions needs an API token (Authorization: Bearer …): the token is the agent's identity",
        )),
    }
}

/// `started_at` if it is within [`STARTED_AT_PAST_US`] before and [`STARTED_AT_FUTURE_US`]
/// after `now_us`; now when absent.
fn started_at(requested: Option<loupe_protocol::Timestamp>, now_us: i64) -> Result<i64, ApiError> {
    let Some(at) = requested.map(loupe_protocol::Timestamp::as_micros) else {
        return Ok(now_us);
    };
    if at < now_us - STARTED_AT_PAST_US || at > now_us + STARTED_AT_FUTURE_US {
        return Err(ApiError::bad_request(
            "started_at",
            "started_at must be within the last 7 days and at most 5 minutes ahead of the server's clock",
        ));
    }
    Ok(at)
}

/// Opens a session recorded by the agent behind `actor`'s token, on server node `node_id`.
pub async fn open(
    store: &Store,
    recorder: &Recorder,
    actor: &Actor,
    new: &NewRecordedSession,
    node_id: String,
) -> Result<Session, ApiError> {
    ensure(
        policy::may_record_sessions(actor),
        "auditors cannot record sessions",
    )?;
    let user_id = actor
        .user_id
        .clone()
        .ok_or_else(|| ApiError::unauthenticated("no user behind this request"))?;
    let token_id = agent_token(actor)?.to_owned();
    let connection = validate::text("connection", &new.connection, 1, 128)?;
    let connection_kind = validate::text("connection_kind", &new.connection_kind, 1, 64)?;
    if new.input.len() > MAX_INPUT_BYTES {
        return Err(ApiError::bad_request(
            "input",
            format!("input must be at most {MAX_INPUT_BYTES} bytes"),
        ));
    }
    if new.labels.len() > 32
        || new
            .labels
            .iter()
            .any(|(key, value)| key.len() > 64 || value.len() > 256)
    {
        return Err(ApiError::bad_request(
            "labels",
            "labels: at most 32, keys up to 64 and values up to 256 bytes",
        ));
    }
    let started_at_us = started_at(new.started_at, now_us())?;
    let token = store.token_by_id(&token_id).await?;
    let id = uuid::Uuid::now_v7().to_string();
    store
        .create_session(&NewSessionRecord {
            id: id.clone(),
            user_id,
            username: actor.username.clone(),
            connection_id: None,
            connection_name: connection,
            connection_kind,
            session_type: new.session_type,
            verb: Verb::Record,
            status: SessionStatus::Running,
            summary: sessions::summarize(&new.input),
            input: new.input.clone(),
            node_id,
            started_at_us,
            labels: serde_json::to_string(&new.labels).map_err(ApiError::internal)?,
            rerun_of: None,
            agent: Some((token.id.clone(), token.name.clone())),
        })
        .await?;
    let mut event = actor.audit("session.recording_opened", format!("session:{id}"));
    event.detail = Some(format!("agent token {} ({})", token.name, token.prefix));
    store.record_audit(&event).await?;
    let input = NewEvent {
        text: Some(new.input.clone()),
        at_us: started_at_us,
        ..NewEvent::new(EventKind::Input, sessions::summarize(&new.input))
    };
    recorder.record(&id, vec![Append::Event(input)]).await?;
    let created = store
        .session(&id)
        .await?
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("session vanished")))?;
    Ok(sessions::to_session(created))
}

/// Passes when the session was opened through the ingest API with the caller's token; any
/// other session (someone else's, one Loupe runs itself) answers 404, as if it did not exist.
async fn own_session(store: &Store, actor: &Actor, id: &str) -> Result<(), ApiError> {
    let token_id = agent_token(actor)?;
    let session = store.session(id).await?;
    match session {
        Some(session)
            if actor.is(&session.user_id)
                && session.verb == Verb::Record
                && session.agent_token_id.as_deref() == Some(token_id) =>
        {
            Ok(())
        }
        _ => Err(ApiError::not_found(
            "no such session recorded with this token",
        )),
    }
}

/// Appends the agent's events to its session `id`; answers once they are committed.
pub async fn append(
    store: &Store,
    recorder: &Recorder,
    actor: &Actor,
    id: &str,
    batch: IngestBatch,
) -> Result<IngestAck, ApiError> {
    own_session(store, actor, id).await?;
    if batch.events.is_empty() {
        return Err(ApiError::bad_request("events", "events must not be empty"));
    }
    let now = now_us();
    let appends = batch
        .events
        .into_iter()
        .map(|event| match event {
            IngestEvent::Input { text } => Append::Event(NewEvent {
                text: Some(text.clone()),
                ..NewEvent::new(EventKind::Input, sessions::summarize(&text))
            }),
            IngestEvent::Output { seq, stream, data } => Append::Output {
                seq,
                stream,
                at_us: now,
                data: data.into_bytes(),
            },
            IngestEvent::Result { columns } => {
                let summary = format!("{} columns", columns.len());
                Append::Event(NewEvent {
                    columns: Some(columns),
                    ..NewEvent::new(EventKind::Result, summary)
                })
            }
            IngestEvent::Rows { seq, rows } => Append::Rows { seq, rows },
            IngestEvent::Error { message, code } => Append::Event(NewEvent {
                text: Some(message.clone()),
                code,
                ..NewEvent::new(EventKind::Error, sessions::summarize(&message))
            }),
            IngestEvent::Exit { code } => Append::Event(NewEvent {
                exit_code: Some(code),
                ..NewEvent::new(EventKind::Exit, format!("exit {code}"))
            }),
            IngestEvent::Note { text } => Append::Event(NewEvent {
                text: Some(text.clone()),
                ..NewEvent::new(EventKind::Note, sessions::summarize(&text))
            }),
        })
        .collect();
    let recorded = recorder.record(id, appends).await?;
    Ok(IngestAck {
        seqs: recorded.seqs,
    })
}

/// Appends raw output bytes to an output event of the agent's session `id`.
pub async fn append_output(
    store: &Store,
    recorder: &Recorder,
    actor: &Actor,
    id: &str,
    query: &RawOutputQuery,
    body: Vec<u8>,
) -> Result<IngestAck, ApiError> {
    own_session(store, actor, id).await?;
    let append = Append::Output {
        seq: query.seq,
        stream: query.stream,
        at_us: now_us(),
        data: body,
    };
    let recorded = recorder.record(id, vec![append]).await?;
    Ok(IngestAck {
        seqs: recorded.seqs,
    })
}

/// Ends the agent's session `id`.
pub async fn close(
    store: &Store,
    recorder: &Recorder,
    actor: &Actor,
    id: &str,
    close: CloseSession,
) -> Result<Session, ApiError> {
    own_session(store, actor, id).await?;
    if !matches!(
        close.status,
        SessionStatus::Done
            | SessionStatus::Failed
            | SessionStatus::Cancelled
            | SessionStatus::Interrupted
    ) {
        return Err(ApiError::bad_request(
            "status",
            "status must be done, failed, cancelled or interrupted",
        ));
    }
    let finish = Append::Finish {
        status: close.status,
        exit_code: close.exit_code,
        error: close.error,
    };
    recorder.record(id, vec![finish]).await?;
    let mut event = actor.audit("session.recording_closed", format!("session:{id}"));
    event.detail = Some(close.status.as_str().to_owned());
    store.record_audit(&event).await?;
    let closed = sessions::existing_session(store, id).await?;
    Ok(sessions::to_session(closed))
}
