//! Three wharf nodes (separate processes) behind HAProxy with PROXY v2, sharing a Garage
//! bucket and PostgreSQL, driven through the balancer by real clients. HAProxy runs the
//! shipped `dist/haproxy/wharf.cfg`, with this machine's addresses put in place of the
//! example ones: each node on a loopback address of its own and port 0, and the balancer's
//! ports bound by the test and handed to HAProxy (`fd@`), so no port is guessed.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use wharf::config::PortRange;

use crate::clients_util::*;
use crate::harness::*;
use crate::pg::Postgres;
use crate::processes::{Wharf, inherit_fds, serve};
use crate::s3::{Garage, S3Server, await_parts, block, visible};

const PORTS: u16 = 40; // passive ports per node

struct Node {
    /// A loopback address of its own: its passive ports are bound there too.
    ip: IpAddr,
    passive: PortRange,
    wharf: Wharf,
}

impl Node {
    /// Starts a node on `ip`, port 0, with the configuration `config`.
    fn start(ip: IpAddr, passive: PortRange, config: &Path, log: &Path) -> Node {
        let wharf = Wharf::start(serve().arg("--config").arg(config), log);
        Node { ip, passive, wharf }
    }

    fn addr(&self) -> SocketAddr {
        self.wharf.ftp()
    }
}

/// The balancer's listening sockets, bound here before HAProxy starts: the control port
/// and `3 × PORTS` consecutive passive ports on 127.0.0.1 (the nodes announce 127.0.0.1).
struct Frontends {
    control: TcpListener,
    passive: Vec<TcpListener>,
}

impl Frontends {
    fn bind() -> Frontends {
        let control = TcpListener::bind("127.0.0.1:0").unwrap();
        for _ in 0..20 {
            let range = quiet_ports(3 * PORTS);
            let passive: Result<Vec<TcpListener>, _> = (range.low..=range.high)
                .map(|p| TcpListener::bind(("127.0.0.1", p)))
                .collect();
            if let Ok(passive) = passive {
                return Frontends { control, passive };
            }
        }
        panic!("no run of {} ports to bind", 3 * PORTS);
    }

    /// Node `i`'s passive ports (consecutive).
    fn of_node(&self, i: usize) -> &[TcpListener] {
        let n = usize::from(PORTS);
        &self.passive[i * n..(i + 1) * n]
    }

    /// Node `i`'s passive port range.
    fn range(&self, i: usize) -> PortRange {
        let port = |l: &TcpListener| l.local_addr().unwrap().port();
        let ports = self.of_node(i);
        PortRange {
            low: port(&ports[0]),
            high: port(&ports[ports.len() - 1]),
        }
    }

    /// `bind fd@N` lines for node `i`'s passive ports.
    fn binds(&self, i: usize) -> String {
        self.of_node(i)
            .iter()
            .map(|l| format!("bind fd@{}", l.as_raw_fd()))
            .collect::<Vec<_>>()
            .join("\n    ")
    }
}

struct Cluster {
    nodes: Vec<Node>,
    haproxy: Child,
    /// The balancer's control port on 127.0.0.1.
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.haproxy.kill();
        let _ = self.haproxy.wait();
    }
}

