//! PROXY protocol on control and passive connections: the header's client is the client
//! everywhere (sessions, bans, the passive peer check); untrusted, missing or malformed
//! headers close the connection.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::harness::*;

fn proxied(f: impl FnOnce(&mut wharf::Config)) -> TestServer {
    TestServer::with(|c| {
        c.proxy_protocol = wharf::proxy::ProxyProtocol::Any;
        c.proxy_trusted = vec!["127.0.0.0/8".parse().unwrap()];
        f(c);
    })
}

/// Connects, sends a v1 header naming `client`, and reads the greeting.
fn via(addr: SocketAddr, client: &str) -> Ctrl {
    Ctrl::from_stream(proxied_as(addr, client))
}

/// Whether the server closes `s` without a word (within the header timeout).
fn closed_silently(mut s: TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 64];
    matches!(s.read(&mut buf), Ok(0) | Err(_))
}

#[test]
fn header_names_the_client_for_sessions_and_bans() {
    let s = proxied(|c| c.max_login_failures = 1);
    let mut c = via(s.v4, "192.0.2.9");
    c.login(USER, PASS);
    let clients: Vec<String> = s
        .shared
        .who
        .all()
        .iter()
        .map(|v| v.client.to_string())
        .collect();
    assert_eq!(clients, ["192.0.2.9"]);
    // Two failures from one proxied client ban that client, not the balancer.
    let mut bad = via(s.v4, "192.0.2.66");
    bad.cmd("USER judge");
    bad.cmd("PASS wrong");
    bad.cmd("USER judge");
    let r = bad.cmd("PASS wrong");
    assert!(r.code == 421 || r.code == 530, "{}", r.text());
    assert!(first_line(proxied_as(s.v4, "192.0.2.66")).starts_with("421 "));
    assert!(first_line(proxied_as(s.v4, "192.0.2.67")).starts_with("220 "));
}

#[test]
fn passive_connections_carry_the_header_too() {
    let s = proxied(|_| {});
    put_file_in(&s, "f.txt", b"through the balancer\n");
    let mut c = via(s.v4, "192.0.2.9");
    c.login(USER, PASS);
    assert_eq!(c.cmd("TYPE I").code, 200);
    let r = c.cmd("EPSV");
    assert_eq!(r.code, 229, "{}", r.text());
    let t = r.text();
    let port: u16 = t[t.find("(|||").unwrap() + 4..t.find("|)").unwrap()]
        .parse()
        .unwrap();
    // First a connection that names another client: refused by the peer check.
    let mut thief = TcpStream::connect(("127.0.0.1", port)).unwrap();
    thief
        .write_all(format!("PROXY TCP4 192.0.2.200 127.0.0.1 5000 {port}\r\n").as_bytes())
        .unwrap();
    let mut data = TcpStream::connect(("127.0.0.1", port)).unwrap();
    data.write_all(format!("PROXY TCP4 192.0.2.9 127.0.0.1 5001 {port}\r\n").as_bytes())
        .unwrap();
    let r = c.cmd("RETR f.txt");
    assert_eq!(r.code, 150, "{}", r.text());
    let mut got = Vec::new();
    data.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"through the balancer\n");
    assert_eq!(c.read_reply().code, 226);
    assert!(closed_silently(thief));
}

#[test]
fn untrusted_missing_and_malformed_headers_close() {
    let s = proxied(|c| c.proxy_trusted = vec!["10.0.0.0/8".parse().unwrap()]);
    let mut t = TcpStream::connect(s.v4).unwrap();
    t.write_all(b"PROXY TCP4 192.0.2.9 127.0.0.1 40001 21\r\n")
        .unwrap();
    assert!(closed_silently(t), "header from an untrusted source");
    let s = proxied(|_| {});
    // A client reaching the node directly: it waits for a greeting that never comes.
    let direct = TcpStream::connect(s.v4).unwrap();
    assert!(closed_silently(direct), "no header");
    let mut junk = TcpStream::connect(s.v4).unwrap();
    junk.write_all(b"PROXY TCP9 nonsense\r\n").unwrap();
    assert!(closed_silently(junk), "malformed header");
    assert!(
        metric(&s, "wharf_proxy_refused_total") >= 2.0,
        "refusals are counted"
    );
}

fn metric(s: &TestServer, name: &str) -> f64 {
    let text = s.shared.metrics.encode();
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

fn put_file_in(s: &TestServer, name: &str, data: &[u8]) {
    std::fs::write(s.path(name), data).unwrap();
}

#[test]
fn passive_connection_without_a_header_is_refused() {
    let s = proxied(|c| c.data_connect_timeout = 2);
    let mut c = via(s.v4, "192.0.2.9");
    c.login(USER, PASS);
    let mut data = c.epsv();
    let r = c.cmd("STOR x.bin");
    if r.code == 150 {
        let _ = data.write_all(&bytes(100_000, 3));
        drop(data);
        let done = c.read_reply();
        assert_eq!(done.code, 425, "{}", done.text());
    } else {
        assert_eq!(r.code, 425, "{}", r.text());
    }
}
