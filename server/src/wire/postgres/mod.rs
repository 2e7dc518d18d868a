//! The PostgreSQL wire protocol (version 3.0, <https://www.postgresql.org/docs/current/protocol.html>)
//! through Loupe: `psql "host=… port=6432 user=<loupe user> dbname=<connection> password=<API token>"`.
//!
//! A connection goes: the client's startup (TLS when it asks, with the listeners' certificate;
//! GSSAPI encryption is declined, so libpq goes on without), a cleartext password (taken only
//! over TLS, or on a loopback listener) that must be one of the user's API tokens, the connection's rules (just-in-time
//! access must be granted; on connections whose statements are reviewed each statement waits
//! for a reviewer, see [`held`]), then Loupe logs in to the target with the connection's stored URL (SCRAM-SHA-256, MD5 or
//! cleartext, by `postgres-protocol`) and relays. Every message is forwarded unchanged; copies
//! are decoded and recorded as one session per client connection: each query (simple, or
//! `Parse` with its `Bind` parameters) is an input, each row description a result with its rows,
//! each command tag a note, each error an error with its SQLSTATE, `COPY` data (either way) the
//! statement's output. A `CancelRequest` with the
//! key Loupe gave the client cancels the statement on the target.
//!
//! Killing the session in Loupe, or its just-in-time access ending, ends the client's
//! connection with a FATAL saying why and cancels what it was running on the target.
//!
//! Toward the target, TLS is as its URL's `sslmode` says ([`crate::target_tls`]); a cancel
//! request goes the way the login went.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::{BufMut, BytesMut};
use fallible_iterator::FallibleIterator;
use loupe_protocol::{Cell, Column, ConnectionKind};
use postgres_protocol::{
    authentication::{
        md5_hash,
        sasl::{ChannelBinding, SCRAM_SHA_256, ScramSha256},
    },
    message::{
        backend::{Message, RowDescriptionBody},
        frontend,
    },
};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter, WriteHalf},
    net::{TcpListener, TcpStream},
    sync::Notify,
};
use tokio_util::sync::CancellationToken;

use self::{
    pipeline::{Pipeline, REJECTED},
    statements::Portal,
};
use super::{
    Services, accept,
    admission::{Admitted, Refusal, admit},
    decode, forward,
    held::{Hold, cancel_heard, client_gone},
    recording::{self, Ended, Notes, Seen, WireSession},
    tls::WireStream,
};
use crate::{gateway::values::typed_cell, reviews::Decision, target_tls::TargetTls};

mod pipeline;
mod statements;

/// The first message's code: protocol 3.0, or one of the requests that come instead.
const PROTOCOL_3: i32 = 196_608;
const SSL_REQUEST: i32 = 80_877_103;
const GSSENC_REQUEST: i32 = 80_877_104;
const CANCEL_REQUEST: i32 = 80_877_102;
/// PostgreSQL's own bound on a startup packet (`MAX_STARTUP_PACKET_LENGTH`).
const MAX_STARTUP: usize = 10_000;
/// A message longer than this is not PostgreSQL's (its own limit is 1 GiB).
const MAX_MESSAGE: usize = 1 << 30;
/// Before a client has authenticated, no message may be longer than this (PostgreSQL's
/// `PG_MAX_AUTH_TOKEN_LENGTH` is 65535): nobody can make Loupe allocate on a bare connect.
const MAX_AUTH_MESSAGE: usize = 64 * 1024;
/// How long a client has to send its startup and password, and Loupe to log in to the target.
const LOGIN_TIME: Duration = Duration::from_secs(60);
const TARGET_TIME: Duration = Duration::from_secs(10);
/// The startup parameters passed on to the target: the session's settings. Not
/// `replication` (a walsender), nor protocol extensions (`_pq_.*`).
const PASSED_PARAMETERS: [&str; 8] = [
    "application_name",
    "client_encoding",
    "DateStyle",
    "TimeZone",
    "IntervalStyle",
    "extra_float_digits",
    "search_path",
    "options",
];

/// What the listener needs: who may connect, where targets are, and where sessions go.
#[derive(Clone)]
pub struct PgGateway {
    services: Services,
    /// The keys Loupe handed to clients, and the target's own key each stands for.
    cancels: Arc<Mutex<HashMap<(i32, i32), Target>>>,
}

/// A target connection's address, TLS and cancel key (a cancel request goes the way the
/// login went), and what withdraws the review of a statement held on it.
#[derive(Clone)]
struct Target {
    address: String,
    tls: Arc<TargetTls>,
    key: (i32, i32),
    withdraw: Arc<Notify>,
}

impl PgGateway {
    pub fn new(services: Services) -> PgGateway {
        PgGateway {
            services,
            cancels: Arc::default(),
        }
    }

    /// Accepts clients until the process ends; each connection runs in its own task.
    pub async fn serve(self, listener: TcpListener) {
        accept(listener, "PostgreSQL", move |stream, peer| {
            let this = self.clone();
            async move { this.handle(stream, peer).await }
        })
        .await;
    }

    async fn handle(&self, client: TcpStream, peer: SocketAddr) -> std::io::Result<()> {
        let loopback = client.local_addr()?.ip().is_loopback();
        let login = tokio::time::timeout(LOGIN_TIME, async {
            let Some((mut client, parameters)) = self.negotiate(client).await? else {
                return Ok(None);
            };
            let login = self.log_in(&mut client, peer, loopback, parameters).await?;
            Ok::<_, std::io::Error>(login.map(|login| (client, login)))
        })
        .await;
        let Ok(Some((client, login))) = login.unwrap_or_else(|_| Ok(None)) else {
            return Ok(());
        };
        self.relay_session(client, peer, login).await
    }

