//! Shared state across nodes in PostgreSQL, with two in-process nodes on one database and
//! one directory: bans, per-user and per-address limits, upload locks, and what happens
//! while the database is away. Clients are named by PROXY headers, as a balancer would.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::harness::*;
use crate::pg::Postgres;

fn node(pg: &Postgres, name: &str, root: &Path, f: impl FnOnce(&mut wharf::Config)) -> TestServer {
    let (url, name, root) = (pg.url(), name.to_string(), root.to_path_buf());
    TestServer::with(move |c| {
        c.cluster.database_url = Some(url);
        c.cluster.node = Some(name);
        c.cluster.heartbeat = 1;
        c.cluster.node_timeout = 3;
        c.root = root;
        c.proxy_protocol = wharf::proxy::ProxyProtocol::Any;
        c.proxy_trusted = vec!["127.0.0.0/8".parse().unwrap()];
        f(c);
    })
}

/// The greeting of a connection from `client` (named by a PROXY header).
fn greeting_of(addr: SocketAddr, client: &str) -> String {
    first_line(proxied_as(addr, client))
}

/// Whether `client` is turned away as banned (not merely as one session too many).
fn banned(addr: SocketAddr, client: &str) -> bool {
    let line = greeting_of(addr, client);
    line.starts_with("421") && line.contains("banned")
}

/// A control connection from `client` (named by a PROXY header).
/// Two nodes on one directory, without PROXY headers: the tests' data connections come
/// straight from the test.
fn direct_nodes(pg: &Postgres, root: &Path) -> (TestServer, TestServer) {
    let direct = |c: &mut wharf::Config| c.proxy_protocol = wharf::proxy::ProxyProtocol::Off;
    (node(pg, "a", root, direct), node(pg, "b", root, direct))
}

fn client(addr: SocketAddr, ip: &str) -> Ctrl {
    Ctrl::from_stream(proxied_as(addr, ip))
}

#[test]
fn a_ban_on_one_node_refuses_the_address_on_the_others() {
    let Some(pg) = Postgres::start() else { return };
    let root = tempfile::tempdir().unwrap();
    let a = node(&pg, "a", root.path(), |c| c.max_login_failures = 1);
    let b = node(&pg, "b", root.path(), |c| c.max_login_failures = 1);
    assert!(greeting_of(b.v4, "192.0.2.50").starts_with("220"));
    let mut bad = client(a.v4, "192.0.2.50");
    bad.cmd("USER judge");
    bad.cmd("PASS wrong");
    bad.cmd("USER judge");
    let r = bad.cmd("PASS wrong");
    assert_eq!(r.code, 421, "{}", r.text());
    let took = wait_for(Duration::from_secs(5), || banned(b.v4, "192.0.2.50"));
    let took = took.expect("the ban reached node b");
    assert!(took < Duration::from_millis(1500), "took {took:?}");
    assert!(
        greeting_of(b.v4, "192.0.2.51").starts_with("220"),
        "others still welcome"
    );
}

#[test]
fn session_limits_hold_across_nodes() {
    let Some(pg) = Postgres::start() else { return };
    let root = tempfile::tempdir().unwrap();
    let limits = |c: &mut wharf::Config| {
        c.max_sessions_per_user = 2;
        c.max_sessions_per_ip = 3;
    };
    let a = node(&pg, "a", root.path(), limits);
    let b = node(&pg, "b", root.path(), limits);
    let mut one = client(a.v4, "192.0.2.1");
    one.login(USER, PASS);
    let mut two = client(b.v4, "192.0.2.2");
    two.login(USER, PASS);
    let mut three = client(b.v4, "192.0.2.3");
    let r = three.try_login(USER, PASS);
    assert_eq!(r.code, 421, "third session of the user: {}", r.text());
    // One ends on node a: node b lets the next one in.
    one.cmd("QUIT");
    drop(one);
    assert!(
        wait_for(Duration::from_secs(5), || {
            let mut c = client(b.v4, "192.0.2.4");
            c.try_login(USER, PASS).code == 230
        })
        .is_some()
    );
    // Per address: three sessions from 192.0.2.9 spread over the nodes, the fourth refused.
    let held: Vec<TcpStream> = (0..3)
        .map(|i| {
            let addr = if i % 2 == 0 { a.v4 } else { b.v4 };
            let s = proxied_as(addr, "192.0.2.9");
            let line = first_line(s.try_clone().unwrap());
            assert!(line.starts_with("220"), "{line}");
            s
        })
        .collect();
    assert!(
        greeting_of(b.v4, "192.0.2.9").starts_with("421"),
        "fourth from one address"
    );
    drop(held);
}

