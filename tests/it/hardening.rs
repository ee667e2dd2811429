//! What a hostile client tries, and what it must not get: mode bits beyond rwx, special
//! files, renames around a rule, wharf's own hidden names, guesses past a ban, a flood of
//! password checks, passive ports held for others, replies never read, connections by
//! the thousand.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use wharf::config::{DirRule, Permission as P, UserConfig};

use crate::harness::*;
use crate::processes::{Wharf, serve};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

const OTHER: &str = "127.0.0.2";

#[test]
fn site_chmod_sets_rwx_only() {
    let s = TestServer::start();
    std::fs::write(s.path("evil.sh"), b"#!/bin/sh\n").unwrap();
    std::fs::create_dir(s.path("dir")).unwrap();
    let mut c = s.login();
    for m in ["6755", "4755", "2755", "1755", "7777"] {
        let r = c.cmd(&format!("SITE CHMOD {m} evil.sh"));
        assert_eq!(r.code, 550, "{m} on a file: {}", r.text());
    }
    assert_eq!(mode(&s.path("evil.sh")) & 0o7000, 0);
    assert_eq!(c.cmd("SITE CHMOD 0755 evil.sh").code, 200);
    assert_eq!(mode(&s.path("evil.sh")), 0o755);
    assert_eq!(c.cmd("SITE CHMOD 7777 dir").code, 550);
    assert_eq!(c.cmd("SITE CHMOD 2775 dir").code, 550);
    // Sticky means something on a directory (a shared drop folder): allowed.
    assert_eq!(c.cmd("SITE CHMOD 1777 dir").code, 200);
    assert_eq!(mode(&s.path("dir")), 0o1777);
}

#[test]
fn uploads_over_a_setuid_file_clear_the_bit() {
    let s = TestServer::start();
    std::fs::write(s.path("tool"), b"old").unwrap();
    std::fs::set_permissions(s.path("tool"), std::fs::Permissions::from_mode(0o6755)).unwrap();
    let mut c = s.login();
    c.cmd("TYPE I");
    assert_eq!(c.stor("STOR tool", b"new content").1.code, 226);
    assert_eq!(mode(&s.path("tool")), 0o755);
}

