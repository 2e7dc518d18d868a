//! Terminal sessions: the WebSocket a terminal is typed through,
//! `GET /api/connections/{id}/terminal?cols=&rows=`, used by the browser's terminal and by
//! `loupe ssh`.
//!
//! Binary frames carry the terminal's bytes: keystrokes from the client, output to it, exactly
//! as typed and as the program wrote them. Text frames carry JSON: [`TerminalRequest`] from the
//! client, [`TerminalNotice`] to it. The session is recorded as it runs (see `EventKind::Resize`
//! and `Stream::Stdin`) and ends when either side leaves.

use serde::{Deserialize, Serialize};

use crate::SessionStatus;

/// The terminal's size at connect. Both or neither; 80×24 when absent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct TerminalQuery {
    /// Columns, 1 to 1000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cols: Option<u16>,
    /// Rows, 1 to 1000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u16>,
}

/// The largest terminal Loupe opens, in columns and in rows.
pub const MAX_TERMINAL_SIDE: u16 = 1000;

/// A client's text frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum TerminalRequest {
    /// The client's terminal changed size (1 to [`MAX_TERMINAL_SIDE`] each way).
    Resize { cols: u16, rows: u16 },
}

/// A text frame to the client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TerminalNotice {
    /// The first frame: the session this terminal is recorded as.
    Started { session: String },
    /// Something the user must read (the terminal is about to be closed by a person, a
    /// request was refused); printed by clients on their own line.
    Message { text: String },
    /// The last frame: how the session ended. The socket closes after it.
    Ended {
        status: SessionStatus,
        /// The program's exit status, where it gave one.
        exit_code: Option<i32>,
        /// Why, when it did not end by itself.
        reason: Option<String>,
    },
}

/// `GET /api/sessions/{id}/screen?at_ms=`: where playback of a terminal session from a moment
/// starts. Absent, the latest moment recorded (what a watcher joining a running session sees).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ScreenQuery {
    /// Milliseconds from the session's start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_ms: Option<u64>,
}

/// A terminal's size from a moment of its session on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct TerminalResize {
    /// Milliseconds from the session's start.
    pub at_ms: u64,
    pub cols: u16,
    pub rows: u16,
}

/// How to draw a terminal session's screen at a moment: draw `screen` on a blank terminal of
/// `cols`×`rows`, then write the output event `seq` from byte `offset` (its pieces up to the
/// moment; windows give each piece's time). Only the keyframe and the bytes after it are read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct ScreenStart {
    /// The terminal's output event; none before any output.
    pub seq: Option<u64>,
    /// Escape sequences that draw the keyframe; empty at the session's start.
    pub screen: String,
    pub cols: u16,
    pub rows: u16,
    /// Where in the output the keyframe stands.
    pub offset: u64,
    /// When the keyframe was taken, in milliseconds from the session's start.
    pub at_ms: u64,
    /// Output bytes recorded so far.
    pub total: u64,
    /// The session's length in milliseconds (so far, while it runs).
    pub duration_ms: u64,
    /// Every size change after the first, in order, for playback.
    pub resizes: Vec<TerminalResize>,
}

/// `GET /api/sessions/{id}/screen/search?q=`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ScreenSearchQuery {
    /// Text to find in the lines the terminal showed (case-insensitive), 1 to 200 characters.
    pub q: String,
}

/// A line the terminal showed that holds the text searched for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct ScreenHit {
    /// When the line was complete on the screen, in milliseconds from the session's start:
    /// seeking there shows it.
    pub at_ms: u64,
    pub line: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct ScreenHits {
    /// In the order they appeared, at most 200.
    pub hits: Vec<ScreenHit>,
    /// More lines matched than were returned.
    pub more: bool,
}
