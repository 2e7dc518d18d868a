//! `cargo xtask bench list | ingest`: Loupe's speed figures, through its HTTP API on loopback,
//! each printed next to a baseline measured in the same run, because these machines are noisy.
//!
//! - `list`: seeds sessions like real use (hundreds of users, dozens of connections, four types,
//!   90 days, a few percent running), then times the first page and the 50th page (walking the
//!   cursor) of every combination of the five list filters. Baseline: `GET /healthz`.
//! - `ingest`: one session appending output (1 GiB by default) through the raw ingest endpoint.
//!   Baseline: writing the same bytes to a plain file. Then windows at random offsets, their
//!   latency, the server's memory before and after, and the window query's plan.
//! - `live`: one producer and many watchers over real WebSockets: delivery latency, loss,
//!   messages per second, the server's peak memory; next to a bare tokio-tungstenite broadcast.
//! - `download`: the same output downloaded as `txt` over HTTP. Baseline: `cat` of a file of the
//!   same size. Also the server's peak memory growth while it streams.
//!
//! Backends come from `LOUPE_BENCH_BACKENDS` (`sqlite,postgres`); PostgreSQL from
//! `LOUPE_TEST_DATABASE_URL`.

use std::{
    io::Write,
    str::FromStr,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use loupe_protocol::{NewToken, SessionPage};
use loupe_server::{Config, config::Secret, identity, identity::auth::Actor, store::Store};
use sqlx::{
    ConnectOptions, Connection, Executor,
    postgres::{PgConnectOptions, PgConnection, PgPool},
    sqlite::SqlitePool,
};
use tokio::{net::TcpListener, sync::oneshot};

const DAY_US: i64 = 86_400_000_000;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| arg != "--bench")
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let backends = std::env::var("LOUPE_BENCH_BACKENDS").unwrap_or_else(|_| "sqlite".into());
    let number = |flag: &str, default: u64| -> u64 {
        args.iter()
            .position(|arg| arg == flag)
            .and_then(|at| args.get(at + 1))
            .and_then(|value| value.parse().ok())
            .unwrap_or(default)
    };
    for backend in backends.split(',').filter(|name| !name.is_empty()) {
        match args.first().map(String::as_str) {
            Some("list") => {
                runtime.block_on(list::run(backend, number("--sessions", 1_000_000) as usize))?
            }
            Some("ingest") => runtime.block_on(ingest::run(backend, number("--bytes", 1 << 30)))?,
            Some("download") => {
                runtime.block_on(download::run(backend, number("--bytes", 1 << 30)))?
            }
            Some("live") => runtime.block_on(live::run(
                backend,
                number("--watchers", 1000) as usize,
                number("--rate", 10_000),
                number("--seconds", 30),
            ))?,
            _ => anyhow::bail!(
                "usage: bench list [--sessions N] | ingest|download [--bytes N] | live [--watchers N --rate N --seconds N]"
            ),
        }
    }
    Ok(())
}

/// A database for one bench run, dropped afterwards.
struct BenchDatabase {
    url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    /// Removed with the folder when dropped.
    Sqlite {
        _folder: tempfile::TempDir,
    },
    Postgres(Box<PgConnectOptions>, String),
}

