//! Hardening, from outside the process: no S3 credential in logs or replies, an admin
//! endpoint without a token that web pages cannot use, start-up warnings for weak
//! settings, and `--user` passwords kept off the command line.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;

use crate::harness::*;
use crate::processes::{WHARF, Wharf, cli, exchange, http, serve};

/// `wharf serve --listen 127.0.0.1:0 ARGS` in `dir` with `env` (and no `RUST_LOG` of the
/// caller's), its stderr in `dir/stderr.log`.
fn start(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Wharf {
    Wharf::start(
        serve()
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env_remove("RUST_LOG")
            .envs(env.iter().copied())
            .current_dir(dir),
        &dir.join("stderr.log"),
    )
}

/// Stops it (SIGTERM) and returns what it wrote to stderr.
fn stop(mut wharf: Wharf) -> String {
    wharf.stop();
    wharf.log()
}

// --- A. No S3 credential in logs or replies -------------------------------------------

const S3_KEY: &str = "GKHARDENINGKEY0123456789";
const S3_SECRET: &str = "HARDENINGSECRET0123456789abcdef0123456789abcdef";

/// A fake S3 endpoint on loopback: it answers a listing signed with [`S3_KEY`] (wharf's
/// start-up probe) with an empty one, never answers a presigned request (its query holds
/// the credential), and closes any other connection at once. Returns its address.
fn fake_s3() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            std::thread::spawn(move || fake_s3_answer(conn));
        }
    });
    addr
}

fn fake_s3_answer(mut conn: TcpStream) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 << 10 {
        match conn.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head);
    let request_line = head.lines().next().unwrap_or_default();
    if request_line.contains("X-Amz-Credential") {
        // Hold the connection, silent, until the client gives up.
        let _ = conn.read_to_end(&mut Vec::new());
    } else if request_line.starts_with("GET ")
        && request_line.contains("list-type=2")
        // Signed with the configured key (its signature is not checked).
        && head.contains(&format!("Credential={S3_KEY}/"))
    {
        let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
            <ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
            <Name>wharf</Name><Prefix></Prefix><KeyCount>0</KeyCount><MaxKeys>1</MaxKeys>\
            <IsTruncated>false</IsTruncated></ListBucketResult>";
        let _ = write!(
            conn,
            "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        );
    }
}

/// What must never show: the presigned query's parts, the access key id, the secret.
fn assert_no_s3_secret(what: &str, text: &str) {
    for secret in [
        "X-Amz-Credential",
        "X-Amz-Signature",
        "Signature=",
        S3_KEY,
        S3_SECRET,
    ] {
        assert!(!text.contains(secret), "{secret} in the {what}:\n{text}");
    }
}

#[test]
fn s3_failures_log_no_presigned_url_key_or_secret() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = fake_s3();
    std::fs::write(
        dir.path().join("s3-credentials"),
        format!("access_key_id = {S3_KEY}\nsecret_access_key = {S3_SECRET}\n"),
    )
    .unwrap();
    // One-second requests without retries: every failure is quick.
    std::fs::write(
        dir.path().join("wharf.toml"),
        format!(
            "root = \"storage:s3\"\nlog_file = \"wharf.log\"\n\
             [[storage]]\nname = \"s3\"\nkind = \"s3\"\nbucket = \"wharf\"\n\
             endpoint = \"http://{s3}\"\nregion = \"garage\"\npath_style = true\n\
             credentials_file = \"s3-credentials\"\ntimeout = 1\nretries = 0\n"
        ),
    )
    .unwrap();
    let wharf = start(
        dir.path(),
        &["--config", "wharf.toml", "--user", "judge:pw"],
        // Every level: reqsign, for one, logs its credential provider at debug.
        &[("RUST_LOG", "debug")],
    );
    let mut c = Ctrl::connect(wharf.ftp());
    c.login("judge", "pw");
    c.cmd("TYPE I");
    let mut replies = String::new();
    // A GET through opendal that is cut off.
    let (r, _) = c.retr("RETR a.txt");
    assert!(r.code >= 400, "{}", r.text());
    replies.push_str(&r.text());
    // A HEAD through opendal that is cut off, and a presigned listing that times out.
    for line in ["SIZE a.txt", "MKD d"] {
        let r = c.cmd(line);
        assert!(r.code >= 400, "{line}: {}", r.text());
        replies.push_str(&r.text());
    }
    assert_eq!(c.cmd("QUIT").code, 221);
    let stderr = stop(wharf);
    let log = std::fs::read_to_string(dir.path().join("wharf.log")).unwrap();
    assert!(
        log.contains("object storage request failed"),
        "no failure was logged:\n{log}"
    );
    assert_no_s3_secret("log", &log);
    assert_no_s3_secret("stderr", &stderr);
    assert_no_s3_secret("FTP replies", &replies);
    assert!(
        log.contains("url=http://"),
        "the failing URL is named:\n{log}"
    );
}

// --- B. The admin endpoint without a token -------------------------------------------

/// The greeting a new FTP connection gets (the banner shows whether a reload happened).
fn banner(ftp: SocketAddr) -> String {
    Ctrl::connect(ftp).greeting.text()
}

