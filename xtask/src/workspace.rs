//! Where things are: the workspace root, cargo's target directory and the tools folder in it.

use std::{path::PathBuf, process::Command};

use anyhow::{Context, Result, bail};

pub struct Workspace {
    pub root: PathBuf,
    pub target_dir: PathBuf,
}

impl Workspace {
    pub fn locate() -> Result<Workspace> {
        let root = workspace_root()?;
        // Ask cargo rather than guess: CARGO_TARGET_DIR and .cargo/config.toml both move it.
        let output = Command::new(cargo())
            .args(["metadata", "--format-version", "1", "--no-deps"])
            .current_dir(&root)
            .output()
            .context("running cargo metadata")?;
        if !output.status.success() {
            bail!(
                "cargo metadata failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let metadata: serde_json::Value = serde_json::from_slice(&output.stdout)?;
        let target_dir = metadata["target_directory"]
            .as_str()
            .context("cargo metadata names no target directory")?
            .into();
        Ok(Workspace { root, target_dir })
    }

    /// Pinned build tools (trunk, wasm-bindgen, wasm-opt) are installed here, once.
    pub fn tools_dir(&self) -> PathBuf {
        self.target_dir.join("tools")
    }

    /// Trunk's output, served by the server as the web client.
    pub fn dist_dir(&self) -> PathBuf {
        self.root.join("dist")
    }

    pub fn loupe_binary(&self, profile: &str) -> PathBuf {
        self.target_dir.join(profile).join("loupe")
    }
}

/// The workspace `cargo xtask` was run in, asked of cargo from the current directory. Not the
/// path xtask was compiled in: clones that share a target directory (CI's cache) share the
/// xtask binary too, and it must act on the clone that ran it.
fn workspace_root() -> Result<PathBuf> {
    let output = Command::new(cargo())
        .args(["locate-project", "--workspace", "--message-format", "plain"])
        .output()
        .context("running cargo locate-project")?;
    if !output.status.success() {
        bail!(
            "run cargo xtask inside Loupe's workspace: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let manifest = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    Ok(manifest
        .parent()
        .context("the workspace manifest has a folder")?
        .to_path_buf())
}

/// The cargo that runs us, so a toolchain override applies to everything we start.
pub fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}
