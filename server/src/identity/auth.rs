//! Who is calling: the [`Actor`] extractor. A request authenticates with an API token
//! (`Authorization: Bearer …`) or with the browser's login cookie; anything else is a 401.
//! Cookie-authenticated requests that change something must come from Loupe's own pages: their
//! `Origin` must match the server's host, so another site cannot make a logged-in browser act.

use std::{net::SocketAddr, sync::Arc};

use axum::{
    extract::{ConnectInfo, FromRef, FromRequestParts},
    http::{HeaderMap, header, request::Parts},
};
use loupe_protocol::Role;

use crate::{
    config::Config,
    error::ApiError,
    identity::credentials,
    store::{NewAuditEvent, Store, UserRecord, now_us},
};

/// The browser login cookie. HttpOnly and SameSite=Strict; see [`login_cookie`].
pub const SESSION_COOKIE: &str = "loupe_session";

/// How often an API token's last-used time is written: more often would turn every request into
/// a database write.
const TOKEN_TOUCH_INTERVAL_US: i64 = 60 * 1_000_000;

/// The authenticated caller of a request, or the server's own command line.
#[derive(Debug, Clone)]
pub struct Actor {
    /// None for the command line, which acts with an administrator's rights.
    pub user_id: Option<String>,
    pub username: String,
    pub role: Role,
    pub address: Option<String>,
    pub credential: Credential,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// The digest of the login cookie's secret.
    Cookie(String),
    /// An API token: its id, and the digest of its secret (how it is looked up).
    Token { id: String, digest: String },
    /// `loupe user …` and friends, run on the server with access to its database.
    CommandLine,
    /// One of the user's SSH public keys, at Loupe's SSH listener: its `SHA256:…` fingerprint.
    SshKey { fingerprint: String },
}

impl Actor {
    pub fn command_line() -> Actor {
        Actor {
            user_id: None,
            username: "cli".into(),
            role: Role::Admin,
            address: None,
            credential: Credential::CommandLine,
        }
    }

    pub(crate) fn from_user(
        user: &UserRecord,
        address: Option<String>,
        credential: Credential,
    ) -> Actor {
        Actor {
            user_id: Some(user.id.clone()),
            username: user.username.clone(),
            role: user.role,
            address,
            credential,
        }
    }

    pub fn is(&self, user_id: &str) -> bool {
        self.user_id.as_deref() == Some(user_id)
    }

    /// An audit event with this actor as its author.
    pub fn audit(&self, action: &'static str, target: impl Into<String>) -> NewAuditEvent {
        NewAuditEvent {
            actor_id: self.user_id.clone(),
            actor_name: Some(self.username.clone()),
            action,
            target: Some(target.into()),
            detail: None,
            address: self.address.clone(),
        }
    }
}

/// The actor as the store sees them now, for connections that outlive a request (the live
/// WebSocket): none when their credential no longer works (logged out, expired, revoked, the
/// account disabled); a changed role is picked up.
pub async fn refreshed(store: &Store, actor: &Actor) -> Result<Option<Actor>, ApiError> {
    // The same lookups that authenticate a request, so "still works" means exactly that.
    let user = match &actor.credential {
        Credential::Token { digest, .. } => store.token_user(digest).await?.map(|(_, user)| user),
        Credential::Cookie(digest) => store.login_session_user(digest).await?,
        Credential::CommandLine => return Ok(Some(actor.clone())),
        // Still registered to the same user, who may still sign in.
        Credential::SshKey { fingerprint } => {
            match store.ssh_key_by_fingerprint(fingerprint).await? {
                Some(key) if Some(&key.user_id) == actor.user_id.as_ref() => {
                    Some(store.user_by_id(&key.user_id).await?).filter(|user| !user.disabled)
                }
                _ => None,
            }
        }
    };
    Ok(user.map(|user| Actor::from_user(&user, actor.address.clone(), actor.credential.clone())))
}

/// The caller's network address, as the server saw it (none when the server was built without
/// connection info, as in some tests).
pub struct ClientAddress(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddress(client_address(parts)))
    }
}

fn client_address(parts: &Parts) -> Option<String> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip().to_string())
}

