//! Checks on names and passwords people type. Each failure names the field and says what would
//! be accepted.

use crate::error::ApiError;

pub const MIN_PASSWORD_CHARS: usize = 10;
const MAX_PASSWORD_BYTES: usize = 1024;
/// The least zxcvbn score a password needs. Loupe guards access to production, so it asks for
/// zxcvbn's top score, 4: at least 10^10 guesses ("strong protection from an offline slow-hash
/// attack"). Score 3 (10^8) still lets "alice-password" through for user alice.
const MIN_PASSWORD_SCORE: zxcvbn::Score = zxcvbn::Score::Four;
/// zxcvbn's time grows with length, so only this many characters are scored.
const SCORED_PASSWORD_CHARS: usize = 100;

/// Usernames and group names: lower-cased, 1 to 64 of `a-z 0-9 . _ -`, starting with a letter or
/// digit. Returns the normalised form.
pub fn handle(field: &str, value: &str) -> Result<String, ApiError> {
    let normalised = value.trim().to_ascii_lowercase();
    let valid = (1..=64).contains(&normalised.len())
        && normalised
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && normalised
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if valid {
        Ok(normalised)
    } else {
        Err(ApiError::bad_request(
            field,
            format!(
                "{field} must be 1 to 64 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit"
            ),
        ))
    }
}

/// Display names, descriptions and token names: trimmed, no control characters, bounded length.
pub fn text(field: &str, value: &str, min: usize, max: usize) -> Result<String, ApiError> {
    let trimmed = value.trim();
    let length = trimmed.chars().count();
    if length < min || length > max {
        return Err(ApiError::bad_request(
            field,
            format!("{field} must be {min} to {max} characters long"),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            field,
            format!("{field} must not contain control characters"),
        ));
    }
    Ok(trimmed.to_owned())
}

/// A new password: 10 characters at least, at most 1 KiB, and not guessable by zxcvbn's estimate
/// (dictionary words, names, keyboard walks, dates, repeats, and `personal` — the username — are
/// what it looks for). The error says what zxcvbn suggests.
pub fn password(field: &str, value: &str, personal: &[&str]) -> Result<(), ApiError> {
    if value.chars().count() < MIN_PASSWORD_CHARS {
        return Err(ApiError::bad_request(
            field,
            format!("{field} must be at least {MIN_PASSWORD_CHARS} characters long"),
        ));
    }
    if value.len() > MAX_PASSWORD_BYTES {
        return Err(ApiError::bad_request(
            field,
            format!("{field} must be at most {MAX_PASSWORD_BYTES} bytes"),
        ));
    }
    let scored: String = value.chars().take(SCORED_PASSWORD_CHARS).collect();
    let estimate = zxcvbn::zxcvbn(&scored, personal);
    if estimate.score() < MIN_PASSWORD_SCORE {
        let advice = estimate
            .feedback()
            .map(|feedback| {
                feedback
                    .warning()
                    .map(|warning| warning.to_string())
                    .into_iter()
                    .chain(feedback.suggestions().iter().map(ToString::to_string))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .filter(|advice| !advice.is_empty())
            .unwrap_or_else(|| "Add another word or two; uncommon words are better.".into());
        return Err(ApiError::bad_request(
            field,
            format!("{field} is too easy to guess: {advice}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_handles_to_lower_case() {
        assert_eq!(handle("username", "  Alice.B ").unwrap(), "alice.b");
    }

    #[test]
    fn rejects_bad_handles_naming_the_field() {
        for bad in ["", "-alice", "al ice", "ålice", &"a".repeat(65), "a/b"] {
            let error = handle("username", bad).unwrap_err();
            assert!(error.to_string().contains("username"), "{bad:?}: {error}");
        }
    }

    #[test]
    fn bounds_text_and_refuses_control_characters() {
        assert_eq!(text("display_name", " Alice ", 1, 10).unwrap(), "Alice");
        assert!(text("display_name", "", 1, 10).is_err());
        assert!(text("display_name", "Al\u{0}ice", 1, 10).is_err());
        assert!(text("display_name", &"x".repeat(11), 1, 10).is_err());
    }

    #[test]
    fn requires_passwords_of_reasonable_length() {
        assert!(password("password", "short", &[]).is_err());
        assert!(password("password", "plover-anvil-quince", &[]).is_ok());
        assert!(password("password", &"x".repeat(2000), &[]).is_err());
    }

    #[test]
    fn refuses_guessable_passwords_of_any_length() {
        for weak in [
            "password1234",
            "qwertyuiop",
            "aaaaaaaaaaaaaaaa",
            "1234567890",
            "alice-password",
            "alice2024alice",
        ] {
            let error = password("password", weak, &["alice"]).unwrap_err();
            assert!(
                error.message().contains("too easy to guess"),
                "{weak}: {error}"
            );
        }
        assert!(password("password", &format!("{}!", "x".repeat(200)), &[]).is_err());
    }
}