#[test]
fn admin_without_a_token_refuses_web_pages_and_foreign_hosts() {
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
    let wharf = start(
        dir.path(),
        &["--config", "wharf.toml", "--user", "judge:pw"],
        &[],
    );
    let (ftp, admin) = (wharf.ftp(), wharf.admin());
    let mut session = Ctrl::connect(ftp);
    session.login("judge", "pw");
    write("second");
    let here = format!("Host: {admin}");

    // A form on a web page: text/plain, any Origin.
    let (status, answer) = http(
        admin,
        &format!(
            "POST /reload HTTP/1.1\r\n{here}\r\nOrigin: http://evil.example\r\nContent-Type: text/plain"
        ),
        "x=y",
    );
    assert_eq!(status, 403, "{answer}");
    assert_eq!(banner(ftp), "220 first\r\n", "reloaded anyway");
    let (status, answer) = http(
        admin,
        &format!("POST /sessions/1/kick HTTP/1.1\r\n{here}\r\nOrigin: null"),
        "",
    );
    assert_eq!(status, 403, "{answer}");
    assert_eq!(session.cmd("PWD").code, 257, "kicked anyway");
    // Fetched by a page without Origin (a no-cors GET) still says where it comes from.
    let (status, answer) = http(
        admin,
        &format!("GET /sessions HTTP/1.1\r\n{here}\r\nSec-Fetch-Site: cross-site"),
        "",
    );
    assert_eq!(status, 403, "{answer}");

    // DNS rebinding: the page's own name now points at 127.0.0.1.
    for path in ["/reload", "/sessions/1/kick"] {
        let (status, answer) = http(
            admin,
            &format!(
                "POST {path} HTTP/1.1\r\nHost: evil.example:{}",
                admin.port()
            ),
            "",
        );
        assert_eq!(status, 403, "{path}: {answer}");
    }
    for path in ["/healthz", "/readyz", "/metrics", "/sessions"] {
        let (status, answer) = http(
            admin,
            &format!("GET {path} HTTP/1.1\r\nHost: evil.example"),
            "",
        );
        assert_eq!(status, 403, "{path}: {answer}");
    }
    assert_eq!(banner(ftp), "220 first\r\n", "reloaded anyway");
    assert_eq!(session.cmd("PWD").code, 257, "kicked anyway");

    // From this machine, by name or address, it all works.
    for host in [
        "localhost",
        &format!("localhost:{}", admin.port()),
        &admin.to_string(),
    ] {
        let (status, answer) = http(admin, &format!("GET /healthz HTTP/1.1\r\nHost: {host}"), "");
        assert_eq!(status, 200, "{host}: {answer}");
    }
    let (status, answer) = http(admin, &format!("POST /reload HTTP/1.1\r\n{here}"), "");
    assert_eq!(status, 200, "{answer}");
    assert_eq!(banner(ftp), "220 second\r\n");
    stop(wharf);
}

