//! Real MySQL clients through Loupe's MySQL-protocol listener (`LOUPE_MYSQL_BIND`) to the
//! MariaDB server on this machine: Debian's `mariadb` client (text protocol, `KILL QUERY` on
//! Ctrl-C) and sqlx (its own protocol code: prepared statements, binary rows), each checked
//! statement by statement against what was recorded.

use std::{process::Stdio, str::FromStr, time::Duration};

use loupe_protocol::{EventKind, Role, SessionStatus};
use reqwest::Method;
use serde_json::json;
use sqlx::{
    ConnectOptions, Connection, Executor, Row,
    mysql::{MySqlConnectOptions, MySqlSslMode},
};

use crate::{
    helpers::{TestApp, TestUser},
    tls_mariadb::{PASSWORD as TLS_PASSWORD, TlsMariadb},
    wire::{
        assert_target_unreachable, assert_url_refused, ctrl_c, dba_reviewer, decide, free_address,
        outside_address, pending_review, recorded, rows, running_session, sessions,
    },
};

const MARIADB_URL: &str = "mysql://root@127.0.0.1:3306";

async fn gateway_app() -> (TestApp, String) {
    let address = free_address();
    let bind = address.clone();
    let app = TestApp::spawn_with(move |config| config.mysql_bind = Some(bind)).await;
    (app, address)
}

/// A MariaDB database of the test's own, dropped by [`Target::drop_database`].
struct Target {
    name: String,
}

impl Target {
    async fn create() -> Target {
        let name = format!("loupe_wire_{}", uuid::Uuid::new_v4().simple());
        let mut server = MySqlConnectOptions::from_str(MARIADB_URL)
            .unwrap()
            .connect()
            .await
            .expect("MariaDB answers on 127.0.0.1:3306");
        server
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap();
        Target { name }
    }

    fn url(&self) -> String {
        format!("{MARIADB_URL}/{}", self.name)
    }

    async fn drop_database(self) {
        let mut server = MySqlConnectOptions::from_str(MARIADB_URL)
            .unwrap()
            .connect()
            .await
            .unwrap();
        server
            .execute(format!("DROP DATABASE {}", self.name).as_str())
            .await
            .unwrap();
    }
}

async fn mysql_connection(
    app: &TestApp,
    admin: &TestUser,
    name: &str,
    url: &str,
    rules: serde_json::Value,
) {
    app.create_connection(
        admin,
        json!({ "name": name, "kind": "mysql", "url": url, "review": rules }),
    )
    .await;
}

/// sqlx's MySQL driver (its own protocol code) through Loupe as `user` to `database`, the
/// token sent as the cleartext password it is.
fn sqlx_options(address: &str, user: &TestUser, database: &str) -> MySqlConnectOptions {
    let (host, port) = address.split_once(':').unwrap();
    MySqlConnectOptions::new()
        .host(host)
        .port(port.parse().unwrap())
        .username(&user.username)
        .password(&user.token)
        .database(database)
        .ssl_mode(MySqlSslMode::Disabled)
        .enable_cleartext_plugin(true)
}

