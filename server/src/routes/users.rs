//! `/api/users`: the directory of people, managed by administrators. Users are disabled, never
//! deleted, so the history they left keeps its author.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use loupe_protocol::{NewUser, User, UserChanges};

use crate::{
    error::ApiError,
    extract::JsonBody,
    identity,
    identity::auth::Actor,
    identity::policy::{self, ensure},
    routes::state::AppState,
};

pub async fn list_users(
    State(state): State<AppState>,
    actor: Actor,
) -> Result<Json<Vec<User>>, ApiError> {
    Ok(Json(identity::list_users(&state.store, &actor).await?))
}

pub async fn create_user(
    State(state): State<AppState>,
    actor: Actor,
    body: JsonBody,
) -> Result<(StatusCode, Json<User>), ApiError> {
    ensure(
        policy::may_manage_accounts(&actor),
        "only administrators create users",
    )?;
    let new: NewUser = body.parse()?;
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
    body: JsonBody,
) -> Result<Json<User>, ApiError> {
    ensure(
        policy::may_manage_accounts(&actor),
        "only administrators change users",
    )?;
    let changes: UserChanges = body.parse()?;
    let user = identity::update_user(&state.store, &actor, &id, &changes).await?;
    // A disabled account, a new role or password changes what its open live connections may see.
    state.hub.access_changed(&state.store).await;
    Ok(Json(user))
}
