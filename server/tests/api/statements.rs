//! Statement boundaries follow each target's own lexical rules, and every result set is its own
//! result, never merged into another (the faithful-record issue's first kind), on real
//! PostgreSQL and MariaDB servers.

use std::str::FromStr;

use loupe_protocol::{EventKind, Role, RowsWindow, Session};
use reqwest::Method;
use serde_json::json;
use sqlx::{ConnectOptions, Executor, mysql::MySqlConnectOptions, postgres::PgConnectOptions};

use crate::helpers::{TestApp, TestUser};

async fn run_to_end(app: &TestApp, who: &TestUser, connection: &str, input: &str) -> Session {
    let started = app.run(who, connection, input).await;
    app.ended(who, &started.id).await
}

/// Each result event's column names and rows, in order.
async fn results(app: &TestApp, who: &TestUser, id: &str) -> Vec<(Vec<String>, serde_json::Value)> {
    let mut found = Vec::new();
    for event in app.events(who, id).await {
        if event.kind == EventKind::Result {
            let window: RowsWindow = app
                .call(
                    Method::GET,
                    &format!("/api/sessions/{id}/events/{}/rows", event.seq),
                    Some(who),
                    None,
                )
                .await
                .json()
                .await
                .unwrap();
            let names = window
                .columns
                .iter()
                .map(|column| column.name.clone())
                .collect();
            found.push((names, serde_json::to_value(window.rows).unwrap()));
        }
    }
    found
}

async fn inputs(app: &TestApp, who: &TestUser, id: &str) -> Vec<String> {
    app.events(who, id)
        .await
        .into_iter()
        .filter(|event| event.kind == EventKind::Input)
        .filter_map(|event| event.text)
        .collect()
}

#[tokio::test]
async fn postgres_statements_split_by_postgres_rules() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let alice = app.user("alice", Role::User).await;
    let server = std::env::var("LOUPE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let options = PgConnectOptions::from_str(&server).unwrap();
    let created = app
        .call(
            Method::POST,
            "/api/connections",
            Some(&admin),
            Some(json!({ "name": "pg", "kind": "postgres", "url": options.to_url_lossy().to_string() })),
        )
        .await;
    assert_eq!(created.status(), 201);

    let session = run_to_end(&app, &alice, "pg", r"SELECT 'C:\' AS path; SELECT 2 AS y").await;
    assert_eq!(
        inputs(&app, &alice, &session.id).await,
        [r"SELECT 'C:\' AS path", "SELECT 2 AS y"]
    );
    assert_eq!(
        results(&app, &alice, &session.id).await,
        [
            (vec!["path".to_owned()], json!([[r"C:\"]])),
            (vec!["y".to_owned()], json!([[2]]))
        ]
    );

    let nested = "/* outer /* inner */ still; comment */ SELECT 1 AS x; SELECT 2 AS y";
    let session = run_to_end(&app, &alice, "pg", nested).await;
    assert_eq!(session.error, None, "{session:?}");
    assert_eq!(inputs(&app, &alice, &session.id).await.len(), 2);

    let escaped = r"SELECT E'it\'s; one' AS e; SELECT $q$a;b$q$ AS d";
    let session = run_to_end(&app, &alice, "pg", escaped).await;
    assert_eq!(
        results(&app, &alice, &session.id).await,
        [
            (vec!["e".to_owned()], json!([["it's; one"]])),
            (vec!["d".to_owned()], json!([["a;b"]]))
        ]
    );
}

#[tokio::test]
async fn mariadb_statements_split_by_mysql_rules_and_each_result_set_stands_alone() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let alice = app.user("alice", Role::User).await;
    let name = format!("loupe_target_{}", uuid::Uuid::new_v4().simple());
    let server = MySqlConnectOptions::from_str("mysql://root@127.0.0.1:3306").unwrap();
    server
        .connect()
        .await
        .expect("MariaDB answers on 127.0.0.1:3306")
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap();
    let mut setup = server.clone().database(&name).connect().await.unwrap();
    setup
        .execute("CREATE PROCEDURE two() BEGIN SELECT 1 AS a; SELECT 'x' AS b, 2 AS c; END")
        .await
        .unwrap();
    let created = app
        .call(
            Method::POST,
            "/api/connections",
            Some(&admin),
            Some(json!({ "name": "maria", "kind": "mysql", "url": format!("mysql://root@127.0.0.1:3306/{name}") })),
        )
        .await;
    assert_eq!(created.status(), 201);

    let script = "SELECT 'it\\'s; fine' AS a # not; a statement\n; SELECT \"q\"\"; \" AS b";
    let session = run_to_end(&app, &alice, "maria", script).await;
    assert_eq!(
        inputs(&app, &alice, &session.id).await.len(),
        2,
        "{session:?}"
    );
    assert_eq!(
        results(&app, &alice, &session.id).await,
        [
            (vec!["a".to_owned()], json!([["it's; fine"]])),
            (vec!["b".to_owned()], json!([["q\"; "]]))
        ]
    );

    // One statement, two result sets: two results, each with its own columns.
    let session = run_to_end(&app, &alice, "maria", "CALL two()").await;
    assert_eq!(
        results(&app, &alice, &session.id).await,
        [
            (vec!["a".to_owned()], json!([[1]])),
            (vec!["b".to_owned(), "c".to_owned()], json!([["x", 2]]))
        ]
    );

    setup
        .execute(format!("DROP DATABASE {name}").as_str())
        .await
        .unwrap();
}
