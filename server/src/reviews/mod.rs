//! Reviews: just-in-time access to a connection, and approval of single commands before they run.
//!
//! Every change of state is one conditional UPDATE (`WHERE state = <the state it leaves>`), so
//! two people acting at once cannot both move a review: the second finds it moved and gets 409.
//! Decisions go through `Store::decide_review`, which takes the review's row before counting, so
//! concurrent approvals make one decision; an approved command is claimed for execution with
//! one more conditional UPDATE (`approved → executed`), so it runs at most once.
//!
//! Who may see and do what is decided in `policy`; [`ReviewNotice`] carries what those rules need
//! to every live socket, which works out each caller's own actions.

mod expiry;
pub mod rules;
pub mod tally;
pub mod view;

use expiry::expire;
pub use expiry::expire_forever;
use view::{Names, notice_with};
pub use view::{ReviewNotice, notice};

use loupe_protocol::{
    AccessRequest, Page, Review, ReviewKind, ReviewQuery, ReviewRules, ReviewState, Session,
    SessionStatus, Verdict, Waiting,
};

use crate::{
    error::ApiError,
    gateway::Gateway,
    identity::auth::Actor,
    identity::policy::{self, ensure},
    live::Hub,
    paging, sessions,
    store::{
        ConnectionRecord, DecideOutcome, DecisionRecord, NewAuditEvent, ReviewFilter, ReviewRecord,
        Store, now_us,
    },
};

/// What the review domain works with: the store, the live hub it publishes review changes to,
/// and the gateway that runs approved commands. Cheap to clone (handles all the way down).
#[derive(Clone)]
pub struct Reviews {
    pub store: Store,
    pub hub: Hub,
    pub gateway: Gateway,
}

const MAX_TEXT: usize = 4000;
const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 200;

/// A review the caller may see: its record, its notice, the caller's groups and their view.
struct Visible {
    record: ReviewRecord,
    notice: ReviewNotice,
    groups: Vec<String>,
    view: Review,
}

/// The review with this id as the caller sees it; 404 when it does not exist or is hidden.
async fn visible(store: &Store, actor: &Actor, id: &str) -> Result<Visible, ApiError> {
    let hidden = || ApiError::not_found("no such review");
    let record = store.review(id).await?.ok_or_else(hidden)?;
    let notice = notice(store, record.clone()).await?;
    let groups = sessions::actor_group_ids(store, actor).await?;
    let view = notice.for_actor(actor, &groups).ok_or_else(hidden)?;
    Ok(Visible {
        record,
        notice,
        groups,
        view,
    })
}

pub async fn get(state: &Reviews, actor: &Actor, id: &str) -> Result<Review, ApiError> {
    Ok(visible(&state.store, actor, id).await?.view)
}

