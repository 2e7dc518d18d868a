//! The HTTP client for Loupe's API: typed requests in, typed responses or an [`ApiFailure`] out.
//! The browser sends the login cookie itself; nothing here handles credentials.

use std::fmt;

use gloo_net::http::{Request, RequestBuilder, Response};
use loupe_protocol::{
    AccessRequest, ApiToken, AuditEvent, AuditQuery, Connection, ConnectionChanges,
    ConnectionCheck, CreatedToken, ErrorBody, EventPage, Group, LoginRequest, NewConnection,
    NewGroup, NewShare, NewSshKey, NewToken, NewUser, OutputWindow, Page, Review, ReviewNote,
    ReviewQuery, RowsWindow, RunRequest, ScreenHits, ScreenStart, Session, SessionPage,
    SessionQuery, Settings, Share, SshKey, User, UserChanges, Waiting,
};
use serde::{Serialize, de::DeserializeOwned};

/// Why an API call did not produce what was asked for, worded for the person looking at the page.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiFailure {
    /// The server answered with an error body.
    Server { status: u16, body: ErrorBody },
    /// The server could not be reached, or answered something that is not Loupe's API.
    Network(String),
}

impl ApiFailure {
    /// The login is missing or expired: the app sends the person to the login page.
    pub fn is_unauthenticated(&self) -> bool {
        matches!(self, ApiFailure::Server { status: 401, .. })
    }

    /// There is no such thing, or none this user may see (the API answers both alike).
    pub fn is_not_found(&self) -> bool {
        matches!(self, ApiFailure::Server { status: 404, .. })
    }
}

impl fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiFailure::Server { body, .. } => f.write_str(&body.message),
            ApiFailure::Network(message) => write!(f, "Cannot reach Loupe's server: {message}"),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiFailure>;

pub async fn settings() -> ApiResult<Settings> {
    get_json("/api/settings").await
}

// ---- identity ---------------------------------------------------------------------------

pub async fn me() -> ApiResult<User> {
    get_json("/api/me").await
}

pub async fn log_in(request: &LoginRequest) -> ApiResult<User> {
    send_json(Request::post("/api/auth/login"), request).await
}

pub async fn log_out() -> ApiResult<()> {
    send_empty(Request::post("/api/auth/logout")).await
}

pub async fn users() -> ApiResult<Vec<User>> {
    get_json("/api/users").await
}

pub async fn create_user(new: &NewUser) -> ApiResult<User> {
    send_json(Request::post("/api/users"), new).await
}

pub async fn update_user(id: &str, changes: &UserChanges) -> ApiResult<User> {
    send_json(Request::patch(&format!("/api/users/{id}")), changes).await
}

pub async fn groups() -> ApiResult<Vec<Group>> {
    get_json("/api/groups").await
}

pub async fn create_group(new: &NewGroup) -> ApiResult<Group> {
    send_json(Request::post("/api/groups"), new).await
}

pub async fn delete_group(id: &str) -> ApiResult<()> {
    send_empty(Request::delete(&format!("/api/groups/{id}"))).await
}

pub async fn add_member(group_id: &str, user_id: &str) -> ApiResult<()> {
    send_empty(Request::put(&format!(
        "/api/groups/{group_id}/members/{user_id}"
    )))
    .await
}

pub async fn remove_member(group_id: &str, user_id: &str) -> ApiResult<()> {
    send_empty(Request::delete(&format!(
        "/api/groups/{group_id}/members/{user_id}"
    )))
    .await
}

pub async fn tokens() -> ApiResult<Vec<ApiToken>> {
    get_json("/api/tokens").await
}

pub async fn create_token(new: &NewToken) -> ApiResult<CreatedToken> {
    send_json(Request::post("/api/tokens"), new).await
}

pub async fn revoke_token(id: &str) -> ApiResult<()> {
    send_empty(Request::delete(&format!("/api/tokens/{id}"))).await
}

/// Every action the audit trail holds, for the filter.
pub async fn audit_actions() -> ApiResult<Vec<String>> {
    get_json("/api/audit/actions").await
}

