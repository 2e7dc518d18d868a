//! Every HTTP endpoint Loupe serves, in one table. The router, the OpenAPI document and the
//! tests that walk every route are all built from [`endpoints`], so a route cannot exist without
//! being described.

mod audit;
mod auth;
mod connections;
pub mod describe;
mod downloads;
mod groups;
mod health;
mod ingest;
mod live;
mod openapi;
mod playback;
mod reviews;
mod runs;
mod sessions;
mod settings;
mod shares;
mod ssh_keys;
pub mod state;
mod terminals;
mod tokens;
mod users;

use axum::{
    extract::DefaultBodyLimit,
    handler::Handler,
    http::Method,
    routing::{MethodFilter, MethodRouter, on},
};

use loupe_protocol::{
    AccessRequest, ApiToken, AuditEvent, AuditExportQuery, AuditQuery, CloseSession, Connection,
    ConnectionChanges, ConnectionCheck, CreatedToken, EventPage, EventsQuery, Group, GroupChanges,
    Health, IngestAck, IngestBatch, LoginRequest, NewConnection, NewGroup, NewRecordedSession,
    NewShare, NewSshKey, NewToken, NewUser, OutputQuery, OutputWindow, Page, RawOutputQuery,
    Review, ReviewNote, ReviewQuery, RowsQuery, RowsWindow, RunRequest, ScreenHits, ScreenQuery,
    ScreenSearchQuery, ScreenStart, Session, SessionPage, SessionQuery, Settings, Share, SshKey,
    TerminalQuery, User, UserChanges, Waiting,
};
use schemars::JsonSchema;

use self::{
    describe::{Answer, Body, Doc, inline, reference},
    state::AppState,
};

/// One method on one path, with what it is for.
pub struct Endpoint {
    pub method: Method,
    /// axum's path syntax, which is also OpenAPI's: `/api/sessions/{id}`.
    pub path: &'static str,
    pub summary: &'static str,
    /// Its query, body and answer, for the OpenAPI document.
    pub doc: Doc,
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
            doc: Doc::default(),
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

    /// Answers anyone, without a login or token.
    fn public(mut self) -> Self {
        self.doc.public = true;
        self
    }

    /// Takes query parameters: the fields of `Q`.
    fn query<Q: JsonSchema>(mut self) -> Self {
        self.doc.query = Some(inline::<Q>());
        self
    }

    /// Takes a JSON body `B`.
    fn body<B: JsonSchema>(mut self) -> Self {
        self.doc.body = Some(Body::Json(reference::<B>()));
        self
    }

    /// Takes raw bytes of `media_type` as its body.
    fn bytes(mut self, media_type: &'static str) -> Self {
        self.doc.body = Some(Body::Bytes(media_type));
        self
    }

    /// Answers 200 with JSON `R`.
    fn json<R: JsonSchema>(mut self) -> Self {
        self.doc.answer = Answer::Json(200, reference::<R>());
        self
    }

    /// Answers 201 with JSON `R`, what was created.
    fn created<R: JsonSchema>(mut self) -> Self {
        self.doc.answer = Answer::Json(201, reference::<R>());
        self
    }

    /// Answers 204 without a body.
    fn no_content(mut self) -> Self {
        self.doc.answer = Answer::Empty;
        self
    }

