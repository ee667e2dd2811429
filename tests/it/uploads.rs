//! Uploads a downstream program can trust: atomic uploads (nothing under the final name
//! until the transfer completes), and what a failed one leaves behind.

use std::io::Write;
use std::time::{Duration, Instant};

use wharf::config::{AnonymousMode, FailedUploads};

use crate::harness::*;

fn temp_files(s: &TestServer, dir: &str) -> Vec<String> {
    std::fs::read_dir(s.path(dir))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".wharf-upload."))
        .collect()
}

/// Waits (bounded) until the server has removed its temporary files.
fn wait_no_temp(s: &TestServer, dir: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !temp_files(s, dir).is_empty() {
        assert!(
            Instant::now() < deadline,
            "temporary upload left: {:?}",
            temp_files(s, dir)
        );
        std::thread::yield_now();
    }
}

#[test]
fn atomic_upload_appears_only_when_complete() {
    let s = TestServer::with(|cfg| cfg.atomic_uploads = Some(true));
    let mut c = s.login();
    c.cmd("TYPE I");
    let mut data = c.epsv();
    assert_eq!(c.cmd("STOR big.bin").code, 150);
    data.write_all(&bytes(300_000, 21)).unwrap();
    data.flush().unwrap();
    // Mid-transfer: the final name does not exist, the temporary one is hidden from LIST.
    assert!(!s.path("big.bin").exists());
    let mut other = s.login();
    let (_, list) = other.retr("NLST");
    assert!(!String::from_utf8_lossy(&list).contains("wharf-upload"));
    data.write_all(&bytes(100_000, 22)).unwrap();
    drop(data);
    assert_eq!(c.read_reply().code, 226);
    let mut want = bytes(300_000, 21);
    want.extend(bytes(100_000, 22));
    assert_eq!(std::fs::read(s.path("big.bin")).unwrap(), want);
    assert!(temp_files(&s, "").is_empty());
}

#[test]
fn killed_client_leaves_nothing_under_the_final_name() {
    let s = TestServer::with(|cfg| cfg.atomic_uploads = Some(true));
    std::fs::write(s.path("keep.bin"), b"old contents").unwrap();
    for name in ["new.bin", "keep.bin"] {
        let mut c = s.login();
        c.cmd("TYPE I");
        let mut data = c.epsv();
        assert_eq!(c.cmd(&format!("STOR {name}")).code, 150);
        data.write_all(&bytes(200_000, 23)).unwrap();
        // The client dies: both connections vanish without a QUIT.
        drop(data);
        drop(c);
        wait_no_temp(&s, "");
    }
    // A vanished client's partial data is treated as complete by TCP (FIN), so check the
    // abort path too: ABOR mid-upload.
    let mut c = s.login();
    c.cmd("TYPE I");
    let mut data = c.epsv();
    assert_eq!(c.cmd("STOR aborted.bin").code, 150);
    data.write_all(&bytes(100_000, 24)).unwrap();
    c.send_raw(b"ABOR\r\n");
    assert_eq!(c.read_reply().code, 426);
    assert_eq!(c.read_reply().code, 226);
    drop(data);
    wait_no_temp(&s, "");
    assert!(
        !s.path("aborted.bin").exists(),
        "aborted upload under its final name"
    );
    assert!(
        !s.path("new.bin").exists(),
        "a killed client's upload under its final name"
    );
    assert_eq!(std::fs::read(s.path("keep.bin")).unwrap(), b"old contents");
}

#[test]
fn drop_box_is_atomic_by_default_and_never_overwrites() {
    let s = TestServer::with(|cfg| cfg.anonymous = AnonymousMode::Upload);
    let mut c = Ctrl::connect(s.v4);
    c.login("anonymous", "scanner@example.com");
    c.cmd("TYPE I");
    let mut data = c.epsv();
    assert_eq!(c.cmd("STOR scan.pdf").code, 150);
    data.write_all(b"%PDF half").unwrap();
    data.flush().unwrap();
    assert!(!s.path("scan.pdf").exists(), "visible before complete");
    assert_eq!(temp_files(&s, "").len(), 1);
    drop(data);
    assert_eq!(c.read_reply().code, 226);
    assert_eq!(std::fs::read(s.path("scan.pdf")).unwrap(), b"%PDF half");
    let (r, _) = c.stor("STOR scan.pdf", b"second");
    assert_eq!(r.code, 553);
    assert_eq!(std::fs::read(s.path("scan.pdf")).unwrap(), b"%PDF half");
}

#[test]
fn failed_uploads_can_be_kept_for_resume() {
    let s = TestServer::with(|cfg| {
        cfg.atomic_uploads = Some(true);
        cfg.failed_uploads = FailedUploads::Keep;
    });
    let mut c = s.login();
    c.cmd("TYPE I");
    let mut data = c.epsv();
    assert_eq!(c.cmd("STOR part.bin").code, 150);
    data.write_all(&bytes(50_000, 25)).unwrap();
    data.flush().unwrap();
    // Wait (bounded) until the server has read it all, then abort.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !c.cmd("STAT").text().contains("50000 bytes") {
        assert!(Instant::now() < deadline, "server never read the data");
    }
    c.send_raw(b"ABOR\r\n");
    assert_eq!(c.read_reply().code, 426);
    assert_eq!(c.read_reply().code, 226);
    drop(data);
    let kept = std::fs::read(s.path("part.bin")).unwrap();
    assert_eq!(kept.len(), 50_000);
    assert_eq!(c.cmd("REST 40000").code, 350);
    let kept = &kept[..40_000];
    // Resume where it stopped.
    assert_eq!(c.cmd(&format!("REST {}", kept.len())).code, 350);
    let (_, r) = c.stor("STOR part.bin", &bytes(50_000, 25)[kept.len()..]);
    assert_eq!(r.code, 226);
    assert_eq!(
        std::fs::read(s.path("part.bin")).unwrap(),
        bytes(50_000, 25)
    );
}
