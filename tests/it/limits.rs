//! Limits and defences: session caps (total, per address, per user), the login timeout,
//! failed-login delays and bans, the banner.

use std::time::{Duration, Instant};

use crate::harness::*;

#[test]
fn the_session_over_the_total_gets_421() {
    let s = TestServer::with(|cfg| cfg.max_sessions = Some(2));
    let _a = Ctrl::connect(s.v4);
    let _b = Ctrl::connect(s.v4);
    let mut c = std::net::TcpStream::connect(s.v4).unwrap();
    let mut got = String::new();
    std::io::Read::read_to_string(&mut c, &mut got).unwrap();
    assert!(got.starts_with("421 "), "{got}");
    assert!(got.contains("Too many sessions"), "{got}");
    drop(_a);
    // A place frees up when a session ends (wait for the server to notice the close).
    assert!(
        wait_for(Duration::from_secs(10), || greeting(s.v4)
            .starts_with("220"))
        .is_some(),
        "slot never freed"
    );
}

#[test]
fn per_address_limit_does_not_touch_other_addresses() {
    let s = TestServer::with(|cfg| cfg.max_sessions_per_ip = 1);
    let _a = Ctrl::connect(s.v4);
    let mut c = std::net::TcpStream::connect(s.v4).unwrap();
    let mut got = String::new();
    std::io::Read::read_to_string(&mut c, &mut got).unwrap();
    assert!(
        got.starts_with("421 ") && got.contains("your address"),
        "{got}"
    );
    let mut other = Ctrl::connect_from(s.v4, "127.0.0.2".parse().unwrap());
    other.login(USER, PASS);
}

#[test]
fn per_user_limit() {
    let s = TestServer::with(|cfg| cfg.max_sessions_per_user = 1);
    let mut a = s.login();
    let mut b = Ctrl::connect(s.v4);
    assert_eq!(b.cmd("USER judge").code, 331);
    let r = b.cmd("PASS pw");
    assert_eq!(r.code, 421, "{}", r.text());
    assert!(b.is_closed());
    // Anonymous is another user; and the first session still works.
    let mut anon = Ctrl::connect(s.v4);
    anon.login("anonymous", "x");
    assert_eq!(a.cmd("NOOP").code, 200);
    // Logging out (REIN) frees the user's place.
    assert_eq!(a.cmd("REIN").code, 220);
    let mut c = Ctrl::connect(s.v4);
    c.login(USER, PASS);
}

#[test]
fn login_timeout_closes_a_session_that_never_logs_in() {
    let s = TestServer::with(|cfg| cfg.login_timeout = 1);
    let mut c = Ctrl::connect(s.v4);
    let start = Instant::now();
    // Commands do not extend the login deadline.
    c.cmd("NOOP");
    let r = c.read_reply();
    assert_eq!(r.code, 421);
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(c.is_closed());
}

#[test]
fn the_sixth_failure_bans_the_address_only() {
    let s = TestServer::with(|cfg| cfg.max_login_failures = 5);
    let mut c = Ctrl::connect(s.v4);
    for i in 1..=5 {
        assert_eq!(c.cmd("USER judge").code, 331);
        assert_eq!(c.cmd("PASS wrong").code, 530, "failure {i}");
    }
    assert_eq!(c.cmd("USER judge").code, 331);
    let r = c.cmd("PASS wrong");
    assert_eq!(r.code, 421, "{}", r.text());
    assert!(c.is_closed());
    // New connections from the banned address are refused, even with the right password.
    let mut again = std::net::TcpStream::connect(s.v4).unwrap();
    let mut got = String::new();
    std::io::Read::read_to_string(&mut again, &mut got).unwrap();
    assert!(got.starts_with("421 ") && got.contains("banned"), "{got}");
    // Another address still logs in.
    let mut other = Ctrl::connect_from(s.v4, "127.0.0.2".parse().unwrap());
    other.login(USER, PASS);
    // The ban is listed.
    let bans = s.shared.guard.bans(Instant::now());
    assert_eq!(bans.len(), 1);
    assert_eq!(bans[0].ip, "127.0.0.1".parse::<std::net::IpAddr>().unwrap());
}

