//! The live channel, `GET /api/live`: one WebSocket per browser tab, shared by every page through
//! Leptos context ([`LiveChannel`], provided by the app). A page asks for a watch and gets a
//! [`Watch`] handle; dropping the handle unwatches.
//!
//! The channel reconnects by itself when the socket closes (a server restart, a network blip),
//! with exponential backoff from half a second to ten, and then asks for every watch again:
//! a session's watch resumes from the position its messages reached (the last event and how much
//! of it arrived, the `after`/`offset` resume rule of `watch_session`), so output continues with
//! no gap and no duplicate. Every watch then gets a `resync`, so a page reads again what may
//! have changed meanwhile (a list; a session's earlier events that an agent appended to). [`LiveChannel::state`] tells the page whether it is following or reconnecting.

use std::{cell::RefCell, collections::HashMap, rc::Rc, time::Duration};

use futures_channel::mpsc;
use futures_util::{SinkExt, StreamExt};
use gloo_net::websocket::{Message, futures::WebSocket};
use leptos::{prelude::*, task::spawn_local};
use loupe_protocol::{ClientMessage, EventKind, Review, ServerMessage};

/// Where the channel stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// No watch needs the socket, or it is open and answering.
    Live,
    /// The socket closed; the next attempt is under way or waiting out its backoff.
    Reconnecting,
}

/// First wait before reconnecting, doubled per failed attempt up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// The tab's live channel. Cheap to copy; get it with [`LiveChannel::get`].
#[derive(Clone, Copy)]
pub struct LiveChannel {
    hub: StoredValue<Rc<RefCell<Hub>>, LocalStorage>,
    pub state: RwSignal<LinkState>,
}

#[derive(Default)]
struct Hub {
    next_id: u64,
    watches: HashMap<String, WatchEntry>,
    /// The open socket's writer, while there is one.
    outgoing: Option<mpsc::UnboundedSender<ClientMessage>>,
    /// Bumped per socket, so a closed socket's reader knows it is no longer current.
    generation: u64,
}

/// What a page does with each message of its watch.
type Handler = Rc<dyn Fn(ServerMessage)>;

struct WatchEntry {
    kind: WatchKind,
    on_message: Handler,
}

enum WatchKind {
    /// A session's events, with how far they have arrived: the last event seen and how much of
    /// it (bytes of output, rows of a result).
    Session {
        session: String,
        after: u64,
        offset: Option<u64>,
    },
    Sessions(loupe_protocol::SessionQuery),
    Reviews,
}

impl WatchKind {
    fn request(&self, id: &str) -> ClientMessage {
        let id = id.to_owned();
        match self {
            WatchKind::Session {
                session,
                after,
                offset,
            } => ClientMessage::WatchSession {
                id,
                session: session.clone(),
                after: *after,
                offset: *offset,
            },
            WatchKind::Sessions(filter) => ClientMessage::WatchSessions {
                id,
                filter: filter.clone(),
            },
            WatchKind::Reviews => ClientMessage::WatchReviews { id },
        }
    }

    /// Moves a session watch's position past what `message` delivered.
    fn advance(&mut self, message: &ServerMessage) {
        let WatchKind::Session { after, offset, .. } = self else {
            return;
        };
        match message {
            ServerMessage::Event { event, .. } if event.seq >= *after => {
                *after = event.seq;
                *offset = match event.kind {
                    EventKind::Output => Some(event.bytes),
                    EventKind::Result => Some(event.rows),
                    _ => None,
                };
            }
            ServerMessage::Output { seq, piece, .. } if *seq == *after => {
                let end = piece.offset + piece.bytes;
                *offset = Some(offset.unwrap_or(0).max(end));
            }
            ServerMessage::Rows { seq, total, .. } if *seq == *after => {
                *offset = Some(offset.unwrap_or(0).max(*total));
            }
            _ => {}
        }
    }
}

/// A watch in place; dropping it unwatches.
pub struct Watch {
    id: String,
    channel: LiveChannel,
}