pub async fn audit(query: &AuditQuery) -> ApiResult<Page<AuditEvent>> {
    get_json(&format!("/api/audit?{}", query_string(query))).await
}

// ---- sessions ---------------------------------------------------------------------------

pub async fn sessions(query: &SessionQuery) -> ApiResult<SessionPage> {
    get_json(&format!("/api/sessions?{}", query_string(query))).await
}

pub async fn session(id: &str) -> ApiResult<Session> {
    get_json(&format!("/api/sessions/{id}")).await
}

pub async fn events(id: &str, after: u64) -> ApiResult<EventPage> {
    get_json(&format!(
        "/api/sessions/{id}/events?after={after}&limit=500"
    ))
    .await
}

pub async fn ssh_keys() -> ApiResult<Vec<SshKey>> {
    get_json("/api/me/ssh-keys").await
}

pub async fn add_ssh_key(new: &NewSshKey) -> ApiResult<SshKey> {
    send_json(Request::post("/api/me/ssh-keys"), new).await
}

pub async fn remove_ssh_key(id: &str) -> ApiResult<()> {
    send_empty(Request::delete(&format!("/api/me/ssh-keys/{id}"))).await
}

/// Where playback of terminal session `id` at `at_ms` (the latest moment when none) starts.
pub async fn screen(id: &str, at_ms: Option<u64>) -> ApiResult<ScreenStart> {
    let at = at_ms.map(|at| format!("?at_ms={at}")).unwrap_or_default();
    get_json(&format!("/api/sessions/{id}/screen{at}")).await
}

/// The lines terminal session `id` showed that hold `text`.
pub async fn screen_search(id: &str, text: &str) -> ApiResult<ScreenHits> {
    get_json(&format!(
        "/api/sessions/{id}/screen/search?q={}",
        js_sys::encode_uri_component(text)
    ))
    .await
}

pub async fn output(id: &str, seq: u64, offset: u64, length: u64) -> ApiResult<OutputWindow> {
    get_json(&format!(
        "/api/sessions/{id}/events/{seq}/output?offset={offset}&length={length}"
    ))
    .await
}

/// Rows from `offset`, up to `limit` and as many as the server's byte bound allows, each text
/// cell cut to `cell_bytes`.
pub async fn rows(
    id: &str,
    seq: u64,
    offset: u64,
    limit: u32,
    cell_bytes: u32,
) -> ApiResult<RowsWindow> {
    get_json(&format!(
        "/api/sessions/{id}/events/{seq}/rows?offset={offset}&limit={limit}&cell_bytes={cell_bytes}"
    ))
    .await
}

/// Where one value of a result set is served whole, as text.
pub fn cell_url(id: &str, seq: u64, row: u64, column: u32) -> String {
    format!("/api/sessions/{id}/events/{seq}/rows/{row}/cells/{column}")
}

pub async fn cell_text(id: &str, seq: u64, row: u64, column: u32) -> ApiResult<String> {
    let response = Request::get(&cell_url(id, seq, row, column))
        .send()
        .await
        .map_err(network)?;
    if response.ok() {
        return response.text().await.map_err(network);
    }
    Err(failure(response).await)
}

/// Stops a running session; answers with the session as it stands after.
pub async fn kill(id: &str) -> ApiResult<Session> {
    send_json(
        Request::post(&format!("/api/sessions/{id}/kill")),
        &serde_json::json!({}),
    )
    .await
}

pub async fn rerun(id: &str) -> ApiResult<Session> {
    send_json(
        Request::post(&format!("/api/sessions/{id}/rerun")),
        &serde_json::json!({}),
    )
    .await
}

/// Who session `id` is shared with (its owner, admins and auditors see all of them).
pub async fn shares(id: &str) -> ApiResult<Vec<Share>> {
    get_json(&format!("/api/sessions/{id}/shares")).await
}

pub async fn revoke_share(id: &str, share: &str) -> ApiResult<()> {
    send_empty(Request::delete(&format!(
        "/api/sessions/{id}/shares/{share}"
    )))
    .await
}

