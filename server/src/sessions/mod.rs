//! The sessions domain. This file reads sessions: who may see which, the list's filters, and
//! turning stored records into the wire types. Its parts: [`recorder`], the one writer, and
//! [`notice`], what each commit tells the live hub; [`ingest`], sessions recorded by agents;
//! [`shares`]; [`rows`], result rows read back in bounded windows; [`download`] and [`render`], downloads streamed chunk by chunk; and
//! [`window_budget`], which bounds window reads when downloads are disabled.

pub mod cast;
pub mod delimited;
pub mod download;
pub mod ingest;
pub mod notice;
pub mod playback;
pub mod recorder;
pub mod render;
pub mod rows;
pub mod shares;
pub mod text;
pub mod window_budget;

use std::collections::BTreeMap;

use loupe_protocol::{
    Column, ConnectionRef, SessionCounts, SessionEvent, SessionQuery, SessionStatus, Timestamp,
    UserRef,
};

use crate::{
    error::ApiError,
    identity::auth::Actor,
    identity::policy,
    paging,
    store::{EventRecord, SessionFilter, SessionRecord, Store, Visibility},
};

pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 200;
/// The list counts matching sessions up to this many, then says "at least".
pub const COUNT_CAP: u32 = 10_000;

/// The session with this id, or "no such session". For callers that check access themselves
/// or have already done so; everyone else wants [`visible_session`].
pub async fn existing_session(store: &Store, id: &str) -> Result<SessionRecord, ApiError> {
    store
        .session(id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such session"))
}

/// The session, if the actor may see it: theirs, shared with them or one of their groups, or a
/// command held for a review their group decides (before and after it ran). A session they may
/// not see answers exactly like one that does not exist, so ids cannot be probed.
pub async fn visible_session(
    store: &Store,
    actor: &Actor,
    id: &str,
) -> Result<SessionRecord, ApiError> {
    let not_found = || ApiError::not_found("no such session");
    let session = existing_session(store, id).await?;
    if policy::sees_all_sessions(actor) || actor.is(&session.user_id) {
        return Ok(session);
    }
    let Some(user_id) = actor.user_id.as_deref() else {
        return Err(not_found());
    };
    let groups = group_ids(store, user_id).await?;
    if store.is_shared_with(id, user_id, &groups).await?
        || store.reviews_session(id, &groups).await?
    {
        Ok(session)
    } else {
        Err(not_found())
    }
}

pub async fn group_ids(store: &Store, user_id: &str) -> Result<Vec<String>, ApiError> {
    Ok(store
        .memberships(None, Some(user_id))
        .await?
        .into_iter()
        .map(|membership| membership.group_id)
        .collect())
}

/// The actor's groups; none for the command line.
pub async fn actor_group_ids(store: &Store, actor: &Actor) -> Result<Vec<String>, ApiError> {
    match &actor.user_id {
        Some(user_id) => group_ids(store, user_id).await,
        None => Ok(Vec::new()),
    }
}

/// The actor's view of the session list.
pub async fn visibility(store: &Store, actor: &Actor) -> Result<Visibility, ApiError> {
    if policy::sees_all_sessions(actor) {
        return Ok(Visibility::All);
    }
    let user_id = actor
        .user_id
        .clone()
        .ok_or_else(|| ApiError::unauthenticated("no user behind this request"))?;
    let group_ids = group_ids(store, &user_id).await?;
    Ok(Visibility::Restricted {
        user_id,
        username: actor.username.clone(),
        group_ids,
    })
}

/// Validates the list's query string into a store filter and a page size.
pub fn filter_from(
    query: &SessionQuery,
    visibility: Visibility,
) -> Result<(SessionFilter, u32), ApiError> {
    let limit = paging::limit(query.limit, DEFAULT_PAGE, MAX_PAGE)?;
    let non_empty = |value: &Option<String>| {
        value
            .as_deref()
            .map(str::trim)
            .filter(|text| !text.is_empty())
            .map(str::to_owned)
    };
    let statuses = match non_empty(&query.status) {
        None => Vec::new(),
        Some(list) => list
            .split(',')
            .map(|status| {
                SessionStatus::parse(status.trim()).ok_or_else(|| {
                    ApiError::bad_request(
                        "status",
                        format!("status {status:?} is not one of pending_review, running, done, failed, rejected, cancelled, interrupted"),
                    )
                })
            })
            .collect::<Result<_, _>>()?,
    };
    if let (Some(from), Some(to)) = (query.from, query.to)
        && from >= to
    {
        return Err(ApiError::bad_request("to", "to must be later than from"));
    }
    let id_prefix = match non_empty(&query.id) {
        None => None,
        Some(prefix) => {
            let prefix = prefix.to_ascii_lowercase();
            if prefix.len() < 4
                || prefix.len() > 36
                || !prefix.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
            {
                return Err(ApiError::bad_request(
                    "id",
                    "id must be 4 to 36 characters of a session id (hex digits and dashes)",
                ));
            }
            Some(prefix)
        }
    };
    let before = non_empty(&query.cursor)
        .map(|cursor| paging::parse_cursor(&cursor))
        .transpose()?;
    let filter = SessionFilter {
        username: non_empty(&query.user).map(|user| user.to_ascii_lowercase()),
        connection: non_empty(&query.connection),
        session_type: query.session_type,
        statuses,
        from_us: query.from.map(Timestamp::as_micros),
        to_us: query.to.map(Timestamp::as_micros),
        id_prefix,
        before,
        visibility,
    };
    Ok((filter, limit))
}

/// The cursor after this session, for the next page.
pub fn cursor_after(session: &SessionRecord) -> String {
    paging::cursor(session.started_at_us, &session.id)
}

/// The first line of an input, at most 200 characters: what the list shows.
pub fn summarize(input: &str) -> String {
    let line = input.trim().lines().next().unwrap_or("");
    let mut summary: String = line.chars().take(200).collect();
    if summary.len() < line.len() || input.trim().lines().nth(1).is_some() {
        summary.push('…');
    }
    summary
}

pub fn to_session(record: SessionRecord) -> loupe_protocol::Session {
    let labels: BTreeMap<String, String> = serde_json::from_str(&record.labels).unwrap_or_default();
    let started_at = Timestamp::from_micros(record.started_at_us);
    let ended_at = record.ended_at_us.map(Timestamp::from_micros);
    loupe_protocol::Session {
        duration_ms: record
            .ended_at_us
            .map(|ended| u64::try_from((ended - record.started_at_us) / 1000).unwrap_or(0)),
        user: UserRef {
            id: record.user_id,
            username: record.username,
            display_name: record.display_name,
        },
        connection: ConnectionRef {
            id: record.connection_id,
            name: record.connection_name,
            kind: record.connection_kind,
        },
        session_type: record.session_type,
        verb: record.verb,
        status: record.status,
        summary: record.summary,
        started_at,
        ended_at,
        exit_code: record.exit_code,
        counts: SessionCounts {
            events: record.event_count as u64,
            input_bytes: record.input_bytes as u64,
            output_bytes: record.output_bytes as u64,
            rows: record.row_count as u64,
        },
        labels,
        rerun_of: record.rerun_of,
        truncated: record.truncated,
        error: record.error,
        agent: record
            .agent_token_id
            .map(|token_id| loupe_protocol::AgentRef {
                token_id,
                name: record.agent_name.unwrap_or_default(),
            }),
        id: record.id,
    }
}

pub fn to_event(record: EventRecord) -> SessionEvent {
    SessionEvent {
        seq: record.seq as u64,
        at: Timestamp::from_micros(record.at_us),
        kind: record.kind,
        summary: record.summary,
        text: record.body,
        code: record.code,
        exit_code: record.exit_code,
        columns: record
            .columns
            .and_then(|json| serde_json::from_str::<Vec<Column>>(&json).ok()),
        bytes: record.bytes as u64,
        rows: record.row_count as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_keep_the_first_line_and_mark_what_was_cut() {
        assert_eq!(summarize("SELECT 1"), "SELECT 1");
        assert_eq!(summarize("  SELECT 1;\nSELECT 2;"), "SELECT 1;…");
        assert_eq!(summarize(&"x".repeat(300)).chars().count(), 201);
    }
}
