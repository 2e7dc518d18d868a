//! Durability: a server killed with SIGKILL while output is being appended keeps everything it
//! acknowledged, byte for byte; a session an agent records goes on after the restart; and a
//! program the server started does not outlive it unobserved.

use std::{
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use loupe_protocol::{NewToken, NewUser, OutputWindow, Role, Session, SessionStatus};
use loupe_server::{config::Secret, identity, identity::auth::Actor};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

use crate::helpers::TestDatabase;

/// The `loupe` binary serving `database_url` on a free port.
async fn start_server(database_url: &str) -> Node {
    start_node(database_url, "crash-test").await
}

/// A running `loupe serve` process and its own data folder (removed when dropped).
pub struct Node {
    pub child: Child,
    pub address: String,
    _data: tempfile::TempDir,
}

/// The `loupe` binary serving `database_url` on a free port as node `node_id`.
pub async fn start_node(database_url: &str, node_id: &str) -> Node {
    let data = tempfile::Builder::new()
        .prefix("loupe-node-")
        .tempdir()
        .expect("a data folder");
    let mut child = Command::new(env!("CARGO_BIN_EXE_loupe"))
        .arg("serve")
        .env("LOUPE_BIND", "127.0.0.1:0")
        .env("DATABASE_URL", database_url)
        .env("LOUPE_NODE_ID", node_id)
        .env("LOUPE_DATA_DIR", data.path())
        .env("LOUPE_LOG", "info")
        .env("LOUPE_STATIC_DIR", "/nonexistent")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the loupe binary starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let address = loop {
        let line = lines
            .next_line()
            .await
            .unwrap()
            .expect("the server prints where it listens");
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    // Keep draining the log so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Node {
        child,
        address,
        _data: data,
    }
}

/// A fresh database with the administrator, and an API token for `username` (made a plain user
/// unless it is `admin`).
async fn database_with_token(username: &str) -> (TestDatabase, String) {
    let database = TestDatabase::create().await;
    let store = database.open_store().await;
    identity::ensure_initial_admin(
        &store,
        Some(&Secret::new("admin-heron-basalt-crash".into())),
    )
    .await
    .unwrap();
    let actor = Actor::command_line();
    if username != "admin" {
        let new = NewUser {
            username: username.into(),
            display_name: None,
            role: Role::User,
            password: format!("{username}-heron-basalt-kite"),
        };
        identity::create_user(&store, &actor, &new).await.unwrap();
    }
    let owner = store.user_by_username(username).await.unwrap().unwrap();
    let new_token = NewToken {
        name: username.into(),
        expires_in_days: None,
    };
    let token = identity::create_token(&store, &actor, &owner, &new_token)
        .await
        .unwrap()
        .secret;
    store.close().await;
    (database, token)
}

/// The byte at `offset` of the test's output: easy to check anywhere.
fn byte_at(offset: u64) -> u8 {
    b'a' + (offset % 26) as u8
}

#[tokio::test]
async fn acknowledged_output_survives_sigkill_and_the_agent_goes_on_recording() {
    let (database, token) = database_with_token("agent").await;

    let mut server = start_server(&database.url()).await;
    let address = server.address.clone();
    let client = reqwest::Client::new();
    let created: Session = client
        .post(format!("{address}/api/ingest/sessions"))
        .bearer_auth(&token)
        .json(&json!({ "connection": "ops-box", "connection_kind": "command", "type": "command", "input": "cat big.log" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created.id.clone();

    // Append 256 KiB pieces as fast as acknowledgements come back, counting acknowledged bytes.
    let acknowledged = Arc::new(AtomicU64::new(0));
    let appender = {
        let (client, address, token, id, acknowledged) = (
            client.clone(),
            address.clone(),
            token.clone(),
            id.clone(),
            acknowledged.clone(),
        );
        tokio::spawn(async move {
            let mut seq: Option<u64> = None;
            loop {
                let offset = acknowledged.load(Ordering::SeqCst);
                let piece: Vec<u8> = (offset..offset + 256 * 1024).map(byte_at).collect();
                let mut url = format!("{address}/api/ingest/sessions/{id}/output?stream=stdout");
                if let Some(seq) = seq {
                    url.push_str(&format!("&seq={seq}"));
                }
                let Ok(response) = client
                    .post(url)
                    .bearer_auth(&token)
                    .body(piece)
                    .send()
                    .await
                else {
                    return seq;
                };
                let Ok(ack) = response.json::<Value>().await else {
                    return seq;
                };
                seq = ack["seqs"][0].as_u64();
                acknowledged.fetch_add(256 * 1024, Ordering::SeqCst);
            }
        })
    };
    while acknowledged.load(Ordering::SeqCst) < 8 * 1024 * 1024 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    server.child.start_kill().expect("SIGKILL is sent");
    server.child.wait().await.unwrap();
    let seq = appender
        .await
        .unwrap()
        .expect("some output was acknowledged");
    let acked = acknowledged.load(Ordering::SeqCst);

    let restarted = start_server(&database.url()).await;
    let address = restarted.address.clone();
    let session: Session = client
        .get(format!("{address}/api/sessions/{id}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // The session belongs to its agent, not to the server that died: it is still open.
    assert_eq!(session.status, SessionStatus::Running);
    assert!(
        session.counts.output_bytes >= acked,
        "{} stored < {acked} acknowledged",
        session.counts.output_bytes
    );

    let mut offset = 0;
    while offset < session.counts.output_bytes {
        let window: OutputWindow = client
            .get(format!(
                "{address}/api/sessions/{id}/events/{seq}/output?offset={offset}&length=1048576"
            ))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(window.length > 0);
        let bytes: Vec<u8> = window
            .pieces
            .iter()
            .flat_map(|piece| piece.text.bytes())
            .collect();
        assert_eq!(bytes.len() as u64, window.length);
        assert!(
            bytes
                .iter()
                .enumerate()
                .all(|(index, &byte)| byte == byte_at(offset + index as u64)),
            "bytes differ in the window at {offset}"
        );
        offset += window.length;
    }

    // The agent carries on where the server's acknowledgements left off, and closes it.
    let appended = client
        .post(format!(
            "{address}/api/ingest/sessions/{id}/output?stream=stdout&seq={seq}"
        ))
        .bearer_auth(&token)
        .body("after the restart")
        .send()
        .await
        .unwrap();
    assert_eq!(appended.status(), 200);
    let closed: Session = client
        .post(format!("{address}/api/ingest/sessions/{id}/close"))
        .bearer_auth(&token)
        .json(&json!({ "status": "done", "exit_code": 0 }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(closed.status, SessionStatus::Done);
}

#[tokio::test]
async fn a_program_left_running_by_a_killed_server_is_stopped_when_it_starts_again() {
    let (database, token) = database_with_token("admin").await;
    let folder = tempfile::tempdir().unwrap();

    let mut server = start_server(&database.url()).await;
    let client = reqwest::Client::new();
    let address = server.address.clone();
    let created = client
        .post(format!("{address}/api/connections"))
        .bearer_auth(&token)
        .json(&json!({ "name": "sh", "kind": "command", "command": { "argv": ["sh", "-c"], "working_dir": folder.path() } }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let session: Session = client
        .post(format!("{address}/api/sessions"))
        .bearer_auth(&token)
        .json(
            &json!({ "connection": "sh", "input": "echo started; sleep 3; echo done > finished" }),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // Once its output is recorded, the program runs.
    for _ in 0..200 {
        let now: Session = client
            .get(format!("{address}/api/sessions/{}", session.id))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if now.counts.output_bytes > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    server.child.start_kill().expect("SIGKILL is sent");
    server.child.wait().await.unwrap();

    let restarted = start_server(&database.url()).await;
    let ended: Session = client
        .get(format!("{}/api/sessions/{}", restarted.address, session.id))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ended.status, SessionStatus::Interrupted);
    let error = ended.error.unwrap_or_default();
    assert!(
        error.contains("was still running and was stopped"),
        "the record says the program was found and stopped: {error}"
    );
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    assert!(
        !folder.path().join("finished").exists(),
        "the program did not go on after the restart"
    );
}