    /// The first messages: TLS when the client asks for it (GSSAPI encryption is declined, so
    /// libpq goes on without), then its startup parameters; none when the client only wanted a
    /// cancel, or was refused (and told why).
    async fn negotiate(
        &self,
        client: TcpStream,
    ) -> std::io::Result<Option<(WireStream, HashMap<String, String>)>> {
        let mut client = WireStream::Plain(client);
        let mut negotiations = 0;
        loop {
            let body = read_startup(&mut client).await?;
            let code = i32_at(&body, 0).unwrap_or_default();
            match code {
                // libpq asks for TLS, then perhaps GSSAPI encryption, once each. The request was
                // read to its last byte, so nothing sent in clear text after it is taken for
                // part of the TLS session.
                SSL_REQUEST if negotiations < 2 && !client.is_tls() => {
                    negotiations += 1;
                    client.write_all(b"S").await?;
                    client = match client {
                        WireStream::Plain(tcp) => self.services.tls.accept(tcp).await?,
                        tls => tls,
                    };
                }
                SSL_REQUEST | GSSENC_REQUEST if negotiations < 2 => {
                    negotiations += 1;
                    client.write_all(b"N").await?;
                }
                CANCEL_REQUEST => return self.cancel(&body).await.map(|()| None),
                PROTOCOL_3 => return Ok(Some((client, startup_parameters(&body[4..])))),
                _ => {
                    let message = format!(
                        "unsupported frontend protocol {}.{}: Loupe speaks 3.0",
                        code >> 16,
                        code & 0xffff
                    );
                    return refuse(&mut client, "0A000", &message).await;
                }
            }
        }
    }

    /// The login: the admitted client and its target connection, or none when the client was
    /// refused (and told why). A password in clear text is taken only on a loopback listener.
    async fn log_in(
        &self,
        client: &mut WireStream,
        peer: SocketAddr,
        loopback: bool,
        parameters: HashMap<String, String>,
    ) -> std::io::Result<Option<Login>> {
        if !client.is_tls() && !loopback {
            return refuse(
                client,
                "28000",
                "this listener takes passwords only over TLS: connect with sslmode=require",
            )
            .await;
        }
        let Some(username) = parameters.get("user").cloned() else {
            return refuse(client, "28000", "no user name in the startup message").await;
        };
        let connection_name = parameters
            .get("database")
            .cloned()
            .unwrap_or_else(|| username.clone());
        client.write_all(&frame(b'R', &3i32.to_be_bytes())).await?;
        let message = read_message(client, MAX_AUTH_MESSAGE).await?;
        if message[0] != b'p' {
            return refuse(client, "08P01", "expected a password message").await;
        }
        let token = cstring(&message[5..]).unwrap_or_default();
        let admitted = match admit(
            &self.services.reviews.store,
            &self.services.reviews.gateway,
            ConnectionKind::Postgres,
            &username,
            &connection_name,
            &token,
            peer.ip(),
        )
        .await
        {
            Ok(admitted) => admitted,
            Err(refusal) => {
                let message =
                    refusal.message(&username, &connection_name, ConnectionKind::Postgres);
                return refuse(client, sqlstate(&refusal), &message).await;
            }
        };
        let connected =
            tokio::time::timeout(TARGET_TIME, connect_target(&admitted.url, &parameters)).await;
        let (target_stream, greeting, target) = match connected {
            Ok(Ok(connected)) => connected,
            failed => {
                // The detail (roles, addresses, hba rules) is the administrator's, not the client's.
                let detail = match failed {
                    Ok(Err(message)) => message,
                    _ => format!("no answer within {} s", TARGET_TIME.as_secs()),
                };
                tracing::warn!(connection = %connection_name, %detail, "a PostgreSQL client's target did not let Loupe in");
                let message = format!(
                    "cannot connect to the target of {connection_name}; an administrator can test the connection on its page"
                );
                return refuse(client, "08006", &message).await;
            }
        };
        let application = parameters
            .get("application_name")
            .cloned()
            .unwrap_or_else(|| "a PostgreSQL client".into());
        Ok(Some(Login {
            admitted,
            application,
            target_stream,
            greeting,
            target,
        }))
    }

