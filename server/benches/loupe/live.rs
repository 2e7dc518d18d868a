//! `cargo xtask bench live`: one producer and many WebSocket watchers. See `main.rs`.

//! One producer, many watchers on real WebSockets, next to a bare tokio-tungstenite
//! broadcast of the same messages to the same number of sockets.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicU64, Ordering},
};

use futures_util::{SinkExt, StreamExt};
use loupe_protocol::ServerMessage;
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

use super::*;

/// Delivery latencies in 10 µs buckets up to 10 s.
#[derive(Clone)]
struct Histogram(Vec<u64>);

impl Histogram {
    fn new() -> Histogram {
        Histogram(vec![0; 1_000_001])
    }

    fn record(&mut self, micros: i64) {
        let bucket = (micros.max(0) / 10).min(1_000_000) as usize;
        self.0[bucket] += 1;
    }

    fn merge(&mut self, other: &Histogram) {
        self.0
            .iter_mut()
            .zip(&other.0)
            .for_each(|(mine, theirs)| *mine += theirs);
    }

    fn count(&self) -> u64 {
        self.0.iter().sum()
    }

    fn percentile_ms(&self, p: f64) -> f64 {
        let target = (self.count() as f64 * p).ceil() as u64;
        let mut seen = 0;
        for (bucket, count) in self.0.iter().enumerate() {
            seen += count;
            if seen >= target.max(1) {
                return bucket as f64 * 10.0 / 1000.0;
            }
        }
        f64::NAN
    }
}

#[derive(Default)]
struct Tally {
    lost: AtomicU64,
    resyncs: AtomicU64,
    delivered: AtomicU64,
}

pub async fn run(backend: &str, watchers: usize, rate: u64, seconds: u64) -> Result<()> {
    println!("\n== bench live on {backend}: {watchers} watchers, {rate} events/s for {seconds} s");
    let database = TestDatabase::create_on(backend).await;
    let token = admin_token(&database).await?;

    // The server in its own process, so its memory is its own.
    let data = tempfile::tempdir()?;
    let mut server = tokio::process::Command::new(env!("CARGO_BIN_EXE_loupe"))
        .arg("serve")
        .env("LOUPE_BIND", "127.0.0.1:0")
        .env("DATABASE_URL", database.url())
        .env("LOUPE_DATA_DIR", data.path())
        .env("LOUPE_STATIC_DIR", "/nonexistent")
        .env("LOUPE_LIVE_QUEUE", "65536")
        .env("LOUPE_LOG", "warn,loupe=info")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let pid = server.id().context("server pid")?;
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(
        server.stdout.take().context("stdout")?,
    ));
    let address = loop {
        let line = lines
            .next_line()
            .await?
            .context("the server prints where it listens")?;
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest
                .split_whitespace()
                .next()
                .context("an address")?
                .to_owned();
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let client = reqwest::Client::new();
    let created: serde_json::Value = client
        .post(format!("{address}/api/ingest/sessions"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "connection": "ops", "connection_kind": "ssh", "type": "ssh", "input": "tail -f" }))
        .send()
        .await?
        .json()
        .await?;
    let id = created["id"].as_str().context("id")?.to_owned();

    let tally = Arc::new(Tally::default());
    let histogram = Arc::new(Mutex::new(Histogram::new()));
    let mut tasks = Vec::new();
    for _ in 0..watchers {
        let mut request =
            format!("{}/api/live", address.replace("http://", "ws://")).into_client_request()?;
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse()?);
        let (mut socket, _) = tokio_tungstenite::connect_async(request).await?;
        let watch =
            serde_json::json!({ "type": "watch_session", "id": "w", "session": id, "after": 1 });
        socket.send(Message::text(watch.to_string())).await?;
        let (tally, histogram) = (tally.clone(), histogram.clone());
        tasks.push(tokio::spawn(async move {
            let mut mine = Histogram::new();
            let mut last = 1u64;
            while let Some(Ok(message)) = socket.next().await {
                let Message::Text(text) = message else {
                    continue;
                };
                let received = loupe_server::store::now_us();
                match serde_json::from_str::<ServerMessage>(text.as_str()) {
                    Ok(ServerMessage::Event { event, .. }) => {
                        if event.seq != last + 1 {
                            tally
                                .lost
                                .fetch_add(event.seq.saturating_sub(last + 1), Ordering::Relaxed);
                        }
                        last = last.max(event.seq);
                        mine.record(received - event.at.as_micros());
                        tally.delivered.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(ServerMessage::Resync { .. }) => {
                        tally.resyncs.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(ServerMessage::Session { session, .. }) if session.status.is_final() => {
                        break;
                    }
                    _ => {}
                }
            }
            histogram.lock().expect("never poisoned").merge(&mine);
        }));
    }
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
                    .ok()
                    .and_then(|status| {
                        status
                            .lines()
                            .find(|line| line.starts_with("VmRSS:"))
                            .and_then(|line| line.split_whitespace().nth(1)?.parse::<u64>().ok())
                    })
                    .unwrap_or(0);
                peak.fetch_max(rss, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };

    // The producer: rate/100 notes every 10 ms, each batch acknowledged after commit.
    let per_batch = (rate / 100).max(1) as usize;
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let mut produced = 0u64;
    while started.elapsed() < Duration::from_secs(seconds) {
        tick.tick().await;
        let events: Vec<serde_json::Value> = (0..per_batch).map(|n| serde_json::json!({ "kind": "note", "text": format!("event {}", produced + n as u64) })).collect();
        let response = client
            .post(format!("{address}/api/ingest/sessions/{id}/events"))
            .bearer_auth(&token)
            .json(&serde_json::json!({ "events": events }))
            .send()
            .await?;
        anyhow::ensure!(response.status() == 200, "append: {}", response.status());
        produced += per_batch as u64;
    }
    let producing = started.elapsed();
    client
        .post(format!("{address}/api/ingest/sessions/{id}/close"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "status": "done" }))
        .send()
        .await?;
    // One deadline for all watchers: a watcher that never hears the end must not stall the rest.
    let _ = tokio::time::timeout(
        Duration::from_secs(120),
        futures_util::future::join_all(tasks),
    )
    .await;
    let delivering = started.elapsed();
    sampler.abort();
    let histogram = histogram.lock().expect("never poisoned").clone();
    let delivered = tally.delivered.load(Ordering::Relaxed);
    let loupe_rate = delivered as f64 / delivering.as_secs_f64();
    println!(
        "loupe: produced {produced} events in {:.1} s ({:.0}/s); delivered {delivered} of {} expected; lost {}; resyncs {}",
        producing.as_secs_f64(),
        produced as f64 / producing.as_secs_f64(),
        produced * watchers as u64,
        tally.lost.load(Ordering::Relaxed),
        tally.resyncs.load(Ordering::Relaxed)
    );
    println!(
        "loupe: latency p50 {:.2} ms, p99 {:.2} ms; {loupe_rate:.0} messages/s delivered; server peak memory {:.0} MiB",
        histogram.percentile_ms(0.5),
        histogram.percentile_ms(0.99),
        peak.load(Ordering::Relaxed) as f64 / 1024.0
    );
    let _ = server.kill().await;
    drop(database);

    let (base_p50, base_p99, base_rate) = baseline(watchers, rate, seconds).await?;
    println!(
        "baseline (bare tokio-tungstenite broadcast, same messages): latency p50 {base_p50:.2} ms, p99 {base_p99:.2} ms; {base_rate:.0} messages/s"
    );
    println!(
        "ratio loupe ÷ baseline: messages/s {:.2}, p99 latency {:.2}  (target: p99 < 50 ms, nothing lost)",
        loupe_rate / base_rate,
        histogram.percentile_ms(0.99) / base_p99
    );
    Ok(())
}

