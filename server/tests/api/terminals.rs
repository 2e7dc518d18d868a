//! Terminal sessions: shell connections in a local PTY and ssh connections to a real OpenSSH
//! server, opened over the terminal WebSocket and with `loupe ssh`, recorded with their timing,
//! keyframes and resizes, and downloaded as asciicast (played back by `asciinema cat`) and as
//! text.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use loupe_protocol::{
    EventKind, OutputWindow, Role, ScreenHits, ScreenStart, Session, SessionStatus, SessionType,
    Stream, TerminalNotice, Verb,
};
use loupe_server::{
    live::Hub,
    sessions::recorder::Recorder,
    store::now_us,
    terminal::{
        record::{COPIES_HELD, Recording},
        screen::{Screen, Size},
    },
};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{Message, client::IntoClientRequest},
};

use crate::{
    helpers::{TestApp, TestUser},
    ports::free_port,
    sshd::Sshd,
    terminal_session::running_terminal,
};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A terminal as a client sees it: what it was sent so far.
struct Terminal {
    socket: Socket,
    output: Vec<u8>,
    notices: Vec<TerminalNotice>,
}

/// Opens a terminal on `connection` as `who`; the HTTP status when it is refused.
async fn open(
    app: &TestApp,
    who: &TestUser,
    connection: &str,
    size: &str,
) -> Result<Terminal, (u16, Value)> {
    let url = format!(
        "ws://{}/api/connections/{connection}/terminal{size}",
        app.address.trim_start_matches("http://")
    );
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}", who.token).parse().unwrap(),
    );
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => Ok(Terminal {
            socket,
            output: Vec::new(),
            notices: Vec::new(),
        }),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            let body = response
                .body()
                .as_deref()
                .map(|body| serde_json::from_slice(body).unwrap())
                .unwrap_or(Value::Null);
            Err((response.status().as_u16(), body))
        }
        Err(error) => panic!("the terminal socket opens: {error}"),
    }
}

impl Terminal {
    async fn type_text(&mut self, text: &str) {
        self.socket
            .send(Message::binary(text.as_bytes().to_vec()))
            .await
            .unwrap();
    }

    async fn resize(&mut self, cols: u16, rows: u16) {
        let resize = json!({ "type": "resize", "cols": cols, "rows": rows });
        self.socket
            .send(Message::text(resize.to_string()))
            .await
            .unwrap();
    }

    /// Reads frames until `done` holds (10 s at most).
    async fn until(&mut self, what: &str, done: impl Fn(&Terminal) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !done(self) {
            let frame = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "waited for {what}; the terminal showed {:?} and said {:?}",
                        String::from_utf8_lossy(&self.output),
                        self.notices
                    )
                });
            match frame {
                Some(Ok(Message::Binary(bytes))) => self.output.extend_from_slice(&bytes),
                Some(Ok(Message::Text(text))) => {
                    self.notices.push(serde_json::from_str(&text).unwrap())
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    assert!(done(self), "the socket closed before {what}");
                    return;
                }
            }
        }
    }

    async fn until_output(&mut self, text: &str) {
        self.until(text, |terminal| {
            String::from_utf8_lossy(&terminal.output).contains(text)
        })
        .await;
    }

    async fn ended(&mut self) -> (SessionStatus, Option<i32>, Option<String>) {
        self.until("the end", |terminal| {
            terminal
                .notices
                .iter()
                .any(|notice| matches!(notice, TerminalNotice::Ended { .. }))
        })
        .await;
        self.notices
            .iter()
            .find_map(|notice| match notice {
                TerminalNotice::Ended {
                    status,
                    exit_code,
                    reason,
                } => Some((*status, *exit_code, reason.clone())),
                _ => None,
            })
            .unwrap()
    }

    fn session(&self) -> String {
        match self.notices.first() {
            Some(TerminalNotice::Started { session }) => session.clone(),
            other => panic!("the first notice names the session, not {other:?}"),
        }
    }
}

async fn download(app: &TestApp, who: &TestUser, id: &str, format: &str) -> String {
    let response = app
        .call(
            Method::GET,
            &format!("/api/sessions/{id}/download?format={format}"),
            Some(who),
            None,
        )
        .await;
    assert_eq!(response.status(), 200, "{format} download");
    response.text().await.unwrap()
}

fn shell_connection(name: &str, record_input: bool) -> Value {
    json!({
        "name": name,
        "kind": "shell",
        "command": { "argv": ["sh", "-i"], "env": { "PS1": "$ " } },
        "record_input": record_input,
    })
}

