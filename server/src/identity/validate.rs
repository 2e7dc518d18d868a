//! Checks on names and passwords people type. Each failure names the field and says what would
//! be accepted.

use crate::error::ApiError;

pub const MIN_PASSWORD_CHARS: usize = 10;
const MAX_PASSWORD_BYTES: usize = 1024;

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

pub fn password(field: &str, value: &str) -> Result<(), ApiError> {
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
        assert!(password("password", "short").is_err());
        assert!(password("password", "long enough!").is_ok());
        assert!(password("password", &"x".repeat(2000)).is_err());
    }
}
