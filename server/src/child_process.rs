//! How Loupe starts programs for people (command runs, shell terminals): the environment they
//! get, the operating-system user they run as, and how their end is told when a signal ended
//! them.
//!
//! A program gets a minimal environment ([`INHERITED_ENV`]) plus its connection's own
//! variables, never Loupe's: the server's environment holds its secrets (`DATABASE_URL`,
//! `LOUPE_SECRET_KEY`, `LOUPE_ADMIN_PASSWORD`).

/// What a started program inherits from Loupe's environment: where programs are, whose home,
/// the locale and the time zone. Everything else is left behind.
pub const INHERITED_ENV: &[&str] = &[
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ",
    "TMPDIR",
];
/// `PATH` for a program when Loupe itself has none.
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// The environment a started program gets: [`INHERITED_ENV`] from `server_env`, then the
/// connection's `own` variables (which win).
pub fn child_env(
    server_env: impl IntoIterator<Item = (String, String)>,
    own: &std::collections::BTreeMap<String, String>,
) -> Vec<(String, String)> {
    let mut env: std::collections::BTreeMap<String, String> = server_env
        .into_iter()
        .filter(|(name, _)| INHERITED_ENV.contains(&name.as_str()))
        .collect();
    env.entry("PATH".into())
        .or_insert_with(|| DEFAULT_PATH.into());
    env.extend(
        own.iter()
            .map(|(name, value)| (name.clone(), value.clone())),
    );
    env.into_iter().collect()
}

/// The operating-system user `name`, or why it cannot be used.
pub fn os_user(name: &str) -> Result<nix::unistd::User, String> {
    match nix::unistd::User::from_name(name) {
        Ok(Some(user)) => Ok(user),
        Ok(None) => Err(format!(
            "there is no operating-system user {name} to run as"
        )),
        Err(error) => Err(format!("cannot look up the user {name}: {error}")),
    }
}

/// The one wording for a program a signal ended (no exit status: POSIX `wait`; SSH's
/// `exit-signal`, RFC 4254 §6.10): `killed by SIGKILL`.
pub fn killed_by(signal: &str) -> String {
    format!("killed by {signal}")
}

/// Signal `number`'s POSIX name (`SIGKILL`), or `signal 64` for one without a name here.
pub fn signal_name(number: i32) -> String {
    nix::sys::signal::Signal::try_from(number).map_or_else(
        |_| format!("signal {number}"),
        |signal| signal.as_str().to_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_get_a_minimal_environment_and_their_connections_own() {
        let server = [
            ("PATH", "/opt/bin:/usr/bin"),
            ("DATABASE_URL", "postgres://loupe:secret@db/loupe"),
            ("LOUPE_SECRET_KEY", "00ff"),
            ("LOUPE_ADMIN_PASSWORD", "hunter2"),
            ("AWS_SECRET_ACCESS_KEY", "abc"),
            ("LANG", "C.UTF-8"),
        ]
        .map(|(name, value)| (name.to_owned(), value.to_owned()));
        let own = [("PGPASSWORD".to_owned(), "target".to_owned())].into();
        let env = child_env(server, &own);
        let names: Vec<&str> = env.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["LANG", "PATH", "PGPASSWORD"]);
        let without_path = child_env(Vec::new(), &Default::default());
        assert_eq!(without_path, [("PATH".to_owned(), DEFAULT_PATH.to_owned())]);
    }
}
