//! Loupe's storage: one interface with two implementations, SQLite (embedded, the default) and
//! PostgreSQL (for several server nodes). Handlers hold a [`Store`] and never see which one.
//!
//! The SQL the backends share is written once (`queries/`, a file per domain) and compiled for each; [`Store`]
//! forwards to whichever backend was opened, which also makes the compiler hold both to the same
//! signatures. Timestamps are BIGINT microseconds since the Unix epoch (UTC) on both backends:
//! exact, indexable and identical across them.

mod batch;
mod postgres;
mod queries;
pub mod records;
mod sqlite;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::Secret;

pub use postgres::PostgresStore;
pub use records::*;
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0}")]
    Config(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A unique-constraint violation becomes a [`StoreError::Conflict`] saying what collided.
fn on_unique(error: sqlx::Error, what: &str) -> StoreError {
    match &error {
        sqlx::Error::Database(database) if database.is_unique_violation() => {
            StoreError::Conflict(what.to_owned())
        }
        _ => StoreError::Database(error),
    }
}

/// Column lists shared by the queries that read whole records.
const USER_COLUMNS: &str =
    "id, username, display_name, role, disabled, password_hash, created_at_us";
const USER_COLUMNS_OF_U: &str =
    "u.id, u.username, u.display_name, u.role, u.disabled, u.password_hash, u.created_at_us";
const GROUP_COLUMNS: &str = "id, name, description, created_at_us";
const SESSION_COLUMNS: &str = "s.id, s.user_id, s.username, u.display_name, s.connection_id,
    s.connection_name, s.connection_kind, s.session_type, s.verb, s.status, s.summary,
    s.started_at_us, s.ended_at_us, s.exit_code, s.event_count, s.input_bytes, s.output_bytes,
    s.row_count, s.labels, s.rerun_of, s.truncated, s.error, s.agent_token_id, s.agent_name";
const EVENT_COLUMNS: &str =
    "seq, at_us, kind, summary, body, code, exit_code, columns, bytes, row_count";

/// No output chunk is longer than this, so the chunk holding byte N starts after N - 64 KiB.
pub const MAX_CHUNK_BYTES: usize = 64 * 1024;
/// No row page holds more rows than this; see [`MAX_CHUNK_BYTES`].
pub const MAX_PAGE_ROWS: usize = 1000;

const CONNECTION_COLUMNS: &str =
    "id, name, kind, session_type, command, secret, timeout_seconds, tags, review, terminal,
    created_at_us";
const REVIEW_COLUMNS: &str = "id, kind, state, connection_id, connection_name, connection_kind,
    requester_id, reason, input, session_id, access_seconds, rules, created_at_us, expires_at_us,
    decided_at_us, access_until_us, closed_at_us, closed_by, closing_note";
const TOKEN_COLUMNS: &str =
    "id, user_id, name, prefix, created_at_us, expires_at_us, last_used_at_us, revoked_at_us";

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Sqlite,
    Postgres,
}

impl BackendKind {
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Sqlite => "sqlite",
            BackendKind::Postgres => "postgres",
        }
    }
}

/// This installation, as recorded by the first server that started on the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub id: String,
    pub created_at_us: i64,
    /// True for the one call that created the record: the very first start on this database.
    pub first_start: bool,
}

