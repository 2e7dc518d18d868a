//! `cargo xtask bench download`: the same output downloaded as `txt` over HTTP. See `main.rs`.

use super::*;

pub async fn run(backend: &str, total: u64) -> Result<()> {
    println!(
        "\n== bench download on {backend}: {} MiB of output as txt",
        total >> 20
    );
    let database = TestDatabase::create_on(backend).await;
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
    drop(database);
    Ok(())
}
