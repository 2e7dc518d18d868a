//! Managing connections (what the gateway runs through): validation, the write-only secrets (a
//! database URL, a command's environment: sealed before they are stored, never returned), and
//! the wire view. Only administrators create, change or delete connections;
//! everyone logged in may list them to pick one.

use loupe_protocol::{
    CommandSettings, CommandView, Connection, ConnectionChanges, ConnectionKind, NewConnection,
    SshSettings, SshView, Timestamp,
};

use std::collections::{BTreeMap, HashMap};

use crate::gateway::{Gateway, command::StoredCommand, default_session_type};
use crate::{
    error::ApiError,
    identity::auth::Actor,
    identity::policy::{self, ensure},
    identity::validate,
    reviews::rules,
    store::{ConnectionRecord, Store, now_us},
    target_tls::TargetTls,
    terminal::{
        settings::{SshSecret, StoredSsh, StoredTerminal},
        ssh,
    },
};

const MAX_TIMEOUT_SECONDS: u32 = 7 * 24 * 3600;

/// Seals a command's environment for the `secret` column (none when it is empty).
fn seal_env(gateway: &Gateway, id: &str, env: &BTreeMap<String, String>) -> Option<Vec<u8>> {
    (!env.is_empty()).then(|| {
        gateway
            .secrets()
            .seal(id, &serde_json::to_string(env).expect("strings serialise"))
    })
}

/// Moves command environments stored in plain text (before they were sealed) into the sealed
/// `secret` column. Runs at start; returns how many connections it changed.
pub async fn seal_legacy_environments(gateway: &Gateway) -> Result<usize, ApiError> {
    let mut sealed = 0;
    for mut record in gateway.store().list_connections().await? {
        let Some(json) = record.command.as_deref() else {
            continue;
        };
        let mut stored = StoredCommand::parse(json)?;
        if stored.env.is_empty() {
            continue;
        }
        let env = std::mem::take(&mut stored.env);
        stored.env_names = env.keys().cloned().collect();
        record.secret = seal_env(gateway, &record.id, &env);
        record.command = Some(stored.to_json());
        gateway.store().update_connection(&record).await?;
        sealed += 1;
    }
    Ok(sealed)
}

