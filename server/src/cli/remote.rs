//! `loupe exec`, `connect`, `connections`, `watch` and `download`: using a running Loupe server
//! with an API token.
//! `exec` prints the output as it is recorded (stdout to stdout, stderr to stderr, result rows
//! as tab-separated lines) and exits with the command's exit status.

use std::{io::Write, time::Duration};

use anyhow::{Context, Result, bail};
use clap::Args;
use loupe_protocol::{
    Cell, Connection, ErrorBody, EventKind, EventPage, OutputWindow, RowsWindow, RunRequest,
    Session, SessionStatus, Stream,
};
use serde::de::DeserializeOwned;

use crate::{config::Secret, sessions::delimited::Delimited};

const POLL: Duration = Duration::from_millis(100);

/// Where the server is and who is asking.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// The server's URL. Default: http://127.0.0.1:3000.
    #[arg(
        long,
        env = "LOUPE_SERVER",
        default_value = "http://127.0.0.1:3000",
        global = true
    )]
    pub server: String,
    /// An API token (create one on the Tokens page or with `loupe token create`).
    #[arg(long, env = "LOUPE_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<Secret>,
}

pub(super) struct Client {
    http: reqwest::Client,
    pub base: String,
    pub token: String,
}

impl Client {
    pub fn new(args: &ServerArgs) -> Result<Client> {
        let token = args
            .token
            .as_ref()
            .context("an API token is needed: --token or LOUPE_TOKEN")?;
        Ok(Client {
            http: reqwest::Client::new(),
            base: args.server.trim_end_matches('/').to_owned(),
            token: token.expose().to_owned(),
        })
    }

    async fn send<T: DeserializeOwned>(&self, request: reqwest::RequestBuilder) -> Result<T> {
        Ok(self.respond(request).await?.json().await?)
    }

    /// The response to `request` when it succeeded, else the server's message as the error.
    async fn respond(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        let response = request
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("cannot reach Loupe at {}", self.base))?;
        let status = response.status();
        if !status.is_success() {
            let message = match response.json::<ErrorBody>().await {
                Ok(body) => body.message,
                Err(_) => status.to_string(),
            };
            bail!("{message}");
        }
        Ok(response)
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    /// The WebSocket URL of `path` on the server (`ws://`, or `wss://` for an https server).
    pub fn websocket_url(&self, path: &str) -> String {
        match self.base.strip_prefix("https://") {
            Some(rest) => format!("wss://{rest}{path}"),
            None => format!("ws://{}{path}", self.base.trim_start_matches("http://")),
        }
    }

    async fn get_text(&self, path: &str) -> Result<String> {
        let request = self.http.get(format!("{}{path}", self.base));
        Ok(self.respond(request).await?.text().await?)
    }
}

/// `loupe connect`: the command line of the database's own client through Loupe's listener,
/// printed (the token left in `$LOUPE_TOKEN`, so it never lands on the screen or in a shell's
/// history), or started with `--exec`; its exit status then.
pub async fn run_connect(args: &ServerArgs, connection: &str, exec: bool) -> Result<i32> {
    let client = Client::new(args)?;
    let me: loupe_protocol::User = client.get("/api/me").await?;
    let connections: Vec<Connection> = client.get("/api/connections").await?;
    let found = connections
        .iter()
        .find(|known| known.name == connection)
        .with_context(|| {
            format!("no connection named {connection}: `loupe connections` lists them")
        })?;
    let settings: loupe_protocol::Settings = client.get("/api/settings").await?;
    let line = client_command(&found.kind, &settings.listeners, &me.username, connection)?;
    if !exec {
        println!("{}", line.shown());
        return Ok(0);
    }
    let status = std::process::Command::new(line.program)
        .args(&line.args)
        .env(line.password_variable, &client.token)
        .status()
        .with_context(|| format!("starting {}", line.program))?;
    Ok(status.code().unwrap_or(1))
}

/// A database client's command line through a Loupe listener.
#[derive(Debug, PartialEq, Eq)]
struct ClientCommand {
    program: &'static str,
    args: Vec<String>,
    /// Where the client reads its password from: the API token goes there.
    password_variable: &'static str,
}

