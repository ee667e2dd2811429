//! Test harness: a wharf server running in-process on loopback ports picked by the kernel,
//! a raw control-connection client for byte-level checks, helpers to run real clients, the
//! one way to wait for something ([`wait_for`]), and addresses and ports of a test's own
//! for what must be given a number.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use wharf::Config;
use wharf::config::{AnonymousMode, UserConfig};

pub const USER: &str = "judge";
pub const PASS: &str = "pw";

/// One hash for the whole test binary: argon2 is deliberately slow.
fn judge_hash() -> String {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| wharf::auth::hash_password(PASS.as_bytes()))
        .clone()
}

/// A running server; stopped when dropped.
pub struct TestServer {
    pub v4: SocketAddr,
    pub v6: Option<SocketAddr>,
    /// Every explicit listener, in configuration order (`listen`, then `[[listener]]`).
    pub addrs: Vec<SocketAddr>,
    /// The first implicit-TLS listener, when `implicit_listen` was configured.
    pub implicit: Option<SocketAddr>,
    /// The running server's shared state (certificate reload and the like).
    pub shared: std::sync::Arc<wharf::shared::Shared>,
    root: tempfile::TempDir,
    /// Outside the root: the generated TLS certificate lives here.
    state: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    /// User `judge`/`pw` with full rights, anonymous read-only, on 127.0.0.1:0 and [::1]:0.
    pub fn start() -> TestServer {
        TestServer::with(|_| {})
    }