/// The stored connection with this id, or "no such connection".
pub async fn existing(store: &Store, id: &str) -> Result<ConnectionRecord, ApiError> {
    store
        .connection(id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such connection"))
}

/// The wire view; `group_names` (see [`reviews::rules::group_names`]) names the reviewer groups.
pub fn to_connection(
    record: ConnectionRecord,
    group_names: &HashMap<String, String>,
) -> Connection {
    let kind = record.kind;
    let terminal = StoredTerminal::parse(record.terminal.as_deref()).unwrap_or_default();
    Connection {
        ssh: terminal.ssh.map(|ssh| SshView {
            host_key_fingerprint: ssh
                .host_key
                .as_deref()
                .and_then(|key| ssh::parse_host_key(key).ok())
                .map(|key| ssh::fingerprint(&key)),
            host: ssh.host,
            port: ssh.port,
            username: ssh.username,
            auth: if ssh.key { "key" } else { "password" }.to_owned(),
            host_key: ssh.host_key,
        }),
        record_input: terminal.record_input,
        review: rules::named(rules::of(&record), group_names),
        session_type: record.session_type,
        has_url: kind.is_database() && record.secret.is_some(),
        command: record
            .command
            .as_deref()
            .and_then(|json| StoredCommand::parse(json).ok())
            .map(|stored| CommandView {
                argv: stored.argv,
                env_names: stored.env_names,
                working_dir: stored.working_dir,
                input: stored.input,
                run_as: stored.run_as,
            }),
        timeout_seconds: record
            .timeout_seconds
            .and_then(|seconds| u32::try_from(seconds).ok()),
        tags: serde_json::from_str(&record.tags).unwrap_or_default(),
        created_at: Timestamp::from_micros(record.created_at_us),
        id: record.id,
        name: record.name,
        kind,
    }
}

fn check_url(kind: ConnectionKind, url: &str) -> Result<(), ApiError> {
    let scheme_ok = match kind {
        ConnectionKind::Postgres => {
            url.starts_with("postgres://") || url.starts_with("postgresql://")
        }
        ConnectionKind::Mysql => url.starts_with("mysql://") || url.starts_with("mariadb://"),
        ConnectionKind::Sqlite => url.starts_with("sqlite:"),
        ConnectionKind::Command | ConnectionKind::Shell | ConnectionKind::Ssh => false,
    };
    if !scheme_ok {
        return Err(ApiError::bad_request(
            "url",
            format!("url must be a {} URL", kind.as_str()),
        ));
    }
    if url.len() > 2048 {
        return Err(ApiError::bad_request(
            "url",
            "url must be at most 2048 bytes",
        ));
    }
    if matches!(kind, ConnectionKind::Postgres | ConnectionKind::Mysql) {
        // The TLS parameters mean the same on the Run page and the wire listeners: a mode
        // neither knows is refused now rather than at the first connect.
        let parsed = url::Url::parse(url)
            .map_err(|error| ApiError::bad_request("url", format!("url: {error}")))?;
        TargetTls::from_url(&parsed)
            .map_err(|message| ApiError::bad_request("url", format!("url: {message}")))?;
        // And as the Run page reads it: sqlx takes each database's own spelling only.
        let read = match kind {
            ConnectionKind::Postgres => url.parse::<sqlx::postgres::PgConnectOptions>().map(drop),
            _ => url.parse::<sqlx::mysql::MySqlConnectOptions>().map(drop),
        };
        read.map_err(|error| ApiError::bad_request("url", format!("url: {error}")))?;
    }
    Ok(())
}

fn check_command(settings: &CommandSettings) -> Result<(), ApiError> {
    if settings.argv.is_empty() || settings.argv[0].trim().is_empty() {
        return Err(ApiError::bad_request(
            "command.argv",
            "command.argv must name a program, e.g. [\"sh\", \"-c\"]",
        ));
    }
    let env = settings.env.iter().flatten();
    if settings
        .argv
        .iter()
        .chain(env.clone().flat_map(|(name, value)| [name, value]))
        .any(|part| part.contains('\0'))
    {
        return Err(ApiError::bad_request(
            "command",
            "command must not contain NUL characters",
        ));
    }
    if let Some(name) = &settings.run_as {
        crate::child_process::os_user(name)
            .map_err(|reason| ApiError::bad_request("command.run_as", reason))?;
    }
    if env
        .map(|(name, _)| name)
        .any(|name| name.is_empty() || name.contains('='))
    {
        return Err(ApiError::bad_request(
            "command.env",
            "command.env names must be non-empty and without '='",
        ));
    }
    Ok(())
}

/// A host name or address, a user name: printable, without spaces, of reasonable length.
fn check_word(field: &str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.is_empty()
        || value.len() > max
        || value.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(ApiError::bad_request(
            field,
            format!("{field} must be 1 to {max} characters without spaces"),
        ));
    }
    Ok(())
}

/// Checks ssh settings; `previous` is the stored target when changing a connection. Answers
/// what the `terminal` column keeps of them and the secret to seal, if a new one was given.
fn check_ssh(
    settings: &SshSettings,
    previous: Option<&StoredSsh>,
) -> Result<(StoredSsh, Option<SshSecret>), ApiError> {
    check_word("ssh.host", &settings.host, 253)?;
    check_word("ssh.username", &settings.username, 64)?;
    let port = settings.port.unwrap_or(22);
    if port == 0 {
        return Err(ApiError::bad_request(
            "ssh.port",
            "ssh.port must be 1 to 65535",
        ));
    }
    let secret = match (&settings.private_key, &settings.password) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "ssh",
                "give ssh.private_key or ssh.password, not both",
            ));
        }
        (Some(key), None) => {
            russh::keys::decode_secret_key(key, None).map_err(|error| {
                ApiError::bad_request(
                    "ssh.private_key",
                    format!("ssh.private_key must be an unencrypted private key in OpenSSH format: {error}"),
                )
            })?;
            Some(SshSecret {
                private_key: Some(key.clone()),
                password: None,
            })
        }
        (None, Some(password)) if !password.is_empty() => Some(SshSecret {
            private_key: None,
            password: Some(password.clone()),
        }),
        (None, Some(_)) => {
            return Err(ApiError::bad_request(
                "ssh.password",
                "ssh.password must not be empty",
            ));
        }
        (None, None) if previous.is_some() => None,
        (None, None) => {
            return Err(ApiError::bad_request(
                "ssh",
                "an ssh connection needs ssh.private_key or ssh.password",
            ));
        }
    };
    let same_place =
        previous.is_some_and(|previous| previous.host == settings.host && previous.port == port);
    let host_key = match settings.host_key.as_deref().map(str::trim) {
        Some("") => None,
        Some(text) => Some(ssh::host_key_text(
            &ssh::parse_host_key(text)
                .map_err(|reason| ApiError::bad_request("ssh.host_key", reason))?,
        )),
        None if same_place => previous.and_then(|previous| previous.host_key.clone()),
        None => None,
    };
    let key = match &secret {
        Some(secret) => secret.private_key.is_some(),
        None => previous.is_some_and(|previous| previous.key),
    };
    Ok((
        StoredSsh {
            host: settings.host.clone(),
            port,
            username: settings.username.clone(),
            host_key,
            key,
        },
        secret,
    ))
}

