//! `/run`: choose a connection, write SQL or a command, run it (button or Ctrl+Enter), and watch
//! the output stream in below, with a link to the full session.

use leptos::{prelude::*, task::spawn_local};
use leptos_router::components::A;
use loupe_protocol::{ClientMessage, EventKind, RunRequest, ServerMessage, Session};

use crate::{
    api,
    components::{feedback::ErrorLine, session_bits::StatusBadge},
    live::Live,
};

#[component]
pub fn RunPage() -> impl IntoView {
    let connections = LocalResource::new(api::connections);
    let connection = RwSignal::new(String::new());
    let input = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let session = RwSignal::new(None::<Session>);
    // Lines about the run (statements, errors, notes), and the output by byte offset: what was
    // recorded before the watch began is fetched, what comes after arrives live.
    let lines = RwSignal::new(Vec::<String>::new());
    let output = RwSignal::new(std::collections::BTreeMap::<(u64, u64), String>::new());
    let live = StoredValue::new_local(None::<Live>);
    on_cleanup(move || live.set_value(None));

    let run = move || {
        let request = RunRequest {
            connection: connection.get_untracked(),
            input: input.get_untracked(),
        };
        if request.connection.is_empty() {
            return error.set(Some("Choose a connection first".into()));
        }
        lines.set(Vec::new());
        output.set(Default::default());
        spawn_local(async move {
            match api::run(&request).await {
                Ok(started) => {
                    error.set(None);
                    let id = started.id.clone();
                    session.set(Some(started));
                    let session_id = id.clone();
                    let on_message = move |message: ServerMessage| match message {
                        ServerMessage::Output { seq, piece, .. } => {
                            output.update(|text| drop(text.insert((seq, piece.offset), piece.text)))
                        }
                        ServerMessage::Event { event, .. } => match event.kind {
                            EventKind::Input => {
                                lines.update(|lines| lines.push(format!("> {}", event.summary)))
                            }
                            EventKind::Error => lines.update(|lines| {
                                lines
                                    .push(format!("ERROR: {}", event.text.unwrap_or(event.summary)))
                            }),
                            EventKind::Result => lines.update(|lines| {
                                lines.push(format!(
                                    "[result: {} — open the session for its rows]",
                                    event.summary
                                ))
                            }),
                            EventKind::Note | EventKind::Exit => {
                                lines.update(|lines| lines.push(format!("-- {}", event.summary)))
                            }
                            EventKind::Output if event.bytes > 0 => {
                                let (session_id, seq, bytes) =
                                    (session_id.clone(), event.seq, event.bytes);
                                spawn_local(async move {
                                    if let Ok(window) =
                                        api::output(&session_id, seq, 0, bytes.min(1024 * 1024))
                                            .await
                                    {
                                        output.update(|text| {
                                            for piece in window.pieces {
                                                text.insert((seq, piece.offset), piece.text);
                                            }
                                        });
                                    }
                                });
                            }
                            EventKind::Output => {}
                        },
                        ServerMessage::Session {
                            session: snapshot, ..
                        } => session.set(Some(snapshot)),
                        _ => {}
                    };
                    match Live::connect(on_message) {
                        Ok(connection) => {
                            connection.send(ClientMessage::WatchSession {
                                id: "run".into(),
                                session: id,
                                after: 0,
                            });
                            live.set_value(Some(connection));
                        }
                        Err(failure) => error.set(Some(format!("Live output is off: {failure}"))),
                    }
                }
                Err(failure) => error.set(Some(failure.to_string())),
            }
        });
    };

    view! {
        <section class="page-head">
            <h1 data-test="page-title">"Run"</h1>
            <p class="muted">"Run SQL or a command through a connection; the output streams in as it is recorded."</p>
        </section>
        <form class="card run-form" on:submit=move |event| { event.prevent_default(); run(); }>
            <label>"Connection"
                <select data-test="run-connection" on:change=move |event| connection.set(event_target_value(&event))>
                    <option value="">"Choose…"</option>
                    {move || connections.get().and_then(Result::ok).unwrap_or_default().into_iter().map(|connection| view! {
                        <option value=connection.name.clone()>{format!("{} ({})", connection.name, connection.kind.as_str())}</option>
                    }).collect_view()}
                </select>
            </label>
            <label>"SQL or command (Ctrl+Enter runs it)"
                <textarea data-test="run-input" rows="6" class="mono" bind:value=input
                    on:keydown=move |event| if event.key() == "Enter" && (event.ctrl_key() || event.meta_key()) { event.prevent_default(); run(); }>
                </textarea>
            </label>
            <button class="button primary" type="submit" data-test="run-submit">"Run"</button>
        </form>
        <ErrorLine error=error/>
        {move || session.get().map(|current| view! {
            <div class="run-status" data-test="run-status">
                <StatusBadge status=current.status/>
                " "<A href=format!("/sessions/{}", current.id) attr:data-test="run-session-link">"Open the session"</A>
            </div>
        })}
        <Show when=move || lines.with(|lines| !lines.is_empty()) || output.with(|text| !text.is_empty())>
            <pre class="output run-output" data-test="run-output">
                {move || lines.get().join("\n")}"\n"
                {move || output.with(|text| text.values().cloned().collect::<String>())}
            </pre>
        </Show>
    }
}
