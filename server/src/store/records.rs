//! Rows as the store reads and writes them. Handlers turn these into `protocol` types; the store
//! never sees the wire format.

use loupe_protocol::{
    ConnectionKind, EventKind, ReviewKind, ReviewState, Role, SessionStatus, SessionType, Stream,
    Timestamp, User, UserRef, Verb,
};
use sqlx::FromRow;

#[derive(Debug, Clone, FromRow)]
pub struct UserRecord {
    pub id: String,
    pub username: String,
    pub display_name: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
    pub disabled: bool,
    pub password_hash: Option<String>,
    pub created_at_us: i64,
}

impl UserRecord {
    pub fn to_ref(&self) -> UserRef {
        UserRef {
            id: self.id.clone(),
            username: self.username.clone(),
            display_name: self.display_name.clone(),
        }
    }

    pub fn into_user(self, groups: Vec<loupe_protocol::GroupRef>) -> User {
        User {
            role: self.role,
            id: self.id,
            username: self.username,
            display_name: self.display_name,
            disabled: self.disabled,
            groups,
            created_at: Timestamp::from_micros(self.created_at_us),
        }
    }
}

/// What may change on a user; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserUpdate {
    pub display_name: Option<String>,
    pub role: Option<Role>,
    pub disabled: Option<bool>,
    pub password_hash: Option<String>,
}

#[derive(Debug, Clone, FromRow)]
pub struct GroupRecord {
    pub id: String,
    pub name: String,
    pub description: String,
    pub created_at_us: i64,
}

/// One membership, with the names needed to show it.
#[derive(Debug, Clone, FromRow)]
pub struct MembershipRecord {
    pub group_id: String,
    pub group_name: String,
    pub user_id: String,
    pub username: String,
    pub display_name: String,
}

#[derive(Debug, Clone, FromRow)]
pub struct TokenRecord {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub prefix: String,
    pub created_at_us: i64,
    pub expires_at_us: Option<i64>,
    pub last_used_at_us: Option<i64>,
    pub revoked_at_us: Option<i64>,
}

/// An audit event to append.
#[derive(Debug, Clone, Default)]
pub struct NewAuditEvent {
    pub actor_id: Option<String>,
    pub actor_name: Option<String>,
    pub action: &'static str,
    pub target: Option<String>,
    pub detail: Option<String>,
    pub address: Option<String>,
}

#[derive(Debug, Clone, FromRow)]
pub struct AuditRecord {
    pub id: i64,
    pub at_us: i64,
    pub actor_name: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub detail: Option<String>,
    pub address: Option<String>,
}

/// Which audit events to read: newest first, older than `before_id`.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub from_us: Option<i64>,
    pub to_us: Option<i64>,
    pub before_id: Option<i64>,
    pub limit: u32,
}

// ---- sessions -----------------------------------------------------------------------------