    /// Greets the logged-in client as the target did, then relays and records until the end.
    async fn relay_session(
        &self,
        mut client: WireStream,
        peer: SocketAddr,
        login: Login,
    ) -> std::io::Result<()> {
        let Login {
            admitted,
            application,
            target_stream: upstream,
            greeting,
            target,
        } = login;
        let input = format!("{application} from {} (PostgreSQL protocol)", peer.ip());
        let session =
            match WireSession::open(&self.services.reviews.gateway, &admitted, &input).await {
                Ok(session) => session,
                Err(error) => {
                    return refuse::<()>(&mut client, "58000", error.message())
                        .await
                        .map(drop);
                }
            };
        let ours = (rand_i32(), rand_i32());
        // From here on the session ends and the key is forgotten however the client leaves.
        let _forget = ForgetKey {
            cancels: self.cancels.clone(),
            key: ours,
        };
        self.cancels
            .lock()
            .expect("never poisoned")
            .insert(ours, target.clone());
        let mut hello = frame(b'R', &0i32.to_be_bytes());
        for message in &greeting {
            hello.extend_from_slice(message);
        }
        let mut key = Vec::with_capacity(8);
        key.extend_from_slice(&ours.0.to_be_bytes());
        key.extend_from_slice(&ours.1.to_be_bytes());
        // The key goes before ReadyForQuery, the greeting's last message.
        let ready_at = hello.len() - greeting.last().map_or(0, Vec::len);
        hello.splice(ready_at..ready_at, frame(b'K', &key));
        let greeted = client.write_all(&hello).await;

        let ended = match greeted {
            Ok(()) => {
                relay(
                    client,
                    upstream,
                    &self.services,
                    &admitted,
                    &session,
                    &target.withdraw,
                )
                .await
            }
            // The client left before its first statement.
            Err(_) => Ended::ClientLeft,
        };
        if let Ended::Stopped(_) = ended {
            // Whatever the target is running for this client stops too.
            let _ = cancel_on(&target).await;
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

    /// Passes a client's cancel request on to the target, if the key is one Loupe gave out.
    async fn cancel(&self, body: &[u8]) -> std::io::Result<()> {
        let key = (
            i32_at(body, 4).unwrap_or_default(),
            i32_at(body, 8).unwrap_or_default(),
        );
        let target = self
            .cancels
            .lock()
            .expect("never poisoned")
            .get(&key)
            .cloned();
        match target {
            Some(target) => {
                // A statement held for review is withdrawn; one running stops on the target.
                target.withdraw.notify_waiters();
                cancel_on(&target).await
            }
            None => Ok(()),
        }
    }
}

/// Asks the target to cancel what the connection with this key is running.
async fn cancel_on(target: &Target) -> std::io::Result<()> {
    let mut request = BytesMut::new();
    frontend::cancel_request(target.key.0, target.key.1, &mut request);
    let send = async {
        let mut stream = dial(&target.address, &target.tls)
            .await
            .map_err(std::io::Error::other)?;
        stream.write_all(&request).await?;
        stream.flush().await
    };
    tokio::time::timeout(TARGET_TIME, send)
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}

/// A connection to the target at `address`, inside TLS where `tls` wants it and the target
/// agrees to the `SSLRequest` (protocol section 55.2.10). Errors are for the administrator.
async fn dial(address: &str, tls: &TargetTls) -> Result<WireStream, String> {
    let mut stream = TcpStream::connect(address)
        .await
        .map_err(|error| error.to_string())?;
    // Small messages answered at once: no Nagle delay (see `wire::accept`).
    stream
        .set_nodelay(true)
        .map_err(|error| error.to_string())?;
    if !tls.wanted() {
        return Ok(WireStream::Plain(stream));
    }
    let mut request = Vec::with_capacity(8);
    request.extend_from_slice(&8i32.to_be_bytes());
    request.extend_from_slice(&SSL_REQUEST.to_be_bytes());
    stream
        .write_all(&request)
        .await
        .map_err(|error| error.to_string())?;
    let mut answer = [0u8; 1];
    stream
        .read_exact(&mut answer)
        .await
        .map_err(|error| error.to_string())?;
    match answer[0] {
        b'S' => tls.secure(stream).await,
        b'N' => tls.without().map(|()| WireStream::Plain(stream)),
        // An ErrorResponse: a server older than 7.0, or one that refuses at once.
        _ => Err("the target answered the SSLRequest with neither S nor N".into()),
    }
}

/// A client past its login, with the target connection made for it.
struct Login {
    admitted: Admitted,
    application: String,
    target_stream: WireStream,
    greeting: Vec<Vec<u8>>,
    target: Target,
}

/// Forgets a cancel key when its connection ends, whichever way.
struct ForgetKey {
    cancels: Arc<Mutex<HashMap<(i32, i32), Target>>>,
    key: (i32, i32),
}

impl Drop for ForgetKey {
    fn drop(&mut self) {
        self.cancels
            .lock()
            .expect("never poisoned")
            .remove(&self.key);
    }
}

/// Tells the client why (an `ErrorResponse` of severity FATAL) and closes.
async fn refuse<T>(
    client: &mut (impl AsyncWrite + Unpin),
    code: &str,
    message: &str,
) -> std::io::Result<Option<T>> {
    client
        .write_all(&error_response("FATAL", code, message))
        .await?;
    client.shutdown().await?;
    Ok(None)
}

/// The SQLSTATE PostgreSQL itself would answer each refusal with (Appendix A of its manual).
fn sqlstate(refusal: &Refusal) -> &'static str {
    match refusal {
        Refusal::BadToken => "28P01",
        Refusal::Auditor => "42501",
        Refusal::NoSuchConnection | Refusal::OtherKind(_) => "3D000",
        Refusal::NeedsAccess => "28000",
        Refusal::NoTarget => "58000",
    }
}

/// An `ErrorResponse` of `severity` (`FATAL` ends the connection, `ERROR` the statement).
fn error_response(severity: &str, code: &str, message: &str) -> Vec<u8> {
    response(b'E', severity, code, message)
}

/// An `ErrorResponse` or `NoticeResponse` (`tag`) with its severity, SQLSTATE and message.
fn response(tag: u8, severity: &str, code: &str, message: &str) -> Vec<u8> {
    let mut body = Vec::new();
    for (field, value) in [
        (b'S', severity),
        (b'V', severity),
        (b'C', code),
        (b'M', message),
    ] {
        body.push(field);
        body.extend_from_slice(value.as_bytes());
        body.push(0);
    }
    body.push(0);
    frame(tag, &body)
}

/// Logs in to the target named by `url`, passing on the client's own startup parameters but
/// its user and database. Answers the stream, the messages the client should see after its
/// own `AuthenticationOk` (parameter statuses, then `ReadyForQuery`), and the cancel key.
async fn connect_target(
    url: &str,
    client_parameters: &HashMap<String, String>,
) -> Result<(WireStream, Vec<Vec<u8>>, Target), String> {
    let url = url::Url::parse(url).map_err(|error| error.to_string())?;
    let host = url.host_str().unwrap_or("localhost").to_owned();
    let address = format!("{host}:{}", url.port().unwrap_or(5432));
    let user = decode(url.username());
    let password = url.password().map(decode).unwrap_or_default();
    let asked = |names: &[&str]| {
        url.query_pairs()
            .find(|(name, _)| names.contains(&name.as_ref()))
            .map(|(_, value)| value.into_owned())
    };
    if asked(&["host", "hostaddr", "port"]).is_some() {
        return Err(
            "the URL names its host in a parameter, which this gateway does not follow".into(),
        );
    }
    let tls = Arc::new(TargetTls::from_url(&url)?);
    let database = url.path().trim_start_matches('/').to_owned();
    let database = if database.is_empty() {
        user.clone()
    } else {
        decode(&database)
    };
    let mut stream = dial(&address, &tls).await?;
    let mut parameters: Vec<(&str, &str)> = vec![("user", &user), ("database", &database)];
    for (name, value) in client_parameters {
        if PASSED_PARAMETERS.contains(&name.as_str()) {
            parameters.push((name, value));
        }
    }
    let mut buffer = BytesMut::new();
    frontend::startup_message(parameters, &mut buffer).map_err(|error| error.to_string())?;
    stream
        .write_all(&buffer)
        .await
        .map_err(|error| error.to_string())?;

    let mut scram = None;
    let mut greeting = Vec::new();
    let mut key = (0, 0);
    loop {
        let raw = read_message(&mut stream, MAX_MESSAGE)
            .await
            .map_err(|error| error.to_string())?;
        let message = Message::parse(&mut BytesMut::from(&raw[..]))
            .map_err(|error| error.to_string())?
            .ok_or("a message cut short")?;
        let mut reply = BytesMut::new();
        match message {
            Message::AuthenticationOk => {}
            Message::AuthenticationCleartextPassword => {
                frontend::password_message(password.as_bytes(), &mut reply)
                    .map_err(|error| error.to_string())?;
            }
            Message::AuthenticationMd5Password(body) => {
                let hash = md5_hash(user.as_bytes(), password.as_bytes(), body.salt());
                frontend::password_message(hash.as_bytes(), &mut reply)
                    .map_err(|error| error.to_string())?;
            }
            Message::AuthenticationSasl(body) => {
                let mut mechanisms = body.mechanisms();
                let mut offered = false;
                while let Some(mechanism) = mechanisms.next().map_err(|error| error.to_string())? {
                    offered |= mechanism == SCRAM_SHA_256;
                }
                if !offered {
                    return Err("the target offers no SASL mechanism Loupe speaks".into());
                }
                let start = ScramSha256::new(password.as_bytes(), ChannelBinding::unsupported());
                frontend::sasl_initial_response(SCRAM_SHA_256, start.message(), &mut reply)
                    .map_err(|error| error.to_string())?;
                scram = Some(start);
            }
            Message::AuthenticationSaslContinue(body) => {
                let state = scram.as_mut().ok_or("SASL out of order")?;
                state
                    .update(body.data())
                    .map_err(|error| error.to_string())?;
                frontend::sasl_response(state.message(), &mut reply)
                    .map_err(|error| error.to_string())?;
            }
            Message::AuthenticationSaslFinal(body) => {
                let state = scram.as_mut().ok_or("SASL out of order")?;
                state
                    .finish(body.data())
                    .map_err(|error| error.to_string())?;
            }
            Message::BackendKeyData(body) => key = (body.process_id(), body.secret_key()),
            Message::ParameterStatus(_) | Message::NoticeResponse(_) => greeting.push(raw),
            Message::ReadyForQuery(_) => {
                greeting.push(raw);
                let target = Target {
                    address,
                    tls,
                    key,
                    withdraw: Arc::default(),
                };
                return Ok((stream, greeting, target));
            }
            Message::ErrorResponse(body) => {
                let mut fields = body.fields();
                let mut said = String::from("the target refused the login");
                while let Ok(Some(field)) = fields.next() {
                    if field.type_() == b'M' {
                        said = String::from_utf8_lossy(field.value_bytes()).into_owned();
                    }
                }
                return Err(said);
            }
            _ => return Err("the target asked for an authentication Loupe does not speak".into()),
        }
        if !reply.is_empty() {
            stream
                .write_all(&reply)
                .await
                .map_err(|error| error.to_string())?;
        }
    }
}

/// Forwards both ways until either side closes or the session is stopped (the client is then
/// told why), recording into `session` as it goes, and holding each statement for review
/// where the connection says so (`withdraw` fires when the client cancels one).
async fn relay(
    client: WireStream,
    target: WireStream,
    services: &Services,
    admitted: &Admitted,
    session: &WireSession,
    withdraw: &Notify,
) -> Ended {
    let (client_read, client_write) = tokio::io::split(client);
    let (target_read, target_write) = tokio::io::split(target);
    // Buffered both ways: a pipeline of small messages is read in few reads and written in
    // few segments, flushed whenever nothing more is waiting to be read.
    let mut client_read = BufReader::with_capacity(RELAY_BUFFER, client_read);
    let mut target_read = BufReader::with_capacity(RELAY_BUFFER, target_read);
    let mut target_write = BufWriter::with_capacity(RELAY_BUFFER, target_write);
    let client_write = BufWriter::with_capacity(RELAY_BUFFER, client_write);
    let (notes, recording) = recording::start(&services.recorder, &session.id);
    // Both directions write to the client: the target's answers, and Loupe's notices.
    let client_write = Arc::new(tokio::sync::Mutex::new(client_write));
    let pipeline = Arc::new(Mutex::new(Pipeline::default()));
    // Told after each of the target's messages: a held Execute waits for confirmations, the
    // next batch of a reviewed connection for the last one's ReadyForQuery.
    let progress = Arc::new(Notify::new());
    let from_client = {
        let (notes, pipeline, progress, client_write) = (
            notes.clone(),
            pipeline.clone(),
            progress.clone(),
            client_write.clone(),
        );
        async move {
            let hold = Hold {
                services,
                admitted,
                session,
                notes: &notes,
            };
            let mut copy_in = CopyData::default();
            loop {
                let Ok(mut message) = read_message(&mut client_read, MAX_MESSAGE).await else {
                    return;
                };
                let tag = message[0];
                if copy_in.add(tag, &message[5..], &notes).await {
                    if forward(&mut target_write, &message, &client_read)
                        .await
                        .is_err()
                    {
                        return;
                    }
                    continue;
                }
                let bound = if tag == b'B' {
                    bound_parameters(&message[5..]).map(|(values, formats)| {
                        let numbered = values
                            .iter()
                            .enumerate()
                            .map(|(index, value)| format!("${} = {value}", index + 1))
                            .collect();
                        (numbered, formats)
                    })
                } else {
                    None
                };
                // What runs: a simple query's text, or what an Execute's portal was bound to
                // (as the target accepted it, so what is recorded and reviewed is what runs).
                let skipped = pipeline.lock().expect("never poisoned").skipping();
                let statement = match tag {
                    // A Query inside a failed extended batch is skipped by the target too.
                    b'Q' if skipped => None,
                    b'Q' => cstring(&message[5..]).map(|text| Portal {
                        text,
                        parameters: Vec::new(),
                        known: true,
                    }),
                    // A function call, by its OID (FunctionCall's first field).
                    b'F' if !skipped => Some(Portal {
                        text: format!(
                            "(a function call: OID {})",
                            i32_at(&message[5..], 0).unwrap_or_default()
                        ),
                        parameters: Vec::new(),
                        known: true,
                    }),
                    b'E' => {
                        let known = if admitted.reviewed {
                            settle(&mut target_write, &pipeline, &progress, &session.stop).await
                        } else {
                            true
                        };
                        let pipeline = pipeline.lock().expect("never poisoned");
                        if pipeline.skipping() {
                            // The target skips it (an error earlier in its batch).
                            None
                        } else {
                            Some(
                                // Where it waits for a reviewer, as the target accepted it.
                                pipeline
                                    .executed(&message[5..], admitted.reviewed)
                                    .filter(|_| known)
                                    .unwrap_or_else(|| Portal {
                                        text: UNKNOWN_PORTAL.to_owned(),
                                        parameters: Vec::new(),
                                        known: false,
                                    }),
                            )
                        }
                    }
                    _ => None,
                };
                if let Some(statement) = &statement {
                    notes.note(Seen::Query(statement.text.clone())).await;
                    if !statement.parameters.is_empty() {
                        notes
                            .note(Seen::Parameters(statement.parameters.clone()))
                            .await;
                    }
                }
                let mut rejected = false;
                if admitted.reviewed {
                    let refusal = match (tag, &statement) {
                        // A function call runs a function by its OID, around any statement a
                        // reviewer would see.
                        (b'F', _) => Some(
                            "function calls (the FunctionCall message) are not relayed on a connection whose statements are reviewed".to_owned(),
                        ),
                        (b'E', Some(portal)) if !portal.known => Some(
                            "Loupe cannot show this Execute to a reviewer: its portal is not one the target accepted".to_owned(),
                        ),
                        // An empty query does nothing on the target.
                        (b'Q' | b'E', Some(statement)) if !statement.text.trim().is_empty() => {
                            // What came before it goes to the target while it waits.
                            let _ = target_write.flush().await;
                            let gone = client_gone(&mut client_read);
                            match held(&hold, &statement.reviewed(), &client_write, withdraw, gone).await {
                                Decision::Approved(_) => None,
                                Decision::Refused(why) => Some(why),
                            }
                        }
                        _ => None,
                    };
                    if let Some(why) = refusal {
                        notes
                            .note(Seen::Failed {
                                code: REJECTED.to_owned(),
                                message: why.clone(),
                            })
                            .await;
                        let stand_in = if tag == b'E' { b'E' } else { b'Q' };
                        message = pipeline
                            .lock()
                            .expect("never poisoned")
                            .reject(stand_in, &why);
                        rejected = true;
                    }
                }
                // A stand-in was counted as it was made.
                if !rejected {
                    let sent =
                        pipeline
                            .lock()
                            .expect("never poisoned")
                            .sent(tag, &message[5..], bound);
                    if sent.is_err() && admitted.reviewed {
                        // Loupe cannot follow this pipeline to show reviewers what runs.
                        return;
                    }
                }
                if forward(&mut target_write, &message, &client_read)
                    .await
                    .is_err()
                    || tag == b'X'
                {
                    return;
                }
                // Where statements are reviewed, one batch at a time: what Loupe follows of
                // the pipeline then cannot drift from what the target does.
                if admitted.reviewed && matches!(message[0], b'S' | b'Q' | b'F') {
                    let _ = target_write.flush().await;
                    if !caught_up(&pipeline, &progress, &session.stop).await {
                        return;
                    }
                }
            }
        }
    };
    let from_target = async move {
        let mut columns: Option<RowDescription> = None;
        let mut copy_out = CopyData::default();
        loop {
            let read = tokio::select! {
                read = read_message(&mut target_read, MAX_MESSAGE) => read,
                () = session.stop.cancelled() => {
                    let reason = session.stop_reason();
                    let told = error_response("FATAL", "57P01", &format!("terminating the connection: {reason}"));
                    let mut client = client_write.lock().await;
                    let _ = client.write_all(&told).await;
                    let _ = client.flush().await;
                    return Ended::Stopped(reason);
                }
            };
            let Ok(message) = read else {
                return Ended::TargetClosed("the target closed the connection".to_owned());
            };
            if copy_out.add(message[0], &message[5..], &notes).await {
                let mut client = client_write.lock().await;
                if forward(&mut *client, &message, &target_read).await.is_err() {
                    return Ended::ClientLeft;
                }
                continue;
            }
            let (replaced, bound, lost) = {
                let mut pipeline = pipeline.lock().expect("never poisoned");
                let bound = (message[0] == b'D')
                    .then(|| pipeline.formats().map(<[i16]>::to_vec))
                    .flatten();
                let replaced = pipeline.answer(&message);
                let lost = admitted.reviewed && pipeline.out_of_step();
                (replaced, bound, lost)
            };
            // Whoever waits on the pipeline (a held Execute, the next batch) looks again.
            progress.notify_waiters();
            if lost {
                // Fail closed: what reviewers are shown can no longer be trusted.
                let told = error_response(
                    "FATAL",
                    "08P01",
                    "Loupe lost track of this connection's pipeline; connect again",
                );
                let mut client = client_write.lock().await;
                let _ = client.write_all(&told).await;
                let _ = client.flush().await;
                return Ended::TargetClosed("the pipeline went out of step".to_owned());
            }
            let message = match replaced {
                // Already recorded when the statement was refused.
                Some(rejection) => rejection,
                None => {
                    if let Some(noted) = backend_seen(&message, &mut columns, bound.as_deref()) {
                        notes.note(noted).await;
                    }
                    message
                }
            };
            let mut client = client_write.lock().await;
            if forward(&mut *client, &message, &target_read).await.is_err() {
                return Ended::ClientLeft;
            }
        }
    };
    let relaying = async {
        // A client that reads nothing can keep the FATAL from being written: a stop then takes
        // effect anyway, a moment later.
        let stopped_anyway = async {
            session.stop.cancelled().await;
            tokio::time::sleep(Duration::from_secs(2)).await;
        };
        tokio::select! {
            () = from_client => Ended::ClientLeft,
            ended = from_target => ended,
            () = stopped_anyway => Ended::Stopped(session.stop_reason()),
        }
    };
    let (ended, ()) = tokio::join!(relaying, recording);
    ended
}

/// Bytes buffered each way by the relay.
const RELAY_BUFFER: usize = 64 * 1024;

/// How an Execute whose portal Loupe does not know is recorded.
const UNKNOWN_PORTAL: &str = "(an Execute of a portal the target did not accept)";

/// Waits until the target has confirmed every Parse, Bind and Close sent before an Execute that
/// is to be held (a Flush makes it answer them now, not at the next Sync): false when the
/// session was stopped first.
async fn settle(
    target: &mut (impl AsyncWrite + Unpin),
    pipeline: &Mutex<Pipeline>,
    progress: &Notify,
    stop: &CancellationToken,
) -> bool {
    if target.write_all(&frame(b'H', b"")).await.is_err() || target.flush().await.is_err() {
        return false;
    }
    until(pipeline, progress, stop, Pipeline::settled).await
}

/// Waits until the target has answered every Query and Sync sent (or takes COPY data): false
/// when the session was stopped first.
async fn caught_up(
    pipeline: &Mutex<Pipeline>,
    progress: &Notify,
    stop: &CancellationToken,
) -> bool {
    until(pipeline, progress, stop, Pipeline::caught_up).await
}

/// Waits until `condition` holds of the pipeline, looking again at each of the target's
/// messages; false when the session was stopped first.
async fn until(
    pipeline: &Mutex<Pipeline>,
    progress: &Notify,
    stop: &CancellationToken,
    condition: fn(&Pipeline) -> bool,
) -> bool {
    let wait = async {
        loop {
            let notified = progress.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if condition(&pipeline.lock().expect("never poisoned")) {
                return;
            }
            notified.await;
        }
    };
    tokio::select! {
        () = wait => true,
        () = stop.cancelled() => false,
    }
}

/// Holds `statement` for review, telling the client where the review is (a NOTICE, which psql
/// prints at once); its decision. `gone` resolves when the client closes its connection.
async fn held(
    hold: &Hold<'_>,
    statement: &str,
    client: &tokio::sync::Mutex<BufWriter<WriteHalf<WireStream>>>,
    withdraw: &Notify,
    gone: impl Future<Output = ()>,
) -> Decision {
    let cancelled = cancel_heard(withdraw);
    let held = match hold.open(statement).await {
        Ok(held) => held,
        Err(why) => return Decision::Refused(why),
    };
    let notice = response(
        b'N',
        "NOTICE",
        "00000",
        &format!(
            "statement held for review at {}; it runs once a reviewer approves it (cancel to withdraw it)",
            held.address
        ),
    );
    let mut writer = client.lock().await;
    let _ = writer.write_all(&notice).await;
    let _ = writer.flush().await;
    drop(writer);
    let withdrawn = async {
        tokio::select! {
            () = cancelled => "the client cancelled the statement",
            () = gone => "the client went away",
        }
    };
    hold.decision(&held, withdrawn).await
}

/// A `COPY`'s data on its way (`CopyData` messages), gathered into pieces of up to
/// [`COPY_PIECE`] bytes for the record: rows of a few bytes each would otherwise be one
/// recording each.
#[derive(Default)]
struct CopyData {
    gathered: Vec<u8>,
}

/// The most `COPY` data recorded as one piece.
const COPY_PIECE: usize = 256 * 1024;

impl CopyData {
    /// Takes a message's copy: true when it was `CopyData` (gathered), false for any other
    /// message, before which what was gathered is noted.
    async fn add(&mut self, tag: u8, body: &[u8], notes: &Notes) -> bool {
        if tag == b'd' {
            self.gathered.extend_from_slice(body);
            if self.gathered.len() >= COPY_PIECE {
                notes
                    .note(Seen::Copy(std::mem::take(&mut self.gathered)))
                    .await;
            }
            return true;
        }
        if !self.gathered.is_empty() {
            notes
                .note(Seen::Copy(std::mem::take(&mut self.gathered)))
                .await;
        }
        false
    }
}

/// A row description's columns, for reading the rows that follow.
struct RowDescription {
    type_names: Vec<String>,
    binary: Vec<bool>,
}

/// A `Bind` message's parameters as text (text ones as quoted literals, binary ones in hex,
/// NULL as `NULL`), and the formats it asks the result columns in (none: all text; one: all
/// alike; else one each).
fn bound_parameters(body: &[u8]) -> Option<(Vec<String>, Vec<i16>)> {
    let mut at = body.iter().position(|byte| *byte == 0)? + 1;
    at += body[at..].iter().position(|byte| *byte == 0)? + 1;
    let formats = usize::try_from(i16_at(body, at)?).ok()?;
    let format_codes: Vec<i16> = (0..formats)
        .map(|index| i16_at(body, at + 2 + index * 2))
        .collect::<Option<_>>()?;
    at += 2 + formats * 2;
    let count = usize::try_from(i16_at(body, at)?).ok()?;
    at += 2;
    let mut values = Vec::with_capacity(count);
    for index in 0..count {
        let length = i32_at(body, at)?;
        at += 4;
        if length < 0 {
            values.push("NULL".to_owned());
            continue;
        }
        let value = body.get(at..at + length as usize)?;
        at += length as usize;
        values.push(if is_binary(&format_codes, index) {
            format!("\\x{}", crate::gateway::values::hex(value))
        } else {
            // As a literal, so one value cannot read as several to a reviewer.
            format!("'{}'", String::from_utf8_lossy(value).replace('\'', "''"))
        });
    }
    let results = usize::try_from(i16_at(body, at)?).ok()?;
    let result_formats = (0..results)
        .map(|index| i16_at(body, at + 2 + index * 2))
        .collect::<Option<_>>()?;
    Some((values, result_formats))
}

/// Whether value `index` comes in binary, by the format codes a `Bind` gave (none: all text;
/// one: all alike; else one each).
fn is_binary(formats: &[i16], index: usize) -> bool {
    match formats {
        [] => false,
        [only] => *only == 1,
        many => many.get(index) == Some(&1),
    }
}

/// What a target's message (as framed on the wire) says for the record. `formats`: the result
/// formats of the Execute whose rows these are (none for a simple query's), read only for a
/// row.
fn backend_seen(
    raw: &[u8],
    columns: &mut Option<RowDescription>,
    formats: Option<&[i16]>,
) -> Option<Seen> {
    if !matches!(raw[0], b'T' | b'D' | b'C' | b'E') {
        return None;
    }
    let message = Message::parse(&mut BytesMut::from(raw)).ok()??;
    match message {
        Message::RowDescription(description) => {
            let (described, binary) = describe(&description).ok()?;
            *columns = Some(RowDescription {
                type_names: described
                    .iter()
                    .map(|column| column.type_name.clone())
                    .collect(),
                binary,
            });
            Some(Seen::Columns(described))
        }
        Message::DataRow(row) => {
            let shape = columns.as_ref()?;
            let buffer = row.buffer();
            let mut ranges = row.ranges();
            let mut cells = Vec::new();
            let mut index = 0;
            while let Ok(Some(range)) = ranges.next() {
                let cell = match range {
                    None => Cell::Null,
                    Some(range)
                        if formats.map_or(shape.binary.get(index) == Some(&true), |formats| {
                            is_binary(formats, index)
                        }) =>
                    {
                        Cell::Text(format!(
                            "\\x{}",
                            crate::gateway::values::hex(&buffer[range])
                        ))
                    }
                    Some(range) => {
                        let text = String::from_utf8_lossy(&buffer[range]);
                        typed_cell(
                            shape.type_names.get(index).map_or("", String::as_str),
                            &text,
                        )
                    }
                };
                cells.push(cell);
                index += 1;
            }
            Some(Seen::Row(cells))
        }
        Message::CommandComplete(complete) => {
            // The next rows need their own description (a cached statement sends none: its
            // rows are then not recorded rather than recorded under another's columns).
            *columns = None;
            complete
                .tag()
                .ok()
                .map(|tag| Seen::Complete(tag.to_owned()))
        }
        Message::ErrorResponse(error) => {
            *columns = None;
            let (mut code, mut text) = (String::new(), String::new());
            let mut fields = error.fields();
            while let Ok(Some(field)) = fields.next() {
                match field.type_() {
                    b'C' => code = String::from_utf8_lossy(field.value_bytes()).into_owned(),
                    b'M' => text = String::from_utf8_lossy(field.value_bytes()).into_owned(),
                    _ => {}
                }
            }
            Some(Seen::Failed {
                code,
                message: text,
            })
        }
        _ => None,
    }
}

/// Columns with their type names (PostgreSQL's own for the common types, else the OID), and
/// which are sent in binary.
fn describe(description: &RowDescriptionBody) -> std::io::Result<(Vec<Column>, Vec<bool>)> {
    let mut fields = description.fields();
    let (mut columns, mut binary) = (Vec::new(), Vec::new());
    while let Some(field) = fields.next()? {
        columns.push(Column {
            name: field.name().to_owned(),
            type_name: type_name(field.type_oid()),
        });
        binary.push(field.format() == 1);
    }
    Ok((columns, binary))
}

/// `pg_type.typname` (upper case, as sqlx names them elsewhere in Loupe) for built-in OIDs.
fn type_name(oid: u32) -> String {
    let name = match oid {
        16 => "BOOL",
        17 => "BYTEA",
        18 => "CHAR",
        19 => "NAME",
        20 => "INT8",
        21 => "INT2",
        23 => "INT4",
        25 => "TEXT",
        26 => "OID",
        114 => "JSON",
        700 => "FLOAT4",
        701 => "FLOAT8",
        1042 => "BPCHAR",
        1043 => "VARCHAR",
        1082 => "DATE",
        1083 => "TIME",
        1114 => "TIMESTAMP",
        1184 => "TIMESTAMPTZ",
        1186 => "INTERVAL",
        1700 => "NUMERIC",
        2950 => "UUID",
        3802 => "JSONB",
        _ => return format!("OID {oid}"),
    };
    name.to_owned()
}

/// A message with its type byte and length, as it goes on the wire.
fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut framed = Vec::with_capacity(body.len() + 5);
    framed.put_u8(tag);
    framed.put_i32(body.len() as i32 + 4);
    framed.extend_from_slice(body);
    framed
}

