//! `GET /api/audit`: the security trail, newest first, for administrators and auditors, a page
//! at a time or (`/api/audit/export`) whole as a file.

use axum::{
    Json,
    body::Body,
    extract::State,
    response::{IntoResponse, Response},
};
use loupe_protocol::{AuditEvent, AuditExportQuery, AuditQuery, Page, Timestamp};

use crate::{
    audit_trail,
    error::ApiError,
    extract::ApiQuery,
    identity::auth::Actor,
    identity::policy::{self, ensure},
    paging,
    routes::{downloads::attachment_headers, state::AppState},
    sessions::render::Format,
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
    let mut records = state
        .store
        .list_audit(&filter(
            query.actor,
            query.action,
            query.from,
            query.to,
            before_id,
            // One more than asked tells whether another page follows.
            limit + 1,
        ))
        .await?;
    let next_cursor = paging::finish_page(&mut records, limit, |last| last.id.to_string());
    let items = records.into_iter().map(audit_trail::event).collect();
    Ok(Json(Page { items, next_cursor }))
}

/// The whole filtered trail as a csv or jsonl file, streamed. Refused with 403
/// `downloads_disabled` where downloads are disabled (the trail names sessions and users as
/// session downloads do), and recorded as `audit.exported`.
pub async fn export_audit(
    State(state): State<AppState>,
    actor: Actor,
    ApiQuery(query): ApiQuery<AuditExportQuery>,
) -> Result<Response, ApiError> {
    ensure(
        policy::may_read_audit(&actor),
        "only administrators and auditors read the audit trail",
    )?;
    if state.config.disable_sessions_download {
        return Err(ApiError::downloads_disabled());
    }
    let format = audit_trail::export_format(query.format.as_deref().unwrap_or("csv"))
        .ok_or_else(|| ApiError::bad_request("format", "format must be csv or jsonl"))?;
    // The export reads its own pages: no cursor, and its page size is its own.
    let filter = filter(query.actor, query.action, query.from, query.to, None, 0);
    let mut event = actor.audit("audit.exported", "audit");
    event.detail = Some(describe(format, &filter));
    state.store.record_audit(&event).await?;

    let headers = attachment_headers(format, &format!("loupe-audit.{}", format.extension()))?;
    let body = Body::from_stream(audit_trail::export(state.store.clone(), filter, format));
    Ok((headers, body).into_response())
}

/// The filter both readings share; an empty (or blank) text filter is no filter.
fn filter(
    actor: Option<String>,
    action: Option<String>,
    from: Option<Timestamp>,
    to: Option<Timestamp>,
    before_id: Option<i64>,
    limit: u32,
) -> AuditFilter {
    let non_empty = |value: Option<String>| {
        value
            .map(|text| text.trim().to_owned())
            .filter(|text| !text.is_empty())
    };
    AuditFilter {
        actor: non_empty(actor),
        action: non_empty(action),
        from_us: from.map(Timestamp::as_micros),
        to_us: to.map(Timestamp::as_micros),
        before_id,
        limit,
    }
}

/// The export's audit detail: its format and filters, e.g. `csv; action=login.failed`.
fn describe(format: Format, filter: &AuditFilter) -> String {
    let mut detail = format.extension().to_owned();
    let bounds = [
        ("actor", filter.actor.clone()),
        ("action", filter.action.clone()),
        (
            "from",
            filter
                .from_us
                .map(|us| Timestamp::from_micros(us).to_string()),
        ),
        (
            "to",
            filter
                .to_us
                .map(|us| Timestamp::from_micros(us).to_string()),
        ),
    ];
    for (name, value) in bounds {
        if let Some(value) = value {
            detail.push_str(&format!("; {name}={value}"));
        }
    }
    detail
}
