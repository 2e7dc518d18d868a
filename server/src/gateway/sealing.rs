//! Encryption at rest for connection secrets (target URLs carry passwords), with
//! XChaCha20-Poly1305. The key comes from `LOUPE_SECRET_KEY` (64 hex digits) or, without it, from
//! `<data dir>/secret.key`, generated on first use and readable by its owner only. Each
//! ciphertext is bound to its connection's id, so it cannot be moved to another connection.

use std::{io::Write, path::Path};

use anyhow::{Context, Result, bail};
use chacha20poly1305::{
    KeyInit, XChaCha20Poly1305, XNonce,
    aead::{Aead, Payload},
};

const NONCE_BYTES: usize = 24;

#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
}

impl SecretBox {
    /// The key from `configured` (hex) or the key file in `data_dir`, creating it if need be.
    pub fn load(configured: Option<&str>, data_dir: &Path) -> Result<SecretBox> {
        let key = match configured {
            Some(hex) => {
                parse_key(hex).context("LOUPE_SECRET_KEY must be 64 hex digits (32 bytes)")?
            }
            None => key_file(&data_dir.join("secret.key"))?,
        };
        Ok(SecretBox {
            cipher: XChaCha20Poly1305::new(&key.into()),
        })
    }

    pub fn seal(&self, owner: &str, plaintext: &str) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).expect("the operating system provides randomness");
        let sealed = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: owner.as_bytes(),
                },
            )
            .expect("encryption with a valid key cannot fail");
        [nonce.as_slice(), &sealed].concat()
    }

    pub fn open(&self, owner: &str, sealed: &[u8]) -> Result<String> {
        if sealed.len() < NONCE_BYTES {
            bail!("the stored secret is damaged");
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_BYTES);
        let plaintext = self
            .cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad: owner.as_bytes() })
            .map_err(|_| anyhow::anyhow!("the stored secret cannot be decrypted: was LOUPE_SECRET_KEY or secret.key changed?"))?;
        Ok(String::from_utf8(plaintext)?)
    }
}

fn parse_key(hex: &str) -> Result<[u8; 32]> {
    let hex = hex.trim();
    if hex.len() != 64 {
        bail!("expected 64 hex digits, got {}", hex.len());
    }
    let mut key = [0u8; 32];
    for (index, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[index * 2..index * 2 + 2], 16)?;
    }
    Ok(key)
}

fn key_file(path: &Path) -> Result<[u8; 32]> {
    match std::fs::read_to_string(path) {
        Ok(hex) => parse_key(&hex).with_context(|| format!("{} is damaged", path.display())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; 32];
            getrandom::fill(&mut key).expect("the operating system provides randomness");
            let hex: String = key.iter().map(|byte| format!("{byte:02x}")).collect();
            if let Some(folder) = path.parent() {
                std::fs::create_dir_all(folder)?;
            }
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            match options.open(path) {
                Ok(mut file) => {
                    file.write_all(hex.as_bytes())?;
                    file.sync_all()?;
                    tracing::info!(path = %path.display(), "generated the key that encrypts connection secrets; back it up with the database");
                    Ok(key)
                }
                // Another process made it first: use theirs.
                Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => key_file(path),
                Err(error) => {
                    Err(error).with_context(|| format!("cannot create {}", path.display()))
                }
            }
        }
        Err(error) => Err(error).with_context(|| format!("cannot read {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_binds_to_the_owner() {
        let folder = tempfile::tempdir().unwrap();
        let secrets = SecretBox::load(None, folder.path()).unwrap();
        let sealed = secrets.seal("conn-1", "postgres://app:hunter2@db/app");
        assert!(!String::from_utf8_lossy(&sealed).contains("hunter2"));
        assert_eq!(
            secrets.open("conn-1", &sealed).unwrap(),
            "postgres://app:hunter2@db/app"
        );
        assert!(
            secrets.open("conn-2", &sealed).is_err(),
            "moved to another connection"
        );
    }

    #[test]
    fn keeps_the_generated_key_across_restarts() {
        let folder = tempfile::tempdir().unwrap();
        let sealed = SecretBox::load(None, folder.path())
            .unwrap()
            .seal("c", "secret");
        let again = SecretBox::load(None, folder.path()).unwrap();
        assert_eq!(again.open("c", &sealed).unwrap(), "secret");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(folder.path().join("secret.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn refuses_a_malformed_configured_key() {
        let folder = tempfile::tempdir().unwrap();
        assert!(SecretBox::load(Some("abc"), folder.path()).is_err());
        assert!(SecretBox::load(Some(&"ab".repeat(32)), folder.path()).is_ok());
    }
}
