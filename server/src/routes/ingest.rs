//! `/api/ingest/…`: see [`crate::sessions::ingest`].

use axum::{
    Json,
    body::Bytes,
    extract::{Path, State},
    http::StatusCode,
};
use loupe_protocol::{
    CloseSession, IngestAck, IngestBatch, NewRecordedSession, RawOutputQuery, Session,
};

use crate::{
    error::ApiError,
    extract::{ApiJson, ApiQuery},
    identity::auth::Actor,
    routes::state::AppState,
    sessions::ingest,
};

pub use crate::sessions::ingest::MAX_INGEST_BODY;

pub async fn create_recorded_session(
    State(state): State<AppState>,
    actor: Actor,
    ApiJson(new): ApiJson<NewRecordedSession>,
) -> Result<(StatusCode, Json<Session>), ApiError> {
    let node_id = state.config.node_id();
    let session = ingest::open(&state.store, &state.recorder, &actor, &new, node_id).await?;
    Ok((StatusCode::CREATED, Json(session)))
}

pub async fn ingest_events(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(batch): ApiJson<IngestBatch>,
) -> Result<Json<IngestAck>, ApiError> {
    let ack = ingest::append(&state.store, &state.recorder, &actor, &id, batch).await?;
    Ok(Json(ack))
}

pub async fn ingest_output(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<RawOutputQuery>,
    body: Bytes,
) -> Result<Json<IngestAck>, ApiError> {
    let ack = ingest::append_output(
        &state.store,
        &state.recorder,
        &actor,
        &id,
        &query,
        body.to_vec(),
    )
    .await?;
    Ok(Json(ack))
}

pub async fn close_recorded_session(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(close): ApiJson<CloseSession>,
) -> Result<Json<Session>, ApiError> {
    let closed = ingest::close(&state.store, &state.recorder, &actor, &id, close).await?;
    Ok(Json(closed))
}
