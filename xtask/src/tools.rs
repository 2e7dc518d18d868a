//! The pinned tools the web client and the browser tests need, installed on first use from the
//! package registries only (crates.io, npm, Debian), never as downloaded binaries:
//! trunk and wasm-bindgen-cli with `cargo install` into `<target>/tools`, wasm-opt from npm's
//! binaryen, Chromium from Debian's packages.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};

use crate::{
    process,
    workspace::{Workspace, cargo},
};

const TRUNK_VERSION: &str = "0.21.14";
/// Debian's binaryen (108) emits WASM that crashes Chromium; 132 from npm does not.
const BINARYEN_VERSION: &str = "132.0.0";
const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// Where the client build finds its tools.
pub struct ClientTools {
    /// Holds `trunk` and `wasm-bindgen`; goes first on PATH when trunk runs.
    pub bin_dir: PathBuf,
    /// None where npm is not installed: the client then works but is larger.
    pub wasm_opt: Option<PathBuf>,
}

pub fn ensure_wasm_target() -> Result<()> {
    let installed = process::first_line(Command::new("rustup").args(["--version"])).is_some();
    if installed {
        let list = Command::new("rustup")
            .args(["target", "list", "--installed"])
            .output()
            .context("running rustup")?;
        if String::from_utf8_lossy(&list.stdout)
            .lines()
            .any(|line| line.trim() == WASM_TARGET)
        {
            return Ok(());
        }
        return process::run(Command::new("rustup").args(["target", "add", WASM_TARGET]));
    }
    // Without rustup the toolchain must already carry the target's standard library.
    let libdir = process::first_line(Command::new("rustc").args([
        "--print",
        "target-libdir",
        "--target",
        WASM_TARGET,
    ]));
    match libdir {
        Some(dir) if Path::new(&dir).is_dir() => Ok(()),
        _ => bail!("the {WASM_TARGET} target is missing and there is no rustup to add it"),
    }
}

pub fn ensure_client_tools(workspace: &Workspace) -> Result<ClientTools> {
    let root = workspace.tools_dir();
    let bin_dir = root.join("bin");
    let wasm_bindgen_version = locked_wasm_bindgen_version(&workspace.root)?;
    check_trunk_pin(&workspace.root, &wasm_bindgen_version)?;

    ensure_cargo_tool(&root, "trunk", TRUNK_VERSION, "trunk", true)?;
    // wasm-bindgen-cli's own lockfile pins a yanked crate, so it installs without --locked.
    ensure_cargo_tool(
        &root,
        "wasm-bindgen-cli",
        &wasm_bindgen_version,
        "wasm-bindgen",
        false,
    )?;
    let wasm_opt = ensure_wasm_opt(&root)?;
    Ok(ClientTools { bin_dir, wasm_opt })
}

fn ensure_cargo_tool(
    root: &Path,
    package: &str,
    version: &str,
    binary: &str,
    locked: bool,
) -> Result<()> {
    let path = root.join("bin").join(binary);
    let found = process::first_line(Command::new(&path).arg("--version"));
    if found
        .as_deref()
        .is_some_and(|line| line.split_whitespace().any(|word| word == version))
    {
        return Ok(());
    }
    eprintln!(
        "xtask: installing {package} {version} into {} (once)",
        root.display()
    );
    let mut install = Command::new(cargo());
    install
        .args([
            "install",
            package,
            "--version",
            &format!("={version}"),
            "--root",
        ])
        .arg(root)
        // Build in cargo's own temporary folder, not in the workspace's target directory.
        .env_remove("CARGO_TARGET_DIR");
    if locked {
        install.arg("--locked");
    }
    process::run(&mut install)
}

fn ensure_wasm_opt(root: &Path) -> Result<Option<PathBuf>> {
    let prefix = root.join("npm");
    let path = prefix.join("node_modules/.bin/wasm-opt");
    let major = BINARYEN_VERSION
        .split('.')
        .next()
        .unwrap_or(BINARYEN_VERSION);
    let found = process::first_line(Command::new(&path).arg("--version"));
    if found
        .as_deref()
        .is_some_and(|line| line.contains(&format!("version {major}")))
    {
        return Ok(Some(path));
    }
    if process::first_line(Command::new("npm").arg("--version")).is_none() {
        eprintln!(
            "xtask: npm is not installed, so the client is built without wasm-opt \
             (it works, but is larger). Install Node.js and npm to shrink it."
        );
        return Ok(None);
    }
    fs::create_dir_all(&prefix)?;
    process::run(
        Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(&prefix)
            .arg(format!("binaryen@{BINARYEN_VERSION}")),
    )?;
    Ok(Some(path))
}

/// The wasm-bindgen version in Cargo.lock: the CLI must be exactly this version.
fn locked_wasm_bindgen_version(root: &Path) -> Result<String> {
    let lock = fs::read_to_string(root.join("Cargo.lock")).context("reading Cargo.lock")?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == "name = \"wasm-bindgen\""
            && let Some(version) = lines
                .next()
                .and_then(|next| next.strip_prefix("version = \""))
                .and_then(|rest| rest.strip_suffix('"'))
        {
            return Ok(version.to_owned());
        }
    }
    bail!("Cargo.lock has no wasm-bindgen package")
}

fn check_trunk_pin(root: &Path, locked: &str) -> Result<()> {
    let trunk_toml = fs::read_to_string(root.join("Trunk.toml")).context("reading Trunk.toml")?;
    let pinned = format!("wasm_bindgen = \"{locked}\"");
    if !trunk_toml
        .lines()
        .any(|line| line.trim_start().starts_with(&pinned))
    {
        bail!("Trunk.toml must pin `{pinned}` to match wasm-bindgen {locked} in Cargo.lock");
    }
    Ok(())
}

/// Debian's Chromium, installed with apt when missing (the browser tests drive it).
pub fn ensure_chromium() -> Result<PathBuf> {
    let path = PathBuf::from("/usr/bin/chromium");
    if path.exists() {
        return Ok(path);
    }
    eprintln!("xtask: Chromium is missing; installing Debian's chromium package");
    process::run(Command::new("apt-get").args(["update", "-q"]))
        .context("installing Chromium needs root and Debian's apt (apt-get install chromium)")?;
    process::run(Command::new("apt-get").args(["install", "-y", "-q", "chromium"]))?;
    Ok(path)
}

/// What the terminal tests drive, from Debian's packages, installed with apt when missing: a
/// real OpenSSH server and client (`sshd` is started by the tests on a loopback port) and
/// asciinema (`asciinema cat` plays the downloaded recordings back).
pub fn ensure_terminal_test_packages() -> Result<()> {
    let needed: Vec<&str> = [
        ("/usr/sbin/sshd", "openssh-server"),
        ("/usr/bin/ssh-keygen", "openssh-client"),
        ("/usr/bin/asciinema", "asciinema"),
    ]
    .into_iter()
    .filter(|(path, _)| !std::path::Path::new(path).exists())
    .map(|(_, package)| package)
    .collect();
    if needed.is_empty() {
        return Ok(());
    }
    eprintln!(
        "xtask: installing Debian's {} for the terminal tests",
        needed.join(", ")
    );
    process::run(Command::new("apt-get").args(["update", "-q"]))
        .context("installing test packages needs root and Debian's apt")?;
    process::run(
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&needed),
    )
}

/// playwright-core, exactly as end2end/package-lock.json says; it downloads no browser.
pub fn install_end2end_packages(workspace: &Workspace) -> Result<()> {
    process::run(
        Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(workspace.root.join("end2end")),
    )
}
