//! `/api/connections`: the targets people run queries and commands against. Everyone logged in
//! lists them (to pick one); administrators manage them. URLs are write-only.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use loupe_protocol::{Connection, ConnectionChanges, ConnectionCheck, NewConnection};

use crate::{
    connections,
    error::ApiError,
    extract::JsonBody,
    identity::auth::Actor,
    identity::policy::{self, ensure},
    reviews::rules,
    routes::state::AppState,
};

pub async fn list_connections(
    State(state): State<AppState>,
    _actor: Actor,
) -> Result<Json<Vec<Connection>>, ApiError> {
    let records = state.store.list_connections().await?;
    let names = rules::group_names(&state.store).await?;
    Ok(Json(
        records
            .into_iter()
            .map(|record| connections::to_connection(record, &names))
            .collect(),
    ))
}

pub async fn create_connection(
    State(state): State<AppState>,
    actor: Actor,
    body: JsonBody,
) -> Result<(StatusCode, Json<Connection>), ApiError> {
    ensure(
        policy::may_manage_connections(&actor),
        "only administrators manage connections",
    )?;
    let new: NewConnection = body.parse()?;
    let created = connections::create(&state.gateway, &actor, &new).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

pub async fn get_connection(
    State(state): State<AppState>,
    _actor: Actor,
    Path(id): Path<String>,
) -> Result<Json<Connection>, ApiError> {
    let record = connections::existing(&state.store, &id).await?;
    let names = rules::group_names(&state.store).await?;
    Ok(Json(connections::to_connection(record, &names)))
}

pub async fn update_connection(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<Connection>, ApiError> {
    ensure(
        policy::may_manage_connections(&actor),
        "only administrators manage connections",
    )?;
    let changes: ConnectionChanges = body.parse()?;
    Ok(Json(
        connections::update(&state.gateway, &actor, &id, &changes).await?,
    ))
}

pub async fn delete_connection(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    connections::delete(&state.gateway, &actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn test_connection(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Json<ConnectionCheck>, ApiError> {
    ensure(
        policy::may_manage_connections(&actor),
        "only administrators test connections",
    )?;
    let record = connections::existing(&state.store, &id).await?;
    let started = std::time::Instant::now();
    let answer = state.gateway.check(&record).await?;
    let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok(Json(match answer {
        Ok(message) => ConnectionCheck {
            ok: true,
            message,
            elapsed_ms,
        },
        Err(message) => ConnectionCheck {
            ok: false,
            message,
            elapsed_ms,
        },
    }))
}
