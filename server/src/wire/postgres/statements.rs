//! The statements and portals a client prepared (extended query protocol) and the target
//! accepted, so that each `Execute` is recorded, and held for review, as what it runs: the
//! statement's text and the parameters its portal was bound with.

use std::collections::HashMap;

use super::cstring;

/// Named statements and portals kept at most per connection (the target keeps them too; past
/// this an `Execute` is recorded with a placeholder naming it).
const MAX_NAMES: usize = 10_000;

/// The statements and portals a client prepared, by name as sent (bytes, so two names cannot
/// meet in one text), the unnamed ones under the empty name.
#[derive(Default)]
pub struct Prepared {
    statements: HashMap<Vec<u8>, String>,
    portals: HashMap<Vec<u8>, Portal>,
}

/// A bound portal: its statement's text and its parameters as recorded (`$1 = …`).
#[derive(Clone)]
pub struct Portal {
    pub text: String,
    pub parameters: Vec<String>,
    /// Whether Loupe knows the statement's text (else `text` says so): only a known one is
    /// shown to a reviewer.
    pub known: bool,
}

impl Portal {
    /// The text and parameters as one statement, for a reviewer.
    pub fn reviewed(&self) -> String {
        if self.parameters.is_empty() {
            self.text.clone()
        } else {
            format!(
                "{}\n-- parameters: {}",
                self.text,
                self.parameters.join(", ")
            )
        }
    }
}

impl Prepared {
    /// Follows a client message: `Parse` names a statement's text, `Bind` a portal's statement
    /// and `parameters` (as recorded), `Close` forgets one.
    pub fn follow(&mut self, tag: u8, body: &[u8], parameters: Option<Vec<String>>) {
        match tag {
            b'P' => {
                let Some((name, rest)) = name(body) else {
                    return;
                };
                let text = cstring(rest).unwrap_or_default();
                insert_bounded(&mut self.statements, name, text);
            }
            b'B' => {
                let Some((portal, rest)) = name(body) else {
                    return;
                };
                let statement = name(rest).map_or(&[][..], |(statement, _)| statement);
                let (text, known) = match self.statements.get(statement) {
                    Some(text) => (text.clone(), true),
                    None => (
                        format!(
                            "(a prepared statement Loupe did not keep: {})",
                            String::from_utf8_lossy(statement)
                        ),
                        false,
                    ),
                };
                let parameters = parameters.unwrap_or_default();
                insert_bounded(
                    &mut self.portals,
                    portal,
                    Portal {
                        text,
                        parameters,
                        known,
                    },
                );
            }
            b'C' => {
                if let Some((&kind, rest)) = body.split_first()
                    && let Some((name, _)) = name(rest)
                {
                    match kind {
                        b'S' => self.statements.remove(name).map(drop),
                        _ => self.portals.remove(name).map(drop),
                    };
                }
            }
            _ => {}
        }
    }

    /// Forgets every portal: the target drops them when a transaction ends.
    pub fn close_portals(&mut self) {
        self.portals.clear();
    }

    /// What an `Execute` (its body) runs; none for a portal Loupe does not know.
    pub fn executed(&self, body: &[u8]) -> Option<Portal> {
        let portal = name(body).map_or(&[][..], |(portal, _)| portal);
        self.portals.get(portal).cloned()
    }
}

/// Inserts unless the map is full of other names (the unnamed statement and portal, reused
/// all the time, always fit).
fn insert_bounded<T>(map: &mut HashMap<Vec<u8>, T>, name: &[u8], value: T) {
    if map.len() < MAX_NAMES || map.contains_key(name) || name.is_empty() {
        map.insert(name.to_vec(), value);
    }
}

/// A NUL-terminated name at the start of `body`, and what follows it.
pub fn name(body: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = body.iter().position(|byte| *byte == 0)?;
    Some((&body[..end], &body[end + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_execute_runs_its_portals_statement_with_its_parameters() {
        let mut prepared = Prepared::default();
        prepared.follow(b'P', b"s1\0DELETE FROM t WHERE id = $1\0\0\0", None);
        prepared.follow(b'B', b"p\0s1\0rest", Some(vec!["$1 = 7".to_owned()]));
        assert_eq!(
            prepared.executed(b"p\0\0\0\0\0").unwrap().reviewed(),
            "DELETE FROM t WHERE id = $1\n-- parameters: $1 = 7"
        );
        prepared.follow(b'C', b"Pp\0", None);
        assert!(prepared.executed(b"p\0\0\0\0\0").is_none());
        // Names that differ only in bytes that are not UTF-8 stay apart.
        prepared.follow(b'P', b"x\xff\0DELETE FROM t\0\0\0", None);
        prepared.follow(b'P', b"x\xfe\0SELECT 1\0\0\0", None);
        prepared.follow(b'B', b"\0x\xff\0rest", None);
        assert_eq!(
            prepared.executed(b"\0\0\0\0\0").unwrap().reviewed(),
            "DELETE FROM t"
        );
        // Malformed messages change nothing and do not panic.
        prepared.follow(b'P', b"no terminator", None);
        prepared.follow(b'B', b"", None);
        prepared.follow(b'C', b"", None);
        assert_eq!(prepared.executed(b"").unwrap().text, "DELETE FROM t");
    }
}
