//! Who is logged in. [`Auth`] is shared through context; [`Protected`] wraps every page that
//! needs a login and sends anyone without one to `/login?next=…`, back to where they were going.

use leptos::prelude::*;
use leptos_router::{
    NavigateOptions,
    components::Outlet,
    hooks::{use_location, use_navigate},
};
use loupe_protocol::{Role, User};

use crate::{api, components::feedback::ErrorPanel};

#[derive(Clone, Copy)]
pub struct Auth {
    pub user: RwSignal<Option<User>>,
}

impl Auth {
    pub fn role(&self) -> Option<Role> {
        self.user.with(|user| user.as_ref().map(|user| user.role))
    }

    pub fn is_admin(&self) -> bool {
        self.role() == Some(Role::Admin)
    }

    /// The owner of a session or an administrator stops, re-runs and shares it: what the server's
    /// `policy::may_act_on_session` allows, so the page offers only what will be accepted.
    pub fn may_act_on(&self, owner_id: &str) -> bool {
        self.user.with(|user| {
            user.as_ref()
                .is_some_and(|user| user.id == owner_id || user.role == Role::Admin)
        })
    }

    /// Everyone but auditors runs queries and commands (`policy::may_run_sessions`).
    pub fn may_run(&self) -> bool {
        self.role().is_some_and(|role| role != Role::Auditor)
    }

    /// Admins and auditors see the administration pages (auditors read only).
    pub fn sees_admin(&self) -> bool {
        matches!(self.role(), Some(Role::Admin | Role::Auditor))
    }
}

/// Where the login page sends people after logging in: only paths of this app, never another
/// site (`//evil.example` is a network-path reference, not a path).
pub fn safe_next(next: Option<String>) -> String {
    next.filter(|path| path.starts_with('/') && !path.starts_with("//") && !path.starts_with("/\\"))
        .unwrap_or_else(|| "/sessions".into())
}

pub fn login_path(next: &str) -> String {
    format!("/login?next={}", js_sys::encode_uri_component(next))
}

#[component]
pub fn Protected() -> impl IntoView {
    let auth = expect_context::<Auth>();
    let navigate = use_navigate();
    let location = use_location();
    let me = LocalResource::new(api::me);

    Effect::new(move |_| match me.get() {
        Some(Err(failure)) if failure.is_unauthenticated() => {
            auth.user.set(None);
            let here = format!(
                "{}{}",
                location.pathname.get_untracked(),
                location.search.get_untracked()
            );
            navigate(
                &login_path(&here),
                NavigateOptions {
                    replace: true,
                    ..Default::default()
                },
            );
        }
        _ => {}
    });

    move || match me.get() {
        None => view! { <p class="muted" data-test="auth-checking">"Loading…"</p> }.into_any(),
        Some(Ok(user)) => {
            // Known before the page under it renders, so a page can decide what to offer (an
            // effect would run only after that first render).
            if auth
                .user
                .with_untracked(|known| known.as_ref() != Some(&user))
            {
                auth.user.set(Some(user));
            }
            view! { <Outlet/> }.into_any()
        }
        Some(Err(failure)) if failure.is_unauthenticated() => {
            view! { <p class="muted">"Taking you to the login page…"</p> }.into_any()
        }
        Some(Err(failure)) => view! {
            <ErrorPanel message=failure.to_string() retry=Callback::new(move |()| me.refetch())/>
        }
        .into_any(),
    }
}