/// Debian's `mariadb` client, logged in through Loupe as `user` to `database`.
fn mariadb(address: &str, user: &TestUser, database: &str) -> tokio::process::Command {
    let (host, port) = address.split_once(':').unwrap();
    let mut command = tokio::process::Command::new("mariadb");
    command
        .args(["--no-defaults", "--protocol=TCP", "-h", host, "-P", port])
        .args(["-u", &user.username, "-D", database])
        .arg(format!("--password={}", user.token))
        .args(["--batch", "--skip-column-names"])
        .args(["--connect-timeout=10"])
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

#[tokio::test]
async fn the_mariadb_client_through_loupe_is_recorded_statement_by_statement() {
    let (app, address) = gateway_app().await;
    let admin = app.admin().await;
    let alice = app.user("alice", Role::User).await;
    let target = Target::create().await;
    mysql_connection(&app, &admin, "maria", &target.url(), json!({})).await;

    let output = mariadb(&address, &alice, "maria")
        .args([
            "-e",
            "SELECT 1 AS one, 'x' AS two; SELECT 2.50 AS n, NULL AS nothing; \
             CREATE TABLE t (id INT UNSIGNED, note TEXT); INSERT INTO t VALUES (1, 'a'), (2, NULL); \
             SELECT * FROM t ORDER BY id; SELECT * FROM nope",
        ])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stdout, "1\tx\n2.50\tNULL\n1\ta\n2\tNULL\n", "{stderr}");
    assert!(stderr.contains("ERROR 1146 (42S02)"), "{stderr}");

    let (session, events) = recorded(&app, &alice).await;
    assert_eq!(session.status, SessionStatus::Done);
    assert_eq!(session.connection.name, "maria");
    assert!(
        session.summary.starts_with("mysql from 127.0.0.1"),
        "{}",
        session.summary
    );
    // What the client sends of its own at connect (`select @@version_comment`) is recorded
    // too; the statements typed follow in order.
    let kinds: Vec<(EventKind, String)> = events
        .iter()
        .map(|event| {
            (
                event.kind,
                event.text.clone().unwrap_or_else(|| event.summary.clone()),
            )
        })
        .skip_while(|(_, text)| !text.starts_with("SELECT 1 AS one"))
        .collect();
    assert_eq!(
        kinds,
        [
            (EventKind::Input, "SELECT 1 AS one, 'x' AS two".into()),
            (EventKind::Result, "2 columns".into()),
            (EventKind::Input, "SELECT 2.50 AS n, NULL AS nothing".into()),
            (EventKind::Result, "2 columns".into()),
            (
                EventKind::Input,
                "CREATE TABLE t (id INT UNSIGNED, note TEXT)".into()
            ),
            (EventKind::Note, "0 rows affected".into()),
            (
                EventKind::Input,
                "INSERT INTO t VALUES (1, 'a'), (2, NULL)".into()
            ),
            (EventKind::Note, "2 rows affected".into()),
            (EventKind::Input, "SELECT * FROM t ORDER BY id".into()),
            (EventKind::Result, "2 columns".into()),
            (EventKind::Input, "SELECT * FROM nope".into()),
            (
                EventKind::Error,
                format!(
                    "Table '{}.nope' doesn't exist (MySQL error 1146)",
                    target.name
                )
            ),
        ],
        "{events:?}"
    );
    let seq = |text: &str| {
        let at = events
            .iter()
            .position(|event| event.text.as_deref() == Some(text))
            .unwrap();
        &events[at + 1]
    };
    let first = seq("SELECT 1 AS one, 'x' AS two");
    assert_eq!(
        rows(&app, &alice, &session.id, first.seq).await,
        json!([[1, "x"]])
    );
    let decimal = seq("SELECT 2.50 AS n, NULL AS nothing");
    assert_eq!(
        rows(&app, &alice, &session.id, decimal.seq).await,
        json!([["2.50", null]])
    );
    let table = seq("SELECT * FROM t ORDER BY id");
    assert_eq!(
        rows(&app, &alice, &session.id, table.seq).await,
        json!([[1, "a"], [2, null]])
    );
    let columns: Vec<(String, String)> = table
        .columns
        .clone()
        .unwrap()
        .into_iter()
        .map(|column| (column.name, column.type_name))
        .collect();
    assert_eq!(
        columns,
        [
            ("id".into(), "INT UNSIGNED".into()),
            ("note".into(), "TEXT".into())
        ]
    );
    let error = events.last().unwrap();
    assert_eq!(error.code.as_deref(), Some("42S02"));
    target.drop_database().await;
}

