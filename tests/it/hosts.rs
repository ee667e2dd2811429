//! Virtual hosts (RFC 7151): `HOST` before USER picks a `[[host]]` with its own users,
//! root and banner; the TLS SNI name picks its certificate and the host; without either the
//! default host answers as before.

use std::path::Path;
use std::process::Command;

use wharf::config::{HostConfig, UserConfig};

use crate::harness::*;

/// A host named `name` (and `www.<name>`) serving `root`, with one user `user`/`pw`.
fn host(name: &str, root: &Path, user: &str, cert: Option<(&Path, &Path)>) -> HostConfig {
    HostConfig {
        name: name.into(),
        aliases: vec![format!("www.{name}")],
        root: Some(root.to_path_buf()),
        anonymous: None,
        anonymous_root: None,
        anonymous_quota_bytes: None,
        anonymous_quota_files: None,
        banner: Some(format!("Welcome to {name}.")),
        tls_cert: cert.map(|c| c.0.to_path_buf()),
        tls_key: cert.map(|c| c.1.to_path_buf()),
        users_file: None,
        users: vec![UserConfig::new(user, wharf::auth::hash_password(b"pw"))],
    }
}

/// A self-signed certificate whose subject is `name`, written to `dir`.
fn certificate(dir: &Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let mut params = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let (c, k) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c, k)
}

struct Hosts {
    server: TestServer,
    _dirs: Vec<tempfile::TempDir>,
}

/// The default host (user judge) and two virtual hosts, alpha.example (ann) and
/// beta.example (bob), each with a file of its own; with `tls`, each host its certificate.
fn two_hosts(tls: bool) -> Hosts {
    let (a, b, certs) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    std::fs::write(a.path().join("alpha-only.txt"), b"alpha").unwrap();
    std::fs::write(b.path().join("beta-only.txt"), b"beta").unwrap();
    let (ca, cb) = (
        certificate(certs.path(), "alpha.example"),
        certificate(certs.path(), "beta.example"),
    );
    let hosts = vec![
        host(
            "alpha.example",
            a.path(),
            "ann",
            tls.then_some((ca.0.as_path(), ca.1.as_path())),
        ),
        host(
            "beta.example",
            b.path(),
            "bob",
            tls.then_some((cb.0.as_path(), cb.1.as_path())),
        ),
    ];
    let setup = move |c: &mut wharf::Config| {
        c.hosts = hosts;
        // A host's data connections resume its control session as the default's do.
        c.tls_data_reuse = wharf::config::TlsReuse::Require;
    };
    let server = if tls {
        TestServer::tls(setup)
    } else {
        TestServer::with(setup)
    };
    std::fs::write(server.path("default-only.txt"), b"default").unwrap();
    Hosts {
        server,
        _dirs: vec![a, b, certs],
    }
}

fn names(c: &mut Ctrl) -> String {
    let (r, list) = c.retr("NLST");
    assert_eq!(r.code, 226, "{}", r.text());
    String::from_utf8_lossy(&list).into_owned()
}

#[test]
fn host_picks_the_users_root_and_banner() {
    let h = two_hosts(false);
    let s = &h.server;
    // No HOST: the default host, its users only.
    let mut c = Ctrl::connect(s.v4);
    assert_eq!(c.try_login("ann", "pw").code, 530);
    c.login(USER, PASS);
    assert!(names(&mut c).contains("default-only.txt"));
    // HOST after login, or after USER: 503.
    assert_eq!(c.cmd("HOST alpha.example").code, 503);
    let mut c = Ctrl::connect(s.v4);
    assert!(c.cmd("FEAT").text().contains(" HOST\r\n"));
    assert_eq!(
        c.cmd("HOST alpha.example").text(),
        "220 Welcome to alpha.example.\r\n"
    );
    c.login("ann", "pw");
    // `wharf who` and the dashboard show the host chosen.
    let shown: Vec<_> = s.shared.who.all().iter().map(|v| v.info()).collect();
    let ann = shown
        .iter()
        .find(|i| i.user.as_deref() == Some("ann"))
        .unwrap();
    assert_eq!(ann.host.as_deref(), Some("alpha.example"));
    let list = names(&mut c);
    assert!(list.contains("alpha-only.txt"), "{list}");
    assert!(
        !list.contains("default-only") && !list.contains("beta-only"),
        "{list}"
    );
    // An alias, any case; a user of another host cannot log in here.
    let mut c = Ctrl::connect(s.v4);
    assert_eq!(c.cmd("HOST WWW.Beta.Example").code, 220);
    assert_eq!(c.try_login("ann", "pw").code, 530);
    assert_eq!(c.try_login(USER, PASS).code, 530);
    let mut c = Ctrl::connect(s.v4);
    assert_eq!(c.cmd("HOST beta.example").code, 220);
    c.login("bob", "pw");
    assert!(names(&mut c).contains("beta-only.txt"));
    // Unknown: 504, and the session stays on the default host.
    let mut c = Ctrl::connect(s.v4);
    assert_eq!(
        c.cmd("HOST nowhere.example").text(),
        "504 Unknown host.\r\n"
    );
    assert_eq!(c.cmd("USER ann").code, 331);
    assert_eq!(c.cmd("HOST alpha.example").code, 503);
    // The connection's own address names the default host.
    let mut c = Ctrl::connect(s.v4);
    assert_eq!(c.cmd("HOST alpha.example").code, 220);
    assert_eq!(c.cmd("HOST 127.0.0.1").code, 220);
    c.login(USER, PASS);
    // REIN starts over on the default host.
    let mut c = Ctrl::connect(s.v4);
    assert_eq!(c.cmd("HOST alpha.example").code, 220);
    c.login("ann", "pw");
    assert_eq!(c.cmd("REIN").code, 220);
    assert_eq!(c.try_login("ann", "pw").code, 530);
}