#[test]
fn admin_cli_works_over_tcp_and_the_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("admin.sock");
    std::fs::write(
        dir.path().join("wharf.toml"),
        format!(
            "admin_listen = \"127.0.0.1:0\"\nadmin_socket = \"{}\"\n",
            sock.display()
        ),
    )
    .unwrap();
    let wharf = start(
        dir.path(),
        &["--config", "wharf.toml", "--user", "judge:pw"],
        &[],
    );
    let (ftp, admin) = (wharf.ftp(), wharf.admin().to_string());
    let sock_arg = sock.display().to_string();
    for endpoint in [&admin, &sock_arg] {
        let mut c = Ctrl::connect(ftp);
        c.login("judge", "pw");
        let out = cli(dir.path(), &["who", "--admin", endpoint]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{endpoint}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.lines().any(|l| l.contains("judge")),
            "{endpoint}: {text}"
        );
        let out = cli(dir.path(), &["reload", "--admin", endpoint]);
        assert!(
            out.status.success(),
            "{endpoint}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = cli(
            dir.path(),
            &["kick", "--user", "judge", "--admin", endpoint],
        );
        assert!(
            out.status.success(),
            "{endpoint}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(c.read_reply().code, 421, "{endpoint}: not kicked");
    }
    // The endpoint from the config (the socket first), as `wharf who` finds it.
    let out = cli(dir.path(), &["who", "--config", "wharf.toml"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // On the socket, which no browser reaches, any Host will do (older clients sent `wharf`).
    let mut s = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    let (status, answer) = exchange(&mut s, "GET /sessions HTTP/1.1\r\nHost: wharf", "");
    assert_eq!(status, 200, "{answer}");
    // But not a web page's request.
    let mut s = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    let (status, answer) = exchange(
        &mut s,
        "POST /reload HTTP/1.1\r\nHost: localhost\r\nOrigin: http://evil.example",
        "",
    );
    assert_eq!(status, 403, "{answer}");
    stop(wharf);
}

#[test]
fn admin_with_a_token_lets_the_token_decide() {
    let token = "0123456789abcdef-token";
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("wharf.toml"),
        format!("admin_listen = \"127.0.0.1:0\"\nadmin_token = \"{token}\"\n"),
    )
    .unwrap();
    let wharf = start(
        dir.path(),
        &["--config", "wharf.toml", "--user", "judge:pw"],
        &[],
    );
    let admin = wharf.admin();
    // A token is what a web page cannot send: with it, Host and Origin do not matter.
    let (status, answer) = http(
        admin,
        &format!(
            "POST /reload HTTP/1.1\r\nHost: ftp.example.com:{}\r\nOrigin: http://elsewhere.example\r\nAuthorization: Bearer {token}",
            admin.port()
        ),
        "",
    );
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = http(admin, "GET /sessions HTTP/1.1\r\nHost: localhost", "");
    assert_eq!(status, 401, "{answer}");
    let (status, answer) = http(admin, "GET /healthz HTTP/1.1\r\nHost: monitor.example", "");
    assert_eq!(status, 200, "health stays open: {answer}");
    // The CLI takes the token from the config.
    let admin = admin.to_string();
    for command in ["who", "reload"] {
        let out = cli(
            dir.path(),
            &[command, "--config", "wharf.toml", "--admin", &admin],
        );
        assert!(
            out.status.success(),
            "{command}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    stop(wharf);
}

#[test]
fn start_up_warns_of_a_short_admin_token_and_proxy_trusted_everything() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("wharf.toml"),
        "admin_listen = \"127.0.0.1:0\"\nadmin_token = \"tiny7\"\n\
         proxy_trusted = [\"0.0.0.0/0\"]\n\
         [[listener]]\naddress = \"127.0.0.1:0\"\nproxy_trusted = [\"::/0\"]\n",
    )
    .unwrap();
    let wharf = start(
        dir.path(),
        &["--config", "wharf.toml", "--user", "judge:pw"],
        &[],
    );
    let stderr = stop(wharf);
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("WARN")).collect();
    for want in [
        "admin_token has 5 characters",
        "proxy_trusted 0.0.0.0/0 trusts every address",
        "listener 127.0.0.1:0: proxy_trusted ::/0 trusts every address",
    ] {
        assert!(
            warnings.iter().any(|l| l.contains(want)),
            "no warning {want:?} in:\n{stderr}"
        );
    }
    assert!(
        !stderr.contains("tiny7"),
        "the token itself is logged:\n{stderr}"
    );
}

// --- C. Passwords off the command line -----------------------------------------------

/// The process's command line as /proc shows it to every local user.
fn cmdline(pid: u32) -> String {
    String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap())
        .replace('\0', " ")
}

#[test]
fn user_password_from_a_file_is_not_on_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let password = "file-pw-5be1";
    std::fs::write(dir.path().join("judge.pw"), format!("{password}\n")).unwrap();
    let wharf = start(dir.path(), &["--user", "judge:@judge.pw"], &[]);
    let mut c = Ctrl::connect(wharf.ftp());
    c.login("judge", password);
    assert_eq!(c.cmd("PWD").code, 257);
    let shown = cmdline(wharf.pid());
    assert!(shown.contains("judge:@judge.pw"), "{shown}");
    assert!(!shown.contains(password), "{shown}");
    let stderr = stop(wharf);
    assert!(!stderr.contains("visible to local users"), "{stderr}");

    // A file that cannot be read is named.
    let out = Command::new(WHARF)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(["--user", "judge:@nowhere.pw"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nowhere.pw"), "{err}");
}

#[test]
fn user_password_from_the_environment_is_not_on_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let password = "env-pw-93c4";
    let wharf = start(
        dir.path(),
        &["--user", "judge"],
        &[("WHARF_PASSWORD_JUDGE", password)],
    );
    let mut c = Ctrl::connect(wharf.ftp());
    c.login("judge", password);
    assert_eq!(c.cmd("PWD").code, 257);
    let shown = cmdline(wharf.pid());
    assert!(!shown.contains(password), "{shown}");
    let stderr = stop(wharf);
    assert!(!stderr.contains("visible to local users"), "{stderr}");

    // Neither the variable nor a file: an error saying what to set.
    let out = Command::new(WHARF)
        .args(["serve", "--listen", "127.0.0.1:0", "--user", "judge"])
        .env_remove("WHARF_PASSWORD_JUDGE")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("WHARF_PASSWORD_JUDGE"), "{err}");
}

#[test]
fn user_password_on_the_command_line_still_works_with_a_notice() {
    let dir = tempfile::tempdir().unwrap();
    let wharf = start(dir.path(), &["--user", "judge:pw"], &[]);
    let mut c = Ctrl::connect(wharf.ftp());
    c.login("judge", "pw");
    assert_eq!(c.cmd("PWD").code, 257);
    let stderr = stop(wharf);
    let notice: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("visible to local users"))
        .collect();
    assert_eq!(notice.len(), 1, "{stderr}");
    assert!(
        notice[0].contains("INFO")
            && notice[0].contains("WHARF_PASSWORD_JUDGE")
            && notice[0].contains("judge:@FILE"),
        "{stderr}"
    );
}
