//! The `wharf` binary itself: `serve` on the embedded default, `check-config`,
//! `hash-password`.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::processes::{WHARF, Wharf, serve};

#[test]
fn check_config_accepts_the_example_and_explains() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/wharf.example.toml");
    let out = Command::new(WHARF)
        .args(["check-config", example])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("user alice"), "{text}");
    assert!(text.contains("passive ports: 50000-50999"), "{text}");
}

#[test]
fn check_config_names_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "root = \"/srv\"\nanonymus = \"read\"\n").unwrap();
    let out = Command::new(WHARF)
        .arg("check-config")
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml:2:"), "{err}");
    assert!(err.contains("anonymus"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let out = Command::new(WHARF)
        .args(["check-config", "/nonexistent/wharf.toml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn hash_password_reads_stdin() {
    let mut child = Command::new(WHARF)
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"s3cret\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let hash = String::from_utf8(out.stdout).unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains("s3cret"));
}

#[test]
fn serve_on_the_embedded_default_creates_ftp_and_says_how_to_connect() {
    let dir = tempfile::tempdir().unwrap();
    // Port 0 keeps tests parallel; everything else is the embedded default.
    let wharf = Wharf::start(
        serve()
            .args(["--listen", "127.0.0.1:0"])
            .current_dir(dir.path()),
        &dir.path().join("stderr.log"),
    );
    let line = wharf.line.clone();
    drop(wharf);
    assert!(line.contains("curl ftp://127.0.0.1:"), "{line}");
    assert!(line.contains("anonymous: read"), "{line}");
    assert!(dir.path().join("ftp").is_dir());
}

#[test]
fn serve_rejects_bad_flags_without_panicking() {
    let out = Command::new(WHARF)
        .args(["serve", "--anonymous", "maybe"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    let out = Command::new(WHARF)
        .args(["serve", "--user", "nocolon", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("WHARF_PASSWORD_NOCOLON"));
}