#[test]
fn one_writer_per_name_across_nodes() {
    let Some(pg) = Postgres::start() else { return };
    let root = tempfile::tempdir().unwrap();
    let (a, b) = direct_nodes(&pg, root.path());
    let mut first = Ctrl::connect(a.v4);
    first.login(USER, PASS);
    let mut conn = first.epsv();
    assert_eq!(first.cmd("STOR same.bin").code, 150);
    conn.write_all(&bytes(100_000, 1)).unwrap();
    let mut second = Ctrl::connect(b.v4);
    second.login(USER, PASS);
    let _data = second.epsv();
    let r = second.cmd("STOR same.bin");
    assert_eq!(r.code, 450, "{}", r.text());
    drop(conn);
    assert_eq!(first.read_reply().code, 226);
    // The lock ends with the upload.
    let (_, done) = second.stor("STOR same.bin", b"second");
    assert_eq!(done.code, 226, "{}", done.text());
    assert_eq!(
        std::fs::read(root.path().join("same.bin")).unwrap(),
        b"second"
    );
}

#[test]
fn failed_logins_count_across_the_nodes() {
    let Some(pg) = Postgres::start() else { return };
    let root = tempfile::tempdir().unwrap();
    let a = node(&pg, "a", root.path(), |c| c.max_login_failures = 5);
    let b = node(&pg, "b", root.path(), |c| c.max_login_failures = 5);
    let guess = |addr, n: usize| -> Vec<u16> {
        let mut c = client(addr, "192.0.2.60");
        (0..n)
            .map(|_| {
                c.cmd(&format!("USER {USER}"));
                c.cmd("PASS wrong").code
            })
            .collect()
    };
    assert_eq!(guess(a.v4, 3), [530, 530, 530]);
    // An anonymous login on the other node forgives nothing.
    client(b.v4, "192.0.2.60").login("anonymous", "x");
    assert_eq!(
        guess(b.v4, 3),
        [530, 530, 421],
        "the 6th failure, on any node, bans"
    );
    assert!(
        wait_for(Duration::from_secs(5), || banned(a.v4, "192.0.2.60")).is_some(),
        "the ban reached node a"
    );
}

#[test]
fn database_away_follows_the_policy_and_recovers() {
    let Some(mut pg) = Postgres::start() else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    // Only the per-user limit needs the database here, so connecting works and the
    // policy shows at login.
    let strict = node(&pg, "strict", root.path(), |c| {
        c.cluster.when_unavailable = wharf::cluster::Unavailable::Refuse;
        c.max_sessions_per_user = 5;
        c.max_sessions_per_ip = 0;
    });
    let lenient = node(&pg, "lenient", root.path(), |c| {
        c.max_sessions_per_user = 5;
        c.max_sessions_per_ip = 0;
    });
    pg.halt();
    let start = Instant::now();
    let mut c = client(strict.v4, "192.0.2.1");
    let r = c.try_login(USER, PASS);
    assert_eq!(r.code, 421, "{}", r.text());
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    let mut c = client(lenient.v4, "192.0.2.1");
    assert_eq!(c.try_login(USER, PASS).code, 230, "policy local: allowed");
    pg.resume();
    assert!(
        wait_for(Duration::from_secs(15), || {
            let mut c = client(strict.v4, "192.0.2.1");
            c.try_login(USER, PASS).code == 230
        })
        .is_some(),
        "logins work again once the database is back"
    );
}

