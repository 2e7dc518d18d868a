//! Every HTTP endpoint Loupe serves, in one table. The router, the OpenAPI document and the
//! tests that walk every route are all built from [`endpoints`], so a route cannot exist without
//! being described.

mod audit;
mod auth;
mod connections;
mod downloads;
mod groups;
mod health;
mod ingest;
mod live;
mod openapi;
mod reviews;
mod runs;
mod sessions;
mod settings;
mod shares;
pub mod state;
mod tokens;
mod users;

use axum::{
    extract::DefaultBodyLimit,
    handler::Handler,
    http::Method,
    routing::{MethodFilter, MethodRouter, on},
};

use self::state::AppState;

/// One method on one path, with what it is for.
pub struct Endpoint {
    pub method: Method,
    /// axum's path syntax, which is also OpenAPI's: `/api/sessions/{id}`.
    pub path: &'static str,
    pub summary: &'static str,
    handler: MethodRouter<AppState>,
}

impl Endpoint {
    fn new<H, T>(method: Method, path: &'static str, summary: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).expect("a standard HTTP method");
        Endpoint {
            method,
            path,
            summary,
            handler: on(filter, handler),
        }
    }

    fn get<H, T>(path: &'static str, summary: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        Self::new(Method::GET, path, summary, handler)
    }

    fn post<H, T>(path: &'static str, summary: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        Self::new(Method::POST, path, summary, handler)
    }

    fn put<H, T>(path: &'static str, summary: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        Self::new(Method::PUT, path, summary, handler)
    }

    fn patch<H, T>(path: &'static str, summary: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        Self::new(Method::PATCH, path, summary, handler)
    }

    fn delete<H, T>(path: &'static str, summary: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        Self::new(Method::DELETE, path, summary, handler)
    }

    /// Lets this route accept bodies up to `bytes` instead of the JSON default.
    fn with_body_limit(mut self, bytes: usize) -> Self {
        self.handler = self.handler.layer(DefaultBodyLimit::max(bytes));
        self
    }

