//! FTPS (RFC 4217) driven by a Rust client built on rustls: reply codes, policies, data
//! encryption, session resumption, implicit TLS and handshake abuse.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use wharf::config::{TlsData, TlsMode, TlsReuse};

use crate::harness::*;

fn client_config(s: &TestServer) -> Arc<ClientConfig> {
    client_config_from(&s.cert_path())
}

fn client_config_from(pem: &std::path::Path) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(pem).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

fn tls_connect(
    cfg: &Arc<ClientConfig>,
    tcp: TcpStream,
) -> StreamOwned<ClientConnection, TcpStream> {
    let name = ServerName::try_from("localhost").unwrap();
    let conn = ClientConnection::new(cfg.clone(), name).unwrap();
    let mut s = StreamOwned::new(conn, tcp);
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock).expect("handshake");
    }
    s
}

/// The control stream before and after AUTH TLS.
enum CtrlStream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
    Upgrading,
}

impl Read for CtrlStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            CtrlStream::Plain(s) => s.read(buf),
            CtrlStream::Tls(s) => s.read(buf),
            CtrlStream::Upgrading => Ok(0),
        }
    }
}

impl Write for CtrlStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            CtrlStream::Plain(s) => s.write(buf),
            CtrlStream::Tls(s) => s.write(buf),
            CtrlStream::Upgrading => Err(std::io::ErrorKind::NotConnected.into()),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            CtrlStream::Plain(s) => s.flush(),
            CtrlStream::Tls(s) => s.flush(),
            CtrlStream::Upgrading => Ok(()),
        }
    }
}

/// A control connection that can be upgraded with AUTH TLS.
struct FtpsCtrl {
    stream: CtrlStream,
    cfg: Arc<ClientConfig>,
    addr: SocketAddr,
}

impl FtpsCtrl {
    /// Plain connection; call `auth` to upgrade.
    fn plain(s: &TestServer) -> FtpsCtrl {
        FtpsCtrl::plain_with(s, client_config(s))
    }

    fn plain_with(s: &TestServer, cfg: Arc<ClientConfig>) -> FtpsCtrl {
        let tcp = TcpStream::connect(s.v4).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut c = FtpsCtrl {
            stream: CtrlStream::Plain(tcp),
            cfg,
            addr: s.v4,
        };
        assert_eq!(c.read_reply().0, 220);
        c
    }

    /// AUTH TLS, PBSZ 0, PROT P.
    fn explicit(s: &TestServer) -> FtpsCtrl {
        let mut c = FtpsCtrl::plain(s);
        c.auth();
        assert_eq!(c.cmd("PBSZ 0").0, 200);
        assert_eq!(c.cmd("PROT P").0, 200);
        c
    }

    fn implicit(s: &TestServer) -> FtpsCtrl {
        let addr = s.implicit.expect("implicit listener");
        let tcp = TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let cfg = client_config(s);
        let stream = tls_connect(&cfg, tcp);
        let mut c = FtpsCtrl {
            stream: CtrlStream::Tls(Box::new(stream)),
            cfg,
            addr,
        };
        assert_eq!(c.read_reply().0, 220);
        c
    }

    fn auth(&mut self) {
        self.auth_with("AUTH TLS");
    }

    fn auth_with(&mut self, line: &str) {
        assert_eq!(self.cmd(line).0, 234);
        // Swap the plain stream for a TLS one over the same socket.
        let CtrlStream::Plain(tcp) = std::mem::replace(&mut self.stream, CtrlStream::Upgrading)
        else {
            panic!("AUTH on a TLS connection");
        };
        self.stream = CtrlStream::Tls(Box::new(tls_connect(&self.cfg, tcp)));
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
        self.stream.flush().unwrap();
    }

    fn cmd(&mut self, line: &str) -> (u16, String) {
        self.send(format!("{line}\r\n").as_bytes());
        self.read_reply()
    }

    fn read_line(&mut self) -> String {
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        while !line.ends_with(b"\n") {
            let n = self.stream.read(&mut b).expect("read reply");
            assert!(n > 0, "connection closed mid-reply");
            line.push(b[0]);
        }
        String::from_utf8_lossy(&line).into_owned()
    }

