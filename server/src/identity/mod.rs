//! Users, groups, logins and API tokens. These operations sit behind both the HTTP API and the
//! `loupe user|group|token` commands, so both paths validate, ask [`crate::identity::policy`] and write
//! the audit trail in exactly the same way.

pub mod auth;
pub mod credentials;
pub mod passwords;
pub mod policy;
pub mod ssh_keys;
pub mod throttle;
pub mod validate;

use std::collections::HashMap;

use loupe_protocol::{
    ApiToken, CreatedToken, Group, GroupChanges, GroupRef, LoginRequest, NewGroup, NewToken,
    NewUser, Role, Timestamp, User, UserChanges,
};

use crate::{
    config::Secret,
    error::ApiError,
    identity::auth::{Actor, Credential},
    identity::policy::ensure,
    store::{
        GroupRecord, MembershipRecord, NewAuditEvent, Store, TokenRecord, UserRecord, UserUpdate,
        now_us,
    },
};

use self::throttle::LoginThrottle;

/// How long a browser login lasts.
pub const LOGIN_TTL_SECONDS: u64 = 12 * 60 * 60;
const LONGEST_TOKEN_DAYS: u32 = 3650;
const WRONG_CREDENTIALS: &str = "wrong username or password";

fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// On a database without users, creates `admin` with `LOUPE_ADMIN_PASSWORD` or, without it, a
/// generated password, which is returned so the caller can show it once. Several nodes starting
/// at once are safe: the username is unique, and only the node that created it gets a password.
pub async fn ensure_initial_admin(
    store: &Store,
    password: Option<&Secret>,
) -> Result<Option<String>, ApiError> {
    if store.count_users().await? > 0 {
        return Ok(None);
    }
    let (password, generated) = match password {
        Some(password) => (password.expose().to_owned(), false),
        None => (credentials::generate("")[..24].to_owned(), true),
    };
    validate::password("LOUPE_ADMIN_PASSWORD", &password, &["admin"])?;
    let now = now_us();
    let admin = UserRecord {
        id: new_id(),
        username: "admin".into(),
        display_name: "Administrator".into(),
        role: Role::Admin,
        disabled: false,
        password_hash: Some(passwords::hash_off_executor(&password).await?),
        created_at_us: now,
    };
    match store.create_user(&admin).await {
        Ok(()) => {}
        // Another node won the race; it shows its own password.
        Err(crate::store::StoreError::Conflict(_)) => return Ok(None),
        Err(error) => return Err(error.into()),
    }
    store
        .record_audit(&NewAuditEvent {
            action: "user.created",
            target: Some("user:admin".into()),
            detail: Some("initial administrator, created at first start".into()),
            ..NewAuditEvent::default()
        })
        .await?;
    Ok(generated.then_some(password))
}

/// A successful login: the user, and the secret to set as the login cookie.
pub struct LoggedIn {
    pub user: User,
    pub cookie_secret: String,
}

