//! The live connection to `/api/live`. A page opens one with [`Live::connect`], sends
//! subscriptions with [`Live::send`], and gets every server message through its callback.
//! Dropping the handle closes the socket.

use std::{cell::Cell, rc::Rc};

use futures_channel::mpsc;
use futures_util::{SinkExt, StreamExt};
use gloo_net::websocket::{Message, futures::WebSocket};
use leptos::{prelude::*, task::spawn_local};
use loupe_protocol::{ClientMessage, Review, ServerMessage};

pub struct Live {
    outgoing: mpsc::UnboundedSender<ClientMessage>,
    /// Cleared when the handle is dropped: messages still in flight then reach nobody, so a
    /// page that is gone never has its (disposed) signals written.
    open: Rc<Cell<bool>>,
}

impl Drop for Live {
    fn drop(&mut self) {
        self.open.set(false);
    }
}

impl Live {
    pub fn connect(on_message: impl Fn(ServerMessage) + 'static) -> Result<Live, String> {
        let location = web_sys::window().ok_or("no window")?.location();
        let scheme = if location.protocol().map_err(|_| "no location")? == "https:" {
            "wss"
        } else {
            "ws"
        };
        let host = location.host().map_err(|_| "no host")?;
        let socket = WebSocket::open(&format!("{scheme}://{host}/api/live"))
            .map_err(|error| error.to_string())?;
        let (mut write, mut read) = socket.split();
        let (outgoing, mut queue) = mpsc::unbounded::<ClientMessage>();
        spawn_local(async move {
            while let Some(message) = queue.next().await {
                let Ok(text) = serde_json::to_string(&message) else {
                    continue;
                };
                if write.send(Message::Text(text)).await.is_err() {
                    break;
                }
            }
            // The page let go of the handle: close the socket, which ends the reader too.
            let _ = write.close().await;
        });
        let open = Rc::new(Cell::new(true));
        let still_open = open.clone();
        spawn_local(async move {
            while let Some(Ok(message)) = read.next().await {
                if !still_open.get() {
                    break;
                }
                if let Message::Text(text) = message
                    && let Ok(message) = serde_json::from_str::<ServerMessage>(&text)
                {
                    on_message(message);
                }
            }
        });
        Ok(Live { outgoing, open })
    }

    pub fn send(&self, message: ClientMessage) {
        let _ = self.outgoing.unbounded_send(message);
    }
}

/// Opens a live connection that calls `changed` with every review the caller may see, as it is
/// requested or changes, and with none when changes were missed (read everything again);
/// closed when the page goes.
pub fn watch_reviews(changed: impl Fn(Option<Review>) + 'static) {
    let live = StoredValue::new_local(None::<Live>);
    if let Ok(connection) = Live::connect(move |message| match message {
        ServerMessage::Review { review, .. } => changed(Some(review)),
        ServerMessage::Resync { .. } => changed(None),
        _ => {}
    }) {
        connection.send(ClientMessage::WatchReviews {
            id: "reviews".into(),
        });
        live.set_value(Some(connection));
    }
    on_cleanup(move || live.set_value(None));
}
