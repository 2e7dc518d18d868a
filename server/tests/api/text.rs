//! Output text never cuts a UTF-8 character in two, wherever it is read: windows at any offset,
//! live pieces, and the download's exact bytes (the faithful-record issue's second kind).

use loupe_protocol::{EventPage, OutputWindow, Role, ServerMessage, Session};
use reqwest::Method;
use serde_json::json;

use crate::{
    helpers::{TestApp, TestUser},
    live,
};

/// After a second (so a watcher is there first), prints "a —" cut after the dash's first byte,
/// then the rest 0.4 s later.
const SPLIT_DASH: &str = "sleep 1; printf 'a \\342'; sleep 0.4; printf '\\200\\224 b'";

async fn output_seq(app: &TestApp, who: &TestUser, id: &str) -> u64 {
    let page: EventPage = app
        .call(
            Method::GET,
            &format!("/api/sessions/{id}/events"),
            Some(who),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    page.items
        .iter()
        .find(|event| event.kind == loupe_protocol::EventKind::Output)
        .expect("an output event")
        .seq
}

#[tokio::test]
async fn a_character_written_in_two_parts_reads_whole_everywhere() {
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
            Some(json!({ "connection": "sh", "input": SPLIT_DASH })),
        )
        .await
        .json()
        .await
        .unwrap();

    // Live: watched before any output, the pieces arrive as the program writes them.
    let mut socket = live::connect(&app.address, &alice.token).await;
    live::send(
        &mut socket,
        json!({ "type": "watch_session", "id": "w", "session": session.id, "after": 0 }),
    )
    .await;
    let mut live_text = String::new();
    loop {
        match live::next(&mut socket).await {
            ServerMessage::Output { piece, .. } => live_text.push_str(&piece.text),
            ServerMessage::Session { session, .. } if session.status.is_final() => break,
            _ => {}
        }
    }
    assert_eq!(live_text, "a — b", "live pieces");

    // Windows: the whole output, and one byte at a time from each window's end.
    let seq = output_seq(&app, &alice, &session.id).await;
    let window = |offset: u64, length: u64| {
        format!(
            "/api/sessions/{}/events/{seq}/output?offset={offset}&length={length}",
            session.id
        )
    };
    let whole: OutputWindow = app
        .call(Method::GET, &window(0, 65536), Some(&alice), None)
        .await
        .json()
        .await
        .unwrap();
    let text: String = whole
        .pieces
        .iter()
        .map(|piece| piece.text.as_str())
        .collect();
    assert_eq!(text, "a — b");
    let (mut offset, mut stepped) = (0, String::new());
    while offset < whole.total {
        let part: OutputWindow = app
            .call(Method::GET, &window(offset, 1), Some(&alice), None)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            part.offset, offset,
            "each window starts where the last ended"
        );
        stepped.extend(part.pieces.iter().map(|piece| piece.text.clone()));
        offset += part.length;
    }
    assert_eq!(stepped, "a — b", "byte-sized windows");
    // Asked for from inside the dash, a window starts after it.
    let inside: OutputWindow = app
        .call(Method::GET, &window(3, 10), Some(&alice), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(inside.offset, 5);

    // The download keeps the exact bytes.
    let download = app
        .call(
            Method::GET,
            &format!("/api/sessions/{}/download?format=txt", session.id),
            Some(&alice),
            None,
        )
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(download.as_ref(), "a — b".as_bytes());
}
