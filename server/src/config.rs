//! Loupe's configuration: one struct, read from flags and the environment, each field saying its
//! default. `loupe serve --help` prints the same text.

use std::{fmt, net::SocketAddr, path::PathBuf, str::FromStr};

use clap::{Args, ValueEnum, builder::BoolishValueParser};

/// Where Loupe keeps its data unless told otherwise.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/loupe.db";

#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address and port the HTTP server listens on. Default: 127.0.0.1:3000.
    #[arg(long, env = "LOUPE_BIND", default_value = "127.0.0.1:3000")]
    pub bind: SocketAddr,

    /// Where Loupe keeps its own data: `sqlite://PATH` (embedded, the default; the file and its
    /// folder are created) or `postgres://…` for several server nodes sharing one database.
    /// Default: sqlite://data/loupe.db.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub database_url: Secret,

    /// Largest number of pooled connections to the database. Default: 16.
    #[arg(long, env = "LOUPE_DATABASE_MAX_CONNECTIONS", default_value_t = 16)]
    pub database_max_connections: u32,

    /// Folder holding the built web client (Trunk's output). Default: dist.
    #[arg(long, env = "LOUPE_STATIC_DIR", default_value = "dist")]
    pub static_dir: PathBuf,

    /// When true, every download path answers 403 `downloads_disabled` and the app hides the
    /// download action. Accepts true/false, yes/no, on/off, 1/0. Default: false.
    #[arg(long, env = "DISABLE_SESSIONS_DOWNLOAD", default_value = "false",
          value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub disable_sessions_download: bool,

    /// Bytes of output the session page fetches at a time (the app keeps it within 4 KiB to
    /// 1 MiB). Default: 65536.
    #[arg(long, env = "LOUPE_PREVIEW_BYTES", default_value_t = 65_536)]
    pub preview_bytes: u32,

    /// Rows of a result set the session page fetches at a time (the app keeps it within 20 to
    /// 1000). Default: 200.
    #[arg(long, env = "LOUPE_PREVIEW_ROWS", default_value_t = 200)]
    pub preview_rows: u32,

    /// This server's name among several sharing one database; it marks its own running sessions
    /// interrupted when it starts again after dying, so each node needs a distinct one.
    /// Default: the machine's hostname.
    #[arg(long, env = "LOUPE_NODE_ID")]
    pub node_id: Option<String>,

    /// Most output stored per session, in bytes; past it storing stops and the session is marked
    /// truncated. Default: 2147483648 (2 GiB).
    #[arg(long, env = "LOUPE_MAX_OUTPUT_BYTES", default_value_t = 2 * 1024 * 1024 * 1024)]
    pub max_output_bytes: u64,

    /// Appends waiting for the recorder before producers are slowed down. Default: 4096.
    #[arg(long, env = "LOUPE_RECORDER_QUEUE", default_value_t = 4096)]
    pub recorder_queue: usize,

    /// Folder for Loupe's own files besides the database: the generated `secret.key` and the
    /// demo database. Default: data.
    #[arg(long, env = "LOUPE_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// 64 hex digits: the key that encrypts connection URLs at rest. When unset, a key is
    /// generated into `<data dir>/secret.key` on first use. Default: unset.
    #[arg(long, env = "LOUPE_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<Secret>,

    /// Longest a SQL statement may run, in seconds, unless its connection says otherwise.
    /// Default: 300.
    #[arg(long, env = "LOUPE_STATEMENT_TIMEOUT", default_value_t = 300)]
    pub statement_timeout: u64,

    /// Longest a command may run, in seconds, unless its connection says otherwise.
    /// Default: 3600.
    #[arg(long, env = "LOUPE_COMMAND_TIMEOUT", default_value_t = 3600)]
    pub command_timeout: u64,

    /// On start, offer a `demo` connection to a generated SQLite database with a table of a
    /// million rows (created once, in the data folder). Default: false; `cargo xtask run` turns
    /// it on.
    #[arg(long, env = "LOUPE_DEMO", default_value = "false",
          value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub demo: bool,

    /// Where PostgreSQL clients (psql, drivers) connect to reach PostgreSQL connections through
    /// Loupe, e.g. `127.0.0.1:6432`; unset, no such listener. TLS is offered; off loopback it is
    /// required.
    #[arg(long, env = "LOUPE_PG_BIND")]
    pub pg_bind: Option<String>,

    /// Where MySQL and MariaDB clients (mysql, drivers) connect to reach MySQL connections
    /// through Loupe, e.g. `127.0.0.1:3307`; unset, no such listener. TLS is offered; off loopback
    /// it is required.
    #[arg(long, env = "LOUPE_MYSQL_BIND")]
    pub mysql_bind: Option<String>,

    /// Where SSH clients connect to open terminals through Loupe (`ssh -p 2222
    /// alice+web-1@loupe-host`, with a key registered on the user's profile), e.g.
    /// `127.0.0.1:2222`; unset, no such listener. Its host key is generated into the data folder
    /// on first start (`ssh_host_ed25519_key`) and its fingerprint logged.
    #[arg(long, env = "LOUPE_SSH_BIND")]
    pub ssh_bind: Option<String>,

    /// The address people open Loupe at, e.g. `https://loupe.example.com`: links Loupe gives
    /// outside the browser (where a held statement's review is) start with it. Default:
    /// `http://` and `LOUPE_BIND`.
    #[arg(long, env = "LOUPE_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// The certificate chain (PEM) the wire listeners offer TLS with. Unset: a self-signed
    /// certificate generated into the data folder on first start (`wire-tls.crt`), its
    /// SHA-256 fingerprint logged at start and shown on the Tokens page.
    #[arg(long, env = "LOUPE_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The private key (PEM) of `LOUPE_TLS_CERT`.
    #[arg(long, env = "LOUPE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Changes a live connection may fall behind before it is told to resync. Default: 1024.
    #[arg(long, env = "LOUPE_LIVE_QUEUE", default_value_t = 1024)]
    pub live_queue: usize,

    /// Seconds between checks, on every open live connection, that its caller may still see
    /// what it watches (a share expiring, a token expiring). Revocations, logouts and disabled
    /// accounts are acted on at once; this bounds the rest. 1 to 3600. Default: 10.
    #[arg(long, env = "LOUPE_LIVE_RECHECK", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub live_recheck_seconds: u64,

    /// With downloads disabled, the most output and row bytes one user may read through the
    /// session page's windows per `LOUPE_WINDOW_READ_PERIOD`: enough to read sessions, too
    /// little to script a bulk export. Default: 268435456 (256 MiB).
    #[arg(long, env = "LOUPE_WINDOW_READ_BYTES", default_value_t = 256 * 1024 * 1024)]
    pub window_read_bytes: u64,

    /// The period of `LOUPE_WINDOW_READ_BYTES`, in seconds. Default: 3600.
    #[arg(long, env = "LOUPE_WINDOW_READ_PERIOD", default_value_t = 3600,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub window_read_period_seconds: u64,

    /// Password for the `admin` user created on the first start with an empty database. When
    /// unset, a password is generated and printed once. Default: unset.
    #[arg(long, env = "LOUPE_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<Secret>,

    /// Mark the login cookie `Secure` (browsers then send it over HTTPS only). Turn on when Loupe
    /// is served over HTTPS, e.g. behind a TLS proxy. Default: false.
    #[arg(long, env = "LOUPE_SECURE_COOKIES", default_value = "false",
          value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub secure_cookies: bool,

    /// Log filter in tracing's `EnvFilter` syntax, e.g. `info,loupe_server=debug`. Default: info.
    #[arg(long, env = "LOUPE_LOG", default_value = "info")]
    pub log: String,

    /// Log line format: `text` for people, `json` for log collectors. Default: text.
    #[arg(long, env = "LOUPE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

