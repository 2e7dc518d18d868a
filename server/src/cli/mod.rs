//! The `loupe` command line besides `serve`: account administration on the server's own
//! database (`accounts`), and commands that talk to a running server with an API token
//! (`remote`, and `terminal` for `loupe ssh`).

mod accounts;
mod remote;
mod terminal;

pub use accounts::{
    DatabaseArgs, GroupCommand, TokenCommand, UserCommand, run_group, run_token, run_user,
};
pub use remote::{ServerArgs, run_connect, run_connections, run_download, run_exec, run_watch};
pub use terminal::run_ssh;