    /// Answers 200 with a body of one of `media_types`.
    fn content(mut self, media_types: &'static [&'static str]) -> Self {
        self.doc.answer = Answer::Content(media_types);
        self
    }

    /// Answers with a body of one of `media_types`, or 206 with the Range asked for.
    fn ranges(mut self, media_types: &'static [&'static str]) -> Self {
        self.doc.answer = Answer::Ranges(media_types);
        self
    }

    /// Answers 101, switching to a WebSocket.
    fn upgrade(mut self) -> Self {
        self.doc.answer = Answer::Upgrade;
        self
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
        )
        .public()
        .json::<Health>(),
        Endpoint::get(
            "/api/settings",
            "What the web app must know about this server: version, download policy, preview sizes",
            settings::get_settings,
        )
        .public()
        .json::<Settings>(),
        Endpoint::get(
            "/api/openapi.json",
            "This API's OpenAPI 3.1 description",
            openapi::get_openapi,
        )
        .public()
        .json::<serde_json::Value>(),
        // Identity
        Endpoint::post(
            "/api/auth/login",
            "Log in with username and password; sets the login cookie",
            auth::log_in,
        )
        .public()
        .body::<LoginRequest>().json::<User>(),
        Endpoint::post(
            "/api/auth/logout",
            "End this browser's login",
            auth::log_out,
        )
        .no_content(),
        Endpoint::get("/api/me", "The user behind this request", auth::get_me)
        .json::<User>(),
        Endpoint::get(
            "/api/users",
            "Every user, with their groups",
            users::list_users,
        )
        .json::<Vec<User>>(),
        Endpoint::post("/api/users", "Create a user (admin)", users::create_user)
        .body::<NewUser>().created::<User>(),
        Endpoint::get("/api/users/{id}", "One user", users::get_user)
        .json::<User>(),
        Endpoint::patch(
            "/api/users/{id}",
            "Change a user's name, role, password or disabled flag (admin)",
            users::update_user,
        )
        .body::<UserChanges>().json::<User>(),
        Endpoint::get(
            "/api/groups",
            "Every group, with its members",
            groups::list_groups,
        )
        .json::<Vec<Group>>(),
        Endpoint::post(
            "/api/groups",
            "Create a group (admin)",
            groups::create_group,
        )
        .body::<NewGroup>().created::<Group>(),
        Endpoint::get("/api/groups/{id}", "One group", groups::get_group)
        .json::<Group>(),
        Endpoint::patch(
            "/api/groups/{id}",
            "Rename a group or change its description (admin)",
            groups::update_group,
        )
        .body::<GroupChanges>().json::<Group>(),
        Endpoint::delete(
            "/api/groups/{id}",
            "Delete a group (admin)",
            groups::delete_group,
        )
        .no_content(),
        Endpoint::put(
            "/api/groups/{id}/members/{user_id}",
            "Add a user to a group (admin)",
            groups::add_group_member,
        )
        .no_content(),
        Endpoint::delete(
            "/api/groups/{id}/members/{user_id}",
            "Remove a user from a group (admin)",
            groups::remove_group_member,
        )
        .no_content(),
        Endpoint::get(
            "/api/tokens",
            "The caller's API tokens",
            tokens::list_tokens,
        )
        .json::<Vec<ApiToken>>(),
        Endpoint::post(
            "/api/tokens",
            "Create an API token; its secret is shown once",
            tokens::create_token,
        )
        .body::<NewToken>().created::<CreatedToken>(),
        Endpoint::delete(
            "/api/tokens/{id}",
            "Revoke an API token",
            tokens::revoke_token,
        )
        .no_content(),
        Endpoint::get(
            "/api/me/ssh-keys",
            "The caller's SSH public keys (for Loupe's SSH listener)",
            ssh_keys::list_ssh_keys,
        )
        .json::<Vec<SshKey>>(),
        Endpoint::post(
            "/api/me/ssh-keys",
            "Register an SSH public key for the caller",
            ssh_keys::add_ssh_key,
        )
        .body::<NewSshKey>().created::<SshKey>(),
        Endpoint::delete(
            "/api/me/ssh-keys/{id}",
            "Remove one of the caller's SSH public keys",
            ssh_keys::remove_ssh_key,
        )
        .no_content(),
        Endpoint::get(
            "/api/audit",
            "The audit trail, newest first (admin, auditor)",
            audit::list_audit,
        )
        .query::<AuditQuery>().json::<Page<AuditEvent>>(),
        Endpoint::get(
            "/api/audit/actions",
            "Every action the audit trail holds, in name order (admin, auditor)",
            audit::list_audit_actions,
        )
        .json::<Vec<String>>(),
        Endpoint::get(
            "/api/audit/export",
            "The whole filtered audit trail as csv or jsonl, newest first, streamed (admin, auditor; refused when downloads are disabled)",
            audit::export_audit,
        )
        .query::<AuditExportQuery>().content(&["text/csv", "application/x-ndjson"]),
        // Sessions
        Endpoint::get(
            "/api/sessions",
            "Sessions the caller may see, newest first, filtered and keyset-paginated",
            sessions::list_sessions,
        )
        .query::<SessionQuery>().json::<SessionPage>(),
        Endpoint::get("/api/sessions/{id}", "One session", sessions::get_session)
        .json::<Session>(),
        Endpoint::get(
            "/api/sessions/{id}/events",
            "A session's activity log, page by page",
            sessions::list_events,
        )
        .query::<EventsQuery>().json::<EventPage>(),
        Endpoint::get(
            "/api/sessions/{id}/events/{seq}/output",
            "A window of an output event's bytes (at most 1 MiB)",
            sessions::get_output,
        )
        .query::<OutputQuery>().json::<OutputWindow>(),
        Endpoint::get(
            "/api/sessions/{id}/screen",
            "Where playback of a terminal session at a moment starts: the keyframe before it and the output offset after which to replay",
            playback::get_screen,
        )
        .query::<ScreenQuery>().json::<ScreenStart>(),
        Endpoint::get(
            "/api/sessions/{id}/screen/search",
            "Lines a terminal session's screen showed that hold a text, with when each was complete",
            playback::search_screen,
        )
        .query::<ScreenSearchQuery>().json::<ScreenHits>(),
        Endpoint::get(
            "/api/sessions/{id}/events/{seq}/rows",
            "A window of a result set's rows, bounded in rows and bytes, long cells cut",
            sessions::get_rows,
        )
        .query::<RowsQuery>().json::<RowsWindow>(),
        Endpoint::get(
            "/api/sessions/{id}/events/{seq}/rows/{row}/cells/{column}",
            "One value of a result set whole, as text/plain",
            sessions::get_cell,
        )
        .content(&["text/plain"]),
        Endpoint::get(
            "/api/sessions/{id}/shares",
            "Who a session is shared with",
            shares::list_shares,
        )
        .json::<Vec<Share>>(),
        Endpoint::post(
            "/api/sessions/{id}/shares",
            "Share a session with users or groups (owner, admin)",
            shares::create_share,
        )
        .body::<NewShare>().created::<Vec<Share>>(),
        Endpoint::delete(
            "/api/sessions/{id}/shares/{share}",
            "Revoke a share (owner, admin)",
            shares::revoke_share,
        )
        .no_content(),
        Endpoint::get(
            "/api/sessions/{id}/download",
            "The full output (txt), one result set (csv) or the whole log (jsonl), streamed; honours Range",
            downloads::download_session,
        )
        .query::<downloads::DownloadQuery>().ranges(&["text/plain", "text/csv", "application/x-ndjson"]),
        Endpoint::get(
            "/api/live",
            "The WebSocket: watch sessions and the sessions list live",
            live::open_live,
        )
        .upgrade(),
        Endpoint::post(
            "/api/sessions",
            "Run a query or command through a connection; answers at once with the new session",
            runs::run_session,
        )
        .body::<RunRequest>().created::<Session>()
        .with_body_limit(runs::MAX_RUN_BODY),
        Endpoint::post(
            "/api/sessions/{id}/kill",
            "Stop a running session (owner, admin)",
            runs::kill_session,
        )
        .json::<Session>(),
        Endpoint::post(
            "/api/sessions/{id}/rerun",
            "Run a session's input again through its connection (owner, admin)",
            runs::rerun_session,
        )
        .created::<Session>(),
        // Connections
        Endpoint::get(
            "/api/connections",
            "Every connection (URLs are never shown)",
            connections::list_connections,
        )
        .json::<Vec<Connection>>(),
        Endpoint::post(
            "/api/connections",
            "Create a connection (admin)",
            connections::create_connection,
        )
        .body::<NewConnection>().created::<Connection>(),
        Endpoint::get(
            "/api/connections/{id}",
            "One connection, by id or name",
            connections::get_connection,
        )
        .json::<Connection>(),
        Endpoint::patch(
            "/api/connections/{id}",
            "Change a connection (admin)",
            connections::update_connection,
        )
        .body::<ConnectionChanges>().json::<Connection>(),
        Endpoint::delete(
            "/api/connections/{id}",
            "Delete a connection (admin)",
            connections::delete_connection,
        )
        .no_content(),
        Endpoint::post(
            "/api/connections/{id}/test",
            "Check that the target answers (admin)",
            connections::test_connection,
        )
        .json::<ConnectionCheck>(),
        Endpoint::get(
            "/api/connections/{id}/terminal",
            "Open an interactive terminal on a shell or ssh connection (WebSocket: binary frames are the terminal's bytes, text frames JSON resizes and notices)",
            terminals::open_terminal,
        )
        .query::<TerminalQuery>()
        .upgrade(),
        // Reviews
        Endpoint::get(
            "/api/reviews",
            "Reviews the caller may see (view=inbox|mine|all), newest first, keyset-paginated",
            reviews::list_reviews,
        )
        .query::<ReviewQuery>().json::<Page<Review>>(),
        Endpoint::post(
            "/api/reviews",
            "Ask for time-limited access to a connection whose access is reviewed",
            reviews::request_access,
        )
        .body::<AccessRequest>().created::<Review>(),
        Endpoint::get(
            "/api/reviews/waiting",
            "How many pending reviews wait for the caller's decision",
            reviews::waiting_reviews,
        )
        .json::<Waiting>(),
        Endpoint::get("/api/reviews/{id}", "One review", reviews::get_review)
        .json::<Review>(),
        Endpoint::post(
            "/api/reviews/{id}/approve",
            "Approve (a reviewer other than the requester); an approved command runs at once",
            reviews::approve_review,
        )
        .body::<ReviewNote>().json::<Review>(),
        Endpoint::post(
            "/api/reviews/{id}/reject",
            "Reject with a note (a reviewer other than the requester)",
            reviews::reject_review,
        )
        .body::<ReviewNote>().json::<Review>(),
        Endpoint::post(
            "/api/reviews/{id}/cancel",
            "Withdraw a pending request (the requester)",
            reviews::cancel_review,
        )
        .body::<ReviewNote>().json::<Review>(),
        Endpoint::post(
            "/api/reviews/{id}/revoke",
            "End granted access early (a reviewer, an administrator)",
            reviews::revoke_review,
        )
        .body::<ReviewNote>().json::<Review>(),
        // Ingest
        Endpoint::post(
            "/api/ingest/sessions",
            "Open a session recorded by another gateway or agent",
            ingest::create_recorded_session,
        )
        .body::<NewRecordedSession>().created::<Session>(),
        Endpoint::post(
            "/api/ingest/sessions/{id}/events",
            "Append events; answers once they are committed",
            ingest::ingest_events,
        )
        .body::<IngestBatch>().json::<IngestAck>()
        .with_body_limit(ingest::MAX_INGEST_BODY),
        Endpoint::post(
            "/api/ingest/sessions/{id}/output",
            "Append raw output bytes (the body) to an output event",
            ingest::ingest_output,
        )
        .query::<RawOutputQuery>().bytes("application/octet-stream").json::<IngestAck>()
        .with_body_limit(ingest::MAX_INGEST_BODY),
        Endpoint::post(
            "/api/ingest/sessions/{id}/close",
            "End a recorded session",
            ingest::close_recorded_session,
        )
        .body::<CloseSession>().json::<Session>(),
    ]
}
