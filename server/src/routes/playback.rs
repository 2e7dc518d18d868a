//! Playing terminal sessions back: `GET /api/sessions/{id}/screen` (where drawing a moment
//! starts) and `GET /api/sessions/{id}/screen/search` (text across the recording). Readable by
//! whoever may read the session; with downloads disabled, what they return counts against the
//! reader's window budget like any window of output.

use axum::{Json, extract::State};
use loupe_protocol::{ScreenHits, ScreenQuery, ScreenSearchQuery, ScreenStart};

use super::sessions::charge_window;
use crate::{
    error::ApiError,
    extract::{ApiPath, ApiQuery},
    identity::auth::Actor,
    routes::state::AppState,
    sessions::{self, playback},
};

pub async fn get_screen(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<ScreenQuery>,
) -> Result<Json<ScreenStart>, ApiError> {
    let session = sessions::visible_session(&state.store, &actor, &id).await?;
    let start = playback::screen_start(&state.store, &session, query.at_ms).await?;
    charge_window(
        &state,
        &actor,
        &id,
        format!("terminal keyframe at output byte {}", start.offset),
        start.screen.len() as u64,
    )
    .await?;
    Ok(Json(start))
}

pub async fn search_screen(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<ScreenSearchQuery>,
) -> Result<Json<ScreenHits>, ApiError> {
    let session = sessions::visible_session(&state.store, &actor, &id).await?;
    let found = playback::search(&state.store, &session, &query.q).await?;
    let bytes = found.hits.iter().map(|hit| hit.line.len() as u64).sum();
    charge_window(
        &state,
        &actor,
        &id,
        format!("terminal search for {:?}", query.q),
        bytes,
    )
    .await?;
    Ok(Json(found))
}
