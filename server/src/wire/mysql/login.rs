//! The connection phase (<https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase.html>)
//! on both sides of Loupe.
//!
//! Toward the client Loupe is the server: it greets, reads the client's handshake response,
//! and asks for the password in clear text (`mysql_clear_password`), since a Loupe API token is
//! checked against its digest and cannot be verified from a scramble. Toward the target Loupe is
//! the client: it logs in with the connection's stored user and password by whichever method the
//! target asks for (`mysql_native_password`, `caching_sha2_password`, …, by `mysql_common`).
//!
//! Both sides must agree on the capabilities that shape later packets, since the relay forwards
//! them unchanged: the client chooses among those Loupe offers, and the target must have them.

use mysql_common::{
    auth::plugins::{AuthProc, ChallengeResponsePlugin, Context, Response},
    constants::{CapabilityFlags, StatusFlags},
    packets::{AuthPlugin, AuthSwitchRequest, HandshakePacket, HandshakeResponse, SslRequest},
};
use tokio::{io::AsyncWriteExt, net::TcpStream};

use super::packets::{packet, parse, parse_error, payload, read_packet, sequence, serialized};
use crate::{
    target_tls::TargetTls,
    wire::{
        decode,
        tls::{WireStream, WireTls},
    },
};

/// What Loupe offers clients (and TLS, always offered, which does not concern the target). Not
/// compression, `LOAD DATA LOCAL`
/// (the target could read the client's files), query attributes or optional metadata (which
/// change packets in ways MariaDB does not speak).
pub const OFFERED: CapabilityFlags = CapabilityFlags::from_bits_truncate(
    CapabilityFlags::CLIENT_LONG_PASSWORD.bits()
        | CapabilityFlags::CLIENT_FOUND_ROWS.bits()
        | CapabilityFlags::CLIENT_LONG_FLAG.bits()
        | CapabilityFlags::CLIENT_CONNECT_WITH_DB.bits()
        | CapabilityFlags::CLIENT_ODBC.bits()
        | CapabilityFlags::CLIENT_IGNORE_SPACE.bits()
        | CapabilityFlags::CLIENT_PROTOCOL_41.bits()
        | CapabilityFlags::CLIENT_INTERACTIVE.bits()
        | CapabilityFlags::CLIENT_IGNORE_SIGPIPE.bits()
        | CapabilityFlags::CLIENT_TRANSACTIONS.bits()
        | CapabilityFlags::CLIENT_SECURE_CONNECTION.bits()
        | CapabilityFlags::CLIENT_MULTI_STATEMENTS.bits()
        | CapabilityFlags::CLIENT_MULTI_RESULTS.bits()
        | CapabilityFlags::CLIENT_PS_MULTI_RESULTS.bits()
        | CapabilityFlags::CLIENT_PLUGIN_AUTH.bits()
        | CapabilityFlags::CLIENT_CONNECT_ATTRS.bits()
        | CapabilityFlags::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA.bits()
        | CapabilityFlags::CLIENT_SESSION_TRACK.bits()
        | CapabilityFlags::CLIENT_DEPRECATE_EOF.bits(),
);

/// The capabilities that change how later packets look: the target must speak each one the
/// client chose.
const SHAPING: CapabilityFlags = CapabilityFlags::from_bits_truncate(
    CapabilityFlags::CLIENT_PROTOCOL_41.bits()
        | CapabilityFlags::CLIENT_SECURE_CONNECTION.bits()
        | CapabilityFlags::CLIENT_MULTI_RESULTS.bits()
        | CapabilityFlags::CLIENT_PS_MULTI_RESULTS.bits()
        | CapabilityFlags::CLIENT_SESSION_TRACK.bits()
        | CapabilityFlags::CLIENT_DEPRECATE_EOF.bits(),
);

/// What Loupe tells clients it is; the target's own version is one `SELECT VERSION()` away.
const SERVER_VERSION: &[u8] = b"8.0.0-Loupe";
/// `utf8mb4_general_ci`, what MySQL 5.5.3 and later and MariaDB default clients to.
const DEFAULT_COLLATION: u8 = 45;
/// A handshake response or password is far smaller than this; nobody can make Loupe allocate
/// more on a bare connect.
const MAX_LOGIN_PACKET: usize = 64 * 1024;
/// MySQL's default `max_allowed_packet` toward the target (64 MiB).
const MAX_PACKET: u32 = 64 * 1024 * 1024;

