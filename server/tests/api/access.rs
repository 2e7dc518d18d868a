//! The access matrix: every route in the endpoint table, called by each kind of caller, with the
//! status each must get. Adding a route without a row here fails
//! `every_route_has_a_row_in_the_matrix`, so no route escapes review.
//!
//! "Owner" owns the thing the path names (their own user record, their own token); "reviewer" is
//! a user in a reviewers group; "other" is an unrelated user.

use std::collections::BTreeSet;

use loupe_protocol::{NewGroup, NewToken, Role};
use loupe_server::{identity, identity::auth::Actor, routes::endpoints};
use reqwest::Method;

use crate::helpers::{TestApp, TestUser};

#[derive(Debug, Clone, Copy)]
enum Who {
    Anonymous,
    Owner,
    Other,
    Reviewer,
    Auditor,
    Admin,
}

const EVERYONE: [Who; 6] = [
    Who::Anonymous,
    Who::Owner,
    Who::Other,
    Who::Reviewer,
    Who::Auditor,
    Who::Admin,
];

struct Row {
    method: &'static str,
    path: &'static str,
    /// A JSON body template; see `fill` for the placeholders.
    body: Option<&'static str>,
    /// Expected status for anonymous, owner, other, reviewer, auditor, admin.
    expect: [u16; 6],
}

const fn row(
    method: &'static str,
    path: &'static str,
    body: Option<&'static str>,
    expect: [u16; 6],
) -> Row {
    Row {
        method,
        path,
        body,
        expect,
    }
}

const ANYONE: [u16; 6] = [200, 200, 200, 200, 200, 200];
const LOGGED_IN: [u16; 6] = [401, 200, 200, 200, 200, 200];
const ADMIN_ONLY: [u16; 6] = [401, 403, 403, 403, 403, 200];
const ADMIN_CREATES: [u16; 6] = [401, 403, 403, 403, 403, 201];
const ADMIN_DELETES: [u16; 6] = [401, 403, 403, 403, 403, 204];

