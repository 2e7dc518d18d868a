//! The MySQL client/server protocol (<https://dev.mysql.com/doc/dev/mysql-server/latest/PAGE_PROTOCOL.html>)
//! through Loupe, for MySQL and MariaDB connections:
//! `mysql -h … -P 3307 -u <loupe user> -D <connection> --password=<API token> --enable-cleartext-plugin`.
//!
//! A connection goes: Loupe greets the client as a server ([`login`]) and reads the token in
//! clear text; the connection's rules are checked as on the Run page; Loupe logs in to the
//! target with the connection's stored credentials and hands the client the target's own OK.
//! From there every packet is forwarded unchanged, and copies are decoded ([`seen`]) into one
//! session per client connection: each statement (`COM_QUERY`, or `COM_STMT_PREPARE` and the
//! parameters of each `COM_STMT_EXECUTE`) an input, each result set a result with its rows,
//! each OK a count of rows affected, each ERR an error with its SQLSTATE and error number.
//!
//! `KILL QUERY <id>` (what `mysql` sends on Ctrl-C, from a second connection) names the
//! connection id Loupe gave the client; Loupe runs it on the target against that connection's
//! own id, for its owner or an administrator. Killing the session in Loupe, or its
//! just-in-time access ending, tells the client why and kills its connection on the target.
//!
//! Refused: `COM_CHANGE_USER` (it would log in as someone else behind Loupe's back), cursors,
//! replication and administration commands. TLS is offered (the listeners' certificate);
//! a password outside it is taken only on a loopback listener. Toward the target, TLS is as
//! its URL's `ssl-mode` says ([`crate::target_tls`]).

mod login;
mod packets;
mod seen;

use std::{
    collections::HashMap,
    net::SocketAddr,
    str::FromStr,
    sync::{Arc, Mutex},
    time::Duration,
};

use loupe_protocol::{ConnectionKind, EventKind};
use mysql_common::constants::CapabilityFlags;
use sqlx::{ConnectOptions, Executor, mysql::MySqlConnectOptions};
use tokio::{
    io::{AsyncBufRead, AsyncWrite, AsyncWriteExt, BufReader, BufWriter},
    net::{TcpListener, TcpStream},
    sync::Notify,
};

use self::{
    login::{Hello, Target, Unwelcome, connect_target, greet},
    packets::{CONTINUED, packet, payload, read_packet, sequence},
    seen::{Answers, Command, Commands, Shared, command},
};
use super::{
    Services, accept,
    admission::{Admitted, Refusal, admit, authenticate},
    forward,
    held::{Hold, cancel_heard, client_gone},
    recording::{self, Ended, Notes, Seen, WireSession},
    tls::WireStream,
};
use crate::{
    identity::{auth::Actor, policy},
    reviews::Decision,
    sessions::recorder::{Append, NewEvent},
};

/// How long a client has to log in, and Loupe to log in to the target.
const LOGIN_TIME: Duration = Duration::from_secs(60);
const TARGET_TIME: Duration = Duration::from_secs(10);
/// A logical packet (a statement, a row) longer than this is relayed but not decoded for the
/// record; MySQL's own `max_allowed_packet` is at most 1 GiB.
const MAX_DECODED: usize = 64 * 1024 * 1024;
/// Bytes buffered each way by the relay.
const RELAY_BUFFER: usize = 64 * 1024;
/// A `KILL` statement is far shorter than this.
const MAX_CONTROL: usize = 64 * 1024;

/// What the listener needs: who may connect, where targets are, and where sessions go.
#[derive(Clone)]
pub struct MyGateway {
    services: Services,
    /// The connection ids Loupe handed to clients, and what `KILL` with each one reaches.
    threads: Arc<Mutex<HashMap<u32, Thread>>>,
}

/// A relayed connection as `KILL` sees it: whose it is, and its own id on its target.
#[derive(Clone)]
struct Thread {
    session: String,
    owner: String,
    url: String,
    target_id: u32,
    /// Withdraws the review of a statement held on it (what `KILL QUERY` does to one).
    withdraw: Arc<Notify>,
}