#[tokio::test]
async fn a_driver_with_prepared_statements_and_binary_rows_works_and_is_recorded() {
    let (app, address) = gateway_app().await;
    let admin = app.admin().await;
    let alice = app.user("alice", Role::User).await;
    let target = Target::create().await;
    mysql_connection(&app, &admin, "maria", &target.url(), json!({})).await;

    let options = sqlx_options(&address, &alice, "maria");
    let mut connection = sqlx::MySqlConnection::connect_with(&options).await.unwrap();
    let row = sqlx::query(
        "SELECT ? + 1 AS next, ? AS name, CAST('2026-12-01 07:03:55.120' AS DATETIME(3)) AS at, \
         CAST(-1.5 AS DOUBLE) AS d, X'00AB' AS raw",
    )
    .bind(41_i64)
    .bind("loupe")
    .fetch_one(&mut connection)
    .await
    .unwrap();
    assert_eq!(row.get::<i64, _>("next"), 42);
    assert_eq!(row.get::<String, _>("name"), "loupe");
    assert_eq!(row.get::<f64, _>("d"), -1.5);
    assert_eq!(row.get::<Vec<u8>, _>("raw"), vec![0x00, 0xab]);
    let mut transaction = connection.begin().await.unwrap();
    transaction
        .execute("CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(20))")
        .await
        .unwrap();
    let inserted = sqlx::query("INSERT INTO items VALUES (?, ?), (?, ?)")
        .bind(1)
        .bind("one")
        .bind(2)
        .bind(Option::<String>::None)
        .execute(&mut *transaction)
        .await
        .unwrap();
    assert_eq!(inserted.rows_affected(), 2);
    transaction.commit().await.unwrap();
    let duplicate = sqlx::query("INSERT INTO items VALUES (?, 'again')")
        .bind(1)
        .execute(&mut connection)
        .await
        .unwrap_err();
    assert!(
        duplicate.to_string().contains("Duplicate entry"),
        "{duplicate}"
    );
    connection.close().await.unwrap();

    let (session, events) = recorded(&app, &alice).await;
    assert_eq!(session.status, SessionStatus::Done);
    let said = |kind: EventKind| -> Vec<String> {
        events
            .iter()
            .filter(|event| event.kind == kind)
            .map(|event| event.text.clone().unwrap_or_else(|| event.summary.clone()))
            .collect()
    };
    let inputs = said(EventKind::Input);
    assert!(
        inputs
            .iter()
            .any(|input| input.starts_with("SELECT ? + 1 AS next")),
        "{inputs:?}"
    );
    assert!(
        inputs
            .iter()
            .any(|input| input.eq_ignore_ascii_case("BEGIN")),
        "{inputs:?}"
    );
    assert!(
        inputs
            .iter()
            .any(|input| input.eq_ignore_ascii_case("COMMIT")),
        "{inputs:?}"
    );
    let notes = said(EventKind::Note);
    for expected in [
        "parameters: ?1 = 41, ?2 = 'loupe'",
        "parameters: ?1 = 1, ?2 = 'one', ?3 = 2, ?4 = NULL",
        "2 rows affected",
    ] {
        assert!(
            notes.iter().any(|note| note == expected),
            "{expected}: {notes:?}"
        );
    }
    let errors: Vec<_> = events
        .iter()
        .filter(|event| event.kind == EventKind::Error)
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].code.as_deref(), Some("23000"));
    // Binary rows recorded in MySQL's own text form.
    let result = events
        .iter()
        .find(|event| {
            event.kind == EventKind::Result
                && event
                    .columns
                    .as_ref()
                    .is_some_and(|columns| columns[0].name == "next")
        })
        .expect("the prepared statement's result");
    assert_eq!(
        rows(&app, &alice, &session.id, result.seq).await,
        json!([[42, "loupe", "2026-12-01 07:03:55.120", -1.5, "0x00ab"]])
    );
    target.drop_database().await;
}

#[tokio::test]
async fn wrong_tokens_unknown_connections_rules_and_garbage_get_clear_refusals() {
    let (app, address) = gateway_app().await;
    let admin = app.admin().await;
    let alice = app.user("alice", Role::User).await;
    let bob = app.user("bob", Role::User).await;
    let target = Target::create().await;
    mysql_connection(&app, &admin, "maria", &target.url(), json!({})).await;
    let group = app
        .call(
            Method::POST,
            "/api/groups",
            Some(&admin),
            Some(json!({ "name": "dba" })),
        )
        .await;
    assert_eq!(group.status(), 201);
    mysql_connection(
        &app,
        &admin,
        "guarded",
        &target.url(),
        json!({ "jit_access": true, "reviewer_groups": ["dba"] }),
    )
    .await;

    let mut wrong = alice.clone();
    wrong.token = bob.token.clone();
    for (who, database, expected) in [
        (
            &wrong,
            "maria",
            "ERROR 1045 (28000): password authentication failed for user \"alice\"",
        ),
        (
            &alice,
            "nope",
            "ERROR 1049 (42000): no connection named \"nope\"",
        ),
        (
            &alice,
            "guarded",
            "ERROR 1044 (42000): guarded needs approved access",
        ),
    ] {
        let output = mariadb(&address, who, database)
            .args(["-e", "SELECT 1"])
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success());
        assert!(stderr.contains(expected), "{database}: {stderr}");
    }
    assert!(
        sessions(&app, &alice, "").await.is_empty(),
        "refused logins make no session"
    );

    // Garbage instead of a handshake response, and a packet claiming 16 MiB: the connection
    // closes, the server goes on.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    for garbage in [
        &b"\x05\x00\x00\x01hello"[..],
        b"GET / HTTP/1.1\r\n\r\n",
        b"\xff\xff\xff\x01",
    ] {
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        let mut greeting = [0u8; 4];
        stream.read_exact(&mut greeting).await.unwrap();
        assert_eq!(greeting[3], 0, "the server speaks first");
        stream.write_all(garbage).await.unwrap();
        let mut rest = Vec::new();
        let closed =
            tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "the connection closes: {garbage:?}");
    }

    let output = mariadb(&address, &alice, "maria")
        .args(["-e", "SELECT 'still here'"])
        .output()
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout), "still here\n");
    assert_eq!(app.get("/healthz").await.status(), 200);
    target.drop_database().await;
}