/// `guarded`: a shell connection that needs just-in-time access, granted by the group `sre`.
async fn guarded_connection(app: &TestApp, admin: &TestUser) {
    let group = app
        .call(
            Method::POST,
            "/api/groups",
            Some(admin),
            Some(json!({ "name": "sre" })),
        )
        .await;
    assert_eq!(group.status(), 201);
    let mut guarded = shell_connection("guarded", false);
    guarded["review"] = json!({ "jit_access": true, "reviewer_groups": ["sre"] });
    app.create_connection(admin, guarded).await;
}

#[tokio::test]
async fn a_terminal_whose_program_a_signal_ends_is_a_failure_naming_the_signal() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let alice = app.user("alice", Role::User).await;
    app.create_connection(&admin, shell_connection("box", false))
        .await;
    let mut terminal = open(&app, &alice, "box", "").await.unwrap();
    terminal
        .until("the prompt", |terminal| terminal.output.ends_with(b"$ "))
        .await;
    terminal.type_text("kill -KILL $$\r").await;
    let ended = terminal.ended().await;
    assert_eq!(
        ended,
        (
            SessionStatus::Failed,
            None,
            Some("killed by SIGKILL".to_owned())
        ),
        "a program a signal ended did not succeed"
    );
    let session: Session = app
        .get_json(&alice, &format!("/api/sessions/{}", terminal.session()))
        .await;
    assert_eq!(
        (session.status, session.error.as_deref()),
        (SessionStatus::Failed, Some("killed by SIGKILL"))
    );
    let events = app.events(&alice, &terminal.session()).await;
    assert!(
        events
            .iter()
            .any(|event| event.kind == EventKind::Exit && event.summary == "killed by SIGKILL"),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_shell_terminal_is_recorded_with_its_timing_resizes_and_keystrokes() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let alice = app.user("alice", Role::User).await;
    let connection = app
        .create_connection(&admin, shell_connection("box", true))
        .await;
    assert_eq!(connection.session_type, SessionType::Ssh);
    assert!(connection.record_input);

    let mut terminal = open(&app, &alice, "box", "?cols=100&rows=30")
        .await
        .unwrap();
    terminal
        .until("the prompt", |terminal| terminal.output.ends_with(b"$ "))
        .await;
    let id = terminal.session();
    // The typed line is echoed as `hel''lo`; only the command's output reads `hello`.
    terminal.type_text("echo hel''lo\r").await;
    terminal.until_output("hello\r\n").await;
    terminal.resize(120, 40).await;
    terminal.type_text("stty size\r").await;
    terminal.until_output("40 120").await;
    terminal.type_text("exit 3\r").await;
    let (status, exit_code, reason) = terminal.ended().await;
    assert_eq!(
        (status, exit_code, reason),
        (
            SessionStatus::Failed,
            Some(3),
            Some("exited with code 3".to_owned())
        ),
        "a non-zero exit is a failure"
    );

    let session: Session = app.get_json(&alice, &format!("/api/sessions/{id}")).await;
    assert_eq!(session.status, SessionStatus::Failed);
    assert_eq!(session.exit_code, Some(3));
    assert_eq!(
        (session.session_type, session.verb),
        (SessionType::Ssh, Verb::Connect)
    );
    assert_eq!(session.summary, "sh -i");
    let events = app.events(&alice, &id).await;
    let resizes: Vec<_> = events
        .iter()
        .filter(|event| event.kind == EventKind::Resize)
        .map(|event| event.text.clone().unwrap())
        .collect();
    assert_eq!(resizes, ["100x30", "120x40"]);
    let outputs: Vec<_> = events
        .iter()
        .filter(|event| event.kind == EventKind::Output)
        .collect();
    assert_eq!(
        outputs.len(),
        2,
        "the terminal's output and the keystrokes: {events:?}"
    );
    let keystrokes = outputs
        .iter()
        .find(|event| event.summary == Stream::Stdin.as_str())
        .unwrap();
    let typed = app.event_output(&alice, &id, keystrokes.seq).await;
    assert_eq!(typed, "echo hel''lo\rstty size\rexit 3\r");
    let shown = outputs
        .iter()
        .find(|event| event.summary == Stream::Stdout.as_str())
        .unwrap();
    assert!(
        app.event_output(&alice, &id, shown.seq)
            .await
            .contains("hello\r\n")
    );
    assert_eq!(events.last().unwrap().kind, EventKind::Exit);

    // asciicast v2: a header with the first size, then timed events in order.
    let cast = download(&app, &alice, &id, "cast").await;
    let mut lines = cast.lines();
    let header: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(
        (
            header["version"].as_u64(),
            header["width"].as_u64(),
            header["height"].as_u64()
        ),
        (Some(2), Some(100), Some(30))
    );
    let entries: Vec<(f64, String, String)> = lines
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert!(
        entries.windows(2).all(|pair| pair[0].0 <= pair[1].0),
        "in time order"
    );
    let of = |code: &str| {
        entries
            .iter()
            .filter(|entry| entry.1 == code)
            .map(|entry| entry.2.clone())
            .collect::<String>()
    };
    assert!(
        of("o").contains("hello\r\n") && of("o").contains("40 120"),
        "{cast}"
    );
    assert_eq!(of("i"), "echo hel''lo\rstty size\rexit 3\r");
    assert_eq!(of("r"), "120x40");
    let resize_at = entries.iter().position(|entry| entry.1 == "r").unwrap();
    let size_at = entries
        .iter()
        .position(|entry| entry.1 == "o" && entry.2.contains("40 120"))
        .unwrap();
    assert!(
        resize_at < size_at,
        "the resize comes before what it changed"
    );

    // asciinema plays the download back (in a terminal: it reads keys from /dev/tty).
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &cast).unwrap();
    let (code, played) = in_terminal(
        pty_process::Command::new("asciinema")
            .arg("cat")
            .arg(file.path()),
        &[],
    )
    .await;
    assert_eq!(code, 0, "{played}");
    assert!(
        played.contains("hello\r\n") && played.contains("40 120"),
        "{played}"
    );

    // The text: lines as the terminal showed them, without escape sequences.
    let text = download(&app, &alice, &id, "txt").await;
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.contains(&"hello") && lines.contains(&"40 120"),
        "{text}"
    );
    assert!(lines.contains(&"$ echo hel''lo"), "{text}");
    assert!(!text.contains('\x1b') && !text.contains('\r'), "{text:?}");

    let refused = app
        .call(
            Method::GET,
            &format!("/api/sessions/{id}/download?format=csv"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(refused.status(), 400);
}

/// How many keyframes `id` has and their size, once it has `at_least` or 30 s have passed:
/// keyframes are drawn behind the record, at the lowest CPU priority (see `terminal::record`).
async fn keyframe_totals(app: &TestApp, id: &str, at_least: i64) -> (i64, i64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let totals = app.store.keyframe_totals(id).await.unwrap();
        if totals.0 >= at_least || std::time::Instant::now() > deadline {
            return totals;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn keystrokes_are_not_recorded_unless_the_connection_says_so_and_keyframes_replay_the_screen()
{
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let alice = app.user("alice", Role::User).await;
    app.create_connection(&admin, shell_connection("quiet", false))
        .await;

    let mut terminal = open(&app, &alice, "quiet", "").await.unwrap();
    terminal
        .until("the prompt", |terminal| terminal.output.ends_with(b"$ "))
        .await;
    let id = terminal.session();
    // About 1.2 MB of output: several keyframes.
    terminal.type_text("seq 1 200000; echo do''ne\r").await;
    terminal.until_output("done\r\n").await;
    terminal.type_text("exit\r").await;
    assert_eq!(terminal.ended().await.0, SessionStatus::Done);

    let events = app.events(&alice, &id).await;
    let outputs: Vec<_> = events
        .iter()
        .filter(|event| event.kind == EventKind::Output)
        .collect();
    assert_eq!(outputs.len(), 1, "no keystrokes event: {events:?}");
    assert_eq!(events[0].text.as_deref(), Some("80x24"), "the default size");
    let output = outputs[0];

    let (count, bytes) = keyframe_totals(&app, &id, 3).await;
    assert!(count >= 3, "{count} keyframes for {} bytes", output.bytes);
    assert!(
        (bytes as u64) * 20 <= output.bytes,
        "keyframes stay a small part: {bytes}"
    );
    // Seeking: the keyframe before a moment plus only the bytes after it draw that moment.
    let all = raw_output(&app, &alice, &id, output.seq, 0, output.bytes).await;
    let mut from_start = Screen::new(Size { cols: 80, rows: 24 });
    from_start.feed(&all);
    let latest: ScreenStart = app
        .get_json(&alice, &format!("/api/sessions/{id}/screen"))
        .await;
    assert_eq!((latest.seq, latest.total), (Some(output.seq), output.bytes));
    assert!(latest.offset > 0 && latest.offset <= output.bytes && !latest.screen.is_empty());
    let mut from_keyframe = Screen::new(Size {
        cols: latest.cols,
        rows: latest.rows,
    });
    from_keyframe.feed(latest.screen.as_bytes());
    from_keyframe.feed(&all[latest.offset as usize..]);
    assert_eq!(from_keyframe.lines(), from_start.lines());
    assert!(from_start.lines().iter().any(|line| line == "done"));
    let start: ScreenStart = app
        .get_json(&alice, &format!("/api/sessions/{id}/screen?at_ms=0"))
        .await;
    assert_eq!(
        (start.offset, start.screen.as_str(), start.cols, start.rows),
        (0, "", 80, 24)
    );

    // Search finds each line once, with the moment it was complete; seeking there shows it.
    let found: ScreenHits = app
        .get_json(&alice, &format!("/api/sessions/{id}/screen/search?q=DONE"))
        .await;
    assert_eq!(found.hits.len(), 1, "{found:?}");
    assert_eq!((found.hits[0].line.as_str(), found.more), ("done", false));
    let many: ScreenHits = app
        .get_json(&alice, &format!("/api/sessions/{id}/screen/search?q=99"))
        .await;
    assert_eq!(many.hits.len(), 200);
    assert!(many.more);
    let at = found.hits[0].at_ms;
    let seek: ScreenStart = app
        .get_json(&alice, &format!("/api/sessions/{id}/screen?at_ms={at}"))
        .await;
    assert!(seek.at_ms <= at);
    let mut seeking = Screen::new(Size {
        cols: seek.cols,
        rows: seek.rows,
    });
    seeking.feed(seek.screen.as_bytes());
    let started = session_start(&app, &alice, &id).await;
    let mut offset = seek.offset;
    while offset < output.bytes {
        let path = format!(
            "/api/sessions/{id}/events/{}/output?offset={offset}&length=1048576",
            output.seq
        );
        let window: OutputWindow = app.get_json(&alice, &path).await;
        for piece in window.pieces {
            if ((piece.at.as_micros() - started) / 1000) as u64 <= at {
                seeking.feed(piece.text.as_bytes());
            }
        }
        offset += window.length;
    }
    assert!(
        seeking.lines().iter().any(|line| line == "done"),
        "{:?}",
        seeking.lines()
    );
    let empty = app
        .call(
            Method::GET,
            &format!("/api/sessions/{id}/screen/search?q=%20"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(empty.status(), 400);
}

async fn session_start(app: &TestApp, who: &TestUser, id: &str) -> i64 {
    let session: Session = app.get_json(who, &format!("/api/sessions/{id}")).await;
    session.started_at.as_micros()
}

/// Output bytes [from, to) of an event, exactly (through the txt download's ranges would be the
/// same; the windows carry text).
async fn raw_output(
    app: &TestApp,
    who: &TestUser,
    id: &str,
    seq: u64,
    from: u64,
    to: u64,
) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut offset = from;
    while offset < to {
        let path = format!("/api/sessions/{id}/events/{seq}/output?offset={offset}&length=1048576");
        let window: OutputWindow = app.get_json(who, &path).await;
        for piece in window.pieces {
            bytes.extend_from_slice(piece.text.as_bytes());
        }
        assert!(window.length > 0);
        offset += window.length;
    }
    bytes
}

#[tokio::test]
async fn a_terminal_stopped_in_loupe_tells_its_user_and_refusals_name_what_is_wrong() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let alice = app.user("alice", Role::User).await;
    let auditor = app.user("audrey", Role::Auditor).await;
    app.create_connection(&admin, shell_connection("box", false))
        .await;
    app.create_connection(
        &admin,
        json!({ "name": "db", "kind": "sqlite", "url": "sqlite::memory:" }),
    )
    .await;
    guarded_connection(&app, &admin).await;

    let mut terminal = open(&app, &alice, "box", "").await.unwrap();
    terminal
        .until("the prompt", |terminal| terminal.output.ends_with(b"$ "))
        .await;
    let id = terminal.session();
    let killed = app
        .call(
            Method::POST,
            &format!("/api/sessions/{id}/kill"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(killed.status(), 200);
    let (status, _, reason) = terminal.ended().await;
    assert_eq!(status, SessionStatus::Cancelled);
    assert!(reason.is_some());
    assert!(
        terminal.notices.iter().any(|notice| matches!(notice, TerminalNotice::Message { text } if text.contains("being closed"))),
        "{:?}",
        terminal.notices
    );
    assert_eq!(
        app.ended(&alice, &id).await.status,
        SessionStatus::Cancelled
    );

    let (status, body) = open(&app, &auditor, "box", "").await.err().unwrap();
    assert_eq!(status, 403, "{body}");
    let (status, body) = open(&app, &alice, "db", "").await.err().unwrap();
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("connection")),
        "{body}"
    );
    let (status, body) = open(&app, &alice, "nothing", "").await.err().unwrap();
    assert_eq!(status, 404, "{body}");
    let (status, body) = open(&app, &alice, "box", "?cols=0&rows=10")
        .await
        .err()
        .unwrap();
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("cols")),
        "{body}"
    );
    let (status, body) = open(&app, &alice, "box", "?cols=10").await.err().unwrap();
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("rows")),
        "{body}"
    );
    let (status, body) = open(&app, &alice, "guarded", "").await.err().unwrap();
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("access_required")),
        "{body}"
    );
    let anonymous = app.get("/api/connections/box/terminal").await;
    assert_eq!(anonymous.status(), 401);
}

