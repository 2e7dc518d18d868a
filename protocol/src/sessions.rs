//! Sessions: every query or command run through Loupe (or recorded into it), with its activity
//! log and its output.

use std::{borrow::Cow, collections::BTreeMap};

use serde::{Deserialize, Serialize};

use crate::{Timestamp, UserRef};

crate::wire_enum! {
    pub enum SessionStatus {
        /// Waiting for a reviewer before it runs.
        PendingReview = "pending_review",
        Running = "running",
        /// Finished; a command or terminal with exit code 0 (or none).
        Done = "done",
        /// Could not run, ended with an error, or exited with a non-zero code (`exit_code`
        /// has it; a producer that closes a session `done` with one is recorded as failed).
        Failed = "failed",
        /// A reviewer said no.
        Rejected = "rejected",
        /// Stopped by its owner or an administrator.
        Cancelled = "cancelled",
        /// The server stopped while it was running; what was recorded until then is kept.
        Interrupted = "interrupted",
    }
}

impl SessionStatus {
    /// Whether the session has ended: nothing more will be recorded.
    pub fn is_final(self) -> bool {
        !matches!(self, SessionStatus::PendingReview | SessionStatus::Running)
    }
}

crate::wire_enum! {
    /// What kind of access a session was.
    pub enum SessionType {
        Database = "database",
        Command = "command",
        Ssh = "ssh",
        Application = "application",
    }
}

crate::wire_enum! {
    /// How the session came about.
    pub enum Verb {
        /// One query or command run through Loupe.
        Exec = "exec",
        /// An interactive connection through Loupe.
        Connect = "connect",
        /// Recorded by another gateway or agent through the ingest API.
        Record = "record",
    }
}

/// The connection a session went through, as it was when the session started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct ConnectionRef {
    pub id: Option<String>,
    pub name: String,
    /// `postgres`, `mysql`, `sqlite`, `command`, or what an ingesting agent says.
    pub kind: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct SessionCounts {
    pub events: u64,
    pub input_bytes: u64,
    pub output_bytes: u64,
    pub rows: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Session {
    /// A UUIDv7: sorting ids sorts sessions by creation time.
    pub id: String,
    pub user: UserRef,
    pub connection: ConnectionRef,
    #[serde(rename = "type")]
    pub session_type: SessionType,
    pub verb: Verb,
    pub status: SessionStatus,
    /// The first line of the input, at most 200 characters; the whole input is in the events.
    pub summary: String,
    pub started_at: Timestamp,
    pub ended_at: Option<Timestamp>,
    /// Milliseconds from start to end, once ended.
    pub duration_ms: Option<u64>,
    pub exit_code: Option<i32>,
    pub counts: SessionCounts,
    pub labels: BTreeMap<String, String>,
    pub rerun_of: Option<String>,
    /// Storing stopped at the configured limit; the output is incomplete.
    pub truncated: bool,
    /// Why the session failed, was rejected or was interrupted.
    pub error: Option<String>,
    /// For sessions recorded by another gateway or agent through the ingest API: the API token
    /// that recorded it. Loupe did not see these run; it holds what the agent sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentRef>,
}

/// The agent behind a recorded session: the API token it records with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct AgentRef {
    pub token_id: String,
    /// The token's name when the session was opened.
    pub name: String,
}

/// `GET /api/sessions` filters. Every parameter is validated; an unknown one is refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct SessionQuery {
    /// A username.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// A connection name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub session_type: Option<SessionType>,
    /// One status, or several separated by commas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Sessions started at or after this instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Timestamp>,
    /// Sessions started before this instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Timestamp>,
    /// The start of a session id (as copied from the UI), at least 4 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// 1 to 200; 50 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// How many sessions match: exact up to a cap, beyond which it says "at least".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Count {
    pub value: u64,
    /// False when counting stopped at the cap: there are at least `value`.
    pub exact: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct SessionPage {
    pub items: Vec<Session>,
    pub next_cursor: Option<String>,
    /// Present on the first page only (without a cursor).
    pub total: Option<Count>,
}

