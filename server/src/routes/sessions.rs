//! Reading sessions: the list, one session, its activity log, and windows of its output and
//! result rows. Every read answers 404 for a session the caller may not see.

use axum::{
    Json,
    extract::{Path, State},
    http::header,
    response::IntoResponse,
};
use loupe_protocol::{
    Column, Count, EventKind, EventPage, EventsQuery, OutputQuery, OutputWindow, RowsQuery,
    RowsWindow, Session, SessionPage, SessionQuery,
};
use serde::Deserialize;

use crate::{
    error::ApiError,
    extract::{ApiPath, ApiQuery},
    identity::auth::Actor,
    paging,
    routes::state::AppState,
    sessions::{self, COUNT_CAP, rows, text},
    store::{EventRecord, MAX_PAGE_ROWS},
};

const MAX_EVENTS_PAGE: u32 = 500;
const DEFAULT_EVENTS_PAGE: u32 = 100;
const MAX_WINDOW_BYTES: u64 = 1024 * 1024;
const DEFAULT_WINDOW_BYTES: u64 = 64 * 1024;
const DEFAULT_WINDOW_ROWS: u32 = 100;

/// `/api/sessions/{id}/events/{seq}/…`.
#[derive(Deserialize)]
pub struct EventPath {
    id: String,
    seq: u64,
}

/// With downloads disabled, counts a window's `bytes` against the reader's budget and audits
/// the read; refuses it once the budget is spent (see [`crate::window_budget`]).
pub(super) async fn charge_window(
    state: &AppState,
    actor: &Actor,
    session_id: &str,
    what: String,
    bytes: u64,
) -> Result<(), ApiError> {
    if !state.config.disable_sessions_download || bytes == 0 {
        return Ok(());
    }
    let reader = actor.user_id.as_deref().unwrap_or(&actor.username);
    if let Err(wait) = state.window_budget.charge(reader, bytes) {
        let wait = wait.as_secs().max(1);
        return Err(ApiError::too_many_requests(
            format!(
                "downloads are disabled on this server, and you have read the most session output allowed for now ({} MiB per period, LOUPE_WINDOW_READ_BYTES); try again in {} minutes",
                state.window_budget.limit() / (1024 * 1024),
                wait.div_ceil(60)
            ),
            wait,
        ));
    }
    let mut event = actor.audit("session.window_read", format!("session:{session_id}"));
    event.detail = Some(what);
    state.store.record_audit(&event).await?;
    Ok(())
}

pub async fn list_sessions(
    State(state): State<AppState>,
    actor: Actor,
    ApiQuery(query): ApiQuery<SessionQuery>,
) -> Result<Json<SessionPage>, ApiError> {
    let visibility = sessions::visibility(&state.store, &actor).await?;
    let (filter, limit) = sessions::filter_from(&query, visibility)?;
    // One more than asked tells whether another page follows.
    let mut records = state.store.list_sessions(&filter, limit + 1).await?;
    let next_cursor = paging::finish_page(&mut records, limit, sessions::cursor_after);
    let total = if filter.before.is_none() {
        let counted = state.store.count_sessions(&filter, COUNT_CAP + 1).await?;
        Some(Count {
            value: counted.min(i64::from(COUNT_CAP)) as u64,
            exact: counted <= i64::from(COUNT_CAP),
        })
    } else {
        None
    };
    Ok(Json(SessionPage {
        items: records.into_iter().map(sessions::to_session).collect(),
        next_cursor,
        total,
    }))
}

