//! A review as people see it: read from the store once ([`notice`]), then tailored to each
//! caller ([`ReviewNotice::for_actor`]) with what they may see and do, for HTTP answers and for
//! every live socket alike.

use std::collections::HashMap;

use loupe_protocol::{
    GroupRef, Review, ReviewActions, ReviewConnection, ReviewDecision, ReviewKind, ReviewRules,
    ReviewState, Timestamp, UserRef, Verdict,
};

use super::rules;
use crate::{
    error::ApiError,
    identity::auth::Actor,
    identity::policy,
    store::{ReviewRecord, Store},
};

/// A review as everyone sees it, with what the access rules need to tailor it per caller.
#[derive(Debug, Clone)]
pub struct ReviewNotice {
    /// `actions` are left empty: see [`ReviewNotice::for_actor`].
    pub review: Review,
    pub requester_id: String,
    pub reviewer_group_ids: Vec<String>,
    /// Who has decided already.
    pub decided_by: Vec<String>,
}

impl ReviewNotice {
    /// Whether someone in `groups` is one of this review's reviewers.
    pub(super) fn reviews(&self, groups: &[String]) -> bool {
        groups
            .iter()
            .any(|group| self.reviewer_group_ids.contains(group))
    }

    /// The review as `actor` (in `groups`) sees it, or none when they may not see it.
    pub fn for_actor(&self, actor: &Actor, groups: &[String]) -> Option<Review> {
        let reviews = self.reviews(groups);
        if !policy::may_see_review(actor, &self.requester_id, reviews) {
            return None;
        }
        let state = self.review.state;
        let has_decided = actor
            .user_id
            .as_ref()
            .is_some_and(|id| self.decided_by.contains(id));
        let actions = ReviewActions {
            decide: state == ReviewState::Pending
                && !has_decided
                && policy::may_decide_review(actor, &self.requester_id, reviews),
            cancel: state == ReviewState::Pending
                && policy::may_cancel_review(actor, &self.requester_id),
            revoke: state == ReviewState::Approved
                && self.review.kind == ReviewKind::Access
                && policy::may_revoke_access(actor, reviews),
        };
        Some(Review {
            actions,
            ..self.review.clone()
        })
    }
}

/// Names for the ids a review holds, read as they are needed and kept for one answer: a list
/// shows the same requesters, reviewers and groups again and again.
pub struct Names {
    groups: HashMap<String, String>,
    users: HashMap<String, UserRef>,
}

impl Names {
    pub async fn read(store: &Store) -> Result<Names, ApiError> {
        Ok(Names {
            groups: rules::group_names(store).await?,
            users: HashMap::new(),
        })
    }

    /// A deleted group shows as its id.
    fn group(&self, id: &String) -> GroupRef {
        GroupRef {
            id: id.clone(),
            name: self.groups.get(id).cloned().unwrap_or_else(|| id.clone()),
        }
    }

    async fn user(&mut self, store: &Store, id: &str) -> UserRef {
        if let Some(known) = self.users.get(id) {
            return known.clone();
        }
        let user = match store.user_by_id(id).await {
            Ok(user) => user.to_ref(),
            Err(_) => UserRef {
                id: id.to_owned(),
                username: id.to_owned(),
                display_name: "(unknown user)".into(),
            },
        };
        self.users.insert(id.to_owned(), user.clone());
        user
    }
}

/// Reads everything a review's view needs from the store.
pub async fn notice(store: &Store, record: ReviewRecord) -> Result<ReviewNotice, ApiError> {
    notice_with(store, record, &mut Names::read(store).await?).await
}

/// [`notice`] with names already read, for several reviews at once.
pub async fn notice_with(
    store: &Store,
    record: ReviewRecord,
    names: &mut Names,
) -> Result<ReviewNotice, ApiError> {
    let rules: ReviewRules = serde_json::from_str(&record.rules).map_err(ApiError::internal)?;
    let decisions = store.review_decisions(&record.id).await?;
    let mut views = Vec::with_capacity(decisions.len());
    for decision in &decisions {
        let groups: Vec<String> = serde_json::from_str(&decision.groups).unwrap_or_default();
        views.push(ReviewDecision {
            reviewer: names.user(store, &decision.reviewer_id).await,
            verdict: if decision.verdict == "reject" {
                Verdict::Reject
            } else {
                Verdict::Approve
            },
            note: decision.note.clone(),
            at: Timestamp::from_micros(decision.at_us),
            groups: groups.iter().map(|id| names.group(id)).collect(),
        });
    }
    let closed_by = match &record.closed_by {
        Some(id) => Some(names.user(store, id).await),
        None => None,
    };
    let review = Review {
        kind: record.kind,
        state: record.state,
        connection: ReviewConnection {
            id: record.connection_id.clone(),
            name: record.connection_name.clone(),
            kind: record.connection_kind.clone(),
        },
        requester: names.user(store, &record.requester_id).await,
        reason: record.reason.clone(),
        input: record.input.clone(),
        session_id: record.session_id.clone(),
        access_seconds: record
            .access_seconds
            .and_then(|seconds| u32::try_from(seconds).ok()),
        access_until: record.access_until_us.map(Timestamp::from_micros),
        reviewer_groups: rules
            .reviewer_groups
            .iter()
            .map(|id| names.group(id))
            .collect(),
        approvals: rules.approvals,
        decisions: views,
        created_at: Timestamp::from_micros(record.created_at_us),
        expires_at: Timestamp::from_micros(record.expires_at_us),
        decided_at: record.decided_at_us.map(Timestamp::from_micros),
        closed_at: record.closed_at_us.map(Timestamp::from_micros),
        closed_by,
        closing_note: record.closing_note.clone(),
        actions: ReviewActions::default(),
        id: record.id,
    };
    Ok(ReviewNotice {
        review,
        requester_id: record.requester_id,
        reviewer_group_ids: rules.reviewer_groups,
        decided_by: decisions
            .into_iter()
            .map(|decision| decision.reviewer_id)
            .collect(),
    })
}

impl crate::live::ReviewChange for ReviewNotice {
    fn review_id(&self) -> &str {
        &self.review.id
    }

    fn for_actor(&self, actor: &Actor, groups: &[String]) -> Option<Review> {
        ReviewNotice::for_actor(self, actor, groups)
    }
}

/// The change of review `id` as it is stored now, for the live hub to relay (see
/// [`crate::live::ReadReview`]); none when it is gone or cannot be read.
pub async fn read_change(
    store: Store,
    id: String,
) -> Option<std::sync::Arc<dyn crate::live::ReviewChange>> {
    let record = store.review(&id).await.ok()??;
    let notice = notice(&store, record).await.ok()?;
    Some(std::sync::Arc::new(notice))
}
