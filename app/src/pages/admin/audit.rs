//! `/admin/audit`: the security trail, newest first, filterable by who and what, paged with
//! "Load more".

use leptos::{prelude::*, task::spawn_local};
use loupe_protocol::{AuditEvent, AuditQuery};

use crate::{
    api,
    components::feedback::ErrorLine,
    format::{local_time, relative_time},
};

#[component]
pub fn AuditPage() -> impl IntoView {
    let actor = RwSignal::new(String::new());
    let action = RwSignal::new(String::new());
    let events = RwSignal::new(Vec::<AuditEvent>::new());
    let cursor = RwSignal::new(None::<String>);
    let loading = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);

    let load = move |append: bool| {
        let non_empty = |text: String| (!text.trim().is_empty()).then(|| text.trim().to_owned());
        let query = AuditQuery {
            actor: non_empty(actor.get_untracked()),
            action: non_empty(action.get_untracked()),
            cursor: if append { cursor.get_untracked() } else { None },
            ..AuditQuery::default()
        };
        loading.set(true);
        spawn_local(async move {
            match api::audit(&query).await {
                Ok(page) => {
                    error.set(None);
                    cursor.set(page.next_cursor);
                    if append {
                        events.update(|list| list.extend(page.items));
                    } else {
                        events.set(page.items);
                    }
                }
                Err(failure) => error.set(Some(failure.to_string())),
            }
            loading.set(false);
        });
    };
    load(false);

    view! {
        <form class="card form-row" on:submit=move |event| { event.prevent_default(); load(false); }>
            <label>"Actor" <input data-test="audit-actor" bind:value=actor placeholder="username"/></label>
            <label>"Action" <input data-test="audit-action" bind:value=action placeholder="login.failed"/></label>
            <button class="button" type="submit" data-test="audit-filter">"Filter"</button>
        </form>
        <ErrorLine error=error/>
        <table class="table" data-test="audit-table">
            <thead><tr><th>"When"</th><th>"Who"</th><th>"Action"</th><th>"Target"</th><th>"Detail"</th><th>"Address"</th></tr></thead>
            <tbody>
                <For each=move || events.get() key=|event| event.id let:event>
                    <tr data-test="audit-row">
                        <td title=local_time(event.at)>{relative_time(event.at)}</td>
                        <td>{event.actor.clone().unwrap_or_else(|| "—".into())}</td>
                        <td class="mono">{event.action.clone()}</td>
                        <td class="mono">{event.target.clone().unwrap_or_default()}</td>
                        <td>{event.detail.clone().unwrap_or_default()}</td>
                        <td class="mono muted">{event.address.clone().unwrap_or_default()}</td>
                    </tr>
                </For>
            </tbody>
        </table>
        <Show when=move || events.with(Vec::is_empty) && !loading.get()>
            <div class="empty-state"><p>"No events match."</p></div>
        </Show>
        <Show when=move || cursor.with(Option::is_some)>
            <button class="button" data-test="audit-more" disabled=move || loading.get() on:click=move |_| load(true)>
                "Load more"
            </button>
        </Show>
    }
}
