//! `/api/tokens`: the caller's own API tokens, for the CLI and other tools.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use loupe_protocol::{ApiToken, CreatedToken, NewToken};

use crate::{
    error::ApiError, extract::ApiJson, identity, identity::auth::Actor, routes::state::AppState,
};

fn own_id(actor: &Actor) -> Result<&str, ApiError> {
    actor
        .user_id
        .as_deref()
        .ok_or_else(|| ApiError::unauthenticated("no user behind this request"))
}

pub async fn list_tokens(
    State(state): State<AppState>,
    actor: Actor,
) -> Result<Json<Vec<ApiToken>>, ApiError> {
    let owner = own_id(&actor)?;
    Ok(Json(
        identity::list_tokens(&state.store, &actor, owner).await?,
    ))
}

pub async fn create_token(
    State(state): State<AppState>,
    actor: Actor,
    ApiJson(new): ApiJson<NewToken>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let owner = state.store.user_by_id(own_id(&actor)?).await?;
    let created = identity::create_token(&state.store, &actor, &owner, &new).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

pub async fn revoke_token(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    identity::revoke_token(&state.store, &actor, &id).await?;
    state.hub.access_changed(&state.store).await;
    Ok(StatusCode::NO_CONTENT)
}
