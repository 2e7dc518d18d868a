//! Attacks a plain user could try, each a kind of fault: reading Loupe through a target,
//! forging a session's record, secrets leaking to programs or through the API, live access that
//! outlives access, password guessing, and the answers every request gets. Each test is an
//! example of its kind; the note on the security issue lists the kinds.

use std::{net::IpAddr, time::Duration};

use futures_util::StreamExt;
use loupe_protocol::{
    Connection, ErrorBody, ErrorCode, EventKind, Role, ServerMessage, Session, SessionStatus, Share,
};
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};

use crate::{
    helpers::{ADMIN_PASSWORD, TestApp, TestUser, backend},
    live::{self, Socket},
};

async fn error_of(response: reqwest::Response) -> ErrorBody {
    let status = response.status();
    let text = response.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status}: not the JSON error: {text}"))
}

// ---- 1. a target connection reaches only its target ---------------------------------------

#[tokio::test]
async fn a_sqlite_target_cannot_reach_other_files() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let mallory = app.user("mallory", Role::User).await;
    let folder = tempfile::tempdir().unwrap();
    let target = folder.path().join("target.db");
    let elsewhere = folder.path().join("elsewhere.db");
    {
        let other = rusqlite::Connection::open(&elsewhere).unwrap();
        other
            .execute_batch(
                "CREATE TABLE secrets (value TEXT); INSERT INTO secrets VALUES ('s3cret')",
            )
            .unwrap();
    }
    let url = format!("sqlite://{}?mode=rwc", target.display());
    app.create_connection(
        &admin,
        json!({ "name": "lite", "kind": "sqlite", "url": url }),
    )
    .await;

    let copy = folder.path().join("copy.db");
    for (script, refused) in [
        (
            format!(
                "ATTACH DATABASE '{}' AS l; SELECT value FROM l.secrets",
                elsewhere.display()
            ),
            "ATTACH",
        ),
        (
            format!("CREATE TABLE t (x); VACUUM INTO '{}'", copy.display()),
            "attach",
        ),
        ("PRAGMA writable_schema = ON".to_owned(), "writable_schema"),
        (
            "SELECT load_extension('/tmp/no-such-extension')".to_owned(),
            "load_extension",
        ),
    ] {
        let session = app.run(&mallory, "lite", &script).await;
        let session = app.ended(&mallory, &session.id).await;
        assert_eq!(session.status, SessionStatus::Failed, "{script}");
        let error = session.error.unwrap_or_default();
        assert!(
            error.to_lowercase().contains(&refused.to_lowercase()),
            "{script}: {error}"
        );
        let kinds: Vec<EventKind> = app
            .events(&mallory, &session.id)
            .await
            .iter()
            .map(|event| event.kind)
            .collect();
        assert!(!kinds.contains(&EventKind::Result), "{script}: {kinds:?}");
    }
    assert!(!copy.exists(), "VACUUM INTO wrote nothing");

    // The target's own data stays usable.
    let session = app
        .run(&mallory, "lite", "SELECT count(*) AS n FROM t")
        .await;
    assert_eq!(
        app.ended(&mallory, &session.id).await.status,
        SessionStatus::Done
    );
}

#[tokio::test]
async fn read_only_sqlite_targets_and_loupes_own_files_are_respected() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let alice = app.user("alice", Role::User).await;
    let folder = tempfile::tempdir().unwrap();
    let target = folder.path().join("target.db");
    rusqlite::Connection::open(&target)
        .unwrap()
        .execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1)")
        .unwrap();
    let url = format!("sqlite://{}?mode=ro", target.display());
    app.create_connection(
        &admin,
        json!({ "name": "ro", "kind": "sqlite", "url": url }),
    )
    .await;

    let write = app.run(&alice, "ro", "INSERT INTO t VALUES (2)").await;
    assert_eq!(
        app.ended(&alice, &write.id).await.status,
        SessionStatus::Failed
    );
    let read = app.run(&alice, "ro", "SELECT x FROM t").await;
    assert_eq!(
        app.ended(&alice, &read.id).await.status,
        SessionStatus::Done
    );

    if backend() == "sqlite" {
        // An administrator's mistake: pointing a connection at Loupe's own database.
        let own = app.database_file().unwrap();
        let url = format!("sqlite://{}?mode=ro", own.display());
        app.create_connection(
            &admin,
            json!({ "name": "own", "kind": "sqlite", "url": url }),
        )
        .await;
        let session = app
            .run(&alice, "own", "SELECT username, password_hash FROM users")
            .await;
        let session = app.ended(&alice, &session.id).await;
        assert_eq!(session.status, SessionStatus::Failed);
        assert!(
            session
                .error
                .unwrap_or_default()
                .contains("Loupe's own storage"),
            "refused as Loupe's own file"
        );
    }
}