/// Sessions opened while the database was away are registered when it returns, before
/// limits count again: a user over the limit across the nodes is refused afterwards.
#[test]
fn sessions_opened_during_an_outage_count_once_the_database_returns() {
    let Some(mut pg) = Postgres::start() else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let two = |c: &mut wharf::Config| {
        c.max_sessions_per_user = 2;
        c.max_sessions_per_ip = 0;
    };
    let a = node(&pg, "a", root.path(), two);
    let b = node(&pg, "b", root.path(), two);
    let c = node(&pg, "c", root.path(), two);
    pg.halt();
    // Policy local: each node lets the user in up to its own limit, 4 sessions in all.
    let held: Vec<Ctrl> = [
        (a.v4, "192.0.2.1"),
        (a.v4, "192.0.2.2"),
        (b.v4, "192.0.2.3"),
        (b.v4, "192.0.2.4"),
    ]
    .into_iter()
    .map(|(addr, ip)| {
        let mut s = client(addr, ip);
        assert_eq!(s.try_login(USER, PASS).code, 230, "during the outage");
        s
    })
    .collect();
    pg.resume();
    let refused = wait_for(Duration::from_secs(20), || {
        let mut s = client(c.v4, "192.0.2.5");
        s.try_login(USER, PASS).code == 421
    });
    assert!(
        refused.is_some(),
        "a fifth session of the user is refused once the nodes registered theirs"
    );
    // The held sessions end: their rows go with them, and the user may log in again.
    drop(held);
    assert!(
        wait_for(Duration::from_secs(10), || {
            let mut s = client(c.v4, "192.0.2.6");
            s.try_login(USER, PASS).code == 230
        })
        .is_some(),
        "ended sessions stop counting"
    );
}

/// An upload begun while the database was away takes its name's lock when the database
/// returns: once the nodes are back, a second writer of the name through another node is
/// refused while the first upload goes on.
#[test]
fn an_upload_begun_during_an_outage_holds_its_name_once_the_database_returns() {
    let Some(mut pg) = Postgres::start() else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let (a, b) = direct_nodes(&pg, root.path());
    let mut first = Ctrl::connect(a.v4);
    first.login(USER, PASS);
    let mut second = Ctrl::connect(b.v4);
    second.login(USER, PASS);
    pg.halt();
    let mut conn = first.epsv();
    assert_eq!(
        first.cmd("STOR same.bin").code,
        150,
        "policy local: it goes on"
    );
    conn.write_all(&bytes(100_000, 1)).unwrap();
    pg.resume();
    // Until both nodes are back, the second writer may get in (policy local); each such
    // upload is finished at once. Once they are back, it is refused.
    let refused = wait_for(Duration::from_secs(20), || {
        let data = second.epsv();
        let r = second.cmd("STOR same.bin");
        if r.code == 150 {
            drop(data);
            assert_eq!(second.read_reply().code, 226);
            std::thread::sleep(Duration::from_millis(200));
        }
        r.code == 450
    });
    assert!(
        refused.is_some(),
        "the upload begun during the outage did not take its lock"
    );
    conn.write_all(b"end").unwrap();
    drop(conn);
    assert_eq!(first.read_reply().code, 226);
    // Its lock ends with it.
    let (_, done) = second.stor("STOR same.bin", b"second");
    assert_eq!(done.code, 226, "{}", done.text());
}

