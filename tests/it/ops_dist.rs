//! The operations files in `dist/`, checked against the real binary and the real tools:
//! the fail2ban filter counts a running wharf's failed logins (text and JSON, IPv4 and
//! IPv6), the jail passes `fail2ban-client -t`, logrotate accepts its file and a rotation
//! it performs reaches the new file, and the systemd unit's signals do what it says.
//!
//! The tools come from Debian's `fail2ban` and `logrotate` packages; like the client tests,
//! a missing tool skips locally and fails in CI.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use crate::harness::{Ctrl, PASS, USER, have, run, wait_for};
use crate::processes::{WHARF, Wharf, serve};

/// A file of the repository's `dist/`.
fn dist(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("dist").join(rel)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `wharf serve --listen LISTEN --user judge:pw --root DIR/root EXTRA...`, run in `dir`,
/// its event log (stderr) going to `log`.
fn start(dir: &Path, listen: &str, extra: &[&str], log: &Path) -> Wharf {
    Wharf::start(
        serve()
            .args(["--listen", listen, "--user", &format!("{USER}:{PASS}")])
            .arg("--root")
            .arg(dir.join("root"))
            .args(extra)
            .current_dir(dir),
        log,
    )
}

/// Sends a signal by name (`HUP`, `USR1`, `TERM`) to the process, as systemd would.
fn signal(wharf: &Wharf, sig: &str) {
    let out = run(Command::new("sh")
        .arg("-c")
        .arg(format!("kill -s {sig} {}", wharf.pid())));
    assert!(out.status.success(), "kill -s {sig}: {out:?}");
}

/// SIGTERM (by name, as systemd sends it), then waits up to `limit` for the exit.
fn stop_within(wharf: &mut Wharf, limit: Duration) -> ExitStatus {
    signal(wharf, "TERM");
    wharf.wait_exit(limit)
}

fn stop(wharf: &mut Wharf) -> ExitStatus {
    stop_within(wharf, Duration::from_secs(20))
}

/// One login attempt with a wrong password on a fresh connection: 220, USER, 331, PASS, 530.
fn fail_login(addr: SocketAddr) {
    let mut c = Ctrl::connect(addr);
    let r = c.cmd(&format!("USER {USER}"));
    assert_eq!(r.code, 331, "{}", r.text());
    let r = c.cmd("PASS wrong");
    assert_eq!(r.code, 530, "{}", r.text());
    c.cmd("QUIT");
}

fn good_login(addr: SocketAddr) {
    let mut c = Ctrl::connect(addr);
    c.login(USER, PASS);
    c.cmd("QUIT");
}

/// What `fail2ban-regex -v LOG FILTER` found: the matched-lines count of its
/// `Lines: N lines, I ignored, M matched, X missed` summary, and the address of each match.
struct Found {
    matched: usize,
    hosts: Vec<String>,
    report: String,
}

fn fail2ban_regex(log: &Path) -> Found {
    let filter = dist("fail2ban/filter.d/wharf.conf");
    let out = run(Command::new("fail2ban-regex")
        .arg("-v")
        .arg(log)
        .arg(&filter));
    let report = format!(
        "{}{}\n--- {}:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        log.display(),
        std::fs::read_to_string(log).unwrap_or_default()
    );
    assert!(out.status.success(), "fail2ban-regex failed:\n{report}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let matched = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Lines:"))
        .and_then(|summary| {
            summary
                .split(',')
                .find_map(|part| part.trim().strip_suffix(" matched"))
        })
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no `Lines: ... matched` summary:\n{report}"));
    // Under each failregex, -v lists every match as `|      ADDRESS  DATE`.
    let hosts = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("|      "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|h| h.parse::<std::net::IpAddr>().is_ok())
        .map(str::to_string)
        .collect();
    Found {
        matched,
        hosts,
        report,
    }
}

