//! Builds the web client: Trunk compiles `app` to WASM into `dist/`, then wasm-opt shrinks it.
//!
//! wasm-opt runs here rather than inside Trunk so that a machine without npm still gets a working
//! (larger) client: Trunk has no switch to skip a wasm-opt level written in index.html. Trunk's
//! output names carry a content hash, so each optimised file is cached under its name and a
//! rebuild without changes costs seconds. Last, every asset is precompressed (Brotli and gzip,
//! at their highest levels) so the server sends the `.br` or `.gz` file as it is, and the build
//! prints what the first load costs on the wire.

use std::{
    ffi::OsString,
    fs,
    io::Write,
    path::{Path, PathBuf},
    process::Command,
};

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
    vendor(workspace)?;
    precompress(&workspace.dist_dir())
}

/// The folder of npm packages the client loads on the pages that need them (`app/vendor`).
const VENDOR: &str = "app/vendor";
/// What is copied from it into `dist/vendor/`: xterm.js (the UMD build, which defines the
/// global `Terminal`), its stylesheet, and the fit addon (global `FitAddon`).
const VENDOR_FILES: [(&str, &str); 3] = [
    ("node_modules/@xterm/xterm/lib/xterm.js", "xterm.js"),
    ("node_modules/@xterm/xterm/css/xterm.css", "xterm.css"),
    (
        "node_modules/@xterm/addon-fit/lib/addon-fit.js",
        "addon-fit.js",
    ),
];

/// Installs `app/vendor`'s packages exactly as its package-lock.json says (when npm is there)
/// and copies what the client loads into `dist/vendor/`. Without npm the client still works,
/// but its terminal pages say the terminal is not available.
fn vendor(workspace: &Workspace) -> Result<()> {
    let folder = workspace.root.join(VENDOR);
    let installed = VENDOR_FILES
        .iter()
        .all(|(source, _)| folder.join(source).exists());
    let lock_is_newer = || -> Result<bool> {
        let lock = fs::metadata(folder.join("package-lock.json"))?.modified()?;
        let modules = fs::metadata(folder.join("node_modules/.package-lock.json"))?.modified()?;
        Ok(lock > modules)
    };
    if !installed || lock_is_newer().unwrap_or(true) {
        if process::first_line(Command::new("npm").arg("--version")).is_none() {
            eprintln!(
                "xtask: npm is not installed, so the client is built without xterm.js: \
                 terminals in the browser are not available (install Node.js and npm)"
            );
            return Ok(());
        }
        process::run(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&folder),
        )?;
    }
    let target = workspace.dist_dir().join("vendor");
    fs::create_dir_all(&target)?;
    for (source, name) in VENDOR_FILES {
        fs::copy(folder.join(source), target.join(name))
            .with_context(|| format!("copying {source} into dist/vendor"))?;
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

/// What the first load is measured against: Leptos client apps of this size class ship
/// 200–400 KB compressed (issue #19), and 300 KB is Loupe's budget.
const FIRST_LOAD_BUDGET: u64 = 300 * 1000;

/// The kinds of file worth compressing; images and fonts are compressed already.
const COMPRESSIBLE: [&str; 6] = ["wasm", "js", "css", "html", "svg", "json"];

/// Writes `NAME.br` and `NAME.gz` beside each compressible file of `dist` (where smaller), which
/// the server's `ServeDir` picks by the request's `Accept-Encoding`; prints the first load (the
/// WASM, the JS that loads it and the CSS) raw, gzip and Brotli. `index.html` is left to the
/// server, which sends it with its content security policy.
fn precompress(dist: &Path) -> Result<()> {
    let mut first_load = [0u64; 3];
    // Loaded only by the pages that need it, not by the first load.
    let mut on_demand = [0u64; 3];
    let vendor = dist.join("vendor");
    for path in files_under(dist)? {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let extension = path.extension().unwrap_or_default().to_string_lossy();
        if !COMPRESSIBLE.contains(&&*extension) || name == "index.html" {
            continue;
        }
        let raw = fs::read(&path)?;
        let brotli = brotli_of(&raw)?;
        let gzip = gzip_of(&raw)?;
        for (compressed, suffix) in [(&brotli, "br"), (&gzip, "gz")] {
            let beside = path.with_file_name(format!("{name}.{suffix}"));
            if compressed.len() < raw.len() {
                fs::write(&beside, compressed)?;
            } else if beside.exists() {
                // An earlier build's, of other bytes under the same name (files of `public/`
                // keep their names): the server would send it instead of the file.
                fs::remove_file(&beside)?;
            }
        }
        if ["wasm", "js", "css"].contains(&&*extension) {
            let totals = if path.starts_with(&vendor) {
                &mut on_demand
            } else {
                &mut first_load
            };
            for (total, size) in totals.iter_mut().zip([raw.len(), gzip.len(), brotli.len()]) {
                *total += size as u64;
            }
        }
    }
    let [raw, gzip, brotli] = first_load;
    let [_, vendor_gzip, vendor_brotli] = on_demand;
    eprintln!(
        "xtask: loaded on demand (dist/vendor, the terminal pages): gzip {} KB, Brotli {} KB",
        vendor_gzip / 1000,
        vendor_brotli / 1000
    );
    eprintln!(
        "xtask: the client's first load (WASM, JS, CSS): {} KB, gzip {} KB, Brotli {} KB \
         (budget {} KB compressed: {})",
        raw / 1000,
        gzip / 1000,
        brotli / 1000,
        FIRST_LOAD_BUDGET / 1000,
        if brotli <= FIRST_LOAD_BUDGET {
            "within"
        } else {
            "over"
        }
    );
    Ok(())
}

fn files_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            files.extend(files_under(&entry.path())?);
        } else {
            files.push(entry.path());
        }
    }
    Ok(files)
}

/// Brotli at quality 11 with a 16 MiB window (lgwin 24), as `brotli -Z` does.
fn brotli_of(raw: &[u8]) -> Result<Vec<u8>> {
    let mut compressed = Vec::new();
    {
        let mut writer = brotli::CompressorWriter::new(&mut compressed, 64 * 1024, 11, 24);
        writer.write_all(raw)?;
    }
    Ok(compressed)
}

fn gzip_of(raw: &[u8]) -> Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(raw)?;
    Ok(encoder.finish()?)
}

fn path_with(first: &Path) -> Result<OsString> {
    let rest = std::env::var_os("PATH").unwrap_or_default();
    Ok(std::env::join_paths(
        std::iter::once(first.to_path_buf()).chain(std::env::split_paths(&rest)),
    )?)
}
