//! Result values as the database wrote them, and result windows bounded in bytes (the
//! faithful-record issue's kinds 4 and 5), against real PostgreSQL, MariaDB and SQLite targets.

use std::str::FromStr;

use loupe_protocol::{Column, ErrorBody, EventKind, Role, RowsWindow};
use reqwest::{Method, header};
use serde_json::{Value, json};
use sqlx::{ConnectOptions, mysql::MySqlConnectOptions, postgres::PgConnectOptions};

use crate::helpers::{TestApp, TestUser};

const MARIADB_URL: &str = "mysql://root@127.0.0.1:3306";

fn postgres_url() -> String {
    let server = std::env::var("LOUPE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    PgConnectOptions::from_str(&server)
        .unwrap()
        .to_url_lossy()
        .to_string()
}

/// Runs `input` and answers the first result event's seq.
async fn first_result(
    app: &TestApp,
    who: &TestUser,
    connection: &str,
    input: &str,
) -> (String, u64) {
    let started = app.run(who, connection, input).await;
    let session = app.ended(who, &started.id).await;
    let events = app.events(who, &session.id).await;
    let seq = events
        .iter()
        .find(|event| event.kind == EventKind::Result)
        .unwrap_or_else(|| panic!("a result for {input}: {session:?} {events:?}"))
        .seq;
    (session.id, seq)
}

async fn window(
    app: &TestApp,
    who: &TestUser,
    id: &str,
    seq: u64,
    query: &str,
) -> (usize, RowsWindow) {
    let response = app
        .call(
            Method::GET,
            &format!("/api/sessions/{id}/events/{seq}/rows?{query}"),
            Some(who),
            None,
        )
        .await;
    assert_eq!(response.status(), 200);
    let body = response.bytes().await.unwrap();
    (body.len(), serde_json::from_slice(&body).unwrap())
}

/// The values of the first row by column name, as JSON, and the columns' types.
async fn first_row(
    app: &TestApp,
    who: &TestUser,
    connection: &str,
    input: &str,
) -> (Value, Vec<Column>, String) {
    let (id, seq) = first_result(app, who, connection, input).await;
    let (_, window) = window(app, who, &id, seq, "").await;
    let row: serde_json::Map<String, Value> = window
        .columns
        .iter()
        .zip(&window.rows[0])
        .map(|(column, cell)| (column.name.clone(), serde_json::to_value(cell).unwrap()))
        .collect();
    let csv = app
        .call(
            Method::GET,
            &format!("/api/sessions/{id}/download?format=csv&event={seq}"),
            Some(who),
            None,
        )
        .await
        .text()
        .await
        .unwrap();
    (Value::Object(row), window.columns, csv)
}

#[tokio::test]
async fn postgres_values_keep_postgres_text_form() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let alice = app.user("alice", Role::User).await;
    app.create_connection(
        &admin,
        json!({ "name": "pg", "kind": "postgres", "url": postgres_url() }),
    )
    .await;
    let query = r#"SELECT 1e300::float8 AS big, '-0'::float8 AS negzero, 1.5::float8 AS f,
        0.10::numeric AS n, 123456789012345678901234567890.000001::numeric AS wide,
        B'1011'::bit(4) AS bits, '\xdeadbeef'::bytea AS bytes, '2024-02-29'::date AS d,
        '1 year 2 mons 3 days 04:05:06.789'::interval AS i, ARRAY[1, NULL, 3] AS arr,
        '{"a": [1, 2.50]}'::jsonb AS j, 9223372036854775807::int8 AS maxint, 42::int4 AS small,
        true AS yes, NULL::text AS nothing, 'NaN'::float8 AS nan"#;
    let (row, columns, csv) = first_row(&app, &alice, "pg", query).await;
    assert_eq!(
        row,
        json!({
            "big": "1e+300", "negzero": -0.0, "f": 1.5, "n": "0.10",
            "wide": "123456789012345678901234567890.000001", "bits": "1011",
            "bytes": "\\xdeadbeef", "d": "2024-02-29", "i": "1 year 2 mons 3 days 04:05:06.789",
            "arr": "{1,NULL,3}", "j": "{\"a\": [1, 2.50]}", "maxint": "9223372036854775807",
            "small": 42, "yes": true, "nothing": null, "nan": "NaN"
        })
    );
    let types: Vec<&str> = columns
        .iter()
        .map(|column| column.type_name.as_str())
        .collect();
    assert_eq!(&types[..4], ["FLOAT8", "FLOAT8", "FLOAT8", "NUMERIC"]);
    let record = csv.lines().nth(1).unwrap();
    assert!(
        record.starts_with(r#"1e+300,-0,1.5,0.10,123456789012345678901234567890.000001,1011,\xdeadbeef,2024-02-29,1 year 2 mons 3 days 04:05:06.789,"{1,NULL,3}","{""a"": [1, 2.50]}",9223372036854775807,42,true,,NaN"#),
        "{record}"
    );
}

#[tokio::test]
async fn mariadb_values_keep_mariadb_text_form() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let alice = app.user("alice", Role::User).await;
    MySqlConnectOptions::from_str(MARIADB_URL)
        .unwrap()
        .connect()
        .await
        .expect("MariaDB answers on 127.0.0.1:3306");
    app.create_connection(
        &admin,
        json!({ "name": "maria", "kind": "mysql", "url": MARIADB_URL }),
    )
    .await;
    let query = "SELECT 1e300 AS big, CAST(0.10 AS DECIMAL(5,2)) AS n, x'DEADBEEF' AS bytes, \
                 DATE '2024-02-29' AS d, 18446744073709551615 AS umax, 42 AS small, 2.5e0 AS f";
    let (row, _, _) = first_row(&app, &alice, "maria", query).await;
    assert_eq!(
        row,
        json!({
            "big": "1e300", "n": "0.10", "bytes": "0xdeadbeef", "d": "2024-02-29",
            "umax": "18446744073709551615", "small": 42, "f": 2.5
        })
    );
}