impl MyGateway {
    pub fn new(services: Services) -> MyGateway {
        MyGateway {
            services,
            threads: Arc::default(),
        }
    }

    /// Accepts clients until the process ends; each connection runs in its own task.
    pub async fn serve(self, listener: TcpListener) {
        accept(listener, "MySQL", move |stream, peer| {
            let this = self.clone();
            async move { this.handle(stream, peer).await }
        })
        .await;
    }

    async fn handle(&self, client: TcpStream, peer: SocketAddr) -> std::io::Result<()> {
        let loopback = client.local_addr()?.ip().is_loopback();
        // High ids, so they are unlike the target's own (small, counted) thread ids; one no
        // other connection holds.
        let id = loop {
            let id = rand_u32() | 0x8000_0000;
            if !self
                .threads
                .lock()
                .expect("never poisoned")
                .contains_key(&id)
            {
                break id;
            }
        };
        let greeted =
            tokio::time::timeout(LOGIN_TIME, greet(client, id, &self.services.tls, loopback)).await;
        let (mut client, hello) = match greeted {
            Ok(Ok((client, Ok(hello)))) => (client, hello),
            Ok(Ok((mut client, Err(unwelcome)))) => {
                return refuse::<()>(&mut client, unwelcome).await.map(drop);
            }
            Ok(Err(error)) => return Err(error),
            Err(_) => return Ok(()),
        };
        let Some(connection) = hello.connection.clone() else {
            return self.control(client, peer, hello).await;
        };
        let logged_in = tokio::time::timeout(
            LOGIN_TIME,
            self.log_in(&mut client, peer, &hello, &connection),
        )
        .await;
        let Ok(Some((admitted, target))) = logged_in.unwrap_or_else(|_| Ok(None)) else {
            return Ok(());
        };
        self.relay_session(client, peer, id, hello, admitted, target)
            .await
    }

    /// The client's rules and the target's login: the admitted client and its target
    /// connection, or none when the client was refused (and told why).
    async fn log_in(
        &self,
        client: &mut WireStream,
        peer: SocketAddr,
        hello: &Hello,
        connection: &str,
    ) -> std::io::Result<Option<(Admitted, Target)>> {
        let admitted = match admit(
            &self.services.reviews.store,
            &self.services.reviews.gateway,
            ConnectionKind::Mysql,
            &hello.username,
            connection,
            &hello.token,
            peer.ip(),
        )
        .await
        {
            Ok(admitted) => admitted,
            Err(refusal) => {
                let (code, state) = error_number(&refusal);
                let message = refusal.message(&hello.username, connection, ConnectionKind::Mysql);
                return refuse(client, unwelcome(hello.seq, code, state, message)).await;
            }
        };
        let connected = tokio::time::timeout(
            TARGET_TIME,
            connect_target(&admitted.url, hello.capabilities, hello.collation),
        )
        .await;
        match connected {
            Ok(Ok(target)) => Ok(Some((admitted, target))),
            failed => {
                // The detail (users, addresses, grants) is the administrator's, not the client's.
                let detail = match failed {
                    Ok(Err(message)) => message,
                    _ => format!("no answer within {} s", TARGET_TIME.as_secs()),
                };
                tracing::warn!(%connection, %detail, "a MySQL client's target did not let Loupe in");
                let message = format!(
                    "cannot connect to the target of {connection}; an administrator can test the connection on its page"
                );
                refuse(client, unwelcome(hello.seq, 1105, b"HY000", message)).await
            }
        }
    }

