//! The frame around every page: the header with the product name and navigation, and the footer
//! with the server's version.

use leptos::prelude::*;
use leptos_router::components::A;

use crate::api;

#[component]
pub fn Header() -> impl IntoView {
    view! {
        <header class="header">
            <A href="/sessions" attr:class="brand" attr:data-test="brand">
                <span class="brand-mark" aria-hidden="true"></span>
                "Loupe"
            </A>
            <nav class="nav" aria-label="Main">
                <A href="/sessions" attr:data-test="nav-sessions">"Sessions"</A>
                <A href="/reviews" attr:data-test="nav-reviews">"Reviews"</A>
                <A href="/run" attr:data-test="nav-run">"Run"</A>
                <A href="/admin" attr:data-test="nav-admin">"Admin"</A>
            </nav>
        </header>
    }
}

#[component]
pub fn Footer() -> impl IntoView {
    let settings = LocalResource::new(api::settings);
    view! {
        <footer class="footer">
            <Transition fallback=|| view! { <span class="muted">"Connecting…"</span> }>
                {move || settings.get().map(|answer| match answer {
                    Ok(settings) => view! {
                        <span class="muted" data-test="server-version">
                            "Loupe " {settings.version}
                        </span>
                    }.into_any(),
                    Err(failure) => view! {
                        <span class="error-text" role="alert" data-test="server-error">
                            {failure.to_string()}
                        </span>
                    }.into_any(),
                })}
            </Transition>
        </footer>
    }
}
