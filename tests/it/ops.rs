//! Operations, from outside the process: the xferlog, log reopening on SIGUSR1, the
//! graceful stop on SIGTERM, the pid file.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::harness::*;
use crate::processes::{WHARF, Wharf, cli, http, http_get, serve, socket_activated};

/// Starts the wharf binary in `dir` on 127.0.0.1:0 with `args`; its event log is
/// `dir/stderr.log`.
fn spawn(dir: &Path, args: &[&str]) -> Wharf {
    spawn_with(dir, &[&["--listen", "127.0.0.1:0"], args].concat())
}

/// As [`spawn`], with the user judge and `args` but no listen flag.
fn spawn_with(dir: &Path, args: &[&str]) -> Wharf {
    Wharf::start(
        serve()
            .args(["--user", "judge:pw"])
            .args(args)
            .current_dir(dir),
        &dir.join("stderr.log"),
    )
}

/// Waits (bounded) until `path` holds `n` lines; its lines.
fn lines(path: &Path, n: usize) -> Vec<String> {
    let read = || -> Vec<String> {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        text.lines().map(str::to_string).collect()
    };
    let have = wait_for(Duration::from_secs(10), || read().len() >= n);
    let got = read();
    assert!(have.is_some(), "{} has {} lines", path.display(), got.len());
    got
}

#[test]
fn xferlog_lines_parse_field_by_field_and_reopen_on_sigusr1() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("xferlog");
    let mut wharf = spawn(dir.path(), &["--xferlog", "xferlog"]);
    let mut c = Ctrl::connect(wharf.ftp());
    c.login("judge", "pw");
    c.cmd("TYPE I");
    let (_, r) = c.stor("STOR my file é.txt", b"hello");
    assert_eq!(r.code, 226);
    let (r, _) = c.retr("RETR my file é.txt");
    assert_eq!(r.code, 226);
    let got = lines(&log, 2);
    let f: Vec<&str> = got[0].split(' ').filter(|x| !x.is_empty()).collect();
    assert_eq!(f.len(), 18, "{}", got[0]);
    // date (5 fields), seconds, host, bytes, name, type, action, direction, mode, user,
    // service, auth method, auth user, status
    assert!(f[5].parse::<u64>().unwrap() >= 1);
    assert_eq!(f[6], "127.0.0.1");
    assert_eq!(f[7], "5");
    assert_eq!(f[8], "/my\\040file\\040é.txt");
    assert_eq!(&f[9..], ["b", "_", "i", "r", "judge", "ftp", "0", "*", "c"]);
    let g: Vec<&str> = got[1].split(' ').filter(|x| !x.is_empty()).collect();
    assert_eq!(g[11], "o");
    // logrotate moves the file, then SIGUSR1: new lines go to a new file.
    std::fs::rename(&log, dir.path().join("xferlog.1")).unwrap();
    wharf.signal(Signal::SIGUSR1);
    // Wait until the reopen happened: keep transferring until a line lands in the new file.
    let reopened = wait_for(Duration::from_secs(30), || {
        let (r, _) = c.retr("RETR my file é.txt");
        assert_eq!(r.code, 226);
        log.exists()
    });
    assert!(reopened.is_some(), "the log was never reopened");
    // One more transfer now that the new file is open: its line lands there.
    let (r, _) = c.retr("RETR my file é.txt");
    assert_eq!(r.code, 226);
    assert!(!lines(&log, 1).is_empty());
    assert!(lines(&dir.path().join("xferlog.1"), 2).len() >= 2);
    assert!(wharf.stop_within(Duration::from_secs(10)).success());
}