    /// A connection that names no database may only `KILL` the statements of connections Loupe
    /// relays: what `mysql` opens on Ctrl-C. No session is recorded for it; a kill is noted in
    /// the killed session.
    async fn control(
        &self,
        mut client: WireStream,
        peer: SocketAddr,
        hello: Hello,
    ) -> std::io::Result<()> {
        let actor = match authenticate(
            &self.services.reviews.store,
            &hello.username,
            &hello.token,
            peer.ip(),
        )
        .await
        {
            Ok(actor) => actor,
            Err(refusal) => {
                let (code, state) = error_number(&refusal);
                let message = refusal.message(&hello.username, "", ConnectionKind::Mysql);
                let told = unwelcome(hello.seq, code, state, message);
                return refuse::<()>(&mut client, told).await.map(drop);
            }
        };
        client
            .write_all(&packet(hello.seq.wrapping_add(1), &ok_packet()))
            .await?;
        loop {
            let read =
                tokio::time::timeout(LOGIN_TIME, read_packet(&mut client, MAX_CONTROL)).await;
            let Ok(Ok(read)) = read else {
                return Ok(());
            };
            let body = payload(&read);
            let answer = match body.first() {
                None | Some(&command::QUIT) => return Ok(()),
                Some(&command::PING) => ok_packet(),
                Some(&command::QUERY) => {
                    match kill_statement(&String::from_utf8_lossy(&body[1..])) {
                        Some((what, id)) => match self.kill(&actor, what, id).await {
                            Some(Ok(())) => ok_packet(),
                            Some(Err(message)) => packets::error(1095, b"HY000", &message),
                            None => {
                                packets::error(1094, b"HY000", &format!("Unknown thread id: {id}"))
                            }
                        },
                        None => no_database(),
                    }
                }
                Some(_) => no_database(),
            };
            client
                .write_all(&packet(sequence(&read).wrapping_add(1), &answer))
                .await?;
        }
    }

    /// Hands the logged-in client the target's OK, then relays and records until the end.
    async fn relay_session(
        &self,
        mut client: WireStream,
        peer: SocketAddr,
        id: u32,
        hello: Hello,
        admitted: Admitted,
        target: Target,
    ) -> std::io::Result<()> {
        let program = hello.program.as_deref().unwrap_or("a MySQL client");
        let summary = format!("{program} from {} (MySQL protocol)", peer.ip());
        let session =
            match WireSession::open(&self.services.reviews.gateway, &admitted, &summary).await {
                Ok(session) => session,
                Err(error) => {
                    let told = unwelcome(hello.seq, 1105, b"HY000", error.message().to_owned());
                    return refuse::<()>(&mut client, told).await.map(drop);
                }
            };
        let thread = Thread {
            session: session.id.clone(),
            owner: admitted.actor.user_id.clone().unwrap_or_default(),
            url: admitted.url.clone(),
            target_id: target.thread_id,
            withdraw: Arc::default(),
        };
        // From here on the id is forgotten however the client leaves.
        let _forget = ForgetThread {
            threads: self.threads.clone(),
            id,
        };
        self.threads
            .lock()
            .expect("never poisoned")
            .insert(id, thread.clone());
        let greeted = client
            .write_all(&packet(hello.seq.wrapping_add(1), &target.ok))
            .await;
        let ended = match greeted {
            Ok(()) => {
                let relay = Relay {
                    gateway: self,
                    admitted: &admitted,
                    capabilities: hello.capabilities,
                    session: &session,
                    withdraw: &thread.withdraw,
                };
                relay.run(client, target.stream).await
            }
            // The client left before its first statement.
            Err(_) => Ended::ClientLeft,
        };
        if let Ended::Stopped(_) = ended {
            // Whatever the target is running for this client stops too.
            if let Err(error) = kill_on(&thread.url, "CONNECTION", thread.target_id).await {
                tracing::warn!(%error, "killing a stopped MySQL client's connection on its target");
            }
        }
        session
            .close(
                &self.services.reviews.gateway,
                &self.services.recorder,
                ended,
            )
            .await;
        Ok(())
    }

    /// `KILL [QUERY|CONNECTION] <id>` for an id Loupe handed out, by `actor`: run on that
    /// connection's target against its own id, and noted in its session. None when the id is
    /// not Loupe's.
    async fn kill(&self, actor: &Actor, what: &str, id: u32) -> Option<Result<(), String>> {
        let thread = self
            .threads
            .lock()
            .expect("never poisoned")
            .get(&id)?
            .clone();
        if !policy::may_act_on_session(actor, &thread.owner) {
            return Some(Err(format!("You are not owner of thread {id}")));
        }
        // A statement held for review is withdrawn; one running stops on the target.
        thread.withdraw.notify_waiters();
        let killed = kill_on(&thread.url, what, thread.target_id).await;
        if killed.is_ok() {
            let note = NewEvent::new(
                EventKind::Note,
                format!(
                    "KILL {what} by {} from {}",
                    actor.username,
                    actor.address.as_deref().unwrap_or("an unknown address")
                ),
            );
            if let Err(error) = self
                .services
                .recorder
                .record(&thread.session, vec![Append::Event(note)])
                .await
            {
                tracing::warn!(session = %thread.session, %error, "noting a KILL");
            }
        }
        Some(killed)
    }
}

