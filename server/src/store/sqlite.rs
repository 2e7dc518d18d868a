//! The embedded SQLite backend: a single file, WAL mode, no setup.

use std::{str::FromStr, time::Duration};

use sqlx::{
    Row,
    sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
    },
};

use super::{Backend, Instance, StoreError, StoreResult, now_us};

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
        Ok(SqliteStore { pool })
    }
}

impl Backend for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn instance(&self) -> StoreResult<Instance> {
        let inserted = sqlx::query(
            "INSERT INTO loupe_instance (singleton, instance_id, created_at_us) VALUES (1, $1, $2)
             ON CONFLICT (singleton) DO NOTHING",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(now_us())
        .execute(&self.pool)
        .await?
        .rows_affected();
        let row = sqlx::query("SELECT instance_id, created_at_us FROM loupe_instance")
            .fetch_one(&self.pool)
            .await?;
        Ok(Instance {
            id: row.try_get("instance_id")?,
            created_at_us: row.try_get("created_at_us")?,
            first_start: inserted == 1,
        })
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
