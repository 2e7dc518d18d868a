//! The audit trail: security-relevant events, for admins and auditors.

use serde::{Deserialize, Serialize};

use crate::Timestamp;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct AuditEvent {
    pub id: i64,
    pub at: Timestamp,
    /// Who did it: a username, or `cli` for the server's command line, or none when unknown
    /// (a failed login names the username tried in `target`).
    pub actor: Option<String>,
    /// A dotted name such as `login.failed`, `token.created`, `user.role_changed`.
    pub action: String,
    /// What it was done to, e.g. `user:alice`, `session:0192…`.
    pub target: Option<String>,
    /// A short human-readable detail.
    pub detail: Option<String>,
    /// The client's network address, where there was one.
    pub address: Option<String>,
}

/// `GET /api/audit` filters. Unknown parameters are refused, so a typo is not silently ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// A username, or `cli`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// An action such as `login.failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Events at or after this instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Timestamp>,
    /// Events before this instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// 1 to 200; 50 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// `GET /api/audit/export` parameters: the trail's filters (as in [`AuditQuery`]) and a file
/// format. The export holds every matching event, newest first, however many there are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct AuditExportQuery {
    /// `csv` (RFC 4180 with a header row: id, at, actor, action, target, detail, address; an
    /// absent value is an empty field; the default) or `jsonl` (one [`AuditEvent`] object per
    /// line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// A username, or `cli`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// An action such as `login.failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Events at or after this instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Timestamp>,
    /// Events before this instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Timestamp>,
}
