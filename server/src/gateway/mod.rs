//! The gateway: Loupe as the path through which people run SQL and commands. Starting a run
//! creates the session and answers at once; the work continues in a task that records every
//! piece of output as it arrives, and the session ends with what happened. Runs on this node
//! can be killed.

pub mod command;
pub mod processes;
pub mod sealing;
mod sql;
pub(crate) mod sqlite;
mod ssh_command;
mod statements;
pub(crate) mod values;

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use loupe_protocol::{
    CommandSettings, ConnectionKind, EventKind, SessionStatus, SessionType, Verb,
};
use tokio_util::sync::CancellationToken;

use crate::{
    error::ApiError,
    identity::auth::Actor,
    sessions::recorder::{Append, NewEvent, Recorded, Recorder},
    sessions::{existing_session, summarize},
    store::{ConnectionRecord, NewSessionRecord, SessionRecord, Store, now_us},
};

use self::sealing::SecretBox;
use crate::terminal::{
    pty,
    screen::Size,
    settings::{SshSecret, SshTarget, StoredTerminal},
    ssh,
    target::Opened,
};

/// How a run ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    Done {
        exit_code: Option<i32>,
    },
    Failed {
        reason: String,
    },
    /// The target refused a statement, which has therefore ended: nothing is left running on
    /// it to cancel.
    Refused {
        reason: String,
    },
    Cancelled,
    /// Recording itself failed; nothing more can be written.
    Lost {
        reason: String,
    },
}

/// Limits that apply when a connection sets none.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub statement_timeout: Duration,
    pub command_timeout: Duration,
}

#[derive(Clone)]
pub struct Gateway {
    store: Store,
    recorder: Recorder,
    secrets: SecretBox,
    limits: Limits,
    node_id: String,
    running: Arc<Mutex<HashMap<String, Running>>>,
    /// Loupe's own files, which no SQLite target may open (see [`sqlite::protected_paths`]).
    protected: Arc<Vec<PathBuf>>,
}

/// What this node knows of one of its runs, for stopping it.
struct Running {
    cancel: CancellationToken,
    /// Why it was stopped, when something other than a person stopped it.
    reason: Arc<std::sync::OnceLock<String>>,
    /// The just-in-time access review it runs under, when its connection needs one.
    access: Option<String>,
}

/// One run in progress: what executors record through.
pub(crate) struct Run {
    session_id: String,
    store: Store,
    pub input: String,
    recorder: Recorder,
    pub cancel: CancellationToken,
    timeout: Option<Duration>,
    told_truncated: AtomicBool,
    stop_reason: Arc<std::sync::OnceLock<String>>,
}

impl Run {
    /// Records appends; when recording fails the run cannot go on and `Err` is its outcome.
    pub async fn record(&self, appends: Vec<Append>) -> Result<Recorded, Outcome> {
        let recorded = self
            .recorder
            .record(&self.session_id, appends)
            .await
            .map_err(|error| Outcome::Lost {
                reason: error.to_string(),
            })?;
        if recorded.truncated && !self.told_truncated.swap(true, Ordering::SeqCst) {
            let note = NewEvent::new(
                EventKind::Note,
                "output past the storage limit (LOUPE_MAX_OUTPUT_BYTES) is not kept",
            );
            self.recorder
                .record(&self.session_id, vec![Append::Event(note)])
                .await
                .map_err(|error| Outcome::Lost {
                    reason: error.to_string(),
                })?;
        }
        Ok(recorded)
    }

    /// Records an error event saying `reason` and returns the failed outcome.
    pub async fn fail(&self, reason: impl Into<String>) -> Outcome {
        let reason = reason.into();
        let event = NewEvent {
            text: Some(reason.clone()),
            ..NewEvent::new(EventKind::Error, summarize(&reason))
        };
        match self.record(vec![Append::Event(event)]).await {
            Ok(_) => Outcome::Failed { reason },
            Err(outcome) => outcome,
        }
    }

