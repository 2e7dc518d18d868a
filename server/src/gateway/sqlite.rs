//! SQLite targets. Unlike PostgreSQL and MySQL, a SQLite target runs inside Loupe's own process
//! with Loupe's file access, so the connection is fenced to its one file: attaching other
//! databases (`ATTACH`, and `VACUUM INTO`, which attaches internally) is impossible
//! (`SQLITE_LIMIT_ATTACHED` = 0), an authorizer refuses pragmas that change the process or touch
//! other files and functions such as `load_extension`, the connection is `SQLITE_DBCONFIG_DEFENSIVE`
//! and does not trust its schema, and `?mode=ro` opens the file read-only. Loupe's own database
//! and key file cannot be a target at all. See <https://sqlite.org/security.html> ("Untrusted SQL
//! inputs"), which these measures follow.
//!
//! rusqlite is used instead of sqlx here because it exposes the authorizer and limits safely.
//! Statements run on a blocking thread and stream what they produce to the recording task.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use loupe_protocol::{Cell, Column, EventKind};
use rusqlite::{
    Connection, OpenFlags,
    config::DbConfig,
    hooks::{AuthAction, AuthContext, Authorization},
    limits::Limit,
    types::ValueRef,
};
use tokio::sync::mpsc;

use super::{
    Outcome, Run, sleep_until, statements,
    values::{hex, integer_cell, typed_cell},
};
use crate::{
    sessions::recorder::{Append, NewEvent},
    sessions::summarize,
};

/// The longest string or blob a target may make, in bytes.
const MAX_VALUE_BYTES: i32 = 16 * 1024 * 1024;

/// Rows sent per message while a result streams in.
const ROWS_PER_MESSAGE: usize = 1000;

/// Pragmas a target may run: they read the schema or the file's own state. Any other pragma
/// could change the process (`temp_store_directory`, `mmap_size`) or the file's safety
/// (`writable_schema`, `trusted_schema`).
const READ_ONLY_PRAGMAS: &[&str] = &[
    "application_id",
    "collation_list",
    "compile_options",
    "data_version",
    "database_list",
    "encoding",
    "foreign_key_check",
    "foreign_key_list",
    "foreign_keys",
    "freelist_count",
    "function_list",
    "index_info",
    "index_list",
    "index_xinfo",
    "integrity_check",
    "module_list",
    "page_count",
    "page_size",
    "pragma_list",
    "quick_check",
    "schema_version",
    "table_info",
    "table_list",
    "table_xinfo",
    "user_version",
];

/// Functions that reach outside the file (the CLI's `readfile`/`writefile`/`edit` are not in
/// the library, but are named in case a build adds them).
const REFUSED_FUNCTIONS: &[&str] = &[
    "load_extension",
    "readfile",
    "writefile",
    "edit",
    "fts3_tokenizer",
];

/// Where a SQLite target lives and how it may be opened, from its `sqlite:` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetFile {
    pub path: PathBuf,
    pub read_only: bool,
    pub create: bool,
}

/// Parses `sqlite://PATH[?mode=ro|rw|rwc]` (also `sqlite:PATH`). Anything else is refused with
/// the reason, so an option that would be silently ignored cannot mislead an administrator.
pub fn parse_url(url: &str) -> Result<TargetFile, String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or("a SQLite URL starts with sqlite://")?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path.starts_with(':') {
        return Err("a SQLite target must be a file (sqlite://PATH)".into());
    }
    let mut target = TargetFile {
        path: PathBuf::from(path),
        read_only: false,
        create: false,
    };
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match (key.as_ref(), value.as_ref()) {
            ("mode", "ro") => target.read_only = true,
            ("mode", "rw") => {}
            ("mode", "rwc") => target.create = true,
            (key, value) => {
                return Err(format!(
                    "unsupported SQLite URL option {key}={value} (only mode=ro, rw or rwc)"
                ));
            }
        }
    }
    Ok(target)
}