/// Runs `KILL <what> <thread>` on the target named by `url`, on a connection of its own.
async fn kill_on(url: &str, what: &str, thread: u32) -> Result<(), String> {
    let run = async {
        let options = MySqlConnectOptions::from_str(url).map_err(|error| error.to_string())?;
        let mut connection = options.connect().await.map_err(|error| error.to_string())?;
        connection
            .execute(format!("KILL {what} {thread}").as_str())
            .await
            .map_err(|error| error.to_string())?;
        Ok(())
    };
    tokio::time::timeout(TARGET_TIME, run)
        .await
        .unwrap_or_else(|_| Err("the target did not answer".to_owned()))
}

/// `KILL [QUERY|CONNECTION] <id>` (MySQL's grammar, any case, an optional `;`): what and which.
fn kill_statement(text: &str) -> Option<(&'static str, u32)> {
    let text = text.trim().trim_end_matches(';');
    let mut words = text.split_whitespace();
    if !words.next()?.eq_ignore_ascii_case("KILL") {
        return None;
    }
    let (what, id) = match (words.next()?, words.next()) {
        (word, Some(id)) if word.eq_ignore_ascii_case("QUERY") => ("QUERY", id),
        (word, Some(id)) if word.eq_ignore_ascii_case("CONNECTION") => ("CONNECTION", id),
        (id, None) => ("CONNECTION", id),
        _ => return None,
    };
    if words.next().is_some() {
        return None;
    }
    Some((what, id.parse().ok()?))
}

/// One client connection's relay.
struct Relay<'a> {
    gateway: &'a MyGateway,
    admitted: &'a Admitted,
    capabilities: CapabilityFlags,
    session: &'a WireSession,
    withdraw: &'a Notify,
}

