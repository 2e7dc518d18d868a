//! Certificates for the test's own database servers: an authority of the test's own and a
//! server certificate it signed for `localhost` only (rcgen, the crate Loupe generates its
//! listeners' certificate with).

use std::{path::Path, process::Command};

/// Writes the authority's certificate to `ca` (PEM), and `server.crt` and `server.key` into
/// `folder`, owned by the account `owner` the server runs as, the key readable by it alone
/// (PostgreSQL refuses a key others can read).
pub fn certify(ca: &Path, folder: &Path, owner: &str) {
    let mut authority = rcgen::CertificateParams::new(Vec::new()).unwrap();
    authority.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    authority
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Loupe test authority");
    let authority_key = rcgen::KeyPair::generate().unwrap();
    let issuer = rcgen::CertifiedIssuer::self_signed(authority, authority_key).unwrap();
    std::fs::write(ca, issuer.pem()).unwrap();
    let server = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    let server_key = rcgen::KeyPair::generate().unwrap();
    let certificate = server.signed_by(&server_key, &issuer).unwrap();
    for (name, contents) in [
        ("server.crt", certificate.pem()),
        ("server.key", server_key.serialize_pem()),
    ] {
        let path = folder.join(name);
        std::fs::write(&path, contents).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        give_to(owner, &path);
    }
}

/// Makes `owner` (an OS account, with its group) own `path`, for a server that runs as it.
pub fn give_to(owner: &str, path: &std::path::Path) {
    let status = Command::new("chown")
        .arg(format!("{owner}:"))
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success(), "chown {owner} {}", path.display());
}
