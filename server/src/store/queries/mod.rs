//! The SQL both backends share, written once. SQLite and PostgreSQL agree on everything used
//! here (`$n` parameters, `ON CONFLICT`, `RETURNING`), so `shared_queries!` expands the same
//! method bodies into `impl SqliteStore` and `impl PostgresStore`, each typed for its own pool.
//! Anything that differs between them lives in that backend's own file instead.
//! One file per domain; each holds a macro of that domain's queries, and `shared_queries!`
//! expands them all.

mod audit;
mod connections;
mod identity;
mod keyframes;
mod recording;
mod reviews;
mod sessions;
mod shares;
mod ssh_keys;

pub(crate) use self::{
    audit::audit_queries, connections::connections_queries, identity::identity_queries,
    keyframes::keyframes_queries, recording::recording_queries, reviews::reviews_queries,
    sessions::sessions_queries, shares::shares_queries, ssh_keys::ssh_keys_queries,
};

/// Every shared query, for one backend: `shared_queries!(SqliteStore, sqlx::Sqlite)`.
macro_rules! shared_queries {
    ($store:ty, $db:ty) => {
        impl $store {
            pub async fn ping(&self) -> StoreResult<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            pub async fn instance(&self) -> StoreResult<Instance> {
                let inserted = sqlx::query(
                    "INSERT INTO loupe_instance (singleton, instance_id, created_at_us)
                     VALUES (1, $1, $2) ON CONFLICT (singleton) DO NOTHING",
                )
                .bind(uuid::Uuid::now_v7().to_string())
                .bind(now_us())
                .execute(&self.pool)
                .await?
                .rows_affected();
                let (id, created_at_us): (String, i64) =
                    sqlx::query_as("SELECT instance_id, created_at_us FROM loupe_instance")
                        .fetch_one(&self.pool)
                        .await?;
                Ok(Instance {
                    id,
                    created_at_us,
                    first_start: inserted == 1,
                })
            }

            pub async fn close(&self) {
                self.pool.close().await;
            }
        }

        $crate::store::queries::identity_queries!($store, $db);
        $crate::store::queries::audit_queries!($store, $db);
        $crate::store::queries::sessions_queries!($store, $db);
        $crate::store::queries::recording_queries!($store, $db);
        $crate::store::queries::keyframes_queries!($store, $db);
        $crate::store::queries::ssh_keys_queries!($store, $db);
        $crate::store::queries::connections_queries!($store, $db);
        $crate::store::queries::reviews_queries!($store, $db);
        $crate::store::queries::shares_queries!($store, $db);
    };
}

pub(crate) use shared_queries;
