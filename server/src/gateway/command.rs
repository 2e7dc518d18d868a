//! Running commands: the connection's argv template with the user's input as its last argument
//! or its standard input. stdout and stderr are recorded interleaved in arrival order, with
//! timestamps and ANSI sequences as the program wrote them, in chunks of up to 64 KiB flushed at
//! least every 50 ms. The program runs in its own process group, so stopping it stops its
//! children too.
//!
//! A program gets a minimal environment plus its connection's own variables (see
//! [`crate::child_process`]), never Loupe's own.

use std::{process::Stdio, time::Duration};

use loupe_protocol::{CommandSettings, EventKind, InputMode, Stream};
use serde::{Deserialize, Serialize};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    process::Command,
    time::Instant,
};

use super::{Outcome, Run, sleep_until};
use crate::child_process::{child_env, killed_by, os_user, signal_name};
use crate::{
    error::ApiError,
    sessions::recorder::{Append, NewEvent},
    sessions::summarize,
    store::{MAX_CHUNK_BYTES, now_us},
};

/// A command connection's settings as the `command` column keeps them: everything but the
/// environment's values, which are sealed in the `secret` column. Rows written before the
/// environment was sealed carry it in `env`; `crate::connections::seal_legacy_environments` moves it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StoredCommand {
    pub argv: Vec<String>,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub env: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub env_names: Vec<String>,
    #[serde(default)]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub input: InputMode,
    #[serde(default)]
    pub run_as: Option<String>,
}

impl StoredCommand {
    /// What the column keeps of `settings`, with the names of the (sealed) variables.
    pub fn new(settings: &CommandSettings, env_names: Vec<String>) -> StoredCommand {
        StoredCommand {
            argv: settings.argv.clone(),
            env: std::collections::BTreeMap::new(),
            env_names,
            working_dir: settings.working_dir.clone(),
            input: settings.input,
            run_as: settings.run_as.clone(),
        }
    }

    pub fn parse(json: &str) -> Result<StoredCommand, ApiError> {
        serde_json::from_str(json).map_err(ApiError::internal)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("settings serialise")
    }

    /// What a run needs: these settings with the opened environment.
    pub fn with_env(self, env: std::collections::BTreeMap<String, String>) -> CommandSettings {
        CommandSettings {
            argv: self.argv,
            env: Some(env),
            working_dir: self.working_dir,
            input: self.input,
            run_as: self.run_as,
        }
    }
}

/// How long output waits to be recorded at most: pieces read within it are written together.
pub(crate) const FLUSH_EVERY: Duration = Duration::from_millis(50);

/// Output read but not yet recorded: consecutive bytes of one stream.
struct Pending {
    stream: Stream,
    at_us: i64,
    data: Vec<u8>,
}

/// A run's output on its way to the recorder: consecutive bytes of one stream gather into one
/// piece (timed when its first byte arrived) of at most [`MAX_CHUNK_BYTES`], written when the
/// stream changes, the piece is full or the caller flushes (every [`FLUSH_EVERY`]). Every piece
/// goes to one output event, created with the first.
#[derive(Default)]
pub(crate) struct OutputBuffer {
    pending: Option<Pending>,
    seq: Option<u64>,
}

impl OutputBuffer {
    pub async fn push(&mut self, run: &Run, stream: Stream, data: &[u8]) -> Result<(), Outcome> {
        let full_or_switching = self.pending.as_ref().is_some_and(|pending| {
            pending.stream != stream || pending.data.len() + data.len() > MAX_CHUNK_BYTES
        });
        if full_or_switching {
            self.flush(run).await?;
        }
        self.pending
            .get_or_insert_with(|| Pending {
                stream,
                at_us: now_us(),
                data: Vec::with_capacity(MAX_CHUNK_BYTES),
            })
            .data
            .extend_from_slice(data);
        Ok(())
    }

    pub async fn flush(&mut self, run: &Run) -> Result<(), Outcome> {
        let Some(piece) = self.pending.take() else {
            return Ok(());
        };
        let recorded = run
            .record(vec![Append::Output {
                seq: self.seq,
                stream: piece.stream,
                at_us: piece.at_us,
                data: piece.data,
            }])
            .await?;
        self.seq = Some(recorded.seqs[0]);
        Ok(())
    }
}

/// Records the program's exit (`code`, or `killed` when it gave none) and returns the outcome:
/// a program that ended without a code was killed by a signal (a crash, the OOM killer), which
/// is a failure like a non-zero code.
pub(crate) async fn record_exit(run: &Run, code: Option<i32>, killed: &str) -> Outcome {
    let summary = code.map_or_else(|| killed.to_owned(), |code| format!("exit {code}"));
    let exit = NewEvent {
        exit_code: code,
        ..NewEvent::new(EventKind::Exit, summary)
    };
    match run.record(vec![Append::Event(exit)]).await {
        Ok(_) if code.is_none() => Outcome::Failed {
            reason: killed.to_owned(),
        },
        Ok(_) => Outcome::Done { exit_code: code },
        Err(outcome) => outcome,
    }
}

