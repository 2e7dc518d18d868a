//! Reviews: just-in-time access to a connection, and approval of one command before it runs.
//!
//! A connection's [`ReviewRules`] say which of the two apply, who reviews (members of the named
//! groups), and how many approvals are needed. A review moves through [`ReviewState`]:
//! `pending → approved → executed | expired | revoked`, `pending → rejected`,
//! `pending → cancelled`, `pending → expired`; anything else is refused with 409.

use serde::{Deserialize, Serialize};

use crate::{GroupRef, Timestamp, UserRef};

/// How many approvals a review needs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Approvals {
    /// One approval from each reviewer group, each by a different person.
    #[default]
    EachGroup,
    /// This many approvals from different members of any reviewer group.
    Count(u32),
}

/// What a connection asks for before it is used. The default asks for nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ReviewRules {
    /// Users need approved, time-limited access before running anything here.
    #[serde(default)]
    pub jit_access: bool,
    /// Every query or command waits for approval before it runs.
    #[serde(default)]
    pub command_review: bool,
    /// The groups whose members review; names or ids on the way in, names on the way out.
    #[serde(default)]
    pub reviewer_groups: Vec<String>,
    #[serde(default)]
    pub approvals: Approvals,
    /// The longest access window a request may ask for, in seconds.
    #[serde(default = "default_max_access_seconds")]
    pub max_access_seconds: u32,
    /// How long a pending review waits for a decision before it expires, in seconds.
    #[serde(default = "default_pending_seconds")]
    pub pending_seconds: u32,
}

fn default_max_access_seconds() -> u32 {
    8 * 3600
}

fn default_pending_seconds() -> u32 {
    3600
}

impl Default for ReviewRules {
    fn default() -> ReviewRules {
        ReviewRules {
            jit_access: false,
            command_review: false,
            reviewer_groups: Vec::new(),
            approvals: Approvals::EachGroup,
            max_access_seconds: default_max_access_seconds(),
            pending_seconds: default_pending_seconds(),
        }
    }
}

impl ReviewRules {
    pub fn is_active(&self) -> bool {
        self.jit_access || self.command_review
    }
}

crate::wire_enum! {
    pub enum ReviewKind {
        /// Time-limited access to a connection.
        Access = "access",
        /// One query or command, held until approved.
        Command = "command",
    }
}

crate::wire_enum! {
    pub enum ReviewState {
        Pending = "pending",
        /// Access: granted until `access_until`. Command: about to run.
        Approved = "approved",
        /// The approved command ran (once).
        Executed = "executed",
        Rejected = "rejected",
        /// The requester withdrew it while pending.
        Cancelled = "cancelled",
        /// Nobody decided in time, or the access window ended.
        Expired = "expired",
        /// Approved access ended early by a reviewer or an administrator.
        Revoked = "revoked",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Approve,
    Reject,
}

/// One reviewer's decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct ReviewDecision {
    pub reviewer: UserRef,
    pub verdict: Verdict,
    pub note: Option<String>,
    pub at: Timestamp,
    /// The reviewer groups the reviewer belonged to when deciding.
    pub groups: Vec<GroupRef>,
}

/// What the caller may do with a review now; the server enforces the same rules.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct ReviewActions {
    pub decide: bool,
    pub cancel: bool,
    pub revoke: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Review {
    pub id: String,
    pub kind: ReviewKind,
    pub state: ReviewState,
    pub connection: ReviewConnection,
    pub requester: UserRef,
    /// The requester's justification.
    pub reason: String,
    /// The exact input a command review holds.
    pub input: Option<String>,
    /// The session a command review holds (`pending_review` until decided).
    pub session_id: Option<String>,
    /// How long access was asked for, in seconds (access reviews).
    pub access_seconds: Option<u32>,
    /// Until when approved access lasts (or lasted).
    pub access_until: Option<Timestamp>,
    pub reviewer_groups: Vec<GroupRef>,
    pub approvals: Approvals,
    pub decisions: Vec<ReviewDecision>,
    pub created_at: Timestamp,
    /// When a pending review expires if nobody decides.
    pub expires_at: Timestamp,
    /// When it left `pending`, and when it reached its final state.
    pub decided_at: Option<Timestamp>,
    pub closed_at: Option<Timestamp>,
    /// Who cancelled, revoked or rejected it, and why.
    pub closed_by: Option<UserRef>,
    pub closing_note: Option<String>,
    pub actions: ReviewActions,
}

/// The connection a review is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct ReviewConnection {
    pub id: String,
    pub name: String,
    pub kind: String,
}

/// `POST /api/reviews`: ask for time-limited access to a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct AccessRequest {
    /// The connection's name or id.
    pub connection: String,
    pub access_seconds: u32,
    pub reason: String,
}

/// `POST /api/reviews/{id}/approve|reject|cancel|revoke`. A rejection needs a note.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ReviewNote {
    #[serde(default)]
    pub note: Option<String>,
}

/// `GET /api/reviews` filters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ReviewQuery {
    /// `inbox` (reviews you may decide or have decided), `mine` (your requests), or `all`
    /// (everything you may see; the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view: Option<String>,
    /// One state, or several separated by commas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ReviewKind>,
    /// A connection's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<String>,
    /// The session a command review holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// `GET /api/reviews/waiting`: how many pending reviews wait for the caller's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Waiting {
    pub count: u64,
}
