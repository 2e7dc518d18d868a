//! What the browser app must know about the server before it draws anything.

use serde::{Deserialize, Serialize};

/// `GET /api/settings`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Settings {
    /// The server's version, shown in the app's footer.
    pub version: String,
    /// `DISABLE_SESSIONS_DOWNLOAD`: when true every download path answers 403 and the app hides
    /// the download action and says why.
    pub downloads_disabled: bool,
    /// How many bytes of an output the session page fetches at a time.
    pub preview_bytes: u32,
    /// How many rows of a result set the session page fetches at a time.
    pub preview_rows: u32,
    /// Where database clients connect through Loupe, as `host:port`; none where a listener is
    /// off (`LOUPE_PG_BIND`, `LOUPE_MYSQL_BIND`).
    #[serde(default)]
    pub listeners: Listeners,
}

/// The wire-protocol listeners' addresses, as clients should dial them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Listeners {
    /// PostgreSQL clients (`psql "host=… port=…"`).
    pub postgres: Option<String>,
    /// MySQL and MariaDB clients (`mysql -h … -P …`).
    pub mysql: Option<String>,
    /// SHA-256 of the certificate both listeners offer TLS with (`AB:CD:…`), for clients that
    /// pin it; none when no listener is on.
    pub tls_fingerprint: Option<String>,
    /// SSH clients (`ssh -p … user+connection@…`).
    #[serde(default)]
    pub ssh: Option<String>,
    /// The SSH listener's host key fingerprint (`SHA256:…`), for people to check when `ssh`
    /// first asks.
    #[serde(default)]
    pub ssh_host_key: Option<String>,
}

/// `GET /healthz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Health {
    /// `ok` when the database answered.
    pub status: String,
    /// `sqlite` or `postgres`.
    pub database: String,
    /// The database round trip, in microseconds.
    pub database_latency_us: u64,
}
