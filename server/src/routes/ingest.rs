//! `/api/ingest/…`: other gateways and agents record sessions into Loupe. A session belongs to
//! the user whose token opened it; only they append to it. Every append is acknowledged once it
//! is committed.

use axum::{
    Json,
    body::Bytes,
    extract::{Path, State},
    http::StatusCode,
};
use loupe_protocol::{
    CloseSession, EventKind, IngestAck, IngestBatch, IngestEvent, NewRecordedSession,
    RawOutputQuery, Session, SessionStatus, Verb,
};

use crate::{
    auth::Actor,
    error::ApiError,
    extract::{ApiJson, ApiQuery},
    identity::validate,
    policy::{self, ensure},
    recorder::{Append, NewEvent},
    sessions,
    state::AppState,
    store::{NewSessionRecord, now_us},
};

/// Largest ingest request body: a batch of events, or raw output.
pub const MAX_INGEST_BODY: usize = 16 * 1024 * 1024;
const MAX_INPUT_BYTES: usize = 1024 * 1024;

pub async fn create_recorded_session(
    State(state): State<AppState>,
    actor: Actor,
    ApiJson(new): ApiJson<NewRecordedSession>,
) -> Result<(StatusCode, Json<Session>), ApiError> {
    ensure(
        policy::may_record_sessions(&actor),
        "auditors cannot record sessions",
    )?;
    let user_id = actor
        .user_id
        .clone()
        .ok_or_else(|| ApiError::unauthenticated("no user behind this request"))?;
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
    let id = uuid::Uuid::now_v7().to_string();
    let started_at_us = new.started_at.map_or_else(now_us, |at| at.as_micros());
    state
        .store
        .create_session(&NewSessionRecord {
            id: id.clone(),
            user_id,
            username: actor.username.clone(),
            connection_id: None,
            connection_name: connection,
            connection_kind,
            session_type: new.session_type.as_str().into(),
            verb: Verb::Record.as_str().into(),
            status: SessionStatus::Running.as_str().into(),
            summary: sessions::summarize(&new.input),
            input: new.input.clone(),
            node_id: state.config.node_id(),
            started_at_us,
            labels: serde_json::to_string(&new.labels).map_err(ApiError::internal)?,
            rerun_of: None,
        })
        .await?;
    let input = NewEvent {
        text: Some(new.input.clone()),
        at_us: started_at_us,
        ..NewEvent::new(EventKind::Input, sessions::summarize(&new.input))
    };
    state
        .recorder
        .record(&id, vec![Append::Event(input)])
        .await?;
    let created = state
        .store
        .session(&id)
        .await?
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("session vanished")))?;
    Ok((StatusCode::CREATED, Json(sessions::to_session(created))))
}

/// The session, if the actor opened it; anyone else's answers 404.
async fn own_session(state: &AppState, actor: &Actor, id: &str) -> Result<(), ApiError> {
    let session = state.store.session(id).await?;
    match session {
        Some(session) if actor.is(&session.user_id) => Ok(()),
        _ => Err(ApiError::not_found("no such session")),
    }
}

pub async fn ingest_events(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(batch): ApiJson<IngestBatch>,
) -> Result<Json<IngestAck>, ApiError> {
    own_session(&state, &actor, &id).await?;
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
    let recorded = state.recorder.record(&id, appends).await?;
    Ok(Json(IngestAck {
        seqs: recorded.seqs,
    }))
}

pub async fn ingest_output(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<RawOutputQuery>,
    body: Bytes,
) -> Result<Json<IngestAck>, ApiError> {
    own_session(&state, &actor, &id).await?;
    let append = Append::Output {
        seq: query.seq,
        stream: query.stream,
        at_us: now_us(),
        data: body.to_vec(),
    };
    let recorded = state.recorder.record(&id, vec![append]).await?;
    Ok(Json(IngestAck {
        seqs: recorded.seqs,
    }))
}

pub async fn close_recorded_session(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(close): ApiJson<CloseSession>,
) -> Result<Json<Session>, ApiError> {
    own_session(&state, &actor, &id).await?;
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
    state.recorder.record(&id, vec![finish]).await?;
    let closed = sessions::existing_session(&state.store, &id).await?;
    Ok(Json(sessions::to_session(closed)))
}
