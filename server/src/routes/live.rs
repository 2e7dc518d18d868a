//! `GET /api/live`: the WebSocket. Authenticated like every route (login cookie or token); a
//! browser's handshake must come from Loupe's own pages, so another site cannot open one with
//! the user's cookie.

use axum::{
    extract::{State, WebSocketUpgrade, ws::rejection::WebSocketUpgradeRejection},
    http::{HeaderMap, header},
    response::Response,
};
use futures_util::StreamExt;

use crate::{
    error::ApiError,
    identity::auth::{self, Actor, Credential},
    live::socket,
    routes::state::AppState,
};

/// Largest message a client may send.
const MAX_CLIENT_MESSAGE: usize = 64 * 1024;

pub async fn open_live(
    State(state): State<AppState>,
    actor: Actor,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let upgrade = upgrade.map_err(|rejection| {
        ApiError::bad_request(
            "upgrade",
            format!("open /api/live as a WebSocket ({})", rejection.body_text()),
        )
    })?;
    if matches!(actor.credential, Credential::Cookie(_)) && headers.contains_key(header::ORIGIN) {
        auth::require_same_origin(&headers, state.config.secure_cookies)?;
    }
    // Subscribe before the upgrade completes, so nothing committed from now on is missed.
    let subscription = state.hub.subscribe();
    Ok(upgrade
        .max_message_size(MAX_CLIENT_MESSAGE)
        .on_upgrade(move |websocket| async move {
            let (sink, stream) = websocket.split();
            let recheck = std::time::Duration::from_secs(state.config.live_recheck_seconds);
            socket::run(state.store, recheck, actor, sink, stream, subscription).await;
        }))
}
