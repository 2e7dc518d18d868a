//! `/api/me/ssh-keys`: the caller's own SSH public keys, for Loupe's SSH listener.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use loupe_protocol::{NewSshKey, SshKey};

use crate::{
    error::ApiError, extract::ApiJson, identity::auth::Actor, identity::ssh_keys,
    routes::state::AppState,
};

pub async fn list_ssh_keys(
    State(state): State<AppState>,
    actor: Actor,
) -> Result<Json<Vec<SshKey>>, ApiError> {
    Ok(Json(ssh_keys::list(&state.store, &actor).await?))
}

pub async fn add_ssh_key(
    State(state): State<AppState>,
    actor: Actor,
    ApiJson(new): ApiJson<NewSshKey>,
) -> Result<(StatusCode, Json<SshKey>), ApiError> {
    let key = ssh_keys::add(&state.store, &actor, &new).await?;
    Ok((StatusCode::CREATED, Json(key)))
}

pub async fn remove_ssh_key(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    ssh_keys::remove(&state.store, &actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
