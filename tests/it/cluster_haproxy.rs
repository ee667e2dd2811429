//! Three wharf nodes (separate processes) behind HAProxy with PROXY v2, sharing a Garage
//! bucket and PostgreSQL, driven through the balancer by real clients. HAProxy runs the
//! shipped `dist/haproxy/wharf.cfg`, with this machine's loopback addresses and free ports
//! put in place of the example ones.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::clients_util::*;
use crate::harness::*;
use crate::pg::Postgres;
use crate::s3::{Garage, block, free_port, visible};

const WHARF: &str = env!("CARGO_BIN_EXE_wharf");
const PORTS: u16 = 40; // passive ports per node

struct Node {
    ip: String,
    port: u16,
    passive: (u16, u16),
    child: Option<Child>,
    config: PathBuf,
    log: PathBuf,
}

impl Node {
    fn start(&mut self) {
        let log = std::fs::File::create(&self.log).unwrap();
        self.child = Some(
            Command::new(WHARF)
                .args(["serve", "--config"])
                .arg(&self.config)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap(),
        );
        wait_for(&format!("{}:{}", self.ip, self.port), &self.log);
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill(); // SIGKILL
            let _ = c.wait();
        }
    }

    fn addr(&self) -> SocketAddr {
        format!("{}:{}", self.ip, self.port).parse().unwrap()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

fn wait_for(addr: &str, log: &Path) {
    let start = Instant::now();
    while TcpStream::connect(addr).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{addr} did not start: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A run of `3 × PORTS` ports free on 127.0.0.1 (the balancer's side).
fn passive_base() -> u16 {
    for _ in 0..50 {
        let base = 20_000 + free_port() % 10_000;
        let all_free =
            (base..base + 3 * PORTS).all(|p| TcpListener::bind(("127.0.0.1", p)).is_ok());
        if all_free {
            return base;
        }
    }
    panic!("no free passive port range");
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
        let base = passive_base();
        let hash = wharf::auth::hash_password(PASS.as_bytes());
        let mut nodes = Vec::new();
        for i in 0..3u16 {
            let ip = format!("127.0.0.{}", 11 + i);
            let port = free_port();
            let passive = (base + i * PORTS, base + i * PORTS + PORTS - 1);
            let mut limited = wharf::config::UserConfig::new("limited", hash.clone());
            limited.max_sessions = Some(2);
            let config = wharf::Config {
                listen: vec![format!("{ip}:{port}").parse().unwrap()],
                root: "storage:shared".into(),
                anonymous: wharf::config::AnonymousMode::Off,
                passive_ports: Some(format!("{}-{}", passive.0, passive.1).parse().unwrap()),
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
            let mut n = Node {
                ip,
                port,
                passive,
                child: None,
                config: path,
                log: dir.path().join(format!("node{i}.log")),
            };
            n.start();
            nodes.push(n);
        }
        // The shipped balancer configuration, pointed at this machine.
        let port = free_port();
        let mut cfg = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/dist/haproxy/wharf.cfg"
        ))
        .unwrap()
        .replace("bind :21\n", &format!("bind 127.0.0.1:{port}\n"))
        .replace("inter 2s fall 2 rise 2", "inter 500ms fall 1 rise 1")
        // The test's descriptor limit, not a production one.
        .replace("maxconn 50000", "maxconn 2000");
        for (i, n) in nodes.iter().enumerate() {
            let (lo, hi) = (50_000 + 1000 * i as u16, 50_999 + 1000 * i as u16);
            cfg = cfg
                .replace(
                    &format!("bind :{lo}-{hi}"),
                    &format!("bind 127.0.0.1:{}-{}", n.passive.0, n.passive.1),
                )
                .replace(&format!("10.0.0.{}:2121", 11 + i), &n.addr().to_string())
                .replace(&format!("10.0.0.{}", 11 + i), &n.ip);
        }
        assert!(
            !cfg.contains("10.0.0."),
            "every example address replaced:\n{cfg}"
        );
        let cfg_path = dir.path().join("haproxy.cfg");
        std::fs::write(&cfg_path, &cfg).unwrap();
        let log = std::fs::File::create(dir.path().join("haproxy.log")).unwrap();
        let haproxy = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&cfg_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start haproxy");
        wait_for(
            &format!("127.0.0.1:{port}"),
            &dir.path().join("haproxy.log"),
        );
        // Let the first health checks mark every node up.
        std::thread::sleep(Duration::from_millis(1200));
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
            .position(|n| (n.passive.0..=n.passive.1).contains(&port))
            .expect("a port of some node")
    }
}

/// Logs in through the balancer in TYPE I.
fn session(c: &Cluster, user: &str) -> (Ctrl, Reply) {
    let mut s = Ctrl::connect(c.lb());
    assert_eq!(s.cmd(&format!("USER {user}")).code, 331);
    let r = s.cmd(&format!("PASS {PASS}"));
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
    std::thread::sleep(Duration::from_millis(300));
    c.nodes[victim].kill();
    let _ = s3.drain(); // the balancer closes the session of the dead node
    assert!(
        !visible(&g, "cluster", "/killed.bin"),
        "a partial object appeared"
    );
    let start = Instant::now();
    let stored = loop {
        let (mut s4, r) = session(&c, USER);
        assert_eq!(r.code, 230, "{}", r.text());
        let (_, done) = s4.stor("STOR killed.bin", b"whole");
        if done.code == 226 || start.elapsed() > Duration::from_secs(15) {
            break done;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
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
    std::thread::sleep(Duration::from_millis(1200));
    for _ in 0..3 {
        let s = first_line(c.lb());
        assert!(s.starts_with("421"), "banned everywhere: {s}");
    }
}

fn first_line(addr: SocketAddr) -> String {
    use std::io::BufRead;
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut line = String::new();
    let _ = std::io::BufReader::new(s).read_line(&mut line);
    line
}