impl Relay<'_> {
    /// Forwards both ways until either side closes or the session is stopped (the client is
    /// then told why), recording as it goes.
    async fn run(&self, client: WireStream, target: WireStream) -> Ended {
        let (client_read, client_write) = tokio::io::split(client);
        let (target_read, target_write) = tokio::io::split(target);
        // Buffered both ways: rows are read in few reads and written in few segments,
        // flushed whenever nothing more is waiting to be read.
        let mut client_read = BufReader::with_capacity(RELAY_BUFFER, client_read);
        let mut target_read = BufReader::with_capacity(RELAY_BUFFER, target_read);
        let mut target_write = BufWriter::with_capacity(RELAY_BUFFER, target_write);
        let client_write = BufWriter::with_capacity(RELAY_BUFFER, client_write);
        let (notes, recording) =
            recording::start(&self.gateway.services.recorder, &self.session.id);
        let shared = Arc::new(Mutex::new(Shared::default()));
        // Told when the target has answered every command forwarded.
        let settled = Arc::new(Notify::new());
        // Both directions answer the client: the target's packets, and Loupe's own (a refused
        // command, a `KILL` it ran).
        let client_write = Arc::new(tokio::sync::Mutex::new(client_write));
        let from_client = {
            let (notes, client_write) = (notes.clone(), client_write.clone());
            let commands = Commands::new(shared.clone(), settled.clone());
            async move {
                let mut whole = Reassembly::default();
                // The packets of a command that continues, on a connection whose statements are
                // reviewed: forwarded only once the whole command is approved.
                let mut held: Vec<Vec<u8>> = Vec::new();
                loop {
                    let Ok(read) = read_packet(&mut client_read, CONTINUED).await else {
                        return;
                    };
                    let first = whole.is_empty();
                    let command = match whole.add(&read) {
                        Piece::Whole(command) => command,
                        Piece::Partial => {
                            // A command continued in the next packet: only these may be that long.
                            if first
                                && !matches!(
                                    payload(&read)[0],
                                    command::QUERY
                                        | command::STMT_PREPARE
                                        | command::STMT_EXECUTE
                                        | command::STMT_SEND_LONG_DATA
                                )
                            {
                                return;
                            }
                            if self.admitted.reviewed {
                                held.push(read);
                            } else if forward(&mut target_write, &read, &client_read)
                                .await
                                .is_err()
                            {
                                return;
                            }
                            continue;
                        }
                        Piece::TooLong => {
                            // Too long to read: never run unreviewed; elsewhere relayed, and
                            // the rest of the connection is not decoded for the record.
                            if self.admitted.reviewed {
                                let why = format!(
                                    "a command longer than {} MiB cannot be reviewed",
                                    MAX_DECODED >> 20
                                );
                                let told = packets::error(1153, b"08S01", &why);
                                let reply = sequence(&read).wrapping_add(1);
                                let mut client = client_write.lock().await;
                                let _ = client.write_all(&packet(reply, &told)).await;
                                let _ = client.flush().await;
                                return;
                            }
                            commands.lost();
                            notes.skipped();
                            if forward(&mut target_write, &read, &client_read)
                                .await
                                .is_err()
                            {
                                return;
                            }
                            continue;
                        }
                    };
                    let reply = sequence(&read).wrapping_add(1);
                    // Earlier commands reach the target before this one may wait (for a
                    // reviewer, or for the target's answers to them).
                    if target_write.flush().await.is_err() {
                        return;
                    }
                    match self
                        .command(&commands, &command, &notes, &mut client_read)
                        .await
                    {
                        Some(answer) => {
                            held.clear();
                            // After what the target still owes for earlier commands.
                            commands.settle(&self.session.stop).await;
                            let mut writer = client_write.lock().await;
                            if writer.write_all(&packet(reply, &answer)).await.is_err()
                                || writer.flush().await.is_err()
                            {
                                return;
                            }
                        }
                        None => {
                            // Queued before the target can answer it.
                            commands.forwarded(&command);
                            for earlier in held.drain(..) {
                                if target_write.write_all(&earlier).await.is_err() {
                                    return;
                                }
                            }
                            if forward(&mut target_write, &read, &client_read)
                                .await
                                .is_err()
                                || command.first() == Some(&command::QUIT)
                            {
                                return;
                            }
                        }
                    }
                }
            }
        };
        let from_target = async move {
            let mut answers = Answers::new(shared, settled, self.capabilities);
            let mut whole = Reassembly::default();
            let mut last = 0u8;
            loop {
                let read = tokio::select! {
                    read = read_packet(&mut target_read, CONTINUED) => read,
                    () = self.session.stop.cancelled() => {
                        let reason = self.session.stop_reason();
                        let told = packets::error(1927, b"70100", &format!("Connection was killed: {reason}"));
                        let mut client = client_write.lock().await;
                        let _ = client.write_all(&packet(last.wrapping_add(1), &told)).await;
                        let _ = client.flush().await;
                        return Ended::Stopped(reason);
                    }
                };
                let Ok(read) = read else {
                    return Ended::TargetClosed("the target closed the connection".to_owned());
                };
                last = sequence(&read);
                match whole.add(&read) {
                    Piece::Whole(answer) => {
                        if let Some(noted) = answers.take(&answer) {
                            notes.note(noted).await;
                        }
                    }
                    Piece::Partial => {}
                    Piece::TooLong => {
                        answers.lost();
                        notes.skipped();
                    }
                }
                let mut client = client_write.lock().await;
                if forward(&mut *client, &read, &target_read).await.is_err() {
                    return Ended::ClientLeft;
                }
            }
        };
        let relaying = async {
            // A client that reads nothing can keep the ERR from being written: a stop then
            // takes effect anyway, a moment later.
            let stopped_anyway = async {
                self.session.stop.cancelled().await;
                tokio::time::sleep(Duration::from_secs(2)).await;
            };
            tokio::select! {
                () = from_client => Ended::ClientLeft,
                ended = from_target => ended,
                () = stopped_anyway => Ended::Stopped(self.session.stop_reason()),
            }
        };
        let (ended, ()) = tokio::join!(relaying, recording);
        ended
    }

    /// Reads a whole command for the record. Answers Loupe's own reply when the command is not
    /// to be forwarded: refused, held and not approved, or a `KILL`, which Loupe runs itself for
    /// the connections it relays and refuses for any other (every Loupe user reaches the target
    /// as the same account, so a target's thread is nobody's to kill through Loupe).
    async fn command(
        &self,
        commands: &Commands,
        payload: &[u8],
        notes: &Notes,
        client: &mut (impl AsyncBufRead + Unpin),
    ) -> Option<Vec<u8>> {
        if payload.first() == Some(&command::QUERY) {
            let text = String::from_utf8_lossy(&payload[1..]);
            if is_kill(&text) {
                notes.note(Seen::Query(text.clone().into_owned())).await;
                let killed = match kill_statement(&text) {
                    Some((what, id)) => self.gateway.kill(&self.admitted.actor, what, id).await,
                    None => None,
                };
                return Some(match killed {
                    Some(Ok(())) => {
                        notes
                            .note(Seen::Complete("killed by Loupe".to_owned()))
                            .await;
                        ok_packet()
                    }
                    Some(Err(message)) => {
                        notes
                            .note(Seen::Failed {
                                code: "HY000".to_owned(),
                                message: message.clone(),
                            })
                            .await;
                        packets::error(1095, b"HY000", &message)
                    }
                    None => {
                        let message = "Unknown thread id: through Loupe, KILL [QUERY] names the connection id Loupe gave a client (what mysql sends on Ctrl-C)";
                        notes
                            .note(Seen::Failed {
                                code: "HY000".to_owned(),
                                message: message.to_owned(),
                            })
                            .await;
                        packets::error(1094, b"HY000", message)
                    }
                });
            }
        }
        // A statement prepared just before must be known before its execution is shown to a
        // reviewer (MariaDB's connectors send both at once).
        if self.admitted.reviewed && payload.first() == Some(&command::STMT_EXECUTE) {
            commands.settle(&self.session.stop).await;
        }
        let statement = match commands.take(payload, self.admitted.reviewed) {
            Command::Forward { seen, statement } => {
                for noted in seen {
                    notes.note(noted).await;
                }
                statement
            }
            Command::Refuse(why) => {
                notes
                    .note(Seen::Failed {
                        code: "42000".to_owned(),
                        message: why.clone(),
                    })
                    .await;
                return Some(packets::error(1235, b"42000", &why));
            }
        };
        let statement =
            statement.filter(|text| self.admitted.reviewed && !text.trim().is_empty())?;
        // MySQL has no message a server may send while a command waits: the client just waits,
        // and the review is on the reviewers' page and the session's.
        let hold = Hold {
            services: &self.gateway.services,
            admitted: self.admitted,
            session: self.session,
            notes,
        };
        let cancelled = cancel_heard(self.withdraw);
        let decision = match hold.open(&statement).await {
            Ok(held) => {
                let withdrawn = async {
                    tokio::select! {
                        () = cancelled => "the client cancelled the statement",
                        () = client_gone(client) => "the client went away",
                    }
                };
                hold.decision(&held, withdrawn).await
            }
            Err(why) => Decision::Refused(why),
        };
        match decision {
            Decision::Approved(_) => None,
            Decision::Refused(why) => {
                notes
                    .note(Seen::Failed {
                        code: "42000".to_owned(),
                        message: why.clone(),
                    })
                    .await;
                Some(packets::error(1227, b"42000", &why))
            }
        }
    }
}

