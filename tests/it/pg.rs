//! PostgreSQL for the cluster tests: Debian's `postgresql` binaries, a fresh cluster per
//! test (initdb into a temporary directory, no fsync), listening on a Unix socket in that
//! directory only (no TCP port to pick or to collide on), run as the `postgres` account
//! when the tests run as root (PostgreSQL refuses root).

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::harness::wait_for;

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
    /// The data directory is `data` in here, the socket `.s.PGSQL.5432` right here.
    dir: tempfile::TempDir,
    bin: PathBuf,
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
        let mut pg = Postgres {
            child: None,
            dir,
            bin,
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
        let mut child = as_owner(
            Command::new(self.bin.join("postgres"))
                .arg("-D")
                .arg(self.dir.path().join("data"))
                .arg("-k")
                .arg(self.dir.path())
                .args([
                    "-c",
                    "listen_addresses=",
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
        // Ready when this postmaster's lock file says so (its first line is the pid, the
        // eighth the state): a file left by the one halted before is not this one's.
        let pid = child.id().to_string();
        let lock = self.dir.path().join("data/postmaster.pid");
        let ready = || {
            let text = std::fs::read_to_string(&lock).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            lines.first() == Some(&pid.as_str()) && lines.get(7).map(|l| l.trim()) == Some("ready")
        };
        let ended = |c: &mut Child| c.try_wait().ok().flatten().is_some();
        wait_for(Duration::from_secs(30), || ready() || ended(&mut child));
        let up = ready();
        self.child = Some(child);
        assert!(
            up,
            "postgres did not start: {}",
            std::fs::read_to_string(self.dir.path().join("pg.log")).unwrap_or_default()
        );
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

    /// The database on the socket in its directory.
    pub fn url(&self) -> String {
        format!(
            "postgres://wharf@/postgres?host={}",
            self.dir.path().display()
        )
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.halt();
    }
}