impl Config {
    /// `node_id`, or the hostname when unset.
    pub fn node_id(&self) -> String {
        self.node_id.clone().unwrap_or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .or_else(|| std::env::var("HOSTNAME").ok())
                .map(|name| name.trim().to_owned())
                .filter(|name| !name.is_empty())
                .unwrap_or_else(|| "loupe".into())
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl Config {
    /// The configuration a test or an embedding program starts from: every default, with the
    /// database at `database_url`.
    pub fn with_database(database_url: impl Into<String>) -> Self {
        use clap::{CommandFactory, FromArgMatches, Parser};

        #[derive(Parser)]
        struct Defaults {
            #[command(flatten)]
            config: Config,
        }
        // Unbinding the environment variables first makes this the documented defaults, whatever
        // the caller's shell exports, so tests cannot pick up a stray DISABLE_SESSIONS_DOWNLOAD.
        let matches = Defaults::command()
            .mut_args(|arg| arg.env(None))
            .get_matches_from(["loupe"]);
        let mut config = Defaults::from_arg_matches(&matches)
            .expect("the defaults parse")
            .config;
        config.database_url = Secret::new(database_url.into());
        config
    }
}

/// A string that must never reach a log: database URLs carry passwords. `Debug` and `Display`
/// print a placeholder; `expose` is the one way to read it, so every use is easy to find.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Secret(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(\"***\")")
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints_its_value() {
        let secret = Secret::new("postgres://loupe:hunter2@db/loupe".into());
        assert!(!format!("{secret:?}").contains("hunter2"));
        assert_eq!(secret.expose(), "postgres://loupe:hunter2@db/loupe");
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let config = Config::with_database("sqlite::memory:");
        assert_eq!(config.bind.to_string(), "127.0.0.1:3000");
        assert!(!config.disable_sessions_download);
        assert_eq!(config.static_dir, PathBuf::from("dist"));
        assert_eq!(config.preview_rows, 200);
    }
}