pub async fn log_in(
    store: &Store,
    throttle: &LoginThrottle,
    request: &LoginRequest,
    address: Option<String>,
) -> Result<LoggedIn, ApiError> {
    // Malformed names cannot exist, so they fail like any wrong username.
    let username = request.username.trim().to_ascii_lowercase();
    // Counted as a failure from here on, until it succeeds: see `throttle`.
    let attempt = throttle
        .begin(&username, address.as_deref())
        .map_err(|wait| {
            let wait = wait.as_secs().max(1);
            let when = if wait < 120 {
                format!("{wait} seconds")
            } else {
                format!("{} minutes", wait.div_ceil(60))
            };
            ApiError::too_many_requests(
                format!("too many failed logins; try again in {when}"),
                wait,
            )
        })?;
    let user = store.user_by_username(&username).await?;
    // Always verify, even for an unknown user, so timing does not reveal which usernames exist.
    let password_ok = passwords::verify_off_executor(
        &request.password,
        user.as_ref().and_then(|user| user.password_hash.as_deref()),
    )
    .await;
    let user = match user {
        Some(user) if password_ok && !user.disabled => user,
        _ => {
            drop(attempt);
            store
                .record_audit(&NewAuditEvent {
                    action: "login.failed",
                    target: Some(format!("user:{username}")),
                    address,
                    ..NewAuditEvent::default()
                })
                .await?;
            return Err(ApiError::unauthenticated(WRONG_CREDENTIALS));
        }
    };
    throttle.succeeded(attempt);
    let cookie_secret = credentials::generate("");
    let expires = now_us() + (LOGIN_TTL_SECONDS * 1_000_000) as i64;
    store.purge_expired_logins().await?;
    store
        .create_login_session(&credentials::digest(&cookie_secret), &user.id, expires)
        .await?;
    store
        .record_audit(&NewAuditEvent {
            actor_id: Some(user.id.clone()),
            actor_name: Some(user.username.clone()),
            action: "login.succeeded",
            target: Some(format!("user:{}", user.username)),
            address,
            ..NewAuditEvent::default()
        })
        .await?;
    let user = with_groups(store, user).await?;
    Ok(LoggedIn {
        user,
        cookie_secret,
    })
}

pub async fn log_out(store: &Store, actor: &Actor) -> Result<(), ApiError> {
    if let Credential::Cookie(digest) = &actor.credential {
        store.delete_login_session(digest).await?;
        store
            .record_audit(&actor.audit("logout", format!("user:{}", actor.username)))
            .await?;
    }
    Ok(())
}

// ---- users ------------------------------------------------------------------------------

async fn with_groups(store: &Store, user: UserRecord) -> Result<User, ApiError> {
    let groups = store
        .memberships(None, Some(&user.id))
        .await?
        .into_iter()
        .map(|membership| GroupRef {
            id: membership.group_id,
            name: membership.group_name,
        })
        .collect();
    Ok(user.into_user(groups))
}

pub async fn user(store: &Store, actor: &Actor, id: &str) -> Result<User, ApiError> {
    ensure(
        policy::may_read_directory(actor),
        "you may not read the user directory",
    )?;
    let user = store
        .user_by_id(id)
        .await
        .map_err(|_| ApiError::not_found("no such user"))?;
    with_groups(store, user).await
}

pub async fn user_by_username(store: &Store, username: &str) -> Result<UserRecord, ApiError> {
    store
        .user_by_username(&username.trim().to_ascii_lowercase())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no user named {username}")))
}

pub async fn list_users(store: &Store, actor: &Actor) -> Result<Vec<User>, ApiError> {
    ensure(
        policy::may_read_directory(actor),
        "you may not read the user directory",
    )?;
    let mut groups: HashMap<String, Vec<GroupRef>> = HashMap::new();
    for membership in store.memberships(None, None).await? {
        groups
            .entry(membership.user_id)
            .or_default()
            .push(GroupRef {
                id: membership.group_id,
                name: membership.group_name,
            });
    }
    Ok(store
        .list_users()
        .await?
        .into_iter()
        .map(|user| {
            let user_groups = groups.remove(&user.id).unwrap_or_default();
            user.into_user(user_groups)
        })
        .collect())
}

pub async fn create_user(store: &Store, actor: &Actor, new: &NewUser) -> Result<User, ApiError> {
    ensure(
        policy::may_manage_accounts(actor),
        "only administrators create users",
    )?;
    let username = validate::handle("username", &new.username)?;
    let display_name = match &new.display_name {
        Some(name) => validate::text("display_name", name, 1, 128)?,
        None => username.clone(),
    };
    validate::password("password", &new.password, &[&username])?;
    let record = UserRecord {
        id: new_id(),
        username: username.clone(),
        display_name,
        role: new.role,
        disabled: false,
        password_hash: Some(passwords::hash_off_executor(&new.password).await?),
        created_at_us: now_us(),
    };
    store.create_user(&record).await?;
    let mut event = actor.audit("user.created", format!("user:{username}"));
    event.detail = Some(format!("role {}", new.role.as_str()));
    store.record_audit(&event).await?;
    Ok(record.into_user(Vec::new()))
}