/// Generic over the router's state, as axum's `sqlx-postgres` example does, so this module
/// needs only the store and the configuration, not the HTTP layer's state.
impl<S> FromRequestParts<S> for Actor
where
    S: Send + Sync,
    Store: FromRef<S>,
    Arc<Config>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Actor, ApiError> {
        let store = Store::from_ref(state);
        let address = client_address(parts);
        if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
            let secret = value
                .to_str()
                .ok()
                .and_then(|value| value.strip_prefix("Bearer "))
                .map(str::trim)
                .ok_or_else(|| {
                    ApiError::unauthenticated("the Authorization header must be `Bearer <token>`")
                })?;
            let digest = credentials::digest(secret);
            let (token, user) = store.token_user(&digest).await?.ok_or_else(|| {
                ApiError::unauthenticated("this API token is invalid, expired or revoked")
            })?;
            if token
                .last_used_at_us
                .is_none_or(|last| now_us() - last > TOKEN_TOUCH_INTERVAL_US)
            {
                store.touch_token(&token.id).await?;
            }
            let credential = Credential::Token {
                id: token.id,
                digest,
            };
            return Ok(Actor::from_user(&user, address, credential));
        }
        if let Some(secret) = cookie(&parts.headers, SESSION_COOKIE) {
            let digest = credentials::digest(secret);
            let user = store
                .login_session_user(&digest)
                .await?
                .ok_or_else(|| ApiError::unauthenticated("your login has expired; log in again"))?;
            if !parts.method.is_safe() {
                let secure = Arc::<Config>::from_ref(state).secure_cookies;
                require_same_origin(&parts.headers, secure)?;
            }
            return Ok(Actor::from_user(&user, address, Credential::Cookie(digest)));
        }
        Err(ApiError::unauthenticated(
            "log in first, or send an API token as `Authorization: Bearer …`",
        ))
    }
}

/// Refuses a request whose `Origin` names another site. Browsers send `Origin` with every
/// `fetch` that is not a GET; a request without one must say it is same-origin some other way.
/// An origin is scheme, host and port (RFC 6454): `https` when Loupe is served over HTTPS
/// (`secure`, from `LOUPE_SECURE_COOKIES`), else `http`, so a page on the plain-HTTP side of the
/// same host cannot act on the HTTPS one.
pub fn require_same_origin(headers: &HeaderMap, secure: bool) -> Result<(), ApiError> {
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok());
    match headers
        .get(header::ORIGIN)
        .map(|value| value.to_str().unwrap_or(""))
    {
        Some(origin) => {
            let scheme = if secure { "https://" } else { "http://" };
            let authority = origin.strip_prefix(scheme);
            if host
                .zip(authority)
                .is_some_and(|(host, authority)| host.eq_ignore_ascii_case(authority))
            {
                Ok(())
            } else {
                Err(ApiError::forbidden(format!(
                    "cross-site request refused: Origin {origin} is not this server"
                )))
            }
        }
        None if headers
            .get("sec-fetch-site")
            .is_some_and(|value| value == "same-origin") =>
        {
            Ok(())
        }
        None => Err(ApiError::forbidden(
            "requests made with the login cookie must carry an Origin header",
        )),
    }
}

/// The value of cookie `name`, if the request carries it.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(key, value)| (key == name).then_some(value))
}

/// The `Set-Cookie` value that logs a browser in for `max_age_seconds`.
pub fn login_cookie(secret: &str, max_age_seconds: u64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{SESSION_COOKIE}={secret}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_seconds}{secure}"
    )
}

/// The `Set-Cookie` value that logs a browser out.
pub fn logout_cookie(secure: bool) -> String {
    login_cookie("", 0, secure)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn finds_a_cookie_among_others() {
        let map = headers(&[("cookie", "theme=dark; loupe_session=abc123; x=y")]);
        assert_eq!(cookie(&map, SESSION_COOKIE), Some("abc123"));
        assert_eq!(cookie(&map, "missing"), None);
    }

    #[test]
    fn accepts_same_origin_and_refuses_other_sites() {
        let same = headers(&[
            ("host", "127.0.0.1:3000"),
            ("origin", "http://127.0.0.1:3000"),
        ]);
        let other = headers(&[
            ("host", "127.0.0.1:3000"),
            ("origin", "https://evil.example"),
        ]);
        let fetch_metadata = headers(&[("host", "loupe"), ("sec-fetch-site", "same-origin")]);
        let nothing = headers(&[("host", "loupe")]);
        let other_scheme = headers(&[
            ("host", "127.0.0.1:3000"),
            ("origin", "https://127.0.0.1:3000"),
        ]);
        assert!(require_same_origin(&same, false).is_ok());
        assert!(require_same_origin(&other, false).is_err());
        assert!(require_same_origin(&fetch_metadata, false).is_ok());
        assert!(require_same_origin(&nothing, false).is_err());
        assert!(require_same_origin(&other_scheme, false).is_err());
        assert!(require_same_origin(&same, true).is_err());
        assert!(require_same_origin(&other_scheme, true).is_ok());
    }

    #[test]
    fn login_cookie_is_http_only_and_strict() {
        let value = login_cookie("s3cret", 3600, true);
        assert!(value.contains("HttpOnly"));
        assert!(value.contains("SameSite=Strict"));
        assert!(value.contains("Secure"));
        assert!(value.starts_with("loupe_session=s3cret;"));
    }
}