    pub(crate) fn into_route(self) -> (&'static str, MethodRouter<AppState>) {
        (self.path, self.handler)
    }
}

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::get(
            "/healthz",
            "Liveness, with a round trip to the database",
            health::check_health,
        ),
        Endpoint::get(
            "/api/settings",
            "What the web app must know about this server: version, download policy, preview sizes",
            settings::get_settings,
        ),
        Endpoint::get(
            "/api/openapi.json",
            "This API's OpenAPI 3.1 description",
            openapi::get_openapi,
        ),
        // Identity
        Endpoint::post(
            "/api/auth/login",
            "Log in with username and password; sets the login cookie",
            auth::log_in,
        ),
        Endpoint::post(
            "/api/auth/logout",
            "End this browser's login",
            auth::log_out,
        ),
        Endpoint::get("/api/me", "The user behind this request", auth::get_me),
        Endpoint::get(
            "/api/users",
            "Every user, with their groups",
            users::list_users,
        ),
        Endpoint::post("/api/users", "Create a user (admin)", users::create_user),
        Endpoint::get("/api/users/{id}", "One user", users::get_user),
        Endpoint::patch(
            "/api/users/{id}",
            "Change a user's name, role, password or disabled flag (admin)",
            users::update_user,
        ),
        Endpoint::get(
            "/api/groups",
            "Every group, with its members",
            groups::list_groups,
        ),
        Endpoint::post(
            "/api/groups",
            "Create a group (admin)",
            groups::create_group,
        ),
        Endpoint::get("/api/groups/{id}", "One group", groups::get_group),
        Endpoint::patch(
            "/api/groups/{id}",
            "Rename a group or change its description (admin)",
            groups::update_group,
        ),
        Endpoint::delete(
            "/api/groups/{id}",
            "Delete a group (admin)",
            groups::delete_group,
        ),
        Endpoint::put(
            "/api/groups/{id}/members/{user_id}",
            "Add a user to a group (admin)",
            groups::add_group_member,
        ),
        Endpoint::delete(
            "/api/groups/{id}/members/{user_id}",
            "Remove a user from a group (admin)",
            groups::remove_group_member,
        ),
        Endpoint::get(
            "/api/tokens",
            "The caller's API tokens",
            tokens::list_tokens,
        ),
        Endpoint::post(
            "/api/tokens",
            "Create an API token; its secret is shown once",
            tokens::create_token,
        ),
        Endpoint::delete(
            "/api/tokens/{id}",
            "Revoke an API token",
            tokens::revoke_token,
        ),
        Endpoint::get(
            "/api/audit",
            "The audit trail, newest first (admin, auditor)",
            audit::list_audit,
        ),
        // Sessions
        Endpoint::get(
            "/api/sessions",
            "Sessions the caller may see, newest first, filtered and keyset-paginated",
            sessions::list_sessions,
        ),
        Endpoint::get("/api/sessions/{id}", "One session", sessions::get_session),
        Endpoint::get(
            "/api/sessions/{id}/events",
            "A session's activity log, page by page",
            sessions::list_events,
        ),
        Endpoint::get(
            "/api/sessions/{id}/events/{seq}/output",
            "A window of an output event's bytes (at most 1 MiB)",
            sessions::get_output,
        ),
        Endpoint::get(
            "/api/sessions/{id}/events/{seq}/rows",
            "A window of a result set's rows",
            sessions::get_rows,
        ),
        Endpoint::get(
            "/api/sessions/{id}/shares",
            "Who a session is shared with",
            shares::list_shares,
        ),
        Endpoint::post(
            "/api/sessions/{id}/shares",
            "Share a session with users or groups (owner, admin)",
            shares::create_share,
        ),
        Endpoint::delete(
            "/api/sessions/{id}/shares/{share}",
            "Revoke a share (owner, admin)",
            shares::revoke_share,
        ),
        Endpoint::get(
            "/api/sessions/{id}/download",
            "The full output (txt), one result set (csv) or the whole log (jsonl), streamed; honours Range",
            downloads::download_session,
        ),
        Endpoint::get(
            "/api/live",
            "The WebSocket: watch sessions and the sessions list live",
            live::open_live,
        ),
        Endpoint::post(
            "/api/sessions",
            "Run a query or command through a connection; answers at once with the new session",
            runs::run_session,
        )
        .with_body_limit(runs::MAX_RUN_BODY),
        Endpoint::post(
            "/api/sessions/{id}/kill",
            "Stop a running session (owner, admin)",
            runs::kill_session,
        ),
        Endpoint::post(
            "/api/sessions/{id}/rerun",
            "Run a session's input again through its connection (owner, admin)",
            runs::rerun_session,
        ),
        // Connections
        Endpoint::get(
            "/api/connections",
            "Every connection (URLs are never shown)",
            connections::list_connections,
        ),
        Endpoint::post(
            "/api/connections",
            "Create a connection (admin)",
            connections::create_connection,
        ),
        Endpoint::get(
            "/api/connections/{id}",
            "One connection, by id or name",
            connections::get_connection,
        ),
        Endpoint::patch(
            "/api/connections/{id}",
            "Change a connection (admin)",
            connections::update_connection,
        ),
        Endpoint::delete(
            "/api/connections/{id}",
            "Delete a connection (admin)",
            connections::delete_connection,
        ),
        Endpoint::post(
            "/api/connections/{id}/test",
            "Check that the target answers (admin)",
            connections::test_connection,
        ),
        // Reviews
        Endpoint::get(
            "/api/reviews",
            "Reviews the caller may see (view=inbox|mine|all), newest first, keyset-paginated",
            reviews::list_reviews,
        ),
        Endpoint::post(
            "/api/reviews",
            "Ask for time-limited access to a connection whose access is reviewed",
            reviews::request_access,
        ),
        Endpoint::get(
            "/api/reviews/waiting",
            "How many pending reviews wait for the caller's decision",
            reviews::waiting_reviews,
        ),
        Endpoint::get("/api/reviews/{id}", "One review", reviews::get_review),
        Endpoint::post(
            "/api/reviews/{id}/approve",
            "Approve (a reviewer other than the requester); an approved command runs at once",
            reviews::approve_review,
        ),
        Endpoint::post(
            "/api/reviews/{id}/reject",
            "Reject with a note (a reviewer other than the requester)",
            reviews::reject_review,
        ),
        Endpoint::post(
            "/api/reviews/{id}/cancel",
            "Withdraw a pending request (the requester)",
            reviews::cancel_review,
        ),
        Endpoint::post(
            "/api/reviews/{id}/revoke",
            "End granted access early (a reviewer, an administrator)",
            reviews::revoke_review,
        ),
        // Ingest
        Endpoint::post(
            "/api/ingest/sessions",
            "Open a session recorded by another gateway or agent",
            ingest::create_recorded_session,
        ),
        Endpoint::post(
            "/api/ingest/sessions/{id}/events",
            "Append events; answers once they are committed",
            ingest::ingest_events,
        )
        .with_body_limit(ingest::MAX_INGEST_BODY),
        Endpoint::post(
            "/api/ingest/sessions/{id}/output",
            "Append raw output bytes (the body) to an output event",
            ingest::ingest_output,
        )
        .with_body_limit(ingest::MAX_INGEST_BODY),
        Endpoint::post(
            "/api/ingest/sessions/{id}/close",
            "End a recorded session",
            ingest::close_recorded_session,
        ),
    ]
}
