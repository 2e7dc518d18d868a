//! Recording sessions through the ingest API and reading them back: the list, the activity log,
//! output and row windows, who sees what.

use loupe_protocol::{
    Cell, ErrorBody, EventKind, EventPage, OutputWindow, Role, RowsWindow, Session, SessionPage,
    SessionStatus, Share,
};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser};

async fn record(
    app: &TestApp,
    who: &TestUser,
    connection: &str,
    kind: &str,
    input: &str,
) -> String {
    let body = json!({ "connection": connection, "connection_kind": "postgres", "type": kind, "input": input });
    let response = app
        .call(Method::POST, "/api/ingest/sessions", Some(who), Some(body))
        .await;
    assert_eq!(response.status(), 201);
    response.json::<Session>().await.unwrap().id
}

async fn append(app: &TestApp, who: &TestUser, id: &str, events: Value) -> Vec<u64> {
    let response = app
        .call(
            Method::POST,
            &format!("/api/ingest/sessions/{id}/events"),
            Some(who),
            Some(json!({ "events": events })),
        )
        .await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let ack: Value = response.json().await.unwrap();
    ack["seqs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|seq| seq.as_u64().unwrap())
        .collect()
}

async fn get<T: serde::de::DeserializeOwned>(app: &TestApp, who: &TestUser, path: &str) -> T {
    let response = app.call(Method::GET, path, Some(who), None).await;
    assert_eq!(response.status(), 200, "GET {path}");
    response.json().await.unwrap()
}

async fn close(app: &TestApp, who: &TestUser, id: &str, status: &str) -> reqwest::Response {
    app.call(
        Method::POST,
        &format!("/api/ingest/sessions/{id}/close"),
        Some(who),
        Some(json!({ "status": status, "exit_code": 0 })),
    )
    .await
}

#[tokio::test]
async fn a_recorded_session_reads_back_event_by_event() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice", Role::User).await;
    let id = record(
        &app,
        &alice,
        "pg-prod",
        "database",
        "SELECT id, note FROM t;\nSELECT 1/0;",
    )
    .await;

    let seqs = append(&app, &alice, &id, json!([
        { "kind": "result", "columns": [{ "name": "id", "type_name": "int8" }, { "name": "note", "type_name": "text" }] },
    ])).await;
    let result = seqs[0];
    append(&app, &alice, &id, json!([
        { "kind": "rows", "seq": result, "rows": [[1, "NULL"], [2, null], [3, "tab\tand \"quotes\""]] },
        { "kind": "error", "message": "division by zero", "code": "22012" },
    ])).await;
    assert_eq!(close(&app, &alice, &id, "failed").await.status(), 200);

    let session: Session = get(&app, &alice, &format!("/api/sessions/{id}")).await;
    assert_eq!(session.status, SessionStatus::Failed);
    assert_eq!(session.summary, "SELECT id, note FROM t;…");
    assert_eq!((session.counts.events, session.counts.rows), (3, 3));
    assert!(session.ended_at.is_some() && session.duration_ms.is_some());

    let events: EventPage = get(&app, &alice, &format!("/api/sessions/{id}/events")).await;
    let kinds: Vec<_> = events.items.iter().map(|event| event.kind).collect();
    assert_eq!(
        kinds,
        [EventKind::Input, EventKind::Result, EventKind::Error]
    );
    assert_eq!(
        events.items[0].text.as_deref(),
        Some("SELECT id, note FROM t;\nSELECT 1/0;")
    );
    assert_eq!(events.items[2].code.as_deref(), Some("22012"));
    assert!(events.items.windows(2).all(|pair| pair[0].at <= pair[1].at));

    let rows: RowsWindow = get(
        &app,
        &alice,
        &format!("/api/sessions/{id}/events/{result}/rows?offset=0&limit=10"),
    )
    .await;
    assert_eq!(rows.total, 3);
    assert_eq!(rows.columns[1].name, "note");
    assert_eq!(
        rows.rows[0][1],
        Cell::Text("NULL".into()),
        "the text NULL stays text"
    );
    assert_eq!(rows.rows[1][1], Cell::Null, "a NULL stays NULL");
    assert_eq!(rows.rows[2][1], Cell::Text("tab\tand \"quotes\"".into()));
}