/// Three failed logins and a good one against the real binary; the filter must count
/// exactly the three, each for the client's address.
fn filter_counts_failed_logins(listen: &str, extra: &[&str]) {
    if !have("fail2ban-regex") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("wharf.log");
    let mut wharf = start(dir.path(), listen, extra, &log);
    let addr = wharf.ftp();
    for _ in 0..3 {
        fail_login(addr);
    }
    good_login(addr);
    assert!(stop(&mut wharf).success());
    let found = fail2ban_regex(&log);
    assert_eq!(found.matched, 3, "{}", found.report);
    let client = addr.ip().to_string();
    assert_eq!(found.hosts, vec![client; 3], "{}", found.report);
}

#[test]
fn fail2ban_filter_counts_failed_logins_in_the_text_log() {
    filter_counts_failed_logins("127.0.0.1:0", &[]);
}

#[test]
fn fail2ban_filter_counts_failed_logins_in_the_json_log() {
    filter_counts_failed_logins("127.0.0.1:0", &["--log-format", "json"]);
}

#[test]
fn fail2ban_filter_reads_ipv6_clients() {
    if TcpListener::bind("[::1]:0").is_err() {
        eprintln!("skipping: no IPv6 loopback");
        return;
    }
    filter_counts_failed_logins("[::1]:0", &[]);
    filter_counts_failed_logins("[::1]:0", &["--log-format", "json"]);
}

#[test]
fn dist_files_exist() {
    for f in [
        "fail2ban/filter.d/wharf.conf",
        "fail2ban/jail.d/wharf.conf",
        "logrotate.d/wharf",
        "wharf.service",
        "wharf.socket",
    ] {
        let path = dist(f);
        assert!(path.is_file(), "{} is missing", path.display());
        assert!(
            !read(&path).trim().is_empty(),
            "{} is empty",
            path.display()
        );
    }
}

