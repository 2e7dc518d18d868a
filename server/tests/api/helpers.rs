//! Starting a server for a test, over a database of its own that is removed afterwards.

#[path = "../support/database.rs"]
mod database;

pub use database::{TestDatabase, backend};

use std::path::Path;

use loupe_protocol::{
    Connection as LoupeConnection, ConnectionCheck, EventKind, EventPage, NewToken, NewUser,
    OutputWindow, Role, Session, SessionEvent,
};
use loupe_server::{Config, config::Secret, identity, identity::auth::Actor, store::Store};
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::{Connection, Executor, postgres::PgConnection};
use tempfile::TempDir;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

/// The administrator every test server starts with.
pub const ADMIN_PASSWORD: &str = "admin-tundra-marble-for-tests";

/// A user made for a test, with an API token to act as them.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: String,
    pub username: String,
    pub password: String,
    pub token: String,
}

/// A running server, its database, and a client pointed at it.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    /// A second handle on the server's database, for arranging what a test needs.
    pub store: Store,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
    _static_dir: TempDir,
    // Declared last so it is dropped after the server stopped using it.
    _database: TestDatabase,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    /// Starts a server whose configuration `configure` may change first. Its static folder holds
    /// a stand-in web client: an `index.html`, one hashed asset and one plain file.
    pub async fn spawn_with(configure: impl FnOnce(&mut Config)) -> TestApp {
        let database = TestDatabase::create().await;
        let static_dir = tempfile::tempdir().expect("a temporary folder");
        write_client_files(static_dir.path());

        let mut config = Config::with_database(database.url());
        config.static_dir = static_dir.path().to_path_buf();
        config.admin_password = Some(Secret::new(ADMIN_PASSWORD.into()));
        config.data_dir = static_dir.path().join("data");
        configure(&mut config);
        // Migrate and create the administrator before the server starts, so the test's own
        // store handle and the server never race to do it.
        let store = database.open_store().await;
        identity::ensure_initial_admin(&store, config.admin_password.as_ref())
            .await
            .expect("the administrator is created");

        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let address = format!("http://{}", listener.local_addr().expect("an address"));
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(loupe_server::serve(config, listener, async {
            let _ = stopped.await;
        }));
        TestApp {
            address,
            client: reqwest::Client::new(),
            store,
            shutdown: Some(stop),
            server: Some(server),
            _static_dir: static_dir,
            _database: database,
        }
    }

    /// The server's database file, on the SQLite backend.
    pub fn database_file(&self) -> Option<std::path::PathBuf> {
        match &self._database {
            TestDatabase::Sqlite { folder } => Some(folder.path().join("loupe.db")),
            TestDatabase::Postgres { .. } => None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Runs one SQL statement on the server's database, for arranging what the API cannot
    /// (such as a time window that has already passed).
    pub async fn execute_sql(&self, statement: &str) {
        let url = self._database.url();
        if backend() == "postgres" {
            let mut connection = PgConnection::connect(&url).await.unwrap();
            connection.execute(statement).await.unwrap();
        } else {
            let mut connection = sqlx::SqliteConnection::connect(&url).await.unwrap();
            connection.execute(statement).await.unwrap();
        }
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("the server answers")
    }

    /// A request as `who` (by API token), with an optional JSON body.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        who: Option<&TestUser>,
        body: Option<serde_json::Value>,
    ) -> reqwest::Response {
        let mut request = self.client.request(method, self.url(path));
        if let Some(user) = who {
            request = request.bearer_auth(&user.token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("the server answers")
    }

    /// Logs `who` in with their password and returns the login cookie (`name=value`).
    pub async fn login_cookie(&self, who: &TestUser) -> String {
        let response = self
            .client
            .post(self.url("/api/auth/login"))
            .json(&json!({ "username": who.username, "password": who.password }))
            .send()
            .await
            .expect("the server answers");
        assert_eq!(response.status(), 200, "{} logs in", who.username);
        response.headers()[reqwest::header::SET_COOKIE]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned()
    }

    /// Opens a session recorded by `who`'s token through the ingest API, as an agent would.
    pub async fn record(&self, who: &TestUser, input: &str) -> Session {
        let body =
            json!({ "connection": "x", "connection_kind": "ssh", "type": "ssh", "input": input });
        let response = self
            .call(Method::POST, "/api/ingest/sessions", Some(who), Some(body))
            .await;
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        response.json().await.unwrap()
    }

    /// Creates a connection as `admin`; fails the test unless it was created.
    pub async fn create_connection(&self, admin: &TestUser, body: Value) -> LoupeConnection {
        let response = self
            .call(Method::POST, "/api/connections", Some(admin), Some(body))
            .await;
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        response.json().await.unwrap()
    }

    /// The administrator's Test of connection `id` (`POST /api/connections/{id}/test`; for ssh it
    /// pins the host key the first time).
    pub async fn test_connection(&self, admin: &TestUser, id: &str) -> ConnectionCheck {
        self.call(
            Method::POST,
            &format!("/api/connections/{id}/test"),
            Some(admin),
            None,
        )
        .await
        .json()
        .await
        .unwrap()
    }

    /// Runs `input` through `connection` as `who`; fails the test unless it started.
    pub async fn run(&self, who: &TestUser, connection: &str, input: &str) -> Session {
        let body = json!({ "connection": connection, "input": input });
        let response = self
            .call(Method::POST, "/api/sessions", Some(who), Some(body))
            .await;
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        response.json().await.unwrap()
    }

    /// Waits (60 s at most) until session `id` has ended, and returns it.
    pub async fn ended(&self, who: &TestUser, id: &str) -> Session {
        for _ in 0..3000 {
            let session: Session = self
                .call(Method::GET, &format!("/api/sessions/{id}"), Some(who), None)
                .await
                .json()
                .await
                .unwrap();
            if session.status.is_final() {
                return session;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("session {id} did not end");
    }

    /// Session `id`'s activity log (its first 100 events).
    pub async fn events(&self, who: &TestUser, id: &str) -> Vec<SessionEvent> {
        let page: EventPage = self
            .get_json(who, &format!("/api/sessions/{id}/events"))
            .await;
        page.items
    }

    /// The text of all of session `id`'s output events (up to 1 MiB each).
    pub async fn output_text(&self, who: &TestUser, id: &str) -> String {
        let mut text = String::new();
        for event in self.events(who, id).await {
            if event.kind == EventKind::Output {
                text.push_str(&self.event_output(who, id, event.seq).await);
            }
        }
        text
    }

    /// The text of output event `seq` of session `id` (up to 1 MiB).
    pub async fn event_output(&self, who: &TestUser, id: &str, seq: u64) -> String {
        let path = format!("/api/sessions/{id}/events/{seq}/output?length=1048576");
        let window: OutputWindow = self.get_json(who, &path).await;
        window.pieces.into_iter().map(|piece| piece.text).collect()
    }

    /// `GET path` as `who`, its JSON answer read as `T`.
    pub async fn get_json<T: serde::de::DeserializeOwned>(&self, who: &TestUser, path: &str) -> T {
        self.call(Method::GET, path, Some(who), None)
            .await
            .json()
            .await
            .unwrap()
    }

    /// Creates a user with `role` and an API token for them.
    pub async fn user(&self, username: &str, role: Role) -> TestUser {
        let actor = Actor::command_line();
        // Strong enough for zxcvbn, which a plain "{username}-password" is not.
        let password = format!("{username}-plover-anvil-quince");
        let new = NewUser {
            username: username.into(),
            display_name: None,
            role,
            password: password.clone(),
        };
        let user = identity::create_user(&self.store, &actor, &new)
            .await
            .expect("user created");
        let record = self.store.user_by_id(&user.id).await.unwrap();
        let token = NewToken {
            name: "tests".into(),
            expires_in_days: None,
        };
        let created = identity::create_token(&self.store, &actor, &record, &token)
            .await
            .unwrap();
        TestUser {
            id: user.id,
            username: user.username,
            password,
            token: created.secret,
        }
    }

    /// The administrator created at start, with a token.
    pub async fn admin(&self) -> TestUser {
        let record = self
            .store
            .user_by_username("admin")
            .await
            .unwrap()
            .expect("admin exists");
        let token = NewToken {
            name: "tests".into(),
            expires_in_days: None,
        };
        let created = identity::create_token(&self.store, &Actor::command_line(), &record, &token)
            .await
            .unwrap();
        TestUser {
            id: record.id,
            username: record.username,
            password: ADMIN_PASSWORD.into(),
            token: created.secret,
        }
    }
    /// Asks the server to shut down gracefully and waits until it has.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.shutdown.take() {
            let _ = stop.send(());
        }
        match self.server.take() {
            Some(server) => server.await?,
            None => Ok(()),
        }
    }
}

pub const INDEX_MARKER: &str = "<title>Loupe test client</title>";

fn write_client_files(dir: &Path) {
    std::fs::write(
        dir.join("index.html"),
        format!("<!doctype html>{INDEX_MARKER}"),
    )
    .unwrap();
    std::fs::write(dir.join("app-0123456789abcdef.js"), "export default 1;").unwrap();
    std::fs::write(
        dir.join("favicon.svg"),
        "<svg xmlns='http://www.w3.org/2000/svg'/>",
    )
    .unwrap();
}
