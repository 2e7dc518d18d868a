//! `cargo xtask bench ingest`: one session appending output through the raw ingest endpoint. See `main.rs`.

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
    let database = TestDatabase::create_on(backend).await;
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
        let path = format!("/api/sessions/{id}/events/{seq}/output?offset={offset}&length=1048576");
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
    drop(database);
    Ok(())
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
async fn print_window_plan(database: &TestDatabase, id: &str, seq: i64, offset: i64) -> Result<()> {
    let query = format!(
        "SELECT byte_offset, at_us, stream, data FROM output_chunks WHERE session_id = '{id}' AND seq = {seq} AND byte_offset > {} AND byte_offset < {}",
        offset - 65_536,
        offset + 1_048_576
    );
    println!("window query plan:");
    if database.url().starts_with("sqlite") {
        let pool = SqlitePool::connect(&database.url()).await?;
        let rows: Vec<(i64, i64, i64, String)> =
            sqlx::query_as(&format!("EXPLAIN QUERY PLAN {query}"))
                .fetch_all(&pool)
                .await?;
        for row in rows {
            println!("  {}", row.3);
        }
        pool.close().await;
    } else {
        let pool = PgPool::connect(&database.url()).await?;
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
