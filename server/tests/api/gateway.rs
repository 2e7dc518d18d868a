//! Running real SQL and real commands through Loupe, and checking what was recorded.

use std::{str::FromStr, time::Duration};

use loupe_protocol::{
    Cell, Connection, ErrorBody, EventKind, OutputWindow, Role, RowsWindow, Session, SessionStatus,
};
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::{
    ConnectOptions, Connection as _, Executor, mysql::MySqlConnectOptions,
    postgres::PgConnectOptions,
};

use crate::helpers::{TestApp, TestUser};

const MARIADB_URL: &str = "mysql://root@127.0.0.1:3306";

/// Tests the connection as an administrator would and checks the target named itself.
async fn answers_as(app: &TestApp, admin: &TestUser, created: &Connection, product: &str) {
    let check = app.test_connection(admin, &created.id).await;
    assert!(check.ok, "{}", check.message);
    assert!(check.message.contains(product), "{}", check.message);
}

async fn output(
    app: &TestApp,
    who: &TestUser,
    id: &str,
    seq: u64,
) -> (String, Vec<(String, String)>) {
    let (mut text, mut pieces, mut offset) = (String::new(), Vec::new(), 0);
    loop {
        let window: OutputWindow = app
            .call(
                Method::GET,
                &format!("/api/sessions/{id}/events/{seq}/output?offset={offset}&length=1048576"),
                Some(who),
                None,
            )
            .await
            .json()
            .await
            .unwrap();
        for piece in &window.pieces {
            text.push_str(&piece.text);
            pieces.push((piece.stream.as_str().to_owned(), piece.text.clone()));
        }
        offset += window.length;
        if window.length == 0 || offset >= window.total {
            return (text, pieces);
        }
    }
}

async fn rows(app: &TestApp, who: &TestUser, id: &str, seq: u64) -> RowsWindow {
    app.call(
        Method::GET,
        &format!("/api/sessions/{id}/events/{seq}/rows?limit=1000"),
        Some(who),
        None,
    )
    .await
    .json()
    .await
    .unwrap()
}

/// The script every database runs: a result with NULL and the text 'NULL', a change without
/// rows, then an error that stops the script before the last statement.
const SCRIPT: &str = "SELECT id, note FROM items ORDER BY id;\nUPDATE items SET note = 'seen' WHERE id = 3;\nSELECT no_such_column FROM items;\nSELECT 'never reached'";

async fn check_script_recording(
    app: &TestApp,
    alice: &TestUser,
    connection: &str,
    error_code: &str,
) {
    let session = app.run(alice, connection, SCRIPT).await;
    assert_eq!(
        session.status,
        SessionStatus::Running,
        "answers at once, before the work is done"
    );
    let session = app.ended(alice, &session.id).await;
    assert_eq!(session.status, SessionStatus::Failed);
    let events = app.events(alice, &session.id).await;
    let kinds: Vec<_> = events.iter().map(|event| event.kind).collect();
    assert_eq!(
        kinds,
        [
            EventKind::Input,
            EventKind::Result,
            EventKind::Input,
            EventKind::Note,
            EventKind::Input,
            EventKind::Error
        ],
        "{events:#?}"
    );
    assert_eq!(
        events[0].text.as_deref(),
        Some("SELECT id, note FROM items ORDER BY id")
    );
    let columns: Vec<_> = events[1]
        .columns
        .as_ref()
        .unwrap()
        .iter()
        .map(|column| column.name.as_str())
        .collect();
    assert_eq!(columns, ["id", "note"]);
    let result = rows(app, alice, &session.id, events[1].seq).await;
    assert_eq!(
        result.rows,
        [
            vec![Cell::Int(1), Cell::Text("NULL".into())],
            vec![Cell::Int(2), Cell::Null],
            vec![Cell::Int(3), Cell::Text("tab\there".into())]
        ]
    );
    assert_eq!(events[3].summary, "1 rows affected");
    assert_eq!(
        events[5].code.as_deref(),
        Some(error_code),
        "{:?}",
        events[5]
    );
    assert!(
        events[5]
            .text
            .as_deref()
            .unwrap()
            .contains("no_such_column")
    );
    assert!(session.error.as_deref().unwrap().contains("no_such_column"));
}

