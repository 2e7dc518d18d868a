//! One live connection. It subscribes to the hub before it reads anything from the store, so a
//! session watched from seq N gets the stored events after N and then every live one, with
//! nothing falling between the two and repeats dropped by seq (and by byte offset for output).
//! A connection that falls behind the hub's bound is sent `resync` for each subscription; a
//! malformed message gets an `error` and the connection stays up. Written over any
//! `Sink`/`Stream` of WebSocket messages.
//!
//! Access is checked again whenever the hub says someone's access changed and every
//! `LOUPE_LIVE_RECHECK` seconds: a caller whose login ended is sent an `unauthenticated` error
//! and the socket closes; a watch the caller may no longer see is ended with a `forbidden` error.

use std::{collections::HashMap, sync::Arc, time::Duration};

use axum::extract::ws::{CloseFrame, Message};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use loupe_protocol::{ClientMessage, ErrorCode, EventKind, ServerMessage, Session};
use tokio::sync::broadcast::error::RecvError;

use super::{ReviewChange, Subscription};
use crate::{
    error::ApiError,
    identity::auth::{self, Actor},
    sessions::{self, notice::Notice, text},
    store::{SessionFilter, Store, Visibility},
};

const HEARTBEAT: Duration = Duration::from_secs(20);
const CATCH_UP_PAGE: u32 = 500;

enum Watch {
    Session {
        session: String,
        last_seq: u64,
        /// Bytes of each output event the client has, and rows of each result.
        output_seen: HashMap<u64, u64>,
        rows_seen: HashMap<u64, u64>,
    },
    List {
        filter: SessionFilter,
    },
    /// Reviews the caller may see (decided with [`Connection::groups`]).
    Reviews,
}

/// How long the caller's groups are trusted before a review change reads them again.
const GROUPS_FRESH_FOR: Duration = Duration::from_secs(5);

/// Serves one connection until the client leaves. `recheck` is how often its access is checked
/// again without being told (`LOUPE_LIVE_RECHECK`).
pub async fn run<S, R, E>(
    store: Store,
    recheck: Duration,
    actor: Actor,
    sink: S,
    mut incoming: R,
    subscription: Subscription,
) where
    S: Sink<Message> + Unpin,
    R: Stream<Item = Result<Message, E>> + Unpin,
{
    let mut connection = Connection {
        store,
        actor,
        sink,
        watches: HashMap::new(),
        shared: HashMap::new(),
        groups: None,
    };
    let Subscription {
        mut notices,
        mut reviews,
        mut access,
    } = subscription;
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.tick().await;
    let mut recheck = tokio::time::interval(recheck.max(Duration::from_secs(1)));
    recheck.tick().await;
    loop {
        let open = tokio::select! {
            message = incoming.next() => match message {
                Some(Ok(Message::Text(text))) => connection.handle(text.as_str()).await,
                Some(Ok(Message::Binary(_))) => connection.error(None, ApiError::bad_request("message", "send JSON text messages")).await,
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => true,
                Some(Ok(Message::Close(_)) | Err(_)) | None => false,
            },
            notice = notices.recv() => match notice {
                Ok(notice) => {
                    recheck_if_access_changed(&mut connection, &mut access).await
                        && connection.deliver(&notice).await
                }
                Err(RecvError::Lagged(missed)) => connection.resync(missed).await,
                Err(RecvError::Closed) => false,
            },
            review = reviews.recv() => match review {
                Ok(review) => {
                    recheck_if_access_changed(&mut connection, &mut access).await
                        && connection.deliver_review(&review).await
                }
                Err(RecvError::Lagged(missed)) => connection.resync(missed).await,
                Err(RecvError::Closed) => false,
            },
            changed = access.recv() => match changed {
                Ok(()) | Err(RecvError::Lagged(_)) => connection.recheck().await,
                Err(RecvError::Closed) => true,
            },
            _ = recheck.tick() => connection.recheck().await,
            _ = heartbeat.tick() => connection.send(&ServerMessage::Heartbeat).await,
        };
        // Everything a step produced goes out in one write.
        if !open || !connection.flush().await {
            break;
        }
    }
}

/// Acts on an access change that is already waiting before delivering anything else: which of
/// several ready branches `select!` takes is random, and a revoked watch must not receive one
/// more message. False when the connection must close.
async fn recheck_if_access_changed<S: Sink<Message> + Unpin>(
    connection: &mut Connection<S>,
    access: &mut tokio::sync::broadcast::Receiver<()>,
) -> bool {
    match access.try_recv() {
        Ok(()) | Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => {
            connection.recheck().await
        }
        Err(_) => true,
    }
}

