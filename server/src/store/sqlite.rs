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
        if let Some(folder) = options.get_filename().parent()
            && !folder.as_os_str().is_empty()
        {
            std::fs::create_dir_all(folder).map_err(|error| {
                StoreError::Config(format!(
                    "cannot create the data folder {}: {error}",
                    folder.display()
                ))
            })?;
        }
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
