//! An ssh connection's one-command runs (`POST /api/sessions`, `ssh host command`): the command
//! runs on the server without a PTY, stdout and stderr apart, recorded like a command
//! connection's run; command review applies to them as to any command.

use loupe_protocol::{EventKind, Stream};
use russh::ChannelMsg;

use super::{Outcome, Run, command::OutputBuffer, sleep_until};
use crate::{
    child_process::killed_by,
    sessions::{
        recorder::{Append, NewEvent},
        summarize,
    },
    terminal::{settings::SshTarget, ssh},
};

/// Runs `run.input` as one command on the server (no PTY: stdout and stderr apart), recorded
/// like a command connection's run.
pub(super) async fn execute(run: &Run, target: &SshTarget) -> Outcome {
    let input = NewEvent {
        text: Some(run.input.clone()),
        ..NewEvent::new(EventKind::Input, summarize(&run.input))
    };
    if let Err(outcome) = run.record(vec![Append::Event(input)]).await {
        return outcome;
    }
    let connected = match ssh::connect(target, ssh::Pinning::Require).await {
        Ok(connected) => connected,
        Err(reason) => return run.fail(reason).await,
    };
    let outcome = execute_on(run, &connected).await;
    connected.close().await;
    outcome
}

async fn execute_on(run: &Run, connected: &ssh::Connected) -> Outcome {
    let mut channel = match connected.handle.channel_open_session().await {
        Ok(channel) => channel,
        Err(error) => {
            return run
                .fail(format!("the server refused a session: {error}"))
                .await;
        }
    };
    if let Err(error) = channel.exec(true, run.input.as_bytes()).await {
        return run
            .fail(format!("the server refused the command: {error}"))
            .await;
    }
    let _ = channel.eof().await;
    let deadline = run
        .timeout()
        .map(|limit| tokio::time::Instant::now() + limit);
    let mut output = OutputBuffer::default();
    let mut tick = tokio::time::interval(super::command::FLUSH_EVERY);
    let mut exit: Option<Option<i32>> = None;
    // Named by the server's exit-signal, when it sends one.
    let mut killed = String::from("killed by a signal");
    loop {
        let message = tokio::select! {
            message = channel.wait() => message,
            _ = tick.tick() => {
                if let Err(outcome) = output.flush(run).await {
                    return outcome;
                }
                continue;
            }
            () = run.cancel.cancelled() => {
                let _ = channel.close().await;
                return match output.flush(run).await {
                    Ok(()) => Outcome::Cancelled,
                    Err(outcome) => outcome,
                };
            }
            () = sleep_until(deadline) => {
                let _ = channel.close().await;
                if let Err(outcome) = output.flush(run).await {
                    return outcome;
                }
                let limit = run.timeout().unwrap_or_default().as_secs();
                return run.fail(format!("the command ran longer than {limit} s and was stopped")).await;
            }
        };
        let pushed = match message {
            Some(ChannelMsg::Data { data }) => output.push(run, Stream::Stdout, &data).await,
            Some(ChannelMsg::ExtendedData { data, .. }) => {
                output.push(run, Stream::Stderr, &data).await
            }
            Some(ChannelMsg::ExitStatus { exit_status }) => {
                exit = Some(i32::try_from(exit_status).ok());
                Ok(())
            }
            Some(ChannelMsg::ExitSignal { signal_name, .. }) => {
                let reason = killed_by(&ssh::signal_name_of(signal_name));
                exit = Some(None);
                let pushed = output
                    .push(run, Stream::Stderr, format!("{reason}\n").as_bytes())
                    .await;
                killed = reason;
                pushed
            }
            Some(ChannelMsg::Close) | None => break,
            Some(_) => Ok(()),
        };
        if let Err(outcome) = pushed {
            return outcome;
        }
    }
    if let Err(outcome) = output.flush(run).await {
        return outcome;
    }
    match exit {
        Some(code) => super::command::record_exit(run, code, &killed).await,
        None => {
            run.fail("the SSH server closed the session without an exit status")
                .await
        }
    }
}