/// A client's handshake: who, to which connection, with which token.
pub struct Hello {
    pub username: String,
    /// The Loupe connection it names as its database; none for a connection that only kills
    /// another's statement.
    pub connection: Option<String>,
    pub token: String,
    /// What the client chose among [`OFFERED`].
    pub capabilities: CapabilityFlags,
    pub collation: u8,
    /// `program_name` from its connection attributes (`mysql`, `pymysql`, …), when it sent one.
    pub program: Option<String>,
    /// The sequence number of the client's last packet: Loupe's answer is the next.
    pub seq: u8,
}

/// Why a client's handshake was not accepted: told to the client as an ERR packet.
pub struct Unwelcome {
    pub seq: u8,
    pub code: u16,
    pub state: &'static [u8; 5],
    pub message: String,
}

/// Greets the client (with `connection_id`, the id it will use to `KILL QUERY`), takes it into
/// TLS when it asks, and reads who it is, asking for the password in clear text when it
/// answered for another method. A password outside TLS is taken only on a `loopback` listener.
pub async fn greet(
    client: TcpStream,
    connection_id: u32,
    tls: &WireTls,
    loopback: bool,
) -> std::io::Result<(WireStream, Result<Hello, Unwelcome>)> {
    let mut client = WireStream::Plain(client);
    let scramble = scramble();
    let mut scramble_2 = scramble[8..].to_vec();
    scramble_2.push(0);
    let handshake = HandshakePacket::new(
        10,
        SERVER_VERSION,
        connection_id,
        scramble[..8].try_into().expect("eight bytes"),
        Some(scramble_2),
        OFFERED | CapabilityFlags::CLIENT_SSL,
        DEFAULT_COLLATION,
        StatusFlags::SERVER_STATUS_AUTOCOMMIT,
        Some(AuthPlugin::MysqlNativePassword.as_bytes()),
    );
    client
        .write_all(&packet(0, &serialized(&handshake)))
        .await?;
    let mut answer = read_packet(&mut client, MAX_LOGIN_PACKET).await?;
    // An SSL request is the handshake response's first 32 bytes, with CLIENT_SSL: TLS, then
    // the whole response inside it. The request was read to its last byte, so nothing sent
    // in clear text after it is taken for part of the TLS session.
    let asks_tls = payload(&answer).len() == 32
        && parse::<SslRequest>(payload(&answer), ())
            .is_some_and(|request| request.capabilities().contains(CapabilityFlags::CLIENT_SSL));
    if asks_tls {
        client = match client {
            WireStream::Plain(tcp) => tls.accept(tcp).await?,
            encrypted => encrypted,
        };
        answer = read_packet(&mut client, MAX_LOGIN_PACKET).await?;
    }
    let outcome = hello(&mut client, &answer, &scramble, loopback).await?;
    Ok((client, outcome))
}

/// The rest of the login after the client's handshake response (`answer`).
async fn hello(
    client: &mut WireStream,
    answer: &[u8],
    scramble: &[u8; 20],
    loopback: bool,
) -> std::io::Result<Result<Hello, Unwelcome>> {
    let mut seq = sequence(answer);
    if !client.is_tls() && !loopback {
        return Ok(Err(Unwelcome {
            seq,
            code: 3159,
            state: b"HY000",
            message: "Connections using insecure transport are prohibited: this listener takes passwords only over TLS (mysql --ssl)".into(),
        }));
    }
    let Some(response) = parse::<HandshakeResponse<'_>>(payload(answer), ()) else {
        return Ok(Err(Unwelcome {
            seq,
            code: 1043,
            state: b"08S01",
            message: "bad handshake".into(),
        }));
    };
    let capabilities = response.capabilities() & OFFERED;
    if !capabilities.contains(CapabilityFlags::CLIENT_PROTOCOL_41) {
        return Ok(Err(Unwelcome {
            seq,
            code: 1043,
            state: b"08S01",
            message: "Loupe speaks the MySQL 4.1 protocol and later".into(),
        }));
    }
    let username = String::from_utf8_lossy(response.user()).into_owned();
    // None: a connection only to `KILL` another (what `mysql` opens on Ctrl-C).
    let connection = response
        .db_name()
        .filter(|name| !name.is_empty())
        .map(|name| String::from_utf8_lossy(name).into_owned());
    let program = response
        .connect_attributes()
        .and_then(|attributes| attributes.get("program_name").cloned());
    let password = match response.auth_plugin() {
        Some(AuthPlugin::MysqlClearPassword) => response.scramble_buf().to_vec(),
        _ => {
            seq = seq.wrapping_add(1);
            // The scramble ends with a NUL, as MySQL sends it (and drivers expect).
            let mut data = scramble.to_vec();
            data.push(0);
            let switch = AuthSwitchRequest::new(AuthPlugin::MysqlClearPassword.as_bytes(), data);
            client.write_all(&packet(seq, &serialized(&switch))).await?;
            let password = read_packet(client, MAX_LOGIN_PACKET).await?;
            seq = sequence(&password);
            payload(&password).to_vec()
        }
    };
    // The clear-text method ends the password with a NUL.
    let token = match password.split_last() {
        Some((0, token)) => token,
        _ => &password[..],
    };
    Ok(Ok(Hello {
        username,
        connection,
        token: String::from_utf8_lossy(token).into_owned(),
        capabilities,
        collation: response.collation(),
        program,
        seq,
    }))
}