#[tokio::test]
async fn programs_get_a_minimal_environment_and_never_the_servers() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let alice = app.user("alice", Role::User).await;
    app.create_connection(&admin,
        json!({ "name": "env", "kind": "command", "command": { "argv": ["env"], "env": { "PGPASSWORD": "target-only" } } }),
    )
    .await;

    let session = app.run(&alice, "env", "-0").await;
    let session = app.ended(&alice, &session.id).await;
    assert_eq!(session.exit_code, Some(0));
    let text = app.output_text(&alice, &session.id).await;
    let names: Vec<&str> = text
        .split('\0')
        .filter(|line| !line.is_empty())
        .filter_map(|line| line.split_once('=').map(|(name, _)| name))
        .collect();
    assert!(names.contains(&"PGPASSWORD"), "{names:?}");
    assert!(names.contains(&"PATH"), "{names:?}");
    // The test process runs the server, so its environment (CARGO_*, LOUPE_TEST_*) is the
    // server's: none of it may reach the program.
    let allowed = [
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "SHELL",
        "LANG",
        "LANGUAGE",
        "LC_ALL",
        "LC_CTYPE",
        "TZ",
        "TMPDIR",
        "PGPASSWORD",
    ];
    let leaked: Vec<&&str> = names
        .iter()
        .filter(|name| !allowed.contains(name))
        .collect();
    assert!(
        leaked.is_empty(),
        "the server's variables leaked: {leaked:?}"
    );
    assert!(text.contains("PGPASSWORD=target-only"));
}

#[tokio::test]
async fn a_command_connection_can_run_its_program_as_another_user() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let alice = app.user("alice", Role::User).await;
    let unknown = app
        .call(
            Method::POST,
            "/api/connections",
            Some(&admin),
            Some(json!({ "name": "x", "kind": "command", "command": { "argv": ["sh", "-c"], "run_as": "no-such-user-here" } })),
        )
        .await;
    assert_eq!(unknown.status(), 400);
    assert_eq!(
        error_of(unknown).await.field.as_deref(),
        Some("command.run_as")
    );
    app.create_connection(
        &admin,
        json!({ "name": "jailed", "kind": "command", "command": { "argv": ["sh", "-c"], "run_as": "nobody", "working_dir": "/" } }),
    )
    .await;
    // The program, as `nobody`, cannot read the server's environment through /proc.
    let probe =
        "id -un; cat /proc/$PPID/environ > /dev/null 2>&1 && echo readable || echo unreadable";
    let session = app.run(&alice, "jailed", probe).await;
    let session = app.ended(&alice, &session.id).await;
    if nix::unistd::geteuid().is_root() {
        assert_eq!(session.exit_code, Some(0), "{session:?}");
        assert_eq!(
            app.output_text(&alice, &session.id).await,
            "nobody\nunreadable\n"
        );
    } else {
        // Only root may switch users: the run fails and says why.
        assert_eq!(session.status, SessionStatus::Failed, "{session:?}");
    }
}

// ---- 2. only the writer of a session writes to it ------------------------------------------