#[tokio::test]
async fn ssh_terminals_and_commands_go_through_a_pinned_host_key_to_a_real_openssh_server() {
    let mut sshd = Sshd::start().await;
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let alice = app.user("alice", Role::User).await;
    let body = json!({
        "name": "web-1",
        "kind": "ssh",
        "ssh": { "host": "127.0.0.1", "port": sshd.port, "username": sshd.user, "private_key": sshd.private_key },
    });
    let connection = app.create_connection(&admin, body).await;
    let ssh = connection.ssh.clone().unwrap();
    assert_eq!((ssh.auth.as_str(), ssh.host_key.as_deref()), ("key", None));
    let listed = serde_json::to_string(&connection).unwrap();
    assert!(!listed.contains("PRIVATE KEY"), "the key is never returned");

    // Unpinned, nobody connects; the administrator's test pins what the server shows.
    let mut terminal = open(&app, &alice, "web-1", "").await.unwrap();
    let (status, _, reason) = terminal.ended().await;
    assert_eq!(status, SessionStatus::Failed);
    assert!(reason.unwrap().contains("not pinned"));
    let check = app.test_connection(&admin, &connection.id).await;
    assert!(check.ok, "{}", check.message);
    let pinned: loupe_protocol::Connection = app
        .get_json(&admin, &format!("/api/connections/{}", connection.id))
        .await;
    assert_eq!(
        pinned.ssh.unwrap().host_key_fingerprint.as_deref(),
        Some(sshd.fingerprint.as_str())
    );

    let mut terminal = open(&app, &alice, "web-1", "?cols=90&rows=20")
        .await
        .unwrap();
    terminal
        .type_text("echo via-ssh-$((6*7)); stty size\r")
        .await;
    terminal.until_output("via-ssh-42").await;
    terminal.until_output("20 90").await;
    terminal.type_text("exit 5\r").await;
    let (status, exit_code, _) = terminal.ended().await;
    assert_eq!((status, exit_code), (SessionStatus::Failed, Some(5)));
    let text = download(&app, &alice, &terminal.session(), "txt").await;
    // A shell a signal ends has no exit status: the server's exit-signal names the signal.
    let mut killed = open(&app, &alice, "web-1", "").await.unwrap();
    killed.type_text("kill -KILL $$\r").await;
    assert_eq!(
        killed.ended().await,
        (
            SessionStatus::Failed,
            None,
            Some("killed by SIGKILL".to_owned())
        )
    );
    // Typed ahead of the prompt, so the output follows it on its line.
    assert!(
        text.lines().any(|line| line.ends_with("via-ssh-42")),
        "{text}"
    );

    // One command: no PTY, stdout and stderr apart, its exit status.
    let run = app
        .run(&alice, "web-1", "echo one; echo two >&2; exit 4")
        .await;
    let ended = app.ended(&alice, &run.id).await;
    assert_eq!(
        (ended.status, ended.exit_code),
        (SessionStatus::Failed, Some(4)),
        "{:?}",
        ended.error
    );
    assert_eq!(ended.session_type, SessionType::Ssh);
    let output = app.output_text(&alice, &run.id).await;
    assert!(
        output.contains("one\n") && output.contains("two\n"),
        "{output}"
    );
    // A command a signal ends: the server's exit-signal names it.
    let killed = app.run(&alice, "web-1", "kill -KILL $$").await;
    let killed = app.ended(&alice, &killed.id).await;
    assert_eq!(
        (killed.status, killed.exit_code, killed.error.as_deref()),
        (SessionStatus::Failed, None, Some("killed by SIGKILL"))
    );

    // `loupe ssh` in a real terminal.
    let loupe = pty_process::Command::new(env!("CARGO_BIN_EXE_loupe"))
        .args(["ssh", "web-1"])
        .env("LOUPE_SERVER", &app.address)
        .env("LOUPE_TOKEN", &alice.token);
    let (code, shown) =
        in_terminal(loupe, &[("", "echo pty-$((2+3))\r"), ("pty-5", "exit 7\r")]).await;
    assert_eq!(code, 7, "{shown}");

    // The server's key changes: refused, saying so, on every path.
    sshd.restart_with_new_host_key().await;
    let mut terminal = open(&app, &alice, "web-1", "").await.unwrap();
    let (status, _, reason) = terminal.ended().await;
    assert_eq!(status, SessionStatus::Failed);
    let reason = reason.unwrap();
    assert!(
        reason.contains("has changed") && reason.contains(&sshd.fingerprint),
        "{reason}"
    );
    let run = app.run(&alice, "web-1", "echo never").await;
    let ended = app.ended(&alice, &run.id).await;
    assert_eq!(ended.status, SessionStatus::Failed);
    assert!(ended.error.unwrap().contains("has changed"));
    let check = app.test_connection(&admin, &connection.id).await;
    assert!(
        !check.ok,
        "a test does not re-pin a changed key: {}",
        check.message
    );
}