    fn read_reply(&mut self) -> (u16, String) {
        let first = self.read_line();
        let code: u16 = first[..3].parse().unwrap();
        let mut text = first.clone();
        if first.as_bytes()[3] == b'-' {
            loop {
                let l = self.read_line();
                text.push_str(&l);
                if l.starts_with(&format!("{code} ")) {
                    break;
                }
            }
        }
        (code, text)
    }

    fn login(&mut self) {
        assert_eq!(self.cmd(&format!("USER {USER}")).0, 331);
        assert_eq!(self.cmd(&format!("PASS {PASS}")).0, 230);
    }

    fn epsv_port(&mut self) -> u16 {
        let (code, t) = self.cmd("EPSV");
        assert_eq!(code, 229, "{t}");
        t[t.find("(|||").unwrap() + 4..t.find("|)").unwrap()]
            .parse()
            .unwrap()
    }

    /// Opens a TLS data connection over EPSV.
    fn data(&mut self) -> StreamOwned<ClientConnection, TcpStream> {
        let port = self.epsv_port();
        let tcp = TcpStream::connect((self.addr.ip(), port)).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        tls_connect(&self.cfg, tcp)
    }
}

fn read_all(mut s: impl Read) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            // A peer that closes without close_notify still sent everything.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => panic!("data read: {e}"),
        }
    }
    out
}

#[test]
fn explicit_tls_transfers_and_resumes() {
    let s = TestServer::tls(|_| {});
    let data = bytes(700_000, 11);
    let mut c = FtpsCtrl::explicit(&s);
    c.login();
    assert_eq!(c.cmd("TYPE I").0, 200);
    // Upload.
    let mut d = c.data();
    assert_eq!(c.cmd("STOR up.bin").0, 150);
    d.write_all(&data).unwrap();
    d.conn.send_close_notify();
    d.flush().unwrap();
    drop(d);
    assert_eq!(c.read_reply().0, 226);
    assert_eq!(std::fs::read(s.path("up.bin")).unwrap(), data);
    // Download; the data connection resumes the control connection's session.
    let d = c.data();
    assert_eq!(
        d.conn.handshake_kind(),
        Some(rustls::HandshakeKind::Resumed),
        "data connection should resume"
    );
    assert_eq!(c.cmd("RETR up.bin").0, 150);
    assert_eq!(read_all(d), data);
    assert_eq!(c.read_reply().0, 226);
    // Listing.
    let d = c.data();
    assert_eq!(c.cmd("NLST").0, 150);
    assert_eq!(read_all(d), b"up.bin\r\n");
    assert_eq!(c.read_reply().0, 226);
}

#[test]
fn feat_and_rfc4217_reply_codes() {
    let s = TestServer::tls(|_| {});
    let mut plain = Ctrl::connect(s.v4);
    let feat = plain.cmd("FEAT").text();
    for f in [" AUTH TLS\r\n", " PBSZ\r\n", " PROT\r\n"] {
        assert!(feat.contains(f), "{feat}");
    }
    assert_eq!(plain.cmd("PBSZ 0").code, 503, "PBSZ before AUTH");
    assert_eq!(plain.cmd("PROT P").code, 503, "PROT before AUTH");
    assert_eq!(plain.cmd("CCC").code, 503);
    assert_eq!(plain.cmd("AUTH KERBEROS_V4").code, 504);
    let mut c = FtpsCtrl::plain(&s);
    c.auth();
    assert_eq!(c.cmd("AUTH TLS").0, 503, "second AUTH");
    assert_eq!(c.cmd("PROT P").0, 503, "PROT before PBSZ");
    assert_eq!(c.cmd("PBSZ 0").0, 200);
    assert_eq!(c.cmd("PROT S").0, 536);
    assert_eq!(c.cmd("PROT X").0, 504);
    assert_eq!(c.cmd("PROT C").0, 200);
    assert_eq!(c.cmd("CCC").0, 534);
    c.login();
    assert_eq!(c.cmd("NOOP").0, 200);
}