/// One typed message of at most `max` bytes, as it goes on the wire (type byte, length, body:
/// the body starts at 5), so it is forwarded as read and parsed from the same bytes.
async fn read_message(
    stream: &mut (impl AsyncRead + Unpin),
    max: usize,
) -> std::io::Result<Vec<u8>> {
    let tag = stream.read_u8().await?;
    let length = stream.read_i32().await?;
    let size = usize::try_from(length)
        .ok()
        .filter(|length| (4..=max).contains(length))
        .ok_or_else(|| invalid("a message length out of bounds"))?;
    let mut message = Vec::with_capacity(size + 1);
    message.push(tag);
    message.extend_from_slice(&length.to_be_bytes());
    message.resize(size + 1, 0);
    stream.read_exact(&mut message[5..]).await?;
    Ok(message)
}

/// One untyped first message (startup, SSL, GSSAPI or cancel request): its body.
async fn read_startup(
    stream: &mut (impl AsyncRead + AsyncWrite + Unpin),
) -> std::io::Result<Vec<u8>> {
    let length = stream.read_i32().await?;
    let length = usize::try_from(length)
        .ok()
        .filter(|length| (8..=MAX_STARTUP).contains(length))
        .ok_or_else(|| invalid("a startup packet length out of bounds"))?;
    let mut body = vec![0; length - 4];
    stream.read_exact(&mut body).await?;
    Ok(body)
}