impl Cluster {
    fn start(pg: &Postgres, g: &Garage) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let frontends = Frontends::bind();
        let hash = wharf::auth::hash_password(PASS.as_bytes());
        let mut nodes = Vec::new();
        for i in 0..3 {
            let ip = own_loopback();
            let passive = frontends.range(i);
            let mut limited = wharf::config::UserConfig::new("limited", hash.clone());
            limited.max_sessions = Some(2);
            let config = wharf::Config {
                listen: vec![SocketAddr::new(ip, 0)],
                root: "storage:shared".into(),
                anonymous: Some(wharf::config::AnonymousMode::Off),
                passive_ports: Some(passive),
                public_address: Some("127.0.0.1".parse().unwrap()),
                proxy_protocol: wharf::proxy::ProxyProtocol::V2,
                proxy_trusted: vec!["127.0.0.1/32".parse().unwrap()],
                login_failure_delay_ms: 0,
                max_login_failures: 1,
                cluster: wharf::cluster::ClusterConfig {
                    database_url: Some(pg.url()),
                    node: Some(format!("node{}", i + 1)),
                    heartbeat: 1,
                    node_timeout: 3,
                    ..Default::default()
                },
                storages: vec![g.storage("shared", "cluster")],
                users: vec![wharf::config::UserConfig::new(USER, hash.clone()), limited],
                ..wharf::Config::default()
            };
            let path = dir.path().join(format!("node{i}.toml"));
            std::fs::write(&path, toml::to_string(&config).unwrap()).unwrap();
            let log = dir.path().join(format!("node{i}.log"));
            nodes.push(Node::start(ip, passive, &path, &log));
        }
        // The shipped balancer configuration, pointed at this machine, with a stats socket
        // to see the health checks by.
        let port = frontends.control.local_addr().unwrap().port();
        let stats = dir.path().join("haproxy.sock");
        let mut cfg = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/dist/haproxy/wharf.cfg"
        ))
        .unwrap()
        .replace(
            "global\n",
            &format!("global\n    stats socket {}\n", stats.display()),
        )
        .replace(
            "bind :21\n",
            &format!("bind fd@{}\n", frontends.control.as_raw_fd()),
        )
        .replace("inter 2s fall 2 rise 2", "inter 500ms fall 1 rise 1");
        // As shipped: no fixed maxconn that the machine's descriptor limit cannot hold.
        assert!(
            !cfg.lines().any(|l| l.trim_start().starts_with("maxconn")),
            "{cfg}"
        );
        for (i, n) in nodes.iter().enumerate() {
            let (lo, hi) = (50_000 + 1000 * i as u16, 50_999 + 1000 * i as u16);
            cfg = cfg
                .replace(&format!("bind :{lo}-{hi}"), &frontends.binds(i))
                .replace(&format!("10.0.0.{}:2121", 11 + i), &n.addr().to_string())
                .replace(&format!("10.0.0.{}", 11 + i), &n.ip.to_string());
        }
        assert!(
            !cfg.contains("10.0.0.") && !cfg.contains("bind :"),
            "every example address replaced:\n{cfg}"
        );
        let cfg_path = dir.path().join("haproxy.cfg");
        std::fs::write(&cfg_path, &cfg).unwrap();
        let log = std::fs::File::create(dir.path().join("haproxy.log")).unwrap();
        let mut cmd = Command::new("haproxy");
        cmd.arg("-db")
            .arg("-f")
            .arg(&cfg_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let mut fds = vec![frontends.control.as_raw_fd()];
        fds.extend(frontends.passive.iter().map(|l| l.as_raw_fd()));
        inherit_fds(&mut cmd, fds);
        let mut haproxy = cmd.spawn().expect("start haproxy");
        // HAProxy holds them now.
        drop(frontends);
        // Up once its health checks have marked every node up.
        let mut ended = false;
        wait_for(Duration::from_secs(20), || {
            ended = haproxy.try_wait().ok().flatten().is_some();
            ended || nodes_up(&stats) == 3
        });
        if ended || nodes_up(&stats) != 3 {
            let _ = haproxy.kill();
            panic!(
                "haproxy did not see the nodes up: {}",
                std::fs::read_to_string(dir.path().join("haproxy.log")).unwrap_or_default()
            );
        }
        Cluster {
            nodes,
            haproxy,
            port,
            _dir: dir,
        }
    }

    fn lb(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn url(&self, rel: &str) -> String {
        format!("ftp://{USER}:{PASS}@127.0.0.1:{}/{rel}", self.port)
    }

    /// Which node a passive port belongs to.
    fn node_of(&self, port: u16) -> usize {
        self.nodes
            .iter()
            .position(|n| (n.passive.low..=n.passive.high).contains(&port))
            .expect("a port of some node")
    }
}

/// How many of the control backend's servers HAProxy's health checks mark up, as its
/// stats socket at `stats` says (`show stat`: CSV, the status in field 17).
fn nodes_up(stats: &Path) -> usize {
    let Ok(mut s) = std::os::unix::net::UnixStream::connect(stats) else {
        return 0;
    };
    let mut csv = String::new();
    if s.write_all(b"show stat\n").is_err() || s.read_to_string(&mut csv).is_err() {
        return 0;
    }
    csv.lines()
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f.len() > 17 && f[0] == "wharf_control" && f[1].starts_with("node"))
        .filter(|f| f[17] == "UP")
        .count()
}