#[test]
fn auth_ssl_is_a_synonym() {
    let s = TestServer::tls(|_| {});
    let mut c = FtpsCtrl::plain(&s);
    c.auth_with("AUTH SSL");
    c.login();
}

#[test]
fn auth_refused_when_tls_is_off() {
    let s = TestServer::start();
    let mut c = Ctrl::connect(s.v4);
    assert_eq!(c.cmd("AUTH TLS").code, 502);
    assert!(!c.cmd("FEAT").text().contains("AUTH"));
    c.login(USER, PASS);
}

#[test]
fn tls_required_policy() {
    let s = TestServer::tls(|cfg| cfg.tls = TlsMode::Required);
    let mut plain = Ctrl::connect(s.v4);
    let r = plain.cmd("USER judge");
    assert_eq!(r.code, 534, "{}", r.text());
    assert!(r.text().contains("AUTH TLS"));
    assert_eq!(plain.cmd("PASS pw").code, 503);
    let mut c = FtpsCtrl::explicit(&s);
    c.login();
    // Anonymous exemption.
    let s = TestServer::tls(|cfg| {
        cfg.tls = TlsMode::Required;
        cfg.tls_exempt_anonymous = true;
    });
    let mut plain = Ctrl::connect(s.v4);
    plain.login("anonymous", "x");
    assert_eq!(plain.cmd("USER judge").code, 534);
}

#[test]
fn tls_data_required_policy() {
    let s = TestServer::tls(|cfg| cfg.tls_data = TlsData::Required);
    std::fs::write(s.path("f"), b"secret").unwrap();
    let mut c = FtpsCtrl::plain(&s);
    c.auth();
    c.login();
    c.epsv_port();
    let (code, text) = c.cmd("RETR f");
    assert_eq!(code, 521, "{text}");
    assert!(text.contains("PROT P"), "{text}");
    assert_eq!(c.cmd("PBSZ 0").0, 200);
    assert_eq!(c.cmd("PROT P").0, 200);
    let d = c.data();
    assert_eq!(c.cmd("RETR f").0, 150);
    assert_eq!(read_all(d), b"secret");
    assert_eq!(c.read_reply().0, 226);
}

#[test]
fn reuse_required_refuses_a_fresh_data_session() {
    let s = TestServer::tls(|cfg| cfg.tls_data_reuse = TlsReuse::Require);
    std::fs::write(s.path("f"), b"resumed only").unwrap();
    let mut c = FtpsCtrl::explicit(&s);
    c.login();
    // A data connection with a client that has no session to resume (a fresh config).
    let port = c.epsv_port();
    let tcp = TcpStream::connect((s.v4.ip(), port)).unwrap();
    let fresh = client_config(&s);
    let d = tls_connect(&fresh, tcp);
    assert_eq!(c.cmd("RETR f").0, 150);
    drop(d);
    let (code, text) = c.read_reply();
    assert_eq!(code, 425, "{text}");
    assert!(text.contains("resume"), "{text}");
    assert_eq!(c.cmd("NOOP").0, 200);
    // The client's own resumed session works.
    let d = c.data();
    assert_eq!(c.cmd("RETR f").0, 150);
    assert_eq!(read_all(d), b"resumed only");
    assert_eq!(c.read_reply().0, 226);
}

#[test]
fn prot_p_data_is_never_sent_in_clear() {
    let s = TestServer::tls(|cfg| cfg.data_connect_timeout = 2);
    let marker = b"MARKER-1234567890-IN-CLEAR".repeat(100);
    std::fs::write(s.path("f"), &marker).unwrap();
    let mut c = FtpsCtrl::explicit(&s);
    c.login();
    let port = c.epsv_port();
    let mut raw = TcpStream::connect((s.v4.ip(), port)).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(c.cmd("RETR f").0, 150);
    // A plain client on the data port: it speaks garbage instead of a ClientHello.
    raw.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let got = read_all_lossy(&mut raw);
    assert!(
        !got.windows(6).any(|w| w == b"MARKER"),
        "file bytes leaked in clear"
    );
    let (code, _) = c.read_reply();
    assert!(code == 522 || code == 425, "{code}");
    assert_eq!(c.cmd("NOOP").0, 200);
}

