//! The relay between a terminal's client and its target: admission, the session it is
//! recorded as, bytes both ways, and its end (see the module above for the whole picture).

use bytes::Bytes;
use loupe_protocol::{EventKind, SessionStatus, TerminalNotice, Verb};
use tokio::sync::mpsc;

use super::{
    record::Recording,
    screen::Size,
    settings::StoredTerminal,
    target::{FromTarget, ToTarget},
};
use crate::{
    error::ApiError,
    gateway::Gateway,
    identity::{
        auth::{self, Actor},
        policy::{self, ensure},
    },
    reviews,
    sessions::recorder::{Append, NewEvent, Recorder, status_after_exit},
    store::{ConnectionRecord, Store},
};

/// What the client sends: keystrokes and resizes. The channel closing means the client left.
#[derive(Debug)]
pub enum FromClient {
    Input(Bytes),
    Resize(Size),
}

/// What the client is sent.
#[derive(Debug)]
pub enum ToClient {
    Output(Bytes),
    Notice(TerminalNotice),
}

/// The client's side of a terminal, however it is connected.
pub struct ClientEnd {
    pub from: mpsc::Receiver<FromClient>,
    pub to: mpsc::Sender<ToClient>,
}

/// A user who may open a terminal on a connection now.
pub struct Admitted {
    pub actor: Actor,
    pub connection: ConnectionRecord,
    /// The just-in-time access it runs under, when the connection needs one.
    pub access: Option<String>,
}