#[test]
fn sigterm_lets_a_running_upload_finish_and_says_421_to_idle_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let mut wharf = spawn(dir.path(), &["--pid-file", "wharf.pid"]);
    let addr = wharf.ftp();
    let pid: u32 = std::fs::read_to_string(dir.path().join("wharf.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(pid, wharf.pid());
    let mut idle = Ctrl::connect(addr);
    idle.login("judge", "pw");
    let mut c = Ctrl::connect(addr);
    c.login("judge", "pw");
    c.cmd("TYPE I");
    let mut data = c.epsv();
    assert_eq!(c.cmd("STOR big.bin").code, 150);
    let chunk = bytes(1 << 20, 41);
    for _ in 0..50 {
        data.write_all(&chunk).unwrap();
    }
    wharf.signal(Signal::SIGTERM);
    assert_eq!(idle.read_reply().code, 421, "an idle session is told");
    for _ in 0..50 {
        data.write_all(&chunk).unwrap();
    }
    drop(data);
    assert_eq!(c.read_reply().code, 226, "the upload completes");
    assert_eq!(c.read_reply().code, 421);
    assert!(wharf.wait_exit(Duration::from_secs(20)).success());
    let len = std::fs::metadata(dir.path().join("ftp/big.bin"))
        .unwrap()
        .len();
    assert_eq!(len, 100 << 20);
    assert!(!dir.path().join("wharf.pid").exists(), "pid file removed");
}

#[test]
fn sigterm_after_the_grace_aborts_and_leaves_nothing_under_the_final_name_but_a_resumable_upload() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("wharf.toml"),
        "shutdown_grace = 1\natomic_uploads = true\n",
    )
    .unwrap();
    let mut wharf = spawn(dir.path(), &["--config", "wharf.toml"]);
    let mut c = Ctrl::connect(wharf.ftp());
    c.login("judge", "pw");
    c.cmd("TYPE I");
    let mut data = c.epsv();
    assert_eq!(c.cmd("STOR slow.bin").code, 150);
    data.write_all(&bytes(1 << 20, 42)).unwrap();
    let t = Instant::now();
    wharf.signal(Signal::SIGTERM);
    // The client stalls: the grace runs out.
    let r = c.read_reply();
    assert_eq!(r.code, 426, "{}", r.text());
    assert!(wharf.wait_exit(Duration::from_secs(20)).success());
    assert!(t.elapsed() < Duration::from_secs(10));
    drop(data);
    assert!(!dir.path().join("ftp/slow.bin").exists());
    // What arrived waits hidden for a resume after the restart; nothing else is left.
    let left: Vec<String> = std::fs::read_dir(dir.path().join("ftp"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        left.len() == 1 && left[0].starts_with(".wharf-upload.resume-"),
        "left behind: {left:?}"
    );
}

#[test]
fn sd_notify_ready_reloading_stopping() {
    use std::os::unix::net::UnixDatagram;
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut wharf = Wharf::start(
        serve()
            .args(["--listen", "127.0.0.1:0"])
            .current_dir(dir.path())
            .env("NOTIFY_SOCKET", &sock_path),
        &dir.path().join("stderr.log"),
    );
    let mut buf = [0u8; 512];
    let mut next = || {
        let n = sock.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).trim_end().to_string()
    };
    assert_eq!(next(), "READY=1");
    wharf.signal(Signal::SIGHUP);
    let reloading = next();
    assert!(
        reloading.starts_with("RELOADING=1\nMONOTONIC_USEC="),
        "{reloading}"
    );
    assert_eq!(next(), "READY=1");
    wharf.signal(Signal::SIGTERM);
    assert_eq!(next(), "STOPPING=1");
    assert!(wharf.wait_exit(Duration::from_secs(10)).success());
}

#[test]
fn socket_activation_serves_on_the_inherited_socket() {
    // Bound here and handed over as systemd does: wharf never binds a port of its own.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = socket_activated(&listener, WHARF);
    // `listen` points elsewhere: the inherited socket must win.
    cmd.args(["serve", "--listen", "127.0.0.1:1", "--user", "judge:pw"])
        .current_dir(dir.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped());
    let mut wharf = Wharf::start(&mut cmd, &dir.path().join("stderr.log"));
    drop(listener);
    assert_eq!(wharf.ftp(), addr, "{}", wharf.line);
    let mut c = Ctrl::connect(addr);
    c.login("judge", "pw");
    assert_eq!(c.cmd("PWD").code, 257);
    wharf.kill();
}

/// Starts wharf in `dir` with `--config wharf.toml` (which sets `admin_listen`).
fn spawn_admin(dir: &Path) -> Wharf {
    spawn(dir, &["--config", "wharf.toml"])
}

/// `wharf reload` against the admin endpoint at `admin`.
fn reload(admin: SocketAddr) -> std::process::Output {
    admin_cli(admin, &["reload"])
}

/// `wharf ARGS… --admin ADMIN`.
fn admin_cli(admin: SocketAddr, args: &[&str]) -> std::process::Output {
    let admin = admin.to_string();
    cli(Path::new("."), &[args, &["--admin", &admin]].concat())
}

