//! Time running out: pending reviews nobody decided, access whose window closed, and approved
//! commands whose server stopped before running them all end as `expired`, swept every second.

use std::time::Duration;

use loupe_protocol::{ReviewKind, SessionStatus};

use super::{Reviews, audit, notice};
use crate::{
    error::ApiError,
    store::{ReviewRecord, now_us},
};

/// How often expiries are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Ends a pending review that nobody decided in time, or access whose window closed, or an
/// approved command whose server stopped before it ran.
pub(super) async fn expire(state: &Reviews, record: &ReviewRecord) -> Result<(), ApiError> {
    let note = match (record.state.as_str(), record.kind.as_str()) {
        ("pending", _) => "nobody decided before the review expired",
        ("approved", "access") => "the access window ended",
        _ => "approved, but the server stopped before the command ran; run it again",
    };
    if !state
        .store
        .move_review(
            &record.id,
            record.state.as_str(),
            "expired",
            None,
            Some(note),
        )
        .await?
    {
        return Ok(());
    }
    audit(
        &state.store,
        None,
        "review.expired",
        &record.id,
        Some(note.into()),
    )
    .await?;
    if let Some(session) = &record.session_id
        && record.kind == ReviewKind::Command
    {
        state
            .gateway
            .end_held(session, SessionStatus::Cancelled, note)
            .await?;
    }
    let notice = notice(
        &state.store,
        state
            .store
            .review(&record.id)
            .await?
            .unwrap_or(record.clone()),
    )
    .await?;
    state.hub.publish_review(&state.store, notice).await;
    Ok(())
}

/// Expires what is due, every second, for as long as the server runs, and stops this node's
/// runs whose access ended. Several nodes may do this at once: each expiry is a conditional
/// UPDATE, so only one of them acts on each review, and each stops only its own runs.
pub fn expire_forever(state: Reviews) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(SWEEP_EVERY);
        loop {
            ticks.tick().await;
            match state.store.due_reviews(now_us()).await {
                Ok(due) => {
                    for record in due {
                        if let Err(error) = expire(&state, &record).await {
                            tracing::warn!(review = %record.id, ?error, "could not expire a review");
                        }
                    }
                }
                Err(error) => tracing::warn!(%error, "could not look for reviews to expire"),
            }
            if let Err(error) = super::stop_runs_whose_access_ended(&state).await {
                tracing::warn!(?error, "could not check runs under just-in-time access");
            }
        }
    });
}