const MATRIX: &[Row] = &[
    row("GET", "/healthz", None, ANYONE),
    row("GET", "/api/settings", None, ANYONE),
    row("GET", "/api/openapi.json", None, ANYONE),
    row(
        "POST",
        "/api/auth/login",
        Some(r#"{"username":"{username}","password":"{password}"}"#),
        [401, 200, 200, 200, 200, 200],
    ),
    row(
        "POST",
        "/api/auth/logout",
        None,
        [401, 204, 204, 204, 204, 204],
    ),
    row("GET", "/api/me", None, LOGGED_IN),
    row("GET", "/api/users", None, LOGGED_IN),
    row(
        "POST",
        "/api/users",
        Some(r#"{"username":"u-{unique}","password":"password-{unique}"}"#),
        ADMIN_CREATES,
    ),
    // The role is checked before the body is read: only an administrator learns it is wrong.
    row("POST", "/api/users", Some("{}"), ADMIN_ONLY_BAD_BODY),
    row("GET", "/api/users/{owner_id}", None, LOGGED_IN),
    row(
        "PATCH",
        "/api/users/{owner_id}",
        Some(r#"{"display_name":"Renamed {unique}"}"#),
        ADMIN_ONLY,
    ),
    row("GET", "/api/groups", None, LOGGED_IN),
    row(
        "POST",
        "/api/groups",
        Some(r#"{"name":"g-{unique}"}"#),
        ADMIN_CREATES,
    ),
    row("GET", "/api/groups/{group_id}", None, LOGGED_IN),
    row(
        "PATCH",
        "/api/groups/{group_id}",
        Some(r#"{"description":"changed"}"#),
        ADMIN_ONLY,
    ),
    row("DELETE", "/api/groups/{group_id}", None, ADMIN_DELETES),
    row(
        "PUT",
        "/api/groups/{group_id}/members/{member_id}",
        None,
        ADMIN_DELETES,
    ),
    row(
        "DELETE",
        "/api/groups/{group_id}/members/{member_id}",
        None,
        ADMIN_DELETES,
    ),
    // SSH keys: everyone manages their own, and only their own.
    row("GET", "/api/me/ssh-keys", None, LOGGED_IN),
    row(
        "POST",
        "/api/me/ssh-keys",
        Some(r#"{"public_key":"not a key {unique}"}"#),
        [401, 400, 400, 400, 400, 400],
    ),
    row(
        "DELETE",
        "/api/me/ssh-keys/{unique}",
        None,
        [401, 404, 404, 404, 404, 404],
    ),
    row("GET", "/api/tokens", None, LOGGED_IN),
    row(
        "POST",
        "/api/tokens",
        Some(r#"{"name":"t-{unique}"}"#),
        [401, 201, 201, 201, 201, 201],
    ),
    row(
        "DELETE",
        "/api/tokens/{token_id}",
        None,
        [401, 204, 404, 404, 404, 204],
    ),
    row("GET", "/api/audit", None, [401, 403, 403, 403, 200, 200]),
    row(
        "GET",
        "/api/audit/actions",
        None,
        [401, 403, 403, 403, 200, 200],
    ),
    row(
        "GET",
        "/api/audit/export?format=jsonl",
        None,
        [401, 403, 403, 403, 200, 200],
    ),
    // Sessions: "owner" recorded it, it is shared with the reviewers group, "other" has no
    // access and gets 404 as if it did not exist.
    row("GET", "/api/sessions", None, LOGGED_IN),
    row("GET", "/api/sessions/{session_id}", None, SESSION_READERS),
    // The matrix's session is not a terminal's: whoever may read it is told so.
    row(
        "GET",
        "/api/sessions/{session_id}/screen",
        None,
        [401, 400, 404, 400, 400, 400],
    ),
    row(
        "GET",
        "/api/sessions/{session_id}/screen/search?q=x",
        None,
        [401, 400, 404, 400, 400, 400],
    ),
    // A command held for review: its reviewers see it (and nobody else outside the rules).
    row(
        "GET",
        "/api/sessions/{held_session_id}",
        None,
        SESSION_READERS,
    ),
    row(
        "GET",
        "/api/sessions/{held_session_id}/events",
        None,
        SESSION_READERS,
    ),
    row(
        "GET",
        "/api/sessions/{session_id}/events",
        None,
        SESSION_READERS,
    ),
    row(
        "GET",
        "/api/sessions/{session_id}/events/{output_seq}/output",
        None,
        SESSION_READERS,
    ),
    row(
        "GET",
        "/api/sessions/{session_id}/events/{result_seq}/rows",
        None,
        SESSION_READERS,
    ),
    row(
        "GET",
        "/api/sessions/{session_id}/events/{result_seq}/rows/0/cells/0",
        None,
        SESSION_READERS,
    ),
    row(
        "GET",
        "/api/sessions/{session_id}/shares",
        None,
        SESSION_READERS,
    ),
    row(
        "GET",
        "/api/sessions/{session_id}/download?format=jsonl",
        None,
        SESSION_READERS,
    ),
    row(
        "POST",
        "/api/sessions/{session_id}/shares",
        Some(r#"{"users":["{bystander_id}"]}"#),
        [401, 201, 404, 403, 403, 201],
    ),
    row(
        "DELETE",
        "/api/sessions/{session_id}/shares/{share_id}",
        None,
        [401, 204, 404, 403, 403, 204],
    ),
    row(
        "POST",
        "/api/sessions",
        Some(r#"{"connection":"matrix-sh","input":"true"}"#),
        [401, 201, 201, 201, 403, 201],
    ),
    row(
        "POST",
        "/api/sessions/{running_session_id}/kill",
        None,
        [401, 200, 404, 404, 403, 200],
    ),
    row(
        "POST",
        "/api/sessions/{run_id}/rerun",
        None,
        [401, 201, 404, 403, 403, 201],
    ),
    // Connections: everyone picks from them, administrators manage them.
    // A plain GET is not a WebSocket handshake: past authentication it is a bad request.
    row("GET", "/api/live", None, NOT_A_WEBSOCKET),
    // Terminals: whoever may run sessions, checked before the handshake (auditors may not).
    row(
        "GET",
        "/api/connections/{terminal_connection_id}/terminal",
        None,
        [401, 400, 400, 400, 403, 400],
    ),
    row("GET", "/api/connections", None, LOGGED_IN),
    row(
        "POST",
        "/api/connections",
        Some(r#"{"name":"c-{unique}","kind":"command","command":{"argv":["true"]}}"#),
        ADMIN_CREATES,
    ),
    row("POST", "/api/connections", Some("{}"), ADMIN_ONLY_BAD_BODY),
    row("GET", "/api/connections/{connection_id}", None, LOGGED_IN),
    row(
        "PATCH",
        "/api/connections/{connection_id}",
        Some(r#"{"tags":["matrix"]}"#),
        ADMIN_ONLY,
    ),
    row(
        "DELETE",
        "/api/connections/{fresh_connection_id}",
        None,
        ADMIN_DELETES,
    ),
    row(
        "POST",
        "/api/connections/{connection_id}/test",
        None,
        ADMIN_ONLY,
    ),
    // Reviews: "owner" requested them, "reviewer" is in their reviewer group, nobody decides
    // their own request, auditors and administrators outside the group decide nothing.
    row("GET", "/api/reviews", None, LOGGED_IN),
    row(
        "POST",
        "/api/reviews",
        Some(r#"{"connection":"matrix-jit","access_seconds":600,"reason":"matrix"}"#),
        [401, 201, 201, 201, 403, 201],
    ),
    row("GET", "/api/reviews/waiting", None, LOGGED_IN),
    row("GET", "/api/reviews/{review_id}", None, SESSION_READERS),
    row(
        "POST",
        "/api/reviews/{fresh_review_id}/approve",
        Some("{}"),
        [401, 403, 404, 200, 403, 403],
    ),
    row(
        "POST",
        "/api/reviews/{fresh_review_id}/reject",
        Some(r#"{"note":"no"}"#),
        [401, 403, 404, 200, 403, 403],
    ),
    row(
        "POST",
        "/api/reviews/{fresh_review_id}/cancel",
        Some("{}"),
        [401, 200, 404, 403, 403, 403],
    ),
    row(
        "POST",
        "/api/reviews/{granted_review_id}/revoke",
        Some("{}"),
        [401, 403, 404, 200, 403, 200],
    ),
    row(
        "POST",
        "/api/ingest/sessions",
        Some(NEW_RECORDING),
        [401, 201, 201, 201, 403, 201],
    ),
    row(
        "POST",
        "/api/ingest/sessions/{session_id}/events",
        Some(r#"{"events":[{"kind":"note","text":"hi"}]}"#),
        OWNER_ONLY,
    ),
    row(
        "POST",
        "/api/ingest/sessions/{session_id}/output?stream=stdout",
        Some(r#""more output""#),
        OWNER_ONLY,
    ),
    row(
        "POST",
        "/api/ingest/sessions/{fresh_session_id}/close",
        Some(r#"{"status":"done"}"#),
        OWNER_ONLY,
    ),
    // Sessions Loupe runs itself are written by Loupe alone, whoever asks.
    row(
        "POST",
        "/api/ingest/sessions/{running_session_id}/close",
        Some(r#"{"status":"done","exit_code":0}"#),
        [401, 404, 404, 404, 404, 404],
    ),
    row(
        "POST",
        "/api/ingest/sessions/{held_session_id}/events",
        Some(r#"{"events":[{"kind":"note","text":"forged"}]}"#),
        [401, 404, 404, 404, 404, 404],
    ),
];

const NOT_A_WEBSOCKET: [u16; 6] = [401, 400, 400, 400, 400, 400];
const ADMIN_ONLY_BAD_BODY: [u16; 6] = [401, 403, 403, 403, 403, 400];
const SESSION_READERS: [u16; 6] = [401, 200, 404, 200, 200, 200];
const OWNER_ONLY: [u16; 6] = [401, 200, 404, 404, 404, 404];
const NEW_RECORDING: &str =
    r#"{"connection":"pg-prod","connection_kind":"postgres","type":"database","input":"SELECT 1"}"#;

struct Cast {
    owner: TestUser,
    other: TestUser,
    reviewer: TestUser,
    auditor: TestUser,
    admin: TestUser,
    /// Someone sessions get shared with, who plays no part of their own.
    bystander: TestUser,
    /// Owner's session: an output event and a result event, shared with the reviewers group.
    session: Recording,
    /// A command connection anyone may run through.
    connection_id: String,
    /// A shell connection anyone may open a terminal on.
    terminal_connection_id: String,
    /// Owner's session run through that connection, shared with the reviewers group.
    run_id: String,
    /// Owner's request for a command on a connection the reviewers group reviews.
    review_id: String,
    /// The session that request holds (not shared with anyone).
    held_session_id: String,
}

struct Recording {
    id: String,
    output_seq: u64,
    result_seq: u64,
}

/// Runs `input` through the matrix's shell connection as `who`; returns the session id.
async fn start_run(app: &TestApp, who: &TestUser, input: &str) -> String {
    let body = serde_json::json!({ "connection": "matrix-sh", "input": input });
    let started: serde_json::Value = app
        .call(Method::POST, "/api/sessions", Some(who), Some(body))
        .await
        .json()
        .await
        .unwrap();
    started["id"].as_str().unwrap().to_owned()
}

/// Runs a command as `who` on the matrix's reviewed connection; returns the review holding it
/// and the held session.
async fn held_review(app: &TestApp, who: &TestUser) -> (String, String) {
    let body = serde_json::json!({ "connection": "matrix-held", "input": "true" });
    let session: serde_json::Value = app
        .call(Method::POST, "/api/sessions", Some(who), Some(body))
        .await
        .json()
        .await
        .unwrap();
    let reviews: serde_json::Value = app
        .call(
            Method::GET,
            "/api/reviews?view=mine&state=pending",
            Some(who),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    let review = reviews["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|review| review["session_id"] == session["id"])
        .expect("the held session's review");
    (
        review["id"].as_str().unwrap().to_owned(),
        session["id"].as_str().unwrap().to_owned(),
    )
}

/// Records a session as `owner` through the ingest API: input, output, a result with a row.
async fn record_session(app: &TestApp, owner: &TestUser) -> Recording {
    let created: serde_json::Value = app
        .call(
            Method::POST,
            "/api/ingest/sessions",
            Some(owner),
            Some(serde_json::from_str(NEW_RECORDING).unwrap()),
        )
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let events = serde_json::json!({ "events": [
        { "kind": "output", "stream": "stdout", "data": "hello" },
        { "kind": "result", "columns": [{ "name": "n", "type_name": "int4" }] },
    ]});
    let ack: serde_json::Value = app
        .call(
            Method::POST,
            &format!("/api/ingest/sessions/{id}/events"),
            Some(owner),
            Some(events),
        )
        .await
        .json()
        .await
        .unwrap();
    let (output_seq, result_seq) = (
        ack["seqs"][0].as_u64().unwrap(),
        ack["seqs"][1].as_u64().unwrap(),
    );
    let rows =
        serde_json::json!({ "events": [{ "kind": "rows", "seq": result_seq, "rows": [[1]] }] });
    app.call(
        Method::POST,
        &format!("/api/ingest/sessions/{id}/events"),
        Some(owner),
        Some(rows),
    )
    .await;
    Recording {
        id,
        output_seq,
        result_seq,
    }
}

impl Cast {
    async fn assemble(app: &TestApp) -> Cast {
        let owner = app.user("owner", Role::User).await;
        let session = record_session(app, &owner).await;
        let cast = Cast {
            owner,
            other: app.user("other", Role::User).await,
            reviewer: app.user("reviewer", Role::User).await,
            auditor: app.user("auditor", Role::Auditor).await,
            admin: app.admin().await,
            bystander: app.user("bystander", Role::User).await,
            session,
            connection_id: String::new(),
            terminal_connection_id: String::new(),
            run_id: String::new(),
            review_id: String::new(),
            held_session_id: String::new(),
        };
        let mut cast = cast;
        let shell = serde_json::json!({ "name": "matrix-sh", "kind": "command", "command": { "argv": ["sh", "-c"] } });
        let created: serde_json::Value = app
            .call(
                Method::POST,
                "/api/connections",
                Some(&cast.admin),
                Some(shell),
            )
            .await
            .json()
            .await
            .unwrap();
        cast.connection_id = created["id"].as_str().unwrap().to_owned();
        let terminal = serde_json::json!({ "name": "matrix-term", "kind": "shell", "command": { "argv": ["sh"] } });
        let created: serde_json::Value = app
            .call(
                Method::POST,
                "/api/connections",
                Some(&cast.admin),
                Some(terminal),
            )
            .await
            .json()
            .await
            .unwrap();
        cast.terminal_connection_id = created["id"].as_str().unwrap().to_owned();
        cast.run_id = start_run(app, &cast.owner, "true").await;
        let actor = Actor::command_line();
        let reviewers = NewGroup {
            name: "reviewers".into(),
            description: String::new(),
        };
        let group = identity::create_group(&app.store, &actor, &reviewers)
            .await
            .unwrap();
        identity::add_member(&app.store, &actor, &group.id, &cast.reviewer.id)
            .await
            .unwrap();
        for session in [&cast.session.id, &cast.run_id] {
            let share = serde_json::json!({ "groups": [group.id] });
            let path = format!("/api/sessions/{session}/shares");
            let shared = app
                .call(Method::POST, &path, Some(&cast.owner), Some(share))
                .await;
            assert_eq!(shared.status(), 201);
        }
        for (name, rules) in [
            (
                "matrix-held",
                serde_json::json!({ "command_review": true, "reviewer_groups": ["reviewers"] }),
            ),
            (
                "matrix-jit",
                serde_json::json!({ "jit_access": true, "reviewer_groups": ["reviewers"] }),
            ),
        ] {
            let body = serde_json::json!({ "name": name, "kind": "command", "command": { "argv": ["sh", "-c"] }, "review": rules });
            let created = app
                .call(
                    Method::POST,
                    "/api/connections",
                    Some(&cast.admin),
                    Some(body),
                )
                .await;
            assert_eq!(created.status(), 201);
        }
        (cast.review_id, cast.held_session_id) = held_review(app, &cast.owner).await;
        cast
    }

    fn caller(&self, who: Who) -> Option<&TestUser> {
        match who {
            Who::Anonymous => None,
            Who::Owner => Some(&self.owner),
            Who::Other => Some(&self.other),
            Who::Reviewer => Some(&self.reviewer),
            Who::Auditor => Some(&self.auditor),
            Who::Admin => Some(&self.admin),
        }
    }
}

/// Fills a path or body template. Things a call may destroy (a group, a token) are made fresh
/// for every call, so each row sees the same world whatever ran before it.
async fn fill(app: &TestApp, cast: &Cast, caller: Option<&TestUser>, template: &str) -> String {
    let actor = Actor::command_line();
    let unique = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    let mut text = template
        .replace("{owner_id}", &cast.owner.id)
        .replace("{bystander_id}", &cast.bystander.id)
        .replace("{session_id}", &cast.session.id)
        .replace("{run_id}", &cast.run_id)
        .replace("{review_id}", &cast.review_id)
        .replace("{held_session_id}", &cast.held_session_id)
        .replace("{terminal_connection_id}", &cast.terminal_connection_id)
        .replace("{connection_id}", &cast.connection_id)
        .replace("{output_seq}", &cast.session.output_seq.to_string())
        .replace("{result_seq}", &cast.session.result_seq.to_string())
        .replace("{member_id}", &cast.other.id)
        .replace("{unique}", &unique)
        .replace(
            "{username}",
            caller.map_or("nobody", |user| user.username.as_str()),
        )
        .replace(
            "{password}",
            caller.map_or("not-a-password", |user| user.password.as_str()),
        );
    if text.contains("{group_id}") {
        let new = NewGroup {
            name: format!("fresh-{unique}"),
            description: String::new(),
        };
        let group = identity::create_group(&app.store, &actor, &new)
            .await
            .unwrap();
        text = text.replace("{group_id}", &group.id);
    }
    if text.contains("{fresh_session_id}") {
        let fresh = record_session(app, &cast.owner).await;
        text = text.replace("{fresh_session_id}", &fresh.id);
    }
    if text.contains("{running_session_id}") {
        let running = start_run(app, &cast.owner, "sleep 5").await;
        text = text.replace("{running_session_id}", &running);
    }
    if text.contains("{fresh_review_id}") {
        text = text.replace("{fresh_review_id}", &held_review(app, &cast.owner).await.0);
    }
    if text.contains("{granted_review_id}") {
        let body = serde_json::json!({ "connection": "matrix-jit", "access_seconds": 600, "reason": "matrix" });
        let requested: serde_json::Value = app
            .call(Method::POST, "/api/reviews", Some(&cast.owner), Some(body))
            .await
            .json()
            .await
            .unwrap();
        let id = requested["id"].as_str().unwrap().to_owned();
        let path = format!("/api/reviews/{id}/approve");
        let approved = app
            .call(
                Method::POST,
                &path,
                Some(&cast.reviewer),
                Some(serde_json::json!({})),
            )
            .await;
        assert_eq!(approved.status(), 200);
        text = text.replace("{granted_review_id}", &id);
    }
    if text.contains("{fresh_connection_id}") {
        let body = serde_json::json!({ "name": format!("fresh-{unique}"), "kind": "command", "command": { "argv": ["true"] } });
        let created: serde_json::Value = app
            .call(
                Method::POST,
                "/api/connections",
                Some(&cast.admin),
                Some(body),
            )
            .await
            .json()
            .await
            .unwrap();
        text = text.replace("{fresh_connection_id}", created["id"].as_str().unwrap());
    }
    if text.contains("{share_id}") {
        let share = serde_json::json!({ "users": [cast.bystander.id] });
        let path = format!("/api/sessions/{}/shares", cast.session.id);
        let created: serde_json::Value = app
            .call(Method::POST, &path, Some(&cast.owner), Some(share))
            .await
            .json()
            .await
            .unwrap();
        text = text.replace("{share_id}", created[0]["id"].as_str().unwrap());
    }
    if text.contains("{token_id}") {
        let owner = app.store.user_by_id(&cast.owner.id).await.unwrap();
        let new = NewToken {
            name: format!("fresh-{unique}"),
            expires_in_days: None,
        };
        let token = identity::create_token(&app.store, &actor, &owner, &new)
            .await
            .unwrap();
        text = text.replace("{token_id}", &token.token.id);
    }
    text
}

#[tokio::test]
async fn every_route_answers_each_caller_as_the_matrix_says() {
    let app = TestApp::spawn().await;
    let cast = Cast::assemble(&app).await;
    let mut wrong = Vec::new();

    for row in MATRIX {
        for (who, expected) in EVERYONE.into_iter().zip(row.expect) {
            let caller = cast.caller(who);
            let path = fill(&app, &cast, caller, row.path).await;
            let body = match row.body {
                Some(template) => {
                    Some(serde_json::from_str(&fill(&app, &cast, caller, template).await).unwrap())
                }
                None => None,
            };
            let method = Method::from_bytes(row.method.as_bytes()).unwrap();
            let status = app
                .call(method, &path, caller, body)
                .await
                .status()
                .as_u16();
            if status != expected {
                wrong.push(format!(
                    "{} {} as {who:?}: expected {expected}, got {status}",
                    row.method, row.path
                ));
            }
        }
    }

    assert!(
        wrong.is_empty(),
        "access rules broken:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn every_route_has_a_row_in_the_matrix() {
    let routes: BTreeSet<String> = endpoints()
        .iter()
        .map(|endpoint| format!("{} {}", endpoint.method, endpoint.path))
        .collect();
    // The matrix writes placeholders where the table has axum's parameter names.
    let rows: BTreeSet<String> = MATRIX
        .iter()
        .map(|row| {
            let path = row.path.split('?').next().unwrap_or(row.path);
            let path = path
                .replace("{owner_id}", "{id}")
                .replace("{session_id}", "{id}")
                .replace("{held_session_id}", "{id}")
                .replace("{running_session_id}", "{id}")
                .replace("{run_id}", "{id}")
                .replace("{review_id}", "{id}")
                .replace("{fresh_review_id}", "{id}")
                .replace("{granted_review_id}", "{id}")
                .replace("{terminal_connection_id}", "{id}")
                .replace("{connection_id}", "{id}")
                .replace("{fresh_connection_id}", "{id}")
                .replace("{fresh_session_id}", "{id}")
                .replace("{output_seq}", "{seq}")
                .replace("{result_seq}", "{seq}")
                .replace("{share_id}", "{share}")
                .replace("{group_id}", "{id}")
                .replace("{token_id}", "{id}")
                .replace("{member_id}", "{user_id}")
                .replace("/ssh-keys/{unique}", "/ssh-keys/{id}")
                .replace("/rows/0/cells/0", "/rows/{row}/cells/{column}");
            format!("{} {path}", row.method)
        })
        .collect();

    let missing: Vec<_> = routes.difference(&rows).collect();
    let stale: Vec<_> = rows.difference(&routes).collect();
    assert!(
        missing.is_empty(),
        "routes without a row in the access matrix: {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "matrix rows for routes that do not exist: {stale:?}"
    );
}
