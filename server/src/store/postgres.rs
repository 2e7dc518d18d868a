//! The PostgreSQL backend, for running several Loupe nodes on one database.

use std::{str::FromStr, time::Duration};

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::{queries::shared_queries, *};

#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    pub async fn open(url: &str, max_connections: u32) -> StoreResult<PostgresStore> {
        let options = PgConnectOptions::from_str(url)?;
        // Say where we tried to connect without echoing the URL, which may carry a password.
        let target = format!(
            "{}:{}/{}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or("(default database)")
        );
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(|error| {
                StoreError::Config(format!("cannot connect to PostgreSQL at {target}: {error}"))
            })?;
        sqlx::migrate!("migrations/postgres").run(&pool).await?;
        Ok(PostgresStore { pool })
    }
}

/// The `LISTEN/NOTIFY` channel server nodes tell each other about live changes on; what they say
/// is the live hub's business, the store only carries it.
pub const LIVE_CHANNEL: &str = "loupe_live";

impl PostgresStore {
    pub async fn notify_live(&self, payload: &str) -> StoreResult<()> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(LIVE_CHANNEL)
            .bind(payload)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn listen_live(&self) -> StoreResult<sqlx::postgres::PgListener> {
        let mut listener = sqlx::postgres::PgListener::connect_with(&self.pool).await?;
        listener.listen(LIVE_CHANNEL).await?;
        Ok(listener)
    }
}

shared_queries!(PostgresStore, sqlx::Postgres);
