//! A connection's review rules: checked when an administrator sets them, stored as JSON with
//! reviewer groups by id (so renaming a group changes nothing), shown with group names.

use std::collections::HashMap;

use loupe_protocol::{Approvals, ReviewRules};

use crate::{
    error::ApiError,
    store::{ConnectionRecord, Store},
};

const MAX_GROUPS: usize = 10;
const MAX_APPROVALS: u32 = 20;
const MIN_ACCESS_SECONDS: u32 = 60;
const MAX_SECONDS: u32 = 30 * 24 * 3600;

/// The rules a connection is under, groups by id; the default (nothing to approve) when none.
pub fn of(connection: &ConnectionRecord) -> ReviewRules {
    connection
        .review
        .as_deref()
        .and_then(|json| serde_json::from_str(json).ok())
        .unwrap_or_default()
}

/// Checks rules as an administrator sent them (groups by name or id) and returns what to store:
/// none for rules that ask for nothing.
pub async fn validate(store: &Store, rules: &ReviewRules) -> Result<Option<String>, ApiError> {
    if rules.reviewer_groups.len() > MAX_GROUPS {
        return Err(ApiError::bad_request(
            "review.reviewer_groups",
            format!("review.reviewer_groups: at most {MAX_GROUPS} groups"),
        ));
    }
    let mut group_ids: Vec<String> = Vec::new();
    for name in &rules.reviewer_groups {
        let group = match store.group_by_name(name).await? {
            Some(group) => group,
            None => store.group_by_id(name).await.map_err(|_| {
                ApiError::bad_request(
                    "review.reviewer_groups",
                    format!("review.reviewer_groups: there is no group named {name}"),
                )
            })?,
        };
        if !group_ids.contains(&group.id) {
            group_ids.push(group.id);
        }
    }
    if rules.is_active() && group_ids.is_empty() {
        return Err(ApiError::bad_request(
            "review.reviewer_groups",
            "review.reviewer_groups must name at least one group when anything needs approval",
        ));
    }
    if let Approvals::Count(count) = rules.approvals
        && !(1..=MAX_APPROVALS).contains(&count)
    {
        return Err(ApiError::bad_request(
            "review.approvals",
            format!("review.approvals: a count must be between 1 and {MAX_APPROVALS}"),
        ));
    }
    if !(MIN_ACCESS_SECONDS..=MAX_SECONDS).contains(&rules.max_access_seconds) {
        return Err(ApiError::bad_request(
            "review.max_access_seconds",
            format!(
                "review.max_access_seconds must be between {MIN_ACCESS_SECONDS} and {MAX_SECONDS}"
            ),
        ));
    }
    if !(1..=MAX_SECONDS).contains(&rules.pending_seconds) {
        return Err(ApiError::bad_request(
            "review.pending_seconds",
            format!("review.pending_seconds must be between 1 and {MAX_SECONDS}"),
        ));
    }
    let stored = ReviewRules {
        reviewer_groups: group_ids,
        ..rules.clone()
    };
    Ok((stored != ReviewRules::default())
        .then(|| serde_json::to_string(&stored).expect("rules serialize")))
}

/// Group names by id, for showing rules.
pub async fn group_names(store: &Store) -> Result<HashMap<String, String>, ApiError> {
    Ok(store
        .list_groups()
        .await?
        .into_iter()
        .map(|group| (group.id, group.name))
        .collect())
}

/// Stored rules as people read them: groups by name (a deleted group shows as its id).
pub fn named(rules: ReviewRules, names: &HashMap<String, String>) -> ReviewRules {
    ReviewRules {
        reviewer_groups: rules
            .reviewer_groups
            .into_iter()
            .map(|id| names.get(&id).cloned().unwrap_or(id))
            .collect(),
        ..rules
    }
}
