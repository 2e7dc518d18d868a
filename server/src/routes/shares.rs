//! `/api/sessions/{id}/shares`: see [`crate::sessions::shares`].

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use loupe_protocol::{NewShare, Share};

use crate::{
    error::ApiError, extract::ApiJson, identity::auth::Actor, routes::state::AppState,
    sessions::shares,
};

pub async fn list_shares(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Json<Vec<Share>>, ApiError> {
    Ok(Json(shares::list(&state.store, &actor, &id).await?))
}

pub async fn create_share(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(new): ApiJson<NewShare>,
) -> Result<(StatusCode, Json<Vec<Share>>), ApiError> {
    let created = shares::create(&state.store, &actor, &id, &new).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

pub async fn revoke_share(
    State(state): State<AppState>,
    actor: Actor,
    Path((id, share)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    shares::revoke(&state.store, &actor, &id, &share).await?;
    // Whoever watches the session through this share stops receiving it now.
    state.hub.access_changed(&state.store).await;
    Ok(StatusCode::NO_CONTENT)
}
