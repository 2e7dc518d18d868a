//! Every access decision Loupe makes, in one place. Handlers and the command line ask these
//! functions and never decide on their own; `tests/api/access.rs` checks every route against
//! every kind of caller.
//!
//! The rules: administrators run Loupe and may do anything; auditors read everything and change
//! nothing; users act on their own things. Anyone logged in may read the directory of users and
//! groups (they pick from it when sharing a session).

use loupe_protocol::Role;

use crate::{error::ApiError, identity::auth::Actor};

/// Turns a decision into the 403 that explains it.
pub fn ensure(allowed: bool, why_not: &str) -> Result<(), ApiError> {
    if allowed {
        Ok(())
    } else {
        Err(ApiError::forbidden(why_not))
    }
}

pub fn may_manage_accounts(actor: &Actor) -> bool {
    actor.role == Role::Admin
}

pub fn may_read_directory(_actor: &Actor) -> bool {
    true
}

pub fn may_read_audit(actor: &Actor) -> bool {
    matches!(actor.role, Role::Admin | Role::Auditor)
}

/// Admins and auditors see every session; everyone else sees their own and those shared with
/// them (checked per session in `sessions::visible_session`).
pub fn sees_all_sessions(actor: &Actor) -> bool {
    matches!(actor.role, Role::Admin | Role::Auditor)
}

pub fn may_manage_connections(actor: &Actor) -> bool {
    actor.role == Role::Admin
}

/// Running queries and commands changes things: not for auditors. (Which connections a user may
/// use, and when, is decided by the connection's review rules.)
pub fn may_run_sessions(actor: &Actor) -> bool {
    actor.role != Role::Auditor
}

/// The owner of a session or an administrator stops it or runs it again.
pub fn may_act_on_session(actor: &Actor, owner_id: &str) -> bool {
    actor.is(owner_id) || actor.role == Role::Admin
}

/// Recording sessions through the ingest API changes Loupe's data: not for auditors.
pub fn may_record_sessions(actor: &Actor) -> bool {
    actor.role != Role::Auditor
}

/// The owner of a session or an administrator shares it.
pub fn may_share_session(actor: &Actor, owner_id: &str) -> bool {
    actor.is(owner_id) || actor.role == Role::Admin
}

/// Who a session is shared with is known to its owner, administrators and auditors; a person
/// it is shared with sees only the shares that reach them.
pub fn may_see_all_shares(actor: &Actor, owner_id: &str) -> bool {
    may_share_session(actor, owner_id) || actor.role == Role::Auditor
}

/// Reviews are seen by their requester, by members of their reviewer groups, and by those who
/// see everything. `reviews` is whether the actor is in one of the review's reviewer groups.
pub fn may_see_review(actor: &Actor, requester_id: &str, reviews: bool) -> bool {
    actor.is(requester_id) || reviews || matches!(actor.role, Role::Admin | Role::Auditor)
}

/// Deciding on reviews changes things: not for auditors, even in a reviewer group.
pub fn may_review(actor: &Actor) -> bool {
    actor.role != Role::Auditor
}

/// Members of a reviewer group decide, except on their own requests (nobody approves
/// themselves).
pub fn may_decide_review(actor: &Actor, requester_id: &str, reviews: bool) -> bool {
    reviews && !actor.is(requester_id) && may_review(actor)
}

/// Only the requester withdraws a pending request.
pub fn may_cancel_review(actor: &Actor, requester_id: &str) -> bool {
    actor.is(requester_id)
}

/// Reviewers and administrators end granted access early.
pub fn may_revoke_access(actor: &Actor, reviews: bool) -> bool {
    actor.role == Role::Admin || (reviews && may_review(actor))
}

/// Tokens are personal credentials: their owner manages them, and an administrator may revoke
/// anyone's.
pub fn may_manage_token(actor: &Actor, owner_id: &str) -> bool {
    actor.is(owner_id) || actor.role == Role::Admin
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::auth::Credential;

    fn actor(role: Role, id: &str) -> Actor {
        Actor {
            user_id: Some(id.into()),
            username: id.into(),
            role,
            address: None,
            credential: Credential::Token {
                id: "t".into(),
                digest: "d".into(),
            },
        }
    }

    #[test]
    fn only_admins_manage_accounts() {
        assert!(may_manage_accounts(&actor(Role::Admin, "a")));
        assert!(!may_manage_accounts(&actor(Role::Auditor, "b")));
        assert!(!may_manage_accounts(&actor(Role::User, "c")));
    }

    #[test]
    fn admins_and_auditors_read_the_audit_trail() {
        assert!(may_read_audit(&actor(Role::Admin, "a")));
        assert!(may_read_audit(&actor(Role::Auditor, "b")));
        assert!(!may_read_audit(&actor(Role::User, "c")));
    }

    #[test]
    fn nobody_decides_their_own_request_and_auditors_never_decide() {
        let reviewer = actor(Role::User, "r");
        assert!(may_decide_review(&reviewer, "u", true));
        assert!(!may_decide_review(&reviewer, "r", true));
        assert!(!may_decide_review(&reviewer, "u", false));
        assert!(!may_decide_review(&actor(Role::Admin, "a"), "u", false));
        assert!(!may_decide_review(&actor(Role::Auditor, "b"), "u", true));
        assert!(may_revoke_access(&actor(Role::Admin, "a"), false));
        assert!(!may_revoke_access(&actor(Role::Auditor, "b"), true));
        assert!(may_cancel_review(&actor(Role::User, "u"), "u"));
        assert!(!may_cancel_review(&actor(Role::Admin, "a"), "u"));
    }

    #[test]
    fn tokens_belong_to_their_owner() {
        assert!(may_manage_token(&actor(Role::User, "c"), "c"));
        assert!(!may_manage_token(&actor(Role::User, "c"), "d"));
        assert!(!may_manage_token(&actor(Role::Auditor, "b"), "d"));
        assert!(may_manage_token(&actor(Role::Admin, "a"), "d"));
    }
}
