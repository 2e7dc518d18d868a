//! `GET /healthz`: is this node up and can it reach its database?

use axum::{Json, extract::State};
use loupe_protocol::Health;

use crate::{error::ApiError, store::Store};

pub async fn check_health(State(store): State<Store>) -> Result<Json<Health>, ApiError> {
    let latency = store
        .ping()
        .await
        .map_err(|error| ApiError::unavailable("the database did not answer", error))?;
    Ok(Json(Health {
        status: "ok".into(),
        database: store.kind().name().into(),
        database_latency_us: u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
    }))
}