#[test]
fn special_files_are_refused_without_hanging() {
    let s = TestServer::start();
    nix::unistd::mkfifo(
        &s.path("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o666),
    )
    .unwrap();
    let mut c = s.login();
    c.cmd("TYPE I");
    let started = Instant::now();
    let (r, data) = c.retr("RETR fifo");
    assert_eq!(r.code, 550, "{}", r.text());
    assert!(data.is_empty());
    let (first, last) = c.stor("STOR fifo", b"x");
    assert!(
        [550, 553].contains(&first.code) || [550, 553].contains(&last.code),
        "{} / {}",
        first.text(),
        last.text()
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(c.cmd("NOOP").code, 200, "the session is still answering");
}

#[test]
fn a_rename_cannot_carry_a_read_only_rule_away() {
    let s = TestServer::with(|cfg| {
        let hash = cfg.users[0].password.clone();
        cfg.users.push(UserConfig {
            permissions: vec![P::Read, P::Write],
            dirs: vec![DirRule {
                path: "/data/archive".into(),
                permissions: vec![P::Read],
            }],
            ..UserConfig::new("alice", hash)
        });
    });
    std::fs::create_dir_all(s.path("data/archive")).unwrap();
    std::fs::write(s.path("data/archive/ledger"), b"keep").unwrap();
    let mut c = Ctrl::connect(s.v4);
    c.login("alice", PASS);
    c.cmd("TYPE I");
    assert_eq!(c.cmd("RNFR data").code, 350);
    let r = c.cmd("RNTO data2");
    assert_eq!(r.code, 553, "{}", r.text());
    assert!(s.path("data/archive/ledger").exists());
    // Into the read-only place, or out of it, is refused too.
    std::fs::write(s.path("data/mine"), b"m").unwrap();
    assert_eq!(c.cmd("RNFR data/mine").code, 350);
    assert_eq!(c.cmd("RNTO data/archive/mine").code, 553);
    assert_eq!(c.cmd("RNFR data/archive/ledger").code, 550);
    // Ordinary renames still work.
    assert_eq!(c.cmd("RNFR data/mine").code, 350);
    assert_eq!(c.cmd("RNTO data/yours").code, 250);
}

#[test]
fn wharfs_temporary_names_are_refused() {
    let s = TestServer::with(|cfg| cfg.anonymous = Some(wharf::config::AnonymousMode::Upload));
    std::fs::create_dir(s.path("upload")).unwrap();
    let mut c = Ctrl::connect(s.v4);
    c.login("anonymous", "x");
    c.cmd("TYPE I");
    let (r, _) = c.stor("STOR upload/.wharf-upload.0000.a.txt", b"hidden");
    assert_eq!(r.code, 553, "{}", r.text());
    assert_eq!(c.cmd("MKD .wharf-upload.dir").code, 553);
    let mut u = s.login();
    std::fs::write(s.path("upload/plain"), b"p").unwrap();
    assert_eq!(u.cmd("RNFR upload/plain").code, 350);
    assert_eq!(u.cmd("RNTO upload/.wharf-upload.1.plain").code, 553);
    let on_disk: Vec<_> = std::fs::read_dir(s.path("upload"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(on_disk, vec![std::ffi::OsString::from("plain")]);
}

#[test]
fn anonymous_logins_do_not_forgive_guesses() {
    let s = TestServer::with(|cfg| cfg.max_login_failures = 5);
    let mut refused = None;
    'rounds: for round in 0..6 {
        let mut c = Ctrl::connect(s.v4);
        for _ in 0..3 {
            c.cmd(&format!("USER {USER}"));
            if c.cmd("PASS wrong").code == 421 {
                refused = Some(round);
                break 'rounds;
            }
        }
        c.login("anonymous", "x@example.com");
    }
    assert_eq!(
        refused,
        Some(1),
        "banned after the 6th failure, anonymous or not"
    );
    // A success of the user who failed does forgive (its own failures only).
    let s = TestServer::with(|cfg| cfg.max_login_failures = 3);
    let mut c = Ctrl::connect(s.v4);
    for _ in 0..3 {
        c.cmd(&format!("USER {USER}"));
        assert_eq!(c.cmd("PASS typo").code, 530);
    }
    c.login(USER, PASS);
    c.cmd(&format!("USER {USER}"));
    assert_eq!(c.cmd("PASS typo").code, 530);
}

#[test]
fn a_ban_ends_the_addresses_open_sessions_and_every_pass_checks_it() {
    let s = TestServer::with(|cfg| cfg.max_login_failures = 5);
    // Connected before the ban: one logged in, four guessing.
    let mut logged_in = s.login();
    let mut guessers: Vec<Ctrl> = (0..4).map(|_| Ctrl::connect(s.v4)).collect();
    let mut answered_530 = 0;
    'guessing: for _ in 0..10 {
        for g in &mut guessers {
            g.cmd(&format!("USER {USER}"));
            let r = g.cmd("PASS guess");
            match r.code {
                530 => answered_530 += 1,
                421 => break 'guessing,
                other => panic!("unexpected {other}: {}", r.text()),
            }
        }
    }
    assert_eq!(answered_530, 5, "no guess answered after the ban started");
    // Every other session of the address was told and closed, the logged-in one too.
    for g in &mut guessers {
        let tail = String::from_utf8_lossy(&g.drain()).into_owned();
        assert!(tail.is_empty() || tail.starts_with("421"), "{tail}");
    }
    let tail = String::from_utf8_lossy(&logged_in.drain()).into_owned();
    assert!(tail.starts_with("421") && tail.contains("banned"), "{tail}");
    // Another address is untouched.
    let mut other = Ctrl::connect_from(s.v4, OTHER.parse().unwrap());
    other.login(USER, PASS);
}

/// Resident memory of process `pid`, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

#[test]
fn a_flood_of_wrong_passwords_is_checked_a_few_at_a_time() {
    // The real binary, whose memory is measured alone; never banning, so that every one
    // of the 200 costs a check.
    let hash = wharf::auth::hash_password(PASS.as_bytes());
    let (_dir, mut wharf) = spawn(
        &format!(
            "max_login_failures = 0\nmax_sessions_per_ip = 0\nlogin_failure_delay_ms = 0\n\
             [[user]]\nname = \"{USER}\"\npassword = \"{hash}\"\n"
        ),
        4096,
        4096,
    );
    let (addr, pid) = (wharf.ftp(), wharf.pid());
    let mut warm = Ctrl::connect(addr);
    warm.login(USER, PASS);
    let before = rss(pid);
    let mut flood: Vec<(TcpStream, Vec<u8>)> = (0..200)
        .map(|_| {
            let mut c = TcpStream::connect(addr).unwrap();
            c.write_all(format!("USER {USER}\r\nPASS wrong\r\n").as_bytes())
                .unwrap();
            c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
            (c, Vec::new())
        })
        .collect();
    // Every one accepted (greeted) before another address tries: their checks are queued.
    let mut buf = [0u8; 512];
    for (c, got) in &mut flood {
        while got.is_empty() {
            let n = c.read(&mut buf).unwrap();
            assert!(n > 0, "closed without a greeting");
            got.extend_from_slice(&buf[..n]);
        }
    }
    let started = Instant::now();
    let mut other = Ctrl::connect_from(addr, OTHER.parse().unwrap());
    other.login(USER, PASS);
    let took = started.elapsed();
    let mut peak = rss(pid);
    // The flood's own checks all end, each with an answer.
    for (c, got) in &mut flood {
        while !got.windows(4).any(|w| w == b"530 " || w == b"421 ") {
            let n = c.read(&mut buf).unwrap();
            assert!(n > 0, "closed without an answer");
            got.extend_from_slice(&buf[..n]);
        }
        peak = peak.max(rss(pid));
    }
    wharf.kill();
    let grown = peak.saturating_sub(before);
    eprintln!(
        "200 wrong passwords: another address logged in after {took:?}; resident +{} MiB",
        grown >> 20
    );
    assert!(
        took < Duration::from_secs(2),
        "another address waited {took:?}"
    );
    assert!(
        grown < 200 << 20,
        "resident memory grew by {} MiB",
        grown >> 20
    );
}

#[test]
fn one_address_gets_fifty_sessions_by_default_and_others_still_get_in() {
    let s = TestServer::start();
    let held: Vec<Ctrl> = (0..50).map(|_| Ctrl::connect(s.v4)).collect();
    let mut c = TcpStream::connect(s.v4).unwrap();
    let mut got = String::new();
    c.read_to_string(&mut got).unwrap();
    assert!(
        got.starts_with("421") && got.contains("your address"),
        "{got}"
    );
    let mut other = Ctrl::connect_from(s.v4, OTHER.parse().unwrap());
    other.login(USER, PASS);
    drop(held);
}

#[test]
fn passive_ports_are_leases_that_expire_and_no_address_holds_them_all() {
    let s = TestServer::with(|cfg| {
        own_passive_range(cfg, 8);
        cfg.data_connect_timeout = 1;
    });
    let in_use = || s.shared.metrics.passive_ports.get();
    // One session holds one port, however often it asks.
    let mut a = s.login();
    for _ in 0..3 {
        assert_eq!(a.cmd("PASV").code, 227);
    }
    a.cmd("TYPE A");
    assert_eq!(in_use(), 1);
    // One address holds at most a quarter of the range (at least 4).
    let mut mine: Vec<Ctrl> = (0..4).map(|_| s.login()).collect();
    let codes: Vec<u16> = mine.iter_mut().map(|c| c.cmd("PASV").code).collect();
    assert_eq!(codes, [227, 227, 227, 425]);
    let mut other = Ctrl::connect_from(s.v4, OTHER.parse().unwrap());
    other.login(USER, PASS);
    assert_eq!(other.cmd("PASV").code, 227);
    // Nobody connects: every lease ends with the data-connection timeout.
    assert!(
        wait_for(Duration::from_secs(5), || in_use() == 0).is_some(),
        "{}",
        in_use()
    );
    assert_eq!(mine[3].cmd("PASV").code, 227);
    // A transfer after an expired lease says so instead of waiting.
    let mut r = a.cmd("LIST");
    if r.code == 150 {
        r = a.read_reply();
    }
    assert_eq!(r.code, 425, "{}", r.text());
}

#[test]
fn a_client_that_never_reads_is_dropped_at_the_login_deadline() {
    let s = TestServer::with(|cfg| cfg.login_timeout = 2);
    let mut c = TcpStream::connect(s.v4).unwrap();
    c.set_write_timeout(Some(Duration::from_secs(1))).unwrap();
    let lines = b"HELP\r\n".repeat(10_000);
    let started = Instant::now();
    // Writes until the server stops reading (its replies fill our receive buffer), or
    // closes.
    let mut sent = 0usize;
    while started.elapsed() < Duration::from_secs(8) {
        match c.write(&lines) {
            Ok(n) => sent += n,
            Err(_) => break,
        }
    }
    assert!(sent > 1 << 20, "sent only {sent} bytes");
    assert!(
        wait_for(Duration::from_secs(6), || s.shared.sessions.total() == 0).is_some(),
        "still connected {:?} after connecting",
        started.elapsed()
    );
}

/// The wharf binary on 127.0.0.1:0 with `config`, its own root, and a descriptor limit of
/// `hard` (soft `soft`); the directory it runs in, removed when dropped.
fn spawn(config: &str, soft: u64, hard: u64) -> (tempfile::TempDir, Wharf) {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("w.toml");
    std::fs::write(&file, config).unwrap();
    let mut cmd = serve();
    cmd.arg("--config")
        .arg(&file)
        .args(["--listen", "127.0.0.1:0", "--root"])
        .arg(dir.path().join("srv"));
    // SAFETY: only setrlimit runs between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            use nix::sys::resource::{Resource, setrlimit};
            setrlimit(Resource::RLIMIT_NOFILE, soft, hard).map_err(std::io::Error::from)
        });
    }
    let wharf = Wharf::start(&mut cmd, &dir.path().join("stderr.log"));
    (dir, wharf)
}