/// Checks that `actor` may open a terminal on the connection `name` (id or name) now.
///
/// Errors: 403 for auditors, 404 for no such connection, 400 (`connection`) for one that is
/// not a terminal connection, 403 `access_required` without granted just-in-time access.
pub async fn admit(store: &Store, actor: &Actor, name: &str) -> Result<Admitted, ApiError> {
    ensure(
        policy::may_run_sessions(actor),
        "auditors cannot open terminals",
    )?;
    let connection = store
        .connection(name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no connection named {name}")))?;
    if !connection.kind.is_terminal() {
        return Err(ApiError::bad_request(
            "connection",
            format!(
                "{} is a {} connection; terminals open on shell and ssh connections",
                connection.name,
                connection.kind.as_str()
            ),
        ));
    }
    let access = reviews::granted_access(store, actor, &connection).await?;
    Ok(Admitted {
        actor: actor.clone(),
        connection,
        access,
    })
}

/// How a terminal ended.
enum Ended {
    Exited(Option<i32>),
    Signalled(String),
    ClientLeft,
    Lost(String),
    Stopped(String),
}

/// Runs an admitted terminal of `size` for `client` until either side leaves; records it as one
/// session; every `recheck` (`LOUPE_LIVE_RECHECK`) checks that its user's login still works.
/// Answers once the session has ended.
pub async fn run(
    gateway: &Gateway,
    recorder: &Recorder,
    admitted: Admitted,
    size: Size,
    recheck: std::time::Duration,
    mut client: ClientEnd,
) -> Result<(), ApiError> {
    let connection = &admitted.connection;
    let record_input = StoredTerminal::parse(connection.terminal.as_deref())?.record_input;
    let summary = gateway.terminal_summary(connection)?;
    let session_id = gateway
        .create_session(
            &admitted.actor,
            connection,
            &summary,
            None,
            SessionStatus::Running,
            Verb::Connect,
        )
        .await?;
    let (stop, why) = gateway.register(&session_id, admitted.access.clone());
    let _ = client
        .to
        .send(ToClient::Notice(TerminalNotice::Started {
            session: session_id.clone(),
        }))
        .await;
    let mut target = match gateway.open_terminal(connection, size).await {
        Ok(target) => target,
        Err(reason) => {
            gateway.forget(&session_id);
            let event = NewEvent {
                text: Some(reason.clone()),
                ..NewEvent::new(EventKind::Error, crate::sessions::summarize(&reason))
            };
            let finish = Append::Finish {
                status: SessionStatus::Failed,
                exit_code: None,
                error: Some(reason.clone()),
            };
            recorder
                .record(&session_id, vec![Append::Event(event), finish])
                .await?;
            let _ = client
                .to
                .send(ToClient::Notice(TerminalNotice::Ended {
                    status: SessionStatus::Failed,
                    exit_code: None,
                    reason: Some(reason),
                }))
                .await;
            return Ok(());
        }
    };
    let recording = Recording::start(
        recorder.clone(),
        gateway.store().clone(),
        session_id.clone(),
        size,
    );
    let store = gateway.store().clone();
    let actor = admitted.actor.clone();
    let mut recheck = tokio::time::interval(recheck);
    recheck.tick().await;
    let ended = loop {
        tokio::select! {
            from_target = target.from.recv() => match from_target {
                Some(FromTarget::Output(bytes)) => {
                    if !recording.output(bytes.clone()).await {
                        break Ended::Lost("recording failed".into());
                    }
                    // A client that left is noticed on its own channel; one that stopped reading
                    // does not keep a stop from being heard.
                    tokio::select! {
                        _ = client.to.send(ToClient::Output(bytes)) => {}
                        () = stop.cancelled() => continue,
                    }
                }
                Some(FromTarget::Exited(code)) => break Ended::Exited(code),
                Some(FromTarget::Signalled(signal)) => break Ended::Signalled(signal),
                Some(FromTarget::Lost(reason)) => break Ended::Lost(reason),
                None => break Ended::Lost("the terminal closed".into()),
            },
            from_client = client.from.recv() => match from_client {
                Some(FromClient::Input(bytes)) => {
                    if record_input && !recording.keys(bytes.clone()).await {
                        break Ended::Lost("recording failed".into());
                    }
                    tokio::select! {
                        _ = target.to.send(ToTarget::Input(bytes)) => {}
                        () = stop.cancelled() => continue,
                    }
                }
                Some(FromClient::Resize(size)) => {
                    if !recording.resize(size).await {
                        break Ended::Lost("recording failed".into());
                    }
                    let _ = target.to.send(ToTarget::Resize(size)).await;
                }
                None => break Ended::ClientLeft,
            },
            _ = recheck.tick() => {
                // The login behind the terminal must still work: a logout, a revoked token or
                // key, a disabled account or a new role ends it.
                match auth::refreshed(&store, &actor).await {
                    Ok(Some(now)) if policy::may_run_sessions(&now) => {}
                    Ok(_) => {
                        let reason = "the login this terminal was opened with no longer lets its user in".to_owned();
                        let _ = client.to.try_send(ToClient::Notice(TerminalNotice::Message {
                            text: format!("Loupe: this terminal is being closed: {reason}"),
                        }));
                        break Ended::Stopped(reason);
                    }
                    Err(error) => tracing::warn!(%error, "could not re-check a terminal's login"),
                }
            }
            () = stop.cancelled() => {
                let reason = why.get().cloned().unwrap_or_else(|| "stopped in Loupe by a person".to_owned());
                let _ = client.to.send(ToClient::Notice(TerminalNotice::Message {
                    text: format!("Loupe: this terminal is being closed: {reason}"),
                })).await;
                break Ended::Stopped(reason);
            }
        }
    };
    // Closing our end of the target hangs up on the program or closes the SSH channel.
    drop(target);
    gateway.forget(&session_id);
    let recorded = recording.finish().await;
    let mut appends = Vec::new();
    let (status, exit_code, reason) = match (ended, recorded) {
        (_, Err(reason)) => (
            SessionStatus::Failed,
            None,
            Some(format!("recording failed: {reason}")),
        ),
        (Ended::Exited(code), Ok(())) => {
            let summary = code.map_or_else(
                || "ended without an exit status".to_owned(),
                |code| format!("exit {code}"),
            );
            appends.push(Append::Event(NewEvent {
                exit_code: code,
                ..NewEvent::new(EventKind::Exit, summary)
            }));
            (SessionStatus::Done, code, None)
        }
        // No exit status to judge by: a program a signal ended did not finish its work.
        (Ended::Signalled(signal), Ok(())) => {
            let reason = crate::child_process::killed_by(&signal);
            appends.push(Append::Event(NewEvent::new(
                EventKind::Exit,
                reason.clone(),
            )));
            (SessionStatus::Failed, None, Some(reason))
        }
        (Ended::ClientLeft, Ok(())) => {
            appends.push(Append::Event(NewEvent::new(
                EventKind::Note,
                "the user closed the terminal",
            )));
            (SessionStatus::Done, None, None)
        }
        (Ended::Lost(reason), Ok(())) => (SessionStatus::Failed, None, Some(reason)),
        (Ended::Stopped(reason), Ok(())) => {
            appends.push(Append::Event(NewEvent::new(
                EventKind::Note,
                reason.clone(),
            )));
            (SessionStatus::Cancelled, None, Some(reason))
        }
    };
    let (status, reason) = status_after_exit(status, exit_code, reason);
    appends.push(Append::Finish {
        status,
        exit_code,
        error: reason.clone(),
    });
    if let Err(error) = recorder.record(&session_id, appends).await {
        tracing::error!(session = %session_id, %error, "could not record the end of a terminal");
    }
    let _ = client
        .to
        .send(ToClient::Notice(TerminalNotice::Ended {
            status,
            exit_code,
            reason,
        }))
        .await;
    Ok(())
}