    /// Like [`TestServer::start`], with the configuration adjusted by `f` first.
    pub fn with(f: impl FnOnce(&mut Config)) -> TestServer {
        let root = tempfile::tempdir().expect("tempdir");
        let state = tempfile::tempdir().expect("tempdir");
        let mut config = Config {
            tls_dir: Some(state.path().to_path_buf()),
            listen: vec!["127.0.0.1:0".parse().unwrap()],
            root: root.path().to_path_buf(),
            anonymous: Some(AnonymousMode::Read),
            data_connect_timeout: 5,
            // Tests that count on the delay set it themselves.
            login_failure_delay_ms: 0,
            users: vec![UserConfig::new(USER, judge_hash())],
            ..Config::default()
        };
        let has_v6 = TcpListener::bind("[::1]:0").is_ok();
        if has_v6 {
            config.listen.push("[::1]:0".parse().unwrap());
        }
        f(&mut config);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let server = wharf::Server::bind(config).await.expect("bind");
                addr_tx
                    .send((
                        server.local_addrs(),
                        server.implicit_addrs(),
                        server.shared(),
                    ))
                    .unwrap();
                server
                    .run(async {
                        let _ = stop_rx.await;
                    })
                    .await;
            });
            rt.shutdown_timeout(Duration::from_secs(1));
        });
        let (addrs, implicit, shared) = addr_rx.recv().expect("server started");
        TestServer {
            v4: addrs[0],
            v6: addrs.iter().copied().find(SocketAddr::is_ipv6),
            implicit: implicit.first().copied(),
            shared,
            addrs: addrs.clone(),
            root,
            state,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// The server's root directory on disk.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// Starts a server with explicit FTPS (`tls = "optional"`), a generated certificate and
    /// an implicit listener on 127.0.0.1:0, then `f`.
    pub fn tls(f: impl FnOnce(&mut Config)) -> TestServer {
        TestServer::with(|cfg| {
            cfg.tls = wharf::config::TlsMode::Optional;
            cfg.implicit_listen = vec!["127.0.0.1:0".parse().unwrap()];
            f(cfg);
        })
    }

    /// The generated certificate (PEM), for clients that pin or trust it.
    pub fn cert_path(&self) -> PathBuf {
        self.state.path().join(wharf::tls::GENERATED_CERT)
    }

    /// A path inside the root.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }

    /// `ftp://judge:pw@127.0.0.1:PORT/rel`
    pub fn url(&self, rel: &str) -> String {
        format!("ftp://{USER}:{PASS}@127.0.0.1:{}/{rel}", self.v4.port())
    }

    /// `ftp://judge:pw@[::1]:PORT/rel` (panics if the host has no IPv6).
    pub fn url6(&self, rel: &str) -> String {
        format!(
            "ftp://{USER}:{PASS}@[::1]:{}/{rel}",
            self.v6.expect("ipv6").port()
        )
    }

    /// A logged-in raw client over IPv4.
    pub fn login(&self) -> Ctrl {
        let mut c = Ctrl::connect(self.v4);
        c.login(USER, PASS);
        c
    }

    /// A client killed mid-upload, in an order that cannot pass for a finished file: its
    /// control connection closes first, and only once the server has ended that session
    /// (the upload settled as interrupted) its data connection.
    pub fn kill_client(&self, control: Ctrl, data: TcpStream) {
        let before = self.shared.sessions.total();
        drop(control);
        let ended = wait_for(Duration::from_secs(20), || {
            self.shared.sessions.total() < before
        });
        assert!(
            ended.is_some(),
            "the session outlived its control connection"
        );
        drop(data);
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A raw control connection: send a line, read one whole reply.
pub struct Ctrl {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    pub greeting: Reply,
}

/// One reply: its code and the raw bytes of every line (CRLF included).
#[derive(Debug, Clone)]
pub struct Reply {
    pub code: u16,
    pub raw: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }
}

impl Ctrl {
    pub fn connect(addr: SocketAddr) -> Ctrl {
        Ctrl::from_stream(TcpStream::connect(addr).expect("connect"))
    }

    /// Connects from another loopback address (e.g. 127.0.0.2), to test per-address rules.
    pub fn connect_from(addr: SocketAddr, from: std::net::IpAddr) -> Ctrl {
        let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        sock.bind(&SocketAddr::new(from, 0).into())
            .expect("bind source");
        sock.connect(&addr.into()).expect("connect");
        Ctrl::from_stream(sock.into())
    }

    pub fn from_stream(stream: TcpStream) -> Ctrl {
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let writer = stream.try_clone().unwrap();
        let mut c = Ctrl {
            reader: BufReader::new(stream),
            writer,
            greeting: Reply {
                code: 0,
                raw: Vec::new(),
            },
        };
        c.greeting = c.read_reply();
        assert_eq!(c.greeting.code, 220, "greeting: {}", c.greeting.text());
        c
    }

    /// Sends raw bytes as they are (no CRLF added).
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("write");
    }

    /// Sends bytes as TCP urgent data (MSG_OOB), as ftplib and BSD ftp do for ABOR.
    pub fn send_urgent(&mut self, bytes: &[u8]) {
        socket2::SockRef::from(&self.writer)
            .send_out_of_band(bytes)
            .expect("send urgent");
    }

    /// Sends `line` + CRLF and reads the reply.
    pub fn cmd(&mut self, line: &str) -> Reply {
        self.cmd_bytes(line.as_bytes())
    }

    pub fn cmd_bytes(&mut self, line: &[u8]) -> Reply {
        let mut buf = line.to_vec();
        buf.extend_from_slice(b"\r\n");
        self.send_raw(&buf);
        self.read_reply()
    }

    /// Reads one complete (possibly multi-line) reply.
    pub fn read_reply(&mut self) -> Reply {
        let mut raw = Vec::new();
        let mut first = Vec::new();
        self.reader
            .read_until(b'\n', &mut first)
            .expect("read reply");
        assert!(first.len() >= 4, "short reply line: {first:?}");
        let code: u16 = std::str::from_utf8(&first[..3])
            .unwrap()
            .parse()
            .expect("code");
        raw.extend_from_slice(&first);
        if first[3] == b'-' {
            loop {
                let mut line = Vec::new();
                let n = self
                    .reader
                    .read_until(b'\n', &mut line)
                    .expect("read reply");
                assert!(n > 0, "eof inside multi-line reply");
                raw.extend_from_slice(&line);
                if line.len() >= 4 && line[..3] == first[..3] && line[3] == b' ' {
                    break;
                }
            }
        }
        Reply { code, raw }
    }

    /// Reads until the server closes the connection (or the read timeout), returning
    /// whatever arrived.
    pub fn drain(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let _ = self.reader.read_to_end(&mut out);
        out
    }

    /// Whether the server closed the connection (reads to EOF).
    pub fn is_closed(&mut self) -> bool {
        let mut buf = [0u8; 64];
        matches!(self.reader.read(&mut buf), Ok(0) | Err(_))
    }

    /// Logs in; panics unless the server says 230.
    pub fn login(&mut self, user: &str, pass: &str) {
        let r = self.try_login(user, pass);
        assert_eq!(r.code, 230, "{}", r.text());
    }

    /// USER (which must get 331), then PASS: the reply to PASS, whatever it is.
    pub fn try_login(&mut self, user: &str, pass: &str) -> Reply {
        let r = self.cmd(&format!("USER {user}"));
        assert_eq!(r.code, 331, "{}", r.text());
        self.cmd(&format!("PASS {pass}"))
    }

    /// Sends PASV and connects to the announced port.
    pub fn pasv(&mut self) -> TcpStream {
        let r = self.cmd("PASV");
        assert_eq!(r.code, 227, "{}", r.text());
        let t = r.text();
        let inner = &t[t.find('(').unwrap() + 1..t.find(')').unwrap()];
        let n: Vec<u16> = inner
            .split(',')
            .map(|x| x.trim().parse().unwrap())
            .collect();
        let addr = SocketAddr::from((
            [n[0] as u8, n[1] as u8, n[2] as u8, n[3] as u8],
            n[4] * 256 + n[5],
        ));
        TcpStream::connect(addr).expect("data connect")
    }

    /// Sends EPSV and connects to the announced port on the control connection's host.
    pub fn epsv(&mut self) -> TcpStream {
        let r = self.cmd("EPSV");
        assert_eq!(r.code, 229, "{}", r.text());
        let t = r.text();
        let inner = &t[t.find("(|||").unwrap() + 4..t.find("|)").unwrap()];
        let port: u16 = inner.parse().unwrap();
        let host = self.writer.peer_addr().unwrap().ip();
        TcpStream::connect((host, port)).expect("data connect")
    }

    /// Runs a transfer command over a fresh passive connection and returns the final reply
    /// and the bytes received.
    pub fn retr(&mut self, line: &str) -> (Reply, Vec<u8>) {
        let mut data = self.epsv();
        let r = self.cmd(line);
        if r.code != 150 && r.code != 125 {
            return (r, Vec::new());
        }
        let mut buf = Vec::new();
        data.read_to_end(&mut buf).unwrap();
        (self.read_reply(), buf)
    }

    /// Uploads `bytes` with `line` (STOR/APPE/STOU) over a fresh passive connection.
    pub fn stor(&mut self, line: &str, bytes: &[u8]) -> (Reply, Reply) {
        self.stor_bytes(line.as_bytes(), bytes)
    }

    /// Like [`Ctrl::stor`] with a command line that need not be UTF-8.
    pub fn stor_bytes(&mut self, line: &[u8], bytes: &[u8]) -> (Reply, Reply) {
        let mut data = self.epsv();
        let first = self.cmd_bytes(line);
        if first.code != 150 && first.code != 125 {
            return (first.clone(), first);
        }
        data.write_all(bytes).unwrap();
        drop(data);
        let last = self.read_reply();
        (first, last)
    }
}