pub async fn update_user(
    store: &Store,
    actor: &Actor,
    id: &str,
    changes: &UserChanges,
) -> Result<User, ApiError> {
    ensure(
        policy::may_manage_accounts(actor),
        "only administrators change users",
    )?;
    let current = store
        .user_by_id(id)
        .await
        .map_err(|_| ApiError::not_found("no such user"))?;
    let update = UserUpdate {
        display_name: changes
            .display_name
            .as_deref()
            .map(|name| validate::text("display_name", name, 1, 128))
            .transpose()?,
        role: changes.role,
        disabled: changes.disabled,
        password_hash: match &changes.password {
            Some(password) => {
                validate::password("password", password, &[&current.username])?;
                Some(passwords::hash_off_executor(password).await?)
            }
            None => None,
        },
    };
    let stops_being_admin = current.role == Role::Admin
        && !current.disabled
        && (changes.role.is_some_and(|role| role != Role::Admin) || changes.disabled == Some(true));
    if stops_being_admin {
        let enabled_admins = store
            .list_users()
            .await?
            .iter()
            .filter(|user| user.role == Role::Admin && !user.disabled)
            .count();
        if enabled_admins <= 1 {
            return Err(ApiError::conflict(
                "at least one enabled administrator must remain",
            ));
        }
    }
    store.update_user(id, &update).await?;

    let target = format!("user:{}", current.username);
    let mut events = Vec::new();
    if let Some(role) = changes.role.filter(|&role| role != current.role) {
        let mut event = actor.audit("user.role_changed", target.clone());
        event.detail = Some(format!("{} → {role}", current.role));
        events.push(event);
    }
    if let Some(disabled) = changes
        .disabled
        .filter(|&disabled| disabled != current.disabled)
    {
        events.push(actor.audit(
            if disabled {
                "user.disabled"
            } else {
                "user.enabled"
            },
            target.clone(),
        ));
    }
    if changes.password.is_some() {
        events.push(actor.audit("user.password_reset", target.clone()));
    }
    if update.display_name.is_some() {
        events.push(actor.audit("user.renamed", target.clone()));
    }
    // A new password or a disabled account ends the browser logins and revokes the API tokens
    // made with the old state: re-enabling the account later does not bring them back.
    if changes.password.is_some() || changes.disabled == Some(true) {
        store.delete_login_sessions_of(id).await?;
        let revoked = store.revoke_tokens_of(id).await?;
        if revoked > 0 {
            let mut event = actor.audit("token.revoked", target.clone());
            event.detail = Some(format!(
                "{revoked} API token{} revoked with the account's {}",
                if revoked == 1 { "" } else { "s" },
                if changes.password.is_some() {
                    "password reset"
                } else {
                    "disabling"
                }
            ));
            events.push(event);
        }
    }
    for event in &events {
        store.record_audit(event).await?;
    }
    let updated = store.user_by_id(id).await?;
    with_groups(store, updated).await
}

// ---- groups -----------------------------------------------------------------------------

fn group_from(record: GroupRecord, members: Vec<MembershipRecord>) -> Group {
    Group {
        id: record.id,
        name: record.name,
        description: record.description,
        members: members
            .into_iter()
            .map(|member| loupe_protocol::UserRef {
                id: member.user_id,
                username: member.username,
                display_name: member.display_name,
            })
            .collect(),
        created_at: Timestamp::from_micros(record.created_at_us),
    }
}

pub async fn group(store: &Store, actor: &Actor, id: &str) -> Result<Group, ApiError> {
    ensure(
        policy::may_read_directory(actor),
        "you may not read the group directory",
    )?;
    let record = store
        .group_by_id(id)
        .await
        .map_err(|_| ApiError::not_found("no such group"))?;
    let members = store.memberships(Some(id), None).await?;
    Ok(group_from(record, members))
}

