//! A PostgreSQL server of the test's own that asks for passwords, where the machine's own
//! answers everyone by `trust`: Debian's `initdb` and `pg_ctl` (the postgresql package the
//! machine's server comes from), run as the `postgres` account, on a free loopback port. Two
//! roles log in with a password: `scram_user` by SCRAM-SHA-256 and `md5_user` by MD5 (RFC 7677;
//! PostgreSQL's `pg_hba.conf` methods). It offers TLS with a certificate for `localhost` from a
//! certificate authority of its own ([`PasswordPostgres::ca_file`]), and `tls_user` may log in
//! only over TLS (`hostssl`). Stopped and removed when dropped.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use tempfile::TempDir;

/// Every role's password here.
pub const PASSWORD: &str = "pw-Heron-basalt-17";

pub struct PasswordPostgres {
    pub port: u16,
    ca: PathBuf,
    bin: PathBuf,
    data: PathBuf,
    _folder: TempDir,
}

/// Runs `program` as the `postgres` account (initdb refuses root) and insists it succeeds.
fn as_postgres(program: &Path, args: &[&str]) {
    let output = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(program)
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("{} runs: {error}", program.display()));
    assert!(
        output.status.success(),
        "{} {args:?}: {}{}",
        program.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

impl PasswordPostgres {
    pub fn start() -> PasswordPostgres {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("Debian's PostgreSQL server is installed")
            .filter_map(Result::ok)
            .map(|version| version.path().join("bin"))
            .find(|bin| bin.join("initdb").exists())
            .expect("initdb under /usr/lib/postgresql/*/bin");
        let folder = tempfile::tempdir().unwrap();
        crate::certificates::give_to("postgres", folder.path());
        let data = folder.path().join("data");
        let superuser_password = folder.path().join("superuser-password");
        std::fs::write(&superuser_password, PASSWORD).unwrap();
        let text = |path: &Path| path.to_str().unwrap().to_owned();
        as_postgres(
            &bin.join("initdb"),
            &[
                "--pgdata",
                &text(&data),
                "--username=postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                &format!("--pwfile={}", text(&superuser_password)),
                "--encoding=UTF8",
                "--no-sync",
            ],
        );
        // The MD5 role first, the TLS role only over TLS: the rest by SCRAM.
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\n\
             host all md5_user 127.0.0.1/32 md5\n\
             hostssl all tls_user 127.0.0.1/32 scram-sha-256\n\
             hostnossl all tls_user 127.0.0.1/32 reject\n\
             host all all 127.0.0.1/32 scram-sha-256\n",
        )
        .unwrap();
        let ca = folder.path().join("ca.pem");
        crate::certificates::certify(&ca, &data, "postgres");
        let port = crate::ports::free_port();
        let options = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c ssl=on",
            text(folder.path())
        );
        as_postgres(
            &bin.join("pg_ctl"),
            &[
                "--pgdata",
                &text(&data),
                "--options",
                &options,
                "--log",
                &text(&folder.path().join("log")),
                "--wait",
                "start",
            ],
        );
        let server = PasswordPostgres {
            port,
            ca,
            bin,
            data,
            _folder: folder,
        };
        let socket = text(server._folder.path());
        as_postgres(
            Path::new("/usr/bin/psql"),
            &[
                "--no-psqlrc",
                "-h",
                &socket,
                "-p",
                &port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                &format!("CREATE ROLE scram_user LOGIN PASSWORD '{PASSWORD}'"),
                "-c",
                "SET password_encryption = 'md5'",
                "-c",
                &format!("CREATE ROLE md5_user LOGIN PASSWORD '{PASSWORD}'"),
                "-c",
                "SET password_encryption = 'scram-sha-256'",
                "-c",
                &format!("CREATE ROLE tls_user LOGIN PASSWORD '{PASSWORD}'"),
            ],
        );
        server
    }

    /// The certificate of the authority that signed the server's (PEM).
    pub fn ca_file(&self) -> &Path {
        &self.ca
    }

    /// A connection URL for `role` with `password`, to the `postgres` database.
    pub fn url(&self, role: &str, password: &str) -> String {
        format!(
            "postgres://{role}:{password}@127.0.0.1:{}/postgres",
            self.port
        )
    }
}

impl Drop for PasswordPostgres {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .arg("--pgdata")
            .arg(&self.data)
            .args(["--mode=immediate", "stop"])
            .output();
    }
}
