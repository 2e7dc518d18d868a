//! `cargo xtask bench gateway`: pgbench through Loupe's PostgreSQL listener, with every
//! statement recorded, next to pgbench straight to the same PostgreSQL in the same run. See
//! `main.rs`.
//!
//! The database is initialised once, directly (`pgbench -i -s SCALE`). Then for the select-only
//! script (`-S`) and the default TPC-B-like one, in the simple and prepared protocols: `-c 8 -j
//! 2 -T SECONDS`, direct then through Loupe. Printed: transactions per second and their ratio
//! (targets: `-S` at least 0.75, TPC-B at least 0.90), the added p50 and p99 latency from
//! pgbench's per-transaction log (target: p99 under 1 ms added), and the statements recorded
//! against those pgbench executed (each `-S` transaction runs 1 statement, each TPC-B-like 7).
//!
//! A third column, `relay`, runs pgbench through a bare TCP relay in this process (tokio's
//! `copy_bidirectional`, nothing decoded or recorded): what one more hop on the same cores costs
//! by itself, so the distance between `relay` and `Loupe` is what Loupe's own work costs. On a
//! machine whose cores pgbench and PostgreSQL already fill, the hop alone can take the ratio
//! below the targets.

use sqlx::Connection as _;

use super::*;

/// Clients and threads, as the figures are measured.
const CLIENTS: &str = "8";
const THREADS: &str = "2";

pub async fn run(backend: &str, seconds: u64, scale: u64) -> Result<()> {
    println!(
        "\n== bench gateway on {backend}: pgbench -c {CLIENTS} -j {THREADS} -T {seconds}, scale {scale}, direct and through Loupe"
    );
    let target_url = std::env::var("LOUPE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let target = url::Url::parse(&target_url)?;
    let (host, port, user) = (
        target.host_str().unwrap_or("127.0.0.1").to_owned(),
        target.port().unwrap_or(5432).to_string(),
        target.username().to_owned(),
    );
    let name = "loupe_bench_gateway";
    let admin = PgPool::connect(&target_url).await?;
    sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name}"))
        .execute(&admin)
        .await?;
    sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await?;
    let initialised = std::process::Command::new("pgbench")
        .args(["-h", &host, "-p", &port, "-U", &user, "-i", "-q", "-s"])
        .arg(scale.to_string())
        .arg(name)
        .output()?;
    anyhow::ensure!(
        initialised.status.success(),
        "pgbench -i: {}",
        String::from_utf8_lossy(&initialised.stderr)
    );

    let database = TestDatabase::create_on(backend).await;
    let pg_bind = free_address()?;
    let bind = pg_bind.clone();
    let server =
        BenchServer::start_with(&database, move |config| config.pg_bind = Some(bind)).await?;
    let mut url = target.clone();
    url.set_path(name);
    // Clear text toward the target too, as pgbench's own legs (PGSSLMODE below): the figures
    // compare relays, not TLS.
    url.query_pairs_mut().append_pair("sslmode", "disable");
    create_connection(&server, "bench", "postgres", url.as_str()).await?;
    let (loupe_host, loupe_port) = pg_bind.rsplit_once(':').context("an address")?;

    let relay = bare_relay(&format!("{host}:{port}")).await?;
    let (relay_host, relay_port) = relay.rsplit_once(':').context("an address")?;

    let logs = tempfile::tempdir()?;
    println!(
        "{:<22} {:>10} {:>10} {:>10} {:>7} {:>7} {:>8}  {:>17} {:>17}  {:>9}",
        "script, protocol",
        "direct",
        "relay",
        "Loupe",
        "ratio",
        "/relay",
        "target",
        "p50 ms (added)",
        "p99 ms (added)",
        "recorded"
    );
    let mut recorded_before = 0;
    for (script, flags, statements, target_ratio) in [
        ("select-only", &["-S"][..], 1, 0.75),
        ("tpcb-like", &[][..], 7, 0.90),
    ] {
        for protocol in ["simple", "prepared"] {
            let run = |label: &str,
                       host: &str,
                       port: &str,
                       user: &str,
                       password: &str,
                       database: &str| {
                let prefix = logs.path().join(format!("{label}-{script}-{protocol}"));
                let output = std::process::Command::new("pgbench")
                    .args([
                        "-h", host, "-p", port, "-U", user, "-n", "-c", CLIENTS, "-j", THREADS,
                    ])
                    .args(["-T", &seconds.to_string(), "-M", protocol, "-l"])
                    .arg(format!("--log-prefix={}", prefix.display()))
                    .args(flags)
                    .arg(database)
                    .env("PGPASSWORD", password)
                    .env("PGSSLMODE", "disable")
                    .output()?;
                let said = String::from_utf8_lossy(&output.stdout).into_owned();
                anyhow::ensure!(
                    output.status.success(),
                    "pgbench {label}: {said}{}",
                    String::from_utf8_lossy(&output.stderr)
                );
                let figure = |key: &str| -> Result<f64> {
                    said.lines()
                        .find_map(|line| line.strip_prefix(key))
                        .and_then(|rest| rest.split_whitespace().next())
                        .and_then(|value| value.split('/').next()?.parse().ok())
                        .with_context(|| format!("{key} in pgbench's output: {said}"))
                };
                let tps = figure("tps = ")?;
                let transactions = figure("number of transactions actually processed: ")? as u64;
                let mut latencies =
                    transaction_latencies(logs.path(), &format!("{label}-{script}-{protocol}"))?;
                let p50 = percentile(&mut latencies, 0.50);
                let p99 = percentile(&mut latencies, 0.99);
                Ok::<_, anyhow::Error>((tps, transactions, p50, p99))
            };
            let (direct_tps, _, direct_p50, direct_p99) =
                run("direct", &host, &port, &user, "", name)?;
            let (relay_tps, ..) = run("relay", relay_host, relay_port, &user, "", name)?;
            let (loupe_tps, transactions, loupe_p50, loupe_p99) = run(
                "loupe",
                loupe_host,
                loupe_port,
                "admin",
                &server.token,
                "bench",
            )?;
            let recorded = settled_inputs(&database, recorded_before).await?;
            let executed = transactions * statements;
            // Every connection ends; inputs are counted once all its sessions have.
            let new = recorded - recorded_before;
            recorded_before = recorded;
            let ratio = loupe_tps / direct_tps;
            println!(
                "{:<22} {:>10.0} {:>10.0} {:>10.0} {:>6.2}x {:>6.2}x {:>7}  {:>6.2} ({:>+7.3}) {:>6.2} ({:>+7.3})  {}",
                format!("{script}, {protocol}"),
                direct_tps,
                relay_tps,
                loupe_tps,
                ratio,
                loupe_tps / relay_tps,
                format!(">= {target_ratio:.2}"),
                ms(loupe_p50),
                ms(loupe_p50) - ms(direct_p50),
                ms(loupe_p99),
                ms(loupe_p99) - ms(direct_p99),
                // pgbench runs a query or two of its own at start (the scale, the partitions).
                if new >= executed {
                    format!("{executed} + {} own", new - executed)
                } else {
                    format!("{new} of {executed} MISSING")
                },
            );
        }
    }
    println!(
        "(added p99 target: under 1 ms; `recorded`: input events = pgbench's transactions × statements per transaction + pgbench's own start-up queries)"
    );
    server.stop().await?;
    sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name}"))
        .execute(&admin)
        .await?;
    mysqlslap(&database, seconds).await
}