struct Connection<S> {
    store: Store,
    actor: Actor,
    sink: S,
    watches: HashMap<String, Watch>,
    /// Whether a session is shared with this user, as last checked.
    shared: HashMap<String, bool>,
    /// The caller's groups and when they were read, for review watches.
    groups: Option<(Vec<String>, std::time::Instant)>,
}

impl<S: Sink<Message> + Unpin> Connection<S> {
    /// Queues one message (sent at the next flush); false when the client is gone.
    async fn send(&mut self, message: &ServerMessage) -> bool {
        match serde_json::to_string(message) {
            Ok(text) => self.sink.feed(Message::Text(text.into())).await.is_ok(),
            Err(_) => true,
        }
    }

    async fn flush(&mut self) -> bool {
        self.sink.flush().await.is_ok()
    }

    async fn error(&mut self, id: Option<String>, error: ApiError) -> bool {
        let message = ServerMessage::Error {
            id,
            code: error.code(),
            message: error.message().to_owned(),
        };
        self.send(&message).await
    }

    async fn handle(&mut self, text: &str) -> bool {
        let request: ClientMessage = match serde_json::from_str(text) {
            Ok(request) => request,
            Err(error) => {
                return self
                    .error(
                        None,
                        ApiError::bad_request(
                            "message",
                            format!("not a message Loupe understands: {error}"),
                        ),
                    )
                    .await;
            }
        };
        match request {
            ClientMessage::Ping { nonce } => self.send(&ServerMessage::Pong { nonce }).await,
            ClientMessage::Unwatch { id } => {
                self.watches.remove(&id);
                true
            }
            ClientMessage::WatchSessions { id, filter } => {
                let visibility = match sessions::visibility(&self.store, &self.actor).await {
                    Ok(visibility) => visibility,
                    Err(error) => return self.error(Some(id), error).await,
                };
                match sessions::filter_from(&filter, visibility) {
                    Ok((filter, _)) => {
                        self.watches.insert(id.clone(), Watch::List { filter });
                        self.send(&ServerMessage::Watching { id }).await
                    }
                    Err(error) => self.error(Some(id), error).await,
                }
            }
            ClientMessage::WatchSession {
                id,
                session,
                after,
                offset,
            } => self.watch_session(id, session, after, offset).await,
            ClientMessage::WatchReviews { id } => {
                // Read afresh: someone may have joined a reviewer group since the last watch.
                self.groups = None;
                match self.groups().await {
                    Ok(_) => {
                        self.watches.insert(id.clone(), Watch::Reviews);
                        self.send(&ServerMessage::Watching { id }).await
                    }
                    Err(error) => self.error(Some(id), error).await,
                }
            }
        }
    }

    /// Checks that the caller's login still works and that they may still see what they watch;
    /// false (after telling them why) when the connection must close.
    async fn recheck(&mut self) -> bool {
        let actor = match auth::refreshed(&self.store, &self.actor).await {
            Ok(Some(actor)) => actor,
            Ok(None) => return self.close_unauthenticated().await,
            // The store did not answer: keep going, and check again at the next tick.
            Err(_) => return true,
        };
        self.actor = actor;
        self.groups = None;
        self.shared.clear();
        let watched: Vec<(String, String)> = self
            .watches
            .iter()
            .filter_map(|(id, watch)| match watch {
                Watch::Session { session, .. } => Some((id.clone(), session.clone())),
                _ => None,
            })
            .collect();
        for (id, session) in watched {
            match sessions::visible_session(&self.store, &self.actor, &session).await {
                Err(error) if error.code() == ErrorCode::NotFound => {
                    self.watches.remove(&id);
                    let ended = ApiError::forbidden(
                        "your access to this session ended; nothing more of it is sent",
                    );
                    if !self.error(Some(id), ended).await {
                        return false;
                    }
                }
                Ok(_) | Err(_) => {}
            }
        }
        if self
            .watches
            .values()
            .any(|watch| matches!(watch, Watch::List { .. }))
            && let Ok(visibility) = sessions::visibility(&self.store, &self.actor).await
        {
            for watch in self.watches.values_mut() {
                if let Watch::List { filter } = watch {
                    filter.visibility = visibility.clone();
                }
            }
        }
        true
    }