crate::wire_enum! {
    pub enum EventKind {
        /// A query or command as submitted (one per SQL statement).
        Input = "input",
        /// Text output (stdout and stderr interleaved in arrival order).
        Output = "output",
        /// A result set: its columns, then its rows.
        Result = "result",
        Error = "error",
        Exit = "exit",
        Note = "note",
        /// A terminal's new size, as `COLSxROWS` in its text (asciicast's form); a terminal
        /// session's first event says the size it started with.
        Resize = "resize",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Column {
    pub name: String,
    /// The database's name for the type, e.g. `int8`, `VARCHAR`.
    pub type_name: String,
}

/// One entry of a session's activity log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct SessionEvent {
    /// 1, 2, 3… within the session.
    pub seq: u64,
    pub at: Timestamp,
    pub kind: EventKind,
    /// One line for the log: the statement, "42 rows", the error message…
    pub summary: String,
    /// The whole text of an input, error or note.
    pub text: Option<String>,
    /// An error's code (e.g. SQLSTATE), where the target gave one.
    pub code: Option<String>,
    pub exit_code: Option<i32>,
    /// A result set's columns.
    pub columns: Option<Vec<Column>>,
    /// Output bytes recorded for this event so far.
    pub bytes: u64,
    /// Result rows recorded for this event so far.
    pub rows: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct EventPage {
    pub items: Vec<SessionEvent>,
    /// Pass as `after` for the next page; none when this was the last so far.
    pub next_after: Option<u64>,
}

crate::wire_enum! {
    pub enum Stream {
        Stdout = "stdout",
        Stderr = "stderr",
        /// What a user typed into a terminal session, where its connection records keystrokes.
        Stdin = "stdin",
    }
}

/// A piece of an event's output inside a window, with when it arrived and on which stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct OutputPiece {
    pub offset: u64,
    pub at: Timestamp,
    pub stream: Stream,
    /// The bytes as text; bytes that are not UTF-8 (or a character cut by the window's edge)
    /// show as U+FFFD. The `txt` download has the exact bytes.
    pub text: String,
    /// How many bytes of output the piece stands for: the next piece starts at `offset +
    /// bytes` (the text's own length differs where the bytes are not UTF-8).
    pub bytes: u64,
}

/// `GET /api/sessions/{id}/events/{seq}/output?offset=&length=`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct OutputWindow {
    pub offset: u64,
    /// Bytes in the window (less than asked for at the end of the output).
    pub length: u64,
    /// The event's output size when the window was read.
    pub total: u64,
    pub pieces: Vec<OutputPiece>,
}

/// One value of a result row. NULL is `null`, distinct from the text "NULL". A value is a JSON
/// number only where the number prints back as exactly the text the database wrote (so `1e+300`
/// or `0.10` stay text, as written); everything else is the database's own text form.
///
/// Deserialised by hand (below) rather than by `#[serde(untagged)]`, whose derive buffers every
/// value and tries each variant in turn: rows are read by the million in downloads and windows.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum Cell {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

impl Cell {
    /// The value as text, the one way every view and download prints it; `None` for NULL.
    pub fn text(&self) -> Option<Cow<'_, str>> {
        match self {
            Cell::Null => None,
            Cell::Bool(value) => Some(Cow::Owned(value.to_string())),
            Cell::Int(value) => Some(Cow::Owned(value.to_string())),
            Cell::Float(value) => Some(Cow::Owned(value.to_string())),
            Cell::Text(text) => Some(Cow::Borrowed(text)),
        }
    }
}

impl<'de> Deserialize<'de> for Cell {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Cell, D::Error> {
        deserializer.deserialize_any(CellVisitor)
    }
}

/// What `#[serde(untagged)]` accepted, in its order: an integer beyond `i64` becomes a float.
struct CellVisitor;

