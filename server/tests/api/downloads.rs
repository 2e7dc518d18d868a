//! Downloads: what was recorded comes back exactly, in each format, whole or by range; with
//! DISABLE_SESSIONS_DOWNLOAD every path refuses.

use std::time::Duration;

use loupe_protocol::{AuditEvent, ErrorBody, ErrorCode, Page, Role, Session, Settings};
use reqwest::{Method, header};
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser};

async fn record_command(app: &TestApp, who: &TestUser) -> (String, Vec<u8>) {
    let created: Session = app
        .call(Method::POST, "/api/ingest/sessions", Some(who), Some(json!({ "connection": "ops box", "connection_kind": "ssh", "type": "ssh", "input": "build" })))
        .await
        .json()
        .await
        .unwrap();
    let id = created.id;
    let mut expected = Vec::new();
    let mut seq: Option<u64> = None;
    // Mixed streams, non-UTF-8 bytes, and pieces that do not line up with chunks.
    for n in 0..40u32 {
        let stream = if n % 5 == 4 { "stderr" } else { "stdout" };
        let mut piece: Vec<u8> = format!("line {n} ")
            .repeat(2000 + n as usize * 37)
            .into_bytes();
        piece.extend_from_slice(&[0xff, 0xfe, b'\n']);
        let mut url = format!("/api/ingest/sessions/{id}/output?stream={stream}");
        if let Some(seq) = seq {
            url.push_str(&format!("&seq={seq}"));
        }
        let ack: Value = app
            .client
            .post(app.url(&url))
            .bearer_auth(&who.token)
            .body(piece.clone())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        seq = Some(ack["seqs"][0].as_u64().unwrap());
        expected.extend(piece);
    }
    app.call(
        Method::POST,
        &format!("/api/ingest/sessions/{id}/close"),
        Some(who),
        Some(json!({ "status": "done", "exit_code": 0 })),
    )
    .await;
    (id, expected)
}

async fn download(
    app: &TestApp,
    who: &TestUser,
    path: &str,
    range: Option<&str>,
) -> reqwest::Response {
    let mut request = app.client.get(app.url(path)).bearer_auth(&who.token);
    if let Some(range) = range {
        request = request.header(header::RANGE, range);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn txt_is_the_output_byte_for_byte_and_ranges_are_exact() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice", Role::User).await;
    let (id, expected) = record_command(&app, &alice).await;
    let path = format!("/api/sessions/{id}/download?format=txt");

    let whole = download(&app, &alice, &path, None).await;
    assert_eq!(whole.status(), 200);
    assert_eq!(
        whole.headers()[header::CONTENT_LENGTH],
        expected.len().to_string().as_str()
    );
    let disposition = whole.headers()[header::CONTENT_DISPOSITION]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.starts_with(&format!("attachment; filename=\"ops_box-{id}-20"))
            && disposition.ends_with(".txt\""),
        "{disposition}"
    );
    assert!(
        whole.bytes().await.unwrap() == expected,
        "txt differs from what was recorded"
    );

    let slice = download(&app, &alice, &path, Some("bytes=100000-199999")).await;
    assert_eq!(slice.status(), 206);
    assert_eq!(
        slice.headers()[header::CONTENT_RANGE],
        format!("bytes 100000-199999/{}", expected.len()).as_str()
    );
    assert!(slice.bytes().await.unwrap() == expected[100_000..200_000]);
    let tail = download(&app, &alice, &path, Some("bytes=700000-")).await;
    assert!(tail.bytes().await.unwrap() == expected[700_000..]);
    let beyond = download(
        &app,
        &alice,
        &path,
        Some(&format!("bytes={}-", expected.len())),
    )
    .await;
    assert_eq!(beyond.status(), 416);
}

