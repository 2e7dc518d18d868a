//! Database clients' own wire protocols through Loupe: people keep `psql`, `mysql` and their
//! drivers, and every statement is recorded. The PostgreSQL protocol ([`postgres`]) on the
//! address `LOUPE_PG_BIND` names, the MySQL protocol ([`mysql`]) on `LOUPE_MYSQL_BIND`; each
//! is off when unset. A relay forwards every message unchanged in both directions and decodes
//! copies of them to record, so what the client and the target say to each other is exactly
//! what they would say without Loupe. Admission ([`admission`]) and the session a connection
//! becomes ([`recording`]) are the same for both.

mod admission;
mod held;
pub mod mysql;
pub mod postgres;
mod recording;
pub mod tls;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use tokio::{
    io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, BufWriter},
    net::{TcpListener, TcpStream},
};

use self::tls::WireTls;
use crate::{config::Config, reviews::Reviews, sessions::recorder::Recorder};

/// What every listener works with: the store and gateway (in [`Reviews`]), the recorder, and
/// the address people open Loupe at, for links given to clients.
#[derive(Clone)]
pub struct Services {
    pub reviews: Reviews,
    pub recorder: Recorder,
    pub tls: Arc<WireTls>,
    pub public_url: String,
}

impl Services {
    pub fn new(
        reviews: Reviews,
        recorder: Recorder,
        tls: Arc<WireTls>,
        config: &Config,
    ) -> Services {
        let public_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", config.bind));
        Services {
            reviews,
            recorder,
            tls,
            public_url,
        }
    }
}

/// Accepts `protocol`'s clients on `listener` until the process ends, each connection handled
/// in its own task.
async fn accept<H, F>(listener: TcpListener, protocol: &'static str, handle: H)
where
    H: Fn(TcpStream, SocketAddr) -> F,
    F: Future<Output = std::io::Result<()>> + Send + 'static,
{
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors, say: wait rather than spin.
                tracing::warn!(%error, protocol, "accepting a client");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Messages are small and answered at once: Nagle's algorithm would hold each for a
        // delayed acknowledgement (about 40 ms).
        let _ = stream.set_nodelay(true);
        let handled = handle(stream, peer);
        tokio::spawn(async move {
            if let Err(error) = handled.await {
                tracing::debug!(%peer, %error, protocol, "a client connection ended");
            }
        });
    }
}

/// The address clients dial for a listener bound to `bind` (`host:port`): its port on the host
/// people open Loupe at (`LOUPE_PUBLIC_URL`), else on the bound host (loopback where it is
/// bound to every interface, since that host is no address to dial).
pub fn advertised(bind: &str, config: &Config) -> String {
    let (host, port) = bind.rsplit_once(':').unwrap_or((bind, ""));
    let public = config
        .public_url
        .as_deref()
        .and_then(|url| url::Url::parse(url).ok())
        .and_then(|url| url.host_str().map(str::to_owned));
    let host = match public {
        Some(public) => public,
        None if matches!(host, "0.0.0.0" | "[::]" | "") => "127.0.0.1".to_owned(),
        None => host.to_owned(),
    };
    format!("{host}:{port}")
}

/// Writes `bytes` to a relay's buffered writer, flushing unless more is already waiting in
/// `source` (it follows at once, and goes out in the same segments).
async fn forward<R, W>(
    writer: &mut BufWriter<W>,
    bytes: &[u8],
    source: &BufReader<R>,
) -> std::io::Result<()>
where
    R: AsyncRead,
    W: AsyncWrite + Unpin,
{
    writer.write_all(bytes).await?;
    if source.buffer().is_empty() {
        writer.flush().await?;
    }
    Ok(())
}

/// A percent-encoded part of a URL (RFC 3986: `+` is a plus, not a space).
fn decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}
