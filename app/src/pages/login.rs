//! `/login`: username and password, then back to where the person was going.

use leptos::prelude::*;
use leptos_router::{
    NavigateOptions,
    hooks::{use_navigate, use_query_map},
};
use loupe_protocol::LoginRequest;

use crate::{
    api,
    auth::{Auth, safe_next},
};

#[component]
pub fn LoginPage() -> impl IntoView {
    let auth = expect_context::<Auth>();
    let query = use_query_map();
    let navigate = use_navigate();
    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let login = Action::new_local(|request: &LoginRequest| {
        let request = request.clone();
        async move { api::log_in(&request).await }
    });

    Effect::new(move |_| {
        if let Some(Ok(user)) = login.value().get() {
            auth.user.set(Some(user));
            let next = safe_next(query.read_untracked().get("next"));
            navigate(
                &next,
                NavigateOptions {
                    replace: true,
                    ..Default::default()
                },
            );
        }
    });

    let error = move || {
        login
            .value()
            .get()
            .and_then(Result::err)
            .map(|failure| failure.to_string())
    };
    view! {
        <div class="login">
            <form
                class="card login-card"
                data-test="login-form"
                on:submit=move |event| {
                    event.prevent_default();
                    login.dispatch(LoginRequest { username: username.get(), password: password.get() });
                }
            >
                <h1 data-test="page-title">"Log in to Loupe"</h1>
                <label for="login-username">"Username"</label>
                <input id="login-username" data-test="login-username" autocomplete="username"
                    required autofocus bind:value=username/>
                <label for="login-password">"Password"</label>
                <input id="login-password" data-test="login-password" type="password"
                    autocomplete="current-password" required bind:value=password/>
                {move || error().map(|message| view! {
                    <p class="error-text" role="alert" data-test="login-error">{message}</p>
                })}
                <button class="button primary" type="submit" data-test="login-submit"
                    disabled=move || login.pending().get()>
                    {move || if login.pending().get() { "Logging in…" } else { "Log in" }}
                </button>
            </form>
        </div>
    }
}