/// A small RFC 4180 reader: None for an empty unquoted field (NULL), Some for everything else.
fn parse_csv(text: &str) -> Vec<Vec<Option<String>>> {
    let (mut records, mut record, mut field) = (Vec::new(), Vec::new(), String::new());
    let (mut quoted, mut was_quoted) = (false, false);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => (quoted, was_quoted) = (true, true),
            (false, ',') => record.push(take(&mut field, &mut was_quoted)),
            (false, '\r') if chars.peek() == Some(&'\n') => {
                chars.next();
                record.push(take(&mut field, &mut was_quoted));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    records
}

fn take(field: &mut String, was_quoted: &mut bool) -> Option<String> {
    let value = (!field.is_empty() || *was_quoted).then(|| field.clone());
    field.clear();
    *was_quoted = false;
    value
}

#[tokio::test]
async fn csv_keeps_every_awkward_value_and_null_apart_from_empty() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice", Role::User).await;
    let created: Session = app
        .call(Method::POST, "/api/ingest/sessions", Some(&alice), Some(json!({ "connection": "pg", "connection_kind": "postgres", "type": "database", "input": "SELECT …" })))
        .await
        .json()
        .await
        .unwrap();
    let id = created.id;
    let ack: Value = app
        .call(Method::POST, &format!("/api/ingest/sessions/{id}/events"), Some(&alice), Some(json!({ "events": [
            { "kind": "result", "columns": [{ "name": "id", "type_name": "int8" }, { "name": "value", "type_name": "text" }] }
        ]})))
        .await
        .json()
        .await
        .unwrap();
    let seq = ack["seqs"][0].as_u64().unwrap();
    let awkward = [
        json!(null),
        json!(""),
        json!("NULL"),
        json!("a,b"),
        json!("say \"hi\""),
        json!("two\r\nlines"),
        json!(" padded "),
        json!("ünïcødé 🎉"),
        json!(1.5),
        json!(true),
    ];
    let rows: Vec<Value> = awkward
        .iter()
        .enumerate()
        .map(|(n, value)| json!([n, value]))
        .collect();
    app.call(
        Method::POST,
        &format!("/api/ingest/sessions/{id}/events"),
        Some(&alice),
        Some(json!({ "events": [{ "kind": "rows", "seq": seq, "rows": rows }] })),
    )
    .await;

    let response = download(
        &app,
        &alice,
        &format!("/api/sessions/{id}/download?format=csv&event={seq}"),
        None,
    )
    .await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let records = parse_csv(&response.text().await.unwrap());

    assert_eq!(records[0], [Some("id".into()), Some("value".into())]);
    let values: Vec<Option<String>> = records[1..]
        .iter()
        .map(|record| record[1].clone())
        .collect();
    let expected: Vec<Option<String>> = awkward
        .iter()
        .map(|value| match value {
            Value::Null => None,
            Value::String(text) => Some(text.clone()),
            other => Some(other.to_string()),
        })
        .collect();
    assert_eq!(values, expected);
    let not_a_result = download(
        &app,
        &alice,
        &format!("/api/sessions/{id}/download?format=csv&event=1"),
        None,
    )
    .await;
    assert_eq!(
        not_a_result
            .json::<ErrorBody>()
            .await
            .unwrap()
            .field
            .as_deref(),
        Some("event")
    );
}

#[tokio::test]
async fn a_large_result_set_downloads_whole_in_every_format_and_resumes_anywhere() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice", Role::User).await;
    let ingest = |path: String, body: Value| {
        let alice = &alice;
        let app = &app;
        async move {
            let response = app.call(Method::POST, &path, Some(alice), Some(body)).await;
            assert!(
                response.status().is_success(),
                "{path}: {}",
                response.status()
            );
            response.json::<Value>().await.unwrap()
        }
    };
    let created = ingest(
        "/api/ingest/sessions".into(),
        json!({ "connection": "ledger", "connection_kind": "postgres", "type": "database", "input": "SELECT * FROM payments" }),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let events = format!("/api/ingest/sessions/{id}/events");
    let ack = ingest(
        events.clone(),
        json!({ "events": [{ "kind": "result", "columns": [{ "name": "n", "type_name": "int8" }, { "name": "note", "type_name": "text" }] }] }),
    )
    .await;
    let seq = ack["seqs"][0].as_u64().unwrap();
    // Uneven appends, so stored pages start and end away from the renderer's windows.
    let total = 10_008u64;
    let note = |n: u64| match n % 3 {
        0 => Value::Null,
        1 => json!(format!("a, \"b\" {n}")),
        _ => json!(format!("row\t{n}")),
    };
    let mut first = 0;
    for size in [1, 2_999, 4_001, 7, 3_000] {
        let rows: Vec<Value> = (first..first + size).map(|n| json!([n, note(n)])).collect();
        ingest(
            events.clone(),
            json!({ "events": [{ "kind": "rows", "seq": seq, "rows": rows }] }),
        )
        .await;
        first += size;
    }
    assert_eq!(first, total);
    ingest(
        format!("/api/ingest/sessions/{id}/close"),
        json!({ "status": "done" }),
    )
    .await;
    let get = |format: &str, range: Option<&str>| {
        let path = format!("/api/sessions/{id}/download?format={format}");
        let (app, alice) = (&app, &alice);
        let range = range.map(str::to_owned);
        async move {
            let response = download(app, alice, &path, range.as_deref()).await;
            assert!(
                response.status().is_success(),
                "{path}: {}",
                response.status()
            );
            response.text().await.unwrap()
        }
    };

    let csv = get("csv", None).await;
    let records = parse_csv(&csv);
    assert_eq!(records.len() as u64, total + 1);
    for (n, record) in records[1..].iter().enumerate() {
        let n = n as u64;
        assert_eq!(record[0].as_deref(), Some(n.to_string().as_str()));
        assert_eq!(record[1], note(n).as_str().map(str::to_owned), "row {n}");
    }
    let jsonl = get("jsonl", None).await;
    let mut rows = Vec::new();
    for line in jsonl
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
    {
        if line["type"] == "rows" {
            assert_eq!(line["seq"].as_u64(), Some(seq));
            assert_eq!(line["offset"].as_u64(), Some(rows.len() as u64));
            rows.extend(line["rows"].as_array().unwrap().iter().cloned());
        }
    }
    let expected: Vec<Value> = (0..total).map(|n| json!([n, note(n)])).collect();
    assert_eq!(rows, expected);
    let txt = get("txt", None).await;
    assert_eq!(
        txt.lines().count() as u64,
        1 + 1 + total,
        "the statement, the header, the rows"
    );
    assert!(
        txt.contains("\n2\trow\\t2\n"),
        "tabs in a value are escaped"
    );
    // A resumed download is the rest of the whole, wherever it starts.
    for format in ["csv", "jsonl", "txt"] {
        let whole = get(format, None).await;
        for start in [1, whole.len() / 3, whole.len() - 5] {
            let rest = get(format, Some(&format!("bytes={start}-"))).await;
            assert!(
                rest.as_bytes() == &whole.as_bytes()[start..],
                "{format} from byte {start}"
            );
        }
    }
}

