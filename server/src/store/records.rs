//! Rows as the store reads and writes them. Handlers turn these into `protocol` types; the store
//! never sees the wire format.

use loupe_protocol::{Role, Timestamp, User, UserRef};
use sqlx::FromRow;

#[derive(Debug, Clone, FromRow)]
pub struct UserRecord {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub role: String,
    pub disabled: bool,
    pub password_hash: Option<String>,
    pub created_at_us: i64,
}

impl UserRecord {
    pub fn role(&self) -> Role {
        // The column's CHECK constraint admits only the three names; fall back to the least
        // privileged role rather than trust anything else.
        Role::parse(&self.role).unwrap_or(Role::User)
    }

    pub fn to_ref(&self) -> UserRef {
        UserRef {
            id: self.id.clone(),
            username: self.username.clone(),
            display_name: self.display_name.clone(),
        }
    }

    pub fn into_user(self, groups: Vec<loupe_protocol::GroupRef>) -> User {
        User {
            role: self.role(),
            id: self.id,
            username: self.username,
            display_name: self.display_name,
            disabled: self.disabled,
            groups,
            created_at: Timestamp::from_micros(self.created_at_us),
        }
    }
}

/// What may change on a user; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserUpdate {
    pub display_name: Option<String>,
    pub role: Option<Role>,
    pub disabled: Option<bool>,
    pub password_hash: Option<String>,
}

#[derive(Debug, Clone, FromRow)]
pub struct GroupRecord {
    pub id: String,
    pub name: String,
    pub description: String,
    pub created_at_us: i64,
}

/// One membership, with the names needed to show it.
#[derive(Debug, Clone, FromRow)]
pub struct MembershipRecord {
    pub group_id: String,
    pub group_name: String,
    pub user_id: String,
    pub username: String,
    pub display_name: String,
}

#[derive(Debug, Clone, FromRow)]
pub struct TokenRecord {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub prefix: String,
    pub created_at_us: i64,
    pub expires_at_us: Option<i64>,
    pub last_used_at_us: Option<i64>,
    pub revoked_at_us: Option<i64>,
}

/// An audit event to append.
#[derive(Debug, Clone, Default)]
pub struct NewAuditEvent {
    pub actor_id: Option<String>,
    pub actor_name: Option<String>,
    pub action: &'static str,
    pub target: Option<String>,
    pub detail: Option<String>,
    pub address: Option<String>,
}

#[derive(Debug, Clone, FromRow)]
pub struct AuditRecord {
    pub id: i64,
    pub at_us: i64,
    pub actor_name: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub detail: Option<String>,
    pub address: Option<String>,
}

/// Which audit events to read: newest first, older than `before_id`.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub from_us: Option<i64>,
    pub to_us: Option<i64>,
    pub before_id: Option<i64>,
    pub limit: u32,
}
