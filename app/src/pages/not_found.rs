//! Any path the app does not know.

use leptos::prelude::*;
use leptos_router::components::A;

#[component]
pub fn NotFound() -> impl IntoView {
    view! {
        <section class="page-head">
            <h1 data-test="page-title">"Page not found"</h1>
        </section>
        <div class="empty-state" data-test="not-found">
            <p>"There is nothing at this address. "<A href="/sessions">"Go to the sessions"</A>"."</p>
        </div>
    }
}
