//! What each answer from the target belongs to, when a client pipelines (sends messages before
//! the answers to earlier ones have come): the statements and portals the target accepted
//! (`Parse`, `Bind` and `Close` count once it confirms them, so what a reviewer is shown is
//! what runs), the result formats of each `Execute`'s rows, and the rejected statements whose
//! stand-ins' answers the client sees as the rejection.
//!
//! Answers come in the order of the messages. Each simple `Query` and each `Sync` gets exactly
//! one `ReadyForQuery`, so counting both keeps everything aligned, even when the target skips
//! the rest of an extended query after an error (up to the next `Sync`).
//!
//! A rejected statement is not simply answered by Loupe: the target may still owe the client
//! answers to earlier messages. So the target gets a stand-in that it answers in order and
//! harmlessly (an empty query for a simple `Query`; a `Parse` of text that is not SQL, which
//! fails whatever the client named before and makes the target skip to `Sync` as a real
//! error would), and the client sees the rejection in place of the stand-in's answer.

use std::collections::{HashMap, VecDeque};

use super::{
    error_response, frame,
    statements::{Portal, Prepared},
};

/// A `Parse` that always fails without side effects: text that is not SQL (42601), under a
/// name that at worst exists already (42P05).
const STAND_IN_PARSE: &[u8] = b"loupe.rejected\0rejected by Loupe\0\0\0";
/// SQLSTATE `insufficient_privilege`: what a rejected statement is answered with.
pub const REJECTED: &str = "42501";

#[derive(Default)]
pub struct Pipeline {
    /// `Query` and `Sync` messages sent to the target so far: the batch a message belongs to.
    sent: u64,
    /// `ReadyForQuery` messages the target sent so far: the batch being answered.
    ready: u64,
    /// A batch the target failed in: it skips the rest of it, up to its `Sync`.
    failed: Option<u64>,
    /// What is waiting for its answer, oldest first, each with its batch.
    pending: VecDeque<(u64, Pending)>,
    /// `Parse`, `Bind` and `Close` messages the target has not confirmed yet, with their batch.
    unconfirmed: VecDeque<(u64, Unconfirmed)>,
    /// The statements and portals the target accepted.
    prepared: Prepared,
    /// The statements and portals as the client sent them, before the target answers: what
    /// the record names where nothing waits for a reviewer (and so for the target's answers).
    sent_view: Prepared,
    /// The result formats each portal was bound with, as the client sent them.
    formats: HashMap<Vec<u8>, Vec<i16>>,
    /// The target is taking COPY data from the client.
    copying: bool,
    /// Extended-query messages were sent since the last Sync.
    open_extended: bool,
    /// The last message answered by a ReadyForQuery of its own: `S`, `Q` or `F`.
    last_sync: u8,
    out_of_step: bool,
}

/// A message that takes effect once the target confirms it.
struct Unconfirmed {
    tag: u8,
    body: Vec<u8>,
    /// A `Bind`'s parameters, as recorded.
    parameters: Option<Vec<String>>,
}

enum Pending {
    /// A simple query: its rows are text (their description says), up to its ReadyForQuery.
    Query,
    /// An `Execute`: its rows come in the formats its portal was bound with; it ends at its
    /// CommandComplete, PortalSuspended, EmptyQueryResponse or ErrorResponse.
    Execute(Vec<i16>),
    /// A rejected statement's stand-in: its answer (of this type) becomes this error.
    Rejected { answer: u8, error: Vec<u8> },
}

