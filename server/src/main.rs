//! The `loupe` binary: `loupe serve` runs the server; `loupe user|group|token` administer
//! accounts in its database; `loupe exec|connect|connections|watch|download` use a running
//! server. Everything else lives in the library.

use anyhow::Context;
use clap::{Parser, Subcommand};
use loupe_server::{
    Config,
    cli::{self, DatabaseArgs, GroupCommand, ServerArgs, TokenCommand, UserCommand},
    telemetry,
};
use tokio::net::TcpListener;

#[derive(Parser)]
#[command(
    name = "loupe",
    version,
    about = "Loupe: access gateway and session audit console"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: the API, the live hub and the web client.
    Serve(Box<Config>),
    /// Manage users: add, list, set-role, disable, enable, reset-password.
    User {
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage groups: add, list, rename, delete, add-member, remove-member.
    Group {
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(subcommand)]
        command: GroupCommand,
    },
    /// Manage API tokens: create, list, revoke.
    Token {
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Run SQL or a command through a connection on a Loupe server, printing the output as it
    /// is recorded; exits with the command's status.
    Exec {
        #[command(flatten)]
        server: ServerArgs,
        /// The connection's name.
        #[arg(long, short)]
        connection: String,
        /// Why, for the reviewers of a connection whose commands are reviewed.
        #[arg(long)]
        reason: Option<String>,
        /// The SQL or the command's input.
        input: String,
    },
    /// Follow a session live until it ends, printing its output; exits with its status.
    Watch {
        #[command(flatten)]
        server: ServerArgs,
        /// The session's id.
        session: String,
    },
    /// Print the command line that opens a database connection with its own client (psql,
    /// mysql) through the server's listener, or start that client with --exec.
    Connect {
        #[command(flatten)]
        server: ServerArgs,
        /// The connection's name.
        connection: String,
        /// Start the client (with the token as its password) instead of printing its command.
        #[arg(long)]
        exec: bool,
    },
    /// Open an interactive terminal on a shell or ssh connection, recorded as a session; exits
    /// with the remote program's status.
    Ssh {
        #[command(flatten)]
        server: ServerArgs,
        /// The connection's name.
        connection: String,
    },
    /// List the connections on a Loupe server.
    Connections {
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Save a session's output (txt), a result set (csv) or its whole log (jsonl) to a file;
    /// run it again to resume an interrupted download.
    Download {
        #[command(flatten)]
        server: ServerArgs,
        /// The session's id.
        session: String,
        /// txt, csv, jsonl or (terminal sessions) cast.
        #[arg(long, default_value = "txt")]
        format: String,
        /// For csv: the result set's event seq (the first result set when absent).
        #[arg(long)]
        event: Option<u64>,
        /// The file to write.
        #[arg(long, short)]
        output: std::path::PathBuf,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Serve(config) => serve(*config).await,
        Command::User { database, command } => cli::run_user(&database, command).await,
        Command::Group { database, command } => cli::run_group(&database, command).await,
        Command::Token { database, command } => cli::run_token(&database, command).await,
        Command::Exec {
            server,
            connection,
            reason,
            input,
        } => {
            let code = cli::run_exec(&server, &connection, &input, reason).await?;
            std::process::exit(code);
        }
        Command::Connect {
            server,
            connection,
            exec,
        } => {
            let code = cli::run_connect(&server, &connection, exec).await?;
            std::process::exit(code);
        }
        Command::Ssh { server, connection } => {
            let code = cli::run_ssh(&server, &connection).await?;
            std::process::exit(code);
        }
        Command::Connections { server } => cli::run_connections(&server).await,
        Command::Watch { server, session } => {
            let code = cli::run_watch(&server, &session).await?;
            std::process::exit(code);
        }
        Command::Download {
            server,
            session,
            format,
            event,
            output,
        } => cli::run_download(&server, &session, &format, event, &output).await,
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    telemetry::init(&config.log, config.log_format)?;
    // Not dumpable: programs Loupe starts as its own user cannot read its memory or its
    // environment (`/proc/<pid>/environ` holds DATABASE_URL, LOUPE_SECRET_KEY…) — prctl(2).
    if let Err(error) = nix::sys::prctl::set_dumpable(false) {
        tracing::warn!(%error, "cannot make the server process non-dumpable");
    }
    let listener = TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("cannot listen on {} (LOUPE_BIND)", config.bind))?;
    let address = listener.local_addr()?;
    tracing::info!(%address, "Loupe is listening on http://{address}");
    loupe_server::serve(config, listener, shutdown_signal()).await
}

/// Resolves on Ctrl-C or SIGTERM, whichever comes first.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops the server");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: finishing requests in flight");
}