impl Drop for Watch {
    fn drop(&mut self) {
        // The page may be going away with the app itself; the hub may be gone then.
        let Some(hub) = self.channel.hub.try_get_value() else {
            return;
        };
        let mut hub = hub.borrow_mut();
        hub.watches.remove(&self.id);
        if let Some(outgoing) = &hub.outgoing {
            let _ = outgoing.unbounded_send(ClientMessage::Unwatch {
                id: self.id.clone(),
            });
        }
        if hub.watches.is_empty() {
            // Nothing needs the socket: closing the writer closes it, and a reconnect under
            // way stops (its generation is no longer current).
            hub.outgoing = None;
            hub.generation += 1;
            self.channel.state.try_set(LinkState::Live);
        }
    }
}

impl LiveChannel {
    /// Provides the tab's channel to every page; called once by the app.
    pub fn provide() {
        provide_context(LiveChannel {
            hub: StoredValue::new_local(Rc::new(RefCell::new(Hub::default()))),
            state: RwSignal::new(LinkState::Live),
        });
    }

    pub fn get() -> LiveChannel {
        expect_context::<LiveChannel>()
    }

    /// One session's events from the first, then live; `on_message` gets every message for it.
    pub fn watch_session(
        self,
        session: &str,
        on_message: impl Fn(ServerMessage) + 'static,
    ) -> Watch {
        self.watch(
            WatchKind::Session {
                session: session.to_owned(),
                after: 0,
                offset: None,
            },
            on_message,
        )
    }

    /// One session's events from output event `after`'s byte `offset` on (the rest of that
    /// event, then later events), then live: what a terminal player that has drawn the screen up
    /// to there needs.
    pub fn watch_session_from(
        self,
        session: &str,
        after: u64,
        offset: u64,
        on_message: impl Fn(ServerMessage) + 'static,
    ) -> Watch {
        self.watch(
            WatchKind::Session {
                session: session.to_owned(),
                after,
                offset: Some(offset),
            },
            on_message,
        )
    }

    /// Sessions matching `filter` as they start, change and end.
    pub fn watch_sessions(
        self,
        filter: loupe_protocol::SessionQuery,
        on_message: impl Fn(ServerMessage) + 'static,
    ) -> Watch {
        self.watch(WatchKind::Sessions(filter), on_message)
    }

    /// Every review the caller may see as it is requested or changes.
    pub fn watch_reviews(self, on_message: impl Fn(ServerMessage) + 'static) -> Watch {
        self.watch(WatchKind::Reviews, on_message)
    }

    fn watch(self, kind: WatchKind, on_message: impl Fn(ServerMessage) + 'static) -> Watch {
        let hub = self.hub.get_value();
        let (id, request, outgoing) = {
            let mut hub = hub.borrow_mut();
            hub.next_id += 1;
            let id = format!("w{}", hub.next_id);
            let request = kind.request(&id);
            hub.watches.insert(
                id.clone(),
                WatchEntry {
                    kind,
                    on_message: Rc::new(on_message),
                },
            );
            (id, request, hub.outgoing.clone())
        };
        match outgoing {
            Some(outgoing) => drop(outgoing.unbounded_send(request)),
            None => self.open(0),
        }
        Watch { id, channel: self }
    }

    /// Opens a socket (after the backoff for `attempt`) and asks for every watch on it.
    fn open(self, attempt: u32) {
        let hub = self.hub.get_value();
        let (outgoing, mut queue) = mpsc::unbounded::<ClientMessage>();
        let generation = {
            let mut hub = hub.borrow_mut();
            hub.generation += 1;
            hub.outgoing = Some(outgoing.clone());
            for (id, watch) in &hub.watches {
                let _ = outgoing.unbounded_send(watch.kind.request(id));
            }
            hub.generation
        };
        let current = move || {
            let hub = hub.borrow();
            hub.generation == generation && !hub.watches.is_empty()
        };
        let hub = self.hub.get_value();
        spawn_local(async move {
            if attempt > 0 {
                let wait = FIRST_BACKOFF
                    .saturating_mul(1 << (attempt - 1).min(5))
                    .min(MAX_BACKOFF);
                sleep(wait).await;
            }
            let socket = match socket_url("/api/live")
                .and_then(|url| WebSocket::open(&url).map_err(|error| error.to_string()))
            {
                Ok(socket) if current() => socket,
                _ if !current() => return,
                _ => return self.reopen(generation, attempt),
            };
            let (mut write, mut read) = socket.split();
            spawn_local(async move {
                while let Some(message) = queue.next().await {
                    let Ok(text) = serde_json::to_string(&message) else {
                        continue;
                    };
                    if write.send(Message::Text(text)).await.is_err() {
                        break;
                    }
                }
                let _ = write.close().await;
            });
            let mut answered = false;
            while let Some(Ok(message)) = read.next().await {
                if !current() {
                    return;
                }
                if !answered {
                    answered = true;
                    self.state.try_set(LinkState::Live);
                    if attempt > 0 {
                        Self::resync_all(&hub);
                    }
                }
                if let Message::Text(text) = message
                    && let Ok(message) = serde_json::from_str::<ServerMessage>(&text)
                {
                    self.deliver(&hub, message);
                }
            }
            // Closed by the server or the network while watches still need it.
            if current() {
                self.reopen(generation, if answered { 0 } else { attempt });
            }
        });
    }

