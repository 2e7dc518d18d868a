//! What a shell or ssh connection keeps: its terminal settings as JSON in the `terminal`
//! column, the ssh key or password sealed in `secret` (a shell's program and environment are a
//! command's, in `command` and `secret`).

use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// The `terminal` column.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredTerminal {
    /// Whether keystrokes are recorded as well as output.
    #[serde(default)]
    pub record_input: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh: Option<StoredSsh>,
}

impl StoredTerminal {
    /// The column's value; an absent column is the defaults.
    pub fn parse(json: Option<&str>) -> Result<StoredTerminal, ApiError> {
        json.map_or(Ok(StoredTerminal::default()), |json| {
            serde_json::from_str(json).map_err(ApiError::internal)
        })
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("settings serialise")
    }
}

/// An ssh connection's target, without its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSsh {
    pub host: String,
    pub port: u16,
    pub username: String,
    /// The pinned host key, OpenSSH's one-line form; none until the connection is tested.
    #[serde(default)]
    pub host_key: Option<String>,
    /// Whether the secret holds a private key (else a password).
    pub key: bool,
}

/// The sealed part of an ssh connection. Its `Debug` never shows the values.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SshSecret {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

impl std::fmt::Debug for SshSecret {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SshSecret")
            .field("private_key", &self.private_key.as_ref().map(|_| "…"))
            .field("password", &self.password.as_ref().map(|_| "…"))
            .finish()
    }
}

/// Everything needed to open an ssh connection's target.
#[derive(Debug, Clone)]
pub struct SshTarget {
    pub ssh: StoredSsh,
    pub secret: SshSecret,
}
