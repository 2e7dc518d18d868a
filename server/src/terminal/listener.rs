//! Loupe's own SSH listener (`LOUPE_SSH_BIND`): people keep their `ssh`. The user name says who
//! and where, `alice+web-1` (the Loupe user, then the shell or ssh connection), and one of the
//! public keys the user registered on their profile logs them in.
//!
//! - `ssh -p 2222 alice+web-1@loupe-host` opens an interactive terminal: the same relay and the
//!   same recording as the browser's terminal and `loupe ssh`.
//! - `ssh -p 2222 alice+web-1@loupe-host 'uptime'` runs one command as a command session,
//!   under the connection's command review like any run; its output and exit status come back.
//! - Port forwarding, agent forwarding, X11 and subsystems (sftp) are refused: Loupe records
//!   terminals and commands, not tunnels it cannot show.
//!
//! Just-in-time access is checked when the terminal or command starts; a refusal is written to
//! the client's standard error, with exit status 1.

use std::{collections::HashMap, net::SocketAddr, sync::Arc, time::Duration};

use bytes::Bytes;
use loupe_protocol::{EventKind, SessionStatus, Stream, TerminalNotice};
use russh::{
    Channel, ChannelId, MethodKind, MethodSet,
    keys::PrivateKey,
    server::{self, Auth, Handle, Msg, Server as _, Session, VerifiedPublicKey},
};
use tokio::{net::TcpListener, sync::mpsc};

use super::{
    relay::{self, ClientEnd, FromClient, ToClient},
    screen::Size,
};
use crate::{
    identity::{
        auth::{Actor, Credential},
        ssh_keys,
    },
    reviews::{self, Reviews},
    sessions::recorder::Recorder,
    store::Store,
};

/// What the listener works with.
#[derive(Clone)]
pub struct Services {
    pub reviews: Reviews,
    pub recorder: Recorder,
    /// Where people open Loupe, for the links given to clients (a held command's review).
    pub public_url: String,
    /// How often an open terminal checks that its user's login still works.
    pub recheck: Duration,
}

/// How often a command's session is read for new output while it runs.
const FOLLOW_EVERY: Duration = Duration::from_millis(50);
/// Output read at once while following a command.
const FOLLOW_BYTES: i64 = 1024 * 1024;

/// Serves SSH clients on `listener` until the process ends.
pub async fn serve(listener: TcpListener, services: Services, host_key: PrivateKey) {
    let config = Arc::new(server::Config {
        keys: vec![host_key],
        methods: MethodSet::from(&[MethodKind::PublicKey][..]),
        auth_rejection_time: Duration::from_millis(500),
        auth_rejection_time_initial: Some(Duration::ZERO),
        keepalive_interval: Some(Duration::from_secs(30)),
        nodelay: true,
        ..server::Config::default()
    });
    let mut acceptor = Acceptor { services };
    if let Err(error) = acceptor.run_on_socket(config, &listener).await {
        tracing::error!(%error, "the SSH listener stopped");
    }
}

struct Acceptor {
    services: Services,
}

impl server::Server for Acceptor {
    type Handler = Client;

    fn new_client(&mut self, peer: Option<SocketAddr>) -> Client {
        Client {
            services: self.services.clone(),
            peer,
            who: None,
            channels: HashMap::new(),
        }
    }
}

/// One SSH client connection.
struct Client {
    services: Services,
    peer: Option<SocketAddr>,
    /// Once logged in: who, and the connection they named.
    who: Option<(Actor, String)>,
    channels: HashMap<ChannelId, Open>,
}

/// A session channel: the terminal size asked for, and where its input goes once it runs.
/// Unbounded, so a handler never waits on the relay: the relay may itself be waiting for this
/// connection's loop to take its output (a pump task moves input on to the relay's queue).
struct Open {
    size: Size,
    input: Option<mpsc::UnboundedSender<FromClient>>,
}

impl Client {
    /// Who is logged in and the connection they named, as the store sees them now: a connection
    /// stays open for hours, so each terminal or command checks the login again (a revoked key,
    /// a disabled user, an auditor now). Refuses the channel when it no longer works.
    async fn logged_in(&self, handle: &Handle, channel: ChannelId) -> Option<(Actor, String)> {
        let (actor, connection) = self.who.clone()?;
        let now = crate::identity::auth::refreshed(&self.services.reviews.store, &actor)
            .await
            .ok()
            .flatten()
            .filter(crate::identity::policy::may_run_sessions);
        if now.is_none() {
            refuse(
                handle,
                channel,
                "your login no longer lets you in: log in again",
            )
            .await;
        }
        Some((now?, connection))
    }
}

/// `alice+web-1`: the Loupe user and the connection.
fn split_user(user: &str) -> Option<(&str, &str)> {
    let (username, connection) = user.split_once('+')?;
    (!username.is_empty() && !connection.is_empty()).then_some((username, connection))
}

