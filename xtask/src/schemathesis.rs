//! `cargo xtask schemathesis [EXAMPLES]`: Schemathesis (property-based API testing, from PyPI)
//! against a running debug server's `/api/openapi.json`, as an administrator with an API token.
//! Every operation gets up to EXAMPLES generated requests (20 by default, 5 in `cargo xtask
//! test`); the run fails on any 5xx, any response that contradicts its schema, and any
//! undocumented content type. The WebSocket (`/api/live`) is not HTTP to test this way, and
//! revoking a token is left out because Schemathesis finds its own in `GET /api/tokens`.
//!
//! Schemathesis is installed on first use into a virtualenv under `<target>/tools`.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use anyhow::{Context, Result, bail};

use crate::{
    process,
    workspace::{Workspace, cargo},
};

const VERSION: &str = "4.32.5";
const ADMIN_PASSWORD: &str = "schemathesis-heron-basalt-quince";
pub const DEFAULT_EXAMPLES: u32 = 20;

pub fn command(args: &[String]) -> Result<std::process::ExitCode> {
    let examples = match args.first() {
        Some(number) => number
            .parse()
            .with_context(|| format!("{number:?} is not a number of examples"))?,
        None => DEFAULT_EXAMPLES,
    };
    check(&Workspace::locate()?, examples)?;
    Ok(std::process::ExitCode::SUCCESS)
}

/// Builds the debug server, starts it fresh and runs Schemathesis at it; fails with its findings.
pub fn check(workspace: &Workspace, examples: u32) -> Result<()> {
    process::run(
        Command::new(cargo())
            .args(["build", "--locked", "-p", "loupe-server", "--bin", "loupe"])
            .current_dir(&workspace.root),
    )?;
    let schemathesis = ensure_installed(&workspace.tools_dir())?;
    let data_dir = workspace.target_dir.join("schemathesis-run");
    let _ = std::fs::remove_dir_all(&data_dir);
    std::fs::create_dir_all(&data_dir)?;
    let database = format!("sqlite://{}", data_dir.join("loupe.db").display());
    let binary = workspace.loupe_binary("debug");

    let server = Server::start(&binary, &data_dir, &database)?;
    let token = admin_token(&binary, &data_dir, &database)?;
    let mut run = Command::new(&schemathesis);
    run.arg("run")
        .arg(format!("{}/api/openapi.json", server.url))
        .args([
            "--checks",
            "not_a_server_error,response_schema_conformance,content_type_conformance",
            "--max-examples",
            &examples.to_string(),
            "--seed",
            "20261201",
            "--workers",
            "2",
            "--exclude-path",
            "/api/live",
            // Revoking its own token would end the run's authentication halfway.
            "--exclude-operation-id",
            "DELETE /api/tokens/{id}",
            // Its own made-up cookies and tokens would stand in for the administrator's.
            "--generation-with-security-parameters",
            "false",
            "--no-color",
            "--header",
            &format!("Authorization: Bearer {token}"),
        ])
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .current_dir(&data_dir);
    let outcome = process::run(&mut run);
    drop(server);
    outcome.context("Schemathesis found responses that break the API description (above)")
}

/// The `schemathesis` program, installed at [`VERSION`] if it is not yet.
fn ensure_installed(tools: &Path) -> Result<PathBuf> {
    let venv = tools.join(format!("schemathesis-{VERSION}"));
    let program = venv.join("bin").join("schemathesis");
    if program.is_file() {
        return Ok(program);
    }
    eprintln!(
        "xtask: installing Schemathesis {VERSION} from PyPI into {}",
        venv.display()
    );
    process::run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    process::run(Command::new(venv.join("bin").join("pip")).args([
        "install",
        "--quiet",
        &format!("schemathesis=={VERSION}"),
    ]))?;
    if !program.is_file() {
        bail!(
            "pip installed Schemathesis but {} is missing",
            program.display()
        );
    }
    Ok(program)
}

/// `loupe token create` for the administrator the server made at its first start.
fn admin_token(binary: &Path, data_dir: &Path, database: &str) -> Result<String> {
    let output = Command::new(binary)
        .args([
            "token",
            "create",
            "--user",
            "admin",
            "--name",
            "schemathesis",
        ])
        .env("DATABASE_URL", database)
        .env("LOUPE_DATA_DIR", data_dir)
        .output()
        .context("running loupe token create")?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find_map(|line| line.strip_prefix("secret (shown once): "))
        .map(str::to_owned)
        .with_context(|| {
            format!(
                "loupe token create printed no secret:\n{text}{}",
                String::from_utf8_lossy(&output.stderr)
            )
        })
}

/// `GET /healthz` answered 200, asked with a bare HTTP/1.1 request (xtask has no HTTP client).
fn healthy(address: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(address) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut answer = [0u8; 12];
    stream.read_exact(&mut answer).is_ok() && answer.ends_with(b" 200")
}

struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(binary: &Path, data_dir: &Path, database: &str) -> Result<Server> {
        let mut child = Command::new(binary)
            .arg("serve")
            .env("LOUPE_BIND", "127.0.0.1:0")
            .env("DATABASE_URL", database)
            .env("LOUPE_DATA_DIR", data_dir)
            .env("LOUPE_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("LOUPE_LOG", "info")
            .env("LOUPE_LOG_FORMAT", "text")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let stdout = child.stdout.take().context("the server's output")?;
        let (found, url) = mpsc::channel();
        // The log keeps flowing after the address is found; the thread keeps reading it.
        std::thread::spawn(move || {
            let mut found = Some(found);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(at) = line.find("listening on http://")
                    && let Some(sender) = found.take()
                {
                    let address = line[at + "listening on ".len()..]
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    let _ = sender.send(address);
                }
            }
        });
        let Ok(url) = url.recv_timeout(Duration::from_secs(60)) else {
            let _ = child.kill();
            bail!("the server did not say where it listens within 60 s");
        };
        // It listens before its database is open and migrated: wait until it is healthy.
        let address = url.trim_start_matches("http://").to_owned();
        for _ in 0..600 {
            if healthy(&address) {
                return Ok(Server { child, url });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        bail!("the server at {url} did not answer /healthz within 60 s")
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whatever fails after the start, the server does not outlive the run.
impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}