#[tokio::test]
async fn sqlite_values_are_typed_by_their_values_and_printed_as_sqlite_prints_them() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let alice = app.user("alice", Role::User).await;
    let folder = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        folder.path().join("target.db").display()
    );
    app.create_connection(
        &admin,
        json!({ "name": "lite", "kind": "sqlite", "url": url }),
    )
    .await;
    let query = "select 7 as seven, 1.0 as one, 1e300 as big, 2.5 as half, x'00ff' as b, \
                 9007199254740993 as wide, 'text' as t, null as absent";
    let (row, columns, _) = first_row(&app, &alice, "lite", query).await;
    assert_eq!(
        row,
        json!({
            "seven": 7, "one": "1.0", "big": "1.0e+300", "half": 2.5, "b": "x'00ff'",
            "wide": "9007199254740993", "t": "text", "absent": null
        })
    );
    let types: Vec<&str> = columns
        .iter()
        .map(|column| column.type_name.as_str())
        .collect();
    assert_eq!(
        types,
        [
            "INTEGER", "REAL", "REAL", "REAL", "BLOB", "INTEGER", "TEXT", "NULL"
        ]
    );
}

#[tokio::test]
async fn result_windows_are_bounded_in_bytes_and_cut_cells_can_be_read_whole() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let alice = app.user("alice", Role::User).await;
    let bob = app.user("bob", Role::User).await;
    app.create_connection(
        &admin,
        json!({ "name": "pg", "kind": "postgres", "url": postgres_url() }),
    )
    .await;
    let big = 3 * 1024 * 1024;
    let query = format!("SELECT g, repeat('x', {big}) || 'é' AS big FROM generate_series(1, 20) g");
    let (id, seq) = first_result(&app, &alice, "pg", &query).await;

    // The page's default: every big cell cut at 4 KiB, all twenty rows in a small response.
    let (bytes, page) = window(&app, &alice, &id, seq, "").await;
    assert_eq!((page.total, page.rows.len()), (20, 20));
    assert!(
        bytes < 200 * 1024,
        "a window of cut cells is small: {bytes} bytes"
    );
    assert_eq!(page.cut.len(), 20);
    for (row, cut) in page.cut.iter().enumerate() {
        assert_eq!(
            (cut.row, cut.column, cut.bytes),
            (row as u64, 1, big as u64 + 2)
        );
        assert_eq!(
            serde_json::to_value(&page.rows[row][1]).unwrap(),
            json!("x".repeat(4096))
        );
    }

    // Asking for whole cells still gets a window bounded in bytes: fewer rows, each cut at its
    // share of the bound; walking the windows reaches every row exactly once.
    let (mut offset, mut windows) = (0, 0);
    while offset < 20 {
        let (bytes, part) = window(
            &app,
            &alice,
            &id,
            seq,
            &format!("offset={offset}&cell_bytes=1048576"),
        )
        .await;
        assert!(bytes <= 1024 * 1024 + 4096, "{bytes} bytes");
        assert_eq!(part.offset, offset);
        assert!(!part.rows.is_empty());
        assert!(
            part.cut
                .iter()
                .all(|cut| cut.bytes == big as u64 + 2 && cut.column == 1)
        );
        offset += part.rows.len() as u64;
        windows += 1;
    }
    assert_eq!((offset, windows), (20, 20));

    // The whole value, exactly, as text.
    let whole = app
        .call(
            Method::GET,
            &format!("/api/sessions/{id}/events/{seq}/rows/19/cells/1"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(whole.status(), 200);
    assert!(
        whole.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = whole.text().await.unwrap();
    assert_eq!(text.len(), big + 2);
    assert!(text.starts_with("xxx") && text.ends_with("xé"));
    let number = app
        .call(
            Method::GET,
            &format!("/api/sessions/{id}/events/{seq}/rows/4/cells/0"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(number.text().await.unwrap(), "5");

    // Wrong addresses and bounds are clear errors; other people's sessions do not exist.
    for (path, status) in [
        (
            format!("/api/sessions/{id}/events/{seq}/rows/20/cells/0"),
            404,
        ),
        (
            format!("/api/sessions/{id}/events/{seq}/rows/0/cells/2"),
            404,
        ),
        (format!("/api/sessions/{id}/events/1/rows/0/cells/0"), 400),
        (
            format!("/api/sessions/{id}/events/{seq}/rows/x/cells/0"),
            400,
        ),
    ] {
        let response = app.call(Method::GET, &path, Some(&alice), None).await;
        assert_eq!(response.status(), status, "{path}");
        let body: ErrorBody = response.json().await.unwrap();
        assert!(!body.message.is_empty());
    }
    for cell_bytes in ["8", "2000000", "x"] {
        let response = app
            .call(
                Method::GET,
                &format!("/api/sessions/{id}/events/{seq}/rows?cell_bytes={cell_bytes}"),
                Some(&alice),
                None,
            )
            .await;
        assert_eq!(response.status(), 400, "cell_bytes={cell_bytes}");
        let body: ErrorBody = response.json().await.unwrap();
        assert_eq!(body.field.as_deref(), Some("cell_bytes"));
    }
    let hidden = app
        .call(
            Method::GET,
            &format!("/api/sessions/{id}/events/{seq}/rows/0/cells/1"),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(hidden.status(), 404);
}
