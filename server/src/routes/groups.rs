//! `/api/groups`: groups of users, named by connections as their reviewers and used for sharing.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use loupe_protocol::{Group, GroupChanges, NewGroup};

use crate::{
    error::ApiError,
    extract::JsonBody,
    identity,
    identity::auth::Actor,
    identity::policy::{self, ensure},
    routes::state::AppState,
};

pub async fn list_groups(
    State(state): State<AppState>,
    actor: Actor,
) -> Result<Json<Vec<Group>>, ApiError> {
    Ok(Json(identity::list_groups(&state.store, &actor).await?))
}

pub async fn create_group(
    State(state): State<AppState>,
    actor: Actor,
    body: JsonBody,
) -> Result<(StatusCode, Json<Group>), ApiError> {
    ensure(
        policy::may_manage_accounts(&actor),
        "only administrators create groups",
    )?;
    let new: NewGroup = body.parse()?;
    let group = identity::create_group(&state.store, &actor, &new).await?;
    Ok((StatusCode::CREATED, Json(group)))
}

pub async fn get_group(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Json<Group>, ApiError> {
    Ok(Json(identity::group(&state.store, &actor, &id).await?))
}

pub async fn update_group(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<Group>, ApiError> {
    ensure(
        policy::may_manage_accounts(&actor),
        "only administrators change groups",
    )?;
    let changes: GroupChanges = body.parse()?;
    Ok(Json(
        identity::update_group(&state.store, &actor, &id, &changes).await?,
    ))
}

pub async fn delete_group(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    identity::delete_group(&state.store, &actor, &id).await?;
    state.hub.access_changed(&state.store).await;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn add_group_member(
    State(state): State<AppState>,
    actor: Actor,
    Path((id, user_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    identity::add_member(&state.store, &actor, &id, &user_id).await?;
    state.hub.access_changed(&state.store).await;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn remove_group_member(
    State(state): State<AppState>,
    actor: Actor,
    Path((id, user_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    identity::remove_member(&state.store, &actor, &id, &user_id).await?;
    state.hub.access_changed(&state.store).await;
    Ok(StatusCode::NO_CONTENT)
}