/// The address a listener on `ip` (configured with port 0) got, once wharf's log says it
/// listens there.
fn listening_on(wharf: &Wharf, ip: std::net::IpAddr) -> SocketAddr {
    let prefix = format!("{ip}:");
    let find = || {
        wharf
            .log()
            .lines()
            .filter(|l| l.contains("listening"))
            .find_map(|l| {
                let at = l.find(&prefix)? + prefix.len();
                let port = l[at..].split(|c: char| !c.is_ascii_digit()).next()?;
                Some(SocketAddr::new(ip, port.parse().ok()?))
            })
    };
    wait_for(Duration::from_secs(10), || find().is_some());
    find().unwrap_or_else(|| panic!("no listener on {ip} in the log:\n{}", wharf.log()))
}

#[test]
fn metrics_count_known_traffic_exactly() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("wharf.toml"),
        "admin_listen = \"127.0.0.1:0\"\nlogin_failure_delay_ms = 0\n",
    )
    .unwrap();
    let mut wharf = spawn_admin(dir.path());
    let (ftp, admin) = (wharf.ftp(), wharf.admin());
    let mut c = Ctrl::connect(ftp);
    c.cmd("USER judge");
    assert_eq!(c.cmd("PASS nope").code, 530);
    c.login("judge", "pw");
    c.cmd("TYPE I");
    let (_, r) = c.stor("STOR m.bin", b"12345");
    assert_eq!(r.code, 226);
    let (r, _) = c.retr("RETR m.bin");
    assert_eq!(r.code, 226);
    // One passive port held open shows in the gauge.
    assert_eq!(c.cmd("PASV").code, 227);
    let m = http_get(admin, "/metrics");
    assert!(m.contains("wharf_passive_ports_in_use 1"), "{m}");
    assert!(m.contains("wharf_sessions_by_tls{tls=\"false\"} 1"), "{m}");
    assert!(m.contains("wharf_sessions_by_tls{tls=\"true\"} 0"), "{m}");
    assert_eq!(c.cmd("QUIT").code, 221);
    let health = http_get(admin, "/healthz");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(http_get(admin, "/readyz").starts_with("HTTP/1.1 200"));
    let m = http_get(admin, "/metrics");
    for want in [
        "wharf_logins_total{result=\"ok\"} 1",
        "wharf_logins_total{result=\"failed\"} 1",
        "wharf_transfers_total{direction=\"upload\",result=\"ok\"} 1",
        "wharf_transfers_total{direction=\"download\",result=\"ok\"} 1",
        "wharf_bytes_total{direction=\"upload\"} 5",
        "wharf_bytes_total{direction=\"download\"} 5",
        "wharf_sessions_total{listener=\"explicit\"} 1",
        // Each 5-byte transfer took far less than the first bucket's 10 ms.
        "wharf_transfer_duration_seconds_count{direction=\"upload\"} 1",
        "wharf_transfer_duration_seconds_count{direction=\"download\"} 1",
        "wharf_transfer_duration_seconds_bucket{le=\"600.0\",direction=\"download\"} 1",
    ] {
        assert!(m.contains(want), "missing {want:?} in\n{m}");
    }
    assert!(reload(admin).status.success());
    let m = http_get(admin, "/metrics");
    assert!(m.contains("wharf_reloads_total{result=\"ok\"} 1"), "{m}");
    assert!(wharf.stop_within(Duration::from_secs(10)).success());
}