#[tokio::test]
async fn ingest_cannot_rewrite_a_session_loupe_runs() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let mallory = app.user("mallory", Role::User).await;
    let folder = tempfile::tempdir().unwrap();
    app.create_connection(&admin,
        json!({ "name": "sh", "kind": "command", "command": { "argv": ["sh", "-c"], "working_dir": folder.path() } }),
    )
    .await;

    let session = app
        .run(&mallory, "sh", "echo start; sleep 2; touch proof; exit 3")
        .await;
    let forged_close = app
        .call(
            Method::POST,
            &format!("/api/ingest/sessions/{}/close", session.id),
            Some(&mallory),
            Some(json!({ "status": "done", "exit_code": 0 })),
        )
        .await;
    assert_eq!(forged_close.status(), 404);
    let injected = app
        .call(
            Method::POST,
            &format!("/api/ingest/sessions/{}/events", session.id),
            Some(&mallory),
            Some(json!({ "events": [{ "kind": "output", "stream": "stdout", "data": "all good\n" }] })),
        )
        .await;
    assert_eq!(injected.status(), 404);
    let raw = app
        .client
        .post(app.url(&format!(
            "/api/ingest/sessions/{}/output?stream=stdout",
            session.id
        )))
        .bearer_auth(&mallory.token)
        .body("injected")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 404);

    let finished = app.ended(&mallory, &session.id).await;
    assert_eq!(
        (finished.status, finished.exit_code),
        (SessionStatus::Failed, Some(3))
    );
    assert!(finished.agent.is_none(), "run by Loupe, not by an agent");
    assert_eq!(app.output_text(&mallory, &session.id).await, "start\n");
    assert!(folder.path().join("proof").exists());
}

#[tokio::test]
async fn an_ingest_session_belongs_to_the_token_that_opened_it() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice", Role::User).await;
    let recording = json!({ "connection": "pg-prod", "connection_kind": "postgres", "type": "database", "input": "SELECT 1" });
    let response = app
        .call(
            Method::POST,
            "/api/ingest/sessions",
            Some(&alice),
            Some(recording.clone()),
        )
        .await;
    assert_eq!(response.status(), 201);
    let session: Session = response.json().await.unwrap();
    let agent = session.agent.expect("marked as recorded by an agent");
    assert_eq!(agent.name, "tests");

    // The same person with another token is another agent.
    let other_token = app
        .call(
            Method::POST,
            "/api/tokens",
            Some(&alice),
            Some(json!({ "name": "laptop" })),
        )
        .await
        .json::<Value>()
        .await
        .unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let other = TestUser {
        token: other_token,
        ..alice.clone()
    };
    let appended = app
        .call(
            Method::POST,
            &format!("/api/ingest/sessions/{}/events", session.id),
            Some(&other),
            Some(json!({ "events": [{ "kind": "note", "text": "not mine" }] })),
        )
        .await;
    assert_eq!(appended.status(), 404);

    // A browser login is not an agent.
    let cookie = app.login_cookie(&alice).await;
    let by_cookie = app
        .client
        .post(app.url("/api/ingest/sessions"))
        .header(header::COOKIE, cookie)
        .header(header::ORIGIN, &app.address)
        .json(&recording)
        .send()
        .await
        .unwrap();
    assert_eq!(by_cookie.status(), 403);

    let audit: Value = app
        .call(
            Method::GET,
            "/api/audit?action=session.recording_opened",
            Some(&app.admin().await),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(audit["items"].as_array().unwrap().len(), 1, "{audit}");
}

#[tokio::test]
async fn ingest_refuses_timestamps_far_from_now() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice", Role::User).await;
    for started_at in [
        "9999-01-01T00:00:00Z",
        "0001-01-01T00:00:00Z",
        "2001-01-01T00:00:00Z",
    ] {
        let response = app
            .call(
                Method::POST,
                "/api/ingest/sessions",
                Some(&alice),
                Some(json!({ "connection": "x", "connection_kind": "ssh", "type": "ssh", "input": "ls", "started_at": started_at })),
            )
            .await;
        assert_eq!(response.status(), 400, "{started_at}");
        assert_eq!(
            error_of(response).await.field.as_deref(),
            Some("started_at")
        );
    }
    let list: Value = app
        .call(Method::GET, "/api/sessions", Some(&alice), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        list["items"].as_array().unwrap().len(),
        0,
        "nothing was created"
    );
}

// ---- 5. a connection's secrets are write-only ----------------------------------------------