#[test]
fn out_of_descriptors_the_server_backs_off_and_keeps_serving() {
    // No session limits at all: the descriptor limit is what runs out.
    let (_dir, mut wharf) = spawn("max_sessions = 0\nmax_sessions_per_ip = 0\n", 40, 80);
    let addr = wharf.ftp();
    let flood: Vec<TcpStream> = (0..150)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    // A sleep on purpose: what is measured is how often wharf warns over two seconds out
    // of descriptors, and there is nothing to wait for but the time.
    std::thread::sleep(Duration::from_secs(2));
    drop(flood);
    let ok = wait_for(Duration::from_secs(10), || {
        greeting(addr).starts_with("220")
    });
    wharf.kill();
    let log = wharf.log();
    assert!(ok.is_some(), "no greeting after the flood: {log}");
    let warnings = log.matches("accept failed").count();
    // Once a second at most, not once per failed accept.
    assert!(
        (1..=4).contains(&warnings),
        "{warnings} accept warnings: {log}"
    );
}

#[test]
fn the_default_total_follows_the_raised_descriptor_limit() {
    let (_dir, mut wharf) = spawn("", 100, 400);
    // Greeted: the accept loop, and the line before it, are there.
    let first = greeting(wharf.ftp());
    assert!(first.starts_with("220"), "{first:?}");
    // (400 - 64) / 3: the soft limit was raised to the hard one. The log thread writes
    // the line soon after, not before the greeting: wait for it (bounded).
    let said =
        |log: &str| log.contains("max_sessions=112") && log.contains("max_sessions_per_ip=50");
    let found = wait_for(Duration::from_secs(10), || said(&wharf.log()));
    wharf.kill();
    assert!(found.is_some(), "{}", wharf.log());
}

#[test]
fn modes_with_special_bits_are_configuration_errors() {
    for (key, value) in [
        ("upload_mode", "0o4755"),
        ("dir_mode", "0o2775"),
        ("upload_mode", "0o1644"),
    ] {
        let e = wharf::Config::from_toml(&format!("{key} = {value}\n"), "w.toml").unwrap_err();
        assert!(e.to_string().contains(key), "{e}");
    }
    wharf::Config::from_toml("dir_mode = 0o1777\nupload_mode = 0o640\n", "w.toml").unwrap();
}