impl ClientCommand {
    /// The line to paste into a shell, the token read from `$LOUPE_TOKEN`.
    fn shown(&self) -> String {
        let args: Vec<String> = self.args.iter().map(|arg| shell_quoted(arg)).collect();
        format!(
            "{}=\"$LOUPE_TOKEN\" {} {}",
            self.password_variable,
            self.program,
            args.join(" ")
        )
    }
}

/// `psql` or `mysql` for a connection of `kind` through `listeners`, as `username`.
fn client_command(
    kind: &loupe_protocol::ConnectionKind,
    listeners: &loupe_protocol::Listeners,
    username: &str,
    connection: &str,
) -> Result<ClientCommand> {
    use loupe_protocol::ConnectionKind;
    let split = |address: &str| -> (String, String) {
        let (host, port) = address.rsplit_once(':').unwrap_or((address, ""));
        (host.to_owned(), port.to_owned())
    };
    match kind {
        ConnectionKind::Postgres => {
            let address = listeners.postgres.as_deref().context(
                "this server does not listen for PostgreSQL clients (LOUPE_PG_BIND is unset)",
            )?;
            let (host, port) = split(address);
            Ok(ClientCommand {
                program: "psql",
                args: vec![format!(
                    "host={host} port={port} user={username} dbname={connection} sslmode=require"
                )],
                password_variable: "PGPASSWORD",
            })
        }
        ConnectionKind::Mysql => {
            let address = listeners.mysql.as_deref().context(
                "this server does not listen for MySQL clients (LOUPE_MYSQL_BIND is unset)",
            )?;
            let (host, port) = split(address);
            Ok(ClientCommand {
                program: "mysql",
                args: vec![
                    "--ssl".into(),
                    "--protocol=TCP".into(),
                    "-h".into(),
                    host,
                    "-P".into(),
                    port,
                    "-u".into(),
                    username.to_owned(),
                    "-D".into(),
                    connection.to_owned(),
                ],
                password_variable: "MYSQL_PWD",
            })
        }
        ConnectionKind::Shell | ConnectionKind::Ssh => {
            let ssh = listeners.ssh.as_deref().map(|address| {
                let (host, port) = split(address);
                format!(", or `ssh -p {port} {username}+{connection}@{host}` with a key registered on your Tokens page")
            });
            anyhow::bail!(
                "{connection} is a terminal connection: open it with `loupe ssh {connection}`{}",
                ssh.unwrap_or_default()
            )
        }
        other => anyhow::bail!(
            "{connection} is a {} connection, which no database client opens: use `loupe exec -c {connection}`",
            other.as_str()
        ),
    }
}