impl BenchDatabase {
    async fn create(backend: &str) -> Result<BenchDatabase> {
        if backend == "postgres" {
            let url = std::env::var("LOUPE_TEST_DATABASE_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
            let admin = PgConnectOptions::from_str(&url)?;
            let name = format!("loupe_bench_{}", uuid::Uuid::new_v4().simple());
            PgConnection::connect_with(&admin)
                .await?
                .execute(format!("CREATE DATABASE {name}").as_str())
                .await?;
            let url = admin.clone().database(&name).to_url_lossy().to_string();
            Ok(BenchDatabase {
                url,
                cleanup: Cleanup::Postgres(Box::new(admin), name),
            })
        } else {
            // The system's temporary folder unless told otherwise: never inside the checkout.
            let dir = tempfile::tempdir_in(
                std::env::var_os("LOUPE_BENCH_DIR")
                    .map_or_else(std::env::temp_dir, std::path::PathBuf::from),
            )?;
            let url = format!("sqlite://{}", dir.path().join("bench.db").display());
            Ok(BenchDatabase {
                url,
                cleanup: Cleanup::Sqlite { _folder: dir },
            })
        }
    }

    async fn drop_database(self) -> Result<()> {
        if let Cleanup::Postgres(admin, name) = self.cleanup {
            PgConnection::connect_with(&admin)
                .await?
                .execute(format!("DROP DATABASE {name} WITH (FORCE)").as_str())
                .await?;
        }
        Ok(())
    }

    /// Runs SQL written out in full (the seeding statements), on either backend.
    async fn execute(&self, sql: &str) -> Result<()> {
        if self.url.starts_with("sqlite") {
            let pool = SqlitePool::connect(&self.url).await?;
            sqlx::raw_sql(sql).execute(&pool).await?;
            pool.close().await;
        } else {
            let pool = PgPool::connect(&self.url).await?;
            sqlx::raw_sql(sql).execute(&pool).await?;
            pool.close().await;
        }
        Ok(())
    }
}

/// A running server over the bench database, and an administrator's token for it.
struct BenchServer {
    address: String,
    client: reqwest::Client,
    token: String,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<()>>,
}

/// Creates the administrator on the bench database and returns an API token for them.
async fn admin_token(database: &BenchDatabase) -> Result<String> {
    let store = Store::open(&Secret::new(database.url.clone()), 2).await?;
    identity::ensure_initial_admin(
        &store,
        Some(&Secret::new("bench-admin-heron-basalt".into())),
    )
    .await?;
    let admin = store
        .user_by_username("admin")
        .await?
        .context("admin exists")?;
    let new = NewToken {
        name: "bench".into(),
        expires_in_days: None,
    };
    let token = identity::create_token(&store, &Actor::command_line(), &admin, &new)
        .await?
        .secret;
    store.close().await;
    Ok(token)
}

impl BenchServer {
    async fn start(database: &BenchDatabase) -> Result<BenchServer> {
        let token = admin_token(database).await?;
        let mut config = Config::with_database(database.url.clone());
        config.static_dir = "/nonexistent".into();
        config.log = "warn".into();
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(loupe_server::serve(config, listener, async {
            let _ = stopped.await;
        }));
        Ok(BenchServer {
            address,
            client: reqwest::Client::new(),
            token,
            stop: Some(stop),
            task,
        })
    }

    /// Times one GET; fails on anything but 200.
    async fn timed_get(&self, path: &str) -> Result<(Duration, reqwest::Response)> {
        let started = Instant::now();
        let response = self
            .client
            .get(format!("{}{path}", self.address))
            .bearer_auth(&self.token)
            .send()
            .await?;
        anyhow::ensure!(
            response.status() == 200,
            "GET {path}: {}",
            response.status()
        );
        let elapsed = started.elapsed();
        Ok((elapsed, response))
    }

    async fn stop(mut self) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await?
    }
}