/// Whether a statement is a `KILL` (any form: `KILL QUERY ID …` too).
fn is_kill(text: &str) -> bool {
    text.split_whitespace()
        .next()
        .is_some_and(|word| word.eq_ignore_ascii_case("KILL"))
}

/// The answer to anything but `KILL` on a connection that names no database.
fn no_database() -> Vec<u8> {
    packets::error(
        1046,
        b"3D000",
        "No database selected: name a Loupe connection as the database (mysql -D <connection>)",
    )
}

/// An OK packet's payload: nothing affected, autocommit on, no warnings.
fn ok_packet() -> Vec<u8> {
    vec![0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00]
}

/// A logical packet put together from the packets that carry it (those of 16 MiB continue in
/// the next), up to [`MAX_DECODED`]: past that it is relayed, not decoded.
#[derive(Default)]
struct Reassembly {
    payload: Vec<u8>,
    parts: usize,
    too_long: bool,
}

/// What a packet completes.
enum Piece {
    /// The whole payload, its last packet in.
    Whole(Vec<u8>),
    /// Part of a payload: more follows, or it is the rest of one too long to decode.
    Partial,
    /// The packet that made a payload too long to decode (its earlier parts were read).
    TooLong,
}

impl Reassembly {
    fn is_empty(&self) -> bool {
        self.parts == 0
    }