fn clamp(value: u32) -> u16 {
    u16::try_from(value.clamp(1, u32::from(loupe_protocol::MAX_TERMINAL_SIDE))).unwrap_or(80)
}

impl server::Handler for Client {
    type Error = russh::Error;

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        let Some((username, connection)) = split_user(user) else {
            return Ok(Auth::reject());
        };
        let store = &self.services.reviews.store;
        match ssh_keys::owner_of(store, username, key.public_key).await {
            Some(owner) => {
                let actor = Actor::from_user(
                    &owner,
                    self.peer.map(|peer| peer.ip().to_string()),
                    Credential::SshKey {
                        fingerprint: ssh_keys::fingerprint(key.public_key),
                    },
                );
                self.who = Some((actor, connection.to_owned()));
                Ok(Auth::Accept)
            }
            None => Ok(Auth::reject()),
        }
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.channels.insert(
            channel.id(),
            Open {
                size: Size::DEFAULT,
                input: None,
            },
        );
        reply.accept().await;
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        cols: u32,
        rows: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(open) = self.channels.get_mut(&channel) {
            // A client without a terminal of its own (`ssh -tt` from a pipe) says 0×0.
            open.size = if cols == 0 || rows == 0 {
                Size::DEFAULT
            } else {
                Size {
                    cols: clamp(cols),
                    rows: clamp(rows),
                }
            };
        }
        session.channel_success(channel)?;
        Ok(())
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)?;
        let handle = session.handle();
        let Some((actor, connection)) = self.logged_in(&handle, channel).await else {
            return Ok(());
        };
        let Some(open) = self.channels.get_mut(&channel) else {
            return Ok(());
        };
        let admitted = match relay::admit(&self.services.reviews.store, &actor, &connection).await {
            Ok(admitted) => admitted,
            Err(error) => {
                refuse(&handle, channel, error.message()).await;
                return Ok(());
            }
        };
        let (input, mut typed) = mpsc::unbounded_channel();
        let (to_relay, from) = mpsc::channel(64);
        tokio::spawn(async move {
            while let Some(message) = typed.recv().await {
                if to_relay.send(message).await.is_err() {
                    return;
                }
            }
        });
        open.input = Some(input);
        let (to, outgoing) = mpsc::channel(64);
        tokio::spawn(write_terminal(handle, channel, outgoing));
        let services = self.services.clone();
        let size = open.size;
        tokio::spawn(async move {
            let client = ClientEnd { from, to };
            if let Err(error) = relay::run(
                &services.reviews.gateway,
                &services.recorder,
                admitted,
                size,
                services.recheck,
                client,
            )
            .await
            {
                tracing::warn!(%error, "an SSH terminal could not start");
            }
        });
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)?;
        let handle = session.handle();
        let Some((actor, connection)) = self.logged_in(&handle, channel).await else {
            return Ok(());
        };
        let services = self.services.clone();
        let input = String::from_utf8_lossy(data).into_owned();
        tokio::spawn(async move {
            run_command(services, actor, connection, input, handle, channel).await;
        });
        Ok(())
    }

    async fn data(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(input) = self
            .channels
            .get(&channel)
            .and_then(|open| open.input.clone())
        {
            let _ = input.send(FromClient::Input(Bytes::copy_from_slice(data)));
        }
        Ok(())
    }

    async fn window_change_request(
        &mut self,
        channel: ChannelId,
        cols: u32,
        rows: u32,
        _pix_width: u32,
        _pix_height: u32,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(open) = self.channels.get_mut(&channel) {
            open.size = Size {
                cols: clamp(cols),
                rows: clamp(rows),
            };
            if let Some(input) = open.input.clone() {
                let _ = input.send(FromClient::Resize(open.size));
            }
        }
        Ok(())
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        // Dropping the input ends the relay (the user left).
        self.channels.remove(&channel);
        Ok(())
    }
}

/// Tells the client why it cannot go on (standard error) and ends the channel with status 1.
async fn refuse(handle: &Handle, channel: ChannelId, reason: &str) {
    let _ = handle
        .extended_data(channel, 1, format!("loupe: {reason}\r\n").into_bytes())
        .await;
    finish(handle, channel, 1).await;
}

async fn finish(handle: &Handle, channel: ChannelId, status: u32) {
    let _ = handle.exit_status_request(channel, status).await;
    let _ = handle.eof(channel).await;
    let _ = handle.close(channel).await;
}

/// Writes what the relay sends to the SSH channel; ends it with the session's exit status.
async fn write_terminal(
    handle: Handle,
    channel: ChannelId,
    mut outgoing: mpsc::Receiver<ToClient>,
) {
    while let Some(message) = outgoing.recv().await {
        match message {
            ToClient::Output(bytes) => {
                if handle.data(channel, bytes).await.is_err() {
                    return;
                }
            }
            ToClient::Notice(TerminalNotice::Started { .. }) => {}
            ToClient::Notice(TerminalNotice::Message { text }) => {
                let _ = handle
                    .extended_data(channel, 1, format!("\r\n{text}\r\n").into_bytes())
                    .await;
            }
            ToClient::Notice(TerminalNotice::Ended {
                status,
                exit_code,
                reason,
            }) => {
                if let Some(reason) = reason {
                    let _ = handle
                        .extended_data(channel, 1, format!("\r\nloupe: {reason}\r\n").into_bytes())
                        .await;
                }
                let code = exit_code.unwrap_or(if status == SessionStatus::Done { 0 } else { 1 });
                finish(&handle, channel, u32::try_from(code).unwrap_or(1)).await;
                return;
            }
        }
    }
}

