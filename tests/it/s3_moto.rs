//! S3 roots on a second S3 implementation: moto (`moto_server`, from PyPI), whose replies
//! differ from Garage's (ListParts' root is `ListPartsResponse`). An interrupted upload is
//! resumed with curl sending only the missing bytes, and the object is byte-exact; a time
//! set with MFMT is kept and listed; names are kept exactly (edge spaces included), by
//! commands and by Python's ftplib.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use wharf::config::{StorageConfig, StorageKind};

use crate::clients_util::*;
use crate::harness::*;
use crate::processes::{http, listens_on};
use crate::s3::{BUCKET, PART, S3Server, await_parts, server, visible};

/// A moto S3 server on a loopback port, with the bucket made; killed when dropped.
pub struct Moto {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Moto {
    /// Starts moto, or `None` (outside CI) when `moto_server` is not installed.
    pub fn start() -> Option<Moto> {
        if !have("moto_server") {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        for _ in 0..5 {
            let port = quiet_ports(1).low;
            let log = std::fs::File::create(dir.path().join("moto.log")).unwrap();
            let mut child = Command::new("moto_server")
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("start moto_server");
            let pid = child.id();
            let ended = |c: &mut Child| c.try_wait().ok().flatten().is_some();
            wait_for(Duration::from_secs(30), || {
                listens_on(pid, port) || ended(&mut child)
            });
            if listens_on(pid, port) {
                let addr = format!("127.0.0.1:{port}").parse().unwrap();
                let head = format!("PUT /{BUCKET} HTTP/1.1\r\nHost: 127.0.0.1:{port}");
                let (status, answer) = http(addr, &head, "");
                assert_eq!(status, 200, "moto: create the bucket: {answer}");
                return Some(Moto { child, port, dir });
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "moto_server did not start: {}",
            std::fs::read_to_string(dir.path().join("moto.log")).unwrap_or_default()
        );
    }
}

impl S3Server for Moto {
    fn storage(&self, name: &str, prefix: &str) -> StorageConfig {
        let creds = self.dir.path().join("credentials");
        std::fs::write(
            &creds,
            "access_key_id = \"testing\"\nsecret_access_key = \"testing\"\n",
        )
        .unwrap();
        StorageConfig {
            name: name.into(),
            kind: StorageKind::S3,
            bucket: Some(BUCKET.into()),
            prefix: Some(prefix.into()),
            endpoint: Some(format!("http://127.0.0.1:{}", self.port)),
            region: Some("us-east-1".into()),
            path_style: true,
            credentials_file: Some(creds),
            part_size: PART,
            timeout: 10,
            retries: 2,
            ..StorageConfig::default()
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn moto_resumes_an_interrupted_upload_with_curl() {
    if !have("curl") {
        return;
    }
    let Some(m) = Moto::start() else { return };
    let s = server(&m, "resume", |_| {});
    let home = scratch();
    let data = bytes(2 * PART + 777, 43);
    let file = home.path().join("scan.pdf");
    put_file(&file, &data);
    {
        // The first attempt dies after one part and a bit.
        let mut c = s.login();
        assert_eq!(c.cmd("TYPE I").code, 200);
        let mut conn = c.epsv();
        assert_eq!(c.cmd("STOR scan.pdf").code, 150);
        conn.write_all(&data[..PART + 50_000]).unwrap();
        await_parts(&m, "resume", "/scan.pdf", PART);
        s.kill_client(c, conn);
    }
    assert!(!visible(&m, "resume", "/scan.pdf"));
    // SIZE reads ListParts: the stored part, not 451.
    let mut c = s.login();
    assert_eq!(c.cmd("TYPE I").code, 200);
    let size = c.cmd("SIZE scan.pdf");
    assert_eq!(size.text().trim(), format!("213 {PART}"));
    drop(c);
    let mut c = client("curl", home.path());
    c.args([
        "-sS",
        "--max-time",
        "60",
        "-C",
        "-",
        "-w",
        "%{size_upload}",
        "-T",
    ])
    .arg(&file)
    .arg(s.url("scan.pdf"));
    let sent: u64 = ok(&exec0(&mut c), "curl -C - -T").trim().parse().unwrap();
    assert_eq!(sent, (data.len() - PART) as u64, "bytes sent on resume");
    let got = home.path().join("got.pdf");
    let mut c = client("curl", home.path());
    c.args(["-sS", "--max-time", "60", "-o"])
        .arg(&got)
        .arg(s.url("scan.pdf"));
    ok(&exec0(&mut c), "curl download");
    assert!(
        std::fs::read(&got).unwrap() == data,
        "resumed object differs"
    );
}

#[test]
fn moto_keeps_names_exactly() {
    let Some(m) = Moto::start() else { return };
    crate::s3_ops::names_keep_their_spaces(&m);
}

/// Python's ftplib with odd names (accents, emoji, edge spaces, `%`, quotes) on moto.
#[test]
fn moto_ftplib_names_round_trip() {
    let Some(m) = Moto::start() else { return };
    if !have("python3") {
        return;
    }
    let s = server(&m, "names", |_| {});
    crate::clients_ftplib::names_through_the_protocol(&s);
}