fn read_all_lossy(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    out
}

#[test]
fn implicit_tls_with_prot_p_by_default() {
    let s = TestServer::tls(|_| {});
    std::fs::write(s.path("f"), b"implicit").unwrap();
    let mut c = FtpsCtrl::implicit(&s);
    c.login();
    let d = c.data();
    assert_eq!(c.cmd("RETR f").0, 150);
    assert_eq!(read_all(d), b"implicit");
    assert_eq!(c.read_reply().0, 226);
    assert_eq!(c.cmd("QUIT").0, 221);
}

#[test]
fn implicit_port_never_speaks_plain_text() {
    let s = TestServer::tls(|_| {});
    let addr = s.implicit.unwrap();
    let mut raw = TcpStream::connect(addr).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    raw.write_all(b"USER judge\r\n").unwrap();
    let got = read_all_lossy(&mut raw);
    assert!(
        !got.starts_with(b"220") && !got.windows(3).any(|w| w == b"331"),
        "{got:?}"
    );
    // Random bytes, then a well-behaved client is still served.
    let mut raw = TcpStream::connect(addr).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    raw.write_all(&bytes(5000, 12)).unwrap();
    let _ = read_all_lossy(&mut raw);
    let mut c = FtpsCtrl::implicit(&s);
    c.login();
}

#[test]
fn stalled_or_garbage_handshakes_end_quickly_and_hurt_no_one() {
    let s = TestServer::tls(|cfg| cfg.tls_handshake_timeout = 1);
    // Plain text after AUTH TLS.
    let mut c = Ctrl::connect(s.v4);
    assert_eq!(c.cmd("AUTH TLS").code, 234);
    c.send_raw(b"USER judge\r\n");
    let start = Instant::now();
    let rest = c.drain();
    assert!(!rest.windows(3).any(|w| w == b"331"), "{rest:?}");
    assert!(start.elapsed() < Duration::from_secs(10));
    // A client that stalls mid-handshake on the implicit port.
    let start = Instant::now();
    let mut stall = TcpStream::connect(s.implicit.unwrap()).unwrap();
    stall
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let _ = read_all_lossy(&mut stall);
    assert!(start.elapsed() < Duration::from_secs(10));
    // A client that stalls after AUTH.
    let mut c = Ctrl::connect(s.v4);
    assert_eq!(c.cmd("AUTH TLS").code, 234);
    let start = Instant::now();
    c.drain();
    assert!(start.elapsed() < Duration::from_secs(10));
    // Others are served throughout.
    let mut ok = FtpsCtrl::explicit(&s);
    ok.login();
}

#[test]
fn active_mode_under_prot_p() {
    let s = TestServer::tls(|_| {});
    std::fs::write(s.path("f"), b"active tls").unwrap();
    let mut c = FtpsCtrl::explicit(&s);
    c.login();
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    assert_eq!(c.cmd(&format!("EPRT |1|127.0.0.1|{port}|")).0, 200);
    assert_eq!(c.cmd("RETR f").0, 150);
    let (tcp, _) = l.accept().unwrap();
    // wharf is the TLS server on the data connection even though it connected.
    let d = tls_connect(&c.cfg, tcp);
    assert_eq!(read_all(d), b"active tls");
    assert_eq!(c.read_reply().0, 226);
}

#[test]
fn serve_tls_auto_generates_and_reuses_a_certificate() {
    // Served from the current directory, as in `cd /srv/x && wharf serve --root .`.
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let run = |state: &std::path::Path| {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_wharf"))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--root",
                ".",
                "--tls",
                "auto",
            ])
            .current_dir(dir.path())
            .env("XDG_STATE_HOME", state)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        (
            line,
            String::from_utf8_lossy(&out.stderr).into_owned(),
            out.status,
        )
    };
    let (line, log, _) = run(state.path());
    assert!(line.contains("sha256"), "{line}{log}");
    let key = state.path().join("wharf").join(wharf::tls::GENERATED_KEY);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let served: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(
        served.is_empty(),
        "nothing written to the served folder: {served:?}"
    );
    let (line2, _, _) = run(state.path());
    let fp = |l: &str| l.split("sha256 ").nth(1).map(|s| s.trim().to_string());
    assert_eq!(fp(&line), fp(&line2), "certificate reused on restart");
    // A state directory inside the served root: wharf refuses to start and says why.
    let (line3, log3, status) = run(&dir.path().join("state"));
    assert!(!status.success() && line3.is_empty(), "{line3}");
    assert!(
        log3.contains("tls_dir") && log3.contains("inside the served root"),
        "{log3}"
    );
    assert!(!dir.path().join("state").exists());
}