impl<'de> serde::de::Visitor<'de> for CellVisitor {
    type Value = Cell;

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("null, a boolean, a number or a string")
    }

    fn visit_unit<E>(self) -> Result<Cell, E> {
        Ok(Cell::Null)
    }

    fn visit_none<E>(self) -> Result<Cell, E> {
        Ok(Cell::Null)
    }

    fn visit_bool<E>(self, value: bool) -> Result<Cell, E> {
        Ok(Cell::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Cell, E> {
        Ok(Cell::Int(value))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Cell, E> {
        Ok(i64::try_from(value).map_or(Cell::Float(value as f64), Cell::Int))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Cell, E> {
        Ok(Cell::Float(value))
    }

    fn visit_str<E>(self, value: &str) -> Result<Cell, E> {
        Ok(Cell::Text(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<Cell, E> {
        Ok(Cell::Text(value))
    }
}

/// A cell a rows window sent cut short: its text is the first bytes of the value, cut at a
/// character boundary. The whole value is at
/// `GET /api/sessions/{id}/events/{seq}/rows/{row}/cells/{column}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct CutCell {
    /// The row's number in the result set, from 0.
    pub row: u64,
    /// The column's position, from 0.
    pub column: u32,
    /// The whole value's length in bytes of UTF-8.
    pub bytes: u64,
}

/// `GET /api/sessions/{id}/events/{seq}/rows?offset=&limit=`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct RowsWindow {
    pub offset: u64,
    /// Rows in the result set when the window was read.
    pub total: u64,
    pub columns: Vec<Column>,
    /// As many rows as fit the window's byte bound (1 MiB of cell text; always at least one),
    /// so possibly fewer than asked for: ask again from `offset + rows.len()`.
    pub rows: Vec<Vec<Cell>>,
    /// The cells sent cut short (longer than `cell_bytes`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cut: Vec<CutCell>,
}

// ---- ingest: other gateways and agents recording into Loupe -----------------------------

/// `POST /api/ingest/sessions`: open a session recorded elsewhere, owned by the token's user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NewRecordedSession {
    /// The connection's name as the agent knows it.
    pub connection: String,
    /// The connection's kind: `postgres`, `ssh`, `kubectl`…
    pub connection_kind: String,
    #[serde(rename = "type")]
    pub session_type: SessionType,
    /// The query or command line.
    pub input: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// When it started; now when absent.
    #[serde(default)]
    pub started_at: Option<Timestamp>,
}

/// One recorded event, as an agent sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum IngestEvent {
    Input {
        text: String,
    },
    /// Text output. With `seq`, appends to that output event; without, starts a new one.
    Output {
        #[serde(default)]
        seq: Option<u64>,
        stream: Stream,
        data: String,
    },
    /// Starts a result set; rows follow with `rows`.
    Result {
        columns: Vec<Column>,
    },
    Rows {
        seq: u64,
        rows: Vec<Vec<Cell>>,
    },
    Error {
        message: String,
        #[serde(default)]
        code: Option<String>,
    },
    Exit {
        code: i32,
    },
    Note {
        text: String,
    },
}

/// `POST /api/ingest/sessions/{id}/events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct IngestBatch {
    pub events: Vec<IngestEvent>,
}

/// The answer once the batch is committed: the seq each event was recorded as (for `output`
/// with a `seq` and `rows`, the event appended to).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct IngestAck {
    pub seqs: Vec<u64>,
}

/// `POST /api/ingest/sessions/{id}/close`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct CloseSession {
    /// `done`, `failed`, `cancelled` or `interrupted`.
    pub status: SessionStatus,
    /// The program's exit status; `done` with a non-zero one is recorded as `failed`.
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub error: Option<String>,
}

// ---- shares -----------------------------------------------------------------------------

/// `POST /api/sessions/{id}/shares`: give users and groups read access to one session.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NewShare {
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    pub expires_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Share {
    pub id: String,
    /// Exactly one of `user` and `group` is set.
    pub user: Option<UserRef>,
    pub group: Option<crate::GroupRef>,
    pub note: Option<String>,
    pub created_by: String,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
}

/// `GET /api/sessions/{id}/events` paging.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Events after this seq; from the first when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<u64>,
    /// 1 to 500; 100 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// `GET /api/sessions/{id}/events/{seq}/output` window.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct OutputQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// 1 byte to 1 MiB; 64 KiB when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
}

