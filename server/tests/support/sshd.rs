//! A real OpenSSH server for a test (Debian's `openssh-server`, which `cargo xtask test`
//! installs): started on a free loopback port with a generated host key, letting a throw-away
//! account in with a generated key. Everything is removed when it is dropped.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use tempfile::TempDir;
use tokio::process::{Child, Command};

static ACCOUNTS: AtomicU32 = AtomicU32::new(0);

pub struct Sshd {
    pub port: u16,
    /// The throw-away account's name.
    pub user: String,
    /// The account's private key, OpenSSH format.
    pub private_key: String,
    /// `SHA256:…` of the server's host key.
    pub fingerprint: String,
    folder: TempDir,
    child: Child,
}

fn run(program: &str, args: &[&str]) -> String {
    let output = std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("{program} runs: {error}"));
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn new_key(path: &Path) {
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_file(path.with_extension("pub"));
    run(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-f",
            path.to_str().unwrap(),
        ],
    );
}

fn fingerprint_of(public_key: &Path) -> String {
    let line = run("ssh-keygen", &["-l", "-f", public_key.to_str().unwrap()]);
    line.split_whitespace()
        .nth(1)
        .expect("a fingerprint")
        .to_owned()
}

impl Sshd {
    /// Starts a server with a new host key and a new account.
    pub async fn start() -> Sshd {
        // sshd reads the authorized keys as the account, so its folder is in /tmp (whatever
        // TMPDIR says: a bench's may sit under root's own home), readable by everyone.
        let folder = tempfile::Builder::new()
            .prefix("loupe-sshd-")
            .tempdir_in("/tmp")
            .unwrap();
        std::fs::set_permissions(
            folder.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let user = format!(
            "loupet{}x{}",
            std::process::id(),
            ACCOUNTS.fetch_add(1, Ordering::SeqCst)
        );
        let _ = std::process::Command::new("userdel")
            .args(["-r", &user])
            .output();
        run("useradd", &["-m", "-s", "/bin/sh", &user]);
        // A locked password makes OpenSSH refuse even keys ("account locked"); a disabled one
        // ('*') lets keys in.
        run("usermod", &["-p", "*", &user]);
        let user_key = folder.path().join("user_key");
        new_key(&user_key);
        let authorized = folder.path().join("authorized_keys");
        std::fs::copy(user_key.with_extension("pub"), &authorized).unwrap();
        let private_key = std::fs::read_to_string(&user_key).unwrap();
        std::fs::create_dir_all("/run/sshd").unwrap();
        // Mounted beside this file as `crate::ports` by the test and bench crates.
        let port = crate::ports::free_port();
        let mut server = Sshd {
            port,
            user,
            private_key,
            fingerprint: String::new(),
            child: Command::new("true").spawn().unwrap(),
            folder,
        };
        server.restart_with_new_host_key().await;
        server
    }

    fn host_key(&self) -> PathBuf {
        self.folder.path().join("host_key")
    }

    /// Stops the server and starts it again on the same port with another host key: what a
    /// man in the middle (or a rebuilt server) looks like.
    pub async fn restart_with_new_host_key(&mut self) {
        let _ = self.child.kill().await;
        new_key(&self.host_key());
        self.fingerprint = fingerprint_of(&self.host_key().with_extension("pub"));
        let config = self.folder.path().join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {host}\nAuthorizedKeysFile {keys}\n\
                 AllowUsers {user}\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 UsePAM no\nStrictModes no\nPidFile none\nLogLevel ERROR\n",
                port = self.port,
                host = self.host_key().display(),
                keys = self.folder.path().join("authorized_keys").display(),
                user = self.user,
            ),
        )
        .unwrap();
        // Its log goes to a file: readiness probes below are logged as aborted handshakes.
        let log = self.folder.path().join("sshd.log");
        self.child = Command::new("/usr/sbin/sshd")
            .args([
                "-D",
                "-E",
                log.to_str().unwrap(),
                "-f",
                config.to_str().unwrap(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("sshd starts (cargo xtask test installs openssh-server)");
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("sshd did not listen on port {}", self.port);
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::process::Command::new("pkill")
            .args(["-KILL", "-u", &self.user])
            .output();
        let _ = std::process::Command::new("userdel")
            .args(["-r", &self.user])
            .output();
    }
}
