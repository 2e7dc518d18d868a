//! `cargo xtask run`: build what is missing or stale, then become the Loupe server.

use std::process::{Command, ExitCode};

use anyhow::Result;

use crate::{
    client, process, tools,
    workspace::{Workspace, cargo},
};

pub fn run(server_args: &[String]) -> Result<ExitCode> {
    // `cargo xtask run -- --bind …` hands us the `--` too; the server's flags follow it.
    let server_args = match server_args.split_first() {
        Some((first, rest)) if first == "--" => rest,
        _ => server_args,
    };
    let workspace = Workspace::locate()?;
    tools::ensure_wasm_target()?;
    let client_tools = tools::ensure_client_tools(&workspace)?;
    client::build(&workspace, &client_tools)?;
    process::run(
        Command::new(cargo())
            .args([
                "build",
                "--release",
                "--locked",
                "-p",
                "loupe-server",
                "--bin",
                "loupe",
            ])
            .current_dir(&workspace.root),
    )?;

    let bind = server_args
        .iter()
        .position(|arg| arg == "--bind")
        .and_then(|index| server_args.get(index + 1).cloned())
        .or_else(|| std::env::var("LOUPE_BIND").ok())
        .unwrap_or_else(|| "127.0.0.1:3000".into());
    println!();
    println!("  Loupe is starting on http://{bind}");
    println!("  Data: ./data/loupe.db (SQLite). Stop with Ctrl-C.");
    println!("  Log in as `admin`: on the first start its password is printed below, once");
    println!("  (set LOUPE_ADMIN_PASSWORD before the first start to choose it).");
    println!("  Try the `demo` connection: SELECT country, count(*) FROM orders GROUP BY 1");
    println!();

    let mut server = Command::new(workspace.loupe_binary("release"));
    server
        .arg("serve")
        .arg("--static-dir")
        .arg(workspace.dist_dir())
        // A newcomer gets the `demo` connection: a million-row SQLite table to query at once.
        .args(["--demo", "true"])
        .args(server_args)
        .current_dir(&workspace.root);
    become_server(server)
}

/// Replaces this process with the server, so Ctrl-C and exit codes go straight to it.
#[cfg(unix)]
fn become_server(mut server: Command) -> Result<ExitCode> {
    use std::os::unix::process::CommandExt;
    Err(anyhow::Error::new(server.exec()).context("starting the server"))
}

#[cfg(not(unix))]
fn become_server(mut server: Command) -> Result<ExitCode> {
    let status = server.status()?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
