//! A database that lives for one test or one bench run, on SQLite or PostgreSQL: shared by the
//! API tests (`tests/api/helpers.rs`) and the benches (`benches/loupe/main.rs`), which include
//! this file by path.

#![allow(dead_code)] // Each includer uses its own part of it.

use std::{path::Path, str::FromStr};

use loupe_server::{config::Secret, store::Store};
use sqlx::{
    ConnectOptions, Connection, Executor,
    postgres::{PgConnectOptions, PgConnection},
};
use tempfile::TempDir;

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Which backend this run of the suite tests.
pub fn backend() -> &'static str {
    match std::env::var("LOUPE_TEST_BACKEND").as_deref() {
        Ok("postgres") => "postgres",
        Ok("sqlite") | Err(_) => "sqlite",
        Ok(other) => panic!("LOUPE_TEST_BACKEND must be sqlite or postgres, not {other:?}"),
    }
}

/// A database that exists for one test: a SQLite file in a temporary folder, or a PostgreSQL
/// database created on `LOUPE_TEST_DATABASE_URL`'s server and dropped when this is dropped.
pub enum TestDatabase {
    Sqlite {
        folder: TempDir,
    },
    Postgres {
        admin: Box<PgConnectOptions>,
        /// `LOUPE_TEST_DATABASE_URL` as given: the test database's URL is it with the name
        /// changed, so what it says (or leaves unsaid, such as `sslmode`) reaches the store.
        server_url: String,
        name: String,
    },
}

impl TestDatabase {
    /// A database on the backend `LOUPE_TEST_BACKEND` names.
    pub async fn create() -> TestDatabase {
        TestDatabase::create_on(backend()).await
    }

    /// A database on `backend` (`sqlite` or `postgres`). SQLite files go in the system's
    /// temporary folder (`TMPDIR`), never inside the checkout.
    pub async fn create_on(backend: &str) -> TestDatabase {
        match backend {
            "postgres" => {
                let url = std::env::var("LOUPE_TEST_DATABASE_URL")
                    .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.into());
                let admin =
                    PgConnectOptions::from_str(&url).expect("LOUPE_TEST_DATABASE_URL parses");
                let name = format!("loupe_test_{}", uuid::Uuid::new_v4().simple());
                let template = migrated_template(&admin);
                let mut connection = PgConnection::connect_with(&admin)
                    .await
                    .expect("PostgreSQL answers at LOUPE_TEST_DATABASE_URL");
                // A copy of a migrated template: much quicker than migrating every database.
                // Copies made at once may find the template busy for a moment (SQLSTATE 55006).
                let create = format!("CREATE DATABASE {name} TEMPLATE {template}");
                let mut attempt = 0;
                while let Err(error) = connection.execute(create.as_str()).await {
                    attempt += 1;
                    let busy = error
                        .as_database_error()
                        .and_then(|error| error.code())
                        .is_some_and(|code| code == "55006");
                    assert!(busy && attempt < 100, "creating the test database: {error}");
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                TestDatabase::Postgres {
                    admin: Box::new(admin),
                    server_url: url,
                    name,
                }
            }
            _ => TestDatabase::Sqlite {
                folder: tempfile::tempdir().expect("a temporary folder"),
            },
        }
    }

    pub fn url(&self) -> String {
        match self {
            TestDatabase::Sqlite { folder } => {
                format!("sqlite://{}", folder.path().join("loupe.db").display())
            }
            TestDatabase::Postgres {
                server_url, name, ..
            } => {
                let mut url = url::Url::parse(server_url).expect("LOUPE_TEST_DATABASE_URL parses");
                url.set_path(name);
                url.to_string()
            }
        }
    }

    pub async fn open_store(&self) -> Store {
        Store::open(&Secret::new(self.url()), 4)
            .await
            .expect("the store opens")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let TestDatabase::Postgres { admin, name, .. } = self else {
            return;
        };
        let (admin, name) = (admin.as_ref().clone(), name.clone());
        // Drop runs inside the test's runtime, which cannot block on itself: use a thread.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut connection = PgConnection::connect_with(&admin).await?;
                connection
                    .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                    .await?;
                Ok::<_, sqlx::Error>(())
            })?;
            Ok::<_, anyhow::Error>(())
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("warning: could not drop test database {}", self.url());
        }
    }
}

/// The name of a PostgreSQL database holding Loupe's schema as this build's migrations make it,
/// made once (per migration set, shared by every test process) and copied for each test.
fn migrated_template(admin: &PgConnectOptions) -> String {
    static TEMPLATE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEMPLATE
        .get_or_init(|| {
            let admin = admin.clone();
            // The tests' own runtimes cannot block on this: a thread with its own runtime.
            std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime")
                    .block_on(make_template(admin))
            })
            .join()
            .expect("the template is made")
        })
        .clone()
}

async fn make_template(admin: PgConnectOptions) -> String {
    use sha2::{Digest, Sha256};
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/postgres");
    let mut files: Vec<_> = std::fs::read_dir(&folder)
        .expect("the migrations folder")
        .map(|entry| entry.expect("a migration").path())
        .collect();
    files.sort();
    let mut digest = Sha256::new();
    for file in files {
        digest.update(std::fs::read(file).expect("a migration file"));
    }
    let hash: String = digest.finalize()[..8]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let name = format!("loupe_template_{hash}");
    let mut connection = PgConnection::connect_with(&admin)
        .await
        .expect("PostgreSQL answers at LOUPE_TEST_DATABASE_URL");
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut connection)
            .await
            .expect("reading pg_database");
    if exists {
        return name;
    }
    // Migrated under a name of its own, then renamed: another process racing to make the same
    // template loses the rename and drops its copy, and nobody ever copies a half-made one.
    let building = format!("loupe_building_{}", uuid::Uuid::new_v4().simple());
    connection
        .execute(format!("CREATE DATABASE {building}").as_str())
        .await
        .expect("creating the template");
    let url = admin.clone().database(&building).to_url_lossy().to_string();
    Store::open(&Secret::new(url), 2)
        .await
        .expect("migrating the template")
        .close()
        .await;
    let renamed = connection
        .execute(format!("ALTER DATABASE {building} RENAME TO {name}").as_str())
        .await;
    if renamed.is_err() {
        let _ = connection
            .execute(format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)").as_str())
            .await;
    }
    name
}