/// Refuses a target that is one of Loupe's own files (`protected`: its database, its key),
/// whatever name it has: compared by device and inode, so neither a symbolic nor a hard link
/// gets around it.
pub fn check_not_protected(target: &TargetFile, protected: &[PathBuf]) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let Ok(file) = std::fs::metadata(&target.path) else {
        // A file that does not exist yet cannot be one of Loupe's.
        return Ok(());
    };
    let is_loupes = protected.iter().any(|own| {
        std::fs::metadata(own).is_ok_and(|own| own.dev() == file.dev() && own.ino() == file.ino())
    });
    if is_loupes {
        Err("this file is Loupe's own storage and cannot be a target".into())
    } else {
        Ok(())
    }
}

/// Opens the target with every fence in place. `refused` receives why the authorizer said no
/// last, so the error can say more than SQLite's "not authorized".
fn open(target: &TargetFile, refused: Arc<Mutex<Option<String>>>) -> rusqlite::Result<Connection> {
    let mut flags = OpenFlags::SQLITE_OPEN_NO_MUTEX;
    flags |= if target.read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY
    } else if target.create {
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
    };
    // Without SQLITE_OPEN_URI a `file:` name is a plain file name, never a URI with options.
    let connection = Connection::open_with_flags(&target.path, flags)?;
    connection.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0);
    // The target runs in Loupe's memory: no string or blob past 16 MiB (sqlite.org's "Untrusted
    // SQL inputs" advises lowering SQLITE_LIMIT_LENGTH), so `randomblob(1e9)` cannot eat it.
    connection.set_limit(Limit::SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES);
    connection.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
    connection.set_db_config(DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false)?;
    connection.authorizer(Some(move |context: AuthContext<'_>| {
        match why_refused(&context.action) {
            Some(reason) => {
                if let Ok(mut slot) = refused.lock() {
                    *slot = Some(reason);
                }
                Authorization::Deny
            }
            None => Authorization::Allow,
        }
    }));
    Ok(connection)
}

/// Why the fence refuses `action`, or none when it is allowed.
fn why_refused(action: &AuthAction<'_>) -> Option<String> {
    match action {
        AuthAction::Attach { .. } | AuthAction::Detach { .. } => Some(
            "ATTACH and DETACH are not allowed on a SQLite target: it reaches its own file only"
                .into(),
        ),
        AuthAction::Pragma { pragma_name, .. }
            if !READ_ONLY_PRAGMAS.contains(&pragma_name.to_ascii_lowercase().as_str()) =>
        {
            Some(format!(
                "PRAGMA {pragma_name} is not allowed on a SQLite target (only pragmas that read the schema or the file's state)"
            ))
        }
        AuthAction::Function { function_name }
            if REFUSED_FUNCTIONS.contains(&function_name.to_ascii_lowercase().as_str()) =>
        {
            Some(format!(
                "{function_name}() is not allowed on a SQLite target: it reaches outside the file"
            ))
        }
        _ => None,
    }
}

/// What the statement thread tells the recording task, in order.
enum Step {
    /// A statement is about to run.
    Statement(String),
    Columns(Vec<Column>),
    Rows(Vec<Vec<Cell>>),
    /// A statement without result columns finished, having changed this many rows.
    Changed(u64),
    Failed {
        message: String,
        code: Option<String>,
    },
}

/// Checks that the target opens and answers, giving SQLite's version.
pub async fn check(url: &str, protected: &[PathBuf]) -> Result<String, String> {
    let target = parse_url(url)?;
    check_not_protected(&target, protected)?;
    tokio::task::spawn_blocking(move || {
        let connection = open(&target, Arc::default()).map_err(|error| error.to_string())?;
        connection
            .query_row("SELECT sqlite_version()", [], |row| row.get::<_, String>(0))
            .map(|version| format!("SQLite {version}"))
            .map_err(|error| error.to_string())
    })
    .await
    .unwrap_or_else(|_| Err("the check stopped unexpectedly".into()))
}

