//! `/api/users`: the directory of people, managed by administrators. Users are disabled, never
//! deleted, so the history they left keeps its author.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use loupe_protocol::{NewUser, User, UserChanges};

use crate::{auth::Actor, error::ApiError, extract::ApiJson, identity, state::AppState};

pub async fn list_users(
    State(state): State<AppState>,
    actor: Actor,
) -> Result<Json<Vec<User>>, ApiError> {
    Ok(Json(identity::list_users(&state.store, &actor).await?))
}

pub async fn create_user(
    State(state): State<AppState>,
    actor: Actor,
    ApiJson(new): ApiJson<NewUser>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    let user = identity::create_user(&state.store, &actor, &new).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

pub async fn get_user(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Json<User>, ApiError> {
    Ok(Json(identity::user(&state.store, &actor, &id).await?))
}

pub async fn update_user(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(changes): ApiJson<UserChanges>,
) -> Result<Json<User>, ApiError> {
    Ok(Json(
        identity::update_user(&state.store, &actor, &id, &changes).await?,
    ))
}
