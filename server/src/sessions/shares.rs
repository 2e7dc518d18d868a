//! Sharing a session: its owner (or an administrator) gives users and groups read access to it,
//! optionally until a time, and takes it back. Who a session is shared with is known to its
//! owner, administrators and auditors; a person it is shared with sees only their own share.

use loupe_protocol::{GroupRef, NewShare, Share, Timestamp};

use crate::{
    error::ApiError,
    identity::policy::{self, ensure},
    identity::{auth::Actor, validate},
    sessions,
    store::{ShareRecord, Store, now_us},
};

const MAX_RECIPIENTS: usize = 50;

async fn to_share(store: &Store, record: ShareRecord) -> Result<Share, ApiError> {
    let user = match &record.user_id {
        Some(id) => Some(store.user_by_id(id).await?.to_ref()),
        None => None,
    };
    let group = match &record.group_id {
        Some(id) => {
            let group = store.group_by_id(id).await?;
            Some(GroupRef {
                id: group.id,
                name: group.name,
            })
        }
        None => None,
    };
    Ok(Share {
        id: record.id,
        user,
        group,
        note: record.note,
        created_by: record.created_by,
        created_at: Timestamp::from_micros(record.created_at_us),
        expires_at: record.expires_at_us.map(Timestamp::from_micros),
    })
}

/// The shares of session `id` the actor may see.
pub async fn list(store: &Store, actor: &Actor, id: &str) -> Result<Vec<Share>, ApiError> {
    let session = sessions::visible_session(store, actor, id).await?;
    let all = policy::may_see_all_shares(actor, &session.user_id);
    let groups = sessions::actor_group_ids(store, actor).await?;
    let mut shares = Vec::new();
    for record in store.list_shares(id).await? {
        // Someone the session is shared with sees how it reached them, not who else has it.
        let theirs = record.user_id.as_deref().is_some_and(|user| actor.is(user))
            || record
                .group_id
                .as_ref()
                .is_some_and(|group| groups.contains(group));
        if all || theirs {
            shares.push(to_share(store, record).await?);
        }
    }
    Ok(shares)
}

/// Shares session `id` as `new` says; returns the shares made.
pub async fn create(
    store: &Store,
    actor: &Actor,
    id: &str,
    new: &NewShare,
) -> Result<Vec<Share>, ApiError> {
    let session = sessions::visible_session(store, actor, id).await?;
    ensure(
        policy::may_share_session(actor, &session.user_id),
        "only the session's owner or an administrator shares it",
    )?;
    if new.users.is_empty() && new.groups.is_empty() {
        return Err(ApiError::bad_request(
            "users",
            "name at least one user or group to share with",
        ));
    }
    if new.users.len() + new.groups.len() > MAX_RECIPIENTS {
        return Err(ApiError::bad_request(
            "users",
            format!("share with at most {MAX_RECIPIENTS} users and groups at once"),
        ));
    }
    let note = new
        .note
        .as_deref()
        .map(|note| validate::text("note", note, 0, 500))
        .transpose()?
        .filter(|note| !note.is_empty());
    let now = now_us();
    if new.expires_at.is_some_and(|at| at.as_micros() <= now) {
        return Err(ApiError::bad_request(
            "expires_at",
            "expires_at must be in the future",
        ));
    }
    let mut records = Vec::new();
    let mut recipients = Vec::new();
    for user_id in &new.users {
        let user = store
            .user_by_id(user_id)
            .await
            .map_err(|_| ApiError::bad_request("users", format!("no user with id {user_id}")))?;
        recipients.push(format!("user:{}", user.username));
        records.push((Some(user.id), None));
    }
    for group_id in &new.groups {
        let group = store
            .group_by_id(group_id)
            .await
            .map_err(|_| ApiError::bad_request("groups", format!("no group with id {group_id}")))?;
        recipients.push(format!("group:{}", group.name));
        records.push((None, Some(group.id)));
    }
    let records: Vec<ShareRecord> = records
        .into_iter()
        .map(|(user_id, group_id)| ShareRecord {
            id: uuid::Uuid::now_v7().to_string(),
            session_id: id.to_owned(),
            user_id,
            group_id,
            note: note.clone(),
            created_by: actor.username.clone(),
            created_at_us: now,
            expires_at_us: new.expires_at.map(Timestamp::as_micros),
        })
        .collect();
    store.create_shares(&records).await?;
    let mut event = actor.audit("session.shared", format!("session:{id}"));
    event.detail = Some(format!("with {}", recipients.join(", ")));
    store.record_audit(&event).await?;
    let mut shares = Vec::new();
    for record in records {
        shares.push(to_share(store, record).await?);
    }
    Ok(shares)
}

/// Revokes share `share` of session `id`.
pub async fn revoke(store: &Store, actor: &Actor, id: &str, share: &str) -> Result<(), ApiError> {
    let session = sessions::visible_session(store, actor, id).await?;
    ensure(
        policy::may_share_session(actor, &session.user_id),
        "only the session's owner or an administrator revokes its shares",
    )?;
    if !store.revoke_share(id, share).await? {
        return Err(ApiError::not_found("no such share"));
    }
    let mut event = actor.audit("session.share_revoked", format!("session:{id}"));
    event.detail = Some(format!("share {share}"));
    store.record_audit(&event).await?;
    Ok(())
}