/// The same through the MySQL listener with `mysqlslap` (MariaDB's client): one point query,
/// 8 clients, direct and through Loupe, and the queries recorded against those run.
async fn mysqlslap(database: &TestDatabase, seconds: u64) -> Result<()> {
    let name = "loupe_bench_gateway";
    let server_url = "mysql://root@127.0.0.1:3306";
    let mut admin = sqlx::mysql::MySqlConnection::connect(server_url).await?;
    sqlx::raw_sql(&format!(
        "DROP DATABASE IF EXISTS {name}; CREATE DATABASE {name}; \
         CREATE TABLE {name}.t (id INT PRIMARY KEY, v INT); \
         INSERT INTO {name}.t SELECT seq, seq * 2 FROM {name}.seq_1_to_10000"
    ))
    .execute(&mut admin)
    .await?;
    let mysql_bind = free_address()?;
    let bind = mysql_bind.clone();
    let server =
        BenchServer::start_with(database, move |config| config.mysql_bind = Some(bind)).await?;
    create_connection(
        &server,
        "bench-maria",
        "mysql",
        // Clear text toward the target, as mysqlslap's own legs.
        &format!("{server_url}/{name}?ssl-mode=DISABLED"),
    )
    .await?;
    let (loupe_host, loupe_port) = mysql_bind.rsplit_once(':').context("an address")?;
    // About as many queries as the pgbench runs take time for, directly.
    let queries = (seconds * 4000).to_string();
    let slap = |host: &str, port: &str, user: &str, password: &str, schema: &str| -> Result<f64> {
        let output = std::process::Command::new("mysqlslap")
            .args([
                "--no-defaults",
                "--protocol=TCP",
                "-h",
                host,
                "-P",
                port,
                "-u",
                user,
            ])
            .arg(format!("--password={password}"))
            .arg(format!("--create-schema={schema}"))
            .args(["--no-drop", "--concurrency=8", "--iterations=1"])
            .arg(format!("--number-of-queries={queries}"))
            .arg("--query=SELECT v FROM t WHERE id = 4242")
            .output()?;
        let said = String::from_utf8_lossy(&output.stdout).into_owned();
        anyhow::ensure!(
            output.status.success(),
            "mysqlslap: {said}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let seconds: f64 = said
            .lines()
            .find_map(|line| {
                line.trim()
                    .strip_prefix("Average number of seconds to run all queries: ")
            })
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .with_context(|| format!("mysqlslap's output: {said}"))?;
        Ok(queries.parse::<f64>()? / seconds)
    };
    let direct = slap("127.0.0.1", "3306", "root", "", name)?;
    let through = slap(
        loupe_host,
        loupe_port,
        "admin",
        &server.token,
        "bench-maria",
    );
    match through {
        Ok(through) => println!(
            "mysqlslap, 8 clients     {direct:>10.0} {through:>10.0} {:>6.2}x   (queries per second, direct and through Loupe)",
            through / direct
        ),
        Err(error) => println!("mysqlslap through Loupe failed: {error:#}"),
    }
    server.stop().await?;
    sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name}"))
        .execute(&mut admin)
        .await?;
    Ok(())
}

