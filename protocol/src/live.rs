//! The live channel, `GET /api/live`: one WebSocket per browser tab (or `loupe watch`), JSON
//! text messages, each one of these enums tagged by `type`.

use serde::{Deserialize, Serialize};

use crate::{ErrorCode, OutputPiece, Review, Session, SessionEvent, SessionQuery};

/// What a client asks. `id` names the subscription in the answers; the client chooses it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// One session's events with a seq above `after` (0 for all): the stored ones first, then
    /// live ones as they are committed, with no gap and no repeat between the two. To resume
    /// where a client stopped, `offset` says how much of event `after` it already has (bytes of
    /// an output event, rows of a result): the rest of that event follows too.
    WatchSession {
        id: String,
        session: String,
        after: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        offset: Option<u64>,
    },
    /// Sessions the caller may see that match the list's filters (cursor and limit are
    /// ignored): each one as it starts, changes and ends.
    WatchSessions {
        id: String,
        #[serde(default)]
        filter: SessionQuery,
    },
    /// Reviews the caller may see, each time one is requested or changes state.
    WatchReviews {
        id: String,
    },
    Unwatch {
        id: String,
    },
    Ping {
        nonce: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The subscription is in place (for a session: the stored events follow first).
    Watching {
        id: String,
    },
    /// A new event of a watched session.
    Event {
        id: String,
        session: String,
        event: SessionEvent,
    },
    /// Output appended to an output event.
    Output {
        id: String,
        session: String,
        seq: u64,
        piece: OutputPiece,
    },
    /// Rows appended to a result event; `total` is its row count now. Fetch them by window.
    Rows {
        id: String,
        session: String,
        seq: u64,
        total: u64,
    },
    /// A session started, changed (status, counters) or ended.
    Session {
        id: String,
        session: Session,
    },
    /// A review was requested or changed; `actions` are the caller's.
    Review {
        id: String,
        review: Review,
    },
    /// The client fell behind and messages were dropped for this subscription: read from the
    /// API again and watch again from the last seq it has.
    Resync {
        id: String,
        reason: String,
    },
    /// A request could not be served; with an `id`, that subscription is not in place.
    Error {
        id: Option<String>,
        code: ErrorCode,
        message: String,
    },
    Pong {
        nonce: u64,
    },
    /// Sent every 20 seconds so idle connections stay open through proxies.
    Heartbeat,
}

impl ServerMessage {
    /// The subscription a message answers, if it answers one.
    pub fn subscription(&self) -> Option<&str> {
        match self {
            ServerMessage::Watching { id }
            | ServerMessage::Event { id, .. }
            | ServerMessage::Output { id, .. }
            | ServerMessage::Rows { id, .. }
            | ServerMessage::Session { id, .. }
            | ServerMessage::Review { id, .. }
            | ServerMessage::Resync { id, .. } => Some(id),
            ServerMessage::Error { id, .. } => id.as_deref(),
            ServerMessage::Pong { .. } | ServerMessage::Heartbeat => None,
        }
    }
}
