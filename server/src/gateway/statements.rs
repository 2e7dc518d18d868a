//! Splitting a script into its SQL statements, so each is recorded as its own event. Semicolons
//! inside quotes, identifiers, comments and PostgreSQL dollar-quoted bodies do not split.

/// The statements of `script`, trimmed, without empty ones.
pub fn split(script: &str) -> Vec<&str> {
    let bytes = script.as_bytes();
    let mut statements = Vec::new();
    let mut start = 0;
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            quote @ (b'\'' | b'"' | b'`') => at = skip_quoted(bytes, at, quote),
            b'-' if bytes.get(at + 1) == Some(&b'-') => {
                at = bytes[at..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(bytes.len(), |end| at + end + 1);
            }
            b'/' if bytes.get(at + 1) == Some(&b'*') => {
                at = find(bytes, at + 2, b"*/").map_or(bytes.len(), |end| end + 2);
            }
            b'$' => at = skip_dollar_quoted(bytes, at),
            b';' => {
                push(&mut statements, &script[start..at]);
                at += 1;
                start = at;
            }
            _ => at += 1,
        }
    }
    push(&mut statements, &script[start..]);
    statements
}

fn push<'a>(statements: &mut Vec<&'a str>, statement: &'a str) {
    let trimmed = statement.trim();
    if !trimmed.is_empty() && !is_only_comments(trimmed) {
        statements.push(trimmed);
    }
}

fn is_only_comments(text: &str) -> bool {
    text.lines().all(|line| {
        let line = line.trim();
        line.is_empty() || line.starts_with("--")
    })
}

/// Past a quoted run starting at `at`; a doubled quote is an escaped one.
fn skip_quoted(bytes: &[u8], at: usize, quote: u8) -> usize {
    let mut index = at + 1;
    while index < bytes.len() {
        if bytes[index] == b'\\' && quote == b'\'' {
            index += 2;
            continue;
        }
        if bytes[index] == quote {
            if bytes.get(index + 1) == Some(&quote) {
                index += 2;
                continue;
            }
            return index + 1;
        }
        index += 1;
    }
    bytes.len()
}

/// Past `$tag$ … $tag$` if `at` opens one; otherwise just past the `$` (a parameter like `$1`).
fn skip_dollar_quoted(bytes: &[u8], at: usize) -> usize {
    let tag_end = bytes[at + 1..]
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || b == b'_'))
        .map(|offset| at + 1 + offset);
    match tag_end {
        Some(end)
            if bytes[end] == b'$'
                && !bytes[at + 1..end].first().is_some_and(u8::is_ascii_digit) =>
        {
            let tag = &bytes[at..=end];
            find(bytes, end + 1, tag).map_or(bytes.len(), |close| close + tag.len())
        }
        _ => at + 1,
    }
}

fn find(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    bytes
        .get(from..)?
        .windows(needle.len())
        .position(|window| window == needle)
        .map(|offset| from + offset)
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn splits_on_semicolons_outside_quotes_and_comments() {
        let script =
            "SELECT 'a;b', \"c;d\" FROM t; -- not; here\nSELECT `e;f` /* ; */ ;\n\n  SELECT 3";
        assert_eq!(
            split(script),
            [
                "SELECT 'a;b', \"c;d\" FROM t",
                "-- not; here\nSELECT `e;f` /* ; */",
                "SELECT 3"
            ]
        );
    }

    #[test]
    fn keeps_dollar_quoted_bodies_whole() {
        let script = "CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql; SELECT $1::int";
        assert_eq!(
            split(script),
            [
                "CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql",
                "SELECT $1::int"
            ]
        );
    }

    #[test]
    fn handles_escaped_quotes_and_empty_input() {
        assert_eq!(split("SELECT 'it''s; fine'; "), ["SELECT 'it''s; fine'"]);
        assert!(split("  ;; -- only a comment\n").is_empty());
    }
}