fn invalid(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned())
}

/// `name\0value\0…\0` pairs of a startup message.
fn startup_parameters(body: &[u8]) -> HashMap<String, String> {
    let mut parts = body
        .split(|byte| *byte == 0)
        .map(|part| String::from_utf8_lossy(part).into_owned());
    let mut parameters = HashMap::new();
    while let (Some(name), Some(value)) = (parts.next(), parts.next()) {
        if name.is_empty() {
            break;
        }
        parameters.insert(name, value);
    }
    parameters
}

fn cstring(body: &[u8]) -> Option<String> {
    let end = body.iter().position(|byte| *byte == 0)?;
    Some(String::from_utf8_lossy(&body[..end]).into_owned())
}

fn i32_at(body: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_be_bytes(body.get(at..at + 4)?.try_into().ok()?))
}

fn i16_at(body: &[u8], at: usize) -> Option<i16> {
    Some(i16::from_be_bytes(body.get(at..at + 2)?.try_into().ok()?))
}

fn rand_i32() -> i32 {
    let mut bytes = [0u8; 4];
    getrandom::fill(&mut bytes).expect("the system's random source");
    i32::from_be_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_startup_parameters_and_bind_values() {
        let parameters = startup_parameters(b"user\0alice\0database\0pg\0\0");
        assert_eq!(parameters["user"], "alice");
        assert_eq!(parameters["database"], "pg");

        // Bind: portal "", statement "s1", one format code (text), two values: "42" and NULL.
        let mut body = b"\0s1\0".to_vec();
        body.extend_from_slice(&1i16.to_be_bytes());
        body.extend_from_slice(&0i16.to_be_bytes());
        body.extend_from_slice(&2i16.to_be_bytes());
        body.extend_from_slice(&2i32.to_be_bytes());
        body.extend_from_slice(b"42");
        body.extend_from_slice(&(-1i32).to_be_bytes());
        // And one result format code: binary.
        body.extend_from_slice(&1i16.to_be_bytes());
        body.extend_from_slice(&1i16.to_be_bytes());
        assert_eq!(
            bound_parameters(&body),
            Some((vec!["'42'".to_owned(), "NULL".to_owned()], vec![1]))
        );
        assert!(is_binary(&[1], 3) && !is_binary(&[], 0) && is_binary(&[0, 1], 1));
        // Cut short: nothing, not a panic.
        assert_eq!(bound_parameters(&body[..body.len() - 3]), None);
    }

    #[test]
    fn refusals_are_fatal_error_responses() {
        let response = error_response("FATAL", "28P01", "no");
        assert_eq!(response[0], b'E');
        assert_eq!(i32_at(&response, 1), Some(response.len() as i32 - 1));
        assert!(response.windows(6).any(|window| window == b"C28P01"));
    }
}