/// How many sessions PostgreSQL has counted on database `name` (`pg_stat_database.sessions`,
/// PostgreSQL 14 and later), once it has counted at least `at_least`; backends report their
/// statistics a moment after they end, so this waits for them (up to 10 s).
async fn sessions_established(options: &PgConnectOptions, name: &str, at_least: i64) -> i64 {
    let mut seen = 0;
    for _ in 0..100 {
        // A new connection each time: one's statistics are a snapshot kept for its transaction.
        let mut reader = options.connect().await.unwrap();
        seen = sqlx::query_scalar::<_, i64>(
            "SELECT coalesce(sessions, 0) FROM pg_stat_database WHERE datname = $1",
        )
        .bind(name)
        .fetch_one(&mut reader)
        .await
        .unwrap();
        reader.close().await.unwrap();
        if seen >= at_least {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("PostgreSQL counted {seen} sessions on {name}, not {at_least}");
}

/// The sessions count on database `name` once it stops moving (two reads a second apart agree):
/// connections that ended a moment ago are counted by then.
async fn settled_sessions(options: &PgConnectOptions, name: &str) -> i64 {
    let mut last = sessions_established(options, name, 0).await;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = sessions_established(options, name, 0).await;
        if now == last {
            return now;
        }
        last = now;
    }
    panic!("the sessions count on {name} kept moving");
}

#[tokio::test]
async fn runs_sql_on_postgres_and_records_each_statement() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let alice = app.user("alice", Role::User).await;
    let server = std::env::var("LOUPE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let options = PgConnectOptions::from_str(&server).unwrap();
    let name = format!("loupe_target_{}", uuid::Uuid::new_v4().simple());
    options
        .connect()
        .await
        .unwrap()
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap();
    let target = options.clone().database(&name);
    let mut setup = target.connect().await.unwrap();
    setup
        .execute("CREATE TABLE items (id int PRIMARY KEY, note text); INSERT INTO items VALUES (1, 'NULL'), (2, NULL), (3, E'tab\\there')")
        .await
        .unwrap();
    setup.close().await.unwrap();
    let url = target.to_url_lossy().to_string();
    let created = app
        .create_connection(
            &admin,
            json!({ "name": "pg-target", "kind": "postgres", "url": url }),
        )
        .await;
    answers_as(&app, &admin, &created, "PostgreSQL").await;

    check_script_recording(&app, &alice, "pg-target", "42703").await;

    // A statement the target refused has ended: nothing is left to cancel, so its run opens one
    // connection to the target and no second one to cancel it (which made the target log
    // "PID n is not a PostgreSQL backend process" for every failed statement).
    let before = settled_sessions(&options, &name).await;
    let failed = app.run(&alice, "pg-target", "SELECT no_such_column").await;
    let failed = app.ended(&alice, &failed.id).await;
    assert_eq!(failed.status, SessionStatus::Failed);
    sessions_established(&options, &name, before + 1).await;
    // A cancel is sent at once when there is one; the count settles once it is counted.
    let after = settled_sessions(&options, &name).await;
    assert_eq!(
        after - before,
        1,
        "one connection for the run, none to cancel"
    );

    options
        .connect()
        .await
        .unwrap()
        .execute(format!("DROP DATABASE {name} WITH (FORCE)").as_str())
        .await
        .unwrap();
}

#[tokio::test]
async fn runs_sql_on_mariadb_and_records_each_statement() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let alice = app.user("alice", Role::User).await;
    let name = format!("loupe_target_{}", uuid::Uuid::new_v4().simple());
    let server = MySqlConnectOptions::from_str(MARIADB_URL).unwrap();
    server
        .connect()
        .await
        .expect("MariaDB answers on 127.0.0.1:3306")
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap();
    let mut setup = server.clone().database(&name).connect().await.unwrap();
    setup
        .execute("CREATE TABLE items (id INT PRIMARY KEY, note TEXT); INSERT INTO items VALUES (1, 'NULL'), (2, NULL), (3, 'tab\\there')")
        .await
        .unwrap();
    setup.close().await.unwrap();
    let created = app
        .create_connection(
            &admin,
            json!({ "name": "maria", "kind": "mysql", "url": format!("{MARIADB_URL}/{name}") }),
        )
        .await;
    answers_as(&app, &admin, &created, "MySQL/MariaDB").await;

    check_script_recording(&app, &alice, "maria", "42S22").await;

    server
        .connect()
        .await
        .unwrap()
        .execute(format!("DROP DATABASE {name}").as_str())
        .await
        .unwrap();
}

#[tokio::test]
async fn runs_sql_on_sqlite_and_records_each_statement() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let alice = app.user("alice", Role::User).await;
    let folder = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", folder.path().join("target.db").display());
    let mut setup = sqlx::sqlite::SqliteConnectOptions::from_str(&url)
        .unwrap()
        .create_if_missing(true)
        .connect()
        .await
        .unwrap();
    setup
        .execute("CREATE TABLE items (id INTEGER PRIMARY KEY, note TEXT); INSERT INTO items VALUES (1, 'NULL'), (2, NULL), (3, 'tab' || char(9) || 'here')")
        .await
        .unwrap();
    setup.close().await.unwrap();
    let created = app
        .create_connection(
            &admin,
            json!({ "name": "lite", "kind": "sqlite", "url": url }),
        )
        .await;
    answers_as(&app, &admin, &created, "SQLite").await;

    check_script_recording(&app, &alice, "lite", "1").await;
}

