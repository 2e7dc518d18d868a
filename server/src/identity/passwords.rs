//! Password hashing with Argon2id (the crate's defaults: 19 MiB, two passes), salted per user.
//!
//! Hashing takes tens of milliseconds of CPU on purpose. Async code calls [`hash_off_executor`]
//! and [`verify_off_executor`], which run it on tokio's blocking threads, at most as many at
//! once as there are cores: a burst of logins then queues for the CPU instead of stalling every
//! other request (`/healthz` included), and each costs 19 MiB only while it runs.

use std::sync::OnceLock;

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier, password_hash::SaltString};
use tokio::sync::Semaphore;

use crate::error::ApiError;

/// Limits hashes computed at once to the number of cores.
fn hashing_slots() -> &'static Semaphore {
    static SLOTS: OnceLock<Semaphore> = OnceLock::new();
    SLOTS.get_or_init(|| {
        Semaphore::new(std::thread::available_parallelism().map_or(2, std::num::NonZero::get))
    })
}

/// Runs `work` on a blocking thread once a hashing slot is free; none when the runtime is
/// shutting down and the work could not run.
async fn off_executor<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let _slot = hashing_slots().acquire().await.ok()?;
    tokio::task::spawn_blocking(work).await.ok()
}

/// [`hash_blocking`], without holding up the async executor.
pub async fn hash_off_executor(password: &str) -> Result<String, ApiError> {
    let password = password.to_owned();
    off_executor(move || hash_blocking(&password))
        .await
        .ok_or_else(|| {
            ApiError::unavailable(
                "the server is stopping; try again",
                anyhow::anyhow!("password hashing did not run"),
            )
        })
}

/// [`verify_blocking`], without holding up the async executor; false when it could not run.
pub async fn verify_off_executor(password: &str, stored: Option<&str>) -> bool {
    let (password, stored) = (password.to_owned(), stored.map(str::to_owned));
    off_executor(move || verify_blocking(&password, stored.as_deref()))
        .await
        .unwrap_or(false)
}

/// A PHC string (`$argon2id$v=19$…`) for storage.
pub fn hash_blocking(password: &str) -> String {
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
pub fn verify_blocking(password: &str, stored: Option<&str>) -> bool {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash_blocking("not a real password; only spends time"));
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
        let stored = hash_blocking("correct horse battery staple");
        assert!(stored.starts_with("$argon2id$"));
        assert!(verify_blocking(
            "correct horse battery staple",
            Some(&stored)
        ));
        assert!(!verify_blocking(
            "correct horse battery stapler",
            Some(&stored)
        ));
    }

    #[test]
    fn salts_each_hash() {
        assert_ne!(
            hash_blocking("same password"),
            hash_blocking("same password")
        );
    }

    #[test]
    fn never_accepts_without_a_stored_hash() {
        assert!(!verify_blocking(
            "not a real password; only spends time",
            None
        ));
        assert!(!verify_blocking("anything", Some("garbage")));
    }
}
