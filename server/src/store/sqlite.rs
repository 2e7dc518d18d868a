//! The embedded SQLite backend: a single file, WAL mode, no setup.

use std::{str::FromStr, time::Duration};

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::{queries::shared_queries, *};

#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    pub async fn open(url: &str, max_connections: u32) -> StoreResult<SqliteStore> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            // WAL lets readers proceed while the writer appends; NORMAL sync is durable across
            // process crashes (the guarantee Loupe gives), only a power cut can lose the tail.
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        make_private(options.get_filename()).map_err(|error| {
            StoreError::Config(format!(
                "cannot prepare the database file {}: {error}",
                options.get_filename().display()
            ))
        })?;
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .connect_with(options)
            .await?;
        sqlx::migrate!("migrations/sqlite").run(&pool).await?;
        let store = SqliteStore { pool };
        store.refresh_statistics().await?;
        Ok(store)
    }

    /// Brings the query planner's statistics up to date where tables changed a lot. The session
    /// list's index choice depends on them; PostgreSQL's autovacuum does the same on its own.
    /// 0x10002 also caps the work per table, so it is cheap enough to run at start and hourly.
    pub async fn refresh_statistics(&self) -> StoreResult<()> {
        sqlx::query("PRAGMA optimize=0x10002")
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

shared_queries!(SqliteStore, sqlx::Sqlite);

/// Creates the database's folder (0700) and file (0600) readable by Loupe's user only, and
/// tightens them when they exist: the file holds password hashes, token digests and every
/// session's output. SQLite gives its `-wal` and `-shm` files the database file's permissions.
fn make_private(file: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    if file.as_os_str() == ":memory:" {
        return Ok(());
    }
    if let Some(folder) = file.parent()
        && !folder.as_os_str().is_empty()
        && !folder.exists()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(folder)?;
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
    {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            for suffix in ["", "-wal", "-shm"] {
                let path = format!("{}{suffix}", file.display());
                if std::path::Path::new(&path).exists() {
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
                }
            }
            Ok(())
        }
        Err(error) => Err(error),
    }
}
