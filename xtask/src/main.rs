//! `cargo xtask`: the commands behind the README.
//!
//! - `cargo xtask run`: builds the web client and the server, then starts Loupe on
//!   http://127.0.0.1:3000 with its data in `./data/loupe.db`.
//! - `cargo xtask test`: every check (format, lints, Rust tests on SQLite and PostgreSQL, the
//!   client build, browser tests), ending with one `N passed, N failed` line.
//! - `cargo xtask bench list|ingest`: speed figures next to same-run baselines.
//! - `cargo xtask cycles`: the import-cycle check that `test` also runs.
//! - `cargo xtask schemathesis [EXAMPLES]`: Schemathesis against the API description, which
//!   `test` also runs with fewer examples.

mod bench;
mod client;
mod cycles;
mod postgres;
mod process;
mod run;
mod schemathesis;
mod test;
mod tools;
mod workspace;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.first().map(String::as_str) {
        Some("run") => run::run(&args[1..]),
        Some("test") => test::test(&args[1..]),
        Some("bench") => bench::bench(&args[1..]),
        Some("schemathesis") => schemathesis::command(&args[1..]),
        // The web client alone, into dist/ (what `run` and `test` build first).
        Some("client") => workspace::Workspace::locate().and_then(|workspace| {
            let tools = tools::ensure_client_tools(&workspace)?;
            client::build(&workspace, &tools)?;
            Ok(ExitCode::SUCCESS)
        }),
        Some("cycles") => workspace::Workspace::locate()
            .and_then(|workspace| cycles::check(&workspace.root))
            .map(|()| {
                eprintln!("xtask: no import cycles");
                ExitCode::SUCCESS
            }),
        _ => {
            eprintln!(
                "usage: cargo xtask run [-- SERVER FLAGS…] | cargo xtask test | cargo xtask bench list|ingest|download|live|gateway|terminal|browser | cargo xtask client | cargo xtask cycles | cargo xtask schemathesis [EXAMPLES]"
            );
            return ExitCode::from(2);
        }
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("xtask: {error:#}");
            ExitCode::FAILURE
        }
    }
}
