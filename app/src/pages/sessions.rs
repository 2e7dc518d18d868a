//! `/sessions`: every session the user may see, newest first.

use leptos::prelude::*;

#[component]
pub fn SessionsPage() -> impl IntoView {
    view! {
        <section class="page-head">
            <h1 data-test="page-title">"Sessions"</h1>
            <p class="muted">"Every query and command run through Loupe, recorded event by event."</p>
        </section>
        <div class="empty-state" data-test="coming">
            <h2>"Nothing recorded yet"</h2>
            <p>"Recorded sessions will be listed here, newest first, updating live."</p>
        </div>
    }
}
