//! `POST /api/auth/login`, `POST /api/auth/logout`, `GET /api/me`: the browser's cookie login.

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use loupe_protocol::{LoginRequest, User};

use crate::{
    error::ApiError,
    extract::ApiJson,
    identity,
    identity::auth::{self, Actor, ClientAddress},
    routes::state::AppState,
};

pub async fn log_in(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    ApiJson(request): ApiJson<LoginRequest>,
) -> Result<Response, ApiError> {
    // A cross-site page must not log a browser into an account of its choosing either.
    if headers.contains_key(header::ORIGIN) {
        auth::require_same_origin(&headers, state.config.secure_cookies)?;
    }
    let logged_in = identity::log_in(&state.store, &state.throttle, &request, address).await?;
    let cookie = auth::login_cookie(
        &logged_in.cookie_secret,
        identity::LOGIN_TTL_SECONDS,
        state.config.secure_cookies,
    );
    Ok(([(header::SET_COOKIE, cookie)], Json(logged_in.user)).into_response())
}

pub async fn log_out(State(state): State<AppState>, actor: Actor) -> Result<Response, ApiError> {
    identity::log_out(&state.store, &actor).await?;
    state.hub.access_changed(&state.store).await;
    let cookie = auth::logout_cookie(state.config.secure_cookies);
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
}

pub async fn get_me(State(state): State<AppState>, actor: Actor) -> Result<Json<User>, ApiError> {
    let id = actor
        .user_id
        .as_deref()
        .ok_or_else(|| ApiError::unauthenticated("no user behind this request"))?;
    Ok(Json(identity::user(&state.store, &actor, id).await?))
}