#[tokio::test]
async fn kill_query_stops_the_statement_on_the_target_and_kill_in_loupe_ends_the_client() {
    let (app, address) = gateway_app().await;
    let admin = app.admin().await;
    let alice = app.user("alice", Role::User).await;
    let bob = app.user("bob", Role::User).await;
    let target = Target::create().await;
    mysql_connection(&app, &admin, "maria", &target.url(), json!({})).await;

    // Ctrl-C in the client: it sends `KILL QUERY <the id Loupe gave it>` from a second
    // connection, which Loupe runs on the target against the first connection's own id.
    let started = std::time::Instant::now();
    let child = mariadb(&address, &alice, "maria")
        .args(["-e", "SELECT SLEEP(30)"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let running = running_session(&app, &alice, "SELECT SLEEP(30)").await;
    let output = ctrl_c(child, "the client ends once its statement is killed").await;
    assert!(started.elapsed() < Duration::from_secs(20));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // SLEEP() killed answers 1 (interrupted) rather than an error in MariaDB.
    assert!(
        said.contains('1') || said.contains("Query execution was interrupted"),
        "{said}"
    );
    let ended = app.ended(&alice, &running).await;
    assert_eq!(ended.status, SessionStatus::Done);
    let events = app.events(&alice, &running).await;
    assert!(
        events.iter().any(|event| event.kind == EventKind::Note
            && event.summary == "KILL QUERY by alice from 127.0.0.1"),
        "the kill is noted in the killed session: {events:?}"
    );

    // Someone else's connection id is not theirs to kill.
    let child = mariadb(&address, &alice, "maria")
        .args(["-e", "SELECT SLEEP(30)"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let running = running_session(&app, &alice, "SELECT SLEEP(30)").await;
    // The id Loupe handed out is not visible over the API; Bob's KILL of any high id he does
    // not own is refused or unknown, and Alice's statement goes on.
    let output = mariadb(&address, &bob, "maria")
        .args(["-e", "KILL QUERY 4294967295"])
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let session: loupe_protocol::Session = app
        .get_json(&alice, &format!("/api/sessions/{running}"))
        .await;
    assert_eq!(session.status, SessionStatus::Running);

    // Kill from Loupe: the client is told why, the statement stops on the target.
    let killed = app
        .call(
            Method::POST,
            &format!("/api/sessions/{running}/kill"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(killed.status(), 200);
    let output = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .expect("the client ends when its session is killed")
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("stopped in Loupe by a person"), "{stderr}");
    let session = app.ended(&alice, &running).await;
    assert_eq!(session.status, SessionStatus::Cancelled);
    target.drop_database().await;
}

#[tokio::test]
async fn statements_on_a_reviewed_connection_wait_for_a_reviewer_and_ctrl_c_withdraws_one() {
    let (app, address) = gateway_app().await;
    let admin = app.admin().await;
    let alice = app.user("alice", Role::User).await;
    let rita = dba_reviewer(&app).await;
    let target = Target::create().await;
    mysql_connection(
        &app,
        &admin,
        "reviewed",
        &target.url(),
        json!({ "command_review": true, "reviewer_groups": ["dba"] }),
    )
    .await;

    // The client's own statements at connect are held like any other: approve them as they come.
    let client = mariadb(&address, &alice, "reviewed")
        .args([
            "-e",
            "SELECT 'approved' AS x; CREATE TABLE never_made (id INT)",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let review = pending_review(&app, &rita, "SELECT 'approved' AS x").await;
    decide(&app, &rita, &review, "approve", "fine").await;
    let review = pending_review(&app, &rita, "CREATE TABLE never_made (id INT)").await;
    decide(&app, &rita, &review, "reject", "not today").await;
    let output = client.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "approved\n",
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "ERROR 1227 (42000) at line 1: the statement was rejected by rita (not today)"
        ),
        "{stderr}"
    );

    // A prepared statement is reviewed with its parameters, and runs once approved.
    let options = sqlx_options(&address, &alice, "reviewed");
    let reviewing = async {
        loop {
            // sqlx's own statements at connect (SET …) come first.
            let page: serde_json::Value = app.get_json(&rita, "/api/reviews?state=pending").await;
            for review in page["items"].as_array().unwrap() {
                decide(&app, &rita, review, "approve", "ok").await;
                if review["input"] == "SELECT ? * 2 AS doubled\n-- parameters: ?1 = 21" {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let running = async {
        let mut connection = sqlx::MySqlConnection::connect_with(&options).await.unwrap();
        let doubled: i64 = sqlx::query_scalar("SELECT ? * 2 AS doubled")
            .bind(21_i64)
            .fetch_one(&mut connection)
            .await
            .unwrap();
        connection.close().await.unwrap();
        doubled
    };
    let ((), doubled) = tokio::join!(reviewing, running);
    assert_eq!(doubled, 42);

    // Ctrl-C while a statement waits: its review is withdrawn, the client told.
    let child = mariadb(&address, &alice, "reviewed")
        .args(["-e", "SELECT 'waiting' AS x"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let review = pending_review(&app, &rita, "SELECT 'waiting' AS x").await;
    let output = ctrl_c(child, "the client ends once its statement is withdrawn").await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("the client cancelled the statement"),
        "{stderr}"
    );
    let id = review["id"].as_str().unwrap();
    let withdrawn: serde_json::Value = app.get_json(&rita, &format!("/api/reviews/{id}")).await;
    assert_eq!(withdrawn["state"], "cancelled", "{withdrawn}");
    target.drop_database().await;
}

#[tokio::test]
async fn tls_is_offered_with_a_certificate_clients_verify_and_required_off_loopback() {
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_path_buf();
    let port = free_address().rsplit_once(':').unwrap().1.to_owned();
    let bind = format!("0.0.0.0:{port}");
    let app = TestApp::spawn_with(move |config| {
        config.mysql_bind = Some(bind);
        config.data_dir = data_dir;
    })
    .await;
    let admin = app.admin().await;
    let alice = app.user("alice", Role::User).await;
    let target = Target::create().await;
    mysql_connection(&app, &admin, "maria", &target.url(), json!({})).await;
    let certificate = data.path().join("wire-tls.crt");

    let verified = mariadb(&format!("127.0.0.1:{port}"), &alice, "maria")
        .arg("--ssl")
        .arg(format!("--ssl-ca={}", certificate.display()))
        .args(["--ssl-verify-server-cert", "-e", "status"])
        .output()
        .await
        .unwrap();
    let said = String::from_utf8_lossy(&verified.stdout);
    assert!(
        said.contains("Cipher in use is TLS_"),
        "{said} {verified:?}"
    );

    let outside = format!("{}:{port}", outside_address());
    let clear = mariadb(&outside, &alice, "maria")
        .args(["--skip-ssl", "-e", "SELECT 1"])
        .output()
        .await
        .unwrap();
    assert!(
        String::from_utf8_lossy(&clear.stderr).contains("ERROR 3159 (HY000)"),
        "{clear:?}"
    );
    let encrypted = mariadb(&outside, &alice, "maria")
        .args(["--ssl", "-e", "SELECT 'over tls'"])
        .output()
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&encrypted.stdout),
        "over tls\n",
        "{encrypted:?}"
    );
    target.drop_database().await;
}

#[tokio::test]
async fn a_client_that_vanishes_mid_result_ends_its_session_and_nothing_else() {
    use futures_util::TryStreamExt;
    let (app, address) = gateway_app().await;
    let admin = app.admin().await;
    let alice = app.user("alice", Role::User).await;
    let target = Target::create().await;
    mysql_connection(&app, &admin, "maria", &target.url(), json!({})).await;
    let options = sqlx_options(&address, &alice, "maria");
    let mut connection = sqlx::MySqlConnection::connect_with(&options).await.unwrap();
    {
        let mut rows = sqlx::query("SELECT seq, REPEAT('x', 100) FROM seq_1_to_5000000")
            .fetch(&mut connection);
        for _ in 0..100 {
            rows.try_next().await.unwrap().expect("a row");
        }
    }
    // Gone without COM_QUIT: the socket just closes.
    drop(connection);

    let (session, events) = recorded(&app, &alice).await;
    assert!(session.status.is_final(), "{session:?}");
    assert!(
        events.iter().any(|event| event
            .text
            .as_deref()
            .is_some_and(|text| text.starts_with("SELECT seq"))),
        "{events:?}"
    );
    assert_eq!(app.get("/healthz").await.status(), 200);
    let output = mariadb(&address, &alice, "maria")
        .args(["-e", "SELECT 'still here'"])
        .output()
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout), "still here\n");
    target.drop_database().await;
}

#[tokio::test]
async fn a_target_account_with_a_password_is_logged_in_to_by_the_method_the_target_asks_for() {
    let (app, address) = gateway_app().await;
    let admin = app.admin().await;
    let alice = app.user("alice", Role::User).await;
    let target = Target::create().await;
    // An account of the test's own with a password (MariaDB's mysql_native_password), allowed
    // into the test's database only.
    let account = format!(
        "loupe_u_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let password = "pw-Kestrel-basalt-42";
    let mut server = MySqlConnectOptions::from_str(MARIADB_URL)
        .unwrap()
        .connect()
        .await
        .unwrap();
    for statement in [
        format!("CREATE USER '{account}'@'%' IDENTIFIED BY '{password}'"),
        format!("CREATE USER '{account}'@'localhost' IDENTIFIED BY '{password}'"),
        format!("GRANT ALL ON {}.* TO '{account}'@'%'", target.name),
        format!("GRANT ALL ON {}.* TO '{account}'@'localhost'", target.name),
    ] {
        server.execute(statement.as_str()).await.unwrap();
    }
    let url = format!(
        "mysql://{account}:{password}@127.0.0.1:3306/{}",
        target.name
    );
    mysql_connection(&app, &admin, "with-password", &url, json!({})).await;
    let wrong = format!(
        "mysql://{account}:not-{password}@127.0.0.1:3306/{}",
        target.name
    );
    let wrong = app
        .create_connection(
            &admin,
            json!({ "name": "wrong-password", "kind": "mysql", "url": wrong }),
        )
        .await;

    let options = sqlx_options(&address, &alice, "with-password");
    let mut connection = sqlx::MySqlConnection::connect_with(&options).await.unwrap();
    let user: String = sqlx::query_scalar("SELECT CURRENT_USER()")
        .fetch_one(&mut connection)
        .await
        .unwrap();
    assert!(user.starts_with(&format!("{account}@")), "{user}");
    let plugin: String =
        sqlx::query_scalar("SELECT CAST(plugin AS CHAR) FROM mysql.user WHERE user = ? LIMIT 1")
            .bind(&account)
            .fetch_one(&mut server)
            .await
            .unwrap();
    assert_eq!(
        plugin, "mysql_native_password",
        "the method the target asked for"
    );
    connection.close().await.unwrap();

    let refused =
        sqlx::MySqlConnection::connect_with(&sqlx_options(&address, &alice, "wrong-password"))
            .await
            .expect_err("the target refuses a wrong password");
    // The client is not told the target's reason (it names the stored account); the
    // administrator's Test of the connection is.
    let message = refused.to_string();
    assert!(
        message.contains("cannot connect to the target of wrong-password"),
        "{message}"
    );
    assert!(!message.contains(&account), "{message}");
    let check = app.test_connection(&admin, &wrong.id).await;
    assert!(!check.ok, "{}", check.message);
    assert!(
        check.message.contains("Access denied"),
        "the target's own words: {}",
        check.message
    );

    for statement in [
        format!("DROP USER '{account}'@'%'"),
        format!("DROP USER '{account}'@'localhost'"),
    ] {
        server.execute(statement.as_str()).await.unwrap();
    }
    target.drop_database().await;
}

#[tokio::test]
async fn targets_are_reached_over_tls_as_their_url_says() {
    // `tls_user` may log in to this MariaDB only over TLS; its certificate names `localhost`
    // and comes from an authority of the test's own.
    let target = TlsMariadb::start();
    let (app, address) = gateway_app().await;
    let admin = app.admin().await;
    let alice = app.user("alice", Role::User).await;
    let ca = target.ca_file().display().to_string();
    let url = |host: &str, query: &str| {
        format!(
            "mysql://tls_user:{TLS_PASSWORD}@{host}:{}/mysql?{query}",
            target.port
        )
    };

    // Every mode short of DISABLED reaches it inside TLS, as the target itself reports; the
    // Run page's path reads the URL the same way (the administrator's Test passes).
    for (name, host, query) in [
        ("preferred", "127.0.0.1", String::new()),
        ("required", "127.0.0.1", "ssl-mode=REQUIRED".to_owned()),
        (
            "verify-ca",
            "localhost",
            format!("ssl-mode=VERIFY_CA&ssl-ca={ca}"),
        ),
        (
            "verify-identity",
            "localhost",
            format!("ssl-mode=VERIFY_IDENTITY&ssl-ca={ca}"),
        ),
    ] {
        let connection = app
            .create_connection(
                &admin,
                json!({ "name": name, "kind": "mysql", "url": url(host, &query) }),
            )
            .await;
        let output = mariadb(&address, &alice, name)
            .args([
                "-e",
                "SELECT CURRENT_USER(), VARIABLE_VALUE LIKE 'TLSv1.%' FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'SSL_VERSION'",
            ])
            .output()
            .await
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            "tls_user@%\t1\n",
            "{name}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let check = app.test_connection(&admin, &connection.id).await;
        assert!(check.ok, "{name}: {}", check.message);
    }

    // Ctrl-C: Loupe's `KILL QUERY` reaches the target the way the login went.
    let child = mariadb(&address, &alice, "verify-identity")
        .args(["-e", "SELECT SLEEP(30)"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let running = running_session(&app, &alice, "SELECT SLEEP(30)").await;
    ctrl_c(child, "the client ends once its statement is killed").await;
    let events = app.events(&alice, &running).await;
    assert!(
        events.iter().any(|event| event.kind == EventKind::Note
            && event.summary == "KILL QUERY by alice from 127.0.0.1"),
        "{events:?}"
    );

    // Not reached: in clear text (the account requires TLS), with a certificate that does not
    // name the URL's host, or from an authority nobody trusts. The client is told only that
    // the target cannot be reached; the administrator's Test says why.
    for (name, host, query, why) in [
        (
            "clear",
            "127.0.0.1",
            "ssl-mode=DISABLED".to_owned(),
            "Access denied",
        ),
        (
            "wrong-name",
            "127.0.0.1",
            format!("ssl-mode=VERIFY_IDENTITY&ssl-ca={ca}"),
            "127.0.0.1",
        ),
        (
            "unknown-issuer",
            "localhost",
            "ssl-mode=VERIFY_IDENTITY".to_owned(),
            "UnknownIssuer",
        ),
    ] {
        let connection = app
            .create_connection(
                &admin,
                json!({ "name": name, "kind": "mysql", "url": url(host, &query) }),
            )
            .await;
        let output = mariadb(&address, &alice, name)
            .args(["-e", "SELECT 1"])
            .output()
            .await
            .unwrap();
        assert_target_unreachable(&app, &admin, &connection.id, name, &output, why).await;
    }

    // PostgreSQL's spelling of a mode, which the Run page's driver does not take for MySQL, is
    // refused when the connection is saved, naming the field.
    let libpq_spelling = json!({ "name": "libpq-spelling", "kind": "mysql", "url": url("localhost", "ssl-mode=require") });
    assert_url_refused(&app, &admin, libpq_spelling, "require").await;
}