/// Runs an external client with a timeout; panics with its output if it cannot start.
pub fn run(cmd: &mut Command) -> Output {
    cmd.stdin(std::process::Stdio::null());
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Whether a client program is on PATH. In CI (`CI` set) a missing client is a failure.
pub fn have(program: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found && std::env::var_os("CI").is_some() {
        panic!("{program} is not installed, and CI must run every client test");
    }
    if !found {
        eprintln!("skipping: {program} not installed");
    }
    found
}

/// Deterministic pseudo-random bytes for transfer tests.
pub fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// How often [`wait_for`] looks again.
const POLL: Duration = Duration::from_millis(15);

/// Waits (bounded) until the server has read `n` bytes of the running upload (STAT says).
pub fn await_received(c: &mut Ctrl, n: usize) {
    let says = format!("{n} bytes");
    assert!(
        wait_for(Duration::from_secs(10), || c
            .cmd("STAT")
            .text()
            .contains(&says))
        .is_some(),
        "server never read the data"
    );
}

/// Polls `cond` until it holds or `limit` has passed: how long it took, or `None` on
/// timeout. The one way a test waits for something to happen (a server to answer, a file
/// to appear, a ban to spread, a session to end), instead of sleeping and hoping.
pub fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if cond() {
            return Some(start.elapsed());
        }
        if start.elapsed() >= limit {
            return None;
        }
        // The poll interval: what is awaited is `cond`.
        std::thread::sleep(POLL);
    }
}

