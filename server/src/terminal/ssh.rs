//! SSH toward an ssh connection's server (`russh`): the host key is checked against the pinned
//! one before anything is sent, Loupe logs in with the connection's key or password, and a
//! channel runs either an interactive shell in a PTY (a terminal session) or one command
//! without one (a command session, recorded like a command connection's).

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use russh::{
    ChannelMsg, Disconnect,
    client::{self, Handle},
    keys::{HashAlg, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate},
};
use tokio::sync::mpsc;

use super::{
    screen::Size,
    settings::SshTarget,
    target::{FromTarget, OUTPUT_QUEUE, Opened, ToTarget},
};

/// How long reaching the server and logging in may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Whether a connect may meet a server whose key is not pinned yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pinning {
    /// Every session: the pinned key and no other.
    Require,
    /// An administrator's test: any key when none is pinned (it is then pinned), else the
    /// pinned one.
    PinIfUnpinned,
}

/// Checks the server's key; remembers the key it saw, for the error or for pinning.
pub struct HostKey {
    pinned: Option<PublicKey>,
    seen: Arc<Mutex<Option<PublicKey>>>,
}

impl client::Handler for HostKey {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        offered: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        // Host certificates would need a trusted CA configured; only plain keys are pinned.
        let PublicKeyOrCertificate::PublicKey { key, .. } = offered else {
            return Ok(false);
        };
        *self.seen.lock().expect("never poisoned") = Some(key.clone());
        Ok(self
            .pinned
            .as_ref()
            .is_none_or(|pinned| pinned.key_data() == key.key_data()))
    }
}

/// `SHA256:…`, as `ssh-keygen -l` prints it.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// Reads a host key in OpenSSH's one-line form (`ssh-ed25519 AAAA… [comment]`).
pub fn parse_host_key(text: &str) -> Result<PublicKey, String> {
    PublicKey::from_openssh(text.trim()).map_err(|error| {
        format!(
            "ssh.host_key must be a public key as OpenSSH writes it (ssh-ed25519 AAAA…): {error}"
        )
    })
}

/// The one-line form a key is pinned as (no comment).
pub fn host_key_text(key: &PublicKey) -> String {
    let mut key = key.clone();
    key.set_comment("");
    key.to_openssh()
        .map(|text| text.trim().to_owned())
        .unwrap_or_default()
}

/// A logged-in connection, and the host key the server showed.
pub struct Connected {
    pub handle: Handle<HostKey>,
    pub host_key: PublicKey,
}

impl Connected {
    pub async fn close(&self) {
        let _ = self
            .handle
            .disconnect(Disconnect::ByApplication, "", "en")
            .await;
    }
}

/// Reaches the server, checks its key as `pinning` says and logs in.
///
/// Errors: a sentence for the person (unreachable, key changed, login refused).
pub async fn connect(target: &SshTarget, pinning: Pinning) -> Result<Connected, String> {
    let ssh = &target.ssh;
    let address = format!("{}:{}", ssh.host, ssh.port);
    let pinned = match (&ssh.host_key, pinning) {
        (Some(text), _) => Some(parse_host_key(text)?),
        (None, Pinning::PinIfUnpinned) => None,
        (None, Pinning::Require) => {
            return Err(format!(
                "the host key of {address} is not pinned yet: an administrator tests the connection first"
            ));
        }
    };
    let seen = Arc::new(Mutex::new(None));
    let handler = HostKey {
        pinned: pinned.clone(),
        seen: seen.clone(),
    };
    let config = Arc::new(client::Config {
        keepalive_interval: Some(Duration::from_secs(30)),
        nodelay: true,
        ..client::Config::default()
    });
    let connecting = async {
        let mut handle = match client::connect(config, (ssh.host.as_str(), ssh.port), handler).await
        {
            Ok(handle) => handle,
            Err(russh::Error::UnknownKey) => {
                let shown = seen.lock().expect("never poisoned").clone();
                return Err(match (pinned, shown) {
                    (Some(pinned), Some(shown)) => format!(
                        "the host key of {address} has changed: {} is pinned, the server showed {}. \
                         If the server's key was replaced on purpose, an administrator pins the new one \
                         (ssh.host_key) and tests the connection",
                        fingerprint(&pinned),
                        fingerprint(&shown)
                    ),
                    _ => format!("{address} showed a host certificate; only host keys are pinned"),
                });
            }
            Err(error) => return Err(format!("cannot reach {address} over SSH: {error}")),
        };
        let accepted = match (&target.secret.private_key, &target.secret.password) {
            (Some(key), _) => {
                let key = russh::keys::decode_secret_key(key, None).map_err(|error| {
                    format!("the connection's private key cannot be read: {error}")
                })?;
                let hash = handle
                    .best_supported_rsa_hash()
                    .await
                    .ok()
                    .flatten()
                    .flatten();
                handle
                    .authenticate_publickey(
                        &ssh.username,
                        PrivateKeyWithHashAlg::new(Arc::new(key), hash),
                    )
                    .await
            }
            (None, Some(password)) => handle.authenticate_password(&ssh.username, password).await,
            (None, None) => return Err("the connection has no key or password".into()),
        }
        .map_err(|error| format!("logging in to {address} failed: {error}"))?;
        if !accepted.success() {
            return Err(format!(
                "{address} refused the connection's {} for the user {}",
                if ssh.key { "key" } else { "password" },
                ssh.username
            ));
        }
        let host_key = seen
            .lock()
            .expect("never poisoned")
            .clone()
            .ok_or_else(|| "the server showed no host key".to_owned())?;
        Ok(Connected { handle, host_key })
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
        Ok(connected) => connected,
        Err(_) => Err(format!(
            "{address} did not complete an SSH login within {} s",
            CONNECT_TIMEOUT.as_secs()
        )),
    }
}