#[test]
fn who_kick_and_ban_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("wharf.toml"),
        "admin_listen = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let mut wharf = spawn_admin(dir.path());
    let (ftp, admin) = (wharf.ftp(), wharf.admin());
    let cli = |args: &[&str]| admin_cli(admin, args);
    // A session in the middle of a download.
    std::fs::write(dir.path().join("ftp/big.bin"), bytes(64 << 20, 51)).unwrap();
    let mut c = Ctrl::connect(ftp);
    c.login("judge", "pw");
    c.cmd("TYPE I");
    let mut data = c.epsv();
    assert_eq!(c.cmd("RETR big.bin").code, 150);
    let mut buf = [0u8; 65536];
    std::io::Read::read_exact(&mut data, &mut buf).unwrap();
    let out = cli(&["who"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let row = text
        .lines()
        .find(|l| l.contains("judge"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(row.contains("download /big.bin"), "{row}");
    let id = row.split_whitespace().next().unwrap().to_string();
    // Kick it: the client is told and the connection closes.
    assert!(cli(&["kick", &id]).status.success());
    let r = c.read_reply();
    assert_eq!(r.code, 421, "{}", r.text());
    assert!(c.is_closed());
    drop(data);
    // Ban an address, see it listed, lift it.
    assert!(
        cli(&["ban", "add", "127.0.0.9", "--seconds", "60"])
            .status
            .success()
    );
    let list = String::from_utf8_lossy(&cli(&["ban", "list"]).stdout).into_owned();
    assert!(list.starts_with("ADDRESS"), "a table: {list}");
    assert!(list.lines().any(|l| l.starts_with("127.0.0.9 ")), "{list}");
    let json = cli(&["ban", "list", "--json"]).stdout;
    let bans: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(bans[0]["ip"], "127.0.0.9", "{bans}");
    // Nothing to kick is said, with a failing exit.
    let out = cli(&["kick", "--user", "nosuch"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no session of user nosuch"),
        "{out:?}"
    );
    {
        let sock =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        sock.bind(&SocketAddr::from(([127, 0, 0, 9], 0)).into())
            .unwrap();
        sock.connect(&ftp.into()).unwrap();
        let mut s: std::net::TcpStream = sock.into();
        let mut got = String::new();
        std::io::Read::read_to_string(&mut s, &mut got).unwrap();
        assert!(
            got.starts_with("421 "),
            "a banned address is refused: {got}"
        );
    }
    assert!(cli(&["ban", "remove", "127.0.0.9"]).status.success());
    assert!(
        !cli(&["ban", "remove", "127.0.0.9"]).status.success(),
        "already lifted"
    );
    // Reload with nothing to reload succeeds.
    assert!(cli(&["reload"]).status.success());
    assert!(wharf.stop_within(Duration::from_secs(10)).success());
}

#[test]
fn protocol_trace_switched_on_for_one_address_masks_passwords() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("wharf.toml"),
        "admin_listen = \"127.0.0.1:0\"\nlog_file = \"wharf.log\"\n",
    )
    .unwrap();
    let mut wharf = spawn_admin(dir.path());
    let (ftp, admin) = (wharf.ftp(), wharf.admin());
    let (status, answer) = http(
        admin,
        "POST /trace HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json",
        r#"{"target":"127.0.0.1"}"#,
    );
    assert_eq!(status, 200, "{answer}");
    let mut c = Ctrl::connect(ftp);
    c.login("judge", "pw");
    assert_eq!(c.cmd("PWD").code, 257);
    assert_eq!(c.cmd("QUIT").code, 221);
    assert!(wharf.stop_within(Duration::from_secs(10)).success());
    let log = std::fs::read_to_string(dir.path().join("wharf.log")).unwrap();
    assert!(
        log.contains("trace command") && log.contains("line=PWD"),
        "{log}"
    );
    assert!(log.contains("PASS ****"), "{log}");
    assert!(!log.contains("PASS pw"), "a password in the trace");
    assert!(log.contains("trace reply"), "{log}");
}

#[test]
fn reload_applies_a_new_config_keeps_sessions_and_rejects_a_broken_one() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("wharf.toml");
    let write = |banner: &str| {
        std::fs::write(
            &cfg,
            format!("admin_listen = \"127.0.0.1:0\"\nbanner = \"{banner}\"\n"),
        )
        .unwrap()
    };
    write("first");
    let mut wharf = spawn_admin(dir.path());
    let (ftp, admin) = (wharf.ftp(), wharf.admin());
    let reload = || reload(admin);
    let mut old = Ctrl::connect(ftp);
    assert_eq!(old.greeting.raw, b"220 first\r\n");
    old.login("judge", "pw");
    write("second");
    let out = reload();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(Ctrl::connect(ftp).greeting.raw, b"220 second\r\n");
    assert_eq!(
        old.cmd("PWD").code,
        257,
        "a running session survives the reload"
    );
    // A broken file is rejected whole, with where and why; the old settings stay.
    std::fs::write(
        &cfg,
        "admin_listen = \"127.0.0.1:0\"\nbanner = \"third\"\nbogus = 1\n",
    )
    .unwrap();
    let out = reload();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("wharf.toml:3"), "{err}");
    assert_eq!(Ctrl::connect(ftp).greeting.raw, b"220 second\r\n");
    assert!(wharf.stop_within(Duration::from_secs(10)).success());
}