/// The target's side of a logged-in connection: its stream, its own id for the connection
/// (what `KILL QUERY` names there), and the payload of its final OK, which the client gets.
pub struct Target {
    pub stream: WireStream,
    pub thread_id: u32,
    pub ok: Vec<u8>,
}

/// Logs in to the target named by `url` (`mysql://user:password@host:port/database`) with
/// the client's capabilities and collation. Errors are for the administrator (the client is
/// only told that the target did not let Loupe in).
pub async fn connect_target(
    url: &str,
    capabilities: CapabilityFlags,
    collation: u8,
) -> Result<Target, String> {
    let url = url::Url::parse(url).map_err(|error| error.to_string())?;
    let host = url.host_str().unwrap_or("localhost").to_owned();
    let address = format!("{host}:{}", url.port().unwrap_or(3306));
    let user = decode(url.username());
    let password = url.password().map(decode).unwrap_or_default();
    let database = decode(url.path().trim_start_matches('/'));
    let tls = TargetTls::from_url(&url)?;

    let mut tcp = TcpStream::connect(&address)
        .await
        .map_err(|error| error.to_string())?;
    // Small messages answered at once: no Nagle delay (see `wire::accept`).
    tcp.set_nodelay(true).map_err(|error| error.to_string())?;
    let greeting = read_packet(&mut tcp, MAX_LOGIN_PACKET)
        .await
        .map_err(|error| error.to_string())?;
    if payload(&greeting).first() == Some(&0xff) {
        return Err(said(payload(&greeting), CapabilityFlags::empty()));
    }
    let handshake = parse::<HandshakePacket<'_>>(payload(&greeting), ())
        .ok_or("the target's greeting is not a MySQL handshake")?;
    let offered = handshake.capabilities();
    let missing = (capabilities & SHAPING) - offered;
    if !missing.is_empty() {
        return Err(format!(
            "the target does not speak what the client chose ({missing:?}): it is older than MySQL 5.7 or MariaDB 10.2"
        ));
    }
    let mut ours = (capabilities & offered)
        - CapabilityFlags::CLIENT_CONNECT_ATTRS
        - CapabilityFlags::CLIENT_SSL
        - CapabilityFlags::CLIENT_COMPRESS;
    let mut seq = sequence(&greeting).wrapping_add(1);
    // TLS as the URL asks, where the target offers it: an SSL request (a handshake response
    // cut after the character set), the handshake, then the whole response inside TLS.
    // The flags the handshake response will carry (mysql_common sets these two from its
    // arguments), so that the SSL request says the same.
    ours.set(
        CapabilityFlags::CLIENT_CONNECT_WITH_DB,
        !database.is_empty(),
    );
    ours.insert(CapabilityFlags::CLIENT_PLUGIN_AUTH);
    let mut stream = if tls.wanted() && offered.contains(CapabilityFlags::CLIENT_SSL) {
        ours |= CapabilityFlags::CLIENT_SSL;
        let request = SslRequest::new(ours, MAX_PACKET, collation);
        tcp.write_all(&packet(seq, &serialized(&request)))
            .await
            .map_err(|error| error.to_string())?;
        seq = seq.wrapping_add(1);
        tls.secure(tcp).await?
    } else {
        // Not asked for, or not offered: clear text where the mode allows it.
        tls.without()?;
        WireStream::Plain(tcp)
    };
    let over_tls = stream.is_tls();
    let plugin = handshake
        .auth_plugin()
        .map(AuthPlugin::into_owned)
        .unwrap_or(AuthPlugin::MysqlNativePassword);
    let mut nonce = handshake.nonce();
    let mut method = AuthProc::init(&plugin).map_err(|error| error.to_string())?;
    let first = method
        .run(
            Secret {
                password: &password,
                scramble: &nonce,
                over_tls,
            },
            &nonce,
        )
        .map_err(|error| format!("{}: {error}", plugin_name(&plugin)))?;
    let version = handshake.server_version_parsed().unwrap_or((5, 7, 0));
    let response = HandshakeResponse::new(
        first.data().map(<[u8]>::to_vec),
        version,
        Some(user.as_bytes()),
        (!database.is_empty()).then_some(database.as_bytes()),
        Some(plugin.clone()),
        ours,
        None,
        MAX_PACKET,
    );
    let mut payload_out = serialized(&response);
    // The client's character set and collation, not mysql_common's default: byte 8 of the
    // response (after capabilities and the maximum packet size).
    payload_out[8] = collation;
    stream
        .write_all(&packet(seq, &payload_out))
        .await
        .map_err(|error| error.to_string())?;
    loop {
        let answer = read_packet(&mut stream, MAX_LOGIN_PACKET)
            .await
            .map_err(|error| error.to_string())?;
        seq = sequence(&answer).wrapping_add(1);
        let body = payload(&answer);
        let reply = match body.first() {
            Some(0x00) => {
                return Ok(Target {
                    stream,
                    thread_id: handshake.connection_id(),
                    ok: body.to_vec(),
                });
            }
            Some(0xff) => return Err(said(body, ours)),
            Some(0xfe) => {
                let switch = parse::<AuthSwitchRequest<'_>>(body, ())
                    .ok_or("a malformed authentication switch from the target")?;
                let plugin = switch.auth_plugin().into_owned();
                nonce = match switch.plugin_data().split_last() {
                    Some((0, data)) => data.to_vec(),
                    _ => switch.plugin_data().to_vec(),
                };
                method = AuthProc::init(&plugin).map_err(|error| error.to_string())?;
                method.run(
                    Secret {
                        password: &password,
                        scramble: &nonce,
                        over_tls,
                    },
                    &nonce,
                )
            }
            // More data for the method in progress (caching_sha2_password's fast or full path).
            Some(0x01) => method.run(
                Secret {
                    password: &password,
                    scramble: &nonce,
                    over_tls,
                },
                &body[1..],
            ),
            _ => return Err("an unexpected packet while logging in to the target".into()),
        }
        .map_err(|error| error.to_string())?;
        if let Response::Next { packet: Some(data) } | Response::Last { packet: Some(data) } = reply
        {
            stream
                .write_all(&packet(seq, &data))
                .await
                .map_err(|error| error.to_string())?;
        }
    }
}

