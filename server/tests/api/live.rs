//! The live WebSocket, as a client sees it: catch-up without gaps, resync, refusals, the
//! sessions list, and two server processes relaying through PostgreSQL.

use std::{str::FromStr, time::Duration};

use futures_util::{SinkExt, StreamExt};
use loupe_protocol::{ErrorCode, EventKind, OutputWindow, Role, ServerMessage, Session};
use reqwest::Method;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

use crate::helpers::{TestApp, TestUser};

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub async fn connect(address: &str, token: &str) -> Socket {
    let mut request = format!("{}/api/live", address.replace("http://", "ws://"))
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    tokio_tungstenite::connect_async(request)
        .await
        .expect("the live socket opens")
        .0
}

pub async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::text(message.to_string()))
        .await
        .unwrap();
}

/// The next message from the server, within 10 s.
pub async fn next(socket: &mut Socket) -> ServerMessage {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a message in time")
            .unwrap()
            .unwrap();
        if let Message::Text(text) = message {
            let parsed: ServerMessage = serde_json::from_str(text.as_str()).unwrap();
            if parsed != ServerMessage::Heartbeat {
                return parsed;
            }
        }
    }
}

async fn record(
    app_address: &str,
    client: &reqwest::Client,
    who: &TestUser,
    input: &str,
) -> String {
    let created: Session = client
        .post(format!("{app_address}/api/ingest/sessions"))
        .bearer_auth(&who.token)
        .json(&json!({ "connection": "ops", "connection_kind": "ssh", "type": "ssh", "input": input }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    created.id
}

async fn append(
    address: &str,
    client: &reqwest::Client,
    who: &TestUser,
    id: &str,
    events: Value,
) -> Vec<u64> {
    let ack: Value = client
        .post(format!("{address}/api/ingest/sessions/{id}/events"))
        .bearer_auth(&who.token)
        .json(&json!({ "events": events }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    ack["seqs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|seq| seq.as_u64().unwrap())
        .collect()
}

async fn close(address: &str, client: &reqwest::Client, who: &TestUser, id: &str) {
    client
        .post(format!("{address}/api/ingest/sessions/{id}/close"))
        .bearer_auth(&who.token)
        .json(&json!({ "status": "done", "exit_code": 0 }))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_watcher_joining_mid_session_gets_every_event_once_in_order() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice", Role::User).await;
    let id = record(&app.address, &app.client, &alice, "tail -f app.log").await;
    let output_seq = append(
        &app.address,
        &app.client,
        &alice,
        &id,
        json!([{ "kind": "output", "stream": "stdout", "data": "line 0\n" }]),
    )
    .await[0];
    for n in 1..30 {
        append(&app.address, &app.client, &alice, &id, json!([{ "kind": "note", "text": format!("note {n}") }, { "kind": "output", "seq": output_seq, "stream": "stdout", "data": format!("line {n}\n") }])).await;
    }

    // The producer goes on while the watcher joins and catches up.
    let producer = {
        let (address, client, alice, id) = (
            app.address.clone(),
            app.client.clone(),
            alice.clone(),
            id.clone(),
        );
        tokio::spawn(async move {
            for n in 30..300 {
                append(&address, &client, &alice, &id, json!([{ "kind": "note", "text": format!("note {n}") }, { "kind": "output", "seq": output_seq, "stream": "stdout", "data": format!("line {n}\n") }])).await;
            }
            close(&address, &client, &alice, &id).await;
        })
    };
    let mut socket = connect(&app.address, &alice.token).await;
    send(
        &mut socket,
        json!({ "type": "watch_session", "id": "s1", "session": id, "after": 0 }),
    )
    .await;

    let mut seqs = Vec::new();
    let mut caught_up_bytes = None;
    let mut live_text = String::new();
    loop {
        match next(&mut socket).await {
            ServerMessage::Watching { id } => assert_eq!(id, "s1"),
            ServerMessage::Event { event, .. } => {
                if event.kind == EventKind::Output {
                    caught_up_bytes = Some(event.bytes);
                }
                seqs.push(event.seq);
            }
            ServerMessage::Output { seq, piece, .. } => {
                assert_eq!(seq, output_seq);
                assert_eq!(
                    piece.offset,
                    caught_up_bytes.unwrap() + live_text.len() as u64,
                    "no gap, no repeat"
                );
                live_text.push_str(&piece.text);
            }
            ServerMessage::Session { session, .. } if session.status.is_final() => break,
            ServerMessage::Session { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    producer.await.unwrap();

    let expected_seqs: Vec<u64> = (1..=seqs.len() as u64).collect();
    assert_eq!(seqs, expected_seqs, "every event exactly once, in order");
    assert_eq!(seqs.len(), 1 + 1 + 299, "input, output, and 299 notes");
    let caught_up = caught_up_bytes.unwrap();
    let window: OutputWindow = app
        .call(
            Method::GET,
            &format!("/api/sessions/{id}/events/{output_seq}/output?offset=0&length={caught_up}"),
            Some(&alice),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    let stored: String = window
        .pieces
        .iter()
        .map(|piece| piece.text.as_str())
        .collect();
    let expected: String = (0..300).map(|n| format!("line {n}\n")).collect();
    assert_eq!(format!("{stored}{live_text}"), expected);
}

#[tokio::test]
async fn a_watcher_that_falls_behind_is_told_to_resync() {
    let app = TestApp::spawn_with(|config| config.live_queue = 4).await;
    let alice = app.user("alice", Role::User).await;
    let id = record(&app.address, &app.client, &alice, "cat /dev/urandom").await;
    let output_seq = append(
        &app.address,
        &app.client,
        &alice,
        &id,
        json!([{ "kind": "output", "stream": "stdout", "data": "start\n" }]),
    )
    .await[0];
    let mut socket = connect(&app.address, &alice.token).await;
    send(
        &mut socket,
        json!({ "type": "watch_session", "id": "slow", "session": id, "after": 0 }),
    )
    .await;
    assert_eq!(
        next(&mut socket).await,
        ServerMessage::Watching { id: "slow".into() }
    );

    // The watcher stops reading while 20 MB of output is committed in 300 appends.
    let piece = "x".repeat(64 * 1024);
    for _ in 0..300 {
        append(
            &app.address,
            &app.client,
            &alice,
            &id,
            json!([{ "kind": "output", "seq": output_seq, "stream": "stdout", "data": piece }]),
        )
        .await;
    }
    let mut told = false;
    for _ in 0..400 {
        match next(&mut socket).await {
            ServerMessage::Resync { id, reason } => {
                assert_eq!(id, "slow");
                assert!(reason.contains("fell behind"));
                told = true;
                break;
            }
            ServerMessage::Event { .. }
            | ServerMessage::Output { .. }
            | ServerMessage::Session { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        told,
        "a slow watcher must be told to resync, never silently lose events"
    );
}

#[tokio::test]
async fn subscriptions_to_what_the_caller_may_not_see_are_refused() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice", Role::User).await;
    let bob = app.user("bob", Role::User).await;
    let id = record(&app.address, &app.client, &alice, "secret work").await;
    let mut socket = connect(&app.address, &bob.token).await;

    send(
        &mut socket,
        json!({ "type": "watch_session", "id": "peek", "session": id, "after": 0 }),
    )
    .await;
    match next(&mut socket).await {
        ServerMessage::Error { id, code, .. } => {
            assert_eq!((id.as_deref(), code), (Some("peek"), ErrorCode::NotFound))
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    socket.send(Message::text("{not json")).await.unwrap();
    assert!(matches!(
        next(&mut socket).await,
        ServerMessage::Error {
            code: ErrorCode::BadRequest,
            ..
        }
    ));
    send(&mut socket, json!({ "type": "ping", "nonce": 7 })).await;
    assert_eq!(
        next(&mut socket).await,
        ServerMessage::Pong { nonce: 7 },
        "the socket stays up"
    );

    // Bob's list shows his own new session, not Alice's.
    send(
        &mut socket,
        json!({ "type": "watch_sessions", "id": "list", "filter": {} }),
    )
    .await;
    assert_eq!(
        next(&mut socket).await,
        ServerMessage::Watching { id: "list".into() }
    );
    record(&app.address, &app.client, &alice, "more secret work").await;
    let bobs = record(&app.address, &app.client, &bob, "bob's work").await;
    match next(&mut socket).await {
        ServerMessage::Session { id, session } => {
            assert_eq!((id.as_str(), session.id.as_str()), ("list", bobs.as_str()))
        }
        other => panic!("expected bob's session, got {other:?}"),
    }
    let anonymous = tokio_tungstenite::connect_async(format!(
        "{}/api/live",
        app.address.replace("http://", "ws://")
    ))
    .await;
    assert!(anonymous.is_err(), "no socket without credentials");
}

#[tokio::test]
async fn two_server_processes_on_one_postgres_database_relay_live() {
    let server = std::env::var("LOUPE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let options = sqlx::postgres::PgConnectOptions::from_str(&server).unwrap();
    let name = format!("loupe_relay_{}", uuid::Uuid::new_v4().simple());
    {
        use sqlx::{ConnectOptions, Executor};
        options
            .connect()
            .await
            .unwrap()
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap();
    }
    let url = {
        use sqlx::ConnectOptions;
        options.clone().database(&name).to_url_lossy().to_string()
    };
    let store = loupe_server::Store::open(&loupe_server::config::Secret::new(url.clone()), 2)
        .await
        .unwrap();
    loupe_server::identity::ensure_initial_admin(
        &store,
        Some(&loupe_server::config::Secret::new(
            "relay-admin-heron-basalt".into(),
        )),
    )
    .await
    .unwrap();
    let admin = store.user_by_username("admin").await.unwrap().unwrap();
    let token = loupe_server::identity::create_token(
        &store,
        &loupe_server::identity::auth::Actor::command_line(),
        &admin,
        &loupe_protocol::NewToken {
            name: "relay".into(),
            expires_in_days: None,
        },
    )
    .await
    .unwrap()
    .secret;
    store.close().await;
    let who = TestUser {
        id: admin.id,
        username: "admin".into(),
        password: String::new(),
        token: token.clone(),
    };

    let one = crate::crash::start_node(&url, "node-a").await;
    let two = crate::crash::start_node(&url, "node-b").await;
    let (first, second) = (one.address.clone(), two.address.clone());
    let client = reqwest::Client::new();
    let mut socket = connect(&second, &token).await;
    send(
        &mut socket,
        json!({ "type": "watch_sessions", "id": "list", "filter": {} }),
    )
    .await;
    assert_eq!(
        next(&mut socket).await,
        ServerMessage::Watching { id: "list".into() }
    );

    let id = record(&first, &client, &who, "deploy on a").await;
    let announced = loop {
        if let ServerMessage::Session { session, .. } = next(&mut socket).await {
            break session;
        }
    };
    assert_eq!(
        announced.id, id,
        "node b announces a session started on node a"
    );
    send(
        &mut socket,
        json!({ "type": "watch_session", "id": "s", "session": id, "after": 0 }),
    )
    .await;
    let producer = {
        let (first, client, who, id) = (first.clone(), client.clone(), who.clone(), id.clone());
        tokio::spawn(async move {
            for n in 0..50 {
                append(
                    &first,
                    &client,
                    &who,
                    &id,
                    json!([{ "kind": "note", "text": format!("step {n}") }]),
                )
                .await;
            }
            close(&first, &client, &who, &id).await;
        })
    };
    let mut seqs = Vec::new();
    loop {
        match next(&mut socket).await {
            ServerMessage::Event { id: sub, event, .. } if sub == "s" => seqs.push(event.seq),
            ServerMessage::Session { id: sub, session }
                if sub == "s" && session.status.is_final() =>
            {
                break;
            }
            _ => {}
        }
    }
    producer.await.unwrap();
    assert_eq!(
        seqs,
        (1..=51).collect::<Vec<u64>>(),
        "every event from node a, in order, on node b"
    );

    // Reviews are relayed too: a command held on node a shows in node b's review watch.
    send(&mut socket, json!({ "type": "watch_reviews", "id": "r" })).await;
    // The list watch may still be telling about the session above.
    while next(&mut socket).await != (ServerMessage::Watching { id: "r".into() }) {}
    let group: Value = client
        .post(format!("{first}/api/groups"))
        .bearer_auth(&token)
        .json(&json!({ "name": "dba" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(group["id"].is_string(), "{group}");
    let held = json!({ "name": "held", "kind": "command", "command": { "argv": ["sh", "-c"] },
        "review": { "command_review": true, "reviewer_groups": ["dba"] } });
    let created = client
        .post(format!("{first}/api/connections"))
        .bearer_auth(&token)
        .json(&held)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let session: Session = client
        .post(format!("{first}/api/sessions"))
        .bearer_auth(&token)
        .json(&json!({ "connection": "held", "input": "echo relayed" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let relayed = loop {
        if let ServerMessage::Review { review, .. } = next(&mut socket).await {
            break review;
        }
    };
    assert_eq!(relayed.session_id.as_deref(), Some(session.id.as_str()));
    assert_eq!(relayed.state, loupe_protocol::ReviewState::Pending);

    {
        use sqlx::{ConnectOptions, Executor};
        options
            .connect()
            .await
            .unwrap()
            .execute(format!("DROP DATABASE {name} WITH (FORCE)").as_str())
            .await
            .unwrap();
    }
}

/// A watcher that drops its connection part-way through an output event and watches again
/// from that event and the bytes it has continues exactly there: no gap, no repeat.
#[tokio::test]
async fn a_watcher_that_reconnects_resumes_inside_the_event_being_written() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let alice = app.user("alice", Role::User).await;
    let created = app
        .call(
            Method::POST,
            "/api/connections",
            Some(&admin),
            Some(json!({ "name": "sh", "kind": "command", "command": { "argv": ["sh", "-c"] } })),
        )
        .await;
    assert_eq!(created.status(), 201);
    let session: Session = app
        .call(
            Method::POST,
            "/api/sessions",
            Some(&alice),
            Some(json!({ "connection": "sh", "input": "for i in $(seq 1 40); do echo line $i; sleep 0.05; done" })),
        )
        .await
        .json()
        .await
        .unwrap();
    let expected: String = (1..=40).map(|n| format!("line {n}\n")).collect();

    // First connection: until some output has arrived live.
    let mut socket = connect(&app.address, &alice.token).await;
    send(
        &mut socket,
        json!({ "type": "watch_session", "id": "w", "session": session.id, "after": 0 }),
    )
    .await;
    let (mut text, mut output_seq) = (String::new(), 0);
    while text.len() < 40 {
        match next(&mut socket).await {
            ServerMessage::Event { event, .. } if event.kind == EventKind::Output => {
                output_seq = event.seq;
                // Stored before the watch began: read it as a page would.
                let window: OutputWindow = app
                    .call(
                        Method::GET,
                        &format!(
                            "/api/sessions/{}/events/{}/output?length=1048576",
                            session.id, event.seq
                        ),
                        Some(&alice),
                        None,
                    )
                    .await
                    .json()
                    .await
                    .unwrap();
                text.extend(window.pieces.iter().map(|piece| piece.text.clone()));
            }
            ServerMessage::Output { piece, .. } if piece.offset >= text.len() as u64 => {
                assert_eq!(piece.offset, text.len() as u64, "no gap");
                text.push_str(&piece.text);
            }
            _ => {}
        }
    }
    drop(socket);

    // Second connection, resuming from that event and the bytes already read.
    let mut socket = connect(&app.address, &alice.token).await;
    send(
        &mut socket,
        json!({ "type": "watch_session", "id": "w", "session": session.id, "after": output_seq, "offset": text.len() }),
    )
    .await;
    loop {
        match next(&mut socket).await {
            ServerMessage::Output { piece, .. } => {
                assert_eq!(piece.offset, text.len() as u64, "no gap, no repeat");
                text.push_str(&piece.text);
            }
            ServerMessage::Session { session, .. } if session.status.is_final() => break,
            _ => {}
        }
    }
    assert_eq!(text, expected);
}
