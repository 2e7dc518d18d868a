//! Loupe's wire types: every request, response and message that crosses between the server, the
//! browser app and the CLI is defined here once, with serde only, so all three agree by
//! construction.

mod audit;
mod auth;
mod connections;
mod error;
mod live;
mod page;
mod reviews;
mod sessions;
mod settings;
pub mod terminal;
mod terminals;
mod time;
mod users;
mod wire_enum;

pub use audit::{AuditEvent, AuditExportQuery, AuditQuery};
pub use auth::{ApiToken, CreatedToken, LoginRequest, NewSshKey, NewToken, SshKey};
pub use connections::{
    CommandSettings, CommandView, Connection, ConnectionChanges, ConnectionCheck, ConnectionKind,
    InputMode, NewConnection, RunRequest, SshSettings, SshView,
};
pub use error::{ErrorBody, ErrorCode};
pub use live::{ClientMessage, ServerMessage};
pub use page::Page;
pub use reviews::{
    AccessRequest, Approvals, Review, ReviewActions, ReviewConnection, ReviewDecision, ReviewKind,
    ReviewNote, ReviewQuery, ReviewRules, ReviewState, Verdict, Waiting,
};
pub use sessions::{
    AgentRef, Cell, CloseSession, Column, ConnectionRef, Count, CutCell, EventKind, EventPage,
    EventsQuery, IngestAck, IngestBatch, IngestEvent, NewRecordedSession, NewShare, OutputPiece,
    OutputQuery, OutputWindow, RawOutputQuery, RowsQuery, RowsWindow, SHORT_ID_MIN, Session,
    SessionCounts, SessionEvent, SessionPage, SessionQuery, SessionStatus, SessionType, Share,
    Stream, Verb, short_id, short_id_len,
};
pub use settings::{Health, Listeners, Settings};
pub use terminals::{
    MAX_TERMINAL_SIDE, ScreenHit, ScreenHits, ScreenQuery, ScreenSearchQuery, ScreenStart,
    TerminalNotice, TerminalQuery, TerminalRequest, TerminalResize,
};
pub use time::{Timestamp, TimestampError};
pub use users::{
    Group, GroupChanges, GroupRef, NewGroup, NewUser, Role, User, UserChanges, UserRef,
};
pub use wire_enum::UnknownName;