/// The password and scramble an authentication method works from.
struct Secret<'a> {
    password: &'a str,
    scramble: &'a [u8],
    /// Inside TLS, `caching_sha2_password`'s full authentication sends the password as it is
    /// rather than encrypted with the target's RSA key.
    over_tls: bool,
}

impl Context for Secret<'_> {
    fn pass(&self) -> &[u8] {
        self.password.as_bytes()
    }

    fn is_ipc_transport(&self) -> bool {
        false
    }

    fn is_tls_transport(&self) -> bool {
        self.over_tls
    }

    fn scramble(&self) -> &[u8] {
        self.scramble
    }

    /// None: `caching_sha2_password` then asks the target for its key.
    fn server_key_pem(&self) -> Option<&[u8]> {
        None
    }
}

fn plugin_name(plugin: &AuthPlugin<'_>) -> String {
    String::from_utf8_lossy(plugin.as_bytes()).into_owned()
}

/// What an ERR packet from the target said.
fn said(payload: &[u8], capabilities: CapabilityFlags) -> String {
    parse_error(payload, capabilities | CapabilityFlags::CLIENT_PROTOCOL_41).map_or_else(
        || "the target refused the login".to_owned(),
        |(code, _, message)| format!("{message} (MySQL error {code})"),
    )
}

/// Twenty random bytes for the handshake, none of them NUL (clients read the scramble's second
/// part up to a NUL).
fn scramble() -> [u8; 20] {
    let mut bytes = [0u8; 20];
    getrandom::fill(&mut bytes).expect("the system's random source");
    for byte in &mut bytes {
        *byte = (*byte % 94) + 33;
    }
    bytes
}