    /// Tells the caller their login ended and closes the socket.
    async fn close_unauthenticated(&mut self) -> bool {
        let reason =
            "your login ended (logged out, expired, revoked or the account disabled); log in again";
        let message = ServerMessage::Error {
            id: None,
            code: ErrorCode::Unauthenticated,
            message: reason.to_owned(),
        };
        if self.send(&message).await && self.flush().await {
            let close = CloseFrame {
                // 1008: policy violation, the closest standard code (RFC 6455 §7.4.1).
                code: 1008,
                reason: "login ended".into(),
            };
            let _ = self.sink.send(Message::Close(Some(close))).await;
        }
        false
    }

    /// The caller's groups, read again once they are older than [`GROUPS_FRESH_FOR`], so a
    /// change of membership reaches open review watches.
    async fn groups(&mut self) -> Result<Vec<String>, ApiError> {
        if let Some((groups, read_at)) = &self.groups
            && read_at.elapsed() < GROUPS_FRESH_FOR
        {
            return Ok(groups.clone());
        }
        let groups = sessions::actor_group_ids(&self.store, &self.actor).await?;
        self.groups = Some((groups.clone(), std::time::Instant::now()));
        Ok(groups)
    }

    /// Sends a review's change to each review watch whose caller may see it, with their actions.
    async fn deliver_review(&mut self, notice: &Arc<dyn ReviewChange>) -> bool {
        if !self
            .watches
            .values()
            .any(|watch| matches!(watch, Watch::Reviews))
        {
            return true;
        }
        let groups = match self.groups().await {
            Ok(groups) => groups,
            // The store did not answer: decide with the groups known before.
            Err(_) => match &self.groups {
                Some((groups, _)) => groups.clone(),
                None => return true,
            },
        };
        let mut messages = Vec::new();
        for (id, watch) in &self.watches {
            if let Watch::Reviews = watch
                && let Some(review) = notice.for_actor(&self.actor, &groups)
            {
                messages.push(ServerMessage::Review {
                    id: id.clone(),
                    review,
                });
            }
        }
        for message in messages {
            if !self.send(&message).await {
                return false;
            }
        }
        true
    }

    /// Starts a session watch from event `after`; with `offset`, from that far into event
    /// `after` as well (a client resuming where it stopped).
    async fn watch_session(
        &mut self,
        id: String,
        session_id: String,
        after: u64,
        offset: Option<u64>,
    ) -> bool {
        let record = match sessions::visible_session(&self.store, &self.actor, &session_id).await {
            Ok(record) => record,
            Err(error) => return self.error(Some(id), error).await,
        };
        if !self.send(&ServerMessage::Watching { id: id.clone() }).await {
            return false;
        }
        let (mut last_seq, mut output_seen, mut rows_seen) =
            (after, HashMap::new(), HashMap::new());
        if let Some(offset) = offset.filter(|_| after > 0) {
            let event = match self.store.event(&session_id, after as i64).await {
                Ok(event) => event.map(sessions::to_event),
                Err(error) => return self.error(Some(id), error.into()).await,
            };
            match event {
                Some(event) if event.kind == EventKind::Output => {
                    let Some(end) = self
                        .send_output_since(&id, &session_id, after, offset, event.bytes)
                        .await
                    else {
                        return false;
                    };
                    output_seen.insert(after, end);
                }
                Some(event) if event.kind == EventKind::Result => {
                    rows_seen.insert(after, event.rows.max(offset));
                    if event.rows > offset {
                        let rows = ServerMessage::Rows {
                            id: id.clone(),
                            session: session_id.clone(),
                            seq: after,
                            total: event.rows,
                        };
                        if !self.send(&rows).await {
                            return false;
                        }
                    }
                }
                _ => {}
            }
        }
        loop {
            let page = match self
                .store
                .session_events(&session_id, last_seq as i64, CATCH_UP_PAGE)
                .await
            {
                Ok(page) => page,
                Err(error) => return self.error(Some(id), error.into()).await,
            };
            let full = page.len() == CATCH_UP_PAGE as usize;
            for event in page.into_iter().map(sessions::to_event) {
                last_seq = event.seq;
                match event.kind {
                    EventKind::Output => drop(output_seen.insert(event.seq, event.bytes)),
                    EventKind::Result => drop(rows_seen.insert(event.seq, event.rows)),
                    _ => {}
                }
                let message = ServerMessage::Event {
                    id: id.clone(),
                    session: session_id.clone(),
                    event,
                };
                if !self.send(&message).await {
                    return false;
                }
            }
            if !full {
                break;
            }
        }
        if record.status.is_final() {
            // Everything is stored and nothing more will come.
            let session = sessions::to_session(record);
            return self.send(&ServerMessage::Session { id, session }).await;
        }
        self.watches.insert(
            id,
            Watch::Session {
                session: session_id,
                last_seq,
                output_seen,
                rows_seen,
            },
        );
        true
    }