pub async fn get_session(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Json<Session>, ApiError> {
    let session = sessions::visible_session(&state.store, &actor, &id).await?;
    Ok(Json(sessions::to_session(session)))
}

pub async fn list_events(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<EventsQuery>,
) -> Result<Json<EventPage>, ApiError> {
    sessions::visible_session(&state.store, &actor, &id).await?;
    let limit = paging::limit(query.limit, DEFAULT_EVENTS_PAGE, MAX_EVENTS_PAGE)?;
    let after = i64::try_from(query.after.unwrap_or(0))
        .map_err(|_| ApiError::bad_request("after", "after is too large"))?;
    let records = state.store.session_events(&id, after, limit).await?;
    let next_after = (records.len() == limit as usize)
        .then(|| records.last().map(|last| last.seq as u64))
        .flatten();
    Ok(Json(EventPage {
        items: records.into_iter().map(sessions::to_event).collect(),
        next_after,
    }))
}

/// The event `seq` of a visible session, which must be of `kind`.
async fn event_of_kind(
    state: &AppState,
    actor: &Actor,
    id: &str,
    seq: u64,
    kind: EventKind,
) -> Result<EventRecord, ApiError> {
    sessions::visible_session(&state.store, actor, id).await?;
    let seq = i64::try_from(seq).map_err(|_| ApiError::not_found("no such event"))?;
    let event = state
        .store
        .event(id, seq)
        .await?
        .ok_or_else(|| ApiError::not_found("no such event"))?;
    if event.kind != kind {
        return Err(ApiError::bad_request(
            "seq",
            format!(
                "event {seq} is a {} event, not {}",
                event.kind,
                kind.as_str()
            ),
        ));
    }
    Ok(event)
}

pub async fn get_output(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(EventPath { id, seq }): ApiPath<EventPath>,
    ApiQuery(query): ApiQuery<OutputQuery>,
) -> Result<Json<OutputWindow>, ApiError> {
    let length = query.length.unwrap_or(DEFAULT_WINDOW_BYTES);
    if !(1..=MAX_WINDOW_BYTES).contains(&length) {
        return Err(ApiError::bad_request(
            "length",
            format!("length must be between 1 and {MAX_WINDOW_BYTES} bytes"),
        ));
    }
    let event = event_of_kind(&state, &actor, &id, seq, EventKind::Output).await?;
    let total = event.bytes as u64;
    let start = query.offset.unwrap_or(0).min(total);
    let end = start.saturating_add(length).min(total);
    charge_window(
        &state,
        &actor,
        &id,
        format!("output of event {seq}, bytes {start}..{end}"),
        end - start,
    )
    .await?;
    if start >= end {
        return Ok(Json(OutputWindow {
            offset: start,
            length: 0,
            total,
            pieces: Vec::new(),
        }));
    }
    let (pieces, start, end) = text::read(&state.store, &id, seq, start, end).await?;
    Ok(Json(OutputWindow {
        offset: start,
        length: end - start,
        total,
        pieces: pieces.into_iter().map(|(piece, _)| piece).collect(),
    }))
}

pub async fn get_rows(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(EventPath { id, seq }): ApiPath<EventPath>,
    ApiQuery(query): ApiQuery<RowsQuery>,
) -> Result<Json<RowsWindow>, ApiError> {
    let limit = paging::limit(query.limit, DEFAULT_WINDOW_ROWS, MAX_PAGE_ROWS as u32)?;
    let cell_bytes = query.cell_bytes.unwrap_or(rows::DEFAULT_CELL_BYTES);
    if !rows::CELL_BYTES.contains(&cell_bytes) {
        return Err(ApiError::bad_request(
            "cell_bytes",
            format!(
                "cell_bytes must be {} to {}",
                rows::CELL_BYTES.start(),
                rows::CELL_BYTES.end()
            ),
        ));
    }
    let event = event_of_kind(&state, &actor, &id, seq, EventKind::Result).await?;
    let total = event.row_count as u64;
    let start = query.offset.unwrap_or(0).min(total);
    let end = start.saturating_add(u64::from(limit)).min(total);
    let columns = columns_of(&event);
    let (rows, cut) = rows::window(
        &state.store,
        &id,
        event.seq,
        (start, end),
        columns.len(),
        cell_bytes as usize,
    )
    .await?;
    // Only counted where windows are budgeted (downloads disabled).
    let bytes = if state.config.disable_sessions_download {
        serde_json::to_vec(&rows).map_or(0, |json| json.len() as u64)
    } else {
        0
    };
    let read = format!(
        "rows of event {seq}, rows {start}..{}",
        start + rows.len() as u64
    );
    charge_window(&state, &actor, &id, read, bytes).await?;
    Ok(Json(RowsWindow {
        offset: start,
        total,
        columns,
        rows,
        cut,
    }))
}

/// `/api/sessions/{id}/events/{seq}/rows/{row}/cells/{column}`.
#[derive(Deserialize)]
pub struct CellPath {
    id: String,
    seq: u64,
    row: u64,
    column: u32,
}

/// One value whole, as `text/plain` (NULL as nothing): what a rows window sent cut.
pub async fn get_cell(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(CellPath {
        id,
        seq,
        row,
        column,
    }): ApiPath<CellPath>,
) -> Result<impl IntoResponse, ApiError> {
    let event = event_of_kind(&state, &actor, &id, seq, EventKind::Result).await?;
    let no_row = || {
        ApiError::not_found(format!(
            "event {seq} has {} rows; there is no row {row}",
            event.row_count
        ))
    };
    if row >= event.row_count as u64 {
        return Err(no_row());
    }
    let Some(cells) = rows::row(&state.store, &id, event.seq, row).await? else {
        return Err(no_row());
    };
    let Some(cell) = cells.get(column as usize) else {
        return Err(ApiError::not_found(format!(
            "the rows of event {seq} have {} columns; there is no column {column}",
            cells.len()
        )));
    };
    let text = cell
        .text()
        .map(|text| text.into_owned())
        .unwrap_or_default();
    let read = format!("cell of event {seq}, row {row}, column {column}");
    charge_window(&state, &actor, &id, read, text.len() as u64).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text))
}

fn columns_of(event: &EventRecord) -> Vec<Column> {
    event
        .columns
        .as_deref()
        .and_then(|json| serde_json::from_str(json).ok())
        .unwrap_or_default()
}