#[tokio::test]
async fn an_early_output_and_result_go_on_growing_after_hundreds_of_later_events() {
    // The recorder keeps the sizes of a session's latest events only (a relayed connection
    // makes one per statement); older ones grow from what the store holds.
    let app = TestApp::spawn().await;
    let alice = app.user("alice", Role::User).await;
    let id = record(&app, &alice, "pg-prod", "database", "SELECT 1").await;
    let seqs = append(
        &app,
        &alice,
        &id,
        json!([
            { "kind": "output", "stream": "stdout", "data": "early " },
            { "kind": "result", "columns": [{ "name": "n", "type_name": "int4" }] },
            { "kind": "rows", "seq": 3, "rows": [[1]] },
        ]),
    )
    .await;
    // The input is event 1; the rows went to the result just made.
    assert_eq!(seqs, [2, 3, 3]);
    let (output, result) = (seqs[0], seqs[1]);
    // Other outputs and results, each growing, in many requests (each its own commit).
    for round in 0..300 {
        let more = append(
            &app,
            &alice,
            &id,
            json!([
                { "kind": "output", "stream": "stdout", "data": format!("later {round}") },
                { "kind": "result", "columns": [{ "name": "m", "type_name": "int4" }] },
            ]),
        )
        .await;
        append(
            &app,
            &alice,
            &id,
            json!([{ "kind": "rows", "seq": more[1], "rows": [[round]] }]),
        )
        .await;
    }
    append(
        &app,
        &alice,
        &id,
        json!([
            { "kind": "output", "seq": output, "stream": "stdout", "data": "and late" },
            { "kind": "rows", "seq": result, "rows": [[2], [3]] },
        ]),
    )
    .await;
    assert_eq!(close(&app, &alice, &id, "done").await.status(), 200);

    assert_eq!(
        app.event_output(&alice, &id, output).await,
        "early and late"
    );
    let rows: RowsWindow = get(
        &app,
        &alice,
        &format!("/api/sessions/{id}/events/{result}/rows?offset=0&limit=10"),
    )
    .await;
    assert_eq!(rows.total, 3);
    assert_eq!(
        rows.rows,
        [[Cell::Int(1)], [Cell::Int(2)], [Cell::Int(3)]].map(Vec::from)
    );
    let events: EventPage = get(&app, &alice, &format!("/api/sessions/{id}/events")).await;
    let early = |seq: u64| events.items.iter().find(|event| event.seq == seq).unwrap();
    assert_eq!((early(output).bytes, early(result).rows), (14, 3));
    let session: Session = get(&app, &alice, &format!("/api/sessions/{id}")).await;
    assert_eq!(session.counts.rows, 3 + 300);
}