/// Runs `command` in a pseudo-terminal of 80×24, typing each of `script`'s keys once the
/// terminal shows its text; answers the exit status and everything the terminal showed.
async fn in_terminal(command: pty_process::Command, script: &[(&str, &str)]) -> (i32, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (pty, pts) = pty_process::open().unwrap();
    pty.resize(pty_process::Size::new(24, 80)).unwrap();
    let mut child = command
        .spawn(pts)
        .expect("the program starts in a terminal");
    let (mut reader, mut writer) = pty.into_split();
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    for (wait_for, keys) in script {
        while !String::from_utf8_lossy(&seen).contains(wait_for) {
            let read = tokio::time::timeout_at(deadline, reader.read(&mut buffer))
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "waited for {wait_for:?}; saw {:?}",
                        String::from_utf8_lossy(&seen)
                    )
                });
            match read {
                Ok(read @ 1..) => seen.extend_from_slice(&buffer[..read]),
                _ => panic!(
                    "ended before {wait_for:?}: {:?}",
                    String::from_utf8_lossy(&seen)
                ),
            }
        }
        writer.write_all(keys.as_bytes()).await.unwrap();
    }
    // Read to the end (EIO once the program has exited and closed the terminal).
    while let Ok(Ok(read @ 1..)) = tokio::time::timeout_at(deadline, reader.read(&mut buffer)).await
    {
        seen.extend_from_slice(&buffer[..read]);
    }
    let status = tokio::time::timeout_at(deadline, child.wait())
        .await
        .unwrap()
        .unwrap();
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&seen).into_owned(),
    )
}

