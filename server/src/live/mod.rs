//! The live hub: what the recorder commits is published here, and every WebSocket of this node
//! (see `socket.rs`) takes what its subscriptions need. With PostgreSQL, nodes also tell each
//! other through `LISTEN/NOTIFY` (small payloads; the events themselves are read from the
//! store), so a watcher on one node sees sessions run through another.

pub mod socket;

use std::{future::Future, pin::Pin, sync::Arc};

use loupe_protocol::Review;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::{
    identity::auth::Actor,
    sessions::{
        self,
        notice::{Notice, Publish},
        text,
    },
    store::Store,
};

/// A review's new state, as each caller may see it. The review domain implements it
/// (`crate::reviews::view::ReviewNotice`); the hub and its sockets only carry it and ask it.
pub trait ReviewChange: Send + Sync {
    fn review_id(&self) -> &str;
    /// The review as `actor` (in `groups`) sees it, with their actions; none when hidden.
    fn for_actor(&self, actor: &Actor, groups: &[String]) -> Option<Review>;
}

/// Reads a review's change again from the store, by id: how a node rebuilds what another node
/// relayed. Given by the composition root (`lib.rs`), so live does not depend on reviews.
pub type ReadReview = Arc<
    dyn Fn(Store, String) -> Pin<Box<dyn Future<Output = Option<Arc<dyn ReviewChange>>> + Send>>
        + Send
        + Sync,
>;

/// This node's fan-out. Bounded: a socket that falls more than `capacity` notices behind is
/// told to resync rather than being waited for.
#[derive(Clone)]
pub struct Hub {
    sender: broadcast::Sender<Arc<Notice>>,
    reviews: broadcast::Sender<Arc<dyn ReviewChange>>,
    /// "Someone's access changed": every socket checks its caller and subscriptions again.
    access: broadcast::Sender<()>,
    node_id: String,
}

/// One socket's receivers: session changes, review changes, access changes.
pub struct Subscription {
    pub notices: broadcast::Receiver<Arc<Notice>>,
    pub reviews: broadcast::Receiver<Arc<dyn ReviewChange>>,
    pub access: broadcast::Receiver<()>,
}

impl Hub {
    pub fn new(capacity: usize, node_id: String) -> Hub {
        let (sender, _) = broadcast::channel(capacity.max(1));
        let (reviews, _) = broadcast::channel(capacity.max(1));
        // One pending "check again" is as good as many.
        let (access, _) = broadcast::channel(1);
        Hub {
            sender,
            reviews,
            access,
            node_id,
        }
    }

    pub fn subscribe(&self) -> Subscription {
        Subscription {
            notices: self.sender.subscribe(),
            reviews: self.reviews.subscribe(),
            access: self.access.subscribe(),
        }
    }

    /// Tells every socket, on this node and (PostgreSQL) the others, that someone's access
    /// changed (a share revoked, a user disabled, a login ended, a token revoked, a membership
    /// changed), so each checks its caller and subscriptions again at once.
    pub async fn access_changed(&self, store: &Store) {
        if store.relays_live() {
            let relay = Relay {
                node: self.node_id.clone(),
                access: true,
                ..Relay::default()
            };
            if let Err(error) = store
                .notify_live(&serde_json::to_string(&relay).expect("relays serialize"))
                .await
            {
                tracing::warn!(%error, "could not tell other nodes that access changed");
            }
        }
        let _ = self.access.send(());
    }

    /// Publishes a review's new state on this node, and (PostgreSQL) tells the other nodes.
    pub async fn publish_review(&self, store: &Store, notice: impl ReviewChange + 'static) {
        if store.relays_live() {
            let relay = Relay {
                node: self.node_id.clone(),
                review: Some(notice.review_id().to_owned()),
                ..Relay::default()
            };
            if let Err(error) = store
                .notify_live(&serde_json::to_string(&relay).expect("relays serialize"))
                .await
            {
                tracing::warn!(%error, "could not tell other nodes about a review");
            }
        }
        let _ = self.reviews.send(Arc::new(notice));
    }

    /// Whether any socket on this node is listening.
    pub fn has_local_watchers(&self) -> bool {
        self.sender.receiver_count() > 0
    }

