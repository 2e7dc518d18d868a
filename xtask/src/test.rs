//! `cargo xtask test`: every check a change must pass, in the order a failure is cheapest to
//! learn about. A failing step does not stop the others (except those that need its output), so
//! one run shows everything that is wrong. It ends with `N passed, N failed`, counting each test
//! and each check step once.

use std::{
    io::{BufRead, BufReader},
    process::{Command, ExitCode, Stdio},
};

use anyhow::{Context, Result};

use crate::{
    client, cycles, postgres, process, schemathesis, tools,
    workspace::{Workspace, cargo},
};

/// Schemathesis examples per operation in a test run: enough to meet every operation with
/// valid and invalid input in seconds; `cargo xtask schemathesis` goes further.
const TEST_EXAMPLES: u32 = 5;

pub fn test(_args: &[String]) -> Result<ExitCode> {
    let workspace = Workspace::locate()?;
    let mut tally = Tally::default();
    let cargo_in_root = |args: &[&str]| {
        let mut command = Command::new(cargo());
        command.args(args).current_dir(&workspace.root);
        command
    };

    tally.check("format", || {
        process::run(&mut cargo_in_root(&["fmt", "--all", "--check"]))
    });
    tally.check("no databases or keys tracked by git", || {
        tracked_secrets(&workspace.root)
    });
    tally.check("no import cycles between source files", || {
        cycles::check(&workspace.root)
    });
    tally.check("clippy, native crates", || {
        process::run(&mut cargo_in_root(&[
            "clippy",
            "--workspace",
            "--exclude",
            "loupe-app",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ]))
    });
    if tally.check("wasm32 target", tools::ensure_wasm_target) {
        tally.check("clippy, app on wasm32", || {
            process::run(&mut cargo_in_root(&[
                "clippy",
                "-p",
                "loupe-app",
                "--target",
                "wasm32-unknown-unknown",
                "--locked",
                "--",
                "-D",
                "warnings",
            ]))
        });
    }

    tally.check(
        "OpenSSH and asciinema for the terminal tests",
        tools::ensure_terminal_test_packages,
    );
    let mut sqlite_tests =
        cargo_in_root(&["test", "--workspace", "--exclude", "loupe-app", "--locked"]);
    sqlite_tests.env("LOUPE_TEST_BACKEND", "sqlite");
    tally.tests(
        "Rust tests, store on SQLite",
        &mut sqlite_tests,
        parse_cargo_test_line,
    );

    run_postgres_suite(&mut tally, &cargo_in_root);

    tally.check("Schemathesis against /api/openapi.json", || {
        schemathesis::check(&workspace, TEST_EXAMPLES)
    });

    let client_built = tally.check("web client build", || {
        let client_tools = tools::ensure_client_tools(&workspace)?;
        client::build(&workspace, &client_tools)
    });
    if client_built {
        run_browser_tests(&mut tally, &workspace);
    } else {
        tally.fail("browser tests", "not run: the web client did not build");
    }

    Ok(tally.finish())
}

/// Fails when git tracks a database file or a key: they hold password hashes, sessions'
/// output and the key that opens connection secrets, and belong in data folders (.gitignore).
fn tracked_secrets(root: &std::path::Path) -> Result<()> {
    let listed = Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(root)
        .output()
        .context("running git ls-files")?;
    let forbidden: Vec<String> = String::from_utf8_lossy(&listed.stdout)
        .split('\0')
        .filter(|path| is_data_file(path))
        .map(str::to_owned)
        .collect();
    if forbidden.is_empty() {
        Ok(())
    } else {
        anyhow::bail!(
            "git tracks data files that must never be committed (remove them with `git rm --cached`): {}",
            forbidden.join(", ")
        )
    }
}

fn is_data_file(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    [".db", ".db-wal", ".db-shm", ".sqlite", ".sqlite3"]
        .iter()
        .any(|suffix| name.ends_with(suffix))
        || name == "secret.key"
        || name.ends_with(".pem") && name.contains("key")
}

