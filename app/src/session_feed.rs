//! A session's live messages read into page state: the one reducer the session page and the Run
//! page share, so both show the same thing for the same messages.

use leptos::{prelude::*, task::spawn_local};
use loupe_protocol::{OutputPiece, ServerMessage, Session, SessionEvent};

use crate::{
    api,
    live::{LiveChannel, Watch},
};

/// An event in the timeline, with the signals live updates write to.
#[derive(Clone)]
pub struct Entry {
    pub event: SessionEvent,
    /// Output bytes or result rows recorded so far.
    pub bytes: RwSignal<u64>,
    pub rows: RwSignal<u64>,
    /// Live output pieces not yet taken by the output view.
    pub tail: RwSignal<Vec<OutputPiece>>,
}

impl Entry {
    pub fn new(event: SessionEvent) -> Entry {
        Entry {
            bytes: RwSignal::new(event.bytes),
            rows: RwSignal::new(event.rows),
            tail: RwSignal::new(Vec::new()),
            event,
        }
    }
}

/// The session, its timeline, and what stopped the live view, if anything.
#[derive(Clone, Copy)]
pub struct SessionFeed {
    pub session: RwSignal<Option<Session>>,
    pub entries: RwSignal<Vec<Entry>>,
    pub problem: RwSignal<Option<String>>,
}

impl SessionFeed {
    pub fn new() -> SessionFeed {
        SessionFeed {
            session: RwSignal::new(None),
            entries: RwSignal::new(Vec::new()),
            problem: RwSignal::new(None),
        }
    }

    /// Follows session `id` on the tab's live channel while the returned handle lives. When
    /// the channel says changes may have been missed (it reconnected, or fell behind), the
    /// session and its events are read again, so events that grew meanwhile catch up too.
    pub fn follow(self, channel: LiveChannel, id: &str) -> Watch {
        let session = id.to_owned();
        channel.watch_session(id, move |message| match message {
            ServerMessage::Resync { .. } => self.refresh(session.clone()),
            message => self.apply(message),
        })
    }

    /// Reads the session and every event's size again, as if their messages had arrived.
    fn refresh(self, id: String) {
        spawn_local(async move {
            if let Ok(found) = api::session(&id).await {
                self.session.try_set(Some(found));
            }
            let mut after = 0;
            while let Ok(page) = api::events(&id, after).await {
                for event in page.items {
                    after = event.seq;
                    self.apply(ServerMessage::Event {
                        id: String::new(),
                        session: id.clone(),
                        event,
                    });
                }
                if page.next_after.is_none() {
                    break;
                }
            }
        });
    }

    /// Reads one message of the session's watch. The watch starts from the first event: known
    /// events bring their sizes up to date (what was recorded between a page's read and the
    /// watch is fetched by the views), new ones join the timeline. Writes are `try_` ones: a
    /// refresh may finish after the page that asked for it is gone.
    pub fn apply(self, message: ServerMessage) {
        match message {
            ServerMessage::Event { event, .. } => {
                let known = self.entry(event.seq);
                match known {
                    Some(entry) => {
                        entry
                            .bytes
                            .try_update(|bytes| *bytes = (*bytes).max(event.bytes));
                        entry
                            .rows
                            .try_update(|rows| *rows = (*rows).max(event.rows));
                    }
                    None => drop(self.entries.try_update(|entries| {
                        let at = entries.partition_point(|entry| entry.event.seq < event.seq);
                        entries.insert(at, Entry::new(event));
                    })),
                }
            }
            ServerMessage::Output { seq, piece, .. } => {
                if let Some(entry) = self.entry(seq) {
                    entry.tail.try_update(|tail| tail.push(piece));
                }
            }
            ServerMessage::Rows { seq, total, .. } => {
                if let Some(entry) = self.entry(seq) {
                    entry.rows.try_set(total);
                }
            }
            ServerMessage::Session { session, .. } => drop(self.session.try_set(Some(session))),
            // Access ended while watching (a share revoked, the login ended): say so, since
            // nothing more will arrive.
            ServerMessage::Error { message, .. } => drop(self.problem.try_set(Some(message))),
            _ => {}
        }
    }

    fn entry(self, seq: u64) -> Option<Entry> {
        self.entries
            .try_with_untracked(|entries| {
                entries.iter().find(|entry| entry.event.seq == seq).cloned()
            })
            .flatten()
    }
}
