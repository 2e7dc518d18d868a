//! A shell connection's program in a local pseudo-terminal (`pty-process`): the program is the
//! session leader of its own session with the PTY as its controlling terminal, so closing the
//! terminal hangs up on it and everything it started, as closing a terminal window does.

use std::time::Duration;

use bytes::Bytes;
use loupe_protocol::CommandSettings;
use nix::{sys::signal, unistd::Pid};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    sync::mpsc,
};

use super::{
    screen::Size,
    target::{FromTarget, OUTPUT_QUEUE, Opened, ToTarget},
};
use crate::child_process::{child_env, os_user};

/// How long output is still read after the program exits: what it wrote last may still be in
/// the PTY, and a child it left behind may hold the terminal open forever.
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(200);
/// Bytes read from the PTY at once.
const READ_BYTES: usize = 32 * 1024;

fn pty_size(size: Size) -> pty_process::Size {
    pty_process::Size::new(size.rows, size.cols)
}

/// Starts `settings`' program in a new PTY of `size`.
///
/// Errors: why it could not start (no program, unknown `run_as` user, not found).
pub fn open(settings: &CommandSettings, size: Size) -> Result<Opened, String> {
    let Some((program, args)) = settings.argv.split_first() else {
        return Err("the connection has no program to run".into());
    };
    let (pty, pts) = pty_process::open().map_err(|error| format!("cannot open a PTY: {error}"))?;
    pty.resize(pty_size(size))
        .map_err(|error| format!("cannot size the PTY: {error}"))?;
    let mut command = pty_process::Command::new(program)
        .args(args)
        .env_clear()
        .envs(child_env(
            std::env::vars(),
            &settings.env.clone().unwrap_or_default(),
        ))
        // What the browser's terminal and every modern one speak.
        .env("TERM", "xterm-256color")
        .kill_on_drop(true);
    if let Some(folder) = &settings.working_dir {
        command = command.current_dir(folder);
    }
    if let Some(name) = &settings.run_as {
        let user = os_user(name)?;
        command = command
            .uid(user.uid.as_raw())
            .gid(user.gid.as_raw())
            .env("HOME", &user.dir)
            .env("USER", &user.name)
            .env("LOGNAME", &user.name);
    }
    let child = command.spawn(pts).map_err(|error| match error {
        pty_process::Error::Io(error) if error.kind() == std::io::ErrorKind::NotFound => {
            format!("the program {program} was not found")
        }
        error => format!("cannot start {program}: {error}"),
    })?;
    let (from_sender, from) = mpsc::channel(OUTPUT_QUEUE);
    let (to, to_receiver) = mpsc::channel(OUTPUT_QUEUE);
    tokio::spawn(relay(pty, child, from_sender, to_receiver));
    Ok(Opened { from, to })
}

/// Sends SIGHUP to the program's process group (its session's leader's group), as a terminal
/// that closes does.
fn hang_up(child: &tokio::process::Child) {
    if let Some(pid) = child.id().and_then(|pid| i32::try_from(pid).ok()) {
        let _ = signal::killpg(Pid::from_raw(pid), signal::Signal::SIGHUP);
    }
}

/// Writes keystrokes and applies resizes in the order they came, until the terminal closes.
async fn write_input(
    mut writer: pty_process::OwnedWritePty,
    mut typed: mpsc::UnboundedReceiver<ToTarget>,
) {
    while let Some(message) = typed.recv().await {
        match message {
            ToTarget::Input(bytes) => {
                if writer.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            ToTarget::Resize(size) => {
                let _ = writer.resize(pty_size(size));
            }
        }
    }
}

async fn relay(
    pty: pty_process::Pty,
    mut child: tokio::process::Child,
    from: mpsc::Sender<FromTarget>,
    mut to: mpsc::Receiver<ToTarget>,
) {
    let (mut reader, writer) = pty.into_split();
    // Keystrokes are written by a task of their own: a program that does not read its input
    // must not stop its output from being read.
    let (input, typed) = mpsc::unbounded_channel();
    tokio::spawn(write_input(writer, typed));
    let mut buffer = vec![0; READ_BYTES];
    let mut exited = None;
    let mut drain_until = None;
    loop {
        tokio::select! {
            read = reader.read(&mut buffer) => match read {
                // EIO once every process holding the terminal has closed it.
                Ok(0) | Err(_) => break,
                Ok(read) => {
                    let piece = Bytes::copy_from_slice(&buffer[..read]);
                    if from.send(FromTarget::Output(piece)).await.is_err() {
                        hang_up(&child);
                        return;
                    }
                }
            },
            status = child.wait(), if exited.is_none() => {
                exited = Some(how_it_ended(status));
                drain_until = Some(tokio::time::Instant::now() + DRAIN_AFTER_EXIT);
            }
            () = tokio::time::sleep_until(drain_until.unwrap_or_else(tokio::time::Instant::now)), if drain_until.is_some() => break,
            message = to.recv() => match message {
                // A program that exited takes no keystrokes; its output is still drained.
                Some(message) => {
                    if exited.is_none() {
                        let _ = input.send(message);
                    }
                }
                None => {
                    hang_up(&child);
                    return;
                }
            },
        }
    }
    let ended = match exited {
        Some(ended) => ended,
        None => how_it_ended(child.wait().await),
    };
    let _ = from.send(ended).await;
}

/// How the program ended: its exit status, or the signal that ended it.
fn how_it_ended(status: std::io::Result<std::process::ExitStatus>) -> FromTarget {
    use std::os::unix::process::ExitStatusExt;
    let Ok(status) = status else {
        return FromTarget::Exited(None);
    };
    match (status.code(), status.signal()) {
        (Some(code), _) => FromTarget::Exited(Some(code)),
        (None, Some(number)) => FromTarget::Signalled(crate::child_process::signal_name(number)),
        (None, None) => FromTarget::Exited(None),
    }
}