#[test]
fn certificate_reload_keeps_sessions_and_serves_the_new_certificate() {
    let gen_a = tempfile::tempdir().unwrap();
    let gen_b = tempfile::tempdir().unwrap();
    let a = wharf::tls::load(
        &wharf::tls::CertSource::Generated {
            dir: gen_a.path().to_path_buf(),
        },
        &[],
    )
    .unwrap();
    let b = wharf::tls::load(
        &wharf::tls::CertSource::Generated {
            dir: gen_b.path().to_path_buf(),
        },
        &[],
    )
    .unwrap();
    assert_ne!(a.fingerprint, b.fingerprint);
    let live = tempfile::tempdir().unwrap();
    let (cert, key) = (live.path().join("cert.pem"), live.path().join("key.pem"));
    let install = |from: &std::path::Path| {
        std::fs::copy(from.join(wharf::tls::GENERATED_CERT), &cert).unwrap();
        std::fs::copy(from.join(wharf::tls::GENERATED_KEY), &key).unwrap();
    };
    install(gen_a.path());
    let (c2, k2) = (cert.clone(), key.clone());
    let s = TestServer::tls(move |cfg| {
        cfg.tls_cert = Some(c2);
        cfg.tls_key = Some(k2);
    });
    let trust_a = client_config_from(&gen_a.path().join(wharf::tls::GENERATED_CERT));
    let trust_b = client_config_from(&gen_b.path().join(wharf::tls::GENERATED_CERT));
    let connect = |cfg: &Arc<ClientConfig>| -> Result<(), String> {
        let tcp = TcpStream::connect(s.implicit.unwrap()).unwrap();
        let conn =
            ClientConnection::new(cfg.clone(), ServerName::try_from("localhost").unwrap()).unwrap();
        let mut st = StreamOwned::new(conn, tcp);
        while st.conn.is_handshaking() {
            st.conn
                .complete_io(&mut st.sock)
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    };
    assert!(connect(&trust_a).is_ok());
    let mut old = FtpsCtrl::plain_with(&s, trust_a.clone());
    old.auth();
    old.login();
    // A broken file is refused and the old certificate stays.
    std::fs::write(&cert, "garbage").unwrap();
    assert!(s.shared.reload_tls().is_err());
    assert!(connect(&trust_a).is_ok());
    install(gen_b.path());
    s.shared.reload_tls().unwrap();
    assert!(connect(&trust_b).is_ok());
    assert!(connect(&trust_a).is_err());
    assert_eq!(
        old.cmd("NOOP").0,
        200,
        "a running session survives the reload"
    );
}

#[test]
fn per_listener_and_per_user_policies() {
    let s = TestServer::tls(|cfg| {
        let mut strict = wharf::config::ListenerConfig::new("127.0.0.1:0".parse().unwrap(), false);
        strict.tls = Some(TlsMode::Required);
        cfg.listeners.push(strict);
        let mut bob = wharf::config::UserConfig::new("bob", cfg.users[0].password.clone());
        bob.tls = Some(TlsMode::Required);
        cfg.users.push(bob);
    });
    let strict = *s.addrs.last().unwrap();
    assert_ne!(strict, s.v4);
    // The default listener lets judge in without TLS, but not bob.
    let mut c = Ctrl::connect(s.v4);
    assert_eq!(c.cmd("USER bob").code, 534);
    c.login(USER, PASS);
    // The strict listener wants TLS from everyone.
    let mut c = Ctrl::connect(strict);
    assert_eq!(c.cmd("USER judge").code, 534);
    assert_eq!(c.cmd("AUTH TLS").code, 234);
}
