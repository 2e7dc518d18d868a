//! `/sessions/{id}`: one session's details, activity log and output.

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

#[component]
pub fn SessionDetailPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    view! {
        <section class="page-head">
            <h1 data-test="page-title">"Session"</h1>
            <p class="mono muted" data-test="session-id">{id}</p>
        </section>
        <div class="empty-state" data-test="coming">
            <h2>"Session details are on their way"</h2>
            <p>"This page will show the session's activity log and its output, paged as you scroll."</p>
        </div>
    }
}
