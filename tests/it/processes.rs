//! Child processes: the `wharf` binary serving (the addresses it bound read from its start
//! line, signals, a bounded wait for its exit), sockets bound here and handed to a child
//! (systemd's socket activation, HAProxy's `fd@`), the `wharf` CLI, and raw HTTP for the
//! admin endpoint. Knows nothing of any one test.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Output, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::harness::wait_for;

pub const WHARF: &str = env!("CARGO_BIN_EXE_wharf");

/// `wharf serve`, its standard input closed and its output piped for the start line; the
/// caller adds arguments and a working directory, then [`Wharf::start`]s it.
pub fn serve() -> Command {
    let mut c = Command::new(WHARF);
    c.arg("serve").stdin(Stdio::null()).stdout(Stdio::piped());
    c
}

/// A `wharf serve` child that printed its start line, its event log (stderr) going to a
/// file; killed when dropped if it still runs.
pub struct Wharf {
    pub child: Child,
    /// The line it prints once it listens.
    pub line: String,
    log: PathBuf,
    /// Kept open: wharf's stdout stays writable for as long as it runs.
    _stdout: BufReader<ChildStdout>,
}

impl Wharf {
    /// Spawns `cmd` (a [`serve`]) with stderr into `log`, and reads its start line.
    pub fn start(cmd: &mut Command, log: &Path) -> Wharf {
        Wharf::try_start(cmd, log).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Wharf::start`], or why it did not start (its exit status and log).
    pub fn try_start(cmd: &mut Command, log: &Path) -> Result<Wharf, String> {
        cmd.stderr(std::fs::File::create(log).expect("create the log"));
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout piped"));
        let mut line = String::new();
        let _ = stdout.read_line(&mut line);
        if !line.starts_with("wharf serving") {
            let _ = child.kill();
            let status = child.wait();
            return Err(format!(
                "wharf did not start ({status:?}): {line:?}\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            ));
        }
        Ok(Wharf {
            child,
            line,
            log: log.to_path_buf(),
            _stdout: stdout,
        })
    }

    /// The first FTP address of the start line
    /// (`wharf serving ROOT on ADDR, ADDR (anonymous: …); try: …`).
    pub fn ftp(&self) -> SocketAddr {
        self.line
            .split(" on ")
            .nth(1)
            .and_then(|r| r.split([' ', ',']).next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {:?}", self.line))
    }

    /// The admin endpoint's TCP address of the start line (`…; admin http://ADDR`).
    pub fn admin(&self) -> SocketAddr {
        self.line
            .split("admin http://")
            .nth(1)
            .and_then(|a| a.split_whitespace().next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no admin address in {:?}", self.line))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it has written to its event log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn signal(&self, sig: Signal) {
        kill(Pid::from_raw(self.pid() as i32), sig).expect("signal wharf");
    }

    pub fn running(&mut self) -> bool {
        self.child.try_wait().expect("wait for wharf").is_none()
    }

    /// Waits up to `limit` for it to exit; its status.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        if wait_for(limit, || !self.running()).is_none() {
            panic!("wharf did not exit within {limit:?}\n{}", self.log());
        }
        self.child.wait().expect("wait for wharf")
    }

    /// SIGTERM, then a wait of up to `limit` for the exit.
    pub fn stop_within(&mut self, limit: Duration) -> ExitStatus {
        self.signal(Signal::SIGTERM);
        self.wait_exit(limit)
    }

    /// SIGTERM, then a bounded wait for the exit.
    pub fn stop(&mut self) -> ExitStatus {
        self.stop_within(Duration::from_secs(20))
    }

    /// SIGKILL, as a crash would end it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Wharf {
    fn drop(&mut self) {
        if self.running() {
            self.kill();
        }
    }
}

/// `wharf ARGS…` (a CLI command: `who`, `reload`, `ban` …), run in `dir`.
pub fn cli(dir: &Path, args: &[&str]) -> Output {
    Command::new(WHARF)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run the wharf CLI")
}

/// Lets the child of `cmd` inherit `fds` under their own numbers. This process keeps them
/// close-on-exec, so that no other child gets them; only this child's copies lose the flag.
pub fn inherit_fds(cmd: &mut Command, fds: Vec<RawFd>) {
    use nix::fcntl::{FcntlArg, FdFlag, fcntl};
    use std::os::fd::BorrowedFd;
    // SAFETY: between fork and exec only fcntl runs, on descriptors open in this process.
    unsafe {
        cmd.pre_exec(move || {
            for &fd in &fds {
                fcntl(
                    BorrowedFd::borrow_raw(fd),
                    FcntlArg::F_SETFD(FdFlag::empty()),
                )?;
            }
            Ok(())
        });
    }
}

/// Hands `listener` to the child of `cmd` as systemd's socket activation does: descriptor
/// 3, `LISTEN_FDS=1`, and `LISTEN_PID` the child's own pid (set by a shell that then execs
/// `program`, keeping its pid). The socket is bound and listening before the child starts,
/// so a client can connect at once.
pub fn socket_activated(listener: &TcpListener, program: &str) -> Command {
    use std::os::fd::BorrowedFd;
    let fd = listener.as_raw_fd();
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("LISTEN_PID=$$ exec \"$0\" \"$@\"")
        .arg(program)
        .env("LISTEN_FDS", "1")
        .env_remove("LISTEN_FDNAMES")
        .env_remove("LISTEN_PID");
    // SAFETY: between fork and exec only dup2 and fcntl run. The descriptor dup2 returns
    // is the child's fd 3, which must outlive this closure: it is forgotten, not closed.
    unsafe {
        cmd.pre_exec(move || {
            use nix::fcntl::{FcntlArg, FdFlag, fcntl};
            let three = nix::unistd::dup2_raw(BorrowedFd::borrow_raw(fd), 3)?;
            // dup2 onto itself (fd was 3 already) keeps close-on-exec: clear it either way.
            fcntl(&three, FcntlArg::F_SETFD(FdFlag::empty()))?;
            std::mem::forget(three);
            Ok(())
        });
    }
    cmd
}

/// Whether process `pid` itself has a socket listening on TCP `port` (any address): a
/// daemon is up, and on the port it was told, not merely the port answering.
pub fn listens_on(pid: u32, port: u16) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    let inodes: std::collections::HashSet<String> = fds
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    // /proc/net/tcp: "sl local_address rem_address st … inode", a listener's st is 0A.
    let port = format!("{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|table| {
        std::fs::read_to_string(table)
            .unwrap_or_default()
            .lines()
            .skip(1)
            .any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() > 9
                    && f[3] == "0A"
                    && f[1].rsplit(':').next() == Some(port.as_str())
                    && inodes.contains(f[9])
            })
    })
}

/// Sends one raw HTTP/1.1 request to `addr` (`Content-Length` and `Connection: close` are
/// added); returns the status code and the whole answer.
pub fn http(addr: SocketAddr, head: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect to the admin endpoint");
    exchange(&mut s, head, body)
}

/// `GET path` from `addr` as this machine's client; the whole answer.
pub fn http_get(addr: SocketAddr, path: &str) -> String {
    http(addr, &format!("GET {path} HTTP/1.1\r\nHost: localhost"), "").1
}

/// One HTTP/1.1 request on an open connection, as [`http`].
pub fn exchange(s: &mut (impl Read + Write), head: &str, body: &str) -> (u16, String) {
    write!(
        s,
        "{head}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {answer:?}"));
    (status, answer)
}
