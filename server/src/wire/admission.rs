//! Who may connect through a wire-protocol listener, to what, now: the same rules as Loupe's
//! Run page, checked once at connect. Each listener words a [`Refusal`] in its own protocol
//! (a SQLSTATE for PostgreSQL, an error number for MySQL).

use std::net::IpAddr;

use loupe_protocol::ConnectionKind;

use crate::{
    gateway::Gateway,
    identity::{
        auth::{Actor, Credential},
        credentials, policy,
    },
    reviews::rules,
    store::{ConnectionRecord, Store},
};

/// A client that may use its connection now.
pub(super) struct Admitted {
    pub actor: Actor,
    pub connection: ConnectionRecord,
    /// The target's URL, opened from its sealed secret.
    pub url: String,
    /// The just-in-time access it runs under, when the connection needs one.
    pub access: Option<String>,
    /// Whether each statement waits for a reviewer (the connection's command review).
    pub reviewed: bool,
}

/// Why a client may not connect.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Refusal {
    /// The password is not one of the named user's API tokens (or the user is disabled).
    BadToken,
    /// Auditors read sessions; they do not run statements.
    Auditor,
    NoSuchConnection,
    /// The connection is of another kind than the listener speaks.
    OtherKind(ConnectionKind),
    /// The connection needs just-in-time access, and none is granted now.
    NeedsAccess,
    /// The connection's target cannot be opened.
    NoTarget,
}

impl Refusal {
    /// What the client is told, naming what it asked for and where to go next.
    pub fn message(&self, username: &str, connection: &str, listener: ConnectionKind) -> String {
        match self {
            Refusal::BadToken => format!(
                "password authentication failed for user \"{username}\": the password is one of your Loupe API tokens"
            ),
            Refusal::Auditor => "auditors cannot run queries".to_owned(),
            Refusal::NoSuchConnection => format!(
                "no connection named \"{connection}\" (name the Loupe connection as the database)"
            ),
            Refusal::OtherKind(kind) => format!(
                "{connection} is a {} connection; this listener is for {} connections",
                kind.as_str(),
                listener.as_str()
            ),
            Refusal::NeedsAccess => format!(
                "{connection} needs approved access: request it on Loupe's Run page, and connect again once a reviewer approves"
            ),
            Refusal::NoTarget => format!("{connection} has no target address Loupe can open"),
        }
    }
}

/// The user named `username`, if `token` is one of their API tokens (and they may sign in).
pub(super) async fn authenticate(
    store: &Store,
    username: &str,
    token: &str,
    peer: IpAddr,
) -> Result<Actor, Refusal> {
    let digest = credentials::digest(token);
    let Ok(Some((token, user))) = store.token_user(&digest).await else {
        return Err(Refusal::BadToken);
    };
    if !user.username.eq_ignore_ascii_case(username) {
        return Err(Refusal::BadToken);
    }
    Ok(Actor::from_user(
        &user,
        Some(peer.to_string()),
        Credential::Token {
            id: token.id,
            digest,
        },
    ))
}

/// Admits `username` presenting `token` to the connection named `connection_name`, reached
/// through a listener for `kind` connections from `peer`.
pub(super) async fn admit(
    store: &Store,
    gateway: &Gateway,
    kind: ConnectionKind,
    username: &str,
    connection_name: &str,
    token: &str,
    peer: IpAddr,
) -> Result<Admitted, Refusal> {
    let actor = authenticate(store, username, token, peer).await?;
    if !policy::may_run_sessions(&actor) {
        return Err(Refusal::Auditor);
    }
    let connection = match store.connection(connection_name).await {
        Ok(Some(connection)) if connection.kind == kind => connection,
        Ok(Some(other)) => return Err(Refusal::OtherKind(other.kind)),
        _ => return Err(Refusal::NoSuchConnection),
    };
    let rules = rules::of(&connection);
    let mut access = None;
    if rules.jit_access {
        let user_id = actor.user_id.as_deref().unwrap_or_default();
        let granted = store
            .active_access(&connection.id, user_id)
            .await
            .ok()
            .flatten();
        let Some(granted) = granted else {
            return Err(Refusal::NeedsAccess);
        };
        access = Some(granted.id);
    }
    let Ok(Some(url)) = gateway.url_of(&connection) else {
        return Err(Refusal::NoTarget);
    };
    Ok(Admitted {
        actor,
        connection,
        url,
        access,
        reviewed: rules.command_review,
    })
}
