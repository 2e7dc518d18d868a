//! `cargo xtask bench download`: the same output downloaded as `txt` over HTTP, next to the
//! same bytes served as a static file by the same server (tower-http's `ServeDir`: the path's
//! own limit); then a 1,000,000-row result set downloaded as csv and jsonl. See `main.rs`.

use super::*;

pub async fn run(backend: &str, total: u64) -> Result<()> {
    println!(
        "\n== bench download on {backend}: {} MiB of output as txt",
        total >> 20
    );
    let database = TestDatabase::create_on(backend).await;
    let pattern = ingest::text(64 << 20);
    // The server's static folder, on the same disk as the database, holds the baseline's file.
    let dir =
        tempfile::tempdir_in(std::env::var("LOUPE_BENCH_DIR").unwrap_or_else(|_| ".".into()))?;
    let static_dir = dir.path().to_path_buf();
    let server =
        BenchServer::start_with(&database, |config| config.static_dir = static_dir).await?;
    let (id, _) = ingest::fill(&server, &pattern, total).await?;

    // Baselines: cat of a file holding the same bytes, and the same file over HTTP.
    let plain = dir.path().join("baseline.txt");
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
    let (static_rate, static_length) = timed_download(&server, "/baseline.txt").await?;
    anyhow::ensure!(
        static_length == total,
        "the static file came short: {static_length} of {total} bytes"
    );

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
    let (rate, received) =
        timed_download(&server, &format!("/api/sessions/{id}/download?format=txt")).await?;
    sampling.abort();
    let peak = *peak.lock().expect("never poisoned");
    anyhow::ensure!(received == total, "received {received} of {total} bytes");
    println!("cat of a same-size file: {cat_rate:.0} MB/s");
    println!("the same file served by the same server (ServeDir, HTTP): {static_rate:.0} MB/s");
    println!(
        "loupe download (HTTP, txt, streamed from storage): {rate:.0} MB/s = {:.2} × the static file (target ≥ 0.8), {:.2} × cat",
        rate / static_rate,
        rate / cat_rate
    );
    println!(
        "memory while streaming: {rss_before:.0} MiB before, peak {peak:.0} MiB: growth {:.0} MiB (target < 64 MiB)",
        peak - rss_before
    );
    results(&server, static_rate).await?;
    server.stop().await?;
    drop(database);
    Ok(())
}

/// Rows in the result-set part: what issue #19 measured (a 57 MB csv took 3.5 s).
const RESULT_ROWS: u64 = 1_000_000;
/// The target for csv and jsonl, in MB/s.
const RESULT_TARGET: f64 = 200.0;

/// A database session with one result set of `RESULT_ROWS` rows (an id, a name, an amount, a
/// note that is sometimes NULL or needs quoting), downloaded as csv and as jsonl.
async fn results(server: &BenchServer, static_rate: f64) -> Result<()> {
    let ingest = |path: String, body: serde_json::Value| {
        server
            .client
            .post(format!("{}/api/ingest/sessions{path}", server.address))
            .bearer_auth(&server.token)
            .json(&body)
            .send()
    };
    let created: serde_json::Value = ingest(
        String::new(),
        serde_json::json!({ "connection": "ledger", "connection_kind": "postgres", "type": "database", "input": "SELECT * FROM payments" }),
    )
    .await?
    .json()
    .await?;
    let id = created["id"].as_str().context("session id")?.to_owned();
    let columns = ["id:int8", "name:text", "amount:numeric", "note:text"].map(|column| {
        let (name, type_name) = column.split_once(':').expect("name:type");
        serde_json::json!({ "name": name, "type_name": type_name })
    });
    let started: serde_json::Value = ingest(
        format!("/{id}/events"),
        serde_json::json!({ "events": [{ "kind": "result", "columns": columns }] }),
    )
    .await?
    .json()
    .await?;
    let seq = started["seqs"][0].as_u64().context("the result's seq")?;
    let per_request = 10_000;
    for first in (0..RESULT_ROWS).step_by(per_request) {
        let rows: Vec<serde_json::Value> = (first..first + per_request as u64)
            .map(|n| {
                let note = match n % 10 {
                    0 => serde_json::Value::Null,
                    1 => format!("refund, \"partial\" {n}").into(),
                    _ => format!("order {n}").into(),
                };
                serde_json::json!([
                    n,
                    format!("customer-{:05}", n % 50_000),
                    format!("{}.{:02}", n % 9_999, n % 100),
                    note
                ])
            })
            .collect();
        let response = ingest(
            format!("/{id}/events"),
            serde_json::json!({ "events": [{ "kind": "rows", "seq": seq, "rows": rows }] }),
        )
        .await?;
        anyhow::ensure!(response.status() == 200, "rows: {}", response.status());
    }
    ingest(
        format!("/{id}/close"),
        serde_json::json!({ "status": "done" }),
    )
    .await?;
    for format in ["csv", "jsonl"] {
        let (rate, bytes) = timed_download(
            server,
            &format!("/api/sessions/{id}/download?format={format}"),
        )
        .await?;
        println!(
            "{RESULT_ROWS} rows as {format}: {} MB at {rate:.0} MB/s (target ≥ {RESULT_TARGET:.0}: {}), {:.2} × the static file",
            bytes / 1_000_000,
            if rate >= RESULT_TARGET {
                "met"
            } else {
                "missed"
            },
            rate / static_rate
        );
    }
    Ok(())
}

/// GETs `path` as the admin and reads the body to its end: MB/s and bytes received.
async fn timed_download(server: &BenchServer, path: &str) -> Result<(f64, u64)> {
    let started = Instant::now();
    let mut response = server.timed_get(path).await?.1;
    let mut received = 0u64;
    while let Some(piece) = response.chunk().await? {
        received += piece.len() as u64;
    }
    Ok((
        received as f64 / started.elapsed().as_secs_f64() / 1e6,
        received,
    ))
}