/// A small, fast, deterministic generator: benches must be repeatable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Skewed towards 0, like real use: a few users and connections do most of the work.
    fn skewed(&mut self, n: u64) -> u64 {
        let x = (self.next() % 1_000_000) as f64 / 1_000_000.0;
        ((x * x) * n as f64) as u64
    }

    fn unit(&mut self) -> f64 {
        (self.next() % 1_000_000) as f64 / 1_000_000.0
    }
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// The server process's resident memory, in MiB (the server runs inside this process).
fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmRSS:"))
                .map(str::to_owned)
        })
        .and_then(|line| {
            line.split_whitespace()
                .nth(1)
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

mod list {
    use super::*;

    const USERS: u64 = 300;
    const CONNECTIONS: u64 = 40;
    const TYPES: [&str; 4] = ["database", "command", "ssh", "application"];
    const KINDS: [&str; 4] = ["postgres", "command", "ssh", "kubectl"];
    const FILTERS: [&str; 5] = ["user", "connection", "type", "status", "period"];

    fn status(rng: &mut Rng) -> &'static str {
        match rng.below(1000) {
            0..=29 => "running",
            30..=879 => "done",
            880..=959 => "failed",
            960..=979 => "cancelled",
            980..=989 => "rejected",
            _ => "interrupted",
        }
    }

    pub async fn run(backend: &str, sessions: usize) -> Result<()> {
        println!("\n== bench list on {backend}: {sessions} sessions");
        let database = BenchDatabase::create(backend).await?;
        let server = BenchServer::start(&database).await?;
        let seeded = Instant::now();
        seed(&database, sessions).await?;
        println!("seeded in {:.1} s", seeded.elapsed().as_secs_f64());

        let mut health: Vec<Duration> = Vec::new();
        for _ in 0..300 {
            health.push(server.timed_get("/healthz").await?.0);
        }
        let baseline = percentile(&mut health, 0.95);
        println!(
            "baseline GET /healthz (HTTP + one database round trip): p50 {:.2} ms, p95 {:.2} ms",
            ms(percentile(&mut health, 0.5)),
            ms(baseline)
        );
        println!(
            "{:<38} {:>9} {:>9} {:>7} {:>9} {:>9}",
            "filters", "1st p50", "1st p95", "÷base", "50th p50", "50th p95"
        );

        let now = loupe_server::store::now_us();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut worst_first = Duration::ZERO;
        let mut worst_fiftieth = Duration::ZERO;
        for mask in 0u32..32 {
            let name: Vec<&str> = FILTERS
                .iter()
                .enumerate()
                .filter(|(bit, _)| mask & (1 << bit) != 0)
                .map(|(_, name)| *name)
                .collect();
            // Random values for the first page, as people pick them; the most used values for
            // the walk to page 50, so that as many combinations as possible have 50 pages.
            let query = |rng: &mut Rng, busiest: bool| {
                let mut pick = |n: u64| if busiest { 0 } else { rng.skewed(n) };
                let mut parts = vec!["limit=50".to_owned()];
                if mask & 1 != 0 {
                    parts.push(format!("user=user{:03}", pick(USERS)));
                }
                if mask & 2 != 0 {
                    parts.push(format!("connection=conn-{:02}", pick(CONNECTIONS)));
                }
                if mask & 4 != 0 {
                    parts.push(format!("type={}", TYPES[pick(4) as usize]));
                }
                if mask & 8 != 0 {
                    parts.push(format!(
                        "status={}",
                        ["done", "failed", "running"][pick(3) as usize]
                    ));
                }
                if mask & 16 != 0 {
                    let end = now - pick(83) as i64 * DAY_US;
                    let from = loupe_protocol::Timestamp::from_micros(end - 7 * DAY_US);
                    parts.push(format!(
                        "from={from}&to={}",
                        loupe_protocol::Timestamp::from_micros(end)
                    ));
                }
                parts.join("&")
            };
            let mut first = Vec::new();
            for _ in 0..20 {
                first.push(
                    server
                        .timed_get(&format!("/api/sessions?{}", query(&mut rng, false)))
                        .await?
                        .0,
                );
            }
            let mut fiftieth = Vec::new();
            for _ in 0..3 {
                let base = query(&mut rng, true);
                let mut path = format!("/api/sessions?{base}");
                for page in 1..=50 {
                    let (elapsed, response) = server.timed_get(&path).await?;
                    if page == 50 {
                        fiftieth.push(elapsed);
                        break;
                    }
                    let body: SessionPage = response.json().await?;
                    match body.next_cursor {
                        Some(cursor) => path = format!("/api/sessions?{base}&cursor={cursor}"),
                        None => break,
                    }
                }
            }
            let first_p95 = percentile(&mut first, 0.95);
            worst_first = worst_first.max(first_p95);
            let fiftieth_text = if fiftieth.is_empty() {
                (format!("{:>9}", "n/a"), format!("{:>9}", "<50 pages"))
            } else {
                let p95 = percentile(&mut fiftieth, 0.95);
                worst_fiftieth = worst_fiftieth.max(p95);
                (
                    format!("{:>9.2}", ms(percentile(&mut fiftieth, 0.5))),
                    format!("{:>9.2}", ms(p95)),
                )
            };
            let label = if name.is_empty() {
                "(none)".to_owned()
            } else {
                name.join("+")
            };
            println!(
                "{label:<38} {:>9.2} {:>9.2} {:>7.1} {} {}",
                ms(percentile(&mut first, 0.5)),
                ms(first_p95),
                first_p95.as_secs_f64() / baseline.as_secs_f64(),
                fiftieth_text.0,
                fiftieth_text.1
            );
        }
        println!(
            "worst p95: first page {:.2} ms, 50th page {:.2} ms (target on SQLite: under 25 ms); healthz p95 {:.2} ms",
            ms(worst_first),
            ms(worst_fiftieth),
            ms(baseline)
        );
        server.stop().await?;
        database.drop_database().await
    }

    /// Writes users and sessions straight into the tables, in large multi-row inserts.
    async fn seed(database: &BenchDatabase, sessions: usize) -> Result<()> {
        let now = loupe_server::store::now_us();
        let mut sql = String::from(
            "INSERT INTO users (id, username, display_name, role, disabled, created_at_us, updated_at_us) VALUES ",
        );
        for n in 0..USERS {
            let comma = if n == 0 { "" } else { "," };
            sql.push_str(&format!(
                "{comma}('u{n:03}', 'user{n:03}', 'User {n}', 'user', FALSE, {now}, {now})"
            ));
        }
        database.execute(&sql).await?;
        let mut rng = Rng(42);
        let batch = 2000;
        let mut written = 0;
        while written < sessions {
            let mut sql = String::from(
                "BEGIN; INSERT INTO sessions (id, user_id, username, connection_name, connection_kind, session_type, verb, status, summary, input, node_id, started_at_us, ended_at_us, event_count, output_bytes) VALUES ",
            );
            for n in 0..batch.min(sessions - written) {
                let user = rng.skewed(USERS);
                let connection = rng.skewed(CONNECTIONS);
                let kind = (connection % 4) as usize;
                let started = now - (rng.unit() * 90.0 * DAY_US as f64) as i64;
                let status = status(&mut rng);
                let ended = if status == "running" {
                    "NULL".to_owned()
                } else {
                    (started + rng.below(60_000_000) as i64).to_string()
                };
                let seconds = (started / 1_000_000) as u64;
                let nanos = ((started % 1_000_000) * 1000) as u32;
                let id =
                    uuid::Uuid::new_v7(uuid::Timestamp::from_unix(uuid::NoContext, seconds, nanos));
                let comma = if n == 0 { "" } else { "," };
                sql.push_str(&format!(
                    "{comma}('{id}', 'u{user:03}', 'user{user:03}', 'conn-{connection:02}', '{}', '{}', 'exec', '{status}', 'SELECT * FROM table_{}', '', 'bench', {started}, {ended}, 3, {})",
                    KINDS[kind], TYPES[kind], rng.below(500), rng.below(1 << 20)
                ));
            }
            sql.push_str("; COMMIT;");
            database.execute(&sql).await?;
            written += batch.min(sessions - written);
            if written % 100_000 == 0 {
                print!(".");
                std::io::stdout().flush()?;
            }
        }
        println!();
        // Planner statistics and (PostgreSQL) the visibility map, as a long-running
        // installation has them from autovacuum.
        if database.url.starts_with("sqlite") {
            database.execute("ANALYZE").await
        } else {
            database.execute("VACUUM ANALYZE sessions").await
        }
    }
}

mod ingest {
    use super::*;

    /// Printable, log-like bytes with little to compress, so no backend gets it for free.
    pub fn text(bytes: usize) -> Vec<u8> {
        let mut rng = Rng(7);
        (0..bytes)
            .map(|n| {
                if n % 97 == 96 {
                    b'\n'
                } else {
                    b' ' + (rng.next() % 94) as u8
                }
            })
            .collect()
    }

    pub async fn run(backend: &str, total: u64) -> Result<()> {
        println!(
            "\n== bench ingest on {backend}: {} MiB of output into one session",
            total >> 20
        );
        let database = BenchDatabase::create(backend).await?;
        let pattern = text(64 << 20);

        // Baseline: the same bytes, in the same sized writes, to a plain file on the same disk.
        let dir =
            tempfile::tempdir_in(std::env::var("LOUPE_BENCH_DIR").unwrap_or_else(|_| ".".into()))?;
        let started = Instant::now();
        let mut file = std::fs::File::create(dir.path().join("plain"))?;
        for piece in pieces(&pattern, total, 4 << 20) {
            file.write_all(piece)?;
        }
        file.flush()?;
        let file_rate = total as f64 / started.elapsed().as_secs_f64() / 1e6;
        drop(file);
        drop(dir);

        let server = BenchServer::start(&database).await?;
        let rss_before = rss_mib();
        let started = Instant::now();
        let (id, seq) = fill(&server, &pattern, total).await?;
        let loupe_rate = total as f64 / started.elapsed().as_secs_f64() / 1e6;
        println!("plain file write: {file_rate:.0} MB/s");
        println!(
            "loupe ingest (HTTP, 4 MiB appends, acknowledged after commit): {loupe_rate:.0} MB/s = {:.2} × the plain file (target ≥ 0.5)",
            loupe_rate / file_rate
        );
        println!(
            "server memory: {rss_before:.0} MiB before ingest, {:.0} MiB after",
            rss_mib()
        );

        let mut rng = Rng(99);
        let mut windows = Vec::new();
        let rss_before_reads = rss_mib();
        for _ in 0..200 {
            let offset = rng.below(total);
            let path =
                format!("/api/sessions/{id}/events/{seq}/output?offset={offset}&length=1048576");
            let (elapsed, response) = server.timed_get(&path).await?;
            response.bytes().await?;
            windows.push(elapsed);
        }
        let mut health = Vec::new();
        for _ in 0..200 {
            health.push(server.timed_get("/healthz").await?.0);
        }
        println!(
            "200 random 1 MiB windows: p50 {:.2} ms, p95 {:.2} ms (healthz p95 {:.2} ms); memory {rss_before_reads:.0} → {:.0} MiB",
            ms(percentile(&mut windows, 0.5)),
            ms(percentile(&mut windows, 0.95)),
            ms(percentile(&mut health, 0.95)),
            rss_mib()
        );
        print_window_plan(&database, &id, seq as i64, (total / 2) as i64).await?;
        server.stop().await?;
        database.drop_database().await
    }

    /// One session holding `total` bytes of output, appended through the raw ingest endpoint in
    /// 4 MiB requests, each acknowledged after commit. Returns the session and its output event.
    pub async fn fill(server: &BenchServer, pattern: &[u8], total: u64) -> Result<(String, u64)> {
        let request = 4 << 20;
        let created: serde_json::Value = server
            .client
            .post(format!("{}/api/ingest/sessions", server.address))
            .bearer_auth(&server.token)
            .json(&serde_json::json!({ "connection": "ops-box", "connection_kind": "command", "type": "command", "input": "cat huge.log" }))
            .send()
            .await?
            .json()
            .await?;
        let id = created["id"].as_str().context("session id")?.to_owned();
        let mut seq: Option<u64> = None;
        for piece in pieces(pattern, total, request) {
            let mut url = format!(
                "{}/api/ingest/sessions/{id}/output?stream=stdout",
                server.address
            );
            if let Some(seq) = seq {
                url.push_str(&format!("&seq={seq}"));
            }
            let response = server
                .client
                .post(url)
                .bearer_auth(&server.token)
                .body(piece.to_vec())
                .send()
                .await?;
            anyhow::ensure!(response.status() == 200, "append: {}", response.status());
            let ack: serde_json::Value = response.json().await?;
            seq = ack["seqs"][0].as_u64();
        }
        let close = serde_json::json!({ "status": "done", "exit_code": 0 });
        server
            .client
            .post(format!("{}/api/ingest/sessions/{id}/close", server.address))
            .bearer_auth(&server.token)
            .json(&close)
            .send()
            .await?;
        Ok((id, seq.context("an output event")?))
    }

    /// `total` bytes of `pattern` in `size` slices starting at scattered offsets.
    pub fn pieces(pattern: &[u8], total: u64, size: usize) -> impl Iterator<Item = &[u8]> {
        (0..total / size as u64).map(move |n| {
            let start = (n as usize * 7919 * 4096) % (pattern.len() - size);
            &pattern[start..start + size]
        })
    }

    /// The plan of the window query, for the record: one range scan of the primary key.
    async fn print_window_plan(
        database: &BenchDatabase,
        id: &str,
        seq: i64,
        offset: i64,
    ) -> Result<()> {
        let query = format!(
            "SELECT byte_offset, at_us, stream, data FROM output_chunks WHERE session_id = '{id}' AND seq = {seq} AND byte_offset > {} AND byte_offset < {}",
            offset - 65_536,
            offset + 1_048_576
        );
        println!("window query plan:");
        if database.url.starts_with("sqlite") {
            let pool = SqlitePool::connect(&database.url).await?;
            let rows: Vec<(i64, i64, i64, String)> =
                sqlx::query_as(&format!("EXPLAIN QUERY PLAN {query}"))
                    .fetch_all(&pool)
                    .await?;
            for row in rows {
                println!("  {}", row.3);
            }
            pool.close().await;
        } else {
            let pool = PgPool::connect(&database.url).await?;
            let rows: Vec<(String,)> =
                sqlx::query_as(&format!("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {query}"))
                    .fetch_all(&pool)
                    .await?;
            for row in rows {
                println!("  {}", row.0);
            }
            pool.close().await;
        }
        Ok(())
    }
}

mod download {
    use super::*;

    pub async fn run(backend: &str, total: u64) -> Result<()> {
        println!(
            "\n== bench download on {backend}: {} MiB of output as txt",
            total >> 20
        );
        let database = BenchDatabase::create(backend).await?;
        let pattern = ingest::text(64 << 20);
        let server = BenchServer::start(&database).await?;
        let (id, _) = ingest::fill(&server, &pattern, total).await?;

        // Baseline: cat of a file holding the same bytes, on the same disk, in the same run.
        let dir =
            tempfile::tempdir_in(std::env::var("LOUPE_BENCH_DIR").unwrap_or_else(|_| ".".into()))?;
        let plain = dir.path().join("plain");
        let mut file = std::fs::File::create(&plain)?;
        for piece in ingest::pieces(&pattern, total, 4 << 20) {
            file.write_all(piece)?;
        }
        file.sync_all()?;
        drop(file);
        let started = Instant::now();
        let status = std::process::Command::new("cat")
            .arg(&plain)
            .stdout(std::process::Stdio::null())
            .status()?;
        anyhow::ensure!(status.success(), "cat failed");
        let cat_rate = total as f64 / started.elapsed().as_secs_f64() / 1e6;

        let rss_before = rss_mib();
        let peak = std::sync::Arc::new(std::sync::Mutex::new(rss_before));
        let sampling = {
            let peak = peak.clone();
            tokio::spawn(async move {
                loop {
                    let now = rss_mib();
                    {
                        let mut highest = peak.lock().expect("never poisoned");
                        *highest = highest.max(now);
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        };
        let started = Instant::now();
        let response = server
            .client
            .get(format!(
                "{}/api/sessions/{id}/download?format=txt",
                server.address
            ))
            .bearer_auth(&server.token)
            .send()
            .await?;
        anyhow::ensure!(response.status() == 200, "download: {}", response.status());
        let mut received = 0u64;
        let mut body = response;
        while let Some(piece) = body.chunk().await? {
            received += piece.len() as u64;
        }
        let rate = received as f64 / started.elapsed().as_secs_f64() / 1e6;
        sampling.abort();
        let peak = *peak.lock().expect("never poisoned");
        anyhow::ensure!(received == total, "received {received} of {total} bytes");
        println!("cat of a same-size file: {cat_rate:.0} MB/s");
        println!(
            "loupe download (HTTP, txt, streamed from storage): {rate:.0} MB/s = {:.2} × cat (target ≥ 0.5)",
            rate / cat_rate
        );
        println!(
            "memory while streaming: {rss_before:.0} MiB before, peak {peak:.0} MiB: growth {:.0} MiB (target < 64 MiB)",
            peak - rss_before
        );
        server.stop().await?;
        database.drop_database().await
    }
}

mod live {
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
        println!(
            "\n== bench live on {backend}: {watchers} watchers, {rate} events/s for {seconds} s"
        );
        let database = BenchDatabase::create(backend).await?;
        let token = admin_token(&database).await?;

        // The server in its own process, so its memory is its own.
        let data = tempfile::tempdir()?;
        let mut server = tokio::process::Command::new(env!("CARGO_BIN_EXE_loupe"))
            .arg("serve")
            .env("LOUPE_BIND", "127.0.0.1:0")
            .env("DATABASE_URL", &database.url)
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
            let mut request = format!("{}/api/live", address.replace("http://", "ws://"))
                .into_client_request()?;
            request
                .headers_mut()
                .insert("authorization", format!("Bearer {token}").parse()?);
            let (mut socket, _) = tokio_tungstenite::connect_async(request).await?;
            let watch = serde_json::json!({ "type": "watch_session", "id": "w", "session": id, "after": 1 });
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
                                tally.lost.fetch_add(
                                    event.seq.saturating_sub(last + 1),
                                    Ordering::Relaxed,
                                );
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
                                .and_then(|line| {
                                    line.split_whitespace().nth(1)?.parse::<u64>().ok()
                                })
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
        database.drop_database().await?;

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
            let (mut socket, _) =
                tokio_tungstenite::connect_async(format!("ws://{address}")).await?;
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
}
