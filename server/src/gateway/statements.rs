//! Splitting a script into its SQL statements, so each is recorded as its own event, following
//! each target's own lexical rules for what a semicolon inside something else is:
//!
//! - PostgreSQL ("Lexical Structure", PostgreSQL 15 manual §4.1): `'…'` strings with `''` for a
//!   quote and backslashes as plain characters (standard_conforming_strings, on since 9.1);
//!   `E'…'` strings, where a backslash escapes; `"…"` identifiers; `--` comments; `/* … */`
//!   comments that nest; `$tag$ … $tag$` dollar quoting (a tag is an identifier that does not
//!   start with a digit, so `$1` is a parameter).
//! - MySQL and MariaDB ("Comments", "String Literals"): `'…'` and `"…"` strings where a
//!   backslash escapes and a doubled quote is a quote; `` `…` `` identifiers; `#` comments and
//!   `-- ` comments (the dashes must be followed by a space or control character); `/* … */`
//!   comments that do not nest.
//! - SQLite ("SQL Language Expressions", "Comments"): `'…'` strings with `''`, no backslash
//!   escapes; `"…"`, `` `…` `` and `[…]` identifiers; `--` comments; `/* … */` that do not nest.
//!
//! A body of several statements ends only at its `END`: SQLite's `CREATE TRIGGER … BEGIN …;
//! END` (the rule of SQLite's own `sqlite3_complete()`: inside a trigger, a semicolon ends the
//! statement only right after `END`) and PostgreSQL's `BEGIN ATOMIC … END` function bodies.

/// Whose rules to split by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    Mysql,
    Sqlite,
}

/// The statements of `script`, trimmed, without empty ones (or ones that are only comments).
pub fn split(script: &str, dialect: Dialect) -> Vec<&str> {
    let bytes = script.as_bytes();
    let mut statements = Vec::new();
    let (mut start, mut at) = (0, 0);
    while at < bytes.len() {
        at = match (dialect, bytes[at]) {
            (_, b';') if !inside_body(&script[start..at], dialect) => {
                push(&mut statements, &script[start..at], dialect);
                start = at + 1;
                at + 1
            }
            (Dialect::Postgres, b'e' | b'E')
                if bytes.get(at + 1) == Some(&b'\'')
                    && !is_word_byte(bytes, at.wrapping_sub(1)) =>
            {
                skip_quoted(bytes, at + 1, b'\'', true)
            }
            (Dialect::Postgres, b'\'') | (Dialect::Sqlite, b'\'') => {
                skip_quoted(bytes, at, b'\'', false)
            }
            (Dialect::Mysql, quote @ (b'\'' | b'"')) => skip_quoted(bytes, at, quote, true),
            (_, quote @ (b'"' | b'`')) => skip_quoted(bytes, at, quote, false),
            (Dialect::Sqlite, b'[') => find(bytes, at + 1, b"]").map_or(bytes.len(), |end| end + 1),
            (Dialect::Mysql, b'#') => line_end(bytes, at),
            (Dialect::Mysql, b'-')
                if bytes.get(at + 1) == Some(&b'-')
                    && bytes.get(at + 2).is_none_or(|next| *next <= b' ') =>
            {
                line_end(bytes, at)
            }
            (Dialect::Postgres | Dialect::Sqlite, b'-') if bytes.get(at + 1) == Some(&b'-') => {
                line_end(bytes, at)
            }
            (_, b'/') if bytes.get(at + 1) == Some(&b'*') => {
                skip_block_comment(bytes, at, dialect == Dialect::Postgres)
            }
            (Dialect::Postgres, b'$') if !is_word_byte(bytes, at.wrapping_sub(1)) => {
                skip_dollar_quoted(bytes, at)
            }
            _ => at + 1,
        };
    }
    push(&mut statements, &script[start..], dialect);
    statements
}

/// Whether `so_far` (a statement up to a semicolon) is inside a body that ends at `END`.
fn inside_body(so_far: &str, dialect: Dialect) -> bool {
    let words: Vec<String> = so_far
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| !word.is_empty())
        .take(4)
        .map(str::to_ascii_uppercase)
        .collect();
    let opens_body = match dialect {
        Dialect::Sqlite => {
            words.first().is_some_and(|word| word == "CREATE")
                && words[1..].iter().take(2).any(|word| word == "TRIGGER")
        }
        Dialect::Postgres => so_far.to_ascii_uppercase().contains("BEGIN ATOMIC"),
        Dialect::Mysql => false,
    };
    let last_word = so_far
        .trim_end()
        .rsplit(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .next()
        .unwrap_or("");
    opens_body && !last_word.eq_ignore_ascii_case("END")
}

fn push<'a>(statements: &mut Vec<&'a str>, statement: &'a str, dialect: Dialect) {
    let trimmed = statement.trim();
    if !trimmed.is_empty() && !is_only_comments(trimmed, dialect) {
        statements.push(trimmed);
    }
}

/// Whether `text` (trimmed, with no statement separator) holds nothing but comments.
fn is_only_comments(text: &str, dialect: Dialect) -> bool {
    let bytes = text.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at].is_ascii_whitespace() {
            at += 1;
        } else if bytes[at..].starts_with(b"--") || (dialect == Dialect::Mysql && bytes[at] == b'#')
        {
            at = line_end(bytes, at);
        } else if bytes[at..].starts_with(b"/*") {
            at = skip_block_comment(bytes, at, dialect == Dialect::Postgres);
        } else {
            return false;
        }
    }
    true
}

