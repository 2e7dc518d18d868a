//! `/reviews`: the reviewer's inbox.

use leptos::prelude::*;

#[component]
pub fn ReviewsPage() -> impl IntoView {
    view! {
        <section class="page-head">
            <h1 data-test="page-title">"Reviews"</h1>
            <p class="muted">"Access requests and commands waiting for a reviewer's decision."</p>
        </section>
        <div class="empty-state" data-test="coming">
            <h2>"No reviews yet"</h2>
            <p>"Requests that need your approval will appear here the moment they are made."</p>
        </div>
    }
}
