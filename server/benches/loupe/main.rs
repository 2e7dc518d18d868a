//! `cargo xtask bench list | ingest | download | live | gateway | terminal`: Loupe's speed figures, through its HTTP API on loopback,
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
//! - `gateway`: pgbench through Loupe's PostgreSQL listener, every statement recorded, next to
//!   pgbench straight to PostgreSQL: TPS ratios, added p50/p99 latency, statements recorded
//!   against executed.
//! - `terminal`: `cat` through Loupe's SSH path against direct ssh, keystroke echo latency,
//!   the first frame at minute 59 of an hour-long recording, and storage (see `terminal.rs`).
//! - `download`: the same output downloaded as `txt` over HTTP. Baseline: `cat` of a file of the
//!   same size. Also the server's peak memory growth while it streams.
//!
//! Backends come from `LOUPE_BENCH_BACKENDS` (`sqlite,postgres`); PostgreSQL from
//! `LOUPE_TEST_DATABASE_URL`.

use std::{
    io::Write,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use loupe_protocol::{NewToken, SessionPage};
use loupe_server::{Config, config::Secret, identity, identity::auth::Actor, store::Store};
use sqlx::{postgres::PgPool, sqlite::SqlitePool};
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
    // Every backend runs even when one misses a target; then the bench fails, naming them.
    let mut failed = Vec::new();
    for backend in backends.split(',').filter(|name| !name.is_empty()) {
        let outcome = match args.first().map(String::as_str) {
            Some("list") => {
                runtime.block_on(list::run(backend, number("--sessions", 1_000_000) as usize))
            }
            Some("ingest") => runtime.block_on(ingest::run(backend, number("--bytes", 1 << 30))),
            Some("download") => {
                runtime.block_on(download::run(backend, number("--bytes", 1 << 30)))
            }
            Some("gateway") => runtime.block_on(gateway::run(
                backend,
                number("--seconds", 30),
                number("--scale", 10),
            )),
            Some("terminal") => {
                runtime.block_on(terminal::run(backend, number("--megabytes", 200)))
            }
            Some("live") => runtime.block_on(live::run(
                backend,
                number("--watchers", 1000) as usize,
                number("--rate", 10_000),
                number("--seconds", 30),
            )),
            _ => anyhow::bail!(
                "usage: bench list [--sessions N] | ingest|download [--bytes N] | live [--watchers N --rate N --seconds N] | gateway [--seconds N --scale N] | terminal [--megabytes N]"
            ),
        };
        if let Err(error) = outcome {
            println!("\nFAILED on {backend}: {error:#}");
            failed.push(format!("{backend}: {error:#}"));
        }
    }
    anyhow::ensure!(failed.is_empty(), "the bench failed: {}", failed.join("; "));
    Ok(())
}

/// One connection to a bench database (one, so a transaction spans its statements), for SQL
/// written out in full (the seeding statements).
enum Seeder {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Seeder {
    async fn open(database: &TestDatabase) -> Result<Seeder> {
        let url = database.url();
        Ok(if url.starts_with("sqlite") {
            // A page cache that holds the indexes: rows arrive in random index order, and with
            // SQLite's default 2 MiB each insert reads its index pages from disk again.
            let options = url
                .parse::<sqlx::sqlite::SqliteConnectOptions>()?
                .pragma("cache_size", "-1048576");
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options)
                .await?;
            Seeder::Sqlite(pool)
        } else {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .connect(&url)
                .await?;
            Seeder::Postgres(pool)
        })
    }

    async fn execute(&self, sql: &str) -> Result<()> {
        match self {
            Seeder::Sqlite(pool) => sqlx::raw_sql(sql).execute(pool).await.map(drop)?,
            Seeder::Postgres(pool) => sqlx::raw_sql(sql).execute(pool).await.map(drop)?,
        }
        Ok(())
    }

    async fn close(self) {
        match self {
            Seeder::Sqlite(pool) => pool.close().await,
            Seeder::Postgres(pool) => pool.close().await,
        }
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
async fn admin_token(database: &TestDatabase) -> Result<String> {
    let store = Store::open(&Secret::new(database.url()), 2).await?;
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
    async fn start(database: &TestDatabase) -> Result<BenchServer> {
        Self::start_with(database, |_| {}).await
    }

    /// Starts the server with its configuration changed by `configure` first.
    async fn start_with(
        database: &TestDatabase,
        configure: impl FnOnce(&mut Config),
    ) -> Result<BenchServer> {
        let token = admin_token(database).await?;
        let mut config = Config::with_database(database.url());
        config.static_dir = "/nonexistent".into();
        config.log = "warn".into();
        configure(&mut config);
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

mod download;
mod gateway;
mod ingest;
mod list;
mod live;
mod terminal;

#[path = "../../tests/support/database.rs"]
mod database;
#[path = "../../tests/support/ports.rs"]
mod ports;

use database::TestDatabase;