#[derive(Clone)]
enum Backend {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

/// A handle to the database, cheap to clone (it wraps a pool).
#[derive(Clone)]
pub struct Store {
    backend: Backend,
}

/// Defines `Store` methods that forward to the same method of whichever backend is open.
macro_rules! forward {
    ($( $(#[$doc:meta])* pub async fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty; )*) => {
        impl Store {
            $(
                $(#[$doc])*
                pub async fn $name(&self $(, $arg: $ty)*) -> $ret {
                    match &self.backend {
                        Backend::Sqlite(store) => store.$name($($arg),*).await,
                        Backend::Postgres(store) => store.$name($($arg),*).await,
                    }
                }
            )*
        }
    };
}

forward! {
    /// The installation record, created on first call. Safe when several nodes start at once.
    pub async fn instance(&self) -> StoreResult<Instance>;
    /// Waits for in-flight queries and closes every pooled connection.
    pub async fn close(&self) -> ();

    pub async fn create_user(&self, user: &UserRecord) -> StoreResult<()>;
    pub async fn user_by_id(&self, id: &str) -> StoreResult<UserRecord>;
    pub async fn user_by_username(&self, username: &str) -> StoreResult<Option<UserRecord>>;
    pub async fn list_users(&self) -> StoreResult<Vec<UserRecord>>;
    pub async fn count_users(&self) -> StoreResult<i64>;
    pub async fn update_user(&self, id: &str, update: &UserUpdate) -> StoreResult<()>;

    pub async fn create_group(&self, group: &GroupRecord) -> StoreResult<()>;
    pub async fn group_by_id(&self, id: &str) -> StoreResult<GroupRecord>;
    pub async fn group_by_name(&self, name: &str) -> StoreResult<Option<GroupRecord>>;
    pub async fn list_groups(&self) -> StoreResult<Vec<GroupRecord>>;
    pub async fn update_group(&self, id: &str, name: Option<&str>, description: Option<&str>) -> StoreResult<()>;
    pub async fn delete_group(&self, id: &str) -> StoreResult<()>;
    pub async fn add_group_member(&self, group_id: &str, user_id: &str) -> StoreResult<bool>;
    pub async fn remove_group_member(&self, group_id: &str, user_id: &str) -> StoreResult<bool>;
    pub async fn memberships(&self, group_id: Option<&str>, user_id: Option<&str>) -> StoreResult<Vec<MembershipRecord>>;

    pub async fn create_login_session(&self, token_hash: &str, user_id: &str, expires_at_us: i64) -> StoreResult<()>;
    pub async fn login_session_user(&self, token_hash: &str) -> StoreResult<Option<UserRecord>>;
    pub async fn delete_login_session(&self, token_hash: &str) -> StoreResult<()>;
    pub async fn delete_login_sessions_of(&self, user_id: &str) -> StoreResult<()>;
    pub async fn purge_expired_logins(&self) -> StoreResult<()>;

    pub async fn create_token(&self, token: &TokenRecord, token_hash: &str) -> StoreResult<()>;
    pub async fn list_tokens(&self, user_id: &str) -> StoreResult<Vec<TokenRecord>>;
    pub async fn token_by_id(&self, id: &str) -> StoreResult<TokenRecord>;
    pub async fn token_user(&self, token_hash: &str) -> StoreResult<Option<(TokenRecord, UserRecord)>>;
    pub async fn touch_token(&self, id: &str) -> StoreResult<()>;
    pub async fn revoke_token(&self, id: &str) -> StoreResult<bool>;
    /// Revokes every live API token of a user; returns how many.
    pub async fn revoke_tokens_of(&self, user_id: &str) -> StoreResult<u64>;

    pub async fn record_audit(&self, event: &NewAuditEvent) -> StoreResult<()>;
    pub async fn list_audit(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditRecord>>;
    pub async fn audit_actions(&self) -> StoreResult<Vec<String>>;

    pub async fn create_session(&self, session: &NewSessionRecord) -> StoreResult<()>;
    pub async fn session(&self, id: &str) -> StoreResult<Option<SessionRecord>>;
    pub async fn session_input(&self, id: &str) -> StoreResult<Option<String>>;
    pub async fn list_sessions(&self, filter: &SessionFilter, limit: u32) -> StoreResult<Vec<SessionRecord>>;
    pub async fn explain_list_sessions(&self, filter: &SessionFilter, limit: u32) -> StoreResult<Vec<String>>;
    pub async fn count_sessions(&self, filter: &SessionFilter, cap: u32) -> StoreResult<i64>;
    pub async fn session_events(&self, session_id: &str, after: i64, limit: u32) -> StoreResult<Vec<EventRecord>>;
    pub async fn event(&self, session_id: &str, seq: i64) -> StoreResult<Option<EventRecord>>;
    pub async fn output_chunks(&self, session_id: &str, seq: i64, start: i64, end: i64) -> StoreResult<Vec<ChunkRecord>>;
    pub async fn row_pages(&self, session_id: &str, seq: i64, start: i64, end: i64) -> StoreResult<Vec<RowPageRecord>>;
    pub async fn insert_keyframe(&self, session_id: &str, keyframe: &KeyframeRecord) -> StoreResult<()>;
    pub async fn keyframe_before(&self, session_id: &str, seq: i64, at_us: i64, within: i64) -> StoreResult<Option<KeyframeRecord>>;
    pub async fn keyframe_totals(&self, session_id: &str) -> StoreResult<(i64, i64)>;

    pub async fn create_ssh_key(&self, key: &SshKeyRecord) -> StoreResult<()>;
    pub async fn list_ssh_keys(&self, user_id: &str) -> StoreResult<Vec<SshKeyRecord>>;
    pub async fn delete_ssh_key(&self, user_id: &str, id: &str) -> StoreResult<bool>;
    pub async fn ssh_key_by_fingerprint(&self, fingerprint: &str) -> StoreResult<Option<SshKeyRecord>>;
    pub async fn session_write_state(&self, session_id: &str) -> StoreResult<Option<SessionWriteState>>;
    pub async fn write_batch(&self, ops: &[WriteOp]) -> StoreResult<()>;
    pub async fn interrupt_running(&self, node_id: &str, reason: &str) -> StoreResult<u64>;
    /// Stores the process group (and its leader's start time) a session's program runs in.
    pub async fn set_session_program(&self, session_id: &str, group: i64, started: i64) -> StoreResult<()>;
    pub async fn left_running_programs(&self, node_id: &str) -> StoreResult<Vec<(String, i64, i64)>>;
    pub async fn interrupt_session(&self, id: &str, reason: &str) -> StoreResult<()>;

    pub async fn create_connection(&self, connection: &ConnectionRecord) -> StoreResult<()>;
    pub async fn connection(&self, id_or_name: &str) -> StoreResult<Option<ConnectionRecord>>;
    pub async fn list_connections(&self) -> StoreResult<Vec<ConnectionRecord>>;
    pub async fn update_connection(&self, connection: &ConnectionRecord) -> StoreResult<()>;
    pub async fn delete_connection(&self, id: &str) -> StoreResult<()>;

    pub async fn create_review(&self, review: &ReviewRecord, reviewer_groups: &[String]) -> StoreResult<()>;
    pub async fn review(&self, id: &str) -> StoreResult<Option<ReviewRecord>>;
    pub async fn review_decisions(&self, review_id: &str) -> StoreResult<Vec<DecisionRecord>>;
    pub async fn list_reviews(&self, filter: &ReviewFilter) -> StoreResult<Vec<ReviewRecord>>;
    pub async fn count_waiting_reviews(&self, user_id: &str, group_ids: &[String]) -> StoreResult<i64>;
    pub async fn decide_review(&self, decision: &DecisionRecord, tally: Tally) -> StoreResult<DecideOutcome>;
    pub async fn move_review(&self, id: &str, from: &str, to: &str, by: Option<&str>, note: Option<&str>) -> StoreResult<bool>;
    pub async fn due_reviews(&self, now: i64) -> StoreResult<Vec<ReviewRecord>>;
    pub async fn active_access(&self, connection_id: &str, user_id: &str) -> StoreResult<Option<ReviewRecord>>;
    pub async fn begin_reviewed_session(&self, session_id: &str, node_id: &str) -> StoreResult<bool>;

    pub async fn create_shares(&self, shares: &[ShareRecord]) -> StoreResult<()>;
    pub async fn list_shares(&self, session_id: &str) -> StoreResult<Vec<ShareRecord>>;
    pub async fn revoke_share(&self, session_id: &str, share_id: &str) -> StoreResult<bool>;
    pub async fn is_shared_with(&self, session_id: &str, user_id: &str, group_ids: &[String]) -> StoreResult<bool>;
    /// Whether one of `group_ids` reviews a command held as this session.
    pub async fn reviews_session(&self, session_id: &str, group_ids: &[String]) -> StoreResult<bool>;
}

impl Store {
    /// Opens the database named by `url` (`sqlite://…` or `postgres://…`) and brings its schema
    /// up to date.
    pub async fn open(url: &Secret, max_connections: u32) -> StoreResult<Store> {
        let url = url.expose();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite(SqliteStore::open(url, max_connections).await?)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres(PostgresStore::open(url, max_connections).await?)
        } else {
            return Err(StoreError::Config(
                "DATABASE_URL must start with sqlite:// or postgres://".into(),
            ));
        };
        Ok(Store { backend })
    }

    pub fn kind(&self) -> BackendKind {
        match self.backend {
            Backend::Sqlite(_) => BackendKind::Sqlite,
            Backend::Postgres(_) => BackendKind::Postgres,
        }
    }

    /// Keeps the query planner's statistics fresh: SQLite's are refreshed here (and at open);
    /// PostgreSQL's autovacuum does its own.
    pub async fn refresh_statistics(&self) -> StoreResult<()> {
        match &self.backend {
            Backend::Sqlite(store) => store.refresh_statistics().await,
            Backend::Postgres(_) => Ok(()),
        }
    }

    /// Whether several nodes may share this database, so live changes must be relayed.
    pub fn relays_live(&self) -> bool {
        self.kind() == BackendKind::Postgres
    }

    /// Tells the other nodes about a change (PostgreSQL `NOTIFY`; nothing on SQLite).
    pub async fn notify_live(&self, payload: &str) -> StoreResult<()> {
        match &self.backend {
            Backend::Sqlite(_) => Ok(()),
            Backend::Postgres(store) => store.notify_live(payload).await,
        }
    }

    /// Hears the other nodes' changes (PostgreSQL only).
    pub async fn listen_live(&self) -> StoreResult<sqlx::postgres::PgListener> {
        match &self.backend {
            Backend::Sqlite(_) => Err(StoreError::Config(
                "SQLite has a single node; nothing to listen to".into(),
            )),
            Backend::Postgres(store) => store.listen_live().await,
        }
    }

    /// One round trip to the database, returning how long it took.
    pub async fn ping(&self) -> StoreResult<Duration> {
        let started = std::time::Instant::now();
        match &self.backend {
            Backend::Sqlite(store) => store.ping().await?,
            Backend::Postgres(store) => store.ping().await?,
        }
        Ok(started.elapsed())
    }
}

/// Now, in the storage's time unit.
pub fn now_us() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970");
    i64::try_from(since_epoch.as_micros()).expect("microseconds fit in i64 until year 294247")
}