/// `GET /api/sessions/{id}/events/{seq}/rows` window.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RowsQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// 1 to 1000; 100 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// The longest a cell's text may be before it is cut, in bytes: 16 to 1048576; 4096 when
    /// absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cell_bytes: Option<u32>,
}

/// `POST /api/ingest/sessions/{id}/output?stream=&seq=`: the body is raw output bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawOutputQuery {
    pub stream: Stream,
    /// The output event to append to; a new one when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

/// How many characters a short session id has at least: a UUIDv7's first 13 (`0193a2b4-5c6d`)
/// are its millisecond timestamp (RFC 9562 §5.7), enough to tell most sessions apart.
pub const SHORT_ID_MIN: usize = 13;

/// The length of the shortest prefix, at least [`SHORT_ID_MIN`], that tells every one of `ids`
/// apart from the others, for showing ids together (sessions started in the same millisecond
/// share their first 13 characters). Any such prefix of at least 4 characters also works as the
/// list's `id` filter. Capped at the longest id.
pub fn short_id_len<'a>(ids: impl IntoIterator<Item = &'a str>) -> usize {
    let mut sorted: Vec<&str> = ids.into_iter().collect();
    sorted.sort_unstable();
    sorted.dedup();
    let longest = sorted.iter().map(|id| id.len()).max().unwrap_or(0);
    let shared = sorted
        .windows(2)
        .map(|pair| {
            pair[0]
                .bytes()
                .zip(pair[1].bytes())
                .take_while(|(a, b)| a == b)
                .count()
        })
        .max()
        .unwrap_or(0);
    (shared + 1)
        .max(SHORT_ID_MIN)
        .min(longest.max(SHORT_ID_MIN))
}

/// The first `len` characters of `id` (all of it when shorter), e.g. with [`short_id_len`].
pub fn short_id(id: &str, len: usize) -> &str {
    id.get(..len).unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_read_back_as_written_and_refuse_what_is_not_a_value() {
        let cells = vec![
            Cell::Null,
            Cell::Bool(true),
            Cell::Int(i64::MIN),
            Cell::Int(i64::MAX),
            Cell::Float(0.5),
            Cell::Text(String::new()),
            Cell::Text("NULL".into()),
            Cell::Text("ü \"quoted\"".into()),
        ];
        let json = serde_json::to_string(&cells).unwrap();
        assert_eq!(
            json,
            r#"[null,true,-9223372036854775808,9223372036854775807,0.5,"","NULL","ü \"quoted\""]"#
        );
        assert_eq!(serde_json::from_str::<Vec<Cell>>(&json).unwrap(), cells);
        // Past i64, as the untagged derive did: a float.
        assert_eq!(
            serde_json::from_str::<Cell>("18446744073709551615").unwrap(),
            Cell::Float(18_446_744_073_709_551_615.0)
        );
        for bad in ["[1]", r#"{"a":1}"#] {
            let error = serde_json::from_str::<Cell>(bad).unwrap_err().to_string();
            assert!(
                error.contains("null, a boolean, a number or a string"),
                "{error}"
            );
        }
    }

    #[test]
    fn short_ids_grow_until_they_differ() {
        let same_millisecond = [
            "01a22ed0-07c6-7000-8000-000000000001",
            "01a22ed0-07c6-7001-8000-000000000002",
            "01a22ed0-07c6-7002-8000-000000000003",
        ];
        assert_eq!(short_id_len(same_millisecond), 18);
        assert_eq!(
            short_id_len(["01a22ed0-07c6-7000", "01a22ed0-07c7-7000"]),
            SHORT_ID_MIN
        );
        assert_eq!(short_id_len([]), SHORT_ID_MIN);
        // The same id twice is one session shown twice, not a collision.
        assert_eq!(
            short_id_len(["01a22ed0-07c6-7000", "01a22ed0-07c6-7000"]),
            SHORT_ID_MIN
        );
    }
}
