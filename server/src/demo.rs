//! The demo for new users (`LOUPE_DEMO`, on with `cargo xtask run`): a SQLite database with an
//! `orders` table of a million rows, generated once into the data folder, and a read-only
//! `demo` connection to it, so a newcomer can run a query and see a large result at once.

use std::path::Path;

use anyhow::Context;
use loupe_protocol::{ConnectionKind, NewConnection};
use sqlx::{ConnectOptions, Connection, Executor, sqlite::SqliteConnectOptions};

use crate::{connections, gateway::Gateway, identity::auth::Actor, store::Store};

const ROWS: u32 = 1_000_000;

pub async fn ensure(store: &Store, gateway: &Gateway, data_dir: &Path) -> anyhow::Result<()> {
    if store.connection("demo").await?.is_some() {
        return Ok(());
    }
    let path = data_dir.join("demo.db");
    if !path.exists() {
        tracing::info!(path = %path.display(), rows = ROWS, "generating the demo database");
        generate(&path).await?;
    }
    let absolute = std::fs::canonicalize(&path)?;
    let new = NewConnection {
        name: "demo".into(),
        kind: ConnectionKind::Sqlite,
        session_type: None,
        url: Some(format!("sqlite://{}?mode=ro", absolute.display())),
        command: None,
        ssh: None,
        record_input: None,
        timeout_seconds: None,
        tags: vec!["demo".into()],
        review: None,
    };
    connections::create(gateway, &Actor::command_line(), &new)
        .await
        .map_err(|error| anyhow::anyhow!("creating the demo connection: {}", error.message()))?;
    Ok(())
}

/// Builds the database under a temporary name and renames it into place, so an interrupted
/// start never leaves half a demo behind.
async fn generate(path: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(path.parent().context("the demo database has a folder")?)?;
    let partial = path.with_extension("db.partial");
    let _ = std::fs::remove_file(&partial);
    let mut connection = SqliteConnectOptions::new()
        .filename(&partial)
        .create_if_missing(true)
        // Filling a million rows takes a second: that is the work, not a slow statement to
        // warn a newcomer about on their first start.
        .disable_statement_logging()
        .connect()
        .await?;
    connection
        .execute(
            format!(
                "CREATE TABLE orders (
                     id         INTEGER PRIMARY KEY,
                     customer   TEXT NOT NULL,
                     country    TEXT,
                     amount     REAL NOT NULL,
                     status     TEXT NOT NULL,
                     created_at TEXT NOT NULL
                 );
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {ROWS})
                 INSERT INTO orders
                 SELECT i,
                        'customer-' || (i * 7919 % 5000),
                        CASE i % 9 WHEN 0 THEN NULL WHEN 1 THEN 'DE' WHEN 2 THEN 'FR' WHEN 3 THEN 'US'
                                   WHEN 4 THEN 'JP' WHEN 5 THEN 'BR' WHEN 6 THEN 'IN' WHEN 7 THEN 'NG' ELSE 'GB' END,
                        round((i * 7919 % 100000) / 100.0, 2),
                        CASE i % 10 WHEN 0 THEN 'refunded' WHEN 1 THEN 'pending' ELSE 'paid' END,
                        datetime(1700000000 + i * 60, 'unixepoch')
                 FROM n;"
            )
            .as_str(),
        )
        .await?;
    connection.close().await?;
    std::fs::rename(&partial, path)?;
    Ok(())
}
