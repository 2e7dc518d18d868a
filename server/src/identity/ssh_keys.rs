//! People's SSH public keys: registered on their profile, they let `ssh alice+web-1@loupe` in
//! through Loupe's SSH listener as that person. Each person manages only their own; a key
//! belongs to one person (its fingerprint is unique).

use loupe_protocol::{NewSshKey, SshKey, Timestamp};
use russh::keys::{HashAlg, PublicKey};

use crate::{
    error::ApiError,
    identity::{auth::Actor, validate},
    store::{SshKeyRecord, Store, UserRecord, now_us},
};

/// Keys a person may register at most.
const MAX_KEYS: usize = 50;

fn own_id(actor: &Actor) -> Result<&str, ApiError> {
    actor
        .user_id
        .as_deref()
        .ok_or_else(|| ApiError::unauthenticated("no user behind this request"))
}

fn to_key(record: SshKeyRecord) -> SshKey {
    let algorithm = record
        .public_key
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    SshKey {
        id: record.id,
        name: record.name,
        algorithm,
        fingerprint: record.fingerprint,
        created_at: Timestamp::from_micros(record.created_at_us),
    }
}

/// `SHA256:…` of a key, as `ssh-keygen -l` prints it.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

pub async fn list(store: &Store, actor: &Actor) -> Result<Vec<SshKey>, ApiError> {
    let owner = own_id(actor)?;
    Ok(store
        .list_ssh_keys(owner)
        .await?
        .into_iter()
        .map(to_key)
        .collect())
}

/// Registers a key for the caller.
///
/// Errors: 400 (`public_key`) for what is not an OpenSSH public key, 400 (`name`), 409 for a
/// key already registered (by anyone).
pub async fn add(store: &Store, actor: &Actor, new: &NewSshKey) -> Result<SshKey, ApiError> {
    let owner = own_id(actor)?;
    let mut key = PublicKey::from_openssh(new.public_key.trim()).map_err(|error| {
        ApiError::bad_request(
            "public_key",
            format!("public_key must be one line as OpenSSH writes it (ssh-ed25519 AAAA… comment): {error}"),
        )
    })?;
    let name = match &new.name {
        Some(name) => name.clone(),
        None if !key.comment().is_empty() => key.comment().to_string(),
        None => "key".to_owned(),
    };
    let name = validate::text("name", &name, 1, 64)?;
    if store.list_ssh_keys(owner).await?.len() >= MAX_KEYS {
        return Err(ApiError::bad_request(
            "public_key",
            format!("at most {MAX_KEYS} keys each: remove one first"),
        ));
    }
    key.set_comment("");
    let record = SshKeyRecord {
        id: uuid::Uuid::now_v7().to_string(),
        user_id: owner.to_owned(),
        name,
        public_key: key
            .to_openssh()
            .map_err(ApiError::internal)?
            .trim()
            .to_owned(),
        fingerprint: fingerprint(&key),
        created_at_us: now_us(),
    };
    store.create_ssh_key(&record).await?;
    let mut event = actor.audit("ssh_key.added", format!("user:{}", actor.username));
    event.detail = Some(record.fingerprint.clone());
    store.record_audit(&event).await?;
    Ok(to_key(record))
}

/// Removes the caller's key `id`. Errors: 404 when they have no such key.
pub async fn remove(store: &Store, actor: &Actor, id: &str) -> Result<(), ApiError> {
    let owner = own_id(actor)?;
    if !store.delete_ssh_key(owner, id).await? {
        return Err(ApiError::not_found("no such key"));
    }
    store
        .record_audit(&actor.audit("ssh_key.removed", format!("user:{}", actor.username)))
        .await?;
    Ok(())
}

/// The user named `username` (case-insensitive), if `key` is one of theirs and they may sign
/// in.
pub async fn owner_of(store: &Store, username: &str, key: &PublicKey) -> Option<UserRecord> {
    let record = store
        .ssh_key_by_fingerprint(&fingerprint(key))
        .await
        .ok()??;
    let user = store.user_by_id(&record.user_id).await.ok()?;
    (user.username.eq_ignore_ascii_case(username) && !user.disabled).then_some(user)
}