#[tokio::test]
async fn a_command_connections_environment_is_write_only_and_sealed() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let alice = app.user("alice", Role::User).await;
    let created = app.create_connection(&admin,
        json!({ "name": "psql", "kind": "command", "command": { "argv": ["sh", "-c"], "env": { "PGPASSWORD": "hunter2" } } }),
    )
    .await;
    assert_eq!(created.command.as_ref().unwrap().env_names, ["PGPASSWORD"]);

    for who in [&alice, &admin] {
        for path in [
            "/api/connections".to_owned(),
            format!("/api/connections/{}", created.id),
        ] {
            let text = app
                .call(Method::GET, &path, Some(who), None)
                .await
                .text()
                .await
                .unwrap();
            assert!(!text.contains("hunter2"), "{path} shows the value: {text}");
            assert!(text.contains("PGPASSWORD"), "{path} names the variable");
        }
    }
    let stored = app.store.connection(&created.id).await.unwrap().unwrap();
    assert!(!stored.command.unwrap().contains("hunter2"));
    assert!(!String::from_utf8_lossy(stored.secret.as_deref().unwrap()).contains("hunter2"));

    let session = app.run(&alice, "psql", "printf %s \"$PGPASSWORD\"").await;
    app.ended(&alice, &session.id).await;
    assert_eq!(app.output_text(&alice, &session.id).await, "hunter2");

    // Changing the program keeps the variables unless new ones are given; `{}` removes them.
    let path = format!("/api/connections/{}", created.id);
    let kept: Connection = app
        .call(
            Method::PATCH,
            &path,
            Some(&admin),
            Some(json!({ "command": { "argv": ["bash", "-c"] } })),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(kept.command.unwrap().env_names, ["PGPASSWORD"]);
    let session = app.run(&alice, "psql", "printf %s \"$PGPASSWORD\"").await;
    app.ended(&alice, &session.id).await;
    assert_eq!(app.output_text(&alice, &session.id).await, "hunter2");
    let cleared: Connection = app
        .call(
            Method::PATCH,
            &path,
            Some(&admin),
            Some(json!({ "command": { "argv": ["sh", "-c"], "env": {} } })),
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(cleared.command.unwrap().env_names.is_empty());
    let session = app
        .run(&alice, "psql", "printf %s \"${PGPASSWORD:-unset}\"")
        .await;
    app.ended(&alice, &session.id).await;
    assert_eq!(app.output_text(&alice, &session.id).await, "unset");
}

// ---- 4. live access ends with access -------------------------------------------------------

/// Runs a command that prints a line every 100 ms for a while; returns the session id.
async fn ticking_session(app: &TestApp, admin: &TestUser, owner: &TestUser) -> String {
    app.create_connection(
        admin,
        json!({ "name": "ticker", "kind": "command", "command": { "argv": ["sh", "-c"] } }),
    )
    .await;
    app.run(
        owner,
        "ticker",
        "for i in $(seq 1 200); do echo tick $i; sleep 0.1; done",
    )
    .await
    .id
}

/// Watches `session` and waits for its first output.
async fn watching(app: &TestApp, who: &TestUser, session: &str) -> Socket {
    let mut socket = live::connect(&app.address, &who.token).await;
    live::send(
        &mut socket,
        json!({ "type": "watch_session", "id": "w", "session": session, "after": 0 }),
    )
    .await;
    loop {
        if let ServerMessage::Output { .. } = live::next(&mut socket).await {
            return socket;
        }
    }
}

/// Reads until the server says the watch `w` ended or the login ended; returns that error's
/// code. Output may still arrive before it, none after it.
async fn until_access_ends(socket: &mut Socket) -> ErrorCode {
    let code = loop {
        match live::next(socket).await {
            ServerMessage::Error { code, .. } => break code,
            ServerMessage::Output { .. }
            | ServerMessage::Event { .. }
            | ServerMessage::Session { .. }
            | ServerMessage::Rows { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    };
    // Nothing more of the session arrives.
    let quiet = tokio::time::timeout(Duration::from_millis(700), async {
        loop {
            match socket.next().await {
                Some(Ok(tokio_tungstenite::tungstenite::Message::Text(text))) => {
                    let message: ServerMessage = serde_json::from_str(text.as_str()).unwrap();
                    if !matches!(message, ServerMessage::Heartbeat) {
                        return Some(message);
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return None,
            }
        }
    })
    .await;
    assert!(
        matches!(quiet, Err(_) | Ok(None)),
        "output after access ended: {quiet:?}"
    );
    code
}

#[tokio::test]
async fn a_watcher_stops_receiving_when_the_share_is_revoked() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let owner = app.user("owner", Role::User).await;
    let bob = app.user("bob", Role::User).await;
    let session = ticking_session(&app, &admin, &owner).await;
    let shares: Vec<Share> = app
        .call(
            Method::POST,
            &format!("/api/sessions/{session}/shares"),
            Some(&owner),
            Some(json!({ "users": [bob.id] })),
        )
        .await
        .json()
        .await
        .unwrap();
    let mut socket = watching(&app, &bob, &session).await;

    let revoked = app
        .call(
            Method::DELETE,
            &format!("/api/sessions/{session}/shares/{}", shares[0].id),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(revoked.status(), 204);

    assert_eq!(until_access_ends(&mut socket).await, ErrorCode::Forbidden);
    app.call(
        Method::POST,
        &format!("/api/sessions/{session}/kill"),
        Some(&owner),
        None,
    )
    .await;
}

#[tokio::test]
async fn a_watcher_stops_receiving_when_the_share_expires() {
    let app = TestApp::spawn_with(|config| config.live_recheck_seconds = 1).await;
    let admin = app.admin().await;
    let owner = app.user("owner", Role::User).await;
    let bob = app.user("bob", Role::User).await;
    let session = ticking_session(&app, &admin, &owner).await;
    let expires_at =
        loupe_protocol::Timestamp::from_micros(loupe_server::store::now_us() + 2_000_000);
    let shared = app
        .call(
            Method::POST,
            &format!("/api/sessions/{session}/shares"),
            Some(&owner),
            Some(json!({ "users": [bob.id], "expires_at": expires_at })),
        )
        .await;
    assert_eq!(shared.status(), 201);
    let mut socket = watching(&app, &bob, &session).await;

    assert_eq!(until_access_ends(&mut socket).await, ErrorCode::Forbidden);
    app.call(
        Method::POST,
        &format!("/api/sessions/{session}/kill"),
        Some(&owner),
        None,
    )
    .await;
}

#[tokio::test]
async fn a_watcher_is_cut_off_when_their_account_or_token_ends() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let owner = app.user("owner", Role::User).await;
    let session = ticking_session(&app, &admin, &owner).await;

    // The admin's token is revoked while they watch.
    let watcher = app.admin().await;
    let mut socket = watching(&app, &watcher, &session).await;
    let tokens: Value = app
        .call(Method::GET, "/api/tokens", Some(&watcher), None)
        .await
        .json()
        .await
        .unwrap();
    let newest = tokens
        .as_array()
        .unwrap()
        .iter()
        .max_by_key(|token| token["created_at"].as_str().unwrap().to_owned())
        .unwrap();
    let revoke = app
        .call(
            Method::DELETE,
            &format!("/api/tokens/{}", newest["id"].as_str().unwrap()),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(revoke.status(), 204);
    assert_eq!(
        until_access_ends(&mut socket).await,
        ErrorCode::Unauthenticated
    );

    // The owner's account is disabled while they watch their own session.
    let mut socket = watching(&app, &owner, &session).await;
    let disabled = app
        .call(
            Method::PATCH,
            &format!("/api/users/{}", owner.id),
            Some(&admin),
            Some(json!({ "disabled": true })),
        )
        .await;
    assert_eq!(disabled.status(), 200);
    assert_eq!(
        until_access_ends(&mut socket).await,
        ErrorCode::Unauthenticated
    );
    app.call(
        Method::POST,
        &format!("/api/sessions/{session}/kill"),
        Some(&admin),
        None,
    )
    .await;
}

#[tokio::test]
async fn a_browser_watcher_is_cut_off_when_they_log_out() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let owner = app.user("owner", Role::User).await;
    let session = ticking_session(&app, &admin, &owner).await;
    let cookie = app.login_cookie(&owner).await;
    let mut request = format!("{}/api/live", app.address.replace("http://", "ws://"))
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("cookie", cookie.parse().unwrap());
    let mut socket = tokio_tungstenite::connect_async(request).await.unwrap().0;
    socket
        .send(Message::text(
            json!({ "type": "watch_session", "id": "w", "session": session, "after": 0 })
                .to_string(),
        ))
        .await
        .unwrap();
    loop {
        if let ServerMessage::Output { .. } = live::next(&mut socket).await {
            break;
        }
    }
    let logout = app
        .client
        .post(app.url("/api/auth/logout"))
        .header(header::COOKIE, &cookie)
        .header(header::ORIGIN, &app.address)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);
    assert_eq!(
        until_access_ends(&mut socket).await,
        ErrorCode::Unauthenticated
    );
    app.call(
        Method::POST,
        &format!("/api/sessions/{session}/kill"),
        Some(&owner),
        None,
    )
    .await;
}

// ---- 6. login ------------------------------------------------------------------------------

async fn log_in_from(app: &TestApp, from: &str, username: &str, password: &str) -> StatusCode {
    let client = reqwest::Client::builder()
        .local_address(from.parse::<IpAddr>().unwrap())
        .build()
        .unwrap();
    client
        .post(app.url("/api/auth/login"))
        .json(&json!({ "username": username, "password": password }))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn parallel_guesses_cannot_pass_the_limit() {
    let app = TestApp::spawn().await;
    let guesses = (0..60).map(|n| {
        let app = &app;
        async move { log_in_from(app, "127.0.0.1", "admin", &format!("wrong-guess-{n}")).await }
    });
    let statuses = futures_util::future::join_all(guesses).await;
    let checked = statuses
        .iter()
        .filter(|status| **status == StatusCode::UNAUTHORIZED)
        .count();
    let throttled = statuses
        .iter()
        .filter(|status| **status == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((checked, throttled), (5, 55), "{statuses:?}");

    let sprays = (0..100).map(|n| {
        let app = &app;
        async move { log_in_from(app, "127.0.0.3", &format!("nobody-{n}"), "whatever-guess").await }
    });
    let statuses = futures_util::future::join_all(sprays).await;
    let checked = statuses
        .iter()
        .filter(|status| **status == StatusCode::UNAUTHORIZED)
        .count();
    assert_eq!(checked, 30, "the per-address limit holds under concurrency");
}

#[tokio::test]
async fn guessing_from_one_address_does_not_lock_the_user_out_of_another() {
    let app = TestApp::spawn().await;
    for _ in 0..5 {
        assert_eq!(
            log_in_from(&app, "127.0.0.66", "admin", "wrong-password!").await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        log_in_from(&app, "127.0.0.66", "admin", ADMIN_PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS,
        "the guessing address is throttled"
    );
    assert_eq!(
        log_in_from(&app, "127.0.0.1", "admin", ADMIN_PASSWORD).await,
        StatusCode::OK,
        "the administrator's own address is not"
    );
}

#[tokio::test]
async fn weak_passwords_are_refused_by_strength_not_only_length() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    for weak in [
        "password1234",
        "qwertyuiop123",
        "carol-password",
        "carolcarol2024",
    ] {
        let response = app
            .call(
                Method::POST,
                "/api/users",
                Some(&admin),
                Some(json!({ "username": "carol", "password": weak })),
            )
            .await;
        assert_eq!(response.status(), 400, "{weak}");
        let error = error_of(response).await;
        assert_eq!(error.field.as_deref(), Some("password"));
        assert!(
            error.message.contains("too easy to guess"),
            "{}",
            error.message
        );
    }
    let strong = app
        .call(
            Method::POST,
            "/api/users",
            Some(&admin),
            Some(json!({ "username": "carol", "password": "plover-anvil-quince-17" })),
        )
        .await;
    assert_eq!(strong.status(), 201);
}

// ---- 7. the same care everywhere -----------------------------------------------------------

#[tokio::test]
async fn admin_routes_refuse_before_reading_the_body() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice", Role::User).await;
    let admin = app.admin().await;
    let some_user = format!("/api/users/{}", alice.id);
    let connection = app
        .create_connection(
            &admin,
            json!({ "name": "c", "kind": "command", "command": { "argv": ["true"] } }),
        )
        .await;
    let some_connection = format!("/api/connections/{}", connection.id);
    for (method, path) in [
        (Method::POST, "/api/users"),
        (Method::PATCH, some_user.as_str()),
        (Method::POST, "/api/groups"),
        (Method::POST, "/api/connections"),
        (Method::PATCH, some_connection.as_str()),
    ] {
        let response = app
            .call(method.clone(), path, Some(&alice), Some(json!({ "x": 1 })))
            .await;
        assert_eq!(response.status(), 403, "{method} {path}");
        let error = error_of(response).await;
        assert_eq!(error.field, None, "{method} {path} told a field: {error:?}");
    }
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    for path in [
        "/api/me",
        "/api/settings",
        "/",
        "/sessions/abc",
        "/api/nope",
    ] {
        let response = app.call(Method::GET, path, Some(&admin), None).await;
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
        let policy = headers["content-security-policy"].to_str().unwrap();
        assert!(
            policy.contains("frame-ancestors 'none'"),
            "{path}: {policy}"
        );
        if path.starts_with("/api/") {
            assert_eq!(headers[header::CACHE_CONTROL], "no-store", "{path}");
        } else {
            assert!(
                policy.contains("script-src 'self' 'wasm-unsafe-eval'"),
                "{path}: {policy}"
            );
        }
    }
}

#[tokio::test]
async fn every_error_is_the_json_error_shape() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice", Role::User).await;
    let session = app.record(&alice, "ls").await;

    let wrong_method = app
        .call(Method::DELETE, "/api/settings", Some(&alice), None)
        .await;
    assert_eq!(wrong_method.status(), 405);
    assert!(wrong_method.headers().contains_key(header::ALLOW));
    assert_eq!(
        error_of(wrong_method).await.code,
        ErrorCode::MethodNotAllowed
    );

    let bad_seq = app
        .call(
            Method::GET,
            &format!("/api/sessions/{}/events/abc/output", session.id),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(bad_seq.status(), 400);
    assert_eq!(error_of(bad_seq).await.field.as_deref(), Some("seq"));

    let too_large = app
        .client
        .post(app.url(&format!(
            "/api/ingest/sessions/{}/output?stream=stdout",
            session.id
        )))
        .bearer_auth(&alice.token)
        .body(vec![b'x'; 17 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(too_large.status(), 413);
    assert_eq!(error_of(too_large).await.code, ErrorCode::PayloadTooLarge);

    let missing = app
        .call(Method::GET, "/api/nothing-here", Some(&alice), None)
        .await;
    assert_eq!(error_of(missing).await.code, ErrorCode::NotFound);
}

#[tokio::test]
async fn a_run_accepts_the_documented_input_size_and_names_the_field_past_it() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let alice = app.user("alice", Role::User).await;
    app.create_connection(&admin,
        json!({ "name": "wc", "kind": "command", "command": { "argv": ["wc", "-c"], "input": "stdin" } }),
    )
    .await;
    let at_limit = "\"".repeat(1024 * 1024);
    let session = app.run(&alice, "wc", &at_limit).await;
    let finished = app.ended(&alice, &session.id).await;
    assert_eq!(finished.exit_code, Some(0));
    assert_eq!(app.output_text(&alice, &session.id).await.trim(), "1048576");

    let past = app
        .call(
            Method::POST,
            "/api/sessions",
            Some(&alice),
            Some(json!({ "connection": "wc", "input": "x".repeat(1024 * 1024 + 1) })),
        )
        .await;
    assert_eq!(past.status(), 400);
    assert_eq!(error_of(past).await.field.as_deref(), Some("input"));
}

#[tokio::test]
async fn disabling_or_a_password_reset_ends_api_tokens_for_good() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let bob = app.user("bob", Role::User).await;
    let carol = app.user("carol", Role::User).await;
    let path = |user: &TestUser| format!("/api/users/{}", user.id);

    app.call(
        Method::PATCH,
        &path(&bob),
        Some(&admin),
        Some(json!({ "disabled": true })),
    )
    .await;
    app.call(
        Method::PATCH,
        &path(&bob),
        Some(&admin),
        Some(json!({ "disabled": false })),
    )
    .await;
    assert_eq!(
        app.call(Method::GET, "/api/me", Some(&bob), None)
            .await
            .status(),
        401,
        "re-enabling does not revive the old token"
    );

    let reset = app
        .call(
            Method::PATCH,
            &path(&carol),
            Some(&admin),
            Some(json!({ "password": "marmot-lantern-fjord-88" })),
        )
        .await;
    assert_eq!(reset.status(), 200);
    assert_eq!(
        app.call(Method::GET, "/api/me", Some(&carol), None)
            .await
            .status(),
        401
    );
}

#[tokio::test]
async fn someone_a_session_is_shared_with_sees_only_their_own_share() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner", Role::User).await;
    let bob = app.user("bob", Role::User).await;
    let carol = app.user("carol", Role::User).await;
    let auditor = app.user("auditor", Role::Auditor).await;
    let session = app.record(&owner, "ls").await;
    let path = format!("/api/sessions/{}/shares", session.id);
    let shared = app
        .call(
            Method::POST,
            &path,
            Some(&owner),
            Some(json!({ "users": [bob.id, carol.id] })),
        )
        .await;
    assert_eq!(shared.status(), 201);

    async fn seen_by(app: &TestApp, path: &str, who: &TestUser) -> Vec<Share> {
        app.call(Method::GET, path, Some(who), None)
            .await
            .json()
            .await
            .unwrap()
    }
    let bobs = seen_by(&app, &path, &bob).await;
    assert_eq!(bobs.len(), 1);
    assert_eq!(bobs[0].user.as_ref().unwrap().id, bob.id);
    assert_eq!(seen_by(&app, &path, &owner).await.len(), 2);
    assert_eq!(seen_by(&app, &path, &auditor).await.len(), 2);
}

// ---- 8. reviewers see what they review -----------------------------------------------------

#[tokio::test]
async fn a_reviewer_sees_the_session_they_are_asked_to_approve() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let ursula = app.user("ursula", Role::User).await;
    let rita = app.user("rita", Role::User).await;
    let outsider = app.user("outsider", Role::User).await;
    let group: Value = app
        .call(
            Method::POST,
            "/api/groups",
            Some(&admin),
            Some(json!({ "name": "dba" })),
        )
        .await
        .json()
        .await
        .unwrap();
    app.call(
        Method::PUT,
        &format!(
            "/api/groups/{}/members/{}",
            group["id"].as_str().unwrap(),
            rita.id
        ),
        Some(&admin),
        None,
    )
    .await;
    app.create_connection(&admin,
        json!({ "name": "held", "kind": "command", "command": { "argv": ["sh", "-c"] }, "review": { "command_review": true, "reviewer_groups": ["dba"] } }),
    )
    .await;
    let session = app.run(&ursula, "held", "echo approved output").await;
    assert_eq!(session.status, SessionStatus::PendingReview);
    let path = format!("/api/sessions/{}", session.id);

    let seen = app.call(Method::GET, &path, Some(&rita), None).await;
    assert_eq!(seen.status(), 200);
    let held: Session = seen.json().await.unwrap();
    assert_eq!(held.summary, "echo approved output", "the held input");
    assert_eq!(
        app.call(Method::GET, &path, Some(&outsider), None)
            .await
            .status(),
        404
    );

    let reviews: Value = app
        .call(Method::GET, "/api/reviews?view=inbox", Some(&rita), None)
        .await
        .json()
        .await
        .unwrap();
    let review = reviews["items"][0]["id"].as_str().unwrap();
    let approved = app
        .call(
            Method::POST,
            &format!("/api/reviews/{review}/approve"),
            Some(&rita),
            Some(json!({})),
        )
        .await;
    assert_eq!(approved.status(), 200);
    app.ended(&rita, &session.id).await;
    assert_eq!(
        app.output_text(&rita, &session.id).await,
        "approved output\n"
    );
}

// ---- 9. blocked downloads are not a bulk export by another road ----------------------------

#[tokio::test]
async fn window_reads_are_bounded_and_audited_while_downloads_are_disabled() {
    let app = TestApp::spawn_with(|config| {
        config.disable_sessions_download = true;
        config.window_read_bytes = 1000;
    })
    .await;
    let alice = app.user("alice", Role::User).await;
    let auditor = app.user("auditor", Role::Auditor).await;
    let session = app.record(&alice, "cat big").await;
    let ack: Value = app
        .call(
            Method::POST,
            &format!("/api/ingest/sessions/{}/events", session.id),
            Some(&alice),
            Some(json!({ "events": [{ "kind": "output", "stream": "stdout", "data": "y".repeat(3000) }] })),
        )
        .await
        .json()
        .await
        .unwrap();
    let seq = ack["seqs"][0].as_u64().unwrap();
    let window = |offset: u64| {
        format!(
            "/api/sessions/{}/events/{seq}/output?offset={offset}&length=800",
            session.id
        )
    };
    let first = app.call(Method::GET, &window(0), Some(&alice), None).await;
    assert_eq!(first.status(), 200, "reading in the page works");
    let refused = app
        .call(Method::GET, &window(800), Some(&alice), None)
        .await;
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key(header::RETRY_AFTER));
    assert!(
        error_of(refused)
            .await
            .message
            .contains("LOUPE_WINDOW_READ_BYTES")
    );

    let audit: Value = app
        .call(
            Method::GET,
            "/api/audit?action=session.window_read",
            Some(&auditor),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(audit["items"].as_array().unwrap().len(), 1, "{audit}");
}
