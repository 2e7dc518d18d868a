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

    // A flag the user gave, else its environment variable, else the demo's default.
    let setting = |flag: &str, variable: &str, default: &str| {
        server_args
            .iter()
            .position(|arg| arg == flag)
            .and_then(|index| server_args.get(index + 1).cloned())
            .or_else(|| std::env::var(variable).ok())
            .unwrap_or_else(|| default.into())
    };
    let bind = setting("--bind", "LOUPE_BIND", "127.0.0.1:3000");
    // The wire and SSH listeners are on for the demo, on loopback.
    let pg_bind = setting("--pg-bind", "LOUPE_PG_BIND", "127.0.0.1:6432");
    let mysql_bind = setting("--mysql-bind", "LOUPE_MYSQL_BIND", "127.0.0.1:3307");
    let ssh_bind = setting("--ssh-bind", "LOUPE_SSH_BIND", "127.0.0.1:2222");
    println!();
    println!("  Loupe is starting on http://{bind}");
    println!("  Data: ./data/loupe.db (SQLite). Stop with Ctrl-C.");
    println!("  Log in as `admin`: on the first start its password is printed below, once");
    println!("  (set LOUPE_ADMIN_PASSWORD before the first start to choose it).");
    println!("  Try the `demo` connection: SELECT country, count(*) FROM orders GROUP BY 1");
    println!("  psql and mysql reach PostgreSQL and MySQL connections through {pg_bind} and");
    println!("  {mysql_bind}: `loupe connect <connection>` prints the command line.");
    println!("  Shell and ssh connections open as terminals on the Run page, with `loupe ssh`, or");
    println!("  with ssh through {ssh_bind} (add your public key on the Tokens page).");
    println!();

    let mut server = Command::new(workspace.loupe_binary("release"));
    server
        .arg("serve")
        .arg("--static-dir")
        .arg(workspace.dist_dir())
        // A newcomer gets the `demo` connection: a million-row SQLite table to query at once.
        .args(["--demo", "true"]);
    for (flag, value) in [
        ("--pg-bind", &pg_bind),
        ("--mysql-bind", &mysql_bind),
        ("--ssh-bind", &ssh_bind),
    ] {
        // The user's own flag is passed on with the others; clap takes each flag once.
        if !server_args.iter().any(|arg| arg == flag) {
            server.args([flag, value.as_str()]);
        }
    }
    server.args(server_args).current_dir(&workspace.root);
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
