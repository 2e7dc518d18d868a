//! What every list shares: the page size a query may ask for, keyset cursors
//! (`<microseconds>_<id>` of the last row of a page; clients treat them as opaque), and how a
//! page knows another one follows.

use crate::error::ApiError;

/// The `limit` a query asked for, or `default`; a 400 naming `limit` outside `1..=max`.
pub fn limit(asked: Option<u32>, default: u32, max: u32) -> Result<u32, ApiError> {
    let limit = asked.unwrap_or(default);
    if !(1..=max).contains(&limit) {
        return Err(ApiError::bad_request(
            "limit",
            format!("limit must be between 1 and {max}"),
        ));
    }
    Ok(limit)
}

/// The cursor of the row at (`at_us`, `id`).
pub fn cursor(at_us: i64, id: &str) -> String {
    format!("{at_us}_{id}")
}

/// A cursor handed out by [`cursor`], for ids that are UUIDs.
pub fn parse_cursor(cursor: &str) -> Result<(i64, String), ApiError> {
    let invalid = || {
        ApiError::bad_request(
            "cursor",
            "cursor must be a next_cursor value from a previous page",
        )
    };
    let (at_us, id) = cursor.split_once('_').ok_or_else(invalid)?;
    let at_us = at_us.parse().map_err(|_| invalid())?;
    if id.is_empty() || id.len() > 36 || !id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        return Err(invalid());
    }
    Ok((at_us, id.to_owned()))
}

/// Cuts `rows`, read with a limit of `limit + 1`, to `limit`; the cursor of the page's last row
/// when the extra one showed that another page follows.
pub fn finish_page<T>(
    rows: &mut Vec<T>,
    limit: u32,
    cursor_of: impl Fn(&T) -> String,
) -> Option<String> {
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    more.then(|| rows.last().map(cursor_of)).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let cursor = cursor(1_795_828_539_123_456, "0192f1a2-7c3e");
        assert_eq!(
            parse_cursor(&cursor).unwrap(),
            (1_795_828_539_123_456, "0192f1a2-7c3e".into())
        );
        for bad in ["", "abc", "12_", "x_0192", "12_zz", "12_0192'--"] {
            assert!(parse_cursor(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_page_has_a_cursor_only_when_more_follow() {
        let mut rows = vec![1, 2, 3];
        assert_eq!(
            finish_page(&mut rows, 2, |n| n.to_string()),
            Some("2".into())
        );
        assert_eq!(rows, [1, 2]);
        let mut rows = vec![1, 2];
        assert_eq!(finish_page(&mut rows, 2, |n| n.to_string()), None);
        assert_eq!(rows, [1, 2]);
    }

    #[test]
    fn limits_outside_the_range_name_the_field() {
        assert_eq!(limit(None, 50, 200).unwrap(), 50);
        assert_eq!(limit(Some(200), 50, 200).unwrap(), 200);
        for bad in [0, 201] {
            let error = limit(Some(bad), 50, 200).unwrap_err();
            assert_eq!(error.message(), "limit must be between 1 and 200");
        }
    }
}