    fn add(&mut self, packet: &[u8]) -> Piece {
        let part = payload(packet);
        let continued = part.len() == CONTINUED;
        self.parts += 1;
        let piece = if self.too_long {
            Piece::Partial
        } else if self.payload.len() + part.len() > MAX_DECODED {
            self.too_long = true;
            self.payload = Vec::new();
            Piece::TooLong
        } else {
            self.payload.extend_from_slice(part);
            if continued {
                Piece::Partial
            } else {
                Piece::Whole(std::mem::take(&mut self.payload))
            }
        };
        if !continued {
            self.parts = 0;
            self.too_long = false;
        }
        piece
    }
}

/// MySQL's error number and SQLSTATE for each refusal (its manual's server error reference).
fn error_number(refusal: &Refusal) -> (u16, &'static [u8; 5]) {
    match refusal {
        Refusal::BadToken => (1045, b"28000"),
        Refusal::Auditor => (1227, b"42000"),
        Refusal::NoSuchConnection | Refusal::OtherKind(_) => (1049, b"42000"),
        Refusal::NeedsAccess => (1044, b"42000"),
        Refusal::NoTarget => (1105, b"HY000"),
    }
}

fn unwelcome(seq: u8, code: u16, state: &'static [u8; 5], message: String) -> Unwelcome {
    Unwelcome {
        seq,
        code,
        state,
        message,
    }
}

/// Tells the client why (an ERR packet after its last one) and closes.
async fn refuse<T>(
    client: &mut (impl AsyncWrite + Unpin),
    why: Unwelcome,
) -> std::io::Result<Option<T>> {
    let error = packets::error(why.code, why.state, &why.message);
    client
        .write_all(&packet(why.seq.wrapping_add(1), &error))
        .await?;
    client.shutdown().await?;
    Ok(None)
}

/// Forgets a handed-out connection id when its connection ends, whichever way.
struct ForgetThread {
    threads: Arc<Mutex<HashMap<u32, Thread>>>,
    id: u32,
}

impl Drop for ForgetThread {
    fn drop(&mut self) {
        self.threads
            .lock()
            .expect("never poisoned")
            .remove(&self.id);
    }
}

fn rand_u32() -> u32 {
    let mut bytes = [0u8; 4];
    getrandom::fill(&mut bytes).expect("the system's random source");
    u32::from_be_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kill_statements_as_mysql_does() {
        assert_eq!(kill_statement("KILL QUERY 42"), Some(("QUERY", 42)));
        assert_eq!(kill_statement(" kill query 42; "), Some(("QUERY", 42)));
        assert_eq!(kill_statement("KILL 7"), Some(("CONNECTION", 7)));
        assert_eq!(kill_statement("KILL CONNECTION 7"), Some(("CONNECTION", 7)));
        assert_eq!(kill_statement("KILL QUERY"), None);
        assert_eq!(kill_statement("KILL QUERY 1 2"), None);
        assert_eq!(kill_statement("SELECT 1"), None);
        assert_eq!(kill_statement("KILL QUERY ID 3"), None);
    }
}