/// Logs in through the balancer in TYPE I.
fn session(c: &Cluster, user: &str) -> (Ctrl, Reply) {
    let mut s = Ctrl::connect(c.lb());
    let r = s.try_login(user, PASS);
    if r.code == 230 {
        assert_eq!(s.cmd("TYPE I").code, 200);
    }
    (s, r)
}

/// EPSV through the balancer: the port, and the data connection.
fn epsv(s: &mut Ctrl) -> (u16, TcpStream) {
    let d = s.epsv();
    (d.peer_addr().unwrap().port(), d)
}

#[test]
fn three_nodes_behind_haproxy() {
    if !have("haproxy") || !have("curl") || !have("python3") {
        return;
    }
    let Some(pg) = Postgres::start() else { return };
    let Some(g) = Garage::start() else { return };
    let mut c = Cluster::start(&pg, &g);
    let home = scratch();

    // curl: upload through one node, list and download through others, EPSV and PASV.
    let data = bytes(3 * crate::s3::PART / 2, 77);
    put_file(&home.path().join("up.bin"), &data);
    for (i, flag) in ["--ftp-pasv", "--disable-epsv"].iter().enumerate() {
        let name = format!("curl{i}.bin");
        let mut up = client("curl", home.path());
        up.args(["-sS", "--max-time", "60", flag, "-T"])
            .arg(home.path().join("up.bin"))
            .arg(c.url(&name));
        ok(&exec0(&mut up), "curl upload through the balancer");
        let got = home.path().join(format!("got{i}.bin"));
        let mut down = client("curl", home.path());
        down.args(["-sS", "--max-time", "60", flag, "-o"])
            .arg(&got)
            .arg(c.url(&name));
        ok(&exec0(&mut down), "curl download through the balancer");
        assert_file(&got, &data);
    }
    let mut list = client("curl", home.path());
    list.args(["-sS", "--max-time", "60", "-l"]).arg(c.url(""));
    assert_eq!(
        ok(&exec0(&mut list), "curl -l").replace('\r', ""),
        "curl0.bin\ncurl1.bin\n"
    );
    // ftplib: a round trip of its own through the balancer (several nodes serve it).
    let script = format!(
        "import ftplib, io\n\
         f = ftplib.FTP(); f.connect('127.0.0.1', {port}); f.login('{USER}', '{PASS}')\n\
         f.storbinary('STOR py.txt', io.BytesIO(b'from ftplib'))\n\
         g = ftplib.FTP(); g.connect('127.0.0.1', {port}); g.login('{USER}', '{PASS}')\n\
         b = io.BytesIO(); g.retrbinary('RETR py.txt', b.write)\n\
         assert b.getvalue() == b'from ftplib', b.getvalue()\n\
         assert 'py.txt' in g.nlst()\n\
         g.set_pasv(True); g.sendcmd('TYPE I'); assert g.size('curl0.bin') == {len}\n\
         f.quit(); g.quit()\n",
        port = c.port,
        len = data.len()
    );
    let mut py = client("python3", home.path());
    py.arg("-c").arg(script);
    ok(&exec0(&mut py), "ftplib through the balancer");

    // lftp: a small tree up and back down (parallel transfers land on several nodes).
    if have("lftp") {
        let local = home.path().join("tree");
        for i in 0..12 {
            put_file(
                &local.join(format!("d{}/f{i}", i % 3)),
                &bytes(i * 1000 + 7, i as u64),
            );
        }
        let back = home.path().join("back");
        let mut lftp = client("lftp", home.path());
        lftp.arg("-c").arg(format!(
            "set ftp:ssl-allow no; set net:max-retries 1; set net:timeout 10; \
             set cmd:fail-exit yes; open {}; mirror -R --parallel=3 '{}' /tree; \
             mirror --parallel=3 /tree '{}'; bye",
            c.url(""),
            local.display(),
            back.display()
        ));
        ok(&exec0(&mut lftp), "lftp mirror through the balancer");
        assert_same_tree(&local, &back);
    }

    // Two STORs of one name through two nodes: one 226, one 450.
    let (mut s1, _) = session(&c, USER);
    let (mut s2, _) = session(&c, USER);
    let (p1, mut d1) = epsv(&mut s1);
    let (p2, _d2) = epsv(&mut s2);
    assert_ne!(
        c.node_of(p1),
        c.node_of(p2),
        "the balancer spread the sessions"
    );
    assert_eq!(s1.cmd("STOR race.bin").code, 150);
    d1.write_all(&bytes(1000, 1)).unwrap();
    let r = s2.cmd("STOR race.bin");
    assert_eq!(r.code, 450, "{}", r.text());
    drop(d1);
    assert_eq!(s1.read_reply().code, 226);

    // Per-user session limit across nodes (2 for `limited`).
    let (_l1, r1) = session(&c, "limited");
    let (_l2, r2) = session(&c, "limited");
    let (_l3, r3) = session(&c, "limited");
    assert_eq!((r1.code, r2.code), (230, 230));
    assert_eq!(r3.code, 421, "{}", r3.text());

    // SIGKILL a node mid-upload: nothing visible, the lock freed, the others serve.
    let (mut s3, _) = session(&c, USER);
    let (p3, mut d3) = epsv(&mut s3);
    let victim = c.node_of(p3);
    assert_eq!(s3.cmd("STOR killed.bin").code, 150);
    d3.write_all(&bytes(crate::s3::PART + 1000, 2)).unwrap();
    await_parts(&g, "cluster", "/killed.bin", crate::s3::PART);
    c.nodes[victim].wharf.kill();
    let _ = s3.drain(); // the balancer closes the session of the dead node
    assert!(
        !visible(&g, "cluster", "/killed.bin"),
        "a partial object appeared"
    );
    // Refused (450) while the dead node's lock stands, until its node_timeout.
    let mut stored = None;
    wait_for(Duration::from_secs(15), || {
        let (mut s4, r) = session(&c, USER);
        assert_eq!(r.code, 230, "{}", r.text());
        let (_, done) = s4.stor("STOR killed.bin", b"whole");
        let code = done.code;
        stored = Some(done);
        code == 226
    });
    let stored = stored.expect("one STOR tried");
    assert_eq!(
        stored.code,
        226,
        "the dead node's lock was released: {}",
        stored.text()
    );
    let store = g.store("cluster");
    let p = wharf::vfs::VPath::root().resolve(b"/killed.bin").unwrap();
    assert_eq!(
        block(async move { store.stat(&p).await.unwrap().size }),
        5,
        "the surviving upload is the object"
    );

    // A node reached directly: without a header, or from an untrusted address, refused.
    let alive = &c.nodes[(victim + 1) % 3];
    let mut direct = TcpStream::connect(alive.addr()).unwrap();
    direct
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 16];
    assert!(matches!(direct.read(&mut buf), Ok(0) | Err(_)), "no header");
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(&SocketAddr::from(([127, 0, 0, 2], 0)).into())
        .unwrap();
    sock.connect(&alive.addr().into()).unwrap();
    let mut untrusted: TcpStream = sock.into();
    untrusted
        .write_all(b"PROXY TCP4 192.0.2.1 127.0.0.1 1000 21\r\n")
        .unwrap();
    untrusted
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert!(
        matches!(untrusted.read(&mut buf), Ok(0) | Err(_)),
        "untrusted source"
    );

    // Last (it bans the balancer's clients): a ban on one node holds on the others.
    let (mut bad, _) = {
        let mut s = Ctrl::connect(c.lb());
        s.cmd("USER judge");
        let r = s.cmd("PASS wrong");
        (s, r)
    };
    bad.cmd("USER judge");
    let r = bad.cmd("PASS wrong");
    assert_eq!(r.code, 421, "{}", r.text());
    // Three connections in a row (one per node, least connections first) all refused.
    let mut seen = Vec::new();
    let everywhere = wait_for(Duration::from_secs(5), || {
        seen = (0..3).map(|_| greeting(c.lb())).collect();
        seen.iter()
            .all(|l| l.starts_with("421") && l.contains("banned"))
    });
    let took = everywhere.unwrap_or_else(|| panic!("not banned everywhere: {seen:?}"));
    assert!(took < Duration::from_millis(1500), "took {took:?}");
}
