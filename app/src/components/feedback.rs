//! Saying what went wrong, where it went wrong, with a way to try again.

use leptos::prelude::*;

/// A failed load: the message and a retry button.
#[component]
pub fn ErrorPanel(message: String, retry: Callback<()>) -> impl IntoView {
    view! {
        <div class="error-panel" role="alert" data-test="error-panel">
            <p>{message}</p>
            <button class="button" on:click=move |_| retry.run(())>"Try again"</button>
        </div>
    }
}

/// An inline error under a form or a table; nothing when there is none.
#[component]
pub fn ErrorLine(error: RwSignal<Option<String>>) -> impl IntoView {
    move || {
        error.get().map(|message| {
            view! { <p class="error-text" role="alert" data-test="error-line">{message}</p> }
        })
    }
}
