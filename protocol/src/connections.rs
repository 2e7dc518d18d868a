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
    }
}

impl ConnectionKind {
    pub fn is_database(self) -> bool {
        self != ConnectionKind::Command
    }
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
    /// For command connections.
    pub command: Option<CommandView>,
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
    #[serde(default)]
    pub command: Option<CommandSettings>,
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