    /// Sends output event `seq`'s bytes from `from` to `to` as it is stored, in windows cut at
    /// character boundaries; returns where the sent bytes end, or none when the client is gone.
    async fn send_output_since(
        &mut self,
        id: &str,
        session_id: &str,
        seq: u64,
        mut from: u64,
        to: u64,
    ) -> Option<u64> {
        const STEP: u64 = 1024 * 1024;
        while from < to {
            let until = (from + STEP).min(to);
            let (pieces, _, end) = text::read(&self.store, session_id, seq, from, until)
                .await
                .ok()?;
            for (piece, _) in pieces {
                let message = ServerMessage::Output {
                    id: id.to_owned(),
                    session: session_id.to_owned(),
                    seq,
                    piece,
                };
                if !self.send(&message).await {
                    return None;
                }
            }
            if end <= from {
                break;
            }
            from = end;
        }
        Some(from)
    }

    async fn deliver(&mut self, notice: &Notice) -> bool {
        let mut texts = Vec::new();
        let mut ended = Vec::new();
        let mut list_candidates = Vec::new();
        for (id, watch) in &mut self.watches {
            match watch {
                Watch::Session {
                    session,
                    last_seq,
                    output_seen,
                    rows_seen,
                } if *session == notice.session_id => {
                    let json = notice.json();
                    for (event, text) in notice.events.iter().zip(&json.events) {
                        if event.seq <= *last_seq {
                            continue;
                        }
                        *last_seq = event.seq;
                        match event.kind {
                            EventKind::Output => drop(output_seen.insert(event.seq, 0)),
                            EventKind::Result => drop(rows_seen.insert(event.seq, 0)),
                            _ => {}
                        }
                        texts.push(event_text(id, session, text));
                    }
                    for ((seq, piece, length), text) in notice.output.iter().zip(&json.output) {
                        let Some(seen) = output_seen.get_mut(seq) else {
                            continue;
                        };
                        let end = piece.offset + length;
                        if end <= *seen {
                            continue;
                        }
                        if piece.offset < *seen {
                            // Part of it came with the catch-up; send the rest where the text allows.
                            let mut rest = piece.clone();
                            if let Some(tail) = piece.text.get((*seen - piece.offset) as usize..) {
                                rest.text = tail.to_owned();
                                rest.offset = *seen;
                                rest.bytes = end - *seen;
                            }
                            let message = ServerMessage::Output {
                                id: id.clone(),
                                session: session.clone(),
                                seq: *seq,
                                piece: rest,
                            };
                            texts.push(
                                serde_json::to_string(&message).expect("wire types serialize"),
                            );
                        } else {
                            texts.push(output_text(id, session, *seq, text));
                        }
                        *seen = end;
                    }
                    for (seq, total) in &notice.rows {
                        if let Some(seen) = rows_seen.get_mut(seq)
                            && *total > *seen
                        {
                            *seen = *total;
                            let message = ServerMessage::Rows {
                                id: id.clone(),
                                session: session.clone(),
                                seq: *seq,
                                total: *total,
                            };
                            texts.push(
                                serde_json::to_string(&message).expect("wire types serialize"),
                            );
                        }
                    }
                    if let (Some(snapshot), Some(text)) = (&notice.session, &json.session) {
                        texts.push(session_text(id, text));
                        if snapshot.status.is_final() {
                            ended.push(id.clone());
                        }
                    }
                }
                Watch::List { .. } => {
                    if let Some(snapshot) = &notice.session {
                        list_candidates.push((id.clone(), snapshot));
                    }
                }
                Watch::Session { .. } | Watch::Reviews => {}
            }
        }
        for id in ended {
            self.watches.remove(&id);
        }
        for (id, snapshot) in list_candidates {
            if self.list_shows(&id, snapshot).await
                && let Some(text) = &notice.json().session
            {
                texts.push(session_text(&id, text));
            }
        }
        for text in texts {
            if self.sink.feed(Message::Text(text.into())).await.is_err() {
                return false;
            }
        }
        true
    }

