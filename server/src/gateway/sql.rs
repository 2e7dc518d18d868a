//! Running SQL against PostgreSQL and MySQL targets (SQLite targets have their own fenced
//! executor, [`super::sqlite`]). Each statement of the input is its
//! own input event; a statement that returns rows records a result event with its columns and
//! then its rows in pages as they stream in; one that does not records how many rows it
//! affected; a database error records the database's message and code and stops the script.
//!
//! Statements go through each database's simple ("text") protocol, so every type arrives as
//! the database prints it and nothing is lost to a missing Rust decoder; [`super::values`]
//! decides which of those texts are also numbers or booleans.

use std::time::Duration;

use futures_util::TryStreamExt;
use loupe_protocol::{Cell, Column, ConnectionKind, EventKind};
use sqlx::{
    Column as _, ConnectOptions, Either, Executor, Row, TypeInfo, ValueRef,
    mysql::{MySqlConnectOptions, MySqlConnection, MySqlRow},
    postgres::{PgConnectOptions, PgConnection, PgRow},
};

use super::{
    Outcome, Run, sleep_until, statements,
    values::{hex, typed_cell},
};
use crate::{
    sessions::recorder::{Append, NewEvent, ROWS_PER_APPEND},
    sessions::summarize,
};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Checks that the target answers: connect and ask for its version.
pub async fn check(kind: ConnectionKind, url: &str) -> Result<String, String> {
    let answer = tokio::time::timeout(CONNECT_TIMEOUT, async {
        let (target, _) = connect(kind, url).await?;
        target.version().await.map_err(describe)
    })
    .await;
    answer.unwrap_or_else(|_| Err(format!("no answer within {} s", CONNECT_TIMEOUT.as_secs())))
}

fn describe(error: impl std::fmt::Display) -> String {
    error.to_string()
}

/// Runs the script in `run.input` against the target and records everything.
pub async fn execute(run: &Run, kind: ConnectionKind, url: &str) -> Outcome {
    let connected = tokio::time::timeout(CONNECT_TIMEOUT, connect(kind, url)).await;
    let (mut target, backend) = match connected {
        Ok(Ok(target)) => target,
        Ok(Err(error)) => {
            return run
                .fail(format!("cannot connect to the target: {error}"))
                .await;
        }
        Err(_) => {
            return run
                .fail(format!(
                    "cannot connect to the target: no answer within {} s",
                    CONNECT_TIMEOUT.as_secs()
                ))
                .await;
        }
    };
    let dialect = match kind {
        ConnectionKind::Mysql => statements::Dialect::Mysql,
        _ => statements::Dialect::Postgres,
    };
    for statement in statements::split(&run.input, dialect) {
        let input = NewEvent {
            text: Some(statement.to_owned()),
            ..NewEvent::new(EventKind::Input, summarize(statement))
        };
        if let Err(outcome) = run.record(vec![Append::Event(input)]).await {
            return outcome;
        }
        let step = match &mut target {
            Target::Postgres(connection) => {
                run_statement(run, connection, statement, pg_cell, |done| {
                    done.rows_affected()
                })
                .await
            }
            Target::Mysql(connection) => {
                run_statement(run, connection, statement, mysql_cell, |done| {
                    done.rows_affected()
                })
                .await
            }
        };
        if let Err(outcome) = step {
            // Dropping our connection does not stop a query the server is still running (one
            // cancelled, timed out, or whose recording failed); a refused one has ended.
            if let Some(backend) = backend
                && !matches!(outcome, Outcome::Refused { .. })
            {
                tokio::spawn(cancel_on_server(kind, url.to_owned(), backend));
            }
            return outcome;
        }
    }
    Outcome::Done { exit_code: None }
}

