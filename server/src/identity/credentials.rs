//! Bearer secrets (login cookies, API tokens): 256 random bits, of which only a SHA-256 digest
//! is stored. The secrets are random, so a fast hash is enough; a database leak yields nothing
//! that authenticates.

use std::fmt::Write;

use sha2::{Digest, Sha256};

/// API tokens start with this, so they are recognisable in a config file or a secret scanner.
pub const TOKEN_PREFIX: &str = "loupe_";

/// A new random secret: `prefix` followed by 64 hex digits.
pub fn generate(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system provides randomness");
    let mut secret = String::with_capacity(prefix.len() + 64);
    secret.push_str(prefix);
    secret.push_str(&hex(&bytes));
    secret
}

/// What is stored and looked up in place of the secret.
pub fn digest(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, byte| {
            let _ = write!(out, "{byte:02x}");
            out
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_distinct_prefixed_secrets() {
        let one = generate(TOKEN_PREFIX);
        assert!(one.starts_with("loupe_"));
        assert_eq!(one.len(), 6 + 64);
        assert_ne!(one, generate(TOKEN_PREFIX));
    }

    #[test]
    fn digests_are_stable_and_do_not_contain_the_secret() {
        let secret = generate("");
        assert_eq!(digest(&secret), digest(&secret));
        assert_ne!(digest(&secret), secret);
        assert_eq!(
            digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