    /// Whether list subscription `id` shows `session`: its filters, and who may see it.
    async fn list_shows(&mut self, id: &str, session: &Session) -> bool {
        let Some(Watch::List { filter }) = self.watches.get(id) else {
            return false;
        };
        if !matches(filter, session) {
            return false;
        }
        let Visibility::Restricted {
            user_id,
            username,
            group_ids,
        } = &filter.visibility
        else {
            return true;
        };
        if session.user.username == *username {
            return true;
        }
        if let Some(known) = self.shared.get(&session.id) {
            return *known;
        }
        let shared = self
            .store
            .is_shared_with(&session.id, user_id, group_ids)
            .await
            .unwrap_or(false);
        if self.shared.len() > 10_000 {
            self.shared.clear();
        }
        self.shared.insert(session.id.clone(), shared);
        shared
    }

    async fn resync(&mut self, missed: u64) -> bool {
        let reason = format!(
            "{missed} changes were dropped because this connection fell behind; read again and watch again"
        );
        let ids: Vec<String> = self.watches.keys().cloned().collect();
        // A session watch cannot go on with a gap: the client watches again from its last seq.
        self.watches
            .retain(|_, watch| !matches!(watch, Watch::Session { .. }));
        for id in ids {
            if !self
                .send(&ServerMessage::Resync {
                    id,
                    reason: reason.clone(),
                })
                .await
            {
                return false;
            }
        }
        true
    }
}

/// `{"type":…,"id":…,"session":…,<rest>}` around parts serialized once per notice; the same
/// text serde writes for the matching `ServerMessage` (see the test below).
fn event_text(id: &str, session: &str, event: &str) -> String {
    format!(
        r#"{{"type":"event","id":{},"session":{},"event":{event}}}"#,
        quote(id),
        quote(session)
    )
}

fn output_text(id: &str, session: &str, seq: u64, piece: &str) -> String {
    format!(
        r#"{{"type":"output","id":{},"session":{},"seq":{seq},"piece":{piece}}}"#,
        quote(id),
        quote(session)
    )
}

fn session_text(id: &str, session: &str) -> String {
    format!(
        r#"{{"type":"session","id":{},"session":{session}}}"#,
        quote(id)
    )
}

fn quote(text: &str) -> String {
    serde_json::to_string(text).expect("strings serialize")
}

/// The list's filters, applied to one session (visibility is checked separately).
fn matches(filter: &SessionFilter, session: &Session) -> bool {
    let started = session.started_at.as_micros();
    filter
        .username
        .as_ref()
        .is_none_or(|username| *username == session.user.username)
        && filter
            .connection
            .as_ref()
            .is_none_or(|connection| *connection == session.connection.name)
        && filter
            .session_type
            .is_none_or(|kind| kind == session.session_type)
        && (filter.statuses.is_empty() || filter.statuses.contains(&session.status))
        && filter.from_us.is_none_or(|from| started >= from)
        && filter.to_us.is_none_or(|to| started < to)
        && filter
            .id_prefix
            .as_ref()
            .is_none_or(|prefix| session.id.starts_with(prefix.as_str()))
}

#[cfg(test)]
mod tests {
    use loupe_protocol::{EventKind, OutputPiece, SessionEvent, Stream, Timestamp};

    use super::*;

    #[test]
    fn spliced_messages_read_back_as_the_messages_they_stand_for() {
        let event = SessionEvent {
            seq: 7,
            at: Timestamp::from_micros(1_795_828_539_000_000),
            kind: EventKind::Note,
            summary: "quote \" and newline \n".into(),
            text: None,
            code: None,
            exit_code: None,
            columns: None,
            bytes: 0,
            rows: 0,
        };
        let piece = OutputPiece {
            offset: 3,
            at: event.at,
            stream: Stream::Stderr,
            text: "é\u{1b}[31m".into(),
            bytes: 7,
        };
        let id = "sub \"1\"";
        let event_json = serde_json::to_string(&event).unwrap();
        let piece_json = serde_json::to_string(&piece).unwrap();

        let spliced: ServerMessage =
            serde_json::from_str(&event_text(id, "s-1", &event_json)).unwrap();
        assert_eq!(
            spliced,
            ServerMessage::Event {
                id: id.into(),
                session: "s-1".into(),
                event
            }
        );
        let spliced: ServerMessage =
            serde_json::from_str(&output_text(id, "s-1", 2, &piece_json)).unwrap();
        assert_eq!(
            spliced,
            ServerMessage::Output {
                id: id.into(),
                session: "s-1".into(),
                seq: 2,
                piece
            }
        );
    }
}