/// The same load through the simplest possible WebSocket fan-out.
async fn baseline(watchers: usize, rate: u64, seconds: u64) -> Result<(f64, f64, f64)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let (sender, _) = tokio::sync::broadcast::channel::<Arc<String>>(65_536);
    let accepting = {
        let sender = sender.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let mut receiver = sender.subscribe();
                tokio::spawn(async move {
                    let Ok(mut socket) = tokio_tungstenite::accept_async(stream).await else {
                        return;
                    };
                    while let Ok(message) = receiver.recv().await {
                        if socket.send(Message::text(message.as_str())).await.is_err() {
                            return;
                        }
                    }
                });
            }
        })
    };
    let histogram = Arc::new(Mutex::new(Histogram::new()));
    let delivered = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..watchers {
        let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{address}")).await?;
        let (histogram, delivered) = (histogram.clone(), delivered.clone());
        tasks.push(tokio::spawn(async move {
            let mut mine = Histogram::new();
            while let Some(Ok(Message::Text(text))) = socket.next().await {
                if text.as_str() == "end" {
                    break;
                }
                let received = loupe_server::store::now_us();
                if let Ok(ServerMessage::Event { event, .. }) =
                    serde_json::from_str::<ServerMessage>(text.as_str())
                {
                    mine.record(received - event.at.as_micros());
                    delivered.fetch_add(1, Ordering::Relaxed);
                }
            }
            histogram.lock().expect("never poisoned").merge(&mine);
        }));
    }
    let per_batch = (rate / 100).max(1);
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let mut seq = 1;
    while started.elapsed() < Duration::from_secs(seconds) {
        tick.tick().await;
        for _ in 0..per_batch {
            seq += 1;
            let event = loupe_protocol::SessionEvent {
                seq,
                at: loupe_protocol::Timestamp::from_micros(loupe_server::store::now_us()),
                kind: loupe_protocol::EventKind::Note,
                summary: format!("event {seq}"),
                text: Some(format!("event {seq}")),
                code: None,
                exit_code: None,
                columns: None,
                bytes: 0,
                rows: 0,
            };
            let message = ServerMessage::Event {
                id: "w".into(),
                session: "s".into(),
                event,
            };
            let _ = sender.send(Arc::new(serde_json::to_string(&message)?));
        }
    }
    let _ = sender.send(Arc::new("end".into()));
    let _ = tokio::time::timeout(
        Duration::from_secs(120),
        futures_util::future::join_all(tasks),
    )
    .await;
    let elapsed = started.elapsed();
    accepting.abort();
    let histogram = histogram.lock().expect("never poisoned").clone();
    Ok((
        histogram.percentile_ms(0.5),
        histogram.percentile_ms(0.99),
        delivered.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64(),
    ))
}
