//! Running child processes with their command line shown, and failing clearly when they fail.

use std::process::Command;

use anyhow::{Context, Result, bail};

/// Runs `command` to completion with its output going to the terminal.
pub fn run(command: &mut Command) -> Result<()> {
    let shown = describe(command);
    eprintln!("  $ {shown}");
    let status = command
        .status()
        .with_context(|| format!("cannot start `{shown}`"))?;
    if !status.success() {
        bail!("`{shown}` failed ({status})");
    }
    Ok(())
}

/// The first line a command prints on stdout, or None when it cannot run.
pub fn first_line(command: &mut Command) -> Option<String> {
    let output = command.output().ok()?;
    if !output.status.success() {
        return None;
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .next()
        .map(str::to_owned)
}

pub fn describe(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|part| part.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