pub async fn group_by_name(store: &Store, name: &str) -> Result<GroupRecord, ApiError> {
    store
        .group_by_name(&name.trim().to_ascii_lowercase())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no group named {name}")))
}

pub async fn list_groups(store: &Store, actor: &Actor) -> Result<Vec<Group>, ApiError> {
    ensure(
        policy::may_read_directory(actor),
        "you may not read the group directory",
    )?;
    let mut members: HashMap<String, Vec<MembershipRecord>> = HashMap::new();
    for membership in store.memberships(None, None).await? {
        members
            .entry(membership.group_id.clone())
            .or_default()
            .push(membership);
    }
    Ok(store
        .list_groups()
        .await?
        .into_iter()
        .map(|group| {
            let group_members = members.remove(&group.id).unwrap_or_default();
            group_from(group, group_members)
        })
        .collect())
}

pub async fn create_group(store: &Store, actor: &Actor, new: &NewGroup) -> Result<Group, ApiError> {
    ensure(
        policy::may_manage_accounts(actor),
        "only administrators create groups",
    )?;
    let record = GroupRecord {
        id: new_id(),
        name: validate::handle("name", &new.name)?,
        description: validate::text("description", &new.description, 0, 512)?,
        created_at_us: now_us(),
    };
    store.create_group(&record).await?;
    store
        .record_audit(&actor.audit("group.created", format!("group:{}", record.name)))
        .await?;
    Ok(group_from(record, Vec::new()))
}

pub async fn update_group(
    store: &Store,
    actor: &Actor,
    id: &str,
    changes: &GroupChanges,
) -> Result<Group, ApiError> {
    ensure(
        policy::may_manage_accounts(actor),
        "only administrators change groups",
    )?;
    let current = store
        .group_by_id(id)
        .await
        .map_err(|_| ApiError::not_found("no such group"))?;
    let name = changes
        .name
        .as_deref()
        .map(|name| validate::handle("name", name))
        .transpose()?;
    let description = changes
        .description
        .as_deref()
        .map(|text| validate::text("description", text, 0, 512))
        .transpose()?;
    store
        .update_group(id, name.as_deref(), description.as_deref())
        .await?;
    let mut event = actor.audit("group.changed", format!("group:{}", current.name));
    event.detail = name.map(|name| format!("renamed to {name}"));
    store.record_audit(&event).await?;
    group(store, actor, id).await
}

pub async fn delete_group(store: &Store, actor: &Actor, id: &str) -> Result<(), ApiError> {
    ensure(
        policy::may_manage_accounts(actor),
        "only administrators delete groups",
    )?;
    let current = store
        .group_by_id(id)
        .await
        .map_err(|_| ApiError::not_found("no such group"))?;
    store.delete_group(id).await?;
    store
        .record_audit(&actor.audit("group.deleted", format!("group:{}", current.name)))
        .await?;
    Ok(())
}

pub async fn add_member(
    store: &Store,
    actor: &Actor,
    group_id: &str,
    user_id: &str,
) -> Result<(), ApiError> {
    change_membership(store, actor, group_id, user_id, Membership::Add).await
}

pub async fn remove_member(
    store: &Store,
    actor: &Actor,
    group_id: &str,
    user_id: &str,
) -> Result<(), ApiError> {
    change_membership(store, actor, group_id, user_id, Membership::Remove).await
}

enum Membership {
    Add,
    Remove,
}

