//! The PostgreSQL backend, for running several Loupe nodes on one database.

use std::{str::FromStr, time::Duration};

use sqlx::{
    Row,
    postgres::{PgConnectOptions, PgPool, PgPoolOptions},
};

use super::{Backend, Instance, StoreError, StoreResult, now_us};

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

impl Backend for PostgresStore {
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
