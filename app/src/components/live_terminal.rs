//! A terminal the user types into: xterm.js over the terminal WebSocket of a shell or ssh
//! connection (`/api/connections/{id}/terminal`), sized to its box and resized with the window.
//! The session it becomes is recorded like any other; its page can be opened from here.

use futures_util::{SinkExt, StreamExt};
use gloo_net::websocket::{Message, futures::WebSocket};
use leptos::{html, prelude::*, task::spawn_local};
use leptos_router::components::A;
use loupe_protocol::{SessionStatus, TerminalNotice, TerminalRequest};
use wasm_bindgen::{JsCast, prelude::Closure};

use crate::{live::socket_url, xterm};

/// What the terminal says about itself above the screen.
#[derive(Clone, PartialEq)]
enum State {
    Connecting,
    Open,
    Ended(String),
    Failed(String),
}

#[component]
pub fn LiveTerminal(connection: String) -> impl IntoView {
    let host = NodeRef::<html::Div>::new();
    let state = RwSignal::new(State::Connecting);
    let session = RwSignal::new(None::<String>);
    // The terminal and its socket's sender live as long as the component.
    let kept = StoredValue::new_local(None::<Kept>);
    on_cleanup(move || kept.set_value(None));
    Effect::new(move |started: Option<bool>| {
        if started == Some(true) {
            return true;
        }
        let Some(element) = host.get() else {
            return false;
        };
        let connection = connection.clone();
        spawn_local(async move {
            if let Err(reason) = start(element, &connection, state, session, kept).await {
                state.try_set(State::Failed(reason));
            }
        });
        true
    });
    view! {
        <div class="live-terminal" data-test="live-terminal">
            <div class="terminal-bar">
                {move || match state.get() {
                    State::Connecting => view! { <span class="muted">"Connecting…"</span> }.into_any(),
                    State::Open => view! { <span class="ok-text" data-test="terminal-open">"Connected: what you type goes to the terminal, and everything is recorded."</span> }.into_any(),
                    State::Ended(text) => view! { <span data-test="terminal-ended">{text}</span> }.into_any(),
                    State::Failed(text) => view! { <span class="error-text" role="alert" data-test="terminal-error">{text}</span> }.into_any(),
                }}
                {move || session.get().map(|id| view! { " " <A href=format!("/sessions/{id}") attr:data-test="terminal-session-link">"Open the session"</A> })}
            </div>
            <div class="terminal-screen" node_ref=host data-test="terminal-screen"></div>
        </div>
    }
}

/// What must stay alive while the terminal is shown.
struct Kept {
    _term: xterm::Term,
    _on_window_resize: Closure<dyn FnMut()>,
    outgoing: futures_channel::mpsc::UnboundedSender<Message>,
}

impl Drop for Kept {
    fn drop(&mut self) {
        if let Some(window) = web_sys::window() {
            let _ = window.remove_event_listener_with_callback(
                "resize",
                self._on_window_resize.as_ref().unchecked_ref(),
            );
        }
        // Closing the channel ends the sending task, which closes the socket.
        self.outgoing.close_channel();
    }
}

async fn start(
    element: web_sys::HtmlDivElement,
    connection: &str,
    state: RwSignal<State>,
    session: RwSignal<Option<String>>,
    kept: StoredValue<Option<Kept>, LocalStorage>,
) -> Result<(), String> {
    xterm::load().await?;
    let (outgoing, mut to_send) = futures_channel::mpsc::unbounded::<Message>();
    let typed = outgoing.clone();
    let mut term = xterm::Term::open(
        &element,
        Some(Box::new(move |keys: String| {
            let _ = typed.unbounded_send(Message::Bytes(keys.into_bytes()));
        })),
    )?;
    term.fit.fit();
    let (cols, rows) = (term.xterm.cols(), term.xterm.rows());
    let resized = outgoing.clone();
    term.on_resize(move |cols, rows| {
        let request = TerminalRequest::Resize { cols, rows };
        if let Ok(text) = serde_json::to_string(&request) {
            let _ = resized.unbounded_send(Message::Text(text));
        }
    });
    let name = js_sys::encode_uri_component(connection);
    let url = socket_url(&format!(
        "/api/connections/{name}/terminal?cols={cols}&rows={rows}"
    ))?;
    let socket = WebSocket::open(&url).map_err(|error| error.to_string())?;
    let (mut sink, mut stream) = socket.split();
    spawn_local(async move {
        while let Some(message) = to_send.next().await {
            if sink.send(message).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    // The fit addon sizes the terminal to its box, which follows the window.
    let fit = term.fit.clone();
    let on_window_resize = Closure::<dyn FnMut()>::new(move || fit.fit());
    if let Some(window) = web_sys::window() {
        let _ = window
            .add_event_listener_with_callback("resize", on_window_resize.as_ref().unchecked_ref());
    }
    term.xterm.focus();
    let screen = term.xterm.clone();
    if kept
        .try_set_value(Some(Kept {
            _term: term,
            _on_window_resize: on_window_resize,
            outgoing,
        }))
        .is_some()
    {
        // The page was left while the terminal opened.
        return Ok(());
    }
    state.try_set(State::Open);
    while let Some(message) = stream.next().await {
        match message {
            Ok(Message::Bytes(bytes)) => screen.put_bytes(&bytes),
            Ok(Message::Text(text)) => match serde_json::from_str::<TerminalNotice>(&text) {
                Ok(TerminalNotice::Started { session: id }) => {
                    session.try_set(Some(id));
                }
                Ok(TerminalNotice::Message { text }) => {
                    screen.put(&format!("\r\n\x1b[1;33m{text}\x1b[0m\r\n"));
                }
                Ok(TerminalNotice::Ended {
                    status,
                    exit_code,
                    reason,
                }) => {
                    let text = match (status, exit_code, reason) {
                        (_, _, Some(reason)) => format!("Ended: {reason}"),
                        (SessionStatus::Done, Some(code), None) => {
                            format!("Ended with exit status {code}")
                        }
                        (status, _, None) => format!("Ended ({})", status.as_str()),
                    };
                    state.try_set(State::Ended(text));
                    return Ok(());
                }
                Err(_) => {}
            },
            Err(error) => return Err(format!("the terminal's connection broke: {error}")),
        }
    }
    state.try_set(State::Ended("The terminal's connection closed".into()));
    Ok(())
}