/// Runs the script in `run.input` against the target and records everything.
pub(crate) async fn execute(run: &Run, url: &str, protected: &[PathBuf]) -> Outcome {
    let target = match parse_url(url).and_then(|target| {
        check_not_protected(&target, protected)?;
        Ok(target)
    }) {
        Ok(target) => target,
        Err(reason) => return run.fail(format!("cannot open the target: {reason}")).await,
    };
    let statements: Vec<String> = statements::split(&run.input, statements::Dialect::Sqlite)
        .into_iter()
        .map(str::to_owned)
        .collect();
    let (steps, mut received) = mpsc::channel::<Step>(4);
    let (handle_sender, handle) = tokio::sync::oneshot::channel();
    let worker = tokio::task::spawn_blocking(move || {
        run_statements(&target, &statements, &steps, handle_sender);
    });
    // Without a handle the target never opened; the worker reports why.
    let interrupt = handle.await.ok();
    let deadline = run
        .timeout()
        .map(|limit| tokio::time::Instant::now() + limit);
    let mut result_seq = None;
    let outcome = loop {
        let step = tokio::select! {
            step = received.recv() => step,
            () = run.cancel.cancelled() => break Some(Outcome::Cancelled),
            () = sleep_until(deadline) => {
                let limit = run.timeout().unwrap_or_default().as_secs();
                break Some(run.fail(format!("the statement ran longer than {limit} s and was stopped")).await);
            }
        };
        let Some(step) = step else { break None };
        let recorded = match step {
            Step::Statement(text) => {
                result_seq = None;
                let input = NewEvent {
                    text: Some(text.clone()),
                    ..NewEvent::new(EventKind::Input, summarize(&text))
                };
                run.record(vec![Append::Event(input)]).await.map(drop)
            }
            Step::Columns(columns) => {
                let event = NewEvent {
                    columns: Some(columns.clone()),
                    ..NewEvent::new(EventKind::Result, format!("{} columns", columns.len()))
                };
                run.record(vec![Append::Event(event)])
                    .await
                    .map(|recorded| result_seq = Some(recorded.seqs[0]))
            }
            Step::Rows(rows) => match result_seq {
                Some(seq) => run.record(vec![Append::Rows { seq, rows }]).await.map(drop),
                None => Ok(()),
            },
            Step::Changed(count) => {
                let note = NewEvent::new(EventKind::Note, format!("{count} rows affected"));
                run.record(vec![Append::Event(note)]).await.map(drop)
            }
            Step::Failed { message, code } => {
                let event = NewEvent {
                    text: Some(message.clone()),
                    code: code.clone(),
                    ..NewEvent::new(EventKind::Error, summarize(&message))
                };
                if let Err(outcome) = run.record(vec![Append::Event(event)]).await {
                    break Some(outcome);
                }
                let detail = code.map_or(message.clone(), |code| format!("{message} ({code})"));
                break Some(
                    run.finish_failed(format!("the database refused a statement: {detail}"))
                        .await,
                );
            }
        };
        if let Err(outcome) = recorded {
            break Some(outcome);
        }
    };
    // Stop a statement still running (cancelled, timed out, or recording failed) and let the
    // thread end: it notices the closed channel at its next step.
    if let Some(interrupt) = &interrupt
        && outcome.is_some()
    {
        interrupt.interrupt();
    }
    drop(received);
    let _ = worker.await;
    outcome.unwrap_or(Outcome::Done { exit_code: None })
}

/// The statement thread: opens the target, runs each statement, and streams what happens.
fn run_statements(
    target: &TargetFile,
    statements: &[String],
    steps: &mpsc::Sender<Step>,
    handle: tokio::sync::oneshot::Sender<rusqlite::InterruptHandle>,
) {
    let refused = Arc::new(Mutex::new(None));
    let connection = match open(target, refused.clone()) {
        Ok(connection) => connection,
        Err(error) => {
            let _ = steps.blocking_send(Step::Failed {
                message: format!("cannot open the target: {error}"),
                code: None,
            });
            return;
        }
    };
    let _ = handle.send(connection.get_interrupt_handle());
    for statement in statements {
        if steps
            .blocking_send(Step::Statement(statement.clone()))
            .is_err()
        {
            return;
        }
        if let Err(error) = run_one(&connection, statement, steps) {
            let reason = refused.lock().ok().and_then(|mut slot| slot.take());
            let _ = steps.blocking_send(failure(&error, reason));
            return;
        }
    }
}

