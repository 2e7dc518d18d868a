//! A session's events in the order they were recorded, each drawn for what it is: input in its
//! own language, output as a terminal draws it, results as a grid, errors with their code. The
//! session page and the Run page show a run the same way through it.

use leptos::prelude::*;
use loupe_protocol::EventKind;

use crate::{
    components::{output_view::OutputView, rows_view::RowsView, session_bits::InputText},
    format::absolute_time,
    session_feed::{Entry, SessionFeed},
};

/// Every event of `feed`, live. `preview` is the server's (output bytes, rows) per page;
/// `test` names the section for the browser tests.
#[component]
pub fn Timeline(feed: SessionFeed, preview: Memo<(u64, u64)>, test: &'static str) -> impl IntoView {
    let session_id = move || {
        feed.session
            .with_untracked(|session| session.as_ref().map(|session| session.id.clone()))
            .unwrap_or_default()
    };
    let connection_kind = move || {
        feed.session
            .with_untracked(|session| {
                session
                    .as_ref()
                    .map(|session| session.connection.kind.clone())
            })
            .unwrap_or_default()
    };
    view! {
        <section class="timeline" aria-label="Activity log" data-test=test>
            <For each=move || feed.entries.get() key=|entry| entry.event.seq let:entry>
                <EventView session_id=session_id() entry=entry preview=preview.get_untracked() connection_kind=connection_kind()/>
            </For>
        </section>
    }
}

#[component]
fn EventView(
    session_id: String,
    entry: Entry,
    preview: (u64, u64),
    connection_kind: String,
) -> impl IntoView {
    let event = entry.event.clone();
    let time = absolute_time(event.at);
    let body = match event.kind {
        EventKind::Input => view! { <InputText text=event.text.clone().unwrap_or(event.summary.clone()) connection_kind=connection_kind test="input"/> }.into_any(),
        EventKind::Output => view! { <OutputView session=session_id seq=event.seq total=entry.bytes tail=entry.tail page_bytes=preview.0/> }.into_any(),
        EventKind::Result => view! { <RowsView session=session_id seq=event.seq columns=event.columns.clone().unwrap_or_default() total=entry.rows block_rows=preview.1/> }.into_any(),
        EventKind::Error => {
            let code = event.code.clone().map(|code| format!(" ({code})")).unwrap_or_default();
            view! { <p class="error-text" data-test="error">{event.text.clone().unwrap_or(event.summary.clone())}{code}</p> }.into_any()
        }
        EventKind::Exit => view! { <p data-test="exit">{event.summary.clone()}</p> }.into_any(),
        EventKind::Note | EventKind::Resize => view! { <p class="muted">{event.summary.clone()}</p> }.into_any(),
    };
    view! {
        <article class="event" data-test="event" data-kind=event.kind.as_str() data-seq=event.seq>
            <header><span class="badge">{event.kind.as_str()}</span><time class="muted">{time}</time></header>
            {body}
        </article>
    }
}
