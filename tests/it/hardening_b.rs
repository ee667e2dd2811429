//! Hardening, from outside the process: no S3 credential in logs or replies.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::harness::*;

const WHARF: &str = env!("CARGO_BIN_EXE_wharf");

/// A running `wharf serve` (in `dir`, stderr into `dir/stderr.log`); stopped when dropped.
struct Wharf {
    child: Child,
    /// The line it prints once it listens.
    line: String,
    dir: std::path::PathBuf,
}

impl Wharf {
    fn start(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Wharf {
        let stderr = std::fs::File::create(dir.join("stderr.log")).unwrap();
        let mut child = Command::new(WHARF)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .env_remove("RUST_LOG")
            .envs(env.iter().copied())
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(
            line.starts_with("wharf serving"),
            "wharf did not start: {line:?} {}",
            std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default()
        );
        Wharf {
            child,
            line,
            dir: dir.to_path_buf(),
        }
    }

    /// The first FTP address of the start line.
    fn ftp(&self) -> SocketAddr {
        self.line
            .split(" on ")
            .nth(1)
            .and_then(|r| r.split([' ', ',']).next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {:?}", self.line))
    }

    /// Stops it (SIGTERM) and returns what it wrote to stderr.
    fn stop(mut self) -> String {
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "wharf did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
        std::fs::read_to_string(self.dir.join("stderr.log")).unwrap()
    }
}

impl Drop for Wharf {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
    let wharf = Wharf::start(
        dir.path(),
        &["--config", "wharf.toml", "--user", "judge:pw"],
        // Every level: reqsign, for one, logs its credential provider at debug.
        &[("RUST_LOG", "debug")],
    );
    let mut c = Ctrl::connect(wharf.ftp());
    c.login("judge", "pw");
    c.cmd("TYPE I");
    let mut replies = String::new();
    // A presigned GET that times out.
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
    let stderr = wharf.stop();
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