/// The first line the server sends on `stream` (its greeting), or whatever arrived before
/// it closed or 10 s passed: "" when nothing did.
pub fn first_line(stream: TcpStream) -> String {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut line = String::new();
    let _ = BufReader::new(stream).read_line(&mut line);
    line
}

/// The greeting of a fresh connection to `addr`; "" when it cannot connect or nothing came.
pub fn greeting(addr: SocketAddr) -> String {
    TcpStream::connect(addr).map(first_line).unwrap_or_default()
}

/// A connection to `addr` whose PROXY v1 header names `client`, as a balancer's would.
pub fn proxied_as(addr: SocketAddr, client: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let header = format!("PROXY TCP4 {client} 127.0.0.1 40100 {}\r\n", addr.port());
    s.write_all(header.as_bytes())
        .expect("write the PROXY header");
    s
}

/// A number that differs from call to call and from run to run.
pub fn random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.write_u32(std::process::id());
    h.finish()
}

/// A loopback address of the test's own, 127.x.y.z at random outside 127.0.0.0/16 (where
/// the addresses tests name are). A server listening there binds its passive ports there
/// too, where (but for a one-in-sixteen-million draw) no socket of another test or of a
/// concurrent run is.
pub fn own_loopback() -> IpAddr {
    let r = random();
    let byte = |shift: u32| 1 + ((r >> shift) % 254) as u8;
    IpAddr::V4(Ipv4Addr::new(127, byte(0), byte(8), byte(16)))
}

/// Sets `cfg` to listen on a loopback address of its own with `n` passive ports there, from
/// [`quiet_ports`]: a range no other socket holds or can be handed by the kernel.
pub fn own_passive_range(cfg: &mut Config, n: u16) {
    cfg.listen = vec![SocketAddr::new(own_loopback(), 0)];
    cfg.passive_ports = Some(quiet_ports(n));
}

/// The kernel's ephemeral ports begin here: port-0 binds and outgoing connections take
/// their local port from this number up.
fn ephemeral_floor() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768)
}

/// Every local port some TCP socket on this machine has now (as /proc/net/tcp{,6} list).
fn ports_in_use() -> std::collections::HashSet<u16> {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|text| {
            text.lines()
                .skip(1)
                .filter_map(|l| {
                    let local = l.split_whitespace().nth(1)?;
                    u16::from_str_radix(local.rsplit(':').next()?, 16).ok()
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `n` consecutive ports, at random below the kernel's ephemeral range (where no port-0
/// bind or outgoing connection lands) and used by no socket now: for what must be told a
/// number (a passive range, a daemon that cannot take a socket). Only something told the
/// same number could take one; on [`own_loopback`] nothing is.
pub fn quiet_ports(n: u16) -> wharf::config::PortRange {
    const LOWEST: u16 = 10_000;
    let top = ephemeral_floor().saturating_sub(n);
    assert!(top > LOWEST, "no room below the ephemeral range");
    let used = ports_in_use();
    for _ in 0..100 {
        let low = LOWEST + (random() % u64::from(top - LOWEST)) as u16;
        let high = low + n - 1;
        if !(low..=high).any(|p| used.contains(&p)) {
            return wharf::config::PortRange { low, high };
        }
    }
    panic!("no {n} unused ports below the ephemeral range");
}