/// Opens an interactive shell in a PTY of `size`.
pub async fn open_terminal(target: &SshTarget, size: Size) -> Result<Opened, String> {
    let connected = connect(target, Pinning::Require).await?;
    let channel = match shell_channel(&connected, size).await {
        Ok(channel) => channel,
        Err(error) => {
            connected.close().await;
            return Err(format!("the server refused a terminal: {error}"));
        }
    };
    let (from_sender, from) = mpsc::channel(OUTPUT_QUEUE);
    let (to, to_receiver) = mpsc::channel(OUTPUT_QUEUE);
    tokio::spawn(relay(connected, channel, from_sender, to_receiver));
    Ok(Opened { from, to })
}

async fn shell_channel(
    connected: &Connected,
    size: Size,
) -> Result<russh::Channel<client::Msg>, russh::Error> {
    let channel = connected.handle.channel_open_session().await?;
    channel
        .request_pty(
            true,
            "xterm-256color",
            u32::from(size.cols),
            u32::from(size.rows),
            0,
            0,
            &[],
        )
        .await?;
    channel.request_shell(true).await?;
    Ok(channel)
}

async fn relay(
    connected: Connected,
    mut channel: russh::Channel<client::Msg>,
    from: mpsc::Sender<FromTarget>,
    mut to: mpsc::Receiver<ToTarget>,
) {
    // How the program ended, once the server says; sent when the channel closes.
    let mut exit: Option<FromTarget> = None;
    loop {
        tokio::select! {
            message = channel.wait() => match message {
                Some(ChannelMsg::Data { data } | ChannelMsg::ExtendedData { data, .. }) => {
                    if from.send(FromTarget::Output(Bytes::from(data.to_vec()))).await.is_err() {
                        break;
                    }
                }
                Some(ChannelMsg::ExitStatus { exit_status }) => {
                    exit = Some(FromTarget::Exited(i32::try_from(exit_status).ok()));
                }
                Some(ChannelMsg::ExitSignal { signal_name, .. }) => {
                    exit = Some(FromTarget::Signalled(signal_name_of(signal_name)));
                }
                Some(ChannelMsg::Close) | None => {
                    let ending = exit.take().unwrap_or_else(|| {
                        FromTarget::Lost("the SSH server closed the session".into())
                    });
                    let _ = from.send(ending).await;
                    break;
                }
                Some(_) => {}
            },
            message = to.recv() => match message {
                Some(ToTarget::Input(bytes)) => {
                    if channel.data_bytes(bytes).await.is_err() {
                        let _ = from.send(FromTarget::Lost("the SSH connection broke".into())).await;
                        break;
                    }
                }
                Some(ToTarget::Resize(size)) => {
                    let _ = channel
                        .window_change(u32::from(size.cols), u32::from(size.rows), 0, 0)
                        .await;
                }
                None => break,
            },
        }
    }
    let _ = channel.close().await;
    connected.close().await;
}

/// A signal's name as POSIX writes it (`SIGKILL`); SSH sends it without the `SIG` (RFC 4254
/// §6.10).
pub fn signal_name_of(name: russh::Sig) -> String {
    match name {
        russh::Sig::Custom(name) => format!("SIG{name}"),
        known => format!("SIG{known:?}"),
    }
}
