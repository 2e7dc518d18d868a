//! What the recorder tells the rest of Loupe after each commit: a [`Notice`] of what changed in
//! one session, handed to a [`Publish`]er (the live hub, `crate::live::Hub`). The recorder knows
//! only this trait, so recording does not depend on how changes reach watchers.

use std::sync::OnceLock;

use loupe_protocol::{OutputPiece, Session, SessionEvent};
use serde::Serialize;

use crate::store::Store;

/// Where committed changes go.
pub trait Publish: Clone + Send + Sync + 'static {
    /// Whether anyone on this node listens: output text is only prepared for listeners.
    fn has_local_watchers(&self) -> bool;
    /// Hands `notice` on; returns once it is on its way.
    fn publish(&self, store: &Store, notice: Notice) -> impl Future<Output = ()> + Send;
}

/// What one committed request changed in one session.
#[derive(Debug, Default)]
pub struct Notice {
    pub session_id: String,
    /// New events, in seq order.
    pub events: Vec<SessionEvent>,
    /// Output appended, as (event seq, piece, its length in bytes). The piece's text is only
    /// filled when this node has watchers.
    pub output: Vec<(u64, OutputPiece, u64)>,
    /// Result events that grew, as (event seq, rows now).
    pub rows: Vec<(u64, u64)>,
    /// The session as it is now, when it started, ended, or its counters moved on.
    pub session: Option<Session>,
    /// The parts above as JSON, made once for all the sockets that deliver this notice.
    pub(crate) json: OnceLock<NoticeJson>,
}

/// A notice's events, output pieces and session, each serialized once.
#[derive(Debug)]
pub struct NoticeJson {
    pub events: Vec<String>,
    pub output: Vec<String>,
    pub session: Option<String>,
}

impl Notice {
    pub fn json(&self) -> &NoticeJson {
        self.json.get_or_init(|| NoticeJson {
            events: self.events.iter().map(to_json).collect(),
            output: self
                .output
                .iter()
                .map(|(_, piece, _)| to_json(piece))
                .collect(),
            session: self.session.as_ref().map(to_json),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
            && self.output.is_empty()
            && self.rows.is_empty()
            && self.session.is_none()
    }
}

fn to_json(value: &impl Serialize) -> String {
    serde_json::to_string(value).expect("wire types serialize")
}
