//! Where the app cannot take the user: a path it does not know, or a page their role does not
//! open (the API refuses them anyway; this says so instead of showing a page of errors).

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

/// A page the user's role does not open: what it is for, who they are, and a way back.
#[component]
pub fn NotAllowed(
    /// Who the page is for, e.g. "Administrators and auditors".
    for_whom: &'static str,
) -> impl IntoView {
    let auth = expect_context::<crate::auth::Auth>();
    let role = move || {
        auth.role()
            .map(|role| role.as_str().to_owned())
            .unwrap_or_default()
    };
    view! {
        <div class="empty-state" data-test="not-allowed">
            <h2>"Not available to you"</h2>
            <p>{for_whom}" use this page; you are logged in as "<strong>{role}</strong>". "
                <A href="/sessions">"Go to the sessions"</A>"."</p>
        </div>
    }
}