fn run_postgres_suite(tally: &mut Tally, cargo_in_root: &dyn Fn(&[&str]) -> Command) {
    if std::env::var("LOUPE_SKIP_POSTGRES").is_ok_and(|value| value == "1") {
        let banner = "!".repeat(78);
        eprintln!(
            "\n{banner}\n  SKIPPED: the PostgreSQL suite (LOUPE_SKIP_POSTGRES=1).\n  Storage on PostgreSQL is NOT tested by this run.\n{banner}\n"
        );
        tally
            .skipped
            .push("PostgreSQL suite (LOUPE_SKIP_POSTGRES=1)".into());
        return;
    }
    let url = postgres::test_url();
    if !postgres::answers(&url) {
        tally.fail(
            "Rust tests, store on PostgreSQL",
            &format!(
                "no PostgreSQL answers at {} (LOUPE_TEST_DATABASE_URL, default {}).\n\
                 Start one (Debian: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start),\n\
                 point LOUPE_TEST_DATABASE_URL at one, or skip this suite explicitly with LOUPE_SKIP_POSTGRES=1.",
                postgres::host_and_port(&url).unwrap_or(url.clone()),
                postgres::DEFAULT_URL
            ),
        );
        return;
    }
    // Only the API test binary touches the database; the unit tests ran above.
    let mut command = cargo_in_root(&["test", "-p", "loupe-server", "--test", "api", "--locked"]);
    command.env("LOUPE_TEST_BACKEND", "postgres");
    tally.tests(
        "Rust tests, store on PostgreSQL",
        &mut command,
        parse_cargo_test_line,
    );
}

/// `node --test` in `end2end/`, pointed at the debug server, the built client and Chromium;
/// screenshots go to `artifacts`. Without file arguments it runs `tests/*.test.mjs`.
pub fn end2end_node(
    workspace: &Workspace,
    chromium: &std::path::Path,
    artifacts: &std::path::Path,
) -> Command {
    let mut node = Command::new("node");
    node.args(["--test", "--test-reporter=spec"])
        .current_dir(workspace.root.join("end2end"))
        .env("LOUPE_BIN", workspace.loupe_binary("debug"))
        .env("LOUPE_STATIC_DIR", workspace.dist_dir())
        .env("CHROMIUM_PATH", chromium)
        .env("E2E_ARTIFACTS", artifacts);
    node
}

fn run_browser_tests(tally: &mut Tally, workspace: &Workspace) {
    let prepared = (|| -> Result<std::path::PathBuf> {
        process::run(
            Command::new(cargo())
                .args(["build", "--locked", "-p", "loupe-server", "--bin", "loupe"])
                .current_dir(&workspace.root),
        )?;
        let chromium = tools::ensure_chromium()?;
        tools::install_end2end_packages(workspace)?;
        Ok(chromium)
    })();
    let chromium = match prepared {
        Ok(chromium) => chromium,
        Err(error) => {
            tally.fail("browser tests", &format!("{error:#}"));
            return;
        }
    };
    let artifacts = workspace.target_dir.join("e2e-artifacts");
    // support.mjs appends what it let through as expected; each run starts that list afresh.
    let _ = std::fs::remove_file(artifacts.join("expected-noise.txt"));
    let mut node = end2end_node(workspace, &chromium, &artifacts);
    tally.tests(
        "end-to-end tests (Chromium, Node drivers)",
        &mut node,
        parse_node_test_line,
    );
    eprintln!(
        "xtask: browser test screenshots are in {}",
        artifacts.display()
    );
}

/// What one line of a test runner's output adds to the count, if anything.
#[derive(Debug, Default, PartialEq, Eq)]
struct Counts {
    passed: u32,
    failed: u32,
}

/// `test result: ok. 12 passed; 0 failed; 0 ignored; …`
fn parse_cargo_test_line(line: &str) -> Option<Counts> {
    let rest = line.strip_prefix("test result: ")?;
    let number_before = |word: &str| -> Option<u32> {
        rest.split(';').find_map(|part| {
            part.trim()
                .strip_suffix(word)?
                .trim()
                .rsplit(' ')
                .next()?
                .parse()
                .ok()
        })
    };
    Some(Counts {
        passed: number_before("passed")?,
        failed: number_before("failed")?,
    })
}

/// The spec reporter's closing `ℹ pass 3` and `ℹ fail 0` lines.
fn parse_node_test_line(line: &str) -> Option<Counts> {
    let rest = line.trim().strip_prefix("ℹ ")?;
    let (word, number) = rest.split_once(' ')?;
    let number: u32 = number.trim().parse().ok()?;
    match word {
        "pass" => Some(Counts {
            passed: number,
            failed: 0,
        }),
        "fail" => Some(Counts {
            passed: 0,
            failed: number,
        }),
        _ => None,
    }
}