#[test]
fn reload_opens_and_closes_listeners_and_keeps_their_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("wharf.toml");
    let write = |listen: &str| {
        std::fs::write(
            &cfg,
            format!("admin_listen = \"127.0.0.1:0\"\nlisten = [{listen}]\n"),
        )
        .unwrap()
    };
    write("\"127.0.0.1:0\"");
    // The listeners come from the file alone, so that a reload can change them.
    let mut wharf = spawn_with(dir.path(), &["--config", "wharf.toml"]);
    let (first, admin) = (wharf.ftp(), wharf.admin());
    let mut old = Ctrl::connect(first);
    old.login("judge", "pw");

    // Added: the new address answers; the first one still does. It is port 0 on an address
    // of the test's own, whose port the log then names.
    let ip = own_loopback();
    let added = format!("\"{ip}:0\"");
    write(&format!("\"127.0.0.1:0\", {added}"));
    let out = reload(admin);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let second = listening_on(&wharf, ip);
    assert_eq!(Ctrl::connect(second).greeting.code, 220);
    assert_eq!(Ctrl::connect(first).greeting.code, 220);

    // A port someone else holds rejects the reload whole: nothing opened, nothing closed.
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = squatter.local_addr().unwrap();
    write(&format!("{added}, \"{taken}\""));
    let out = reload(admin);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&taken.to_string()), "{err}");
    assert_eq!(Ctrl::connect(first).greeting.code, 220);
    drop(squatter);

    // Removed: the first address refuses, its logged-in session carries on.
    write(&added);
    let out = reload(admin);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The accepting task ends just after the reload is answered.
    assert!(
        wait_for(Duration::from_secs(5), || std::net::TcpStream::connect(
            first
        )
        .is_err())
        .is_some(),
        "still listening on {first}"
    );
    assert_eq!(
        old.cmd("PWD").code,
        257,
        "a session on a closed listener survives"
    );
    assert_eq!(Ctrl::connect(second).greeting.code, 220);
    assert!(wharf.stop_within(Duration::from_secs(10)).success());
}

#[test]
fn admin_socket_is_private_replaces_a_stale_one_and_serves_the_cli() {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let dir = tempfile::tempdir().unwrap();
    // Its directory is made when missing, as /run/wharf is after a boot outside systemd.
    let run = dir.path().join("run");
    let sock = run.join("admin.sock");
    std::fs::write(
        dir.path().join("first.toml"),
        format!("admin_socket = \"{}\"\n", sock.display()),
    )
    .unwrap();
    let mut first = spawn(dir.path(), &["--config", "first.toml"]);
    assert!(sock.exists(), "{}", first.log());
    assert_eq!(
        std::fs::metadata(&run).unwrap().permissions().mode() & 0o777,
        0o755
    );
    first.kill();
    // A socket left behind by a run that was killed.
    std::fs::remove_file(&sock).ok();
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
    std::fs::write(
        dir.path().join("wharf.toml"),
        format!("admin_socket = \"{}\"\n", sock.display()),
    )
    .unwrap();
    let mut wharf = spawn(dir.path(), &["--config", "wharf.toml"]);
    let ftp = wharf.ftp();
    let meta = std::fs::metadata(&sock).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let mut c = Ctrl::connect(ftp);
    c.login("judge", "pw");
    // The CLI finds the socket in the config.
    let configured = |args: &[&str]| cli(dir.path(), &[args, &["--config", "wharf.toml"]].concat());
    let out = configured(&["who"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().any(|l| l.contains("judge")), "{text}");
    assert!(configured(&["reload"]).status.success());
    assert!(wharf.stop_within(Duration::from_secs(10)).success());
    assert!(!sock.exists(), "the socket is removed at exit");

    // Something that is not a socket is never replaced: wharf refuses to start.
    std::fs::write(&sock, "precious").unwrap();
    let out = cli(
        dir.path(),
        &["serve", "--listen", "127.0.0.1:0", "--config", "wharf.toml"],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("admin_socket"));
    assert_eq!(std::fs::read_to_string(&sock).unwrap(), "precious");
}