    fn reopen(self, generation: u64, attempt: u32) {
        let Some(hub) = self.hub.try_get_value() else {
            return;
        };
        {
            let mut hub = hub.borrow_mut();
            if hub.generation != generation {
                return;
            }
            hub.outgoing = None;
        }
        self.state.try_set(LinkState::Reconnecting);
        self.open(attempt + 1);
    }

    /// After a reconnect, tells every watch that changes may have been missed meanwhile (their
    /// requests, session positions included, went out when the socket opened).
    fn resync_all(hub: &Rc<RefCell<Hub>>) {
        let handlers: Vec<(String, Handler)> = hub
            .borrow()
            .watches
            .iter()
            .map(|(id, watch)| (id.clone(), watch.on_message.clone()))
            .collect();
        for (id, handler) in handlers {
            let reason = "reconnected after the live connection closed".to_owned();
            handler(ServerMessage::Resync { id, reason });
        }
    }

    /// Hands `message` to its watch, keeping a session watch's position; a `resync` for a
    /// session is also answered here by watching again from that position.
    fn deliver(self, hub: &Rc<RefCell<Hub>>, message: ServerMessage) {
        let Some(id) = message.subscription().map(str::to_owned) else {
            return;
        };
        let handler = {
            let mut hub = hub.borrow_mut();
            let Hub {
                watches, outgoing, ..
            } = &mut *hub;
            let Some(watch) = watches.get_mut(&id) else {
                return;
            };
            watch.kind.advance(&message);
            // The server dropped a session watch that fell behind: watch again from where its
            // messages reached (the handler hears of it too, to read what may have grown).
            if matches!(message, ServerMessage::Resync { .. })
                && let WatchKind::Session { .. } = watch.kind
                && let Some(outgoing) = outgoing
            {
                let _ = outgoing.unbounded_send(watch.kind.request(&id));
            }
            watch.on_message.clone()
        };
        // Called with the hub released: a handler may add or drop watches.
        handler(message);
    }
}

/// `ws(s)://<this host><path>`, e.g. `/api/live`.
pub(crate) fn socket_url(path: &str) -> Result<String, String> {
    let location = web_sys::window().ok_or("no window")?.location();
    let scheme = if location.protocol().map_err(|_| "no location")? == "https:" {
        "wss"
    } else {
        "ws"
    };
    let host = location.host().map_err(|_| "no host")?;
    Ok(format!("{scheme}://{host}{path}"))
}

/// Waits `duration` on the browser's timer.
async fn sleep(duration: Duration) {
    let (done, wait) = futures_channel::oneshot::channel::<()>();
    set_timeout(
        move || {
            let _ = done.send(());
        },
        duration,
    );
    let _ = wait.await;
}

/// Follows reviews while the calling page lives: `changed` gets every review the caller may see
/// as it is requested or changes, and none when changes may have been missed (read again).
pub fn watch_reviews(changed: impl Fn(Option<Review>) + 'static) {
    let watch = LiveChannel::get().watch_reviews(move |message| match message {
        ServerMessage::Review { review, .. } => changed(Some(review)),
        ServerMessage::Resync { .. } => changed(None),
        _ => {}
    });
    let watch = StoredValue::new_local(Some(watch));
    on_cleanup(move || watch.set_value(None));
}
