//! TLS toward a database target, as its connection URL asks: libpq's `sslmode` and
//! `sslrootcert` (<https://www.postgresql.org/docs/current/libpq-ssl.html>, table 34.1), or
//! MySQL's `ssl-mode` and `ssl-ca` (the names `sqlx` reads on Loupe's other path, the Run
//! page, so one URL means the same on both). Either name works for either database.
//!
//! | mode | TLS | certificate checked |
//! |---|---|---|
//! | `disable` / `DISABLED` | never | — |
//! | `allow`, `prefer` / `PREFERRED` (the default) | when the target offers it; off loopback always | no |
//! | `require` / `REQUIRED` | always | no |
//! | `verify-ca` / `VERIFY_CA` | always | chain to a trusted root |
//! | `verify-full` / `VERIFY_IDENTITY` | always | chain, and the URL's host in it |
//!
//! Stricter than libpq in one place: off loopback, `prefer` does not go on in clear text when
//! the target declines TLS, since anyone on the path can decline for it and read the stored
//! password. As libpq does, a roots file with `require` checks the chain (`verify-ca`).
//!
//! The trusted roots are the PEM file `sslrootcert` (or `ssl-root-cert`, `ssl-ca`, `sslca`)
//! names, else the Mozilla roots of `webpki-roots` (what `sqlx` trusts too). Client
//! certificates are not sent.
//! The wire relays ([`crate::wire`]) negotiate TLS in each protocol's own way and call
//! [`TargetTls::secure`] for the handshake.

use std::{path::PathBuf, sync::Arc};

use rustls::{
    CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme,
    client::{
        WebPkiServerVerifier,
        danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    },
    crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature},
    pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject},
};
use tokio::net::TcpStream;
use tokio_rustls::{TlsConnector, TlsStream};

use crate::wire::tls::WireStream;

/// How far a target's certificate is checked, from the URL's mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// What a target's URL says of TLS: the mode, the trusted roots' file, and the name its
/// certificate must carry.
#[derive(Debug, Clone)]
pub struct TargetTls {
    pub mode: TlsMode,
    roots: Option<PathBuf>,
    host: String,
}

/// The URL parameters that set the mode, and those that name the roots' file.
const MODE_PARAMETERS: [&str; 2] = ["sslmode", "ssl-mode"];
const ROOT_PARAMETERS: [&str; 4] = ["sslrootcert", "ssl-root-cert", "ssl-ca", "sslca"];
/// Client certificates, which the relays do not send: refused rather than ignored.
const CLIENT_CERTIFICATE_PARAMETERS: [&str; 4] = ["sslcert", "sslkey", "ssl-cert", "ssl-key"];

impl TargetTls {
    /// Reads the URL's TLS parameters. Errors (for the administrator, naming the parameter):
    /// a mode that is not one of the table's, or a client certificate.
    pub fn from_url(url: &url::Url) -> Result<TargetTls, String> {
        let mut mode = TlsMode::Prefer;
        let mut roots = None;
        for (name, value) in url.query_pairs() {
            if MODE_PARAMETERS.contains(&name.as_ref()) {
                mode = match value.to_ascii_lowercase().replace('_', "-").as_str() {
                    "disable" | "disabled" => TlsMode::Disable,
                    "allow" | "prefer" | "preferred" => TlsMode::Prefer,
                    "require" | "required" => TlsMode::Require,
                    "verify-ca" => TlsMode::VerifyCa,
                    "verify-full" | "verify-identity" => TlsMode::VerifyFull,
                    _ => {
                        return Err(format!(
                            "{name}={value} is not a TLS mode: use disable, prefer, require, verify-ca or verify-full"
                        ));
                    }
                };
            } else if ROOT_PARAMETERS.contains(&name.as_ref()) && value != "system" {
                roots = Some(PathBuf::from(value.into_owned()));
            } else if CLIENT_CERTIFICATE_PARAMETERS.contains(&name.as_ref()) {
                return Err(format!(
                    "{name}: client certificates toward targets are not supported"
                ));
            }
        }
        // libpq: "if a root CA file exists, the behavior of sslmode=require will be the same as
        // that of verify-ca".
        if mode == TlsMode::Require && roots.is_some() {
            mode = TlsMode::VerifyCa;
        }
        // `Url` keeps an IPv6 host in brackets; a certificate names it without.
        let host = url
            .host_str()
            .unwrap_or("localhost")
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        Ok(TargetTls { mode, roots, host })
    }

    /// Whether to ask the target for TLS at all.
    pub fn wanted(&self) -> bool {
        self.mode != TlsMode::Disable
    }

