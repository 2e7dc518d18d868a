//! `cargo xtask bench terminal`: terminal sessions through Loupe next to the same work without
//! it, in the same run (see `main.rs`). Needs a real OpenSSH server (Debian's openssh-server,
//! started here on a loopback port with a throw-away account, so the bench runs as root).
//!
//! - Throughput: `cat` of a file (`--megabytes`, 200 by default) in a terminal, with `ssh -tt`
//!   straight to sshd, then through Loupe's SSH listener and an ssh connection (every byte
//!   relayed, recorded and keyframed), in [`ROUNDS`] alternating pairs; the median pair's
//!   ratio is the figure. Target: Loupe at least 0.5× direct.
//! - Keystroke echo: one character typed, its echo read back, 300 times, over an SSH PTY
//!   straight to sshd and through Loupe (russh as the client for both). Target: p99 added under
//!   5 ms.
//! - Seeking: an hour-long, 50 MB recording (made through the terminal recorder with the times
//!   an hour of output would have), then the first frame at minute 59 the way the player gets
//!   it: the keyframe before it and the first window of output after it. Target: under 300 ms;
//!   the bytes fetched are printed. Baseline: `GET /healthz`.
//! - Storage: what the recordings keep (output and keyframes) against their raw output.
//!   Target: at most 1.1×.

use std::{process::Stdio, sync::Arc};

use bytes::Bytes;
use loupe_protocol::{ScreenStart, SessionStatus};
use loupe_server::{
    live::Hub,
    sessions::recorder::{Append, Recorder},
    store::now_us,
    terminal::{record::Recording, screen::Size},
};
use russh::{ChannelMsg, client, keys::PrivateKeyWithHashAlg};
use tokio::io::AsyncWriteExt;

use super::*;

#[path = "../../tests/support/sshd.rs"]
mod sshd;
#[path = "../../tests/support/terminal_session.rs"]
mod terminal_session;

const ECHOES: usize = 300;
/// Pairs of `cat` legs (direct, then through Loupe).
const ROUNDS: usize = 3;
const HOUR_MS: u64 = 3_600_000;