/// Asks the target to stop whatever its connection `backend` is running (best effort).
async fn cancel_on_server(kind: ConnectionKind, url: String, backend: i64) {
    let cancelled = match kind {
        ConnectionKind::Postgres => {
            tokio::time::timeout(CONNECT_TIMEOUT, cancel_postgres(url, backend)).await
        }
        ConnectionKind::Mysql => {
            tokio::time::timeout(CONNECT_TIMEOUT, cancel_mysql(url, backend)).await
        }
        ConnectionKind::Sqlite
        | ConnectionKind::Command
        | ConnectionKind::Shell
        | ConnectionKind::Ssh => return,
    };
    if !matches!(cancelled, Ok(Ok(()))) {
        tracing::warn!(
            kind = kind.as_str(),
            backend,
            "could not cancel a statement on the target"
        );
    }
}

async fn cancel_postgres(url: String, backend: i64) -> Result<(), sqlx::Error> {
    let mut connection = url.parse::<PgConnectOptions>()?.connect().await?;
    sqlx::query("SELECT pg_cancel_backend($1::int)")
        .bind(backend)
        .execute(&mut connection)
        .await?;
    Ok(())
}

async fn cancel_mysql(url: String, backend: i64) -> Result<(), sqlx::Error> {
    let mut connection = url.parse::<MySqlConnectOptions>()?.connect().await?;
    let statement = format!("KILL QUERY {backend}");
    connection.execute(statement.as_str()).await?;
    Ok(())
}

enum Target {
    Postgres(PgConnection),
    Mysql(MySqlConnection),
}

impl Target {
    /// How the server describes itself, shown when a connection is tested.
    async fn version(self) -> Result<String, sqlx::Error> {
        Ok(match self {
            Target::Postgres(mut connection) => {
                sqlx::query_scalar("SELECT version()")
                    .fetch_one(&mut connection)
                    .await?
            }
            Target::Mysql(mut connection) => {
                let version: String = sqlx::query_scalar("SELECT VERSION()")
                    .fetch_one(&mut connection)
                    .await?;
                format!("MySQL/MariaDB {version}")
            }
        })
    }
}

/// The connection, and the server's id for it where the server can cancel by id.
async fn connect(kind: ConnectionKind, url: &str) -> Result<(Target, Option<i64>), String> {
    Ok(match kind {
        ConnectionKind::Postgres => {
            let mut connection = url
                .parse::<PgConnectOptions>()
                .map_err(describe)?
                .connect()
                .await
                .map_err(describe)?;
            let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
                .fetch_one(&mut connection)
                .await
                .map_err(describe)?;
            (Target::Postgres(connection), Some(i64::from(pid)))
        }
        ConnectionKind::Mysql => {
            let mut connection = url
                .parse::<MySqlConnectOptions>()
                .map_err(describe)?
                .connect()
                .await
                .map_err(describe)?;
            let id: u64 = sqlx::query_scalar("SELECT CONNECTION_ID()")
                .fetch_one(&mut connection)
                .await
                .map_err(describe)?;
            (Target::Mysql(connection), i64::try_from(id).ok())
        }
        ConnectionKind::Sqlite
        | ConnectionKind::Command
        | ConnectionKind::Shell
        | ConnectionKind::Ssh => {
            return Err("not a PostgreSQL or MySQL connection".into());
        }
    })
}