    /// What to do when the target does not offer TLS: go on in clear text where the mode is
    /// `disable`, or `prefer` on loopback; else the error to report.
    pub fn without(&self) -> Result<(), String> {
        let loopback = matches!(self.host.as_str(), "localhost" | "127.0.0.1" | "::1");
        match self.mode {
            TlsMode::Disable => Ok(()),
            TlsMode::Prefer if loopback => Ok(()),
            TlsMode::Prefer => Err(
                "the target does not offer TLS: off loopback Loupe sends its password only inside TLS (sslmode=disable in the URL allows clear text)"
                    .into(),
            ),
            _ => Err("the target does not offer TLS, which its URL requires (sslmode)".into()),
        }
    }

    /// The TLS handshake on `stream`, once the protocol has agreed to it, checking the
    /// target's certificate as far as the mode says. Errors name what failed (an unknown
    /// issuer, a name that does not match, an unreadable roots file).
    pub async fn secure(&self, stream: TcpStream) -> Result<WireStream, String> {
        let config = self.client_config()?;
        let name = ServerName::try_from(self.host.clone())
            .map_err(|_| format!("{} is not a name a certificate can carry", self.host))?;
        let tls = TlsConnector::from(Arc::new(config))
            .connect(name, stream)
            .await
            .map_err(|error| format!("TLS with the target: {error}"))?;
        Ok(WireStream::Tls(Box::new(TlsStream::Client(tls))))
    }

    fn client_config(&self) -> Result<rustls::ClientConfig, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|error| error.to_string())?;
        let checked = || -> Result<Arc<WebPkiServerVerifier>, String> {
            WebPkiServerVerifier::builder_with_provider(
                Arc::new(self.root_store()?),
                provider.clone(),
            )
            .build()
            .map_err(|error| error.to_string())
        };
        let verifier: Arc<dyn ServerCertVerifier> = match self.mode {
            TlsMode::VerifyFull => checked()?,
            TlsMode::VerifyCa => Arc::new(ChainOnly(checked()?)),
            TlsMode::Disable | TlsMode::Prefer | TlsMode::Require => Arc::new(Unchecked(provider)),
        };
        Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth())
    }

    fn root_store(&self) -> Result<RootCertStore, String> {
        let mut store = RootCertStore::empty();
        match &self.roots {
            None => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            Some(path) => {
                let certificates: Vec<CertificateDer<'static>> =
                    CertificateDer::pem_file_iter(path)
                        .and_then(|certificates| certificates.collect())
                        .map_err(|error| format!("sslrootcert {}: {error}", path.display()))?;
                let (added, _) = store.add_parsable_certificates(certificates);
                if added == 0 {
                    return Err(format!(
                        "sslrootcert {} holds no certificate",
                        path.display()
                    ));
                }
            }
        }
        Ok(store)
    }
}