pub async fn run(backend: &str, megabytes: u64) -> Result<()> {
    println!(
        "\n== bench terminal on {backend}: cat of {megabytes} MB, keystroke echo, seeking an hour-long recording"
    );
    let sshd = sshd::Sshd::start().await;
    let scratch = tempfile::tempdir()?;
    let target_key = scratch.path().join("target_key");
    write_private(&target_key, &sshd.private_key)?;
    let loupe_key = scratch.path().join("loupe_key");
    let generated = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&loupe_key)
        .status()?;
    anyhow::ensure!(generated.success(), "ssh-keygen failed");

    let database = TestDatabase::create_on(backend).await;
    let ssh_bind = super::gateway::free_address()?;
    let bind = ssh_bind.clone();
    let server =
        BenchServer::start_with(&database, move |config| config.ssh_bind = Some(bind)).await?;
    let post = |path: &str, body: serde_json::Value| {
        server
            .client
            .post(format!("{}{path}", server.address))
            .bearer_auth(&server.token)
            .json(&body)
            .send()
    };
    let created = post(
        "/api/connections",
        serde_json::json!({
            "name": "web-1", "kind": "ssh",
            "ssh": { "host": "127.0.0.1", "port": sshd.port, "username": sshd.user, "private_key": sshd.private_key },
        }),
    )
    .await?;
    anyhow::ensure!(
        created.status() == 201,
        "creating the ssh connection: {}",
        created.status()
    );
    let connection: serde_json::Value = created.json().await?;
    let tested: serde_json::Value = post(
        &format!(
            "/api/connections/{}/test",
            connection["id"].as_str().unwrap_or_default()
        ),
        serde_json::json!({}),
    )
    .await?
    .json()
    .await?;
    anyhow::ensure!(tested["ok"] == true, "testing the ssh connection: {tested}");
    let public_key = std::fs::read_to_string(loupe_key.with_extension("pub"))?;
    let added = post(
        "/api/me/ssh-keys",
        serde_json::json!({ "public_key": public_key }),
    )
    .await?;
    anyhow::ensure!(added.status() == 201, "adding the key: {}", added.status());
    let loupe_port: u16 = ssh_bind
        .rsplit_once(':')
        .and_then(|(_, port)| port.parse().ok())
        .context("a port")?;

    // Throughput.
    let file = std::path::PathBuf::from(format!(
        "/tmp/loupe-bench-terminal-{}.txt",
        std::process::id()
    ));
    write_text_file(&file, megabytes * 1_000_000)?;
    let size = std::fs::metadata(&file)?.len();
    let mb_s = |elapsed: Duration| size as f64 / 1e6 / elapsed.as_secs_f64();
    // Legs alternate, each pair gives a ratio, and the median pair is the figure: this
    // machine's own speed swings by half between runs a minute apart.
    let mut ratios = Vec::new();
    for round in 1..=ROUNDS {
        let direct = timed_ssh(
            &target_key,
            sshd.port,
            &sshd.user,
            Some(&format!("cat {}", file.display())),
            None,
        )
        .await?;
        let through = timed_ssh(
            &loupe_key,
            loupe_port,
            "admin+web-1",
            None,
            Some(format!("exec cat {}\n", file.display())),
        )
        .await?;
        let ratio = direct.as_secs_f64() / through.as_secs_f64();
        println!(
            "throughput  round {round}: direct ssh {:.0} MB/s ({:.2} s)   through Loupe {:.0} MB/s ({:.2} s)   ratio {ratio:.2}×",
            mb_s(direct),
            direct.as_secs_f64(),
            mb_s(through),
            through.as_secs_f64(),
        );
        ratios.push(ratio);
        // The keyframes of this leg are drawn behind it: the next pair starts once they are,
        // so their catching up takes no CPU from the next direct leg.
        keyframes_settled(&database, &latest_terminal(&server).await?.0).await?;
    }
    let _ = std::fs::remove_file(&file);
    ratios.sort_by(f64::total_cmp);
    let ratio = ratios[ratios.len() / 2];
    println!(
        "throughput  median of {ROUNDS} rounds: ratio {ratio:.2}× (target ≥ 0.50×: {})",
        if ratio >= 0.5 { "met" } else { "MISSED" }
    );
    let (id, output_bytes) = latest_terminal(&server).await?;
    storage(&database, &id, output_bytes, "the cat").await?;
    anyhow::ensure!(
        output_bytes >= size,
        "the terminal recorded {output_bytes} bytes of a {size}-byte file"
    );

    // Keystroke echo.
    let straight = echo_latencies(&target_key, sshd.port, &sshd.user).await?;
    let looped = echo_latencies(&loupe_key, loupe_port, "admin+web-1").await?;
    let (mut straight, mut looped) = (straight, looped);
    let added = ms(percentile(&mut looped, 0.99)) - ms(percentile(&mut straight, 0.99));
    println!(
        "echo        direct p50 {:.2} ms p99 {:.2} ms   through Loupe p50 {:.2} ms p99 {:.2} ms   added p99 {added:.2} ms (target < 5 ms: {})",
        ms(percentile(&mut straight, 0.5)),
        ms(percentile(&mut straight, 0.99)),
        ms(percentile(&mut looped, 0.5)),
        ms(percentile(&mut looped, 0.99)),
        if added < 5.0 { "met" } else { "MISSED" }
    );

    // Seeking an hour.
    let store = Store::open(&Secret::new(database.url()), 2).await?;
    let hour = record_an_hour(&store).await?;
    let mut healthz = Vec::new();
    let mut first_frame = Vec::new();
    let mut fetched = 0;
    for round in 0..20u64 {
        healthz.push(server.timed_get("/healthz").await?.0);
        let at_ms = HOUR_MS - 60_000 + round * 1000;
        let started = Instant::now();
        let (_, response) = server
            .timed_get(&format!("/api/sessions/{hour}/screen?at_ms={at_ms}"))
            .await?;
        let start: ScreenStart = response.json().await?;
        let (_, window) = server
            .timed_get(&format!(
                "/api/sessions/{hour}/events/{}/output?offset={}&length=262144",
                start.seq.unwrap_or(0),
                start.offset
            ))
            .await?;
        let window = window.bytes().await?;
        first_frame.push(started.elapsed());
        fetched = start.screen.len() + window.len();
    }
    let frame_p50 = ms(percentile(&mut first_frame, 0.5));
    let frame_p95 = ms(percentile(&mut first_frame, 0.95));
    println!(
        "seek        minute 59 of an hour (50 MB): first frame p50 {frame_p50:.1} ms p95 {frame_p95:.1} ms, {:.0} KiB fetched   healthz p50 {:.2} ms (target < 300 ms: {})",
        fetched as f64 / 1024.0,
        ms(percentile(&mut healthz, 0.5)),
        if frame_p95 < 300.0 { "met" } else { "MISSED" }
    );
    let hour_session = store.session(&hour).await?.context("the hour's session")?;
    storage(
        &database,
        &hour,
        hour_session.output_bytes as u64,
        "the hour",
    )
    .await?;
    store.close().await;
    server.stop().await
}

