//! Connections: the databases and command targets people reach through Loupe.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{ReviewRules, SessionType, Timestamp};

crate::wire_enum! {
    pub enum ConnectionKind {
        Postgres = "postgres",
        Mysql = "mysql",
        Sqlite = "sqlite",
        /// A program run with the user's input as its last argument or its standard input.
        Command = "command",
        /// A program run in a terminal (a local PTY), e.g. `bash -l` or `kubectl exec -it …`:
        /// an interactive terminal session, or one command through its standard input.
        Shell = "shell",
        /// A server reached over SSH: an interactive terminal session, or one command.
        Ssh = "ssh",
    }
}

impl ConnectionKind {
    pub fn is_database(self) -> bool {
        matches!(
            self,
            ConnectionKind::Postgres | ConnectionKind::Mysql | ConnectionKind::Sqlite
        )
    }

    /// Whether people open interactive terminals through it.
    pub fn is_terminal(self) -> bool {
        matches!(self, ConnectionKind::Shell | ConnectionKind::Ssh)
    }

    /// Whether its program is set by [`CommandSettings`].
    pub fn runs_program(self) -> bool {
        matches!(self, ConnectionKind::Command | ConnectionKind::Shell)
    }
}

/// Where an `ssh` connection goes and how Loupe logs in (what an administrator sends).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct SshSettings {
    /// A host name or address.
    pub host: String,
    /// 22 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The account Loupe logs in as on the server.
    pub username: String,
    /// A private key in OpenSSH format (`-----BEGIN OPENSSH PRIVATE KEY-----`), unencrypted.
    /// Write-only like a database URL: sealed and never returned. When changing a connection,
    /// absent keeps the stored key or password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
    /// A password, where the server takes one. Write-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// The server's host key in OpenSSH's one-line form (`ssh-ed25519 AAAA…`). Absent, the key
    /// the server shows when an administrator tests the connection is pinned; every later
    /// connect is refused if the server shows another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_key: Option<String>,
}

/// An `ssh` connection as answers show it: the key and password never are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct SshView {
    pub host: String,
    pub port: u16,
    pub username: String,
    /// `key` or `password`: what Loupe logs in with.
    pub auth: String,
    /// The pinned host key (OpenSSH's one-line form); none until the connection is tested.
    pub host_key: Option<String>,
    /// The pinned key's SHA-256 fingerprint as OpenSSH prints it (`SHA256:…`).
    pub host_key_fingerprint: Option<String>,
}

/// Where a command connection puts the user's input.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum InputMode {
    /// Appended to the argv template as its last argument.
    #[default]
    Argument,
    /// Written to the program's standard input, which is then closed.
    Stdin,
}

/// How a command connection runs its program (what an administrator sends).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct CommandSettings {
    /// The program and its fixed arguments, e.g. `["sh", "-c"]` or `["kubectl"]`.
    pub argv: Vec<String>,
    /// Variables the program gets, e.g. `PGPASSWORD`. Write-only like a database URL: kept
    /// encrypted and never returned (answers list their names in [`CommandView::env_names`]).
    /// When changing a connection, absent keeps the stored variables and `{}` removes them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub input: InputMode,
    /// The operating-system user the program runs as (Loupe must run as root to switch). Unset,
    /// it runs as Loupe's own user and can read what Loupe can, including its data folder: give
    /// production command connections a user of their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as: Option<String>,
}

/// How a command connection runs its program, as answers show it: the variables' values are
/// never shown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct CommandView {
    pub argv: Vec<String>,
    /// The names of the variables the program gets.
    pub env_names: Vec<String>,
    pub working_dir: Option<String>,
    pub input: InputMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Connection {
    pub id: String,
    pub name: String,
    pub kind: ConnectionKind,
    #[serde(rename = "type")]
    pub session_type: SessionType,
    /// For database connections, whether a URL is stored (it is never shown).
    pub has_url: bool,
    /// For command and shell connections.
    pub command: Option<CommandView>,
    /// For ssh connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh: Option<SshView>,
    /// For shell and ssh connections: whether a terminal session records what the user types
    /// as well as what the terminal shows (off unless an administrator turns it on; passwords
    /// typed at a prompt are keystrokes too).
    #[serde(default)]
    pub record_input: bool,
    /// Longest a statement or command may run, in seconds; none for the server's default.
    pub timeout_seconds: Option<u32>,
    pub tags: Vec<String>,
    /// What must be approved before the connection is used.
    pub review: ReviewRules,
    pub created_at: Timestamp,
}

/// `POST /api/connections`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NewConnection {
    pub name: String,
    pub kind: ConnectionKind,
    /// Defaults to `database` for database kinds and `command` for commands.
    #[serde(default, rename = "type")]
    pub session_type: Option<SessionType>,
    /// The target's URL with its password, for database kinds. Write-only: kept encrypted and
    /// never returned.
    #[serde(default)]
    pub url: Option<String>,
    /// For command and shell connections.
    #[serde(default)]
    pub command: Option<CommandSettings>,
    /// For ssh connections.
    #[serde(default)]
    pub ssh: Option<SshSettings>,
    /// For shell and ssh connections; off when absent (see [`Connection::record_input`]).
    #[serde(default)]
    pub record_input: Option<bool>,
    #[serde(default)]
    pub timeout_seconds: Option<u32>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub review: Option<ReviewRules>,
}

/// `PATCH /api/connections/{id}`: only the fields present change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ConnectionChanges {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandSettings>,
    /// Replaces the ssh settings; a changed host or port unpins the host key unless a new one
    /// is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh: Option<SshSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_input: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<ReviewRules>,
}

/// `POST /api/connections/{id}/test`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct ConnectionCheck {
    pub ok: bool,
    /// What the target said, or why it could not be reached.
    pub message: String,
    pub elapsed_ms: u64,
}

/// `POST /api/sessions`: run a query or command through a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    /// The connection's name or id.
    pub connection: String,
    pub input: String,
    /// Why, for the reviewers of a connection whose commands are reviewed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}