#[tokio::test]
async fn jsonl_carries_the_whole_log_and_rebuilds_the_output_exactly() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice", Role::User).await;
    let (id, expected) = record_command(&app, &alice).await;

    let text = download(
        &app,
        &alice,
        &format!("/api/sessions/{id}/download?format=jsonl"),
        None,
    )
    .await
    .text()
    .await
    .unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();

    let kinds: Vec<&str> = lines
        .iter()
        .filter(|line| line["type"] == "event")
        .map(|line| line["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["input", "output"]);
    assert_eq!(lines[0]["text"], "build");
    let mut rebuilt = Vec::new();
    let mut stderr_pieces = 0;
    for line in lines.iter().filter(|line| line["type"] == "output") {
        assert_eq!(line["offset"].as_u64().unwrap() as usize, rebuilt.len());
        assert!(line["at"].is_string());
        stderr_pieces += usize::from(line["stream"] == "stderr");
        match (line["text"].as_str(), line["base64"].as_str()) {
            (Some(text), None) => rebuilt.extend_from_slice(text.as_bytes()),
            (None, Some(encoded)) => rebuilt.extend(decode_base64(encoded)),
            other => panic!("an output line has {other:?}"),
        }
    }
    assert!(rebuilt == expected, "jsonl does not rebuild the output");
    assert!(stderr_pieces > 0);
}

fn decode_base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let mut out = Vec::new();
    for group in text.as_bytes().chunks(4) {
        let n = group
            .iter()
            .take_while(|&&c| c != b'=')
            .fold(0u32, |acc, &c| acc << 6 | u32::from(value(c)));
        let kept = group.iter().filter(|&&c| c != b'=').count();
        let n = n << (6 * (4 - kept));
        out.extend(&n.to_be_bytes()[1..kept]);
    }
    out
}