pub(crate) async fn execute(run: &Run, settings: &CommandSettings) -> Outcome {
    let Some((program, fixed)) = settings.argv.split_first() else {
        return run.fail("the connection has no program to run").await;
    };
    let command_line = match settings.input {
        InputMode::Argument => format!("{} {}", settings.argv.join(" "), run.input),
        InputMode::Stdin => format!("{} < input", settings.argv.join(" ")),
    };
    let input = NewEvent {
        text: Some(run.input.clone()),
        ..NewEvent::new(EventKind::Input, summarize(&command_line))
    };
    if let Err(outcome) = run.record(vec![Append::Event(input)]).await {
        return outcome;
    }
    let mut command = Command::new(program);
    command
        .args(fixed)
        .env_clear()
        .envs(child_env(
            std::env::vars(),
            &settings.env.clone().unwrap_or_default(),
        ))
        .stdin(if settings.input == InputMode::Stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if settings.input == InputMode::Argument {
        command.arg(&run.input);
    }
    if let Some(folder) = &settings.working_dir {
        command.current_dir(folder);
    }
    if let Some(name) = &settings.run_as {
        match os_user(name) {
            Ok(user) => {
                command
                    .uid(user.uid.as_raw())
                    .gid(user.gid.as_raw())
                    .env("HOME", &user.dir)
                    .env("USER", &user.name)
                    .env("LOGNAME", &user.name);
            }
            Err(reason) => return run.fail(reason).await,
        }
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return run
                .fail(format!("the program {program} was not found"))
                .await;
        }
        Err(error) => return run.fail(format!("cannot start {program}: {error}")).await,
    };
    let group = child.id();
    if let Some(group) = group {
        run.started_program(group).await;
    }
    if let Some(mut stdin) = child.stdin.take() {
        let input = run.input.clone().into_bytes();
        // A program that exits without reading its input is not an error.
        tokio::spawn(async move {
            let _ = stdin.write_all(&input).await;
        });
    }
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let deadline = run.timeout().map(|limit| Instant::now() + limit);
    let (mut out_buf, mut err_buf) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    let (mut out_open, mut err_open) = (true, true);
    let mut output = OutputBuffer::default();
    let mut tick = tokio::time::interval(FLUSH_EVERY);

    let stopped = loop {
        if !out_open && !err_open {
            break None;
        }
        let read = tokio::select! {
            read = stdout.read(&mut out_buf), if out_open => Some((Stream::Stdout, read)),
            read = stderr.read(&mut err_buf), if err_open => Some((Stream::Stderr, read)),
            _ = tick.tick() => None,
            () = run.cancel.cancelled() => break Some(Stop::Cancelled),
            () = sleep_until(deadline) => break Some(Stop::TimedOut),
        };
        match read {
            Some((stream, Ok(0) | Err(_))) => match stream {
                Stream::Stdout => out_open = false,
                Stream::Stderr | Stream::Stdin => err_open = false,
            },
            Some((stream, Ok(count))) => {
                let data = if stream == Stream::Stdout {
                    &out_buf[..count]
                } else {
                    &err_buf[..count]
                };
                if let Err(outcome) = output.push(run, stream, data).await {
                    kill_group(group);
                    return outcome;
                }
            }
            None => {
                if let Err(outcome) = output.flush(run).await {
                    kill_group(group);
                    return outcome;
                }
            }
        }
    };
    if stopped.is_some() {
        kill_group(group);
    }
    if let Err(outcome) = output.flush(run).await {
        return outcome;
    }
    match stopped {
        Some(Stop::Cancelled) => {
            let _ = child.wait().await;
            Outcome::Cancelled
        }
        Some(Stop::TimedOut) => {
            let _ = child.wait().await;
            let limit = run.timeout().unwrap_or_default().as_secs();
            run.fail(format!(
                "the command ran longer than {limit} s and was stopped"
            ))
            .await
        }
        None => match child.wait().await {
            Ok(status) => {
                use std::os::unix::process::ExitStatusExt;
                let killed = status.signal().map_or_else(
                    || format!("ended without an exit status ({status})"),
                    |number| killed_by(&signal_name(number)),
                );
                record_exit(run, status.code(), &killed).await
            }
            Err(error) => {
                run.fail(format!("lost track of the program: {error}"))
                    .await
            }
        },
    }
}

enum Stop {
    Cancelled,
    TimedOut,
}

/// Stops the program and everything it started.
fn kill_group(group: Option<u32>) {
    if let Some(group) = group.and_then(|id| i32::try_from(id).ok()) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(group),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// Whether the connection's program can be found and run.
pub async fn check(settings: &CommandSettings) -> Result<String, String> {
    let Some(program) = settings.argv.first() else {
        return Err("the connection has no program".into());
    };
    let candidates: Vec<std::path::PathBuf> = if program.contains('/') {
        vec![program.into()]
    } else {
        std::env::var_os("PATH")
            .map(|path| {
                std::env::split_paths(&path)
                    .map(|folder| folder.join(program))
                    .collect()
            })
            .unwrap_or_default()
    };
    for candidate in candidates {
        if let Ok(metadata) = tokio::fs::metadata(&candidate).await {
            use std::os::unix::fs::PermissionsExt;
            if metadata.is_file() && metadata.permissions().mode() & 0o111 != 0 {
                return Ok(format!("{} is ready to run", candidate.display()));
            }
        }
    }
    Err(format!("the program {program} was not found"))
}
