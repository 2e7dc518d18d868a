//! Loupe's storage: one interface with two implementations, SQLite (embedded, the default) and
//! PostgreSQL (for several server nodes). Handlers hold a [`Store`] and never see which one.
//!
//! Each backend implements the crate-private [`Backend`] trait, so the compiler holds both to the
//! same signatures; [`Store`] dispatches to whichever one was opened. Timestamps are stored as
//! microseconds since the Unix epoch (UTC) in a BIGINT on both backends: exact, indexable and
//! identical across them.

mod postgres;
mod sqlite;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::Secret;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0}")]
    Config(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

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

/// The operations every backend provides, with the same meaning and the same results; the
/// conformance suite in `tests/api/store.rs` runs each case against both.
pub(crate) trait Backend {
    /// One round trip to the database.
    async fn ping(&self) -> StoreResult<()>;
    /// The installation record, created on first call. Safe when several nodes start at once.
    async fn instance(&self) -> StoreResult<Instance>;
    async fn close(&self);
}

#[derive(Clone)]
enum Inner {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

/// A handle to the database, cheap to clone (it wraps a pool).
#[derive(Clone)]
pub struct Store {
    inner: Inner,
}

/// Runs `$body` with `$backend` bound to whichever implementation this store holds.
macro_rules! dispatch {
    ($self:ident, $backend:ident => $body:expr) => {
        match &$self.inner {
            Inner::Sqlite($backend) => $body,
            Inner::Postgres($backend) => $body,
        }
    };
}

impl Store {
    /// Opens the database named by `url` (`sqlite://…` or `postgres://…`) and brings its schema
    /// up to date.
    pub async fn open(url: &Secret, max_connections: u32) -> StoreResult<Store> {
        let url = url.expose();
        let inner = if url.starts_with("sqlite:") {
            Inner::Sqlite(SqliteStore::open(url, max_connections).await?)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Inner::Postgres(PostgresStore::open(url, max_connections).await?)
        } else {
            return Err(StoreError::Config(
                "DATABASE_URL must start with sqlite:// or postgres://".into(),
            ));
        };
        Ok(Store { inner })
    }

    pub fn kind(&self) -> BackendKind {
        match self.inner {
            Inner::Sqlite(_) => BackendKind::Sqlite,
            Inner::Postgres(_) => BackendKind::Postgres,
        }
    }

    /// One round trip to the database, returning how long it took.
    pub async fn ping(&self) -> StoreResult<Duration> {
        let started = std::time::Instant::now();
        dispatch!(self, backend => backend.ping().await)?;
        Ok(started.elapsed())
    }

    pub async fn instance(&self) -> StoreResult<Instance> {
        dispatch!(self, backend => backend.instance().await)
    }

    /// Waits for in-flight queries and closes every pooled connection.
    pub async fn close(&self) {
        dispatch!(self, backend => backend.close().await)
    }
}

/// Now, in the storage's time unit.
pub(crate) fn now_us() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970");
    i64::try_from(since_epoch.as_micros()).expect("microseconds fit in i64 until year 294247")
}