/// `text` as one word for a POSIX shell: as it is when it is plain, else in single quotes.
fn shell_quoted(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@+,".contains(c));
    if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

pub async fn run_connections(args: &ServerArgs) -> Result<()> {
    let client = Client::new(args)?;
    let connections: Vec<Connection> = client.get("/api/connections").await?;
    println!("{:<24} {:<10} {:<12} TAGS", "NAME", "KIND", "TYPE");
    for connection in connections {
        println!(
            "{:<24} {:<10} {:<12} {}",
            connection.name,
            connection.kind.as_str(),
            connection.session_type.as_str(),
            connection.tags.join(",")
        );
    }
    Ok(())
}

/// Runs `input` through `connection` and follows the session to its end. Returns the process
/// exit code: the command's own, 0 for SQL that succeeded, 1 for a failure, 130 when stopped.
pub async fn run_exec(
    args: &ServerArgs,
    connection: &str,
    input: &str,
    reason: Option<String>,
) -> Result<i32> {
    let client = Client::new(args)?;
    let request = RunRequest {
        connection: connection.to_owned(),
        input: input.to_owned(),
        reason,
    };
    let session: Session = client
        .send(
            client
                .http
                .post(format!("{}/api/sessions", client.base))
                .json(&request),
        )
        .await?;
    eprintln!(
        "loupe: session {} on {}",
        session.id, session.connection.name
    );
    let mut follower = Follower::default();
    let mut waiting = false;
    loop {
        // Read the session's state first: whatever was recorded before it ended is then
        // certainly among the events read next.
        let current: Session = client.get(&format!("/api/sessions/{}", session.id)).await?;
        // Said once; the decision itself shows as the session's first event (or its end).
        if current.status == SessionStatus::PendingReview && !waiting {
            waiting = true;
            eprintln!("loupe: waiting for approval (reviewers see it under Reviews)…");
        }
        follower.catch_up(&client, &session.id).await?;
        if current.status.is_final() {
            if current.truncated {
                eprintln!("loupe: output past the server's storage limit was not kept");
            }
            return Ok(exit_status(&current));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The process exit code for an ended session: the command's own, 0 for SQL that succeeded,
/// 130 when stopped, otherwise 1 (saying why). A command that exited non-zero has failed, and
/// said why on its own stderr: its code is passed on without more words.
fn exit_status(session: &Session) -> i32 {
    let own_failure = session.exit_code.filter(|code| *code != 0);
    match (session.status, own_failure) {
        (SessionStatus::Done, _) => session.exit_code.unwrap_or(0),
        (SessionStatus::Cancelled, _) => 130,
        (SessionStatus::Failed, Some(code)) => code,
        _ => {
            if let Some(error) = &session.error {
                eprintln!("loupe: {} — {error}", session.status.as_str());
            }
            own_failure.unwrap_or(1)
        }
    }
}

/// What has been printed so far.
#[derive(Default)]
struct Follower {
    after: u64,
    /// Output events and how many of their bytes were printed.
    outputs: Vec<(u64, u64)>,
    /// Result events and how many of their rows were printed.
    results: Vec<(u64, u64)>,
}

impl Follower {
    async fn catch_up(&mut self, client: &Client, id: &str) -> Result<()> {
        loop {
            let page: EventPage = client
                .get(&format!(
                    "/api/sessions/{id}/events?after={}&limit=500",
                    self.after
                ))
                .await?;
            for event in &page.items {
                self.after = event.seq;
                self.begin(event);
                // Events are printed in order: drain this one before the next begins.
                self.drain(client, id).await?;
            }
            if page.next_after.is_none() {
                return self.drain(client, id).await;
            }
        }
    }

    /// Prints what an event says by itself and notes the output or rows that follow it.
    fn begin(&mut self, event: &loupe_protocol::SessionEvent) {
        match event.kind {
            EventKind::Output => self.outputs.push((event.seq, 0)),
            EventKind::Result => {
                let names: Vec<_> = event
                    .columns
                    .iter()
                    .flatten()
                    .map(|column| column.name.as_str())
                    .collect();
                println!("{}", names.join("\t"));
                self.results.push((event.seq, 0));
            }
            EventKind::Error => {
                let code = event
                    .code
                    .as_deref()
                    .map(|code| format!(" ({code})"))
                    .unwrap_or_default();
                eprintln!(
                    "ERROR: {}{code}",
                    event.text.as_deref().unwrap_or(&event.summary)
                );
            }
            EventKind::Note => eprintln!("-- {}", event.summary),
            EventKind::Input | EventKind::Exit | EventKind::Resize => {}
        }
    }

    async fn drain(&mut self, client: &Client, id: &str) -> Result<()> {
        for (seq, printed) in &mut self.outputs {
            loop {
                let window: OutputWindow = client
                    .get(&format!(
                        "/api/sessions/{id}/events/{seq}/output?offset={printed}&length=1048576"
                    ))
                    .await?;
                for piece in &window.pieces {
                    match piece.stream {
                        Stream::Stdout => std::io::stdout().write_all(piece.text.as_bytes())?,
                        Stream::Stderr => std::io::stderr().write_all(piece.text.as_bytes())?,
                        // Keystrokes: the terminal's output already echoes what was typed.
                        Stream::Stdin => {}
                    }
                }
                *printed += window.length;
                if window.length == 0 {
                    break;
                }
            }
        }
        std::io::stdout().flush()?;
        for (seq, printed) in &mut self.results {
            loop {
                let mut window: RowsWindow = client
                    .get(&format!(
                        "/api/sessions/{id}/events/{seq}/rows?offset={printed}&limit=1000&cell_bytes=1048576"
                    ))
                    .await?;
                // Values longer than a window carries are fetched whole.
                for cut in &window.cut {
                    let whole = client
                        .get_text(&format!(
                            "/api/sessions/{id}/events/{seq}/rows/{}/cells/{}",
                            cut.row, cut.column
                        ))
                        .await?;
                    if let Some(cell) = (cut.row.checked_sub(window.offset))
                        .and_then(|index| window.rows.get_mut(index as usize))
                        .and_then(|row| row.get_mut(cut.column as usize))
                    {
                        *cell = Cell::Text(whole);
                    }
                }
                let mut text = Vec::new();
                for row in &window.rows {
                    Delimited::Tsv.row(&mut text, row);
                }
                std::io::stdout().lock().write_all(&text)?;
                *printed += window.rows.len() as u64;
                if window.rows.is_empty() {
                    break;
                }
            }
        }
        Ok(())
    }
}

/// `loupe download`: saves a session's download to `output`, showing progress. An interrupted
/// download leaves `<output>.part`; running the same command again resumes it where it stopped.
pub async fn run_download(
    args: &ServerArgs,
    id: &str,
    format: &str,
    event: Option<u64>,
    output: &std::path::Path,
) -> Result<()> {
    use std::io::IsTerminal;

    let client = Client::new(args)?;
    let partial = output.with_file_name(format!(
        "{}.part",
        output
            .file_name()
            .context("the output needs a file name")?
            .to_string_lossy()
    ));
    let have = std::fs::metadata(&partial)
        .map(|metadata| metadata.len())
        .unwrap_or(0);
    let mut url = format!("{}/api/sessions/{id}/download?format={format}", client.base);
    if let Some(event) = event {
        url.push_str(&format!("&event={event}"));
    }
    let mut request = client.http.get(url).bearer_auth(&client.token);
    if have > 0 {
        request = request.header(reqwest::header::RANGE, format!("bytes={have}-"));
    }
    let mut response = request
        .send()
        .await
        .with_context(|| format!("cannot reach Loupe at {}", client.base))?;
    let status = response.status();
    if status == reqwest::StatusCode::RANGE_NOT_SATISFIABLE && have > 0 {
        // The part file already holds everything.
        std::fs::rename(&partial, output)?;
        eprintln!("saved {} ({have} bytes)", output.display());
        return Ok(());
    }
    if !status.is_success() {
        let message = match response.json::<ErrorBody>().await {
            Ok(body) => body.message,
            Err(_) => status.to_string(),
        };
        bail!("{message}");
    }
    let resumed = status == reqwest::StatusCode::PARTIAL_CONTENT;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(resumed)
        .truncate(!resumed)
        .open(&partial)
        .with_context(|| format!("cannot write {}", partial.display()))?;
    let start = if resumed { have } else { 0 };
    let total = response.content_length().map(|length| length + start);
    if resumed {
        eprintln!("resuming at byte {start}");
    }
    let interactive = std::io::stderr().is_terminal();
    let started = std::time::Instant::now();
    let mut written = start;
    let mut last_shown = std::time::Instant::now();
    while let Some(piece) = response
        .chunk()
        .await
        .context("the download was interrupted; run the same command again to resume")?
    {
        file.write_all(&piece)?;
        written += piece.len() as u64;
        if interactive && last_shown.elapsed() > Duration::from_millis(200) {
            eprint!("\r{}", progress(written, total, start, started.elapsed()));
            last_shown = std::time::Instant::now();
        }
    }
    file.sync_all()?;
    if interactive {
        eprint!("\r");
    }
    eprintln!("{}", progress(written, total, start, started.elapsed()));
    if let Some(total) = total
        && written != total
    {
        bail!(
            "the download stopped at {written} of {total} bytes; run the same command again to resume"
        );
    }
    std::fs::rename(&partial, output)?;
    eprintln!("saved {} ({written} bytes)", output.display());
    Ok(())
}

fn progress(written: u64, total: Option<u64>, start: u64, elapsed: Duration) -> String {
    let rate = (written - start) as f64 / elapsed.as_secs_f64().max(0.001) / 1e6;
    match total {
        Some(total) if total > 0 => format!(
            "{written} / {total} bytes ({:.0}%), {rate:.1} MB/s",
            written as f64 * 100.0 / total as f64
        ),
        _ => format!("{written} bytes, {rate:.1} MB/s"),
    }
}

/// `loupe watch`: follows a session live over the WebSocket until it ends; exits like `exec`.
pub async fn run_watch(args: &ServerArgs, id: &str) -> Result<i32> {
    use futures_util::{SinkExt, StreamExt};
    use loupe_protocol::ServerMessage;
    use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

    let client = Client::new(args)?;
    let mut request = client
        .websocket_url("/api/live")
        .as_str()
        .into_client_request()?;
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {}", client.token).parse()?);
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .with_context(|| format!("cannot open the live connection to {}", client.base))?;
    let watch =
        serde_json::json!({ "type": "watch_session", "id": "watch", "session": id, "after": 0 });
    socket.send(Message::text(watch.to_string())).await?;

    // Output and rows already stored when the watch began are fetched by window; what comes
    // after arrives on the socket.
    let mut follower = Follower::default();
    while let Some(message) = socket.next().await {
        let Message::Text(text) = message? else {
            continue;
        };
        match serde_json::from_str::<ServerMessage>(text.as_str())? {
            ServerMessage::Event { event, .. } => {
                follower.begin(&event);
                if event.bytes > 0 || event.rows > 0 {
                    follower.drain(&client, id).await?;
                }
            }
            ServerMessage::Output { seq, piece, .. } => {
                if let Some((_, printed)) =
                    follower.outputs.iter_mut().find(|(known, _)| *known == seq)
                    && piece.offset + piece.bytes > *printed
                {
                    let skip = printed.saturating_sub(piece.offset) as usize;
                    let text = piece.text.get(skip..).unwrap_or(&piece.text);
                    match piece.stream {
                        Stream::Stdout => std::io::stdout().write_all(text.as_bytes())?,
                        Stream::Stderr => std::io::stderr().write_all(text.as_bytes())?,
                        Stream::Stdin => {}
                    }
                    std::io::stdout().flush()?;
                    *printed = piece.offset + piece.bytes;
                }
            }
            ServerMessage::Rows { .. } => follower.drain(&client, id).await?,
            ServerMessage::Session { session, .. } if session.status.is_final() => {
                follower.drain(&client, id).await?;
                return Ok(exit_status(&session));
            }
            ServerMessage::Resync { .. } => {
                // Fell behind: what is stored is complete, so read the rest from there, then
                // resume the watch from the last event and how much of it was printed.
                follower.catch_up(&client, id).await?;
                let offset = follower
                    .outputs
                    .iter()
                    .chain(&follower.results)
                    .find(|(seq, _)| *seq == follower.after)
                    .map(|(_, printed)| *printed);
                let again = serde_json::json!({ "type": "watch_session", "id": "watch", "session": id, "after": follower.after, "offset": offset });
                socket.send(Message::text(again.to_string())).await?;
            }
            ServerMessage::Error { message, .. } => bail!("{message}"),
            _ => {}
        }
        if let Some(last) = follower
            .outputs
            .iter()
            .chain(&follower.results)
            .map(|(seq, _)| *seq)
            .max()
        {
            follower.after = follower.after.max(last);
        }
    }
    bail!("the live connection closed before the session ended")
}

#[cfg(test)]
mod tests {
    use loupe_protocol::{ConnectionKind, Listeners};

    use super::*;

    #[test]
    fn client_commands_name_the_listener_the_user_and_the_connection() {
        let listeners = Listeners {
            postgres: None,
            mysql: Some("db.example.com:3307".into()),
            tls_fingerprint: None,
            ssh: Some("loupe.example.com:2222".into()),
            ssh_host_key: None,
        };
        let terminal = client_command(&ConnectionKind::Ssh, &listeners, "alice", "web-1")
            .err()
            .unwrap()
            .to_string();
        assert!(
            terminal.contains("loupe ssh web-1")
                && terminal.contains("ssh -p 2222 alice+web-1@loupe.example.com"),
            "{terminal}"
        );
        let mysql = client_command(&ConnectionKind::Mysql, &listeners, "alice", "orders").unwrap();
        assert_eq!(
            mysql.shown(),
            "MYSQL_PWD=\"$LOUPE_TOKEN\" mysql --ssl --protocol=TCP -h db.example.com -P 3307 -u alice -D orders"
        );
        let off = client_command(&ConnectionKind::Postgres, &listeners, "alice", "pg").unwrap_err();
        assert!(off.to_string().contains("LOUPE_PG_BIND is unset"), "{off}");
        let shell =
            client_command(&ConnectionKind::Command, &listeners, "alice", "sh").unwrap_err();
        assert!(shell.to_string().contains("loupe exec -c sh"), "{shell}");
        assert_eq!(shell_quoted("it's"), "'it'\\''s'");
        assert_eq!(shell_quoted(""), "''");
    }
}