/// `ssh` (OpenSSH's client) to Loupe's listener as `user`, with `key`, never asking anything.
fn ssh_to_loupe(port: u16, key: &std::path::Path, user: &str) -> Vec<String> {
    [
        "-p",
        &port.to_string(),
        "-i",
        key.to_str().unwrap(),
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "LogLevel=ERROR",
        &format!("{user}@127.0.0.1"),
    ]
    .map(str::to_owned)
    .to_vec()
}

#[tokio::test]
async fn openssh_clients_open_terminals_and_run_commands_through_loupes_own_listener() {
    let port = free_port();
    let app =
        TestApp::spawn_with(|config| config.ssh_bind = Some(format!("127.0.0.1:{port}"))).await;
    let admin = app.admin().await;
    let alice = app.user("alice", Role::User).await;
    let bob = app.user("bob", Role::User).await;
    app.create_connection(
        &admin,
        json!({
            "name": "box",
            "kind": "shell",
            "command": { "argv": ["sh"], "input": "stdin", "env": { "PS1": "$ " } },
        }),
    )
    .await;
    guarded_connection(&app, &admin).await;

    // Alice registers her key; the same key cannot be anyone else's.
    let folder = tempfile::tempdir().unwrap();
    let key = folder.path().join("alice");
    let generated = std::process::Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "alice@laptop",
            "-f",
            key.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(generated.success());
    let public_key = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let added = app
        .call(
            Method::POST,
            "/api/me/ssh-keys",
            Some(&alice),
            Some(json!({ "public_key": public_key })),
        )
        .await;
    assert_eq!(added.status(), 201);
    let added: Value = added.json().await.unwrap();
    assert_eq!(
        (added["name"].as_str(), added["algorithm"].as_str()),
        (Some("alice@laptop"), Some("ssh-ed25519"))
    );
    let taken = app
        .call(
            Method::POST,
            "/api/me/ssh-keys",
            Some(&bob),
            Some(json!({ "public_key": public_key })),
        )
        .await;
    assert_eq!(taken.status(), 409);
    let listed: Vec<Value> = app.get_json(&bob, "/api/me/ssh-keys").await;
    assert!(listed.is_empty());

    // An interactive terminal, in a real terminal.
    let mut ssh = pty_process::Command::new("ssh").arg("-tt");
    for arg in ssh_to_loupe(port, &key, "alice+box") {
        ssh = ssh.arg(arg);
    }
    let (code, shown) = in_terminal(
        ssh,
        &[
            ("$ ", "echo via-listener-$((3*3))\r"),
            ("via-listener-9", "exit 6\r"),
        ],
    )
    .await;
    assert_eq!(code, 6, "{shown}");
    let page: loupe_protocol::SessionPage = app.get_json(&alice, "/api/sessions?type=ssh").await;
    let terminal = &page.items[0];
    assert_eq!(
        (terminal.verb, terminal.exit_code, terminal.status),
        (Verb::Connect, Some(6), SessionStatus::Failed)
    );
    let text = download(&app, &alice, &terminal.id, "txt").await;
    assert!(text.lines().any(|line| line == "via-listener-9"), "{text}");

    // One command: stdout and stderr apart, its exit status, recorded as a command session.
    let mut args = ssh_to_loupe(port, &key, "alice+box");
    args.push("echo one; echo two >&2; exit 4".into());
    let output = tokio::process::Command::new("ssh")
        .args(&args)
        .output()
        .await
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout), "one\n");
    assert!(String::from_utf8_lossy(&output.stderr).contains("two"));
    let page: loupe_protocol::SessionPage = app.get_json(&alice, "/api/sessions?type=ssh").await;
    let command = &page.items[0];
    assert_eq!((command.verb, command.exit_code), (Verb::Exec, Some(4)));

    // Refusals: access not granted, forwarding, a key nobody registered, a user name without
    // a connection.
    let mut args = ssh_to_loupe(port, &key, "alice+guarded");
    args.push("true".into());
    let refused = tokio::process::Command::new("ssh")
        .args(&args)
        .output()
        .await
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("needs approved access"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let mut args = ssh_to_loupe(port, &key, "alice+box");
    args.splice(
        0..0,
        [
            "-N",
            "-o",
            "ExitOnForwardFailure=yes",
            "-R",
            "0:127.0.0.1:9",
        ]
        .map(str::to_owned),
    );
    let forwarded = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::process::Command::new("ssh").args(&args).output(),
    )
    .await
    .expect("ssh gives up on a refused forward")
    .unwrap();
    assert_eq!(forwarded.status.code(), Some(255));
    assert!(
        String::from_utf8_lossy(&forwarded.stderr).contains("forwarding failed"),
        "{}",
        String::from_utf8_lossy(&forwarded.stderr)
    );
    let stranger = folder.path().join("stranger");
    std::process::Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-f",
            stranger.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    for (key, user) in [(&stranger, "alice+box"), (&key, "alice")] {
        let mut args = ssh_to_loupe(port, key, user);
        args.push("true".into());
        let denied = tokio::process::Command::new("ssh")
            .args(&args)
            .output()
            .await
            .unwrap();
        assert_eq!(denied.status.code(), Some(255), "{user}");
        assert!(String::from_utf8_lossy(&denied.stderr).contains("Permission denied"));
    }
}