fn write_private(path: &std::path::Path, text: &str) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

/// `bytes` of numbered text lines, readable by everyone (the throw-away account cats it).
fn write_text_file(path: &std::path::Path, bytes: u64) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut written = 0;
    let mut line = 0u64;
    while written < bytes {
        let text = format!("{line:>10} the quick brown fox jumps over the lazy dog, 0123456789\n");
        file.write_all(text.as_bytes())?;
        written += text.len() as u64;
        line += 1;
    }
    file.flush()?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))?;
    Ok(())
}

/// Wall time of `ssh -tt` as `user` on `port` running `command`, or typing `typed` into the
/// login shell; its output is read and dropped.
async fn timed_ssh(
    key: &std::path::Path,
    port: u16,
    user: &str,
    command: Option<&str>,
    typed: Option<String>,
) -> Result<Duration> {
    let mut ssh = tokio::process::Command::new("ssh");
    ssh.arg("-tt")
        .args(["-p", &port.to_string(), "-i"])
        .arg(key)
        .args([
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
        ])
        .args(["-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"])
        .arg(format!("{user}@127.0.0.1"))
        .args(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = ssh.spawn()?;
    let mut stdin = child.stdin.take().context("stdin")?;
    if let Some(typed) = typed {
        stdin.write_all(typed.as_bytes()).await?;
    }
    let output = child.wait_with_output().await?;
    let elapsed = started.elapsed();
    drop(stdin);
    anyhow::ensure!(
        output.status.success(),
        "ssh {user}: {} {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(elapsed)
}

struct AnyHost;

impl client::Handler for AnyHost {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        _: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

/// Types one character at a time into a PTY shell and times each echo.
async fn echo_latencies(key: &std::path::Path, port: u16, user: &str) -> Result<Vec<Duration>> {
    let key = russh::keys::load_secret_key(key, None)?;
    let config = Arc::new(client::Config {
        nodelay: true,
        ..client::Config::default()
    });
    let mut handle = client::connect(config, ("127.0.0.1", port), AnyHost).await?;
    let accepted = handle
        .authenticate_publickey(user, PrivateKeyWithHashAlg::new(Arc::new(key), None))
        .await?;
    anyhow::ensure!(accepted.success(), "{user} was not let in");
    let mut channel = handle.channel_open_session().await?;
    channel
        .request_pty(true, "xterm", 120, 40, 0, 0, &[])
        .await?;
    channel.request_shell(true).await?;
    // Let the shell print its prompt first.
    settle(&mut channel).await;
    let mut samples = Vec::with_capacity(ECHOES);
    for index in 0..ECHOES {
        let started = Instant::now();
        channel.data_bytes(Bytes::from_static(b"x")).await?;
        loop {
            match tokio::time::timeout(Duration::from_secs(5), channel.wait()).await {
                Ok(Some(ChannelMsg::Data { data })) if data.contains(&b'x') => break,
                Ok(Some(_)) => {}
                _ => anyhow::bail!("no echo from {user}"),
            }
        }
        samples.push(started.elapsed());
        if index % 50 == 49 {
            // Ctrl-U: a fresh line, so the line never wraps.
            channel.data_bytes(Bytes::from_static(b"\x15")).await?;
            settle(&mut channel).await;
        }
    }
    let _ = channel.data_bytes(Bytes::from_static(b"\x15exit\r")).await;
    let _ = handle
        .disconnect(russh::Disconnect::ByApplication, "", "en")
        .await;
    Ok(samples)
}

/// Reads whatever the channel sends until it is quiet for 300 ms.
async fn settle(channel: &mut russh::Channel<client::Msg>) {
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(300), channel.wait()).await {
    }
}

/// Records an hour of terminal output (50 MB, a piece about every second) through the terminal
/// recorder, with the times it would have had; answers its session id.
async fn record_an_hour(store: &Store) -> Result<String> {
    let started_at_us = now_us() - (HOUR_MS as i64) * 1000;
    let id = terminal_session::running_terminal(store, "an hour of terminal", started_at_us).await;
    let recorder = Recorder::start(store.clone(), 4 << 30, 4096, Hub::new(1024, "bench".into()));
    let recording = Recording::start(
        recorder.clone(),
        store.clone(),
        id.clone(),
        Size {
            cols: 120,
            rows: 40,
        },
    );
    let pieces = 3600u64;
    let per_piece = 50_000_000 / pieces as usize;
    let mut rng = Rng(7);
    for piece in 0..pieces {
        let mut text = String::with_capacity(per_piece + 200);
        while text.len() < per_piece {
            let level = [
                "\x1b[32mINFO\x1b[0m",
                "\x1b[33mWARN\x1b[0m",
                "\x1b[31mERROR\x1b[0m",
            ][rng.next() as usize % 3];
            text.push_str(&format!(
                "{level} request {} took {} ms from 10.0.{}.{}\r\n",
                rng.next() % 1_000_000,
                rng.next() % 900,
                rng.next() % 256,
                rng.next() % 256
            ));
        }
        let at_us = started_at_us + (piece * HOUR_MS * 1000 / pieces) as i64;
        anyhow::ensure!(
            recording.output_at(at_us, Bytes::from(text)).await,
            "recording failed"
        );
    }
    recording
        .finish_with_keyframes()
        .await
        .map_err(anyhow::Error::msg)?;
    recorder
        .record(
            &id,
            vec![Append::Finish {
                status: SessionStatus::Done,
                exit_code: Some(0),
                error: None,
            }],
        )
        .await?;
    Ok(id)
}

/// Prints what a recording keeps against its raw output.
/// The id and output bytes of the latest terminal session.
async fn latest_terminal(server: &BenchServer) -> Result<(String, u64)> {
    let page: serde_json::Value = server
        .client
        .get(format!("{}/api/sessions?type=ssh&limit=1", server.address))
        .bearer_auth(&server.token)
        .send()
        .await?
        .json()
        .await?;
    let recorded = &page["items"][0];
    let id = recorded["id"]
        .as_str()
        .context("the terminal's session")?
        .to_owned();
    Ok((id, recorded["counts"]["output_bytes"].as_u64().unwrap_or(0)))
}

/// The keyframes of session `id` (count, bytes) once no new one has come for a second: they
/// are drawn behind the record at the lowest priority (nothing else runs meanwhile).
async fn keyframes_settled(database: &TestDatabase, id: &str) -> Result<(i64, i64)> {
    let store = Store::open(&Secret::new(database.url()), 1).await?;
    let mut totals = store.keyframe_totals(id).await?;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = store.keyframe_totals(id).await?;
        if now == totals {
            break;
        }
        totals = now;
    }
    store.close().await;
    Ok(totals)
}

async fn storage(database: &TestDatabase, id: &str, output_bytes: u64, what: &str) -> Result<()> {
    let (keyframes, keyframe_bytes) = keyframes_settled(database, id).await?;
    let ratio = (output_bytes + keyframe_bytes as u64) as f64 / output_bytes.max(1) as f64;
    println!(
        "storage     {what}: {:.1} MB of output, {keyframes} keyframes of {:.0} KiB: {ratio:.3}× the raw output (target ≤ 1.1×: {})",
        output_bytes as f64 / 1e6,
        keyframe_bytes as f64 / 1024.0,
        if ratio <= 1.1 { "met" } else { "MISSED" }
    );
    Ok(())
}
