//! A MariaDB server of the test's own that offers TLS, where the machine's own has it off:
//! Debian's `mariadb-install-db` and `mariadbd` (the packages the machine's server comes
//! from), run as the `mysql` account on a free loopback port, with a certificate for
//! `localhost` from an authority of the test's own ([`TlsMariadb::ca_file`]). `tls_user` may
//! log in only over TLS (`REQUIRE SSL`). Stopped and removed when dropped.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use tempfile::TempDir;

/// `tls_user`'s password.
pub const PASSWORD: &str = "pw-Heron-basalt-17";

pub struct TlsMariadb {
    pub port: u16,
    ca: PathBuf,
    server: Child,
    _folder: TempDir,
}

impl TlsMariadb {
    pub fn start() -> TlsMariadb {
        let folder = tempfile::tempdir().unwrap();
        let text = |path: &Path| path.to_str().unwrap().to_owned();
        crate::certificates::give_to("mysql", folder.path());
        let data = folder.path().join("data");
        let installed = Command::new("mariadb-install-db")
            .args(["--no-defaults", "--user=mysql", "--skip-test-db"])
            .arg(format!("--datadir={}", text(&data)))
            .output()
            .expect("mariadb-install-db runs");
        assert!(
            installed.status.success(),
            "mariadb-install-db: {}",
            String::from_utf8_lossy(&installed.stderr)
        );
        let ca = folder.path().join("ca.pem");
        crate::certificates::certify(&ca, folder.path(), "mysql");
        let port = crate::ports::free_port();
        let socket = folder.path().join("socket");
        let log = std::fs::File::create(folder.path().join("log")).unwrap();
        let server = Command::new("/usr/sbin/mariadbd")
            .args(["--no-defaults", "--user=mysql", "--bind-address=127.0.0.1"])
            .args(["--skip-log-bin", "--innodb-buffer-pool-size=16M"])
            .arg(format!("--port={port}"))
            .arg(format!("--datadir={}", text(&data)))
            .arg(format!("--socket={}", text(&socket)))
            .arg(format!("--pid-file={}", text(&folder.path().join("pid"))))
            .arg(format!("--ssl-ca={}", text(&ca)))
            .arg(format!(
                "--ssl-cert={}",
                text(&folder.path().join("server.crt"))
            ))
            .arg(format!(
                "--ssl-key={}",
                text(&folder.path().join("server.key"))
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("mariadbd starts");
        let server = TlsMariadb {
            port,
            ca,
            server,
            _folder: folder,
        };
        // Ready once its socket answers; then the TLS-only account.
        let create = format!(
            "CREATE USER tls_user@'%' IDENTIFIED BY '{PASSWORD}' REQUIRE SSL; \
             GRANT ALL ON *.* TO tls_user@'%'"
        );
        for _ in 0..200 {
            let output = Command::new("mariadb")
                .args(["--no-defaults", "-uroot"])
                .arg(format!("--socket={}", text(&socket)))
                .args(["-e", &create])
                .output()
                .unwrap();
            if output.status.success() {
                return server;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let said = std::fs::read_to_string(server._folder.path().join("log")).unwrap_or_default();
        panic!("the test's MariaDB did not start: {said}");
    }

    /// The certificate of the authority that signed the server's (PEM).
    pub fn ca_file(&self) -> &Path {
        &self.ca
    }
}

impl Drop for TlsMariadb {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}