/// Runs one statement; `Err` carries the session's outcome when the script must stop.
async fn run_statement<'c, C, R>(
    run: &Run,
    connection: &'c mut C,
    statement: &'c str,
    cell: fn(&R, usize) -> Cell,
    rows_affected: fn(&<R::Database as sqlx::Database>::QueryResult) -> u64,
) -> Result<(), Outcome>
where
    &'c mut C: Executor<'c, Database = R::Database>,
    R: Row,
{
    let mut stream = sqlx::raw_sql(statement).fetch_many(connection);
    let mut result_seq: Option<u64> = None;
    let mut rows: Vec<Vec<Cell>> = Vec::new();
    let mut affected: u64 = 0;
    let mut saw_result = false;
    // Whether any result set was recorded: a statement (a procedure call, say) may return
    // several, each its own result event with its own columns.
    let mut had_rows = false;
    let deadline = run
        .timeout()
        .map(|limit| tokio::time::Instant::now() + limit);
    loop {
        let next = tokio::select! {
            next = stream.try_next() => next,
            () = run.cancel.cancelled() => return Err(Outcome::Cancelled),
            () = sleep_until(deadline) => {
                let limit = run.timeout().unwrap_or_default().as_secs();
                return Err(run.fail(format!("the statement ran longer than {limit} s and was stopped")).await);
            }
        };
        match next {
            Ok(Some(Either::Right(row))) => {
                let row: R = row;
                if result_seq.is_none() {
                    had_rows = true;
                    let columns = row
                        .columns()
                        .iter()
                        .map(|column| Column {
                            name: column.name().to_owned(),
                            type_name: column.type_info().name().to_owned(),
                        })
                        .collect::<Vec<_>>();
                    let event = NewEvent {
                        columns: Some(columns.clone()),
                        ..NewEvent::new(EventKind::Result, format!("{} columns", columns.len()))
                    };
                    result_seq = Some(run.record(vec![Append::Event(event)]).await?.seqs[0]);
                }
                rows.push((0..row.len()).map(|index| cell(&row, index)).collect());
                if rows.len() == ROWS_PER_APPEND {
                    let seq = result_seq.expect("set above");
                    run.record(vec![Append::Rows {
                        seq,
                        rows: std::mem::take(&mut rows),
                    }])
                    .await?;
                }
            }
            Ok(Some(Either::Left(result))) => {
                saw_result = true;
                affected += rows_affected(&result);
                // This result set is complete; rows that follow belong to the next one.
                if let Some(seq) = result_seq.take()
                    && !rows.is_empty()
                {
                    run.record(vec![Append::Rows {
                        seq,
                        rows: std::mem::take(&mut rows),
                    }])
                    .await?;
                }
            }
            Ok(None) => break,
            Err(error) => {
                if let (Some(seq), false) = (result_seq, rows.is_empty()) {
                    run.record(vec![Append::Rows {
                        seq,
                        rows: std::mem::take(&mut rows),
                    }])
                    .await?;
                }
                let code = error
                    .as_database_error()
                    .and_then(|database| database.code())
                    .map(|code| code.into_owned());
                let message = error.as_database_error().map_or_else(
                    || error.to_string(),
                    |database| database.message().to_owned(),
                );
                let event = NewEvent {
                    text: Some(message.clone()),
                    code: code.clone(),
                    ..NewEvent::new(EventKind::Error, summarize(&message))
                };
                run.record(vec![Append::Event(event)]).await?;
                let detail = code.map_or(message.clone(), |code| format!("{message} ({code})"));
                return Err(run
                    .finish_failed(format!("the database refused a statement: {detail}"))
                    .await);
            }
        }
    }
    match result_seq {
        Some(seq) if !rows.is_empty() => {
            run.record(vec![Append::Rows { seq, rows }]).await?;
        }
        Some(_) => {}
        None if saw_result && !had_rows => {
            let note = NewEvent::new(EventKind::Note, format!("{affected} rows affected"));
            run.record(vec![Append::Event(note)]).await?;
        }
        None => {}
    }
    Ok(())
}

fn pg_cell(row: &PgRow, index: usize) -> Cell {
    let Ok(value) = row.try_get_raw(index) else {
        return Cell::Null;
    };
    if value.is_null() {
        return Cell::Null;
    }
    let type_name = value.type_info().name().to_owned();
    match value.as_str() {
        Ok(text) => typed_cell(&type_name, text),
        Err(_) => Cell::Text(format!(
            "\\x{}",
            value.as_bytes().map(hex).unwrap_or_default()
        )),
    }
}

fn mysql_cell(row: &MySqlRow, index: usize) -> Cell {
    let Ok(value) = row.try_get_raw(index) else {
        return Cell::Null;
    };
    if value.is_null() {
        return Cell::Null;
    }
    let type_name = value.type_info().name().to_owned();
    // The text protocol sends every value as text; unchecked decoding reads it as such.
    match row.try_get_unchecked::<String, _>(index) {
        Ok(text) => typed_cell(&type_name, &text),
        Err(_) => row
            .try_get_unchecked::<Vec<u8>, _>(index)
            .map_or(Cell::Null, |bytes| Cell::Text(format!("0x{}", hex(&bytes)))),
    }
}
