//! Running through Loupe: `POST /api/sessions` starts a query or command and answers at once
//! with the new session; `kill` stops one; `rerun` runs the same input again, under the rules in
//! force now.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use loupe_protocol::{RunRequest, Session, SessionStatus};

use crate::{
    error::ApiError,
    extract::ApiJson,
    identity::auth::Actor,
    identity::policy::{self, ensure},
    reviews::{self, MAX_INPUT_BYTES},
    routes::state::AppState,
    sessions,
};

/// The largest run request: a [`MAX_INPUT_BYTES`] input even if JSON escapes every byte of it
/// (`\u0000`, six bytes each), plus the other fields. Past the input limit the answer is a 400
/// naming `input`, not a 413 about the body.
pub const MAX_RUN_BODY: usize = 6 * MAX_INPUT_BYTES + 64 * 1024;

pub async fn run_session(
    State(state): State<AppState>,
    actor: Actor,
    ApiJson(request): ApiJson<RunRequest>,
) -> Result<(StatusCode, Json<Session>), ApiError> {
    let session = reviews::start(
        &state.reviews,
        &actor,
        &request.connection,
        &request.input,
        request.reason.as_deref(),
        None,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(session)))
}

pub async fn kill_session(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Json<Session>, ApiError> {
    let session = sessions::visible_session(&state.store, &actor, &id).await?;
    ensure(
        policy::may_act_on_session(&actor, &session.user_id),
        "only the session's owner or an administrator stops it",
    )?;
    if session.status == SessionStatus::PendingReview {
        return Err(ApiError::conflict(
            "the session is waiting for review and not running: withdraw the request instead",
        ));
    }
    if !state.gateway.kill(&id) {
        return Err(ApiError::conflict(
            "the session is not running on this server",
        ));
    }
    state
        .store
        .record_audit(&actor.audit("session.killed", format!("session:{id}")))
        .await?;
    // The run records its end itself; give it a moment so the answer usually shows it.
    let mut current = sessions::existing_session(&state.store, &id).await?;
    for _ in 0..50 {
        if current.status != SessionStatus::Running {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        current = sessions::existing_session(&state.store, &id).await?;
    }
    Ok(Json(sessions::to_session(current)))
}

pub async fn rerun_session(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Session>), ApiError> {
    let original = sessions::visible_session(&state.store, &actor, &id).await?;
    ensure(
        policy::may_act_on_session(&actor, &original.user_id),
        "only the session's owner or an administrator runs it again",
    )?;
    if sessions::cast::is_terminal(&original) {
        return Err(ApiError::conflict(
            "a terminal session cannot be run again: open a new terminal on its connection",
        ));
    }
    let connection = original.connection_id.clone().ok_or_else(|| {
        ApiError::conflict("this session was recorded elsewhere and cannot be run again here")
    })?;
    let input = state
        .store
        .session_input(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such session"))?;
    let session = reviews::start(
        &state.reviews,
        &actor,
        &connection,
        &input,
        None,
        Some(id.clone()),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(session)))
}