#[derive(Debug, Clone, FromRow)]
pub struct SessionRecord {
    pub id: String,
    pub user_id: String,
    pub username: String,
    pub display_name: String,
    pub connection_id: Option<String>,
    pub connection_name: String,
    pub connection_kind: String,
    #[sqlx(try_from = "String")]
    pub session_type: SessionType,
    #[sqlx(try_from = "String")]
    pub verb: Verb,
    #[sqlx(try_from = "String")]
    pub status: SessionStatus,
    pub summary: String,
    pub started_at_us: i64,
    pub ended_at_us: Option<i64>,
    pub exit_code: Option<i32>,
    pub event_count: i64,
    pub input_bytes: i64,
    pub output_bytes: i64,
    pub row_count: i64,
    pub labels: String,
    pub rerun_of: Option<String>,
    pub truncated: bool,
    pub error: Option<String>,
    /// The API token that records this session through the ingest API; none for sessions Loupe
    /// runs itself.
    pub agent_token_id: Option<String>,
    pub agent_name: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewSessionRecord {
    pub id: String,
    pub user_id: String,
    pub username: String,
    pub connection_id: Option<String>,
    pub connection_name: String,
    pub connection_kind: String,
    pub session_type: SessionType,
    pub verb: Verb,
    pub status: SessionStatus,
    pub summary: String,
    pub input: String,
    pub node_id: String,
    pub started_at_us: i64,
    pub labels: String,
    pub rerun_of: Option<String>,
    /// For ingest: the recording token's id and name.
    pub agent: Option<(String, String)>,
}

/// Which sessions a caller may see in a list.
#[derive(Debug, Clone)]
pub enum Visibility {
    All,
    /// Their own, and those shared with them or with one of their groups.
    Restricted {
        user_id: String,
        username: String,
        group_ids: Vec<String>,
    },
}

/// The list's filters, already validated, and where the page starts.
#[derive(Debug, Clone)]
pub struct SessionFilter {
    pub username: Option<String>,
    pub connection: Option<String>,
    pub session_type: Option<SessionType>,
    pub statuses: Vec<SessionStatus>,
    pub from_us: Option<i64>,
    pub to_us: Option<i64>,
    pub id_prefix: Option<String>,
    /// Sessions strictly older than this (started_at_us, id) — the cursor.
    pub before: Option<(i64, String)>,
    pub visibility: Visibility,
}

#[derive(Debug, Clone, FromRow)]
pub struct EventRecord {
    pub seq: i64,
    pub at_us: i64,
    #[sqlx(try_from = "String")]
    pub kind: EventKind,
    pub summary: String,
    pub body: Option<String>,
    pub code: Option<String>,
    pub exit_code: Option<i32>,
    pub columns: Option<String>,
    pub bytes: i64,
    pub row_count: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct ChunkRecord {
    pub byte_offset: i64,
    pub at_us: i64,
    #[sqlx(try_from = "String")]
    pub stream: Stream,
    pub data: Vec<u8>,
}

/// A user's SSH public key, for Loupe's SSH listener.
#[derive(Debug, Clone, FromRow)]
pub struct SshKeyRecord {
    pub id: String,
    pub user_id: String,
    pub name: String,
    /// OpenSSH's one-line form, without its comment.
    pub public_key: String,
    /// `SHA256:…`.
    pub fingerprint: String,
    pub created_at_us: i64,
}

/// A terminal session's screen once its output event `seq` has `byte_offset` bytes.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct KeyframeRecord {
    pub seq: i64,
    pub byte_offset: i64,
    pub at_us: i64,
    pub cols: i32,
    pub rows: i32,
    /// Escape sequences that draw the screen on a blank terminal of `cols`×`rows`.
    pub screen: String,
}

#[derive(Debug, Clone, FromRow)]
pub struct RowPageRecord {
    pub first_row: i64,
    pub row_count: i32,
    pub data: String,
}

/// What the recorder needs to know to continue a session after a restart of its cache.
#[derive(Debug, Clone, FromRow)]
pub struct SessionWriteState {
    pub user_id: String,
    #[sqlx(try_from = "String")]
    pub status: SessionStatus,
    pub event_count: i64,
    pub output_bytes: i64,
    pub truncated: bool,
}

/// One write of a recorder batch; a batch commits all of its writes or none.
#[derive(Debug, Clone)]
pub enum WriteOp {
    Event {
        session_id: String,
        event: EventRecord,
    },
    Chunk {
        session_id: String,
        seq: i64,
        chunk: ChunkRecord,
    },
    RowPage {
        session_id: String,
        seq: i64,
        page: RowPageRecord,
    },
    /// Adds to an event's sizes.
    EventGrowth {
        session_id: String,
        seq: i64,
        bytes: i64,
        rows: i64,
    },
    /// Adds to a session's counters.
    SessionGrowth {
        session_id: String,
        events: i64,
        input_bytes: i64,
        output_bytes: i64,
        rows: i64,
    },
    Truncated {
        session_id: String,
    },
    /// Ends a session that has not ended yet.
    Finish {
        session_id: String,
        status: String,
        ended_at_us: i64,
        exit_code: Option<i32>,
        error: Option<String>,
    },
}

#[derive(Debug, Clone, FromRow)]
pub struct ShareRecord {
    pub id: String,
    pub session_id: String,
    pub user_id: Option<String>,
    pub group_id: Option<String>,
    pub note: Option<String>,
    pub created_by: String,
    pub created_at_us: i64,
    pub expires_at_us: Option<i64>,
}

// ---- connections --------------------------------------------------------------------------

#[derive(Debug, Clone, FromRow)]
pub struct ConnectionRecord {
    pub id: String,
    pub name: String,
    #[sqlx(try_from = "String")]
    pub kind: ConnectionKind,
    #[sqlx(try_from = "String")]
    pub session_type: SessionType,
    /// `StoredCommand` as JSON, for command connections.
    pub command: Option<String>,
    /// Sealed: the URL of a database connection, the environment of a command connection.
    pub secret: Option<Vec<u8>>,
    pub timeout_seconds: Option<i32>,
    /// A JSON array of strings.
    pub tags: String,
    /// `ReviewRules` as JSON, with reviewer groups by id; none when nothing needs approval.
    pub review: Option<String>,
    /// `StoredTerminal` as JSON, for shell and ssh connections.
    pub terminal: Option<String>,
    pub created_at_us: i64,
}

// ---- reviews --------------------------------------------------------------------------------

#[derive(Debug, Clone, FromRow)]
pub struct ReviewRecord {
    pub id: String,
    #[sqlx(try_from = "String")]
    pub kind: ReviewKind,
    #[sqlx(try_from = "String")]
    pub state: ReviewState,
    pub connection_id: String,
    pub connection_name: String,
    pub connection_kind: String,
    pub requester_id: String,
    pub reason: String,
    pub input: Option<String>,
    pub session_id: Option<String>,
    pub access_seconds: Option<i64>,
    /// The connection's `ReviewRules` when the review was made, as JSON (groups by id).
    pub rules: String,
    pub created_at_us: i64,
    pub expires_at_us: i64,
    pub decided_at_us: Option<i64>,
    pub access_until_us: Option<i64>,
    pub closed_at_us: Option<i64>,
    pub closed_by: Option<String>,
    pub closing_note: Option<String>,
}

#[derive(Debug, Clone, FromRow)]
pub struct DecisionRecord {
    pub review_id: String,
    pub reviewer_id: String,
    pub verdict: String,
    pub note: Option<String>,
    /// The reviewer groups (ids, JSON array) the reviewer belonged to when deciding.
    pub groups: String,
    pub at_us: i64,
}

/// Which reviews a list shows, already validated.
#[derive(Debug, Clone, Default)]
pub struct ReviewFilter {
    /// Only this person's requests.
    pub requester_id: Option<String>,
    /// Only reviews one of these groups reviews (the inbox).
    pub reviewer_groups: Option<Vec<String>>,
    /// For callers who do not see everything: their own requests and what their groups review.
    pub visible_to: Option<(String, Vec<String>)>,
    pub states: Vec<ReviewState>,
    pub kind: Option<ReviewKind>,
    pub connection_name: Option<String>,
    pub session_id: Option<String>,
    /// Reviews created before this (created_at_us, id).
    pub before: Option<(i64, String)>,
    pub limit: u32,
}

/// How a decision went, decided under the review's row lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecideOutcome {
    /// The decision is recorded; the review is now in this state.
    Recorded { state: ReviewState },
    /// The review is not pending (any more): its state now.
    NotPending { state: ReviewState },
    /// This reviewer already decided on this review.
    AlreadyDecided,
}

/// Whether a pending review's approvals are enough, given all its decisions so far.
pub type Tally = fn(&ReviewRecord, &[DecisionRecord]) -> bool;