/// `verify-ca`: the chain must lead to a trusted root; the name in it is not compared.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            checked => checked,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0
            .verify_tls12_signature(message, certificate, signature)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0
            .verify_tls13_signature(message, certificate, signature)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `prefer` and `require`: any certificate is taken (libpq's meaning: encryption without
/// authentication), though the handshake's signatures are still checked.
#[derive(Debug)]
struct Unchecked(Arc<CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            certificate,
            signature,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            certificate,
            signature,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(url: &str) -> Result<TargetTls, String> {
        TargetTls::from_url(&url::Url::parse(url).unwrap())
    }

    #[test]
    fn the_mode_is_read_in_either_databases_spelling() {
        for (query, mode) in [
            ("", TlsMode::Prefer),
            ("?sslmode=disable", TlsMode::Disable),
            ("?ssl-mode=DISABLED", TlsMode::Disable),
            ("?sslmode=allow", TlsMode::Prefer),
            ("?ssl-mode=PREFERRED", TlsMode::Prefer),
            ("?sslmode=require", TlsMode::Require),
            ("?ssl-mode=REQUIRED", TlsMode::Require),
            ("?sslmode=verify-ca", TlsMode::VerifyCa),
            ("?ssl-mode=VERIFY_CA", TlsMode::VerifyCa),
            ("?sslmode=verify-full", TlsMode::VerifyFull),
            ("?ssl-mode=VERIFY_IDENTITY", TlsMode::VerifyFull),
        ] {
            let remote = read(&format!("postgres://u@db.example:5432/d{query}")).unwrap();
            let local = read(&format!("postgres://u@127.0.0.1:5432/d{query}")).unwrap();
            assert_eq!(remote.mode, mode, "{query}");
            assert_eq!(remote.wanted(), mode != TlsMode::Disable, "{query}");
            // Clear text when the target declines: only where the URL says so, or prefer on
            // loopback (anyone on the path could decline for a remote target).
            assert_eq!(
                remote.without().is_ok(),
                mode == TlsMode::Disable,
                "{query}"
            );
            assert_eq!(
                local.without().is_ok(),
                matches!(mode, TlsMode::Disable | TlsMode::Prefer),
                "{query}"
            );
        }
        // A roots file with require checks the chain, as libpq does.
        let tls = read("postgres://u@h/d?sslmode=require&sslrootcert=/ca.pem").unwrap();
        assert_eq!(tls.mode, TlsMode::VerifyCa);
        let tls = read("mysql://u@h/d?ssl-mode=REQUIRED&sslca=/ca.pem").unwrap();
        assert_eq!(tls.mode, TlsMode::VerifyCa);
    }

    #[test]
    fn an_unknown_mode_or_a_client_certificate_is_an_error_naming_the_parameter() {
        let error = read("postgres://u@h/d?sslmode=sometimes").unwrap_err();
        assert!(error.starts_with("sslmode=sometimes"), "{error}");
        let error = read("mysql://u@h/d?ssl-cert=/c.pem").unwrap_err();
        assert!(error.starts_with("ssl-cert"), "{error}");
    }

    #[test]
    fn an_ipv6_host_is_the_certificate_name_without_brackets() {
        assert_eq!(read("postgres://u@[::1]:5432/d").unwrap().host, "::1");
        let tls = read("postgres://u@[::1]/d?sslrootcert=/etc/ca.pem").unwrap();
        assert_eq!(tls.roots, Some(PathBuf::from("/etc/ca.pem")));
    }

    /// A server of the test's own on loopback: a certificate for `localhost` from an
    /// authority whose certificate is written to the returned folder as `ca.pem`. Each
    /// connection gets the TLS handshake, then the server writes `hello`.
    async fn tls_server() -> (std::net::SocketAddr, tempfile::TempDir) {
        let mut authority = rcgen::CertificateParams::new(Vec::new()).unwrap();
        authority.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let issuer =
            rcgen::CertifiedIssuer::self_signed(authority, rcgen::KeyPair::generate().unwrap())
                .unwrap();
        let folder = tempfile::tempdir().unwrap();
        std::fs::write(folder.path().join("ca.pem"), issuer.pem()).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
        )
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(stream).await {
                        use tokio::io::AsyncWriteExt;
                        let _ = tls.write_all(b"hello").await;
                        let _ = tls.shutdown().await;
                    }
                });
            }
        });
        (address, folder)
    }

    /// What the server says after the handshake under `url`'s settings, or the error.
    async fn greeting(address: std::net::SocketAddr, url: &str) -> Result<String, String> {
        use tokio::io::AsyncReadExt;
        let tls = read(url)?;
        let stream = TcpStream::connect(address).await.unwrap();
        let mut secured = tls.secure(stream).await?;
        assert!(secured.is_tls());
        let mut said = String::new();
        secured
            .read_to_string(&mut said)
            .await
            .map_err(|error| error.to_string())?;
        Ok(said)
    }

    #[tokio::test]
    async fn each_mode_checks_the_certificate_as_far_as_it_says() {
        let (address, folder) = tls_server().await;
        let port = address.port();
        let ca = folder.path().join("ca.pem");
        let ca = ca.display();
        for (host, query) in [
            ("127.0.0.1", "sslmode=require".to_owned()),
            ("127.0.0.1", "ssl-mode=PREFERRED".to_owned()),
            ("127.0.0.1", format!("sslmode=verify-ca&sslrootcert={ca}")),
            ("localhost", format!("ssl-mode=VERIFY_IDENTITY&ssl-ca={ca}")),
        ] {
            let url = format!("postgres://u@{host}:{port}/d?{query}");
            assert_eq!(
                greeting(address, &url).await.as_deref(),
                Ok("hello"),
                "{url}"
            );
        }
        for (host, query, why) in [
            // The chain is good, the name is not the URL's host.
            (
                "127.0.0.1",
                format!("sslmode=verify-full&sslrootcert={ca}"),
                "not valid for name",
            ),
            // A name it carries, from an authority the Mozilla roots do not hold.
            (
                "localhost",
                "sslmode=verify-full".to_owned(),
                "UnknownIssuer",
            ),
            ("localhost", "sslmode=verify-ca".to_owned(), "UnknownIssuer"),
        ] {
            let url = format!("postgres://u@{host}:{port}/d?{query}");
            let error = greeting(address, &url).await.unwrap_err();
            assert!(error.contains(why), "{url}: {error}");
        }
    }

    #[test]
    fn a_roots_file_that_holds_no_certificate_is_named_in_the_error() {
        let folder = tempfile::tempdir().unwrap();
        let empty = folder.path().join("empty.pem");
        std::fs::write(&empty, "nothing here\n").unwrap();
        let url = format!(
            "postgres://u@h/d?sslmode=verify-full&sslrootcert={}",
            empty.display()
        );
        let error = read(&url).unwrap().client_config().err().unwrap();
        assert!(error.contains("empty.pem"), "{error}");
    }
}