/// Each transaction's latency from pgbench's per-transaction logs (`--log-prefix`): the third
/// field of each line, in microseconds.
fn transaction_latencies(folder: &std::path::Path, prefix: &str) -> Result<Vec<Duration>> {
    let mut latencies = Vec::new();
    for entry in std::fs::read_dir(folder)? {
        let path = entry?.path();
        let named = path
            .file_name()
            .and_then(|name| name.to_str())
            .is_some_and(|name| name.starts_with(&format!("{prefix}.")));
        if !named {
            continue;
        }
        for line in std::fs::read_to_string(&path)?.lines() {
            if let Some(micros) = line
                .split_whitespace()
                .nth(2)
                .and_then(|field| field.parse().ok())
            {
                latencies.push(Duration::from_micros(micros));
            }
        }
    }
    anyhow::ensure!(!latencies.is_empty(), "no pgbench log under {prefix}");
    Ok(latencies)
}

/// Input events recorded on the bench connection, once every session on it has ended (each
/// ends a moment after its client leaves, when its recording is flushed), and more than
/// `before` are there.
async fn settled_inputs(database: &TestDatabase, before: u64) -> Result<u64> {
    let url = database.url();
    let count = "SELECT (SELECT count(*) FROM session_events e JOIN sessions s ON s.id = e.session_id \
                 WHERE s.connection_name = 'bench' AND e.kind = 'input'), \
                 (SELECT count(*) FROM sessions WHERE connection_name = 'bench' AND status = 'running')";
    for _ in 0..600 {
        let (inputs, running): (i64, i64) = if url.starts_with("sqlite") {
            let pool = SqlitePool::connect(&url).await?;
            let counted = sqlx::query_as(count).fetch_one(&pool).await?;
            pool.close().await;
            counted
        } else {
            let pool = PgPool::connect(&url).await?;
            let counted = sqlx::query_as(count).fetch_one(&pool).await?;
            pool.close().await;
            counted
        };
        if running == 0 && inputs as u64 > before {
            return Ok(inputs as u64);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("the bench sessions did not end within a minute")
}

/// Starts a relay that only copies bytes between each client and `target`, for the life of the
/// process; its address.
async fn bare_relay(target: &str) -> Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?.to_string();
    let target = target.to_owned();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let target = target.clone();
            tokio::spawn(async move {
                let Ok(mut upstream) = tokio::net::TcpStream::connect(&target).await else {
                    return;
                };
                let _ = (client.set_nodelay(true), upstream.set_nodelay(true));
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    Ok(address)
}

/// A loopback address nobody listens on (the server binds it a moment later).
pub(crate) fn free_address() -> Result<String> {
    Ok(format!("127.0.0.1:{}", crate::ports::free_port()))
}

/// Creates connection `name` of `kind` to `url` on the bench server.
async fn create_connection(server: &BenchServer, name: &str, kind: &str, url: &str) -> Result<()> {
    let created = server
        .client
        .post(format!("{}/api/connections", server.address))
        .bearer_auth(&server.token)
        .json(&serde_json::json!({ "name": name, "kind": kind, "url": url }))
        .send()
        .await?;
    anyhow::ensure!(
        created.status() == 201,
        "creating the connection {name}: {}",
        created.status()
    );
    Ok(())
}
