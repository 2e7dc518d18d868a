//! What holding statements for review takes in the PostgreSQL protocol: the text of each
//! `Execute` (from the `Parse` and `Bind` before it), and answering a rejected statement in the
//! right place among the target's answers.
//!
//! A rejected statement is not simply answered by Loupe: the target may still owe the client
//! answers to earlier messages (a pipelined `Parse`, `Bind`), and after an error in an extended
//! query the target must skip everything up to the next `Sync`. So the target gets a stand-in
//! that it answers in order and harmlessly (an empty query for a simple `Query`; an `Execute` of
//! a portal that does not exist, which also makes it skip to `Sync`), and the client sees the
//! rejection in place of the stand-in's answer.

use std::collections::{HashMap, VecDeque};

use super::{cstring, error_response, frame};

/// A portal no client names: executing it fails (SQLSTATE 34000) without side effects.
const STAND_IN_PORTAL: &[u8] = b"loupe.rejected\0";
/// SQLSTATE `insufficient_privilege`: what a rejected statement is answered with.
pub const REJECTED: &str = "42501";

/// The statements and portals a client prepared, by name as sent (bytes, so two names cannot
/// meet in one text), the unnamed ones under the empty name.
#[derive(Default)]
pub struct Prepared {
    statements: HashMap<Vec<u8>, String>,
    portals: HashMap<Vec<u8>, String>,
}

impl Prepared {
    /// Follows a client message: `Parse` names a statement's text, `Bind` a portal's text and
    /// parameters (`parameters`, as recorded), `Close` forgets one.
    pub fn follow(&mut self, tag: u8, body: &[u8], parameters: Option<&[String]>) {
        match tag {
            b'P' => {
                let Some((name, rest)) = name(body) else {
                    return;
                };
                let text = cstring(rest).unwrap_or_default();
                self.statements.insert(name.to_vec(), text);
            }
            b'B' => {
                let Some((portal, rest)) = name(body) else {
                    return;
                };
                let statement = name(rest).map_or(&[][..], |(statement, _)| statement);
                let text = match self.statements.get(statement) {
                    Some(text) => text.clone(),
                    None => format!(
                        "(a prepared statement Loupe did not see: {})",
                        String::from_utf8_lossy(statement)
                    ),
                };
                let text = match parameters.filter(|values| !values.is_empty()) {
                    Some(values) => format!("{text}\n-- parameters: {}", values.join(", ")),
                    None => text,
                };
                self.portals.insert(portal.to_vec(), text);
            }
            b'C' => {
                if let Some((&kind, rest)) = body.split_first()
                    && let Some((name, _)) = name(rest)
                {
                    match kind {
                        b'S' => self.statements.remove(name),
                        _ => self.portals.remove(name),
                    };
                }
            }
            _ => {}
        }
    }

    /// The text (with its parameters) an `Execute` runs. Never empty: a portal Loupe did not
    /// see bound is named as such, so it is still held (and a reviewer can refuse it).
    pub fn executed(&self, body: &[u8]) -> String {
        let portal = name(body).map_or(&[][..], |(portal, _)| portal);
        self.portals.get(portal).cloned().unwrap_or_else(|| {
            format!(
                "(a portal Loupe did not see bound: {})",
                String::from_utf8_lossy(portal)
            )
        })
    }
}

/// A NUL-terminated name at the start of `body`, and what follows it.
fn name(body: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = body.iter().position(|byte| *byte == 0)?;
    Some((&body[..end], &body[end + 1..]))
}

/// Rejected statements waiting for their stand-in's answer. Answers are matched by counting
/// `ReadyForQuery` messages: each `Query` and `Sync` sent to the target gets exactly one.
#[derive(Default)]
pub struct Rejections {
    /// `Query` and `Sync` messages sent to the target so far.
    sent: u64,
    /// `ReadyForQuery` messages the target sent so far.
    ready: u64,
    /// For each rejection: the count of `Query`/`Sync` sent before its stand-in, the message
    /// type that answers the stand-in, and the client's error.
    waiting: VecDeque<(u64, u8, Vec<u8>)>,
}

