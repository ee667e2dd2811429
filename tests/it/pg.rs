//! PostgreSQL for the cluster tests: Debian's `postgresql` binaries, a fresh cluster per
//! test (initdb into a temporary directory, no fsync), on a loopback port, run as the
//! `postgres` account when the tests run as root (PostgreSQL refuses root).

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The newest `/usr/lib/postgresql/N/bin`.
fn bin_dir() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("postgres").exists())
        .collect();
    dirs.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    let found = dirs.pop();
    if found.is_none() {
        if std::env::var_os("CI").is_some() {
            panic!("postgresql is not installed, and CI must run the cluster tests");
        }
        eprintln!("skipping: postgresql not installed");
    }
    found
}

/// A running PostgreSQL; stopped (immediate shutdown) when dropped.
pub struct Postgres {
    child: Option<Child>,
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
}

fn account() -> Option<(u32, u32)> {
    if !nix::unistd::geteuid().is_root() {
        return None;
    }
    let u = nix::unistd::User::from_name("postgres").ok()??;
    Some((u.uid.as_raw(), u.gid.as_raw()))
}

fn as_owner(cmd: &mut Command) -> &mut Command {
    if let Some((uid, gid)) = account() {
        cmd.uid(uid).gid(gid);
    }
    cmd
}

impl Postgres {
    pub fn start() -> Option<Postgres> {
        let bin = bin_dir()?;
        let dir = tempfile::tempdir().unwrap();
        if let Some((uid, gid)) = account() {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        }
        let out = as_owner(
            Command::new(bin.join("initdb"))
                .arg("-D")
                .arg(dir.path().join("data"))
                .args(["-A", "trust", "-U", "wharf", "--no-sync", "-E", "UTF8"])
                .stdin(Stdio::null()),
        )
        .output()
        .expect("initdb");
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut pg = Postgres {
            child: None,
            dir,
            bin,
            port,
        };
        pg.resume();
        Some(pg)
    }

    /// (Re)starts the server on its data directory; returns once it accepts connections.
    pub fn resume(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("pg.log")).unwrap();
        if let Some((uid, gid)) = account() {
            let _ = std::os::unix::fs::chown(self.dir.path().join("pg.log"), Some(uid), Some(gid));
        }
        let child = as_owner(
            Command::new(self.bin.join("postgres"))
                .arg("-D")
                .arg(self.dir.path().join("data"))
                .arg("-p")
                .arg(self.port.to_string())
                .arg("-k")
                .arg(self.dir.path())
                .args([
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                    "-c",
                    "max_connections=300",
                ])
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log),
        )
        .spawn()
        .expect("start postgres");
        self.child = Some(child);
        let start = Instant::now();
        loop {
            let ready = Command::new(self.bin.join("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-q"])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "postgres did not start: {}",
                std::fs::read_to_string(self.dir.path().join("pg.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server at once (as a crash or a network cut would look to clients).
    pub fn halt(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGQUIT,
            );
            let _ = c.wait();
        }
    }

    pub fn url(&self) -> String {
        format!("postgres://wharf@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.halt();
    }
}