#[test]
fn failed_logins_are_delayed_more_each_time() {
    let s = TestServer::with(|cfg| cfg.login_failure_delay_ms = 150);
    let mut c = Ctrl::connect(s.v4);
    let mut took = Vec::new();
    for _ in 0..3 {
        c.cmd("USER judge");
        let t = Instant::now();
        assert_eq!(c.cmd("PASS wrong").code, 530);
        took.push(t.elapsed());
    }
    assert!(took[0] >= Duration::from_millis(150), "{took:?}");
    assert!(took[2] >= Duration::from_millis(600), "{took:?}");
    // A success resets the count.
    c.login(USER, PASS);
}

#[test]
fn banner_is_configurable_and_hides_the_version_by_default() {
    let s = TestServer::with(|cfg| cfg.banner = "Scanner drop box".into());
    let c = Ctrl::connect(s.v4);
    assert_eq!(c.greeting.raw, b"220 Scanner drop box\r\n");
    let s = TestServer::start();
    let c = Ctrl::connect(s.v4);
    assert!(!c.greeting.text().contains(env!("CARGO_PKG_VERSION")));
    let s = TestServer::with(|cfg| cfg.banner_version = true);
    let c = Ctrl::connect(s.v4);
    assert!(c.greeting.text().contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn bandwidth_limits_per_user_and_for_anonymous() {
    const MIB: usize = 1 << 20;
    let s = TestServer::with(|cfg| {
        cfg.users[0].rate_down = Some(MIB as u64);
        cfg.users[0].rate_up = Some(MIB as u64);
        cfg.anonymous_rate_down = 4 * MIB as u64;
    });
    let data = bytes(2 * MIB, 31);
    std::fs::write(s.path("two.bin"), &data).unwrap();
    let mut c = s.login();
    c.cmd("TYPE I");
    let t = Instant::now();
    let (r, got) = c.retr("RETR two.bin");
    let down = t.elapsed();
    assert_eq!((r.code, got.len()), (226, data.len()));
    assert!(
        down >= Duration::from_millis(1700),
        "2 MiB at 1 MiB/s took {down:?}"
    );
    assert!(down < Duration::from_secs(6), "{down:?}");
    let t = Instant::now();
    let (_, r) = c.stor("STOR up.bin", &data);
    let up = t.elapsed();
    assert_eq!(r.code, 226);
    assert!(
        up >= Duration::from_millis(1700),
        "2 MiB up at 1 MiB/s took {up:?}"
    );
    // Anonymous has its own, higher allowance.
    let mut a = Ctrl::connect(s.v4);
    a.login("anonymous", "x");
    a.cmd("TYPE I");
    let t = Instant::now();
    let (r, _) = a.retr("RETR two.bin");
    assert_eq!(r.code, 226);
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn passive_ports_run_out_with_425_and_come_back() {
    let s = TestServer::with(|cfg| own_passive_range(cfg, 1));
    let mut a = s.login();
    assert_eq!(a.cmd("PASV").code, 227);
    let mut b = s.login();
    let r = b.cmd("PASV");
    assert_eq!(r.code, 425, "{}", r.text());
    assert_eq!(b.cmd("NOOP").code, 200);
    // Leases are returned: after a's transfer the port is free again.
    std::fs::write(s.path("f"), b"x").unwrap();
    drop(a.cmd("ABOR"));
    assert!(
        wait_for(Duration::from_secs(10), || b.cmd("EPSV").code == 229).is_some(),
        "the port never came back"
    );
}

#[test]
fn per_user_lockout_is_optional_and_spans_addresses() {
    let s = TestServer::with(|cfg| {
        cfg.max_user_failures = 2;
        cfg.max_login_failures = 0;
    });
    for from in ["127.0.0.1", "127.0.0.2", "127.0.0.3"] {
        let mut c = Ctrl::connect_from(s.v4, from.parse().unwrap());
        c.cmd("USER judge");
        assert_eq!(c.cmd("PASS wrong").code, 530);
    }
    // Locked now: even the right password from a fresh address fails, with the same reply.
    let mut c = Ctrl::connect_from(s.v4, "127.0.0.4".parse().unwrap());
    c.cmd("USER judge");
    assert_eq!(c.cmd("PASS pw").code, 530);
    // Other users are not affected.
    let mut a = Ctrl::connect(s.v4);
    a.login("anonymous", "x");
}