    /// The outcome of a statement the target refused, when its error event is recorded.
    pub async fn finish_failed(&self, reason: String) -> Outcome {
        Outcome::Refused { reason }
    }

    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// Stores the process group the run's program leads, so a restart can find it (see
    /// [`processes`]).
    pub async fn started_program(&self, group: u32) {
        let Some(started) = processes::start_time(group) else {
            return;
        };
        if let Err(error) = self
            .store
            .set_session_program(&self.session_id, i64::from(group), started)
            .await
        {
            tracing::warn!(session = %self.session_id, %error, "could not store a program's process group");
        }
    }
}

impl Gateway {
    pub fn new(
        store: Store,
        recorder: Recorder,
        secrets: SecretBox,
        limits: Limits,
        node_id: String,
        protected: Vec<PathBuf>,
    ) -> Gateway {
        Gateway {
            store,
            recorder,
            secrets,
            limits,
            node_id,
            running: Arc::default(),
            protected: Arc::new(protected),
        }
    }

    pub fn secrets(&self) -> &SecretBox {
        &self.secrets
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Creates the session and starts running `input` through `connection`; answers at once.
    /// `access` is the just-in-time access review it runs under, if its connection needs one:
    /// the run stops when that access ends (see [`Gateway::runs_under_access`]).
    pub async fn start(
        &self,
        actor: &Actor,
        connection: &ConnectionRecord,
        input: &str,
        rerun_of: Option<String>,
        access: Option<String>,
    ) -> Result<SessionRecord, ApiError> {
        let id = self
            .create_session(
                actor,
                connection,
                input,
                rerun_of,
                SessionStatus::Running,
                Verb::Exec,
            )
            .await?;
        self.launch(&id, connection, input, access)?;
        existing_session(&self.store, &id).await
    }

    /// Creates the session as `pending_review`: it runs only when [`Gateway::run_held`] is
    /// called after approval.
    pub async fn hold(
        &self,
        actor: &Actor,
        connection: &ConnectionRecord,
        input: &str,
        rerun_of: Option<String>,
    ) -> Result<SessionRecord, ApiError> {
        let id = self
            .create_session(
                actor,
                connection,
                input,
                rerun_of,
                SessionStatus::PendingReview,
                Verb::Exec,
            )
            .await?;
        existing_session(&self.store, &id).await
    }

    /// Runs a held session on this node, with `note` (who approved it) as its first event.
    /// Does nothing when the session is no longer held, so it runs at most once.
    pub async fn run_held(
        &self,
        session_id: &str,
        connection: &ConnectionRecord,
        input: &str,
        note: &str,
    ) -> Result<(), ApiError> {
        if !self
            .store
            .begin_reviewed_session(session_id, &self.node_id)
            .await?
        {
            return Ok(());
        }
        self.recorder
            .record(
                session_id,
                vec![Append::Event(NewEvent::new(EventKind::Note, note))],
            )
            .await?;
        self.launch(session_id, connection, input, None)
    }

    /// Ends a held session without running it; does nothing to a session that is not held
    /// (a wire-protocol client's, whose statements are reviewed one by one while it runs).
    pub async fn end_held(
        &self,
        session_id: &str,
        status: SessionStatus,
        reason: &str,
    ) -> Result<(), ApiError> {
        let held = self.store.session(session_id).await?;
        if held.is_none_or(|session| session.status != SessionStatus::PendingReview) {
            return Ok(());
        }
        let appends = vec![
            Append::Event(NewEvent::new(EventKind::Note, reason)),
            Append::Finish {
                status,
                exit_code: None,
                error: Some(reason.to_owned()),
            },
        ];
        self.recorder.record(session_id, appends).await?;
        Ok(())
    }

    pub(crate) async fn create_session(
        &self,
        actor: &Actor,
        connection: &ConnectionRecord,
        input: &str,
        rerun_of: Option<String>,
        status: SessionStatus,
        verb: Verb,
    ) -> Result<String, ApiError> {
        let user_id = actor
            .user_id
            .clone()
            .ok_or_else(|| ApiError::forbidden("runs need a user"))?;
        let id = uuid::Uuid::now_v7().to_string();
        self.store
            .create_session(&NewSessionRecord {
                id: id.clone(),
                user_id,
                username: actor.username.clone(),
                connection_id: Some(connection.id.clone()),
                connection_name: connection.name.clone(),
                connection_kind: connection.kind.as_str().to_owned(),
                session_type: connection.session_type,
                verb,
                status,
                summary: summarize(input),
                input: input.to_owned(),
                node_id: self.node_id.clone(),
                started_at_us: now_us(),
                labels: "{}".into(),
                rerun_of,
                agent: None,
            })
            .await?;
        Ok(id)
    }

    /// Starts the work of a created session in its own task.
    fn launch(
        &self,
        id: &str,
        connection: &ConnectionRecord,
        input: &str,
        access: Option<String>,
    ) -> Result<(), ApiError> {
        let kind = connection.kind;
        let work = Work {
            kind,
            url: self.url_of(connection)?,
            command: self.command_of(connection)?,
            ssh: self.ssh_target_of(connection)?,
            protected: self.protected.clone(),
        };
        let cancel = CancellationToken::new();
        let stop_reason = Arc::new(std::sync::OnceLock::new());
        self.running.lock().expect("never poisoned").insert(
            id.to_owned(),
            Running {
                cancel: cancel.clone(),
                reason: stop_reason.clone(),
                access,
            },
        );
        let timeout = connection
            .timeout_seconds
            .and_then(|seconds| u64::try_from(seconds).ok())
            .map(Duration::from_secs)
            .or(Some(if kind.is_database() {
                self.limits.statement_timeout
            } else {
                self.limits.command_timeout
            }));
        let run = Run {
            session_id: id.to_owned(),
            store: self.store.clone(),
            input: input.to_owned(),
            recorder: self.recorder.clone(),
            cancel,
            timeout,
            told_truncated: AtomicBool::new(false),
            stop_reason,
        };
        let gateway = self.clone();
        tokio::spawn(async move {
            let outcome = work.execute(&run).await;
            gateway.finish(&run, outcome).await;
        });
        Ok(())
    }

    /// Registers a session that runs outside [`Gateway::start`] (a wire-protocol client's), so
    /// that kill, stop and the end of its just-in-time access reach it too. Answers what stopping
    /// it signals and why; call [`Gateway::forget`] when it ends.
    pub(crate) fn register(
        &self,
        session_id: &str,
        access: Option<String>,
    ) -> (CancellationToken, Arc<std::sync::OnceLock<String>>) {
        let cancel = CancellationToken::new();
        let reason = Arc::new(std::sync::OnceLock::new());
        self.running.lock().expect("never poisoned").insert(
            session_id.to_owned(),
            Running {
                cancel: cancel.clone(),
                reason: reason.clone(),
                access,
            },
        );
        (cancel, reason)
    }

    pub(crate) fn forget(&self, session_id: &str) {
        self.running
            .lock()
            .expect("never poisoned")
            .remove(session_id);
    }

    /// Stops a run on this node (a person asked); false when none is running here under that id.
    pub fn kill(&self, session_id: &str) -> bool {
        match self.running.lock().expect("never poisoned").get(session_id) {
            Some(running) => {
                running.cancel.cancel();
                true
            }
            None => false,
        }
    }

    /// Stops a run on this node for `reason`, which its record keeps; false when none is
    /// running here under that id.
    pub fn stop(&self, session_id: &str, reason: String) -> bool {
        match self.running.lock().expect("never poisoned").get(session_id) {
            Some(running) => {
                let _ = running.reason.set(reason);
                running.cancel.cancel();
                true
            }
            None => false,
        }
    }

    /// This node's runs that hold just-in-time access, as (session id, access review id).
    pub fn runs_under_access(&self) -> Vec<(String, String)> {
        self.running
            .lock()
            .expect("never poisoned")
            .iter()
            .filter_map(|(id, running)| Some((id.clone(), running.access.clone()?)))
            .collect()
    }

    async fn finish(&self, run: &Run, outcome: Outcome) {
        self.running
            .lock()
            .expect("never poisoned")
            .remove(&run.session_id);
        let (status, exit_code, error) = match outcome {
            Outcome::Done { exit_code } => (SessionStatus::Done, exit_code, None),
            Outcome::Failed { reason } | Outcome::Refused { reason } => {
                (SessionStatus::Failed, None, Some(reason))
            }
            Outcome::Cancelled => {
                let reason = run
                    .stop_reason
                    .get()
                    .cloned()
                    .unwrap_or_else(|| "stopped by a person".to_owned());
                let note = NewEvent::new(EventKind::Note, reason.clone());
                if let Err(error) = self
                    .recorder
                    .record(&run.session_id, vec![Append::Event(note)])
                    .await
                {
                    tracing::warn!(session = %run.session_id, %error, "could not record why a run stopped");
                }
                (SessionStatus::Cancelled, None, Some(reason))
            }
            Outcome::Lost { reason } => {
                tracing::error!(session = %run.session_id, %reason, "recording a run failed");
                (
                    SessionStatus::Failed,
                    None,
                    Some(format!("recording failed: {reason}")),
                )
            }
        };
        let finish = Append::Finish {
            status,
            exit_code,
            error,
        };
        if let Err(error) = self.recorder.record(&run.session_id, vec![finish]).await {
            tracing::error!(session = %run.session_id, %error, "could not record the end of a run");
        }
    }

    /// The opened `secret` column: a database connection's URL, a command connection's
    /// environment as JSON.
    fn opened_secret(&self, connection: &ConnectionRecord) -> Result<Option<String>, ApiError> {
        connection
            .secret
            .as_deref()
            .map(|sealed| self.secrets.open(&connection.id, sealed))
            .transpose()
            .map_err(ApiError::internal)
    }

    pub(crate) fn url_of(&self, connection: &ConnectionRecord) -> Result<Option<String>, ApiError> {
        if !connection.kind.is_database() {
            return Ok(None);
        }
        self.opened_secret(connection)
    }

    /// An ssh connection's target with its opened key or password; none for other kinds.
    pub(crate) fn ssh_target_of(
        &self,
        connection: &ConnectionRecord,
    ) -> Result<Option<SshTarget>, ApiError> {
        if connection.kind != ConnectionKind::Ssh {
            return Ok(None);
        }
        let Some(ssh) = StoredTerminal::parse(connection.terminal.as_deref())?.ssh else {
            return Ok(None);
        };
        let secret = match self.opened_secret(connection)? {
            Some(json) => serde_json::from_str::<SshSecret>(&json).map_err(ApiError::internal)?,
            None => SshSecret::default(),
        };
        Ok(Some(SshTarget { ssh, secret }))
    }

    /// What a terminal session on `connection` is listed as: `ssh user@host:port`, or the
    /// shell's command line.
    pub(crate) fn terminal_summary(
        &self,
        connection: &ConnectionRecord,
    ) -> Result<String, ApiError> {
        Ok(match connection.kind {
            ConnectionKind::Ssh => match StoredTerminal::parse(connection.terminal.as_deref())?.ssh
            {
                Some(ssh) => format!("ssh {}@{}:{}", ssh.username, ssh.host, ssh.port),
                None => "ssh".to_owned(),
            },
            _ => self
                .command_of(connection)?
                .map(|settings| settings.argv.join(" "))
                .unwrap_or_default(),
        })
    }

    /// Opens an interactive terminal of `size` on a shell or ssh connection.
    ///
    /// Errors: why it could not be opened, for the person and the record.
    pub(crate) async fn open_terminal(
        &self,
        connection: &ConnectionRecord,
        size: Size,
    ) -> Result<Opened, String> {
        match connection.kind {
            ConnectionKind::Shell => match self.command_of(connection) {
                Ok(Some(settings)) => pty::open(&settings, size),
                Ok(None) => Err("the connection has no program to run".into()),
                Err(error) => Err(error.to_string()),
            },
            ConnectionKind::Ssh => match self.ssh_target_of(connection) {
                Ok(Some(target)) => ssh::open_terminal(&target, size).await,
                Ok(None) => Err("the connection has no SSH settings".into()),
                Err(error) => Err(error.to_string()),
            },
            kind => Err(format!("a {} connection has no terminal", kind.as_str())),
        }
    }

    /// A command connection's settings with its opened environment.
    fn command_of(
        &self,
        connection: &ConnectionRecord,
    ) -> Result<Option<CommandSettings>, ApiError> {
        let Some(json) = connection.command.as_deref() else {
            return Ok(None);
        };
        let stored = command::StoredCommand::parse(json)?;
        let mut env = stored.env.clone();
        if let Some(sealed) = self.opened_secret(connection)? {
            env.extend(
                serde_json::from_str::<std::collections::BTreeMap<String, String>>(&sealed)
                    .map_err(ApiError::internal)?,
            );
        }
        Ok(Some(stored.with_env(env)))
    }

    /// Logs in to an ssh connection's server; pins the host key it shows when none is pinned.
    async fn check_ssh(
        &self,
        connection: &ConnectionRecord,
        target: &SshTarget,
    ) -> Result<Result<String, String>, ApiError> {
        let connected = match ssh::connect(target, ssh::Pinning::PinIfUnpinned).await {
            Ok(connected) => connected,
            Err(reason) => return Ok(Err(reason)),
        };
        let fingerprint = ssh::fingerprint(&connected.host_key);
        if target.ssh.host_key.is_some() {
            return Ok(Ok(format!(
                "logged in as {}; the host key is the pinned one ({fingerprint})",
                target.ssh.username
            )));
        }
        let mut stored = StoredTerminal::parse(connection.terminal.as_deref())?;
        if let Some(ssh) = &mut stored.ssh {
            ssh.host_key = Some(ssh::host_key_text(&connected.host_key));
        }
        let mut record = connection.clone();
        record.terminal = Some(stored.to_json());
        self.store.update_connection(&record).await?;
        Ok(Ok(format!(
            "logged in as {}; host key {fingerprint} pinned",
            target.ssh.username
        )))
    }

    /// Whether the target answers (and, for ssh, pins its host key the first time).
    pub async fn check(
        &self,
        connection: &ConnectionRecord,
    ) -> Result<Result<String, String>, ApiError> {
        let kind = connection.kind;
        Ok(match (kind, self.url_of(connection)?) {
            (ConnectionKind::Command | ConnectionKind::Shell, _) => {
                match self.command_of(connection)? {
                    Some(settings) => command::check(&settings).await,
                    None => Err("the connection has no command".into()),
                }
            }
            (ConnectionKind::Ssh, _) => match self.ssh_target_of(connection)? {
                Some(target) => self.check_ssh(connection, &target).await?,
                None => Err("the connection has no SSH settings".into()),
            },
            (ConnectionKind::Sqlite, Some(url)) => sqlite::check(&url, &self.protected).await,
            (kind, Some(url)) => sql::check(kind, &url).await,
            (_, None) => Err("the connection has no URL".into()),
        })
    }
}

/// What a run needs to know about its connection.
struct Work {
    kind: ConnectionKind,
    url: Option<String>,
    command: Option<CommandSettings>,
    ssh: Option<SshTarget>,
    protected: Arc<Vec<PathBuf>>,
}

impl Work {
    async fn execute(&self, run: &Run) -> Outcome {
        match (self.kind, &self.url, &self.command) {
            (ConnectionKind::Command | ConnectionKind::Shell, _, Some(settings)) => {
                command::execute(run, settings).await
            }
            (ConnectionKind::Command | ConnectionKind::Shell, _, None) => {
                run.fail("the connection has no command").await
            }
            (ConnectionKind::Ssh, _, _) => match &self.ssh {
                Some(target) => ssh_command::execute(run, target).await,
                None => run.fail("the connection has no SSH settings").await,
            },
            (ConnectionKind::Sqlite, Some(url), _) => {
                sqlite::execute(run, url, &self.protected).await
            }
            (kind, Some(url), _) => sql::execute(run, kind, url).await,
            (_, None, _) => run.fail("the connection has no URL").await,
        }
    }
}

/// Resolves at `deadline`, or never without one.
pub(crate) async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// The session type a connection's sessions get when it does not say.
pub fn default_session_type(kind: ConnectionKind) -> SessionType {
    match kind {
        ConnectionKind::Postgres | ConnectionKind::Mysql | ConnectionKind::Sqlite => {
            SessionType::Database
        }
        ConnectionKind::Command => SessionType::Command,
        // Both give terminals (SessionType::Ssh is a terminal's type).
        ConnectionKind::Shell | ConnectionKind::Ssh => SessionType::Ssh,
    }
}