fn seal_ssh(gateway: &Gateway, id: &str, secret: &SshSecret) -> Vec<u8> {
    gateway.secrets().seal(
        id,
        &serde_json::to_string(secret).expect("strings serialise"),
    )
}

/// Refuses settings that belong to another kind of connection, naming the field.
fn refuse_foreign_settings(
    kind: ConnectionKind,
    url: bool,
    command: bool,
    ssh: bool,
    record_input: bool,
) -> Result<(), ApiError> {
    let refused = if url && !kind.is_database() {
        Some("url")
    } else if command && !kind.runs_program() {
        Some("command")
    } else if ssh && kind != ConnectionKind::Ssh {
        Some("ssh")
    } else if record_input && !kind.is_terminal() {
        Some("record_input")
    } else {
        None
    };
    match refused {
        Some(field) => Err(ApiError::bad_request(
            field,
            format!("a {} connection has no {field}", kind.as_str()),
        )),
        None => Ok(()),
    }
}

fn check_timeout(timeout: Option<u32>) -> Result<Option<i32>, ApiError> {
    match timeout {
        Some(seconds) if !(1..=MAX_TIMEOUT_SECONDS).contains(&seconds) => {
            Err(ApiError::bad_request(
                "timeout_seconds",
                format!("timeout_seconds must be between 1 and {MAX_TIMEOUT_SECONDS}"),
            ))
        }
        other => Ok(other.map(|seconds| seconds as i32)),
    }
}

fn check_tags(tags: &[String]) -> Result<String, ApiError> {
    if tags.len() > 20 || tags.iter().any(|tag| tag.is_empty() || tag.len() > 64) {
        return Err(ApiError::bad_request(
            "tags",
            "tags: at most 20, each 1 to 64 characters",
        ));
    }
    Ok(serde_json::to_string(tags).expect("strings serialise"))
}

pub async fn create(
    gateway: &Gateway,
    actor: &Actor,
    new: &NewConnection,
) -> Result<Connection, ApiError> {
    ensure(
        policy::may_manage_connections(actor),
        "only administrators manage connections",
    )?;
    let name = validate::handle("name", &new.name)?;
    let id = uuid::Uuid::now_v7().to_string();
    let kind = new.kind;
    refuse_foreign_settings(
        kind,
        new.url.is_some(),
        new.command.is_some(),
        new.ssh.is_some(),
        new.record_input.is_some(),
    )?;
    let record_input = new.record_input.unwrap_or(false);
    let (command, secret, terminal) = match kind {
        ConnectionKind::Command | ConnectionKind::Shell => {
            let settings = new.command.as_ref().ok_or_else(|| {
                ApiError::bad_request(
                    "command",
                    format!("a {} connection needs command.argv", kind.as_str()),
                )
            })?;
            check_command(settings)?;
            let env = settings.env.clone().unwrap_or_default();
            let stored = StoredCommand::new(settings, env.keys().cloned().collect());
            let terminal = (kind == ConnectionKind::Shell).then(|| {
                StoredTerminal {
                    record_input,
                    ssh: None,
                }
                .to_json()
            });
            (
                Some(stored.to_json()),
                seal_env(gateway, &id, &env),
                terminal,
            )
        }
        ConnectionKind::Ssh => {
            let settings = new.ssh.as_ref().ok_or_else(|| {
                ApiError::bad_request(
                    "ssh",
                    "an ssh connection needs ssh.host, ssh.username and a key or password",
                )
            })?;
            let (stored, secret) = check_ssh(settings, None)?;
            let terminal = StoredTerminal {
                record_input,
                ssh: Some(stored),
            };
            let secret = secret.map(|secret| seal_ssh(gateway, &id, &secret));
            (None, secret, Some(terminal.to_json()))
        }
        kind => {
            let url = new.url.as_deref().ok_or_else(|| {
                ApiError::bad_request("url", format!("a {} connection needs a url", kind.as_str()))
            })?;
            check_url(kind, url)?;
            (None, Some(gateway.secrets().seal(&id, url)), None)
        }
    };
    let now = now_us();
    let record = ConnectionRecord {
        id,
        name,
        kind: new.kind,
        session_type: new
            .session_type
            .unwrap_or_else(|| default_session_type(new.kind)),
        command,
        secret,
        timeout_seconds: check_timeout(new.timeout_seconds)?,
        tags: check_tags(&new.tags)?,
        review: match &new.review {
            Some(review) => rules::validate(gateway.store(), review).await?,
            None => None,
        },
        terminal,
        created_at_us: now,
    };
    gateway.store().create_connection(&record).await?;
    let mut event = actor.audit("connection.created", format!("connection:{}", record.name));
    event.detail = Some(record.kind.as_str().to_owned());
    gateway.store().record_audit(&event).await?;
    Ok(to_connection(
        record,
        &rules::group_names(gateway.store()).await?,
    ))
}

