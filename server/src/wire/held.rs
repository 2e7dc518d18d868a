//! Statements held for review at the wire: on a connection whose statements are reviewed, each
//! statement waits, with a review of its own (its text, and its parameters), until a reviewer
//! approves it (the relay then forwards it), rejects it (the client gets an error with the
//! reviewer's note), or nobody decides in time. The client cancelling the statement, or its
//! session being stopped, withdraws the review.
//!
//! The session goes on running meanwhile: its record shows the statement, where its review is,
//! and how the review ended.

use tokio::{
    io::{AsyncBufRead, AsyncBufReadExt},
    sync::Notify,
};

use super::{
    Services,
    admission::Admitted,
    recording::{Notes, Seen, WireSession},
};
use crate::reviews::{self, Decision};

/// What holding a statement needs: the services, the admitted client and its session.
pub(super) struct Hold<'a> {
    pub services: &'a Services,
    pub admitted: &'a Admitted,
    pub session: &'a WireSession,
    pub notes: &'a Notes,
}

/// A statement waiting for its review.
pub(super) struct Held {
    id: String,
    /// Where reviewers (and the client) see it.
    pub address: String,
}

impl Hold<'_> {
    /// Opens the statement's review and notes where it is; the refusal's text when it cannot
    /// be opened.
    pub async fn open(&self, statement: &str) -> Result<Held, String> {
        let review = reviews::hold_statement(
            &self.services.reviews,
            &self.admitted.actor,
            &self.admitted.connection,
            &self.session.id,
            statement,
        )
        .await
        .map_err(|error| {
            format!(
                "the statement could not be held for review: {}",
                error.message()
            )
        })?;
        let address = format!(
            "{}/reviews/{}",
            self.services.public_url.trim_end_matches('/'),
            review.id
        );
        self.notes
            .note(Seen::Note(format!("held for review: {address}")))
            .await;
        Ok(Held {
            id: review.id,
            address,
        })
    }

    /// Waits for `held`'s decision; `withdrawn` resolves (with why) when the client cancels
    /// the statement. An approval is noted in the record; a refusal is the caller's to record
    /// (as the protocol's own error).
    pub async fn decision(
        &self,
        held: &Held,
        withdrawn: impl Future<Output = &'static str>,
    ) -> Decision {
        let reviews = &self.services.reviews;
        let withdraw = async |why: &str| {
            if let Err(error) =
                reviews::withdraw_statement(reviews, &self.admitted.actor, &held.id, why).await
            {
                tracing::warn!(review = %held.id, %error, "withdrawing a held statement's review");
            }
            // A reviewer may have decided in the same moment: the record says so, but the
            // client, which gave up on it, is refused all the same.
            if let Ok(Decision::Approved(by)) = reviews::decision(reviews, &held.id).await {
                self.notes
                    .note(Seen::Note(format!(
                        "approved by {by} as the client gave it up; it did not run"
                    )))
                    .await;
            }
            Decision::Refused(why.to_owned())
        };
        let decision = tokio::select! {
            decided = reviews::decision(reviews, &held.id) => decided.unwrap_or_else(|error| {
                Decision::Refused(format!("the statement's review could not be read: {}", error.message()))
            }),
            why = withdrawn => withdraw(why).await,
            () = self.session.stop.cancelled() => withdraw("the session was stopped").await,
        };
        if let Decision::Approved(by) = &decision {
            self.notes
                .note(Seen::Note(format!("approved by {by}")))
                .await;
        }
        decision
    }
}

/// Resolves once `withdraw` is notified (the client cancelled its statement), listening from
/// this call on: made before the review is opened, so that a cancel sent the moment the review
/// shows, before the relay reaches its wait, is not missed (`Notify::notify_waiters` wakes only
/// those already listening).
pub(super) fn cancel_heard(withdraw: &Notify) -> impl Future<Output = ()> + '_ {
    let mut heard = Box::pin(withdraw.notified());
    heard.as_mut().enable();
    heard
}

/// Resolves when the client has closed its connection. Data from it (a pipelined message) is
/// left to be read; it then stops watching, since the client is evidently there.
pub(super) async fn client_gone(client: &mut (impl AsyncBufRead + Unpin)) {
    match client.fill_buf().await {
        Ok([]) | Err(_) => {}
        Ok(_) => std::future::pending().await,
    }
}
