//! A recorder batch made into few statements. The recorder plans each request as a list of
//! [`WriteOp`]s; written one statement each, a relayed `SELECT` of one row costs five (two
//! events, a row page, two counter updates), and a busy database connection through the gateway
//! thousands a second. Within one transaction the order of writes to different rows is not seen
//! by anyone, so the batch is regrouped: the new rows of each table go in multi-row `INSERT`s,
//! sizes added to an event inserted in the same batch go into its insert, and each session's and
//! each event's counter increments are summed into one `UPDATE`.

use std::collections::HashMap;

use super::records::{ChunkRecord, EventRecord, RowPageRecord, WriteOp};

/// A batch regrouped: apply the parts in this order (rows before what updates them).
#[derive(Debug, Default)]
pub(crate) struct Compacted<'a> {
    /// New events, with what later writes of the batch add to their `bytes` and `row_count`.
    pub events: Vec<NewEventRow<'a>>,
    pub chunks: Vec<(&'a str, i64, &'a ChunkRecord)>,
    pub pages: Vec<(&'a str, i64, &'a RowPageRecord)>,
    /// Growth of events written in earlier batches: (session, seq, bytes, rows).
    pub event_growth: Vec<(&'a str, i64, i64, i64)>,
    /// Each session's summed counters: (session, events, input bytes, output bytes, rows).
    pub session_growth: Vec<(&'a str, [i64; 4])>,
    pub truncated: Vec<&'a str>,
    /// Sessions ended: (session, status, ended at µs, exit code, error), in their order.
    pub finishes: Vec<Finish<'a>>,
}

pub(crate) type Finish<'a> = (&'a str, &'a str, i64, Option<i32>, Option<&'a str>);

/// An event to insert, and what the same batch adds to its sizes.
#[derive(Debug)]
pub(crate) struct NewEventRow<'a> {
    pub session_id: &'a str,
    pub event: &'a EventRecord,
    pub bytes: i64,
    pub rows: i64,
}

impl<'a> Compacted<'a> {
    pub fn of(ops: &'a [WriteOp]) -> Compacted<'a> {
        let mut compacted = Compacted::default();
        // Where each (session, seq) is: a new event of this batch, or an earlier one's growth.
        let mut new_events: HashMap<(&str, i64), usize> = HashMap::new();
        let mut grown: HashMap<(&str, i64), usize> = HashMap::new();
        let mut sessions: HashMap<&str, usize> = HashMap::new();
        for op in ops {
            match op {
                WriteOp::Event { session_id, event } => {
                    new_events.insert((session_id, event.seq), compacted.events.len());
                    compacted.events.push(NewEventRow {
                        session_id,
                        event,
                        bytes: 0,
                        rows: 0,
                    });
                }
                WriteOp::Chunk {
                    session_id,
                    seq,
                    chunk,
                } => compacted.chunks.push((session_id, *seq, chunk)),
                WriteOp::RowPage {
                    session_id,
                    seq,
                    page,
                } => compacted.pages.push((session_id, *seq, page)),
                WriteOp::EventGrowth {
                    session_id,
                    seq,
                    bytes,
                    rows,
                } => {
                    let key = (session_id.as_str(), *seq);
                    if let Some(&index) = new_events.get(&key) {
                        compacted.events[index].bytes += bytes;
                        compacted.events[index].rows += rows;
                    } else if let Some(&index) = grown.get(&key) {
                        compacted.event_growth[index].2 += bytes;
                        compacted.event_growth[index].3 += rows;
                    } else {
                        grown.insert(key, compacted.event_growth.len());
                        compacted
                            .event_growth
                            .push((session_id, *seq, *bytes, *rows));
                    }
                }
                WriteOp::SessionGrowth {
                    session_id,
                    events,
                    input_bytes,
                    output_bytes,
                    rows,
                } => {
                    let added = [*events, *input_bytes, *output_bytes, *rows];
                    match sessions.get(session_id.as_str()) {
                        Some(&index) => {
                            let sums = &mut compacted.session_growth[index].1;
                            for (sum, add) in sums.iter_mut().zip(added) {
                                *sum += add;
                            }
                        }
                        None => {
                            sessions.insert(session_id, compacted.session_growth.len());
                            compacted.session_growth.push((session_id, added));
                        }
                    }
                }
                WriteOp::Truncated { session_id } => compacted.truncated.push(session_id),
                WriteOp::Finish {
                    session_id,
                    status,
                    ended_at_us,
                    exit_code,
                    error,
                } => compacted.finishes.push((
                    session_id,
                    status,
                    *ended_at_us,
                    *exit_code,
                    error.as_deref(),
                )),
            }
        }
        compacted
    }
}

/// Rows per multi-row `INSERT` at most: SQLite allows 32,766 bound values per statement
/// (`SQLITE_MAX_VARIABLE_NUMBER` since 3.32), PostgreSQL 65,535; events bind 11 per row.
pub(crate) const MAX_INSERT_ROWS: usize = 1024;

/// Splits `rows` into runs whose lengths are powers of two of at most [`MAX_INSERT_ROWS`], the
/// longest first: each run is one `INSERT`, and only eleven statement texts per table ever exist,
/// so the connection's prepared-statement cache keeps them all.
pub(crate) fn runs<T>(rows: &[T]) -> impl Iterator<Item = &[T]> {
    let mut rest = rows;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let length = 1 << rest.len().min(MAX_INSERT_ROWS).ilog2();
        let (run, after) = rest.split_at(length);
        rest = after;
        Some(run)
    })
}

