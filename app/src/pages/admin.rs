//! `/admin`: connections, users, groups and settings.

use leptos::prelude::*;

#[component]
pub fn AdminPage() -> impl IntoView {
    view! {
        <section class="page-head">
            <h1 data-test="page-title">"Admin"</h1>
            <p class="muted">"Connections, users, groups and review rules."</p>
        </section>
        <div class="empty-state" data-test="coming">
            <h2>"Administration is on its way"</h2>
            <p>"Users, groups and connections will be managed here."</p>
        </div>
    }
}
