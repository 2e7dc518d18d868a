//! The frame around every page: the header with the product name, navigation and the user's
//! menu, and the footer with the server's version.

use leptos::{prelude::*, task::spawn_local};
use leptos_router::{NavigateOptions, components::A, hooks::use_navigate};

use crate::{
    api,
    auth::Auth,
    components::menu::dismiss_menu,
    live::{LinkState, LiveChannel, watch_reviews},
    settings::ServerSettings,
};

#[component]
pub fn Header() -> impl IntoView {
    let auth = expect_context::<Auth>();
    view! {
        <header class="header">
            <A href="/sessions" attr:class="brand" attr:data-test="brand">
                <span class="brand-mark" aria-hidden="true"></span>
                "Loupe"
            </A>
            <Show when=move || auth.user.with(Option::is_some)>
                <nav class="nav" aria-label="Main">
                    <A href="/sessions" attr:data-test="nav-sessions">"Sessions"</A>
                    <A href="/reviews" attr:data-test="nav-reviews">"Reviews"<WaitingBadge/></A>
                    <Show when=move || auth.may_run()>
                        <A href="/run" attr:data-test="nav-run">"Run"</A>
                    </Show>
                    <Show when=move || auth.sees_admin()>
                        <A href="/admin" attr:data-test="nav-admin">"Admin"</A>
                    </Show>
                </nav>
                <LinkNotice/>
                <UserMenu/>
            </Show>
        </header>
    }
}

/// Says so while the live connection is down and reconnecting: what is shown is not following.
#[component]
fn LinkNotice() -> impl IntoView {
    let live = LiveChannel::get();
    view! {
        <Show when=move || live.state.get() == LinkState::Reconnecting>
            <span class="link-notice" role="status" data-test="live-reconnecting">"Reconnecting…"</span>
        </Show>
    }
}

/// How many pending reviews wait for this person's decision; counted again on every review
/// change the live channel reports.
#[component]
fn WaitingBadge() -> impl IntoView {
    let count = RwSignal::new(0u64);
    let recount = move || {
        spawn_local(async move {
            if let Ok(waiting) = api::waiting_reviews().await {
                count.try_set(waiting.count);
            }
        });
    };
    recount();
    watch_reviews(move |_| recount());
    move || {
        let waiting = count.get();
        (waiting > 0).then(|| {
            view! {
                <span class="nav-badge" data-test="reviews-waiting" aria-label=format!("{waiting} waiting for you")>{waiting}</span>
            }
        })
    }
}

#[component]
fn UserMenu() -> impl IntoView {
    let auth = expect_context::<Auth>();
    let open = RwSignal::new(false);
    let root = NodeRef::<leptos::html::Div>::new();
    dismiss_menu(open, root);
    let navigate = use_navigate();
    let log_out = move |_| {
        let navigate = navigate.clone();
        spawn_local(async move {
            // Even if the server is unreachable, forget the user here; the cookie expires anyway.
            let _ = api::log_out().await;
            auth.user.set(None);
            navigate("/login", NavigateOptions::default());
        });
    };
    let name = move || {
        auth.user.with(|user| {
            user.as_ref()
                .map(|user| user.display_name.clone())
                .unwrap_or_default()
        })
    };
    let role = move || auth.role().map(|role| role.as_str()).unwrap_or_default();
    view! {
        <div class="user-menu" node_ref=root>
            <button
                class="user-button"
                aria-haspopup="menu"
                aria-expanded=move || open.get().to_string()
                data-test="user-menu"
                on:click=move |_| open.update(|open| *open = !*open)
            >
                <span data-test="user-name">{name}</span>
                <span class="badge role">{role}</span>
            </button>
            <Show when=move || open.get()>
                <div class="menu" role="menu" on:click=move |_| open.set(false)>
                    <A href="/tokens" attr:role="menuitem" attr:data-test="menu-tokens">"API tokens"</A>
                    <button role="menuitem" data-test="logout" on:click=log_out.clone()>"Log out"</button>
                </div>
            </Show>
        </div>
    }
}

#[component]
pub fn Footer() -> impl IntoView {
    let settings = ServerSettings::get().0;
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