#[test]
fn without_hosts_every_name_reaches_the_one_host() {
    let s = TestServer::start();
    let mut c = Ctrl::connect(s.v4);
    assert_eq!(c.cmd("HOST ftp.example.com").code, 220);
    assert_eq!(c.cmd("HOST").code, 501);
    c.login(USER, PASS);
}

/// The subject of the certificate the server presents after AUTH TLS for `sni`.
fn presented(port: u16, sni: &str) -> String {
    let out = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(["-starttls", "ftp", "-servername", sni])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find(|l| l.starts_with("subject="))
        .unwrap_or_else(|| panic!("no certificate: {text}"))
        .to_string()
}

#[test]
fn the_tls_name_picks_the_certificate_and_the_host() {
    if !have("openssl") || !have("curl") {
        return;
    }
    let h = two_hosts(true);
    let s = &h.server;
    let port = s.v4.port();
    assert!(presented(port, "alpha.example").contains("alpha.example"));
    assert!(presented(port, "www.beta.example").contains("beta.example"));
    // A name no host has: the default certificate.
    let default = presented(port, "other.example");
    assert!(
        !default.contains("alpha") && !default.contains("beta"),
        "{default}"
    );
    // curl sends SNI: the host's users and files, with no HOST command.
    let out = run(Command::new("curl")
        .args(["-s", "--ssl-reqd", "-k", "--list-only", "--max-time", "20"])
        .args(["--resolve", &format!("alpha.example:{port}:127.0.0.1")])
        .args(["-u", "ann:pw"])
        .arg(format!("ftp://alpha.example:{port}/")));
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        list.contains("alpha-only.txt") && !list.contains("beta"),
        "{list}"
    );
    // The same user through the other host's name is refused.
    let out = run(Command::new("curl")
        .args(["-s", "--ssl-reqd", "-k", "--list-only", "--max-time", "20"])
        .args(["--resolve", &format!("beta.example:{port}:127.0.0.1")])
        .args(["-u", "ann:pw"])
        .arg(format!("ftp://beta.example:{port}/")));
    assert!(!out.status.success());
    // Plain connections choose by HOST on the same port.
    let mut c = Ctrl::connect(s.v4);
    assert_eq!(c.cmd("HOST beta.example").code, 220);
    c.login("bob", "pw");
}

/// Speaks to the server over TLS with `sni`: implicit (the greeting), then explicit (AUTH
/// TLS, then HOST of another host and of its own). Returns the lines it read.
const TLS_CLIENT: &str = r#"
import socket, ssl, sys
implicit, explicit, sni = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
t = ctx.wrap_socket(socket.create_connection(("127.0.0.1", implicit)), server_hostname=sni)
print(t.makefile("rb").readline().decode().strip())
s = socket.create_connection(("127.0.0.1", explicit))
def line(sock):
    out = b""
    while not out.endswith(b"\r\n"):
        out += sock.recv(1)
    return out.decode().strip()
line(s)
s.sendall(b"AUTH TLS\r\n")
line(s)
t = ctx.wrap_socket(s, server_hostname=sni)
for host in ("beta.example", sni):
    t.sendall(b"HOST " + host.encode() + b"\r\n")
    print(line(t))
"#;

#[test]
fn under_tls_the_greeting_and_host_follow_the_tls_name() {
    if !have("python3") {
        return;
    }
    let h = two_hosts(true);
    let s = &h.server;
    let out = run(Command::new("python3").args([
        "-c",
        TLS_CLIENT,
        &s.implicit.unwrap().port().to_string(),
        &s.v4.port().to_string(),
        "alpha.example",
    ]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "220 Welcome to alpha.example.",
            "504 Host differs from the name given at the TLS handshake.",
            "220 Welcome to alpha.example.",
        ]
    );
}

/// HOST, then AUTH TLS without an SNI name: prints whether the certificate names the host.
const HOST_THEN_TLS: &str = r#"
import socket, ssl, sys
port, host = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port))
def line(sock):
    out = b""
    while not out.endswith(b"\r\n"):
        out += sock.recv(1)
    return out.decode().strip()
line(s)
if host != "-":
    s.sendall(b"HOST " + host.encode() + b"\r\n")
    print(line(s))
s.sendall(b"AUTH TLS\r\n")
line(s)
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
t = ctx.wrap_socket(s, server_hostname=None)
der = t.getpeercert(binary_form=True)
print("alpha" if b"alpha.example" in der else "beta" if b"beta.example" in der else "default")
"#;

#[test]
fn host_before_auth_picks_the_certificate_without_sni() {
    if !have("python3") {
        return;
    }
    let h = two_hosts(true);
    let port = h.server.v4.port().to_string();
    let run_with = |host: &str| {
        let out = run(Command::new("python3").args(["-c", HOST_THEN_TLS, &port, host]));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(
        run_with("beta.example"),
        "220 Welcome to beta.example.\nbeta"
    );
    assert_eq!(
        run_with("www.alpha.example"),
        "220 Welcome to alpha.example.\nalpha"
    );
    assert_eq!(run_with("-"), "default");
}