/// Runs one statement; `Ok` also when the recording side has gone away (nothing more to do).
fn run_one(
    connection: &Connection,
    statement: &str,
    steps: &mpsc::Sender<Step>,
) -> rusqlite::Result<()> {
    let mut prepared = connection.prepare(statement)?;
    let count = prepared.column_count();
    if count == 0 {
        let changed = prepared.raw_execute()?;
        let _ = steps.blocking_send(Step::Changed(changed as u64));
        return Ok(());
    }
    let declared: Vec<(String, Option<String>)> = prepared
        .columns()
        .iter()
        .map(|column| {
            (
                column.name().to_owned(),
                column.decl_type().map(str::to_owned),
            )
        })
        .collect();
    let mut rows = prepared.query([])?;
    let mut page: Vec<Vec<Cell>> = Vec::new();
    let mut columns_sent = false;
    while let Some(row) = rows.next()? {
        let values: Vec<ValueRef<'_>> = (0..count)
            .map(|index| row.get_ref(index))
            .collect::<rusqlite::Result<_>>()?;
        if !columns_sent {
            // SQLite types values, not columns: where no type is declared, the first row's
            // values say what the column holds.
            let columns = declared
                .iter()
                .zip(&values)
                .map(|((name, declared), value)| Column {
                    name: name.clone(),
                    type_name: declared
                        .clone()
                        .unwrap_or_else(|| value_type(value).to_owned()),
                })
                .collect();
            if steps.blocking_send(Step::Columns(columns)).is_err() {
                return Ok(());
            }
            columns_sent = true;
        }
        page.push(
            values
                .iter()
                .map(|value| cell(connection, value))
                .collect::<rusqlite::Result<_>>()?,
        );
        if page.len() == ROWS_PER_MESSAGE
            && steps
                .blocking_send(Step::Rows(std::mem::take(&mut page)))
                .is_err()
        {
            return Ok(());
        }
    }
    if !columns_sent {
        let columns = declared
            .into_iter()
            .map(|(name, declared)| Column {
                name,
                type_name: declared.unwrap_or_default(),
            })
            .collect();
        let _ = steps.blocking_send(Step::Columns(columns));
    }
    if !page.is_empty() {
        let _ = steps.blocking_send(Step::Rows(page));
    }
    Ok(())
}

fn failure(error: &rusqlite::Error, refused: Option<String>) -> Step {
    // SQLite's own words and code: from stepping a statement (`SqliteFailure`) or from
    // preparing it (`SqlInputError`, which also says where in the statement).
    let (code, said) = match error {
        rusqlite::Error::SqliteFailure(code, message) => {
            (*code, message.clone().unwrap_or_else(|| code.to_string()))
        }
        rusqlite::Error::SqlInputError { error, msg, .. } => (*error, msg.clone()),
        other => {
            return Step::Failed {
                message: other.to_string(),
                code: None,
            };
        }
    };
    let message = match (code.code, refused) {
        (rusqlite::ErrorCode::AuthorizationForStatementDenied, Some(reason)) => {
            format!("{said}: {reason}")
        }
        _ if said.starts_with("too many attached databases") => format!(
            "{said}: a SQLite target cannot attach other databases (nor VACUUM INTO another file)"
        ),
        _ => said,
    };
    Step::Failed {
        message,
        code: Some(code.extended_code.to_string()),
    }
}