#[test]
fn a_dead_nodes_sessions_stop_counting() {
    let Some(pg) = Postgres::start() else { return };
    let root = tempfile::tempdir().unwrap();
    let a = node(&pg, "a", root.path(), |c| c.max_sessions_per_user = 2);
    // A node that stopped beating 10 s ago (node_timeout is 3 s), still listed with two
    // sessions of the user.
    let url = pg.url();
    crate::s3::block(async move {
        let (db, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        db.batch_execute(&format!(
            "INSERT INTO wharf_nodes (name, seen) VALUES ('ghost', now() - interval '10 seconds');
             INSERT INTO wharf_sessions (node, id, client, username) VALUES
               ('ghost', 1, '192.0.2.1', '{USER}'), ('ghost', 2, '192.0.2.1', '{USER}');"
        ))
        .await
        .unwrap();
    });
    let mut c = client(a.v4, "192.0.2.1");
    assert_eq!(
        c.try_login(USER, PASS).code,
        230,
        "the ghost's sessions do not count"
    );
    let mut d = client(a.v4, "192.0.2.1");
    d.login(USER, PASS);
    let mut e = client(a.v4, "192.0.2.1");
    assert_eq!(e.try_login(USER, PASS).code, 421, "the live node's own do");
}

#[test]
fn a_quota_holds_across_nodes() {
    let Some(pg) = Postgres::start() else { return };
    let root = tempfile::tempdir().unwrap();
    let quota = |c: &mut wharf::Config| {
        c.proxy_protocol = wharf::proxy::ProxyProtocol::Off;
        c.users[0].quota_bytes = Some(100_000);
    };
    let (a, b) = (
        node(&pg, "a", root.path(), quota),
        node(&pg, "b", root.path(), quota),
    );
    let mut on_a = a.login();
    on_a.cmd("TYPE I");
    assert_eq!(on_a.stor("STOR one.bin", &bytes(60_000, 1)).1.code, 226);
    let mut on_b = b.login();
    on_b.cmd("TYPE I");
    let r = on_b.cmd("SITE QUOTA");
    assert!(r.text().contains("Bytes: 60000 of 100000"), "{}", r.text());
    // Node b knows the room is short: refused mid-transfer, nothing left.
    let mut data = on_b.epsv();
    assert_eq!(on_b.cmd("STOR two.bin").code, 150);
    for chunk in bytes(200_000, 2).chunks(16 * 1024) {
        if data.write_all(chunk).is_err() {
            break;
        }
    }
    drop(data);
    let r = on_b.read_reply();
    assert_eq!(r.code, 552, "{}", r.text());
    assert!(!root.path().join("two.bin").exists());
    // Room given back on b is room on a.
    assert_eq!(on_b.cmd("DELE one.bin").code, 250);
    let r = on_a.cmd("SITE QUOTA");
    assert!(r.text().contains("Bytes: 0 of 100000"), "{}", r.text());
    assert_eq!(on_a.stor("STOR three.bin", &bytes(90_000, 3)).1.code, 226);
}

#[test]
fn a_quota_on_shared_object_storage_holds_across_nodes() {
    use crate::s3::{Garage, S3Server, visible};
    let Some(pg) = Postgres::start() else { return };
    let Some(g) = Garage::start() else { return };
    let unused = tempfile::tempdir().unwrap();
    let on_s3 = |c: &mut wharf::Config| {
        c.proxy_protocol = wharf::proxy::ProxyProtocol::Off;
        c.storages.push(g.storage("bucket", "quota-nodes"));
        c.root = "storage:bucket".into();
        c.users[0].quota_bytes = Some(100_000);
        c.users[0].quota_files = Some(2);
    };
    let (a, b) = (
        node(&pg, "a", unused.path(), on_s3),
        node(&pg, "b", unused.path(), on_s3),
    );
    let mut on_a = a.login();
    on_a.cmd("TYPE I");
    assert_eq!(on_a.stor("STOR one.bin", &bytes(50_000, 1)).1.code, 226);
    let mut on_b = b.login();
    on_b.cmd("TYPE I");
    assert_eq!(on_b.stor("STOR two.bin", &bytes(30_000, 2)).1.code, 226);
    // Two files, counted on either node: a third name is refused up front.
    let r = on_a.cmd("SITE QUOTA");
    assert!(r.text().contains("Bytes: 80000 of 100000"), "{}", r.text());
    let mut data = on_a.epsv();
    assert_eq!(on_a.cmd("STOR three.bin").code, 552);
    drop(data);
    // Replacing one is fine while it fits; past the bytes, 552 and the object unchanged.
    assert_eq!(on_b.stor("STOR one.bin", &bytes(60_000, 3)).1.code, 226);
    data = on_a.epsv();
    assert_eq!(on_a.cmd("STOR two.bin").code, 150);
    for chunk in bytes(200_000, 4).chunks(16 * 1024) {
        if data.write_all(chunk).is_err() {
            break;
        }
    }
    drop(data);
    let r = on_a.read_reply();
    assert_eq!(r.code, 552, "{}", r.text());
    assert!(visible(&g, "quota-nodes", "/two.bin"));
    assert_eq!(on_a.retr("RETR two.bin").1, bytes(30_000, 2));
    let r = on_b.cmd("SITE QUOTA");
    assert!(r.text().contains("Bytes: 90000 of 100000"), "{}", r.text());
    assert!(r.text().contains("Files: 2 of 2"), "{}", r.text());
}
