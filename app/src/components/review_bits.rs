//! Small pieces that show reviews and review rules.

use leptos::prelude::*;
use loupe_protocol::{Approvals, ReviewKind, ReviewRules, ReviewState};

#[component]
pub fn ReviewStateBadge(state: ReviewState) -> impl IntoView {
    let class = match state {
        ReviewState::Pending => "badge status running",
        ReviewState::Approved | ReviewState::Executed => "badge status done",
        ReviewState::Rejected | ReviewState::Revoked => "badge status failed",
        ReviewState::Cancelled | ReviewState::Expired => "badge status stopped",
    };
    view! { <span class=class data-test="review-state">{state.as_str()}</span> }
}

pub fn kind_label(kind: ReviewKind) -> &'static str {
    match kind {
        ReviewKind::Access => "Access request",
        ReviewKind::Command => "Command",
    }
}

/// "one approval from each of dba, sre" / "1 approval from dba" / "2 approvals from dba".
pub fn approvals_text(approvals: Approvals, groups: &[String]) -> String {
    let names = if groups.is_empty() {
        "(no reviewer groups)".to_owned()
    } else {
        groups.join(", ")
    };
    match approvals {
        Approvals::EachGroup if groups.len() > 1 => format!("one approval from each of {names}"),
        Approvals::EachGroup | Approvals::Count(1) => format!("1 approval from {names}"),
        Approvals::Count(count) => format!("{count} approvals from {names}"),
    }
}

/// What a connection's rules ask for, in a line.
pub fn rules_summary(rules: &ReviewRules) -> String {
    let what = match (rules.jit_access, rules.command_review) {
        (false, false) => return "none".into(),
        (true, false) => "Access needs",
        (false, true) => "Each command needs",
        (true, true) => "Access and each command need",
    };
    let mut line = format!(
        "{what} {}",
        approvals_text(rules.approvals, &rules.reviewer_groups)
    );
    if rules.jit_access {
        line.push_str(&format!(
            "; access for at most {}",
            human_seconds(rules.max_access_seconds)
        ));
    }
    line
}

/// "90 s", "15 min", "1 h", "36 h", "2 days".
pub fn human_seconds(seconds: u32) -> String {
    match seconds {
        0..=119 => format!("{seconds} s"),
        _ if seconds < 3600 || (seconds < 7200 && !seconds.is_multiple_of(3600)) => {
            format!("{} min", seconds / 60)
        }
        _ if seconds < 172_800 => format!("{} h", seconds / 3600),
        _ => format!("{} days", seconds / 86_400),
    }
}
