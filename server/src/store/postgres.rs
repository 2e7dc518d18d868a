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
        let options = clear_on_loopback(
            PgConnectOptions::from_str(url)?,
            url,
            std::env::var_os("PGSSLMODE").is_some(),
        );
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

/// Loupe's own database on this machine is reached in clear text unless the URL (or
/// `PGSSLMODE`: `by_environment`) names a TLS mode: on loopback TLS protects nothing and costs
/// every byte an encryption and a decryption (`bench download`: a 1 GiB txt from the store at
/// 0.41-0.48x of the same file served statically over TLS, 0.59-0.64x without). Elsewhere
/// libpq's default, `prefer`.
fn clear_on_loopback(
    options: PgConnectOptions,
    url: &str,
    by_environment: bool,
) -> PgConnectOptions {
    let named = by_environment
        || url::Url::parse(url).is_ok_and(|url| {
            url.query_pairs()
                .any(|(name, _)| matches!(name.as_ref(), "sslmode" | "ssl-mode"))
        });
    let loopback = matches!(
        options.get_host(),
        "localhost" | "127.0.0.1" | "::1" | "[::1]"
    ) || options.get_host().starts_with('/');
    if loopback && !named {
        options.ssl_mode(sqlx::postgres::PgSslMode::Disable)
    } else {
        options
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_on_loopback_is_reached_in_clear_unless_a_mode_is_named() {
        use sqlx::postgres::PgSslMode;
        let mode = |url: &str, by_environment: bool| {
            let mut options = PgConnectOptions::from_str(url).unwrap();
            if !url.contains("sslmode=") {
                // Whatever PGSSLMODE the test runs under is not what these compare.
                options = options.ssl_mode(PgSslMode::Prefer);
            }
            clear_on_loopback(options, url, by_environment).get_ssl_mode()
        };
        assert!(matches!(
            mode("postgres://loupe@127.0.0.1/loupe", false),
            PgSslMode::Disable
        ));
        assert!(matches!(
            mode("postgres://loupe@localhost:5433/loupe", false),
            PgSslMode::Disable
        ));
        assert!(matches!(
            mode("postgres://loupe@[::1]/loupe", false),
            PgSslMode::Disable
        ));
        // Named by the environment (PGSSLMODE) or the URL, or not on loopback: left as it is.
        assert!(matches!(
            mode("postgres://loupe@127.0.0.1/loupe", true),
            PgSslMode::Prefer
        ));
        assert!(matches!(
            mode("postgres://loupe@db.internal/loupe", false),
            PgSslMode::Prefer
        ));
        assert!(matches!(
            mode("postgres://loupe@127.0.0.1/loupe?sslmode=require", false),
            PgSslMode::Require
        ));
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