fn is_word_byte(bytes: &[u8], at: usize) -> bool {
    bytes
        .get(at)
        .is_some_and(|byte| byte.is_ascii_alphanumeric() || *byte == b'_' || *byte >= 0x80)
}

/// Just past the end of the line holding `at`.
fn line_end(bytes: &[u8], at: usize) -> usize {
    bytes[at..]
        .iter()
        .position(|&byte| byte == b'\n')
        .map_or(bytes.len(), |end| at + end + 1)
}

/// Past a quoted run opening at `at`: a doubled quote is a quote, and with `backslash` a
/// backslash escapes the next byte.
fn skip_quoted(bytes: &[u8], at: usize, quote: u8, backslash: bool) -> usize {
    let mut index = at + 1;
    while index < bytes.len() {
        if backslash && bytes[index] == b'\\' {
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

/// Past a `/* … */` comment opening at `at`; PostgreSQL's nest.
fn skip_block_comment(bytes: &[u8], at: usize, nested: bool) -> usize {
    let (mut depth, mut index) = (1, at + 2);
    while index < bytes.len() {
        if nested && bytes[index..].starts_with(b"/*") {
            depth += 1;
            index += 2;
        } else if bytes[index..].starts_with(b"*/") {
            depth -= 1;
            index += 2;
            if depth == 0 {
                return index;
            }
        } else {
            index += 1;
        }
    }
    bytes.len()
}

/// Past `$tag$ … $tag$` if `at` opens one; otherwise just past the `$` (a parameter like `$1`).
fn skip_dollar_quoted(bytes: &[u8], at: usize) -> usize {
    let tag_end = bytes[at + 1..]
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80))
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
    use super::{Dialect::*, split};

    #[test]
    fn splits_on_semicolons_outside_quotes_and_comments() {
        let script =
            "SELECT 'a;b', \"c;d\" FROM t; -- not; here\nSELECT `e;f` /* ; */ ;\n\n  SELECT 3";
        assert_eq!(
            split(script, Sqlite),
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
            split(script, Postgres),
            [
                "CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql",
                "SELECT $1::int"
            ]
        );
        assert_eq!(
            split("SELECT $$a;b$$; SELECT $x$c$$;d$x$", Postgres),
            ["SELECT $$a;b$$", "SELECT $x$c$$;d$x$"]
        );
    }

    #[test]
    fn handles_escaped_quotes_and_empty_input() {
        assert_eq!(
            split("SELECT 'it''s; fine'; ", Postgres),
            ["SELECT 'it''s; fine'"]
        );
        assert!(split("  ;; -- only a comment\n", Postgres).is_empty());
        assert!(split(" /* a */ ; # b\n", Mysql).is_empty());
    }

    #[test]
    fn a_backslash_ends_nothing_in_standard_postgres_strings() {
        assert_eq!(
            split(r"SELECT 'C:\' AS path; SELECT 2 AS y", Postgres),
            [r"SELECT 'C:\' AS path", "SELECT 2 AS y"]
        );
        assert_eq!(
            split(r"SELECT E'it\'s; escaped'; SELECT 2", Postgres),
            [r"SELECT E'it\'s; escaped'", "SELECT 2"]
        );
        assert_eq!(
            split(r"SELECT 'C:\' AS path; SELECT 2", Sqlite),
            [r"SELECT 'C:\' AS path", "SELECT 2"]
        );
    }

    #[test]
    fn postgres_block_comments_nest() {
        assert_eq!(
            split(
                "/* outer /* inner */ still; comment */ SELECT 1 AS x; SELECT 2 AS y",
                Postgres
            ),
            [
                "/* outer /* inner */ still; comment */ SELECT 1 AS x",
                "SELECT 2 AS y"
            ]
        );
    }

    #[test]
    fn mysql_escapes_and_hash_comments() {
        assert_eq!(
            split(r#"SELECT 'it\'s; fine', "a\";b"; SELECT 2"#, Mysql),
            [r#"SELECT 'it\'s; fine', "a\";b""#, "SELECT 2"]
        );
        assert_eq!(
            split("SELECT 1 # not; here\n; SELECT 2", Mysql),
            ["SELECT 1 # not; here", "SELECT 2"]
        );
        // `--` without a space after it is an operator pair, not a comment, in MySQL.
        assert_eq!(
            split("SELECT 1--1; SELECT 2", Mysql),
            ["SELECT 1--1", "SELECT 2"]
        );
    }

    #[test]
    fn trigger_and_atomic_bodies_end_at_their_end() {
        let trigger =
            "CREATE TRIGGER t AFTER INSERT ON a BEGIN INSERT INTO b VALUES (1); DELETE FROM c; END";
        assert_eq!(
            split(&format!("{trigger}; SELECT 2"), Sqlite),
            [trigger, "SELECT 2"]
        );
        let function =
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END";
        assert_eq!(
            split(&format!("{function}; SELECT 3"), Postgres),
            [function, "SELECT 3"]
        );
    }

    #[test]
    fn sqlite_bracketed_identifiers() {
        assert_eq!(
            split("SELECT [a;b] FROM t; SELECT 2", Sqlite),
            ["SELECT [a;b] FROM t", "SELECT 2"]
        );
    }
}