fn value_type(value: &ValueRef<'_>) -> &'static str {
    match value {
        ValueRef::Null => "NULL",
        ValueRef::Integer(_) => "INTEGER",
        ValueRef::Real(_) => "REAL",
        ValueRef::Text(_) => "TEXT",
        ValueRef::Blob(_) => "BLOB",
    }
}

/// A value as a cell. A REAL is shown as SQLite itself turns it into text (`CAST(x AS TEXT)`,
/// the same conversion as `sqlite3_column_text`), so `0.1 + 0.2` reads as SQLite prints it.
fn cell(connection: &Connection, value: &ValueRef<'_>) -> rusqlite::Result<Cell> {
    Ok(match *value {
        ValueRef::Null => Cell::Null,
        ValueRef::Integer(number) => integer_cell(number),
        ValueRef::Real(number) => {
            let text: String = connection
                .prepare_cached("SELECT CAST(?1 AS TEXT)")?
                .query_row([number], |row| row.get(0))?;
            typed_cell("REAL", &text)
        }
        ValueRef::Text(bytes) => Cell::Text(String::from_utf8_lossy(bytes).into_owned()),
        ValueRef::Blob(bytes) => Cell::Text(format!("x'{}'", hex(bytes))),
    })
}

/// The paths a SQLite target must never be: Loupe's database (with its WAL and shared-memory
/// files) and its key file.
pub fn protected_paths(database_url: &str, data_dir: &Path) -> Vec<PathBuf> {
    let mut paths = vec![data_dir.join("secret.key")];
    if let Some(rest) = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))
    {
        let file = rest.split('?').next().unwrap_or(rest);
        paths.push(PathBuf::from(file));
        paths.push(PathBuf::from(format!("{file}-wal")));
        paths.push(PathBuf::from(format!("{file}-shm")));
    }
    paths
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fenced(folder: &Path) -> Connection {
        let target = TargetFile {
            path: folder.join("target.db"),
            read_only: false,
            create: true,
        };
        open(&target, Arc::default()).unwrap()
    }

    #[test]
    fn reads_the_mode_from_the_url() {
        let target = parse_url("sqlite:///data/demo.db?mode=ro").unwrap();
        assert_eq!(target.path, PathBuf::from("/data/demo.db"));
        assert!(target.read_only);
        assert!(parse_url("sqlite://t.db?mode=rwc").unwrap().create);
        assert!(parse_url("sqlite://t.db?vfs=unix-none").is_err());
        assert!(parse_url("sqlite::memory:").is_err());
        assert!(parse_url("postgres://x").is_err());
    }

    #[test]
    fn cannot_attach_or_vacuum_into_another_file() {
        let folder = tempfile::tempdir().unwrap();
        let connection = fenced(folder.path());
        let other = folder.path().join("other.db");
        let attach = format!("ATTACH DATABASE '{}' AS other", other.display());
        assert!(connection.execute_batch(&attach).is_err());
        connection
            .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1)")
            .unwrap();
        let vacuum = format!("VACUUM INTO '{}'", other.display());
        assert!(connection.execute_batch(&vacuum).is_err());
        assert!(!other.exists(), "no file was written");
    }

    #[test]
    fn refuses_file_and_process_pragmas_and_extension_loading() {
        let folder = tempfile::tempdir().unwrap();
        let connection = fenced(folder.path());
        for statement in [
            "PRAGMA writable_schema = ON",
            "PRAGMA temp_store_directory = '/tmp'",
            "PRAGMA mmap_size = 1000000",
            "SELECT load_extension('/tmp/evil.so')",
            "SELECT length(randomblob(100000000))",
        ] {
            assert!(
                connection.execute_batch(statement).is_err(),
                "{statement} was allowed"
            );
        }
        connection
            .query_row("PRAGMA user_version", [], |row| row.get::<_, i64>(0))
            .unwrap();
    }

    #[test]
    fn read_only_targets_cannot_be_written() {
        let folder = tempfile::tempdir().unwrap();
        fenced(folder.path())
            .execute_batch("CREATE TABLE t (x)")
            .unwrap();
        let target = TargetFile {
            path: folder.path().join("target.db"),
            read_only: true,
            create: false,
        };
        let connection = open(&target, Arc::default()).unwrap();
        assert!(
            connection
                .execute_batch("INSERT INTO t VALUES (1)")
                .is_err()
        );
    }

    #[test]
    fn loupes_own_files_are_not_targets() {
        let folder = tempfile::tempdir().unwrap();
        let own = folder.path().join("loupe.db");
        std::fs::write(&own, b"").unwrap();
        let protected = protected_paths(&format!("sqlite://{}", own.display()), folder.path());
        let target = parse_url(&format!("sqlite://{}", own.display())).unwrap();
        assert!(check_not_protected(&target, &protected).is_err());
        let linked = folder.path().join("innocent.db");
        std::fs::hard_link(&own, &linked).unwrap();
        let target = parse_url(&format!("sqlite://{}", linked.display())).unwrap();
        assert!(
            check_not_protected(&target, &protected).is_err(),
            "a hard link"
        );
        let elsewhere = parse_url("sqlite:///tmp/somewhere-else.db").unwrap();
        assert!(check_not_protected(&elsewhere, &protected).is_ok());
    }
}