#[tokio::test]
async fn a_terminal_ends_when_its_login_stops_working_and_is_never_run_again() {
    let app = TestApp::spawn_with(|config| config.live_recheck_seconds = 1).await;
    let admin = app.admin().await;
    let alice = app.user("alice", Role::User).await;
    app.create_connection(&admin, shell_connection("box", false))
        .await;
    let mut terminal = open(&app, &alice, "box", "").await.unwrap();
    terminal
        .until("the prompt", |terminal| terminal.output.ends_with(b"$ "))
        .await;
    let id = terminal.session();

    // Re-running a terminal would run its summary as a command.
    let rerun = app
        .call(
            Method::POST,
            &format!("/api/sessions/{id}/rerun"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(rerun.status(), 409);

    // Alice's token is revoked: the terminal opened with it closes, saying why.
    let tokens: Vec<Value> = app.get_json(&alice, "/api/tokens").await;
    let token = tokens[0]["id"].as_str().unwrap().to_owned();
    let revoked = app
        .call(
            Method::DELETE,
            &format!("/api/tokens/{token}"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(revoked.status(), 204);
    let (status, _, reason) = terminal.ended().await;
    assert_eq!(status, SessionStatus::Cancelled);
    assert!(reason.unwrap().contains("no longer lets its user in"));
    assert_eq!(
        app.ended(&admin, &id).await.status,
        SessionStatus::Cancelled
    );
}

/// Keyframes are drawn from the record, whether the keyframer took the writer's copies or read
/// every byte back from the store (a keyframer far behind): either way each one, drawn on a
/// blank terminal, shows what the recording showed at its offset, across a resize.
#[tokio::test]
async fn keyframes_read_back_from_the_store_draw_what_the_whole_recording_draws() {
    let app = TestApp::spawn().await;
    app.admin().await;
    // Coloured numbered lines with the cursor sent home now and then: 1.6 MB in two halves.
    let half = |from: usize| {
        let mut text = String::new();
        for line in from..from + 12_000 {
            text.push_str(&format!(
                "\x1b[3{}m{line:>8}\x1b[0m the quick brown fox jumps over the lazy dog\r\n",
                line % 8
            ));
            if line % 997 == 0 {
                text.push_str("\x1b[H\x1b[2Kmoved home\x1b[24;1H");
            }
        }
        text.into_bytes()
    };
    let (first, second) = (half(0), half(12_000));
    let wide = Size {
        cols: 100,
        rows: 30,
    };
    for copies_held in [0, COPIES_HELD] {
        let id = running_terminal(&app.store, "keyframes", now_us()).await;
        let recorder = Recorder::start(
            app.store.clone(),
            1 << 30,
            1024,
            Hub::new(64, "test".into()),
        );
        let recording = Recording::start_copying(
            recorder,
            app.store.clone(),
            id.clone(),
            Size::DEFAULT,
            copies_held,
        );
        for piece in first.chunks(4096) {
            assert!(recording.output(bytes::Bytes::copy_from_slice(piece)).await);
        }
        assert!(recording.resize(wide).await);
        for piece in second.chunks(4096) {
            assert!(recording.output(bytes::Bytes::copy_from_slice(piece)).await);
        }
        recording.finish_with_keyframes().await.unwrap();

        let all = [first.as_slice(), second.as_slice()].concat();
        let (count, _) = app.store.keyframe_totals(&id).await.unwrap();
        assert!(count >= 4, "{count} keyframes for {} bytes", all.len());
        let events = app.store.session_events(&id, 0, 100).await.unwrap();
        let output = events
            .iter()
            .find(|event| event.kind == EventKind::Output)
            .unwrap();
        assert_eq!(
            output.bytes as usize,
            all.len(),
            "copies_held {copies_held}"
        );
        // The screen the recording shows after its first `offset` bytes.
        let shown_after = |offset: usize| {
            let mut screen = Screen::new(Size::DEFAULT);
            screen.feed(&first[..offset.min(first.len())]);
            if offset > first.len() {
                screen.resize(wide);
                screen.feed(&second[..offset - first.len()]);
            }
            screen.lines()
        };

        // Every keyframe, from the latest back, drawn on a blank terminal of its size, shows
        // what the recording showed at its offset; some stand before the resize.
        let mut within = all.len() as i64;
        let mut sizes = Vec::new();
        while let Some(keyframe) = app
            .store
            .keyframe_before(&id, output.seq, i64::MAX, within)
            .await
            .unwrap()
        {
            let offset = keyframe.byte_offset as usize;
            assert!(offset > 0 && offset <= all.len());
            let size = if offset > first.len() {
                wide
            } else {
                Size::DEFAULT
            };
            assert_eq!(
                (keyframe.cols, keyframe.rows),
                (i32::from(size.cols), i32::from(size.rows))
            );
            let mut drawn = Screen::new(size);
            drawn.feed(keyframe.screen.as_bytes());
            assert_eq!(
                drawn.lines(),
                shown_after(offset),
                "copies_held {copies_held}, keyframe at {offset}"
            );
            sizes.push(size);
            within = keyframe.byte_offset - 1;
        }
        assert_eq!(sizes.len() as i64, count);
        assert!(sizes.contains(&wide) && sizes.contains(&Size::DEFAULT));
    }
}

/// Output past the storage limit flows on unrecorded: the record says so once, and keyframes
/// stop where the stored output stops.
#[tokio::test]
async fn a_terminal_past_the_storage_limit_says_so_once_and_keyframes_stop_there() {
    let app = TestApp::spawn().await;
    app.admin().await;
    let id = running_terminal(&app.store, "keyframes", now_us()).await;
    let limit = 600_000u64;
    let recorder = Recorder::start(app.store.clone(), limit, 1024, Hub::new(64, "test".into()));
    let recording = Recording::start(recorder, app.store.clone(), id.clone(), Size::DEFAULT);
    let line = b"the quick brown fox jumps over the lazy dog, 0123456789\r\n";
    for _ in 0..40 {
        assert!(recording.output(bytes::Bytes::from(line.repeat(500))).await);
    }
    recording.finish_with_keyframes().await.unwrap();

    let events = app.store.session_events(&id, 0, 100).await.unwrap();
    let notes: Vec<_> = events
        .iter()
        .filter(|event| event.summary.contains("LOUPE_MAX_OUTPUT_BYTES"))
        .collect();
    assert_eq!(notes.len(), 1, "{events:?}");
    let output = events
        .iter()
        .find(|event| event.kind == EventKind::Output)
        .unwrap();
    assert!(output.bytes as u64 <= limit, "{} bytes kept", output.bytes);
    let (count, _) = app.store.keyframe_totals(&id).await.unwrap();
    assert!(count >= 1);
    let latest = app
        .store
        .keyframe_before(&id, output.seq, i64::MAX, i64::MAX)
        .await
        .unwrap()
        .unwrap();
    assert!(latest.byte_offset <= output.bytes, "{}", latest.byte_offset);
}