/// `ssh … command`: runs it as a command session through the connection (held for review
/// where the connection says so) and streams its output back until it ends.
async fn run_command(
    services: Services,
    actor: Actor,
    connection: String,
    input: String,
    handle: Handle,
    channel: ChannelId,
) {
    let started = reviews::start(&services.reviews, &actor, &connection, &input, None, None);
    let session = match started.await {
        Ok(session) => session,
        Err(error) => return refuse(&handle, channel, error.message()).await,
    };
    if session.status == SessionStatus::PendingReview {
        let note = format!(
            "loupe: this command waits for a reviewer: {}/sessions/{}\r\n",
            services.public_url.trim_end_matches('/'),
            session.id
        );
        let _ = handle.extended_data(channel, 1, note.into_bytes()).await;
    }
    match follow(&services.reviews.store, &session.id, &handle, channel).await {
        Some(code) => finish(&handle, channel, code).await,
        // The client went away: so does its command (a held one waits for its reviewer).
        None => {
            services.reviews.gateway.kill(&session.id);
        }
    }
}

/// Streams a session's output to the channel (stdout and stderr apart) until it ends; answers
/// the exit status to give the client, or none when the client is gone.
async fn follow(store: &Store, id: &str, handle: &Handle, channel: ChannelId) -> Option<u32> {
    let mut after = 0i64;
    let mut outputs: Vec<(i64, i64)> = Vec::new();
    let mut exit_code = None;
    loop {
        // Read the end state first: everything recorded before it is read below.
        let Ok(Some(session)) = store.session(id).await else {
            return Some(1);
        };
        let ended = session.status.is_final();
        if let Ok(events) = store.session_events(id, after, 500).await {
            for event in events {
                after = event.seq;
                match event.kind {
                    EventKind::Output => outputs.push((event.seq, 0)),
                    EventKind::Exit => exit_code = event.exit_code,
                    EventKind::Error => {
                        let text = event.body.unwrap_or(event.summary);
                        let _ = handle
                            .extended_data(channel, 1, format!("loupe: {text}\n").into_bytes())
                            .await;
                    }
                    _ => {}
                }
            }
        }
        for (seq, offset) in &mut outputs {
            while let Ok(chunks) = store
                .output_chunks(id, *seq, *offset, *offset + FOLLOW_BYTES)
                .await
            {
                let mut read = false;
                for chunk in chunks {
                    let end = chunk.byte_offset + chunk.data.len() as i64;
                    if end <= *offset {
                        continue;
                    }
                    let skip = usize::try_from(*offset - chunk.byte_offset).unwrap_or(0);
                    let bytes = Bytes::from(chunk.data).slice(skip..);
                    let _ = match chunk.stream {
                        Stream::Stderr => {
                            handle.extended_data(channel, 1, bytes).await.map_err(drop)
                        }
                        _ => handle.data(channel, bytes).await.map_err(drop),
                    };
                    *offset = end;
                    read = true;
                }
                if !read {
                    break;
                }
            }
        }
        if ended {
            let fallback = if session.status == SessionStatus::Done {
                0
            } else {
                1
            };
            return Some(exit_code.map_or(fallback, |code| u32::try_from(code).unwrap_or(1)));
        }
        tokio::time::sleep(FOLLOW_EVERY).await;
    }
}

/// The listener's host key: `ssh_host_ed25519_key` in the data folder, generated (Ed25519,
/// readable by Loupe's user only) on first start. Errors: the file cannot be read or written.
pub fn host_key(data_dir: &std::path::Path) -> anyhow::Result<PrivateKey> {
    use std::io::Write;
    let path = data_dir.join("ssh_host_ed25519_key");
    if path.exists() {
        let text = std::fs::read_to_string(&path)?;
        return PrivateKey::from_openssh(text.trim())
            .map_err(|error| anyhow::anyhow!("reading {}: {error}", path.display()));
    }
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).expect("the operating system provides randomness");
    let key = PrivateKey::from(russh::keys::ssh_key::private::Ed25519Keypair::from_seed(
        &seed,
    ));
    let text = key
        .to_openssh(russh::keys::ssh_key::LineEnding::LF)
        .map_err(|error| anyhow::anyhow!("encoding the SSH host key: {error}"))?;
    std::fs::create_dir_all(data_dir)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(&path)?.write_all(text.as_bytes())?;
    Ok(key)
}
