//! Builds the web client: Trunk compiles `app` to WASM into `dist/`, then wasm-opt shrinks it.
//!
//! wasm-opt runs here rather than inside Trunk so that a machine without npm still gets a working
//! (larger) client: Trunk has no switch to skip a wasm-opt level written in index.html. Trunk's
//! output names carry a content hash, so each optimised file is cached under its name and a
//! rebuild without changes costs seconds.

use std::{ffi::OsString, fs, path::Path, process::Command};

use anyhow::{Context, Result};

use crate::{
    process,
    tools::ClientTools,
    workspace::{Workspace, cargo},
};

pub fn build(workspace: &Workspace, tools: &ClientTools) -> Result<()> {
    // Trunk.toml sets offline mode (no tool downloads), which also passes --offline to cargo.
    process::run(
        Command::new(cargo())
            .args(["fetch", "--locked"])
            .current_dir(&workspace.root),
    )?;
    process::run(
        Command::new(tools.bin_dir.join("trunk"))
            .args(["build", "--release"])
            .current_dir(&workspace.root)
            .env("PATH", path_with(&tools.bin_dir)?),
    )?;
    if let Some(wasm_opt) = &tools.wasm_opt {
        optimise(workspace, wasm_opt)?;
    }
    Ok(())
}

fn optimise(workspace: &Workspace, wasm_opt: &Path) -> Result<()> {
    let cache = workspace.target_dir.join("wasm-opt-cache");
    fs::create_dir_all(&cache)?;
    for entry in fs::read_dir(workspace.dist_dir())? {
        let path = entry?.path();
        if path.extension().is_none_or(|extension| extension != "wasm") {
            continue;
        }
        let name = path.file_name().context("a file name")?;
        let cached = cache.join(name);
        if !cached.exists() {
            let partial = cache.join(format!("{}.partial", name.to_string_lossy()));
            process::run(
                Command::new(wasm_opt)
                    .arg("-Oz")
                    .arg(&path)
                    .arg("-o")
                    .arg(&partial),
            )?;
            fs::rename(&partial, &cached)?;
        }
        let before = fs::metadata(&path)?.len();
        fs::copy(&cached, &path)?;
        let after = fs::metadata(&path)?.len();
        eprintln!(
            "xtask: {}: {} KiB, {} KiB after wasm-opt -Oz",
            name.to_string_lossy(),
            before / 1024,
            after / 1024
        );
    }
    Ok(())
}

fn path_with(first: &Path) -> Result<OsString> {
    let rest = std::env::var_os("PATH").unwrap_or_default();
    Ok(std::env::join_paths(
        std::iter::once(first.to_path_buf()).chain(std::env::split_paths(&rest)),
    )?)
}
