//! Small pieces that show a session: its status, its type, its duration, sizes; and the button
//! that stops it.

use leptos::{prelude::*, task::spawn_local};
use loupe_protocol::{ConnectionKind, Session, SessionStatus, SessionType};

use crate::api;

/// Stops running session `id` after the user confirms (`POST /api/sessions/{id}/kill`). The new
/// status arrives over the live channel like any other change, and the button says "Stopping…"
/// until then (a session that stopped is drawn without it); a refusal goes to `error`. Show it
/// only to whom `Auth::may_act_on` allows.
#[component]
pub fn StopButton(
    id: String,
    error: RwSignal<Option<String>>,
    /// Drawn small, to sit in a table row.
    #[prop(optional)]
    small: bool,
    /// Whether a stop was asked for, kept by a caller that draws the button again while the
    /// session runs (so "Stopping…" survives that); the button's own otherwise.
    #[prop(optional)]
    stopping: Option<RwSignal<bool>>,
) -> impl IntoView {
    let stopping = stopping.unwrap_or_else(|| RwSignal::new(false));
    let stop = move |_| {
        let confirmed = window()
            .confirm_with_message("Stop this session? The running command or query is cancelled.")
            .unwrap_or(false);
        if !confirmed {
            return;
        }
        stopping.set(true);
        let id = id.clone();
        spawn_local(async move {
            // The row or header may be gone by the time the answer comes: write with try_set.
            if let Err(failure) = api::kill(&id).await {
                error.try_set(Some(failure.to_string()));
                stopping.try_set(false);
            }
        });
    };
    view! {
        <button class="button danger" class:small=small data-test="stop" disabled=move || stopping.get() on:click=stop>
            {move || if stopping.get() { "Stopping…" } else { "Stop" }}
        </button>
    }
}

#[component]
pub fn StatusBadge(status: SessionStatus) -> impl IntoView {
    let class = match status {
        SessionStatus::Running | SessionStatus::PendingReview => "badge status running",
        SessionStatus::Done => "badge status done",
        SessionStatus::Failed | SessionStatus::Rejected => "badge status failed",
        SessionStatus::Cancelled | SessionStatus::Interrupted => "badge status stopped",
    };
    view! { <span class=class data-test="status">{status.as_str().replace('_', " ")}</span> }
}

#[component]
pub fn TypeIcon(kind: SessionType) -> impl IntoView {
    let (glyph, label) = match kind {
        SessionType::Database => ("▦", "database"),
        SessionType::Command => ("›_", "command"),
        SessionType::Ssh => ("⇄", "ssh"),
        SessionType::Application => ("◈", "application"),
    };
    view! { <span class="type-icon" title=label aria-label=label>{glyph}</span> }
}

/// The session's duration; ticks with `now` while it runs.
#[component]
pub fn Duration(session: Session, now: RwSignal<f64>) -> impl IntoView {
    move || {
        let millis = match session.duration_ms {
            Some(millis) => millis as f64,
            None if session.status == SessionStatus::Running => {
                (now.get() - session.started_at.as_millis_f64()).max(0.0)
            }
            None => return "—".to_owned(),
        };
        human_duration(millis)
    }
}

pub fn human_duration(millis: f64) -> String {
    let seconds = millis / 1000.0;
    if seconds < 1.0 {
        format!("{millis:.0} ms")
    } else if seconds < 60.0 {
        format!("{seconds:.1} s")
    } else if seconds < 3600.0 {
        format!("{}m {:02}s", (seconds / 60.0) as u64, seconds as u64 % 60)
    } else {
        format!(
            "{}h {:02}m",
            (seconds / 3600.0) as u64,
            (seconds as u64 % 3600) / 60
        )
    }
}

pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// What someone ran, in its own language: SQL with its keywords marked on a database connection;
/// a command line after a `$ ` prompt on any other (a shell command is never searched for SQL
/// keywords). `connection_kind` is the session's `connection.kind`.
#[component]
pub fn InputText(
    text: String,
    connection_kind: String,
    /// The `data-test` name of the block.
    test: &'static str,
) -> impl IntoView {
    let is_sql = ConnectionKind::parse(&connection_kind).is_some_and(ConnectionKind::is_database);
    if is_sql {
        view! { <pre class="input-text sql" data-test=test data-language="sql">{highlight_sql(&text)}</pre> }.into_any()
    } else {
        // The prompt is drawn by the style sheet, so copying the block copies only the command.
        view! { <pre class="input-text" data-test=test data-language="shell">{text}</pre> }
            .into_any()
    }
}

/// SQL with its keywords marked, for reading, not parsing.
fn highlight_sql(text: &str) -> Vec<AnyView> {
    const KEYWORDS: [&str; 30] = [
        "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "INSERT", "INTO", "VALUES", "UPDATE", "SET",
        "DELETE", "JOIN", "LEFT", "RIGHT", "INNER", "ON", "GROUP", "BY", "ORDER", "LIMIT", "AS",
        "CREATE", "TABLE", "DROP", "ALTER", "WITH", "NULL", "IS", "DESC",
    ];
    let mut views = Vec::new();
    let mut word = String::new();
    let mut plain = String::new();
    let flush = |word: &mut String, plain: &mut String, views: &mut Vec<AnyView>| {
        if word.is_empty() {
            return;
        }
        let text = std::mem::take(word);
        if KEYWORDS.contains(&text.to_ascii_uppercase().as_str()) {
            if !plain.is_empty() {
                views.push(view! { <span>{std::mem::take(plain)}</span> }.into_any());
            }
            views.push(view! { <span class="kw">{text}</span> }.into_any());
        } else {
            plain.push_str(&text);
        }
    };
    for c in text.chars() {
        if c.is_alphanumeric() || c == '_' {
            word.push(c);
        } else {
            flush(&mut word, &mut plain, &mut views);
            plain.push(c);
        }
    }
    flush(&mut word, &mut plain, &mut views);
    if !plain.is_empty() {
        views.push(view! { <span>{plain}</span> }.into_any());
    }
    views
}
