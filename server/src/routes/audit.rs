//! `GET /api/audit`: the security trail, newest first, for administrators and auditors.

use axum::{Json, extract::State};
use loupe_protocol::{AuditEvent, AuditQuery, Page, Timestamp};

use crate::{
    error::ApiError,
    extract::ApiQuery,
    identity::auth::Actor,
    identity::policy::{self, ensure},
    paging,
    routes::state::AppState,
    store::AuditFilter,
};

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 200;

/// The actions to filter by: what the trail holds, so the picker offers nothing that finds none.
pub async fn list_audit_actions(
    State(state): State<AppState>,
    actor: Actor,
) -> Result<Json<Vec<String>>, ApiError> {
    ensure(
        policy::may_read_audit(&actor),
        "only administrators and auditors read the audit trail",
    )?;
    Ok(Json(state.store.audit_actions().await?))
}

pub async fn list_audit(
    State(state): State<AppState>,
    actor: Actor,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<Page<AuditEvent>>, ApiError> {
    ensure(
        policy::may_read_audit(&actor),
        "only administrators and auditors read the audit trail",
    )?;
    let limit = paging::limit(query.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    let before_id = query
        .cursor
        .as_deref()
        .map(|cursor| {
            cursor.parse::<i64>().map_err(|_| {
                ApiError::bad_request("cursor", "cursor must be a value from next_cursor")
            })
        })
        .transpose()?;
    let non_empty = |value: Option<String>| value.filter(|text| !text.is_empty());
    let mut records = state
        .store
        .list_audit(&AuditFilter {
            actor: non_empty(query.actor),
            action: non_empty(query.action),
            from_us: query.from.map(Timestamp::as_micros),
            to_us: query.to.map(Timestamp::as_micros),
            before_id,
            // One more than asked tells whether another page follows.
            limit: limit + 1,
        })
        .await?;
    let next_cursor = paging::finish_page(&mut records, limit, |last| last.id.to_string());
    let items = records
        .into_iter()
        .map(|record| AuditEvent {
            id: record.id,
            at: Timestamp::from_micros(record.at_us),
            actor: record.actor_name,
            action: record.action,
            target: record.target,
            detail: record.detail,
            address: record.address,
        })
        .collect();
    Ok(Json(Page { items, next_cursor }))
}