fn shell(name: &str) -> Value {
    json!({ "name": name, "kind": "command", "command": { "argv": ["sh", "-c"] } })
}

#[tokio::test]
async fn records_stdout_and_stderr_in_order_with_the_exit_code() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let alice = app.user("alice", Role::User).await;
    app.create_connection(&admin, shell("sh")).await;

    let script = "printf 'one\\n'; sleep 0.2; printf '\\033[31mtwo\\033[0m\\n' >&2; sleep 0.2; printf 'three\\n'; exit 3";
    let session = app
        .ended(&alice, &app.run(&alice, "sh", script).await.id)
        .await;

    assert_eq!(
        (session.status, session.exit_code, session.error.as_deref()),
        (SessionStatus::Failed, Some(3), Some("exited with code 3")),
        "a non-zero exit is a failure, with its code as the reason"
    );
    let failed: loupe_protocol::SessionPage =
        app.get_json(&alice, "/api/sessions?status=failed").await;
    assert_eq!(
        failed
            .items
            .iter()
            .map(|found| &found.id)
            .collect::<Vec<_>>(),
        [&session.id],
        "the failed filter finds it"
    );

    // Killed by a signal: no exit code, and a failure too.
    let killed = app
        .ended(&alice, &app.run(&alice, "sh", "kill -9 $$").await.id)
        .await;
    assert_eq!(
        (killed.status, killed.error.as_deref()),
        (SessionStatus::Failed, Some("killed by SIGKILL")),
        "the signal named as terminals and ssh name it"
    );
    let events = app.events(&alice, &session.id).await;
    let kinds: Vec<_> = events.iter().map(|event| event.kind).collect();
    assert_eq!(
        kinds,
        [EventKind::Input, EventKind::Output, EventKind::Exit]
    );
    assert!(events[0].summary.starts_with("sh -c printf"));
    let (_, pieces) = output(&app, &alice, &session.id, events[1].seq).await;
    assert_eq!(
        pieces,
        [
            ("stdout".into(), "one\n".into()),
            ("stderr".into(), "\u{1b}[31mtwo\u{1b}[0m\n".into()),
            ("stdout".into(), "three\n".into())
        ]
    );
    assert_eq!(events[2].exit_code, Some(3));
}

#[tokio::test]
async fn records_a_million_lines_byte_for_byte() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let alice = app.user("alice", Role::User).await;
    app.create_connection(
        &admin,
        json!({ "name": "seq", "kind": "command", "command": { "argv": ["seq", "1"] } }),
    )
    .await;

    let session = app
        .ended(&alice, &app.run(&alice, "seq", "1000000").await.id)
        .await;

    assert_eq!(
        (session.status, session.exit_code),
        (SessionStatus::Done, Some(0))
    );
    let expected: String = (1..=1_000_000).map(|n| format!("{n}\n")).collect();
    assert_eq!(session.counts.output_bytes, expected.len() as u64);
    let events = app.events(&alice, &session.id).await;
    let (text, _) = output(&app, &alice, &session.id, events[1].seq).await;
    assert!(text == expected, "the recorded output differs from seq's");
}

#[tokio::test]
async fn a_running_command_can_be_killed_with_its_children() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let alice = app.user("alice", Role::User).await;
    let bob = app.user("bob", Role::User).await;
    app.create_connection(&admin, shell("sh")).await;
    let marker = format!("loupe-kill-test-{}", uuid::Uuid::new_v4().simple());

    let session = app
        .run(
            &alice,
            "sh",
            &format!("echo started; sleep 1000 # {marker}"),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let path = format!("/api/sessions/{}/kill", session.id);
    assert_eq!(
        app.call(Method::POST, &path, Some(&bob), None)
            .await
            .status(),
        404,
        "bob cannot even see it"
    );
    let killed = app.call(Method::POST, &path, Some(&alice), None).await;
    assert_eq!(killed.status(), 200);

    let session = app.ended(&alice, &session.id).await;
    assert_eq!(session.status, SessionStatus::Cancelled);
    let (text, _) = output(
        &app,
        &alice,
        &session.id,
        app.events(&alice, &session.id).await[1].seq,
    )
    .await;
    assert_eq!(text, "started\n");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let processes = std::process::Command::new("ps")
        .args(["-eo", "args"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&processes.stdout).contains(&marker),
        "the sleep outlived the kill"
    );
    assert_eq!(
        app.call(Method::POST, &path, Some(&alice), None)
            .await
            .status(),
        409,
        "nothing left to kill"
    );
}