/// Reads the review again, tells the live sockets, and answers with the view of the caller (in
/// `groups`).
async fn changed(
    state: &Reviews,
    actor: &Actor,
    groups: &[String],
    id: &str,
) -> Result<Review, ApiError> {
    let record = state
        .store
        .review(id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such review"))?;
    let notice = notice(&state.store, record).await?;
    let view = notice.for_actor(actor, groups);
    state.hub.publish_review(&state.store, notice).await;
    view.ok_or_else(|| ApiError::not_found("no such review"))
}

fn text(field: &str, value: Option<&str>, required: bool) -> Result<Option<String>, ApiError> {
    let value = value.map(str::trim).filter(|value| !value.is_empty());
    match value {
        None if required => Err(ApiError::bad_request(
            field,
            format!("{field} must not be empty"),
        )),
        Some(value) if value.len() > MAX_TEXT => Err(ApiError::bad_request(
            field,
            format!("{field} must be at most {MAX_TEXT} bytes"),
        )),
        other => Ok(other.map(str::to_owned)),
    }
}

pub(super) async fn audit(
    store: &Store,
    actor: Option<&Actor>,
    action: &'static str,
    id: &str,
    detail: Option<String>,
) -> Result<(), ApiError> {
    let mut event = match actor {
        Some(actor) => actor.audit(action, format!("review:{id}")),
        None => NewAuditEvent {
            actor_id: None,
            actor_name: Some("loupe".into()),
            action,
            target: Some(format!("review:{id}")),
            detail: None,
            address: None,
        },
    };
    event.detail = detail;
    store.record_audit(&event).await?;
    Ok(())
}

fn new_record(
    kind: ReviewKind,
    actor_id: &str,
    connection: &ConnectionRecord,
    rules: &ReviewRules,
    reason: String,
) -> ReviewRecord {
    let now = now_us();
    ReviewRecord {
        id: uuid::Uuid::now_v7().to_string(),
        kind,
        state: ReviewState::Pending,
        connection_id: connection.id.clone(),
        connection_name: connection.name.clone(),
        connection_kind: connection.kind.as_str().to_owned(),
        requester_id: actor_id.to_owned(),
        reason,
        input: None,
        session_id: None,
        access_seconds: None,
        rules: serde_json::to_string(rules).expect("rules serialize"),
        created_at_us: now,
        expires_at_us: now + i64::from(rules.pending_seconds) * 1_000_000,
        decided_at_us: None,
        access_until_us: None,
        closed_at_us: None,
        closed_by: None,
        closing_note: None,
    }
}

fn user_id(actor: &Actor) -> Result<&str, ApiError> {
    actor
        .user_id
        .as_deref()
        .ok_or_else(|| ApiError::forbidden("reviews need a user"))
}

/// `POST /api/reviews`: asks for time-limited access to a connection.
pub async fn request_access(
    state: &Reviews,
    actor: &Actor,
    request: &AccessRequest,
) -> Result<Review, ApiError> {
    ensure(
        policy::may_run_sessions(actor),
        "auditors cannot run queries or commands, so they need no access",
    )?;
    let requester = user_id(actor)?;
    let reason = text("reason", Some(&request.reason), true)?.unwrap_or_default();
    let connection = state
        .store
        .connection(&request.connection)
        .await?
        .ok_or_else(|| {
            ApiError::bad_request(
                "connection",
                format!("there is no connection named {}", request.connection),
            )
        })?;
    let rules = rules::of(&connection);
    if !rules.jit_access {
        return Err(ApiError::bad_request(
            "connection",
            format!("{} does not need access requests", connection.name),
        ));
    }
    if !(60..=rules.max_access_seconds).contains(&request.access_seconds) {
        return Err(ApiError::bad_request(
            "access_seconds",
            format!(
                "access_seconds must be between 60 and {} (the longest {} allows)",
                rules.max_access_seconds, connection.name
            ),
        ));
    }
    let record = ReviewRecord {
        access_seconds: Some(i64::from(request.access_seconds)),
        ..new_record(ReviewKind::Access, requester, &connection, &rules, reason)
    };
    let detail = format!(
        "access to {} for {} s",
        connection.name, request.access_seconds
    );
    open(state, actor, &record, &rules, detail).await
}

/// Stores a new review, records the request in the audit trail and tells the reviewers.
async fn open(
    state: &Reviews,
    actor: &Actor,
    record: &ReviewRecord,
    rules: &ReviewRules,
    detail: String,
) -> Result<Review, ApiError> {
    state
        .store
        .create_review(record, &rules.reviewer_groups)
        .await?;
    audit(
        &state.store,
        Some(actor),
        "review.requested",
        &record.id,
        Some(detail),
    )
    .await?;
    let groups = sessions::actor_group_ids(&state.store, actor).await?;
    changed(state, actor, &groups, &record.id).await
}

/// The just-in-time access `actor` uses `connection` under now: none where the connection needs
/// none; 403 `access_required` where it needs some and none is granted now.
pub async fn granted_access(
    store: &Store,
    actor: &Actor,
    connection: &ConnectionRecord,
) -> Result<Option<String>, ApiError> {
    if !rules::of(connection).jit_access {
        return Ok(None);
    }
    let grant = store
        .active_access(&connection.id, user_id(actor)?)
        .await?
        .ok_or_else(|| ApiError::access_required(&connection.name))?;
    Ok(Some(grant.id))
}

/// The longest input a run takes, in bytes, whichever way it comes in.
pub const MAX_INPUT_BYTES: usize = 1024 * 1024;

/// Runs `input` through the connection named `connection` (its name or id) for `actor`, after
/// the checks every way in shares (the HTTP API, `ssh … command` at Loupe's SSH listener):
/// auditors do not run anything (403), the input is 1 byte to [`MAX_INPUT_BYTES`] (400 `input`),
/// the connection exists (404). Then as [`run`].
pub async fn start(
    state: &Reviews,
    actor: &Actor,
    connection: &str,
    input: &str,
    reason: Option<&str>,
    rerun_of: Option<String>,
) -> Result<Session, ApiError> {
    ensure(
        policy::may_run_sessions(actor),
        "auditors cannot run queries or commands",
    )?;
    if input.trim().is_empty() {
        return Err(ApiError::bad_request("input", "input must not be empty"));
    }
    if input.len() > MAX_INPUT_BYTES {
        return Err(ApiError::bad_request(
            "input",
            format!("input must be at most {MAX_INPUT_BYTES} bytes"),
        ));
    }
    let connection = state
        .store
        .connection(connection)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no connection named {connection}")))?;
    run(state, actor, &connection, input, reason, rerun_of).await
}

/// Runs `input` through `connection` as the connection's rules allow: refused without approved
/// access where access is reviewed; held for review where commands are; else at once.
pub async fn run(
    state: &Reviews,
    actor: &Actor,
    connection: &ConnectionRecord,
    input: &str,
    reason: Option<&str>,
    rerun_of: Option<String>,
) -> Result<Session, ApiError> {
    let rules = rules::of(connection);
    let access = granted_access(&state.store, actor, connection).await?;
    if !rules.command_review {
        let session = state
            .gateway
            .start(actor, connection, input, rerun_of, access)
            .await?;
        return Ok(sessions::to_session(session));
    }
    let requester = user_id(actor)?;
    let reason = text("reason", reason, false)?.unwrap_or_default();
    let session = state
        .gateway
        .hold(actor, connection, input, rerun_of)
        .await?;
    let record = ReviewRecord {
        input: Some(input.to_owned()),
        session_id: Some(session.id.clone()),
        ..new_record(ReviewKind::Command, requester, connection, &rules, reason)
    };
    let detail = format!("command on {} (session {})", connection.name, session.id);
    open(state, actor, &record, &rules, detail).await?;
    Ok(sessions::to_session(session))
}

/// Holds one statement of a running wire-protocol session (`session_id`) for review: a
/// command review whose session goes on running, and which nothing runs on approval: the
/// relay that asked waits for the decision ([`decision`]) and forwards the statement itself.
pub async fn hold_statement(
    state: &Reviews,
    actor: &Actor,
    connection: &ConnectionRecord,
    session_id: &str,
    statement: &str,
) -> Result<Review, ApiError> {
    let rules = rules::of(connection);
    let requester = user_id(actor)?;
    let record = ReviewRecord {
        input: Some(statement.to_owned()),
        session_id: Some(session_id.to_owned()),
        ..new_record(
            ReviewKind::Command,
            requester,
            connection,
            &rules,
            String::new(),
        )
    };
    let detail = format!("statement on {} (session {session_id})", connection.name);
    open(state, actor, &record, &rules, detail).await
}

/// How a held statement's review ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Approved, by these reviewers (with their notes).
    Approved(String),
    /// Rejected, expired or withdrawn: why, for the client.
    Refused(String),
}