#[test]
fn fail2ban_filter_matches_its_own_examples_and_the_jail_loads() {
    if !have("fail2ban-regex") || !have("fail2ban-client") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The example lines in the filter's header comment are what wharf writes.
    let examples: Vec<String> = read(&dist("fail2ban/filter.d/wharf.conf"))
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(str::trim)
        .filter(|l| l.starts_with("20") || l.starts_with("{\"timestamp\""))
        .map(str::to_string)
        .collect();
    assert!(examples.len() >= 3, "{examples:?}");
    let sample = dir.path().join("examples.log");
    std::fs::write(&sample, examples.join("\n") + "\n").unwrap();
    let found = fail2ban_regex(&sample);
    assert_eq!(found.matched, examples.len(), "{}", found.report);

    // The jail, enabled, on top of the system's fail2ban configuration (for jail.conf,
    // the paths and the actions), with the log path pointed at a file that exists.
    let conf = dir.path().join("fail2ban");
    let out = run(Command::new("cp").arg("-r").arg("/etc/fail2ban").arg(&conf));
    assert!(out.status.success(), "{out:?}");
    let _ = std::fs::remove_file(conf.join("jail.local"));
    for entry in std::fs::read_dir(conf.join("jail.d")).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    std::fs::copy(
        dist("fail2ban/filter.d/wharf.conf"),
        conf.join("filter.d/wharf.conf"),
    )
    .unwrap();
    let jail = read(&dist("fail2ban/jail.d/wharf.conf"));
    assert!(jail.contains("\n[wharf]\n"), "{jail}");
    assert!(
        jail.lines().any(|l| l.replace(' ', "") == "enabled=false"),
        "the jail must be disabled by default:\n{jail}"
    );
    let log = dir.path().join("wharf.log");
    std::fs::write(&log, "").unwrap();
    let enabled: String = jail
        .lines()
        .map(|l| match l.split_once('=') {
            Some((k, _)) if k.trim() == "enabled" => "enabled = true".to_string(),
            Some((k, _)) if k.trim() == "logpath" => format!("logpath = {}", log.display()),
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(conf.join("jail.d/wharf.conf"), enabled).unwrap();
    let out = run(Command::new("fail2ban-client")
        .arg("-c")
        .arg(&conf)
        .arg("-t"));
    assert!(
        out.status.success(),
        "fail2ban-client -t: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(Command::new("fail2ban-client")
        .arg("-c")
        .arg(&conf)
        .arg("-d"));
    let dump = String::from_utf8_lossy(&out.stdout);
    for want in [
        "['set', 'wharf', 'maxretry', 5]",
        "['set', 'wharf', 'bantime', '1h']",
        "['port', 'ftp,ftp-data,ftps,2121']",
    ] {
        assert!(dump.contains(want), "no {want} in\n{dump}");
    }
}

#[test]
fn logrotate_accepts_the_config() {
    if !have("logrotate") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // -d: debug, nothing is rotated; -s: a state file of our own, not /var/lib/logrotate.
    let out = run(Command::new("logrotate")
        .arg("-d")
        .arg("-s")
        .arg(dir.path().join("state"))
        .arg(dist("logrotate.d/wharf")));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(!text.contains("error:"), "{text}");
    assert!(
        text.contains("rotating pattern: /var/log/wharf/*.log  after 1 days (14 rotations)"),
        "{text}"
    );
}

/// The logrotate config with its path and postrotate script pointed at `dir` and `pid`,
/// and `create` without an owner (which only root could give).
fn logrotate_for(conf: &str, dir: &Path, pid: u32) -> String {
    let mut out = String::new();
    let mut in_script = false;
    for line in conf.lines() {
        let t = line.trim();
        if in_script {
            if t == "endscript" {
                out.push_str(&format!("        kill -s USR1 {pid}\n    endscript\n"));
                in_script = false;
            }
            continue;
        }
        if t == "postrotate" {
            in_script = true;
            out.push_str("    postrotate\n");
        } else if t.starts_with("create") {
            out.push_str("    create 0640\n");
        } else {
            out.push_str(&line.replace("/var/log/wharf/", &format!("{}/", dir.display())));
            out.push('\n');
        }
    }
    out
}

#[test]
fn logrotate_rotates_a_running_wharf_and_it_logs_to_the_new_file() {
    if !have("logrotate") || !have("fail2ban-regex") {
        return;
    }
    let conf = read(&dist("logrotate.d/wharf"));
    let script = conf
        .split("postrotate")
        .nth(1)
        .and_then(|s| s.split("endscript").next())
        .expect("a postrotate script");
    assert!(script.contains("USR1"), "{script}");
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("log");
    std::fs::create_dir(&logs).unwrap();
    let log = logs.join("wharf.log");
    let log_arg = log.to_str().unwrap();
    let mut wharf = start(
        dir.path(),
        "127.0.0.1:0",
        &["--log-file", log_arg],
        &dir.path().join("stderr.log"),
    );
    let addr = wharf.ftp();
    fail_login(addr);
    let rotate_conf = dir.path().join("logrotate.conf");
    std::fs::write(&rotate_conf, logrotate_for(&conf, &logs, wharf.pid())).unwrap();
    let out = run(Command::new("logrotate")
        .arg("-f")
        .arg("-s")
        .arg(dir.path().join("state"))
        .arg(&rotate_conf));
    assert!(
        out.status.success(),
        "{}{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        read(&rotate_conf)
    );
    // delaycompress: the first rotation is still plain text.
    let old = logs.join("wharf.log.1");
    assert!(old.is_file(), "{:?}", std::fs::read_dir(&logs).unwrap());
    assert!(
        wait_for(Duration::from_secs(10), || std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("log files reopened"))
        .is_some(),
        "wharf did not reopen {} after SIGUSR1: {:?}",
        log.display(),
        std::fs::read_to_string(&log)
    );
    assert!(wharf.running());
    fail_login(addr);
    fail_login(addr);
    assert!(stop(&mut wharf).success());
    let before = fail2ban_regex(&old);
    assert_eq!(before.matched, 1, "{}", before.report);
    let after = fail2ban_regex(&log);
    assert_eq!(after.matched, 2, "{}", after.report);
}

/// `Key=value` of a unit file (the last one wins, as in systemd).
fn unit_value(unit: &str, key: &str) -> Option<String> {
    unit.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix(key)?.strip_prefix('='))
        .map(|v| v.trim().to_string())
}

#[test]
fn the_units_promises_hold_for_the_binary() {
    let unit = read(&dist("wharf.service"));
    let socket = read(&dist("wharf.socket"));
    assert_eq!(
        unit_value(&unit, "ExecStart").as_deref(),
        Some("/usr/local/bin/wharf serve --config /etc/wharf/wharf.toml")
    );
    assert_eq!(unit_value(&socket, "Accept").as_deref(), Some("no"));
    let dir = tempfile::tempdir().unwrap();
    let ty = unit_value(&unit, "Type").expect("Type=");
    match ty.as_str() {
        // Readiness is wharf's to say: it must send READY=1 to $NOTIFY_SOCKET.
        "notify" => {
            let path = dir.path().join("notify");
            let sock = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
            sock.set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut child = Command::new(WHARF)
                .args(["serve", "--listen", "127.0.0.1:0"])
                .arg("--root")
                .arg(dir.path().join("root"))
                .env("NOTIFY_SOCKET", &path)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let mut buf = [0u8; 512];
            let got = sock.recv(&mut buf);
            let _ = child.kill();
            let _ = child.wait();
            let n = got.expect("Type=notify, but wharf sent nothing to NOTIFY_SOCKET");
            let msg = String::from_utf8_lossy(&buf[..n]);
            assert!(msg.lines().any(|l| l == "READY=1"), "{msg}");
        }
        // Up as soon as it runs: wharf must stay in the foreground (it does not fork).
        "exec" | "simple" => {}
        other => panic!("Type={other}: wharf neither forks nor sends more than READY=1"),
    }

    // ExecReload's SIGHUP and logrotate's SIGUSR1 leave wharf serving; SIGTERM (KillSignal)
    // stops it cleanly well within TimeoutStopSec.
    assert_eq!(
        unit_value(&unit, "ExecReload").as_deref(),
        Some("/bin/kill -HUP $MAINPID")
    );
    assert_eq!(unit_value(&unit, "KillSignal").as_deref(), Some("SIGTERM"));
    let stop_limit: u64 = unit_value(&unit, "TimeoutStopSec")
        .and_then(|v| v.parse().ok())
        .expect("TimeoutStopSec in seconds");
    let mut wharf = start(
        dir.path(),
        "127.0.0.1:0",
        &[],
        &dir.path().join("stderr.log"),
    );
    for sig in ["HUP", "USR1"] {
        signal(&wharf, sig);
        good_login(wharf.ftp());
        assert!(wharf.running(), "wharf died of SIG{sig}");
    }
    let status = stop_within(&mut wharf, Duration::from_secs(stop_limit));
    assert!(status.success(), "{status:?}");
}

/// `systemd-analyze verify` on both units, where systemd is installed (it is not needed
/// to run wharf's tests, so its absence skips even in CI). The check wants ExecStart's
/// program to exist: the copy it reads names the built binary instead.
#[test]
fn systemd_analyze_verifies_the_units() {
    let found = Command::new("sh")
        .arg("-c")
        .arg("command -v systemd-analyze")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found {
        eprintln!("skipping: systemd-analyze not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let unit = read(&dist("wharf.service")).replace("/usr/local/bin/wharf", WHARF);
    std::fs::write(dir.path().join("wharf.service"), unit).unwrap();
    std::fs::copy(dist("wharf.socket"), dir.path().join("wharf.socket")).unwrap();
    let out = run(Command::new("systemd-analyze")
        .arg("verify")
        .arg(dir.path().join("wharf.service"))
        .arg(dir.path().join("wharf.socket"))
        .current_dir(dir.path()));
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