impl Rejections {
    /// Counts a client message on its way to the target.
    pub fn sent(&mut self, tag: u8) {
        if matches!(tag, b'Q' | b'S') {
            self.sent += 1;
        }
    }

    /// Rejects a `Query` or `Execute` (`tag`) for `why`: answers the stand-in to send the target
    /// instead (count it with [`Rejections::sent`]).
    pub fn reject(&mut self, tag: u8, why: &str) -> Vec<u8> {
        let error = error_response("ERROR", REJECTED, why);
        if tag == b'Q' {
            self.waiting.push_back((self.sent, b'I', error));
            frame(b'Q', b"\0")
        } else {
            self.waiting.push_back((self.sent, b'E', error));
            let mut body = STAND_IN_PORTAL.to_vec();
            body.extend_from_slice(&0i32.to_be_bytes());
            frame(b'E', &body)
        }
    }

    /// What the client gets for a target's message: the rejection in place of a stand-in's
    /// answer, else the message itself (None).
    pub fn answer(&mut self, message: &[u8]) -> Option<Vec<u8>> {
        if message[0] == b'Z' {
            self.ready += 1;
            // A stand-in whose ReadyForQuery has come was answered (or skipped, after an
            // earlier error): it replaces nothing later.
            while self
                .waiting
                .front()
                .is_some_and(|(sent, _, _)| *sent < self.ready)
            {
                self.waiting.pop_front();
            }
            return None;
        }
        if self
            .waiting
            .front()
            .is_some_and(|(_, answer, _)| *answer == message[0])
        {
            return self.waiting.pop_front().map(|(_, _, error)| error);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_execute_runs_its_portals_statement_with_its_parameters() {
        let mut prepared = Prepared::default();
        prepared.follow(b'P', b"s1\0DELETE FROM t WHERE id = $1\0\0\0", None);
        prepared.follow(b'B', b"p\0s1\0rest", Some(&["$1 = 7".to_owned()]));
        assert_eq!(
            prepared.executed(b"p\0\0\0\0\0"),
            "DELETE FROM t WHERE id = $1\n-- parameters: $1 = 7"
        );
        prepared.follow(b'C', b"Pp\0", None);
        assert_eq!(
            prepared.executed(b"p\0\0\0\0\0"),
            "(a portal Loupe did not see bound: p)"
        );
        // Names that differ only in bytes that are not UTF-8 stay apart.
        prepared.follow(b'P', b"x\xff\0DELETE FROM t\0\0\0", None);
        prepared.follow(b'P', b"x\xfe\0SELECT 1\0\0\0", None);
        prepared.follow(b'B', b"\0x\xff\0rest", None);
        assert_eq!(prepared.executed(b"\0\0\0\0\0"), "DELETE FROM t");
        // Malformed messages change nothing and do not panic.
        prepared.follow(b'P', b"no terminator", None);
        prepared.follow(b'B', b"", None);
        prepared.follow(b'C', b"", None);
    }

    #[test]
    fn a_rejection_replaces_its_stand_ins_answer_and_no_other() {
        let mut rejections = Rejections::default();
        // A simple query rejected: its empty-query answer becomes the error.
        let stand_in = rejections.reject(b'Q', "rejected by bob");
        assert_eq!(stand_in, frame(b'Q', b"\0"));
        rejections.sent(b'Q');
        let replaced = rejections.answer(&frame(b'I', b"")).unwrap();
        assert_eq!(replaced[0], b'E');
        assert!(replaced.windows(5).any(|window| window == b"42501"));
        assert_eq!(rejections.answer(&frame(b'Z', b"I")), None);

        // An Execute rejected while the target was already skipping to Sync: its stand-in is
        // never answered, and a later error passes through as it is.
        rejections.reject(b'E', "rejected");
        rejections.sent(b'S');
        assert_eq!(rejections.answer(&frame(b'Z', b"E")), None);
        assert_eq!(rejections.answer(&frame(b'E', b"real error")), None);
    }
}