#[derive(Default)]
struct Tally {
    passed: u32,
    failed: u32,
    report: Vec<String>,
    skipped: Vec<String>,
}

impl Tally {
    /// A step that passes or fails as a whole; returns whether it passed.
    fn check(&mut self, name: &str, step: impl FnOnce() -> Result<()>) -> bool {
        eprintln!("\n== {name}");
        match step() {
            Ok(()) => {
                self.passed += 1;
                self.report.push(format!("ok      {name}"));
                true
            }
            Err(error) => {
                self.fail(name, &format!("{error:#}"));
                false
            }
        }
    }

    fn fail(&mut self, name: &str, why: &str) {
        eprintln!("\n== {name}: FAILED\n{why}");
        self.failed += 1;
        self.report.push(format!(
            "FAILED  {name}: {}",
            why.lines().next().unwrap_or("")
        ));
    }

    /// Runs a test runner, echoing its output and adding up the counts it reports. A runner that
    /// fails without reporting a failed test (it did not compile, or crashed) counts as one.
    fn tests(&mut self, name: &str, command: &mut Command, parse: fn(&str) -> Option<Counts>) {
        eprintln!("\n== {name}");
        let outcome = (|| -> Result<(Counts, bool)> {
            eprintln!("  $ {}", process::describe(command));
            let mut child = command
                .stdout(Stdio::piped())
                .spawn()
                .with_context(|| format!("cannot start {}", process::describe(command)))?;
            let mut counts = Counts::default();
            let stdout = child.stdout.take().context("piped stdout")?;
            for line in BufReader::new(stdout).lines() {
                let line = line?;
                println!("{line}");
                if let Some(more) = parse(&line) {
                    counts.passed += more.passed;
                    counts.failed += more.failed;
                }
            }
            Ok((counts, child.wait()?.success()))
        })();
        match outcome {
            Ok((counts, succeeded)) => {
                self.passed += counts.passed;
                self.failed += counts.failed;
                let unexplained = !succeeded && counts.failed == 0;
                if unexplained {
                    self.failed += 1;
                }
                let verdict = if succeeded { "ok    " } else { "FAILED" };
                self.report.push(format!(
                    "{verdict}  {name}: {} passed, {} failed{}",
                    counts.passed,
                    counts.failed,
                    if unexplained {
                        " (and the runner itself failed)"
                    } else {
                        ""
                    }
                ));
            }
            Err(error) => self.fail(name, &format!("{error:#}")),
        }
    }

    fn finish(self) -> ExitCode {
        eprintln!("\n== summary");
        for line in &self.report {
            eprintln!("  {line}");
        }
        for skipped in &self.skipped {
            eprintln!("  SKIPPED {skipped}");
        }
        println!("{} passed, {} failed", self.passed, self.failed);
        if self.failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cargo_test_result_lines() {
        let line = "test result: FAILED. 12 passed; 3 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.52s";
        assert_eq!(
            parse_cargo_test_line(line),
            Some(Counts {
                passed: 12,
                failed: 3
            })
        );
        assert_eq!(parse_cargo_test_line("running 12 tests"), None);
    }

    #[test]
    fn reads_node_spec_summary_lines() {
        assert_eq!(
            parse_node_test_line("ℹ pass 4"),
            Some(Counts {
                passed: 4,
                failed: 0
            })
        );
        assert_eq!(
            parse_node_test_line("ℹ fail 1"),
            Some(Counts {
                passed: 0,
                failed: 1
            })
        );
        assert_eq!(parse_node_test_line("ℹ tests 5"), None);
    }

    #[test]
    fn recognises_databases_and_keys_among_tracked_files() {
        for data in [
            "end2end/data/demo.db",
            "server/data/secret.key",
            "x/loupe.db-wal",
            "a.sqlite3",
        ] {
            assert!(is_data_file(data), "{data}");
        }
        for code in ["server/src/store/sqlite.rs", "Cargo.lock", "docs/db.md"] {
            assert!(!is_data_file(code), "{code}");
        }
    }
}
