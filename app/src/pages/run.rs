//! `/run`: write a query or command and run it through a connection.

use leptos::prelude::*;

#[component]
pub fn RunPage() -> impl IntoView {
    view! {
        <section class="page-head">
            <h1 data-test="page-title">"Run"</h1>
            <p class="muted">"Run SQL or a command through a connection; the output streams in as it is recorded."</p>
        </section>
        <div class="empty-state" data-test="coming">
            <h2>"No connections yet"</h2>
            <p>"Once an administrator adds a connection, you can run queries and commands here."</p>
        </div>
    }
}