    /// Publishes on this node, and (PostgreSQL) tells the other nodes.
    pub async fn publish(&self, store: &Store, notice: Notice) {
        if notice.is_empty() {
            return;
        }
        if store.relays_live() {
            let relay = Relay {
                node: self.node_id.clone(),
                session: notice.session_id.clone(),
                events: notice.events.iter().map(|event| event.seq).collect(),
                output: notice
                    .output
                    .iter()
                    .map(|(seq, piece, length)| (*seq, piece.offset, piece.offset + length))
                    .collect(),
                rows: notice.rows.clone(),
                session_changed: notice.session.is_some(),
                review: None,
                access: false,
            };
            match serde_json::to_string(&relay) {
                Ok(payload) if payload.len() < 7000 => {
                    if let Err(error) = store.notify_live(&payload).await {
                        tracing::warn!(%error, "could not tell other nodes about a change");
                    }
                }
                // Too much for one NOTIFY: send what lets the others catch up from the store.
                _ => {
                    let small = Relay {
                        events: relay.events.first().copied().into_iter().collect(),
                        output: Vec::new(),
                        ..relay
                    };
                    let _ = store
                        .notify_live(&serde_json::to_string(&small).unwrap_or_default())
                        .await;
                }
            }
        }
        // No receivers is fine: nobody is watching.
        let _ = self.sender.send(Arc::new(notice));
    }

    /// Publishes what another node notified, rebuilt from the store.
    async fn republish(&self, store: &Store, relay: Relay, read_review: &ReadReview) {
        if relay.node == self.node_id {
            return;
        }
        if relay.access {
            let _ = self.access.send(());
            return;
        }
        if let Some(id) = relay.review {
            match read_review(store.clone(), id).await {
                Some(notice) => drop(self.reviews.send(notice)),
                None => tracing::warn!("could not read a relayed review"),
            }
            return;
        }
        let mut notice = Notice {
            session_id: relay.session.clone(),
            rows: relay.rows,
            ..Notice::default()
        };
        if let (Some(first), Some(last)) = (relay.events.first(), relay.events.iter().max()) {
            match store
                .session_events(
                    &relay.session,
                    first.saturating_sub(1) as i64,
                    (last - first + 1).min(500) as u32,
                )
                .await
            {
                Ok(events) => notice.events = events.into_iter().map(sessions::to_event).collect(),
                Err(error) => tracing::warn!(%error, "could not read relayed events"),
            }
        }
        for (seq, from, to) in relay.output {
            if let Ok((pieces, _, _)) = text::read(store, &relay.session, seq, from, to).await {
                notice.output.extend(
                    pieces
                        .into_iter()
                        .map(|(piece, length)| (seq, piece, length)),
                );
            }
        }
        if relay.session_changed {
            notice.session = store
                .session(&relay.session)
                .await
                .ok()
                .flatten()
                .map(sessions::to_session);
        }
        let _ = self.sender.send(Arc::new(notice));
    }

    /// Listens to the other nodes for as long as the server runs (PostgreSQL only).
    /// `read_review` rebuilds a relayed review's change from the store.
    pub fn relay_from_other_nodes(&self, store: Store, read_review: ReadReview) {
        if !store.relays_live() {
            return;
        }
        let hub = self.clone();
        tokio::spawn(async move {
            loop {
                match store.listen_live().await {
                    Ok(mut listener) => loop {
                        match listener.recv().await {
                            Ok(notification) => {
                                if let Ok(relay) =
                                    serde_json::from_str::<Relay>(notification.payload())
                                {
                                    hub.republish(&store, relay, &read_review).await;
                                }
                            }
                            Err(error) => {
                                tracing::warn!(%error, "lost the live relay; listening again");
                                break;
                            }
                        }
                    },
                    Err(error) => tracing::warn!(%error, "cannot listen for other nodes' changes"),
                }
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        });
    }
}

impl Publish for Hub {
    fn has_local_watchers(&self) -> bool {
        Hub::has_local_watchers(self)
    }

    async fn publish(&self, store: &Store, notice: Notice) {
        Hub::publish(self, store, notice).await;
    }
}

/// What one node tells the others: which session, which seqs, which byte ranges; or which
/// review changed.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct Relay {
    node: String,
    session: String,
    events: Vec<u64>,
    output: Vec<(u64, u64, u64)>,
    rows: Vec<(u64, u64)>,
    session_changed: bool,
    review: Option<String>,
    access: bool,
}