#[tokio::test]
async fn output_windows_return_exact_bytes_across_chunk_boundaries() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice", Role::User).await;
    let id = record(&app, &alice, "ops-box", "command", "seq 1 50000").await;
    // ~290 KB of lines, sent in pieces of awkward sizes so chunks and windows never line up.
    let text: String = (1..=50_000).map(|n| format!("{n}\n")).collect();
    let mut seq = None;
    for piece in text.as_bytes().chunks(70_001) {
        let mut path = format!("/api/ingest/sessions/{id}/output?stream=stdout");
        if let Some(seq) = seq {
            path.push_str(&format!("&seq={seq}"));
        }
        let response = app
            .client
            .post(app.url(&path))
            .bearer_auth(&alice.token)
            .body(piece.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let ack: Value = response.json().await.unwrap();
        seq = Some(ack["seqs"][0].as_u64().unwrap());
    }
    let seq = seq.unwrap();

    for (offset, length) in [
        (0, 10),
        (65_530, 20),
        (65_536, 1),
        (131_071, 70_000),
        (288_000, 1_000_000),
        (0, 1_048_576),
    ] {
        let window: OutputWindow = get(
            &app,
            &alice,
            &format!("/api/sessions/{id}/events/{seq}/output?offset={offset}&length={length}"),
        )
        .await;
        let expected_end = (offset + length).min(text.len());
        let joined: String = window
            .pieces
            .iter()
            .map(|piece| piece.text.as_str())
            .collect();
        assert_eq!(window.total, text.len() as u64);
        assert_eq!(
            window.length as usize,
            expected_end - offset,
            "window at {offset}"
        );
        assert_eq!(
            joined,
            text[offset..expected_end],
            "window at {offset}+{length}"
        );
    }
    let too_long = app
        .call(
            Method::GET,
            &format!("/api/sessions/{id}/events/{seq}/output?length=2000000"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(too_long.status(), 400);
    assert_eq!(
        too_long.json::<ErrorBody>().await.unwrap().field.as_deref(),
        Some("length")
    );
    let session: Session = get(&app, &alice, &format!("/api/sessions/{id}")).await;
    assert_eq!(session.counts.output_bytes, text.len() as u64);
}

#[tokio::test]
async fn stdout_and_stderr_keep_their_order_and_stream() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice", Role::User).await;
    let id = record(&app, &alice, "ops-box", "command", "make").await;
    let seq = append(
        &app,
        &alice,
        &id,
        json!([{ "kind": "output", "stream": "stdout", "data": "building\n" }]),
    )
    .await[0];
    append(&app, &alice, &id, json!([
        { "kind": "output", "seq": seq, "stream": "stderr", "data": "\u{1b}[31mwarning\u{1b}[0m\n" },
        { "kind": "output", "seq": seq, "stream": "stdout", "data": "done\n" },
        { "kind": "exit", "code": 3 },
    ])).await;

    let window: OutputWindow = get(
        &app,
        &alice,
        &format!("/api/sessions/{id}/events/{seq}/output"),
    )
    .await;
    let streams: Vec<_> = window
        .pieces
        .iter()
        .map(|piece| (piece.stream.as_str(), piece.text.as_str()))
        .collect();
    assert_eq!(
        streams,
        [
            ("stdout", "building\n"),
            ("stderr", "\u{1b}[31mwarning\u{1b}[0m\n"),
            ("stdout", "done\n")
        ]
    );
    let events: EventPage = get(&app, &alice, &format!("/api/sessions/{id}/events")).await;
    assert_eq!(events.items.last().unwrap().exit_code, Some(3));
}

#[tokio::test]
async fn the_list_filters_pages_and_counts() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let alice = app.user("alice", Role::User).await;
    let bob = app.user("bob", Role::User).await;
    let mut alices = Vec::new();
    for n in 0..7 {
        alices.push(record(&app, &alice, "pg-prod", "database", &format!("SELECT {n}")).await);
    }
    let bobs_command = record(&app, &bob, "ops-box", "command", "uptime").await;
    close(&app, &bob, &bobs_command, "done").await;

    let all: SessionPage = get(&app, &admin, "/api/sessions").await;
    assert_eq!(
        all.total.map(|count| (count.value, count.exact)),
        Some((8, true))
    );
    assert!(
        all.items
            .windows(2)
            .all(|pair| (pair[0].started_at, &pair[0].id) > (pair[1].started_at, &pair[1].id)),
        "newest first"
    );

    let by_user: SessionPage = get(&app, &admin, "/api/sessions?user=bob").await;
    assert_eq!(
        by_user
            .items
            .iter()
            .map(|s| s.id.as_str())
            .collect::<Vec<_>>(),
        [bobs_command.as_str()]
    );
    let by_type: SessionPage = get(
        &app,
        &admin,
        "/api/sessions?type=database&connection=pg-prod",
    )
    .await;
    assert_eq!(by_type.items.len(), 7);
    let by_status: SessionPage = get(&app, &admin, "/api/sessions?status=done,failed").await;
    assert_eq!(by_status.items.len(), 1);
    let prefix = &alices[3][..13];
    let by_id: SessionPage = get(&app, &admin, &format!("/api/sessions?id={prefix}")).await;
    assert!(by_id.items.iter().any(|s| s.id == alices[3]));
    let future: SessionPage = get(&app, &admin, "/api/sessions?from=2100-01-01T00:00:00Z").await;
    assert!(future.items.is_empty());

    // Walking the cursor visits every session once, in order.
    let mut seen = Vec::new();
    let mut path = "/api/sessions?limit=3".to_owned();
    loop {
        let page: SessionPage = get(&app, &admin, &path).await;
        seen.extend(page.items.into_iter().map(|s| s.id));
        match page.next_cursor {
            Some(cursor) => path = format!("/api/sessions?limit=3&cursor={cursor}"),
            None => break,
        }
    }
    let mut unique = seen.clone();
    unique.dedup();
    assert_eq!(seen.len(), 8);
    assert_eq!(unique, seen);

    for (query, field) in [
        ("status=finished", "status"),
        ("type=telnet", "type"),
        ("from=last-week", "from"),
        ("limit=500", "limit"),
        ("cursor=nonsense", "cursor"),
        ("id=xyz", "id"),
        ("colour=red", "colour"),
        ("from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", "to"),
    ] {
        let response = app
            .call(
                Method::GET,
                &format!("/api/sessions?{query}"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(response.status(), 400, "{query}");
        let error: ErrorBody = response.json().await.unwrap();
        assert_eq!(
            error.field.as_deref(),
            Some(field),
            "{query}: {}",
            error.message
        );
    }
}

#[tokio::test]
async fn users_see_their_own_and_what_is_shared_with_them() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let alice = app.user("alice", Role::User).await;
    let bob = app.user("bob", Role::User).await;
    let carol = app.user("carol", Role::User).await;
    let auditor = app.user("auditor", Role::Auditor).await;
    let secret = record(
        &app,
        &alice,
        "pg-prod",
        "database",
        "SELECT * FROM salaries",
    )
    .await;
    let path = format!("/api/sessions/{secret}");

    assert_eq!(
        app.call(Method::GET, &path, Some(&bob), None)
            .await
            .status(),
        404
    );
    let bobs_list: SessionPage = get(&app, &bob, "/api/sessions").await;
    assert!(bobs_list.items.is_empty());
    assert_eq!(
        app.call(Method::GET, &path, Some(&auditor), None)
            .await
            .status(),
        200
    );

    // Shared with bob directly, with a note.
    let shared = app
        .call(
            Method::POST,
            &format!("{path}/shares"),
            Some(&alice),
            Some(json!({ "users": [bob.id], "note": "please look" })),
        )
        .await;
    assert_eq!(shared.status(), 201);
    let share: Vec<Share> = shared.json().await.unwrap();
    assert_eq!(
        app.call(Method::GET, &path, Some(&bob), None)
            .await
            .status(),
        200
    );
    let bobs_list: SessionPage = get(&app, &bob, "/api/sessions").await;
    assert_eq!(bobs_list.items.len(), 1);
    // Bob can read it but not share it onwards.
    let onwards = app
        .call(
            Method::POST,
            &format!("{path}/shares"),
            Some(&bob),
            Some(json!({ "users": [carol.id] })),
        )
        .await;
    assert_eq!(onwards.status(), 403);

    // Shared with a group carol is in.
    let group: Value = app
        .call(
            Method::POST,
            "/api/groups",
            Some(&admin),
            Some(json!({ "name": "oncall" })),
        )
        .await
        .json()
        .await
        .unwrap();
    let group_id = group["id"].as_str().unwrap();
    app.call(
        Method::PUT,
        &format!("/api/groups/{group_id}/members/{}", carol.id),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(
        app.call(Method::GET, &path, Some(&carol), None)
            .await
            .status(),
        404
    );
    app.call(
        Method::POST,
        &format!("{path}/shares"),
        Some(&alice),
        Some(json!({ "groups": [group_id] })),
    )
    .await;
    assert_eq!(
        app.call(Method::GET, &path, Some(&carol), None)
            .await
            .status(),
        200
    );

    // Revoking bob's share takes it away again.
    let revoke = app
        .call(
            Method::DELETE,
            &format!("{path}/shares/{}", share[0].id),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(revoke.status(), 204);
    assert_eq!(
        app.call(Method::GET, &path, Some(&bob), None)
            .await
            .status(),
        404
    );

    let bad = app
        .call(
            Method::POST,
            &format!("{path}/shares"),
            Some(&alice),
            Some(json!({ "users": ["nobody"] })),
        )
        .await;
    assert_eq!(bad.status(), 400);
    assert_eq!(
        bad.json::<ErrorBody>().await.unwrap().field.as_deref(),
        Some("users")
    );
    let past = app
        .call(
            Method::POST,
            &format!("{path}/shares"),
            Some(&alice),
            Some(json!({ "users": [bob.id], "expires_at": "2020-01-01T00:00:00Z" })),
        )
        .await;
    assert_eq!(past.status(), 400);
}

#[tokio::test]
async fn ingest_refuses_what_cannot_be_recorded() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice", Role::User).await;
    let auditor = app.user("auditor", Role::Auditor).await;
    let id = record(&app, &alice, "pg-prod", "database", "SELECT 1").await;
    let input_seq = 1;

    let rows_on_input = app
        .call(
            Method::POST,
            &format!("/api/ingest/sessions/{id}/events"),
            Some(&alice),
            Some(json!({ "events": [{ "kind": "rows", "seq": input_seq, "rows": [[1]] }] })),
        )
        .await;
    assert_eq!(rows_on_input.status(), 400);
    assert_eq!(
        rows_on_input
            .json::<ErrorBody>()
            .await
            .unwrap()
            .field
            .as_deref(),
        Some("seq")
    );
    let unknown_kind = app
        .call(
            Method::POST,
            &format!("/api/ingest/sessions/{id}/events"),
            Some(&alice),
            Some(json!({ "events": [{ "kind": "telepathy" }] })),
        )
        .await;
    assert_eq!(unknown_kind.status(), 400);
    let as_auditor = app.call(Method::POST, "/api/ingest/sessions", Some(&auditor), Some(json!({ "connection": "x", "connection_kind": "y", "type": "database", "input": "" }))).await;
    assert_eq!(as_auditor.status(), 403);

    assert_eq!(close(&app, &alice, &id, "running").await.status(), 400);
    assert_eq!(close(&app, &alice, &id, "done").await.status(), 200);
    let after_close = app
        .call(
            Method::POST,
            &format!("/api/ingest/sessions/{id}/events"),
            Some(&alice),
            Some(json!({ "events": [{ "kind": "note", "text": "late" }] })),
        )
        .await;
    assert_eq!(after_close.status(), 409);

    // Nothing of the refused requests was recorded.
    let session: Session = get(&app, &alice, &format!("/api/sessions/{id}")).await;
    assert_eq!(session.counts.events, 1);
    assert_eq!(
        app.call(
            Method::GET,
            "/api/sessions/0192f1a2-0000-7000-8000-000000000000",
            Some(&alice),
            None
        )
        .await
        .status(),
        404
    );
}