/// Adds or removes a member; audited only when it changed something.
async fn change_membership(
    store: &Store,
    actor: &Actor,
    group_id: &str,
    user_id: &str,
    change: Membership,
) -> Result<(), ApiError> {
    ensure(
        policy::may_manage_accounts(actor),
        "only administrators change group membership",
    )?;
    let group = store
        .group_by_id(group_id)
        .await
        .map_err(|_| ApiError::not_found("no such group"))?;
    let user = store
        .user_by_id(user_id)
        .await
        .map_err(|_| ApiError::not_found("no such user"))?;
    let (changed, action) = match change {
        Membership::Add => (
            store.add_group_member(group_id, user_id).await?,
            "group.member_added",
        ),
        Membership::Remove => (
            store.remove_group_member(group_id, user_id).await?,
            "group.member_removed",
        ),
    };
    if changed {
        let mut event = actor.audit(action, format!("group:{}", group.name));
        event.detail = Some(format!("user:{}", user.username));
        store.record_audit(&event).await?;
    }
    Ok(())
}

// ---- API tokens -------------------------------------------------------------------------

fn token_from(record: TokenRecord) -> ApiToken {
    ApiToken {
        id: record.id,
        name: record.name,
        prefix: record.prefix,
        created_at: Timestamp::from_micros(record.created_at_us),
        expires_at: record.expires_at_us.map(Timestamp::from_micros),
        last_used_at: record.last_used_at_us.map(Timestamp::from_micros),
        revoked_at: record.revoked_at_us.map(Timestamp::from_micros),
    }
}

pub async fn list_tokens(
    store: &Store,
    actor: &Actor,
    owner_id: &str,
) -> Result<Vec<ApiToken>, ApiError> {
    ensure(
        policy::may_manage_token(actor, owner_id),
        "you may only list your own tokens",
    )?;
    Ok(store
        .list_tokens(owner_id)
        .await?
        .into_iter()
        .map(token_from)
        .collect())
}

pub async fn create_token(
    store: &Store,
    actor: &Actor,
    owner: &UserRecord,
    new: &NewToken,
) -> Result<CreatedToken, ApiError> {
    ensure(
        policy::may_manage_token(actor, &owner.id),
        "you may only create tokens for yourself",
    )?;
    let name = validate::text("name", &new.name, 1, 64)?;
    if let Some(days) = new.expires_in_days
        && !(1..=LONGEST_TOKEN_DAYS).contains(&days)
    {
        return Err(ApiError::bad_request(
            "expires_in_days",
            format!("expires_in_days must be between 1 and {LONGEST_TOKEN_DAYS}"),
        ));
    }
    let secret = credentials::generate(credentials::TOKEN_PREFIX);
    let now = now_us();
    let record = TokenRecord {
        id: new_id(),
        user_id: owner.id.clone(),
        name,
        prefix: secret[..credentials::TOKEN_PREFIX.len() + 6].to_owned(),
        created_at_us: now,
        expires_at_us: new
            .expires_in_days
            .map(|days| now + i64::from(days) * 86_400 * 1_000_000),
        last_used_at_us: None,
        revoked_at_us: None,
    };
    store
        .create_token(&record, &credentials::digest(&secret))
        .await?;
    let mut event = actor.audit("token.created", format!("user:{}", owner.username));
    event.detail = Some(format!("token {} ({})", record.name, record.prefix));
    store.record_audit(&event).await?;
    Ok(CreatedToken {
        token: token_from(record),
        secret,
    })
}

pub async fn revoke_token(store: &Store, actor: &Actor, token_id: &str) -> Result<(), ApiError> {
    let token = store
        .token_by_id(token_id)
        .await
        .map_err(|_| ApiError::not_found("no such token"))?;
    // Someone else's token is reported as absent rather than forbidden: ids are not guessable,
    // and their existence is not the caller's business.
    if !policy::may_manage_token(actor, &token.user_id) {
        return Err(ApiError::not_found("no such token"));
    }
    if store.revoke_token(token_id).await? {
        let owner = store.user_by_id(&token.user_id).await?;
        let mut event = actor.audit("token.revoked", format!("user:{}", owner.username));
        event.detail = Some(format!("token {} ({})", token.name, token.prefix));
        store.record_audit(&event).await?;
    }
    Ok(())
}