impl Pipeline {
    /// A client message (type and body) on its way to the target; a `Bind` with its
    /// parameters as recorded and the result formats it asks for. An error for what Loupe
    /// cannot follow: another message inside a COPY, or a simple Query or FunctionCall inside
    /// an extended-query batch (the target may skip it, and answer nothing).
    pub fn sent(
        &mut self,
        tag: u8,
        body: &[u8],
        bound: Option<(Vec<String>, Vec<i16>)>,
    ) -> Result<(), &'static str> {
        if self.copying {
            return match tag {
                b'c' | b'f' => {
                    self.copying = false;
                    Ok(())
                }
                // Ignored by the target inside COPY IN.
                b'S' | b'H' => Ok(()),
                _ => Err("a message inside COPY"),
            };
        }
        match tag {
            b'Q' | b'F' if self.open_extended => {
                return Err("a simple Query or FunctionCall inside an extended-query batch");
            }
            // Both are answered up to a ReadyForQuery of their own.
            b'Q' | b'F' => {
                self.pending.push_back((self.sent, Pending::Query));
                self.sent += 1;
                self.last_sync = tag;
            }
            b'P' | b'B' | b'C' if self.failed != Some(self.sent) => {
                self.open_extended = true;
                let parameters = bound.map(|(parameters, formats)| {
                    if let Some((portal, _)) = super::statements::name(body) {
                        self.formats.insert(portal.to_vec(), formats);
                    }
                    parameters
                });
                self.sent_view.follow(tag, body, parameters.clone());
                self.unconfirmed.push_back((
                    self.sent,
                    Unconfirmed {
                        tag,
                        body: body.to_vec(),
                        parameters,
                    },
                ));
            }
            b'P' | b'B' | b'C' | b'D' => self.open_extended = true,
            b'E' => {
                self.open_extended = true;
                let portal = super::statements::name(body).map_or(&[][..], |(name, _)| name);
                let formats = self.formats.get(portal).cloned().unwrap_or_default();
                self.pending
                    .push_back((self.sent, Pending::Execute(formats)));
            }
            b'S' => {
                self.sent += 1;
                self.open_extended = false;
                self.last_sync = tag;
            }
            _ => {}
        }
        Ok(())
    }

    /// Whether the target has answered every Query and Sync sent (or is taking COPY data, which
    /// comes before its answer).
    pub fn caught_up(&self) -> bool {
        self.ready >= self.sent || self.copying
    }

    /// Whether a confirmation came for another message than the one waiting for it: Loupe can
    /// no longer tell what the target accepted.
    pub fn out_of_step(&self) -> bool {
        self.out_of_step
    }

    /// Whether every `Parse`, `Bind` and `Close` sent has been confirmed by the target, or
    /// dropped with its failed batch.
    pub fn settled(&self) -> bool {
        self.unconfirmed.is_empty()
    }

    /// Whether the target skips what the client sends now (an error earlier in this batch).
    pub fn skipping(&self) -> bool {
        self.failed == Some(self.sent)
    }

    /// What an `Execute` (its body) runs, by the statements and portals the target accepted
    /// (`confirmed`, once [`Pipeline::settled`]) or as the client sent them; none for a portal
    /// not known.
    pub fn executed(&self, body: &[u8], confirmed: bool) -> Option<Portal> {
        if confirmed {
            self.prepared.executed(body)
        } else {
            self.sent_view.executed(body)
        }
    }

    /// Rejects a `Query` or `Execute` (`tag`) for `why`: the stand-in to send the target
    /// instead (already counted).
    pub fn reject(&mut self, tag: u8, why: &str) -> Vec<u8> {
        let error = error_response("ERROR", REJECTED, why);
        if tag == b'Q' {
            self.pending.push_back((
                self.sent,
                Pending::Rejected {
                    answer: b'I',
                    error,
                },
            ));
            self.sent += 1;
            frame(b'Q', b"\0")
        } else {
            self.pending.push_back((
                self.sent,
                Pending::Rejected {
                    answer: b'E',
                    error,
                },
            ));
            frame(b'P', STAND_IN_PARSE)
        }
    }

    /// Follows a target's message: what the client gets instead of it (a rejection in place
    /// of a stand-in's answer), if anything.
    pub fn answer(&mut self, message: &[u8]) -> Option<Vec<u8>> {
        let tag = message[0];
        match tag {
            b'Z' => {
                self.ready += 1;
                // Idle: the transaction ended, and its portals with it.
                if message.get(5) == Some(&b'I') {
                    self.prepared.close_portals();
                }
                // What was sent before this ReadyForQuery's Query or Sync has been answered (or
                // skipped, after an error).
                let ready = self.ready;
                self.pending.retain(|(batch, _)| *batch >= ready);
                self.unconfirmed.retain(|(batch, _)| *batch >= ready);
                return None;
            }
            b'1' | b'2' | b'3' => {
                let expected = [b'P', b'B', b'C'][usize::from(tag - b'1')];
                match self.unconfirmed.pop_front() {
                    Some((_, confirmed)) if confirmed.tag == expected => {
                        self.prepared
                            .follow(confirmed.tag, &confirmed.body, confirmed.parameters);
                    }
                    _ => self.out_of_step = true,
                }
                return None;
            }
            b'G' => {
                // COPY IN: a Sync sent after the statement that began it is ignored by the
                // target, and gets no ReadyForQuery.
                self.copying = true;
                if self.last_sync == b'S' && self.sent > self.ready {
                    self.sent -= 1;
                }
                return None;
            }
            b'C' | b's' | b'I' | b'E' => {}
            _ => return None,
        }
        if tag == b'E' && !matches!(self.pending.front(), Some((_, Pending::Query))) {
            // An extended query failed: the target skips the rest of its batch.
            let batch = self.ready;
            self.failed = Some(batch);
            self.unconfirmed.retain(|(sent, _)| *sent != batch);
        }
        match self.pending.front() {
            Some((_, Pending::Rejected { answer, .. })) if *answer == tag => {
                match self.pending.pop_front() {
                    Some((_, Pending::Rejected { error, .. })) => Some(error),
                    _ => None,
                }
            }
            Some((_, Pending::Execute(_))) => {
                self.pending.pop_front();
                None
            }
            _ => None,
        }
    }

    /// The result formats the rows arriving now were asked in: the oldest pending `Execute`'s;
    /// none for a simple query's (text, as described).
    pub fn formats(&self) -> Option<&[i16]> {
        match self.pending.front() {
            Some((_, Pending::Execute(formats))) => Some(formats),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bind(portal: &str, statement: &str) -> Vec<u8> {
        format!("{portal}\0{statement}\0").into_bytes()
    }

    #[test]
    fn each_execute_reads_its_own_formats_even_pipelined() {
        let mut pipeline = Pipeline::default();
        // Two portals bound with different formats, both executed, then Sync: rows of the
        // first Execute are read in its formats although the second was sent before they came.
        pipeline
            .sent(b'B', &bind("a", ""), Some((Vec::new(), vec![1])))
            .unwrap();
        pipeline
            .sent(b'B', &bind("b", ""), Some((Vec::new(), vec![0])))
            .unwrap();
        pipeline.sent(b'E', b"a\0\0\0\0\0", None).unwrap();
        pipeline.sent(b'E', b"b\0\0\0\0\0", None).unwrap();
        pipeline.sent(b'S', b"", None).unwrap();
        assert_eq!(pipeline.formats(), Some(&[1][..]));
        assert_eq!(pipeline.answer(&frame(b'C', b"SELECT 1\0")), None);
        assert_eq!(pipeline.formats(), Some(&[0][..]));
        pipeline.answer(&frame(b'C', b"SELECT 1\0"));
        pipeline.answer(&frame(b'Z', b"I"));
        assert_eq!(pipeline.formats(), None);

        // After an error the target skips to Sync: what was skipped is dropped at its
        // ReadyForQuery, and the next batch's Execute is read right.
        pipeline.sent(b'E', b"a\0\0\0\0\0", None).unwrap();
        pipeline.sent(b'E', b"a\0\0\0\0\0", None).unwrap();
        pipeline.sent(b'S', b"", None).unwrap();
        pipeline.sent(b'E', b"b\0\0\0\0\0", None).unwrap();
        pipeline.sent(b'S', b"", None).unwrap();
        pipeline.answer(&frame(b'E', b"error"));
        pipeline.answer(&frame(b'Z', b"I"));
        assert_eq!(pipeline.formats(), Some(&[0][..]));
    }

    #[test]
    fn statements_count_only_once_the_target_accepts_them() {
        let mut pipeline = Pipeline::default();
        pipeline
            .sent(b'P', b"s\0DELETE FROM t\0\0\0", None)
            .unwrap();
        pipeline.sent(b'S', b"", None).unwrap();
        assert!(!pipeline.settled());
        pipeline.answer(&frame(b'1', b""));
        pipeline.answer(&frame(b'Z', b"I"));
        // The same name again: the target refuses it (42P05) and keeps the first.
        pipeline.sent(b'P', b"s\0SELECT 1\0\0\0", None).unwrap();
        pipeline.sent(b'S', b"", None).unwrap();
        pipeline.answer(&frame(b'E', b"C42P05\0"));
        assert!(pipeline.settled());
        pipeline.answer(&frame(b'Z', b"I"));
        pipeline
            .sent(b'B', &bind("", "s"), Some((Vec::new(), Vec::new())))
            .unwrap();
        pipeline.answer(&frame(b'2', b""));
        assert_eq!(
            pipeline.executed(b"\0\0\0\0\0", true).unwrap().text,
            "DELETE FROM t"
        );

        // What follows an error in the same batch is skipped by the target: never waited for.
        pipeline.sent(b'P', b"bad\0nonsense\0\0\0", None).unwrap();
        pipeline.answer(&frame(b'E', b"C42601\0"));
        assert!(pipeline.skipping());
        pipeline.sent(b'P', b"t\0SELECT 2\0\0\0", None).unwrap();
        assert!(pipeline.settled());
        pipeline.sent(b'S', b"", None).unwrap();
        assert!(!pipeline.skipping());
    }

    #[test]
    fn a_rejection_replaces_its_stand_ins_answer_and_no_other() {
        let mut pipeline = Pipeline::default();
        // A simple query rejected: its empty-query answer becomes the error.
        let stand_in = pipeline.reject(b'Q', "rejected by bob");
        assert_eq!(stand_in, frame(b'Q', b"\0"));
        let replaced = pipeline.answer(&frame(b'I', b"")).unwrap();
        assert_eq!(replaced[0], b'E');
        assert!(replaced.windows(5).any(|window| window == b"42501"));
        assert_eq!(pipeline.answer(&frame(b'Z', b"I")), None);

        // An Execute rejected: the stand-in is a Parse that cannot succeed; its error becomes
        // the rejection.
        let stand_in = pipeline.reject(b'E', "rejected by bob");
        assert_eq!(stand_in[0], b'P');
        assert!(pipeline.answer(&frame(b'E', b"C42601\0")).is_some());
        // Rejected while the target was already skipping to Sync: its stand-in is never
        // answered, and a later error passes through as it is.
        pipeline.reject(b'E', "rejected");
        pipeline.sent(b'S', b"", None).unwrap();
        assert_eq!(pipeline.answer(&frame(b'Z', b"E")), None);
        assert_eq!(pipeline.answer(&frame(b'E', b"real error")), None);
    }

    #[test]
    fn what_cannot_be_followed_is_said_so() {
        let mut pipeline = Pipeline::default();
        // A Query inside an extended batch: the target may skip it, answering nothing.
        pipeline.sent(b'P', b"s\0SELECT 1\0\0\0", None).unwrap();
        assert!(pipeline.sent(b'Q', b"SELECT 2\0", None).is_err());
        assert!(pipeline.sent(b'F', b"", None).is_err());
        pipeline.sent(b'S', b"", None).unwrap();
        // A confirmation for another kind of message than the one waiting.
        pipeline.answer(&frame(b'2', b""));
        assert!(pipeline.out_of_step());
    }

    #[test]
    fn a_sync_sent_into_copy_in_is_not_waited_for() {
        let mut pipeline = Pipeline::default();
        // Execute of a COPY FROM STDIN and its Sync; the target starts the COPY and ignores
        // the Sync, then answers the Sync after CopyDone.
        pipeline.sent(b'E', b"\0\0\0\0\0", None).unwrap();
        pipeline.sent(b'S', b"", None).unwrap();
        pipeline.answer(&frame(b'G', b"\0\0\0"));
        assert!(pipeline.caught_up(), "COPY data may flow");
        assert!(
            pipeline.sent(b'Q', b"SELECT 1\0", None).is_err(),
            "nothing else in COPY"
        );
        pipeline.sent(b'c', b"", None).unwrap();
        pipeline.sent(b'S', b"", None).unwrap();
        assert!(!pipeline.caught_up());
        pipeline.answer(&frame(b'C', b"COPY 1\0"));
        pipeline.answer(&frame(b'Z', b"I"));
        assert!(pipeline.caught_up(), "one ReadyForQuery for the two Syncs");
    }
}
