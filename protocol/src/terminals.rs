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