/// How often a waiting relay looks at its review. Reading the store rather than listening on
/// this node's live hub keeps it right when the reviewer acts on another node.
const DECISION_POLL: std::time::Duration = std::time::Duration::from_millis(200);

/// Waits until review `id` is decided, withdrawn or expired.
pub async fn decision(state: &Reviews, id: &str) -> Result<Decision, ApiError> {
    loop {
        let record = state
            .store
            .review(id)
            .await?
            .ok_or_else(|| ApiError::not_found("no such review"))?;
        if record.state != ReviewState::Pending {
            let review = notice(&state.store, record.clone()).await?.review;
            let by = |verdict: Verdict| {
                review
                    .decisions
                    .iter()
                    .filter(|decision| decision.verdict == verdict)
                    .map(|decision| match &decision.note {
                        Some(note) => format!("{} ({note})", decision.reviewer.username),
                        None => decision.reviewer.username.clone(),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Ok(match record.state {
                ReviewState::Approved | ReviewState::Executed => {
                    Decision::Approved(by(Verdict::Approve))
                }
                ReviewState::Rejected => Decision::Refused(format!(
                    "the statement was rejected by {}",
                    by(Verdict::Reject)
                )),
                ReviewState::Expired => Decision::Refused(
                    "nobody decided on the statement before its review expired".to_owned(),
                ),
                _ => Decision::Refused(format!("the statement's review was {}", record.state)),
            });
        }
        tokio::time::sleep(DECISION_POLL).await;
    }
}

/// Withdraws a held statement's pending review, as its requester (the client cancelled it, went
/// away, or its session was stopped); nothing when it is no longer pending.
pub async fn withdraw_statement(
    state: &Reviews,
    actor: &Actor,
    id: &str,
    why: &str,
) -> Result<(), ApiError> {
    let by = user_id(actor)?;
    if !state
        .store
        .move_review(id, "pending", "cancelled", Some(by), Some(why))
        .await?
    {
        return Ok(());
    }
    audit(
        &state.store,
        Some(actor),
        "review.cancelled",
        id,
        Some(why.to_owned()),
    )
    .await?;
    let groups = sessions::actor_group_ids(&state.store, actor).await?;
    changed(state, actor, &groups, id).await.map(drop)
}

/// `POST /api/reviews/{id}/approve|reject`.
pub async fn decide(
    state: &Reviews,
    actor: &Actor,
    id: &str,
    verdict: Verdict,
    note: Option<&str>,
) -> Result<Review, ApiError> {
    let Visible {
        record,
        notice,
        groups,
        ..
    } = visible(&state.store, actor, id).await?;
    let mine: Vec<String> = groups
        .iter()
        .filter(|group| notice.reviewer_group_ids.contains(group))
        .cloned()
        .collect();
    if actor.is(&record.requester_id) {
        return Err(ApiError::forbidden(
            "nobody decides on their own request; another reviewer must",
        ));
    }
    ensure(
        policy::may_decide_review(actor, &record.requester_id, !mine.is_empty()),
        "only members of this review's reviewer groups decide on it",
    )?;
    let note = text("note", note, verdict == Verdict::Reject)?;
    let decision = DecisionRecord {
        review_id: record.id.clone(),
        reviewer_id: user_id(actor)?.to_owned(),
        verdict: match verdict {
            Verdict::Approve => "approve".into(),
            Verdict::Reject => "reject".into(),
        },
        note: note.clone(),
        groups: serde_json::to_string(&mine).expect("ids serialize"),
        at_us: now_us(),
    };
    let state_now = match state
        .store
        .decide_review(&decision, tally::is_approved)
        .await?
    {
        DecideOutcome::Recorded { state } => state,
        DecideOutcome::AlreadyDecided => {
            return Err(ApiError::conflict("you already decided on this review"));
        }
        DecideOutcome::NotPending { state: now } => {
            if now == ReviewState::Expired && record.state == ReviewState::Pending {
                // Past its time but not yet swept: end it now rather than a second later.
                expire(state, &record).await?;
            }
            return Err(ApiError::conflict(format!(
                "this review is {now}; it can no longer be decided"
            )));
        }
    };
    let action = match verdict {
        Verdict::Approve => "review.approved",
        Verdict::Reject => "review.rejected",
    };
    audit(&state.store, Some(actor), action, id, note.clone()).await?;
    match (state_now, record.session_id.as_deref()) {
        (ReviewState::Approved, Some(_)) => execute(state, &record.id).await?,
        (ReviewState::Rejected, Some(session)) => {
            let reason = format!(
                "rejected by {}: {}",
                actor.username,
                note.as_deref().unwrap_or("")
            );
            state
                .gateway
                .end_held(session, SessionStatus::Rejected, &reason)
                .await?;
        }
        _ => {}
    }
    changed(state, actor, &groups, id).await
}

/// Claims an approved command review for execution and runs its session, as its requester.
/// The claim is a conditional UPDATE, so however many callers get here it runs once.
async fn execute(state: &Reviews, id: &str) -> Result<(), ApiError> {
    if !state
        .store
        .move_review(id, "approved", "executed", None, None)
        .await?
    {
        return Ok(());
    }
    let record = state
        .store
        .review(id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such review"))?;
    let (Some(session), Some(input)) = (&record.session_id, &record.input) else {
        return Ok(());
    };
    let approvers = notice(&state.store, record.clone())
        .await?
        .review
        .decisions
        .iter()
        .filter(|decision| decision.verdict == Verdict::Approve)
        .map(|decision| match &decision.note {
            Some(note) => format!("{} ({note})", decision.reviewer.username),
            None => decision.reviewer.username.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ");
    audit(
        &state.store,
        None,
        "review.executed",
        id,
        Some(session.clone()),
    )
    .await?;
    match state.store.connection(&record.connection_id).await? {
        Some(connection) => {
            let note = format!("approved by {approvers}");
            state
                .gateway
                .run_held(session, &connection, input, &note)
                .await
        }
        None => {
            state
                .gateway
                .end_held(
                    session,
                    SessionStatus::Failed,
                    "the connection was deleted before the approved command could run",
                )
                .await
        }
    }
}

/// `POST /api/reviews/{id}/cancel`: the requester withdraws a pending request.
pub async fn cancel(
    state: &Reviews,
    actor: &Actor,
    id: &str,
    note: Option<&str>,
) -> Result<Review, ApiError> {
    let Visible { record, groups, .. } = visible(&state.store, actor, id).await?;
    ensure(
        policy::may_cancel_review(actor, &record.requester_id),
        "only the requester withdraws a request",
    )?;
    let note = text("note", note, false)?;
    let by = user_id(actor)?;
    if !state
        .store
        .move_review(id, "pending", "cancelled", Some(by), note.as_deref())
        .await?
    {
        return Err(not_in(&state.store, id, "pending", "cancelled").await);
    }
    audit(&state.store, Some(actor), "review.cancelled", id, note).await?;
    if let Some(session) = &record.session_id {
        state
            .gateway
            .end_held(
                session,
                SessionStatus::Cancelled,
                "the requester withdrew the request",
            )
            .await?;
    }
    changed(state, actor, &groups, id).await
}

/// `POST /api/reviews/{id}/revoke`: ends approved access before its window does.
pub async fn revoke(
    state: &Reviews,
    actor: &Actor,
    id: &str,
    note: Option<&str>,
) -> Result<Review, ApiError> {
    let Visible {
        record,
        notice,
        groups,
        ..
    } = visible(&state.store, actor, id).await?;
    ensure(
        policy::may_revoke_access(actor, notice.reviews(&groups)),
        "only this review's reviewers and administrators revoke access",
    )?;
    if record.kind != ReviewKind::Access {
        return Err(ApiError::conflict(
            "only granted access can be revoked; an approved command has already run",
        ));
    }
    let note = text("note", note, false)?;
    let by = actor.user_id.as_deref();
    if !state
        .store
        .move_review(id, "approved", "revoked", by, note.as_deref())
        .await?
    {
        return Err(not_in(&state.store, id, "approved", "revoked").await);
    }
    let stopped = stop_runs_under(state, &record).await?;
    let detail = match (note, stopped) {
        (note, 0) => note,
        (Some(note), stopped) => Some(format!("{note} (stopped {stopped} running sessions)")),
        (None, stopped) => Some(format!("stopped {stopped} running sessions")),
    };
    audit(&state.store, Some(actor), "review.revoked", id, detail).await?;
    changed(state, actor, &groups, id).await
}

/// Stops this node's runs under the revoked access at once (the other nodes' sweeps stop
/// theirs within a second, see [`stop_runs_whose_access_ended`]); returns how many.
async fn stop_runs_under(state: &Reviews, record: &ReviewRecord) -> Result<usize, ApiError> {
    Ok(state
        .gateway
        .runs_under_access()
        .into_iter()
        .filter(|(_, access)| *access == record.id)
        .filter(|(session, _)| {
            state.gateway.stop(
                session,
                "stopped: the just-in-time access it ran under was revoked".into(),
            )
        })
        .count())
}

/// Stops every run on this node whose just-in-time access has ended, for whatever reason
/// (the window closed, a reviewer or an administrator revoked it, on this node or another),
/// with the reason in its record. Called by every node's sweep.
pub async fn stop_runs_whose_access_ended(state: &Reviews) -> Result<(), ApiError> {
    let now = now_us();
    for (session, access) in state.gateway.runs_under_access() {
        let reason = match state.store.review(&access).await? {
            Some(review) if review.state == ReviewState::Approved => {
                if review.access_until_us.is_some_and(|until| until > now) {
                    continue;
                }
                "stopped: the just-in-time access window it ran under ended"
            }
            Some(review) if review.state == ReviewState::Expired => {
                "stopped: the just-in-time access window it ran under ended"
            }
            Some(review) if review.state == ReviewState::Revoked => {
                "stopped: the just-in-time access it ran under was revoked"
            }
            _ => "stopped: the just-in-time access it ran under ended",
        };
        state.gateway.stop(&session, reason.to_owned());
    }
    Ok(())
}

/// The 409 for a move that found the review in another state.
async fn not_in(store: &Store, id: &str, from: &str, to: &str) -> ApiError {
    let now = match store.review(id).await {
        Ok(Some(record)) => record.state.as_str(),
        _ => "gone",
    };
    ApiError::conflict(format!(
        "this review is {now}, not {from}; it cannot become {to}"
    ))
}

/// `GET /api/reviews`.
pub async fn list(
    state: &Reviews,
    actor: &Actor,
    query: &ReviewQuery,
) -> Result<Page<Review>, ApiError> {
    let limit = paging::limit(query.limit, DEFAULT_PAGE, MAX_PAGE)?;
    let groups = sessions::actor_group_ids(&state.store, actor).await?;
    let me = actor.user_id.clone().unwrap_or_default();
    let mut filter = ReviewFilter {
        kind: query.kind,
        connection_name: query.connection.clone(),
        session_id: query.session.clone(),
        // One more than asked tells whether another page follows.
        limit: limit + 1,
        ..ReviewFilter::default()
    };
    match query.view.as_deref().unwrap_or("all") {
        "inbox" => filter.reviewer_groups = Some(groups.clone()),
        "mine" => filter.requester_id = Some(me.clone()),
        "all" => {}
        other => {
            return Err(ApiError::bad_request(
                "view",
                format!("view {other:?} is not one of inbox, mine, all"),
            ));
        }
    }
    if !policy::sees_all_sessions(actor) {
        filter.visible_to = Some((me, groups.clone()));
    }
    if let Some(states) = &query.state {
        for state in states.split(',').map(str::trim) {
            let Some(state) = ReviewState::parse(state) else {
                return Err(ApiError::bad_request(
                    "state",
                    format!(
                        "state {state:?} is not one of pending, approved, executed, rejected, cancelled, expired, revoked"
                    ),
                ));
            };
            filter.states.push(state);
        }
    }
    if let Some(cursor) = &query.cursor {
        filter.before = Some(paging::parse_cursor(cursor)?);
    }
    let mut records = state.store.list_reviews(&filter).await?;
    let next_cursor = paging::finish_page(&mut records, limit, |last| {
        paging::cursor(last.created_at_us, &last.id)
    });
    let mut names = Names::read(&state.store).await?;
    let mut items = Vec::with_capacity(records.len());
    for record in records {
        if let Some(view) = notice_with(&state.store, record, &mut names)
            .await?
            .for_actor(actor, &groups)
        {
            items.push(view);
        }
    }
    Ok(Page { items, next_cursor })
}

/// `GET /api/reviews/waiting`.
pub async fn waiting(state: &Reviews, actor: &Actor) -> Result<Waiting, ApiError> {
    let Some(me) = actor.user_id.as_ref().filter(|_| policy::may_review(actor)) else {
        return Ok(Waiting { count: 0 });
    };
    let groups = sessions::actor_group_ids(&state.store, actor).await?;
    let count = state.store.count_waiting_reviews(me, &groups).await?;
    Ok(Waiting {
        count: u64::try_from(count).unwrap_or(0),
    })
}