pub async fn share(id: &str, share: &NewShare) -> ApiResult<Vec<Share>> {
    send_json(Request::post(&format!("/api/sessions/{id}/shares")), share).await
}

pub async fn run(request: &RunRequest) -> ApiResult<Session> {
    send_json(Request::post("/api/sessions"), request).await
}

pub async fn connections() -> ApiResult<Vec<Connection>> {
    get_json("/api/connections").await
}

pub async fn create_connection(new: &NewConnection) -> ApiResult<Connection> {
    send_json(Request::post("/api/connections"), new).await
}

pub async fn update_connection(id: &str, changes: &ConnectionChanges) -> ApiResult<Connection> {
    send_json(Request::patch(&format!("/api/connections/{id}")), changes).await
}

// ---- reviews ----------------------------------------------------------------------------

pub async fn reviews(query: &ReviewQuery) -> ApiResult<Page<Review>> {
    get_json(&format!("/api/reviews?{}", query_string(query))).await
}

pub async fn review(id: &str) -> ApiResult<Review> {
    get_json(&format!("/api/reviews/{id}")).await
}

pub async fn request_access(request: &AccessRequest) -> ApiResult<Review> {
    send_json(Request::post("/api/reviews"), request).await
}

/// `action` is `approve`, `reject`, `cancel` or `revoke`.
pub async fn act_on_review(id: &str, action: &str, note: Option<String>) -> ApiResult<Review> {
    send_json(
        Request::post(&format!("/api/reviews/{id}/{action}")),
        &ReviewNote { note },
    )
    .await
}

pub async fn waiting_reviews() -> ApiResult<Waiting> {
    get_json("/api/reviews/waiting").await
}

pub async fn delete_connection(id: &str) -> ApiResult<()> {
    send_empty(Request::delete(&format!("/api/connections/{id}"))).await
}

pub async fn test_connection(id: &str) -> ApiResult<ConnectionCheck> {
    send_json(
        Request::post(&format!("/api/connections/{id}/test")),
        &serde_json::json!({}),
    )
    .await
}

// ---- plumbing ---------------------------------------------------------------------------

/// `key=value&…` for the fields that are set, percent-encoded.
pub fn query_string<T: Serialize>(query: &T) -> String {
    let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(query) else {
        return String::new();
    };
    fields
        .into_iter()
        .filter_map(|(key, value)| {
            let text = match value {
                serde_json::Value::Null => return None,
                serde_json::Value::String(text) => text,
                other => other.to_string(),
            };
            Some(format!("{key}={}", js_sys::encode_uri_component(&text)))
        })
        .collect::<Vec<_>>()
        .join("&")
}

async fn get_json<T: DeserializeOwned>(url: &str) -> ApiResult<T> {
    let response = Request::get(url).send().await.map_err(network)?;
    read_json(response).await
}

async fn send_json<B: Serialize, T: DeserializeOwned>(
    request: RequestBuilder,
    body: &B,
) -> ApiResult<T> {
    let response = request
        .json(body)
        .map_err(network)?
        .send()
        .await
        .map_err(network)?;
    read_json(response).await
}

async fn send_empty(request: RequestBuilder) -> ApiResult<()> {
    let response = request.send().await.map_err(network)?;
    if response.ok() {
        return Ok(());
    }
    Err(failure(response).await)
}

fn network(error: gloo_net::Error) -> ApiFailure {
    ApiFailure::Network(error.to_string())
}

async fn read_json<T: DeserializeOwned>(response: Response) -> ApiResult<T> {
    if response.ok() {
        return response.json().await.map_err(network);
    }
    Err(failure(response).await)
}

async fn failure(response: Response) -> ApiFailure {
    let status = response.status();
    let status_text = response.status_text();
    match response.json::<ErrorBody>().await {
        Ok(body) => ApiFailure::Server { status, body },
        Err(_) => ApiFailure::Network(format!("HTTP {status} {status_text}")),
    }
}
