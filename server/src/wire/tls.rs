//! TLS on the wire listeners: the certificate from `LOUPE_TLS_CERT`/`LOUPE_TLS_KEY`, or a
//! self-signed one generated into the data folder on first start and reused after
//! (`wire-tls.crt`, `wire-tls.key`, the key readable by its owner only). Clients that check
//! certificates pin its SHA-256 fingerprint, which is logged at start and served in
//! `/api/settings`.
//!
//! A connection on either side of a relay is a [`WireStream`]: as accepted or dialled, or after
//! the TLS handshake each protocol asks for in its own way (PostgreSQL's `SSLRequest`, MySQL's
//! `SSL_REQUEST` packet) — toward clients with this certificate, toward targets as
//! [`super::target_tls`] says.

use std::{
    io::Write,
    path::{Path, PathBuf},
    pin::Pin,
    sync::Arc,
    task::{Context as TaskContext, Poll},
};

use anyhow::{Context, Result};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use sha2::{Digest, Sha256};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};
use tokio_rustls::{TlsAcceptor, TlsStream};

use crate::config::Config;

/// The listeners' TLS: what accepts handshakes, and the certificate's fingerprint.
pub struct WireTls {
    acceptor: TlsAcceptor,
    /// SHA-256 of the leaf certificate (DER), as `openssl x509 -fingerprint -sha256` prints it.
    pub fingerprint: String,
}

impl WireTls {
    /// The configured certificate, or the generated one (made now when there is none).
    pub fn load(config: &Config) -> Result<WireTls> {
        let (certificate, key) = match (&config.tls_cert, &config.tls_key) {
            (Some(certificate), Some(key)) => (certificate.clone(), key.clone()),
            _ => generated(&config.data_dir, config.public_url.as_deref())?,
        };
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&certificate)
            .and_then(|certificates| certificates.collect())
            .with_context(|| format!("reading the certificates in {}", certificate.display()))?;
        let leaf = chain
            .first()
            .with_context(|| format!("{} holds no certificate", certificate.display()))?;
        let fingerprint = fingerprint(leaf);
        let private = PrivateKeyDer::from_pem_file(&key)
            .with_context(|| format!("reading the private key in {}", key.display()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, private)
            .context("the TLS certificate and key do not go together")?;
        Ok(WireTls {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            fingerprint,
        })
    }

    /// The TLS handshake on an accepted connection.
    pub async fn accept(&self, stream: TcpStream) -> std::io::Result<WireStream> {
        let tls = self.acceptor.accept(stream).await?;
        Ok(WireStream::Tls(Box::new(TlsStream::Server(tls))))
    }
}

/// `wire-tls.crt` and `wire-tls.key` in `data_dir`, generated when missing: self-signed, for
/// `localhost`, the loopback addresses and the host of `public_url`.
fn generated(data_dir: &Path, public_url: Option<&str>) -> Result<(PathBuf, PathBuf)> {
    let certificate = data_dir.join("wire-tls.crt");
    let key = data_dir.join("wire-tls.key");
    if certificate.exists() && key.exists() {
        return Ok((certificate, key));
    }
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if let Some(host) = public_url
        .and_then(|url| url::Url::parse(url).ok())
        .and_then(|url| url.host_str().map(str::to_owned))
        && !names.contains(&host)
    {
        names.push(host);
    }
    let made = rcgen::generate_simple_self_signed(names)
        .context("generating the wire listeners' certificate")?;
    std::fs::create_dir_all(data_dir)?;
    write_new(&key, made.signing_key.serialize_pem().as_bytes(), true)?;
    write_new(&certificate, made.cert.pem().as_bytes(), false)?;
    tracing::info!(path = %certificate.display(), "generated a self-signed certificate for the wire listeners; set LOUPE_TLS_CERT and LOUPE_TLS_KEY to use your own");
    Ok((certificate, key))
}

/// Writes a file anew (one left from a half-made pair is replaced); `private` ones are
/// readable by their owner only.
fn write_new(path: &Path, contents: &[u8], private: bool) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            return Err(error).with_context(|| format!("cannot replace {}", path.display()));
        }
        _ => {}
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if private {
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(contents)?;
    file.sync_all()?;
    Ok(())
}

/// `AB:CD:…`: SHA-256 of a certificate's DER, upper-case hexadecimal pairs.
fn fingerprint(certificate: &CertificateDer<'_>) -> String {
    Sha256::digest(certificate.as_ref())
        .iter()
        .map(|byte| format!("{byte:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A connection to a client or a target: plain TCP, or inside TLS (Loupe the server toward
/// clients, the client toward targets).
pub enum WireStream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl WireStream {
    pub fn is_tls(&self) -> bool {
        matches!(self, WireStream::Tls(_))
    }
}

impl AsyncRead for WireStream {
    fn poll_read(
        self: Pin<&mut Self>,
        context: &mut TaskContext<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            WireStream::Plain(stream) => Pin::new(stream).poll_read(context, buffer),
            WireStream::Tls(stream) => Pin::new(stream).poll_read(context, buffer),
        }
    }
}

impl AsyncWrite for WireStream {
    fn poll_write(
        self: Pin<&mut Self>,
        context: &mut TaskContext<'_>,
        buffer: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            WireStream::Plain(stream) => Pin::new(stream).poll_write(context, buffer),
            WireStream::Tls(stream) => Pin::new(stream).poll_write(context, buffer),
        }
    }

    fn poll_flush(
        self: Pin<&mut Self>,
        context: &mut TaskContext<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            WireStream::Plain(stream) => Pin::new(stream).poll_flush(context),
            WireStream::Tls(stream) => Pin::new(stream).poll_flush(context),
        }
    }

    fn poll_shutdown(
        self: Pin<&mut Self>,
        context: &mut TaskContext<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            WireStream::Plain(stream) => Pin::new(stream).poll_shutdown(context),
            WireStream::Tls(stream) => Pin::new(stream).poll_shutdown(context),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_certificate_is_made_once_and_reused() {
        let folder = tempfile::tempdir().unwrap();
        let mut config = Config::with_database("sqlite::memory:");
        config.data_dir = folder.path().to_path_buf();
        let first = WireTls::load(&config).unwrap();
        let again = WireTls::load(&config).unwrap();
        assert_eq!(first.fingerprint, again.fingerprint);
        assert_eq!(first.fingerprint.len(), 32 * 3 - 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(folder.path().join("wire-tls.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // A configured pair that does not exist is a clear error, not a panic.
        config.tls_cert = Some(folder.path().join("missing.crt"));
        config.tls_key = Some(folder.path().join("missing.key"));
        let error = WireTls::load(&config).err().unwrap();
        assert!(format!("{error:#}").contains("missing.crt"), "{error:#}");
    }
}