#[cfg(test)]
mod tests {
    use loupe_protocol::{EventKind, Stream};

    use super::*;

    fn event(session: &str, seq: i64) -> WriteOp {
        WriteOp::Event {
            session_id: session.into(),
            event: EventRecord {
                seq,
                at_us: 0,
                kind: EventKind::Result,
                summary: String::new(),
                body: None,
                code: None,
                exit_code: None,
                columns: None,
                bytes: 0,
                row_count: 0,
            },
        }
    }

    fn growth(session: &str, seq: i64, bytes: i64, rows: i64) -> WriteOp {
        WriteOp::EventGrowth {
            session_id: session.into(),
            seq,
            bytes,
            rows,
        }
    }

    fn counters(session: &str, events: i64, rows: i64) -> WriteOp {
        WriteOp::SessionGrowth {
            session_id: session.into(),
            events,
            input_bytes: 1,
            output_bytes: 0,
            rows,
        }
    }

    #[test]
    fn growth_of_a_new_event_goes_into_its_insert_and_counters_are_summed_per_row() {
        let ops = vec![
            event("a", 1),
            growth("a", 1, 0, 1),
            counters("a", 1, 1),
            growth("a", 7, 10, 0),
            event("b", 4),
            growth("b", 4, 0, 3),
            counters("b", 1, 3),
            growth("a", 1, 0, 2),
            growth("a", 7, 5, 0),
            counters("a", 2, 2),
            WriteOp::Chunk {
                session_id: "a".into(),
                seq: 7,
                chunk: ChunkRecord {
                    byte_offset: 0,
                    at_us: 0,
                    stream: Stream::Stdout,
                    data: b"x".to_vec(),
                },
            },
        ];
        let compacted = Compacted::of(&ops);
        let events: Vec<_> = compacted
            .events
            .iter()
            .map(|row| (row.session_id, row.event.seq, row.bytes, row.rows))
            .collect();
        assert_eq!(events, [("a", 1, 0, 3), ("b", 4, 0, 3)]);
        assert_eq!(compacted.event_growth, [("a", 7, 15, 0)]);
        assert_eq!(
            compacted.session_growth,
            [("a", [3, 2, 0, 3]), ("b", [1, 1, 0, 3])]
        );
        assert_eq!(compacted.chunks.len(), 1);
        assert!(compacted.pages.is_empty() && compacted.finishes.is_empty());
    }

    #[test]
    fn runs_are_powers_of_two_longest_first_and_cover_every_row_once() {
        let lengths = |count: usize| -> Vec<usize> {
            let rows: Vec<usize> = (0..count).collect();
            let runs: Vec<&[usize]> = runs(&rows).collect();
            assert_eq!(runs.concat(), rows, "every row once, in order");
            runs.iter().map(|run| run.len()).collect()
        };
        assert_eq!(lengths(0), Vec::<usize>::new());
        assert_eq!(lengths(1), [1]);
        assert_eq!(lengths(37), [32, 4, 1]);
        assert_eq!(lengths(3000), [1024, 1024, 512, 256, 128, 32, 16, 8]);
    }
}