#[tokio::test]
async fn bad_runs_fail_clearly() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let alice = app.user("alice", Role::User).await;
    let auditor = app.user("auditor", Role::Auditor).await;
    app.create_connection(&admin, json!({ "name": "ghost", "kind": "command", "command": { "argv": ["no-such-program-anywhere"] } })).await;
    app.create_connection(&admin, json!({ "name": "slow", "kind": "command", "command": { "argv": ["sh", "-c"] }, "timeout_seconds": 1 })).await;

    let unknown = app
        .call(
            Method::POST,
            "/api/sessions",
            Some(&alice),
            Some(json!({ "connection": "nope", "input": "x" })),
        )
        .await;
    assert_eq!(unknown.status(), 404);
    let empty = app
        .call(
            Method::POST,
            "/api/sessions",
            Some(&alice),
            Some(json!({ "connection": "slow", "input": "  " })),
        )
        .await;
    assert_eq!(
        empty.json::<ErrorBody>().await.unwrap().field.as_deref(),
        Some("input")
    );
    let as_auditor = app
        .call(
            Method::POST,
            "/api/sessions",
            Some(&auditor),
            Some(json!({ "connection": "slow", "input": "true" })),
        )
        .await;
    assert_eq!(as_auditor.status(), 403);

    let missing = app
        .ended(&alice, &app.run(&alice, "ghost", "x").await.id)
        .await;
    assert_eq!(missing.status, SessionStatus::Failed);
    assert!(
        missing
            .error
            .as_deref()
            .unwrap()
            .contains("no-such-program-anywhere was not found")
    );

    let slow = app
        .ended(&alice, &app.run(&alice, "slow", "sleep 30").await.id)
        .await;
    assert_eq!(slow.status, SessionStatus::Failed);
    assert!(
        slow.error.as_deref().unwrap().contains("longer than 1 s"),
        "{:?}",
        slow.error
    );
}

#[tokio::test]
async fn urls_are_write_only_and_encrypted_at_rest() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let url = "postgres://app:hunter2-secret@127.0.0.1:5432/app";
    let created = app
        .create_connection(
            &admin,
            json!({ "name": "prod", "kind": "postgres", "url": url }),
        )
        .await;
    assert!(created.has_url);

    let listed = app
        .call(Method::GET, "/api/connections", Some(&admin), None)
        .await
        .text()
        .await
        .unwrap();
    let one = app
        .call(
            Method::GET,
            &format!("/api/connections/{}", created.id),
            Some(&admin),
            None,
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(!listed.contains("hunter2") && !one.contains("hunter2"));
    let stored = app.store.connection("prod").await.unwrap().unwrap();
    assert!(!String::from_utf8_lossy(stored.secret.as_deref().unwrap()).contains("hunter2"));

    let bad = app
        .call(
            Method::POST,
            "/api/connections",
            Some(&admin),
            Some(json!({ "name": "bad", "kind": "postgres", "url": "mysql://x" })),
        )
        .await;
    assert_eq!(
        bad.json::<ErrorBody>().await.unwrap().field.as_deref(),
        Some("url")
    );
    let check = app.test_connection(&admin, &created.id).await;
    assert!(
        !check.ok,
        "nobody listens as app/hunter2: {}",
        check.message
    );
}

#[tokio::test]
async fn a_rerun_runs_the_same_input_again_and_links_back() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let alice = app.user("alice", Role::User).await;
    app.create_connection(&admin, shell("sh")).await;
    let first = app
        .ended(&alice, &app.run(&alice, "sh", "echo again").await.id)
        .await;

    let response = app
        .call(
            Method::POST,
            &format!("/api/sessions/{}/rerun", first.id),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(response.status(), 201);
    let second: Session = response.json().await.unwrap();
    let second = app.ended(&alice, &second.id).await;

    assert_eq!(second.rerun_of.as_deref(), Some(first.id.as_str()));
    assert_eq!(second.summary, first.summary);
    let (text, _) = output(
        &app,
        &alice,
        &second.id,
        app.events(&alice, &second.id).await[1].seq,
    )
    .await;
    assert_eq!(text, "again\n");
}

#[tokio::test]
async fn output_past_the_limit_is_not_kept_and_the_session_says_so() {
    let app = TestApp::spawn_with(|config| config.max_output_bytes = 100_000).await;
    let admin = app.admin().await;
    let alice = app.user("alice", Role::User).await;
    app.create_connection(
        &admin,
        json!({ "name": "seq", "kind": "command", "command": { "argv": ["seq", "1"] } }),
    )
    .await;

    let session = app
        .ended(&alice, &app.run(&alice, "seq", "100000").await.id)
        .await;

    assert_eq!(session.status, SessionStatus::Done);
    assert!(session.truncated);
    assert_eq!(session.counts.output_bytes, 100_000);
    let events = app.events(&alice, &session.id).await;
    assert!(
        events
            .iter()
            .any(|event| event.kind == EventKind::Note && event.summary.contains("storage limit"))
    );
}
