//! `cargo xtask bench list|ingest|download|live|gateway|terminal [options]`: runs the benchmarks in
//! `server/benches/loupe.rs` on SQLite and, when it answers, PostgreSQL. They print their own
//! figures and baselines. `cargo xtask bench browser` opens a 1 GiB session in Chromium
//! (`end2end/benches/`).

use std::process::{Command, ExitCode};

use anyhow::Result;

use crate::{
    client, postgres, process, test, tools,
    workspace::{Workspace, cargo},
};

pub fn bench(args: &[String]) -> Result<ExitCode> {
    if args.first().map(String::as_str) == Some("browser") {
        return browser(&Workspace::locate()?);
    }
    if !matches!(
        args.first().map(String::as_str),
        Some("list" | "ingest" | "download" | "live" | "gateway" | "terminal")
    ) {
        eprintln!(
            "usage: cargo xtask bench list [--sessions N] | ingest|download [--bytes N] | live [--watchers N --rate N --seconds N] | gateway [--seconds N --scale N] | terminal [--megabytes N] | browser"
        );
        return Ok(ExitCode::from(2));
    }
    let workspace = Workspace::locate()?;
    let mut backends = vec!["sqlite"];
    let url = postgres::test_url();
    if std::env::var("LOUPE_SKIP_POSTGRES").is_ok_and(|value| value == "1") {
        eprintln!("xtask: SKIPPED PostgreSQL (LOUPE_SKIP_POSTGRES=1): figures for SQLite only");
    } else if postgres::answers(&url) {
        backends.push("postgres");
    } else {
        eprintln!(
            "xtask: no PostgreSQL answers at LOUPE_TEST_DATABASE_URL: figures for SQLite only"
        );
    }
    // Bench databases go to the target directory: a real disk, like ./data, not a RAM tmpfs.
    let scratch = workspace.target_dir.join("bench");
    std::fs::create_dir_all(&scratch)?;
    process::run(
        Command::new(cargo())
            .args([
                "bench",
                "--locked",
                "-p",
                "loupe-server",
                "--bench",
                "loupe",
                "--",
            ])
            .args(args)
            .current_dir(&workspace.root)
            .env("LOUPE_BENCH_BACKENDS", backends.join(","))
            .env("LOUPE_BENCH_DIR", &scratch)
            // The bench databases (SQLite files) go there too.
            .env("TMPDIR", &scratch),
    )?;
    Ok(ExitCode::SUCCESS)
}

/// The browser benchmarks, against a debug server and the release client, as the browser tests
/// run.
fn browser(workspace: &Workspace) -> Result<ExitCode> {
    let client_tools = tools::ensure_client_tools(workspace)?;
    client::build(workspace, &client_tools)?;
    process::run(
        Command::new(cargo())
            .args(["build", "--locked", "-p", "loupe-server", "--bin", "loupe"])
            .current_dir(&workspace.root),
    )?;
    let chromium = tools::ensure_chromium()?;
    tools::install_end2end_packages(workspace)?;
    let artifacts = workspace.target_dir.join("bench-artifacts");
    process::run(test::end2end_node(workspace, &chromium, &artifacts).args([
        "benches/large-output.bench.mjs",
        "benches/first-row.bench.mjs",
    ]))?;
    Ok(ExitCode::SUCCESS)
}