pub async fn update(
    gateway: &Gateway,
    actor: &Actor,
    id: &str,
    changes: &ConnectionChanges,
) -> Result<Connection, ApiError> {
    ensure(
        policy::may_manage_connections(actor),
        "only administrators manage connections",
    )?;
    let mut record = existing(gateway.store(), id).await?;
    let kind = record.kind;
    if let Some(name) = &changes.name {
        record.name = validate::handle("name", name)?;
    }
    refuse_foreign_settings(
        kind,
        changes.url.is_some(),
        changes.command.is_some(),
        changes.ssh.is_some(),
        changes.record_input.is_some(),
    )?;
    if let Some(url) = &changes.url {
        check_url(kind, url)?;
        record.secret = Some(gateway.secrets().seal(&record.id, url));
    }
    let mut terminal = StoredTerminal::parse(record.terminal.as_deref())?;
    if let Some(settings) = &changes.ssh {
        let (stored, secret) = check_ssh(settings, terminal.ssh.as_ref())?;
        if let Some(secret) = secret {
            record.secret = Some(seal_ssh(gateway, &record.id, &secret));
        }
        terminal.ssh = Some(stored);
    }
    if let Some(record_input) = changes.record_input {
        terminal.record_input = record_input;
    }
    if kind.is_terminal() {
        record.terminal = Some(terminal.to_json());
    }
    if let Some(settings) = &changes.command {
        check_command(settings)?;
        let previous = record
            .command
            .as_deref()
            .map(StoredCommand::parse)
            .transpose()?
            .unwrap_or_default();
        let env_names = match &settings.env {
            Some(env) => {
                record.secret = seal_env(gateway, &record.id, env);
                env.keys().cloned().collect()
            }
            None => previous.env_names,
        };
        record.command = Some(StoredCommand::new(settings, env_names).to_json());
    }
    if changes.timeout_seconds.is_some() {
        record.timeout_seconds = check_timeout(changes.timeout_seconds)?;
    }
    if let Some(tags) = &changes.tags {
        record.tags = check_tags(tags)?;
    }
    if let Some(review) = &changes.review {
        record.review = rules::validate(gateway.store(), review).await?;
    }
    gateway.store().update_connection(&record).await?;
    let mut event = actor.audit("connection.changed", format!("connection:{}", record.name));
    let env_replaced = changes
        .command
        .as_ref()
        .is_some_and(|command| command.env.is_some());
    let ssh_secret_replaced = changes
        .ssh
        .as_ref()
        .is_some_and(|ssh| ssh.private_key.is_some() || ssh.password.is_some());
    event.detail = match (&changes.url, &changes.review) {
        (Some(_), _) => Some("url replaced".to_owned()),
        (None, _) if ssh_secret_replaced => Some("ssh credentials replaced".to_owned()),
        (None, _) if env_replaced => Some("environment replaced".to_owned()),
        (None, Some(_)) => record
            .review
            .clone()
            .or(Some("review rules removed".to_owned())),
        (None, None) => None,
    };
    gateway.store().record_audit(&event).await?;
    Ok(to_connection(
        record,
        &rules::group_names(gateway.store()).await?,
    ))
}

pub async fn delete(gateway: &Gateway, actor: &Actor, id: &str) -> Result<(), ApiError> {
    ensure(
        policy::may_manage_connections(actor),
        "only administrators manage connections",
    )?;
    let record = existing(gateway.store(), id).await?;
    gateway.store().delete_connection(&record.id).await?;
    gateway
        .store()
        .record_audit(&actor.audit("connection.deleted", format!("connection:{}", record.name)))
        .await?;
    Ok(())
}
