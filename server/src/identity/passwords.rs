//! Password hashing with Argon2id (the crate's defaults: 19 MiB, two passes), salted per user.

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier, password_hash::SaltString};

/// A PHC string (`$argon2id$v=19$…`) for storage.
pub fn hash(password: &str) -> String {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).expect("the operating system provides randomness");
    let salt = SaltString::encode_b64(&salt).expect("16 bytes is a valid salt length");
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("Argon2 with default parameters accepts any password")
        .to_string()
}

/// Whether `password` matches `stored`. Without a stored hash (unknown user, or a user without a
/// password) it still spends the same work on a dummy hash, so a response's timing does not tell
/// whether the username exists.
pub fn verify(password: &str, stored: Option<&str>) -> bool {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash("not a real password; only spends time"));
    let (hash, real) = match stored {
        Some(stored) => (stored, true),
        None => (dummy.as_str(), false),
    };
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    // argon2 compares the digests in constant time.
    let matches = Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    matches && real
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_right_password_only() {
        let stored = hash("correct horse battery staple");
        assert!(stored.starts_with("$argon2id$"));
        assert!(verify("correct horse battery staple", Some(&stored)));
        assert!(!verify("correct horse battery stapler", Some(&stored)));
    }

    #[test]
    fn salts_each_hash() {
        assert_ne!(hash("same password"), hash("same password"));
    }

    #[test]
    fn never_accepts_without_a_stored_hash() {
        assert!(!verify("not a real password; only spends time", None));
        assert!(!verify("anything", Some("garbage")));
    }
}