#[tokio::test]
async fn with_downloads_disabled_every_path_refuses_but_viewing_works() {
    let app = TestApp::spawn_with(|config| config.disable_sessions_download = true).await;
    let admin = app.admin().await;
    let alice = app.user("alice", Role::User).await;
    let (id, _) = record_command(&app, &alice).await;

    let settings: Settings = app.get("/api/settings").await.json().await.unwrap();
    assert!(settings.downloads_disabled);
    for who in [&alice, &admin] {
        for format in ["txt", "csv", "jsonl", "cast", "nonsense"] {
            let response = download(
                &app,
                who,
                &format!("/api/sessions/{id}/download?format={format}"),
                Some("bytes=0-"),
            )
            .await;
            assert_eq!(response.status(), 403, "{format}");
            let error: ErrorBody = response.json().await.unwrap();
            assert_eq!(error.code, ErrorCode::DownloadsDisabled);
            assert!(
                error.message.contains("administrator disabled"),
                "{}",
                error.message
            );
        }
    }
    let export = app
        .call(
            Method::GET,
            "/api/audit/export?format=csv",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(
        export.status(),
        403,
        "the audit trail's export is a download too"
    );
    let error: ErrorBody = export.json().await.unwrap();
    assert_eq!(error.code, ErrorCode::DownloadsDisabled);
    let output = app
        .call(
            Method::GET,
            &format!("/api/sessions/{id}/events/2/output"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(output.status(), 200, "paging in the browser keeps working");

    let folder = tempfile::tempdir().unwrap();
    let target = folder.path().join("out.txt");
    let cli = tokio::process::Command::new(env!("CARGO_BIN_EXE_loupe"))
        .args(["download", &id, "--format", "txt", "-o"])
        .arg(&target)
        .env("LOUPE_SERVER", &app.address)
        .env("LOUPE_TOKEN", &alice.token)
        .output()
        .await
        .unwrap();
    assert!(!cli.status.success());
    assert!(String::from_utf8_lossy(&cli.stderr).contains("administrator disabled"));
    assert!(!target.exists());
}

#[tokio::test]
async fn downloads_are_audited_with_what_was_sent() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let alice = app.user("alice", Role::User).await;
    let (id, expected) = record_command(&app, &alice).await;
    download(
        &app,
        &alice,
        &format!("/api/sessions/{id}/download?format=txt"),
        None,
    )
    .await
    .bytes()
    .await
    .unwrap();

    let mut found = None;
    for _ in 0..100 {
        let page: Page<AuditEvent> = app
            .call(
                Method::GET,
                "/api/audit?action=session.downloaded",
                Some(&admin),
                None,
            )
            .await
            .json()
            .await
            .unwrap();
        if let Some(event) = page.items.into_iter().next() {
            found = Some(event);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let event = found.expect("the download is in the audit trail");
    assert_eq!(event.actor.as_deref(), Some("alice"));
    assert_eq!(event.target, Some(format!("session:{id}")));
    assert_eq!(event.detail, Some(format!("txt, {} bytes", expected.len())));
}

#[tokio::test]
async fn the_cli_downloads_with_resume() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice", Role::User).await;
    let (id, expected) = record_command(&app, &alice).await;
    let folder = tempfile::tempdir().unwrap();
    let target = folder.path().join("build.txt");
    // An earlier attempt stopped after 12345 bytes.
    std::fs::write(folder.path().join("build.txt.part"), &expected[..12_345]).unwrap();

    let cli = tokio::process::Command::new(env!("CARGO_BIN_EXE_loupe"))
        .args(["download", &id, "--format", "txt", "--output"])
        .arg(&target)
        .env("LOUPE_SERVER", &app.address)
        .env("LOUPE_TOKEN", &alice.token)
        .output()
        .await
        .unwrap();

    let stderr = String::from_utf8_lossy(&cli.stderr);
    assert!(cli.status.success(), "{stderr}");
    assert!(stderr.contains("resuming at byte 12345"), "{stderr}");
    assert!(std::fs::read(&target).unwrap() == expected);
    assert!(!folder.path().join("build.txt.part").exists());
}

#[tokio::test]
async fn what_the_executors_recorded_downloads_exactly() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let alice = app.user("alice", Role::User).await;
    let folder = tempfile::tempdir().unwrap();
    let lite = json!({ "name": "lite", "kind": "sqlite", "url": format!("sqlite://{}?mode=rwc", folder.path().join("t.db").display()) });
    let seq = json!({ "name": "seq", "kind": "command", "command": { "argv": ["seq", "1"] } });
    for body in [lite, seq] {
        assert_eq!(
            app.call(Method::POST, "/api/connections", Some(&admin), Some(body))
                .await
                .status(),
            201
        );
    }
    let run = |connection: &'static str, input: &'static str| {
        let (app, alice) = (&app, &alice);
        async move {
            let session: Session = app
                .call(
                    Method::POST,
                    "/api/sessions",
                    Some(alice),
                    Some(json!({ "connection": connection, "input": input })),
                )
                .await
                .json()
                .await
                .unwrap();
            for _ in 0..1000 {
                let now: Session = app
                    .call(
                        Method::GET,
                        &format!("/api/sessions/{}", session.id),
                        Some(alice),
                        None,
                    )
                    .await
                    .json()
                    .await
                    .unwrap();
                if now.status.is_final() {
                    return now.id;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            panic!("the run did not end");
        }
    };

    let numbers = run("seq", "200000").await;
    let txt = download(
        &app,
        &alice,
        &format!("/api/sessions/{numbers}/download?format=txt"),
        None,
    )
    .await
    .text()
    .await
    .unwrap();
    let expected: String = (1..=200_000).map(|n| format!("{n}\n")).collect();
    assert!(txt == expected, "txt differs from seq's output");

    let query = run(
        "lite",
        "SELECT 1 AS id, NULL AS a, '' AS b, 'x,\"y\"' AS c, 'two' || char(10) || 'lines' AS d",
    )
    .await;
    let csv = download(
        &app,
        &alice,
        &format!("/api/sessions/{query}/download?format=csv"),
        None,
    )
    .await
    .text()
    .await
    .unwrap();
    let records = parse_csv(&csv);
    assert_eq!(
        records[0],
        ["id", "a", "b", "c", "d"].map(|name| Some(name.to_owned()))
    );
    assert_eq!(
        records[1],
        [
            Some("1".into()),
            None,
            Some(String::new()),
            Some("x,\"y\"".into()),
            Some("two\nlines".into())
        ]
    );
}
