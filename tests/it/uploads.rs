//! Uploads a downstream program can trust: atomic uploads (nothing under the final name
//! until the transfer completes), and what a failed one leaves behind.

use std::io::Write;
use std::time::Duration;

use wharf::config::{AnonymousMode, FailedUploads};

use crate::harness::*;

fn temp_files(s: &TestServer, dir: &str) -> Vec<String> {
    std::fs::read_dir(s.path(dir))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".wharf-upload.") && !n.starts_with(".wharf-upload.resume-"))
        .collect()
}

/// The interrupted uploads kept for a resume in `dir`.
fn resume_files(s: &TestServer, dir: &str) -> Vec<String> {
    std::fs::read_dir(s.path(dir))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".wharf-upload.resume-"))
        .collect()
}

/// Waits (bounded) until the server has removed its temporary files.
fn wait_no_temp(s: &TestServer, dir: &str) {
    assert!(
        wait_for(Duration::from_secs(10), || temp_files(s, dir).is_empty()).is_some(),
        "temporary upload left: {:?}",
        temp_files(s, dir)
    );
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
        data.flush().unwrap();
        await_received(&mut c, 200_000);
        // The client dies: both connections vanish without a QUIT (the control connection
        // first: a data connection closed first would pass for a complete file).
        s.kill_client(c, data);
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
    // ABOR discards; the killed ones wait hidden for a resume.
    assert_eq!(resume_files(&s, "").len(), 2, "{:?}", resume_files(&s, ""));
}

/// With the defaults, a user's interrupted upload is never half there: nothing appears
/// under its name, SIZE answers what was stored, REST at that offset (or APPE) continues
/// it, any other offset is refused naming the right one, and it appears when complete.
#[test]
fn interrupted_uploads_stay_hidden_and_resume_by_default() {
    let s = TestServer::start();
    let whole = bytes(300_000, 31);
    let mut c = s.login();
    c.cmd("TYPE I");
    let mut data = c.epsv();
    assert_eq!(c.cmd("STOR doc.pdf").code, 150);
    data.write_all(&whole[..120_000]).unwrap();
    data.flush().unwrap();
    await_received(&mut c, 120000);
    s.kill_client(c, data);
    assert!(
        wait_for(Duration::from_secs(10), || resume_files(&s, "").len() == 1).is_some(),
        "kept for a resume: {:?}",
        resume_files(&s, "")
    );
    assert!(!s.path("doc.pdf").exists(), "half there under its name");
    let mut c = s.login();
    let (_, list) = c.retr("NLST");
    assert!(
        list.is_empty(),
        "listed: {}",
        String::from_utf8_lossy(&list)
    );
    c.cmd("TYPE I");
    assert_eq!(c.cmd("SIZE doc.pdf").text(), "213 120000\r\n");
    assert_eq!(c.cmd("REST 100000").code, 350);
    let _data = c.epsv();
    let r = c.cmd("STOR doc.pdf");
    assert_eq!(
        r.text(),
        "554 Resume is possible only at offset 120000; send REST 120000.\r\n"
    );
    drop(_data);
    // APPE goes on too (curl -C -): a part of the rest, interrupted again, then REST.
    let mut data = c.epsv();
    assert_eq!(c.cmd("APPE doc.pdf").code, 150);
    data.write_all(&whole[120_000..200_000]).unwrap();
    data.flush().unwrap();
    await_received(&mut c, 80000);
    s.kill_client(c, data);
    let mut c = s.login();
    c.cmd("TYPE I");
    assert!(
        wait_for(Duration::from_secs(10), || c.cmd("SIZE doc.pdf").text()
            == "213 200000\r\n")
        .is_some()
    );
    assert_eq!(c.cmd("REST 200000").code, 350);
    let (_, done) = c.stor("STOR doc.pdf", &whole[200_000..]);
    assert_eq!(done.code, 226, "{}", done.text());
    assert_eq!(std::fs::read(s.path("doc.pdf")).unwrap(), whole);
    assert!(resume_files(&s, "").is_empty());
    wait_no_temp(&s, "");
    assert_eq!(c.cmd("SIZE doc.pdf").text(), "213 300000\r\n");

    // ABOR discards an interrupted upload's continuation too, and a fresh STOR that
    // completes ends an interrupted one.
    let mut data = c.epsv();
    assert_eq!(c.cmd("STOR other.bin").code, 150);
    data.write_all(&whole[..50_000]).unwrap();
    c.send_raw(b"ABOR\r\n");
    assert_eq!(c.read_reply().code, 426);
    assert_eq!(c.read_reply().code, 226);
    drop(data);
    wait_no_temp(&s, "");
    assert!(resume_files(&s, "").is_empty(), "ABOR kept it");
    assert_eq!(c.cmd("SIZE other.bin").code, 550);
}

/// A stranger cannot park data: the anonymous drop box has no resume, so what a killed
/// anonymous upload sent is removed, not kept for a day.
#[test]
fn a_killed_drop_box_upload_is_not_kept() {
    let s = TestServer::with(|cfg| cfg.anonymous = Some(AnonymousMode::Upload));
    let mut c = Ctrl::connect(s.v4);
    c.login("anonymous", "x@example.com");
    c.cmd("TYPE I");
    let mut data = c.epsv();
    assert_eq!(c.cmd("STOR scan.pdf").code, 150);
    data.write_all(&bytes(90_000, 33)).unwrap();
    data.flush().unwrap();
    await_received(&mut c, 90000);
    s.kill_client(c, data);
    wait_no_temp(&s, "");
    assert!(
        resume_files(&s, "").is_empty(),
        "{:?}",
        resume_files(&s, "")
    );
    assert!(!s.path("scan.pdf").exists());
}

/// `atomic_uploads = false` keeps today's in-place writes: the partial file is there.
#[test]
fn atomic_uploads_false_writes_in_place() {
    let s = TestServer::with(|cfg| cfg.atomic_uploads = Some(false));
    let mut c = s.login();
    c.cmd("TYPE I");
    let mut data = c.epsv();
    assert_eq!(c.cmd("STOR inplace.bin").code, 150);
    data.write_all(&bytes(64_000, 32)).unwrap();
    data.flush().unwrap();
    assert!(
        wait_for(Duration::from_secs(10), || std::fs::metadata(
            s.path("inplace.bin")
        )
        .is_ok_and(|m| m.len() == 64_000))
        .is_some(),
        "not written in place"
    );
    s.kill_client(c, data);
    assert!(resume_files(&s, "").is_empty());
}

#[test]
fn drop_box_is_atomic_by_default_and_never_overwrites() {
    let s = TestServer::with(|cfg| cfg.anonymous = Some(AnonymousMode::Upload));
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
    await_received(&mut c, 50000);
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

/// A plain binary upload is spliced on a thread of its own; a client that goes quiet still
/// ends it at `data_stall_timeout`, with a 426 and a session that goes on.
#[test]
fn a_stalled_upload_ends_at_the_stall_timeout() {
    let s = TestServer::with(|cfg| cfg.data_stall_timeout = 1);
    let mut c = s.login();
    c.cmd("TYPE I");
    let mut data = c.epsv();
    assert_eq!(c.cmd("STOR quiet.bin").code, 150);
    data.write_all(&bytes(10_000, 9)).unwrap();
    let started = std::time::Instant::now();
    let r = c.read_reply();
    assert_eq!(r.code, 426, "{}", r.text());
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(800) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    drop(data);
    assert_eq!(c.cmd("NOOP").code, 200);
}

/// Waits (bounded) for the file a hook writes, ending in `END`; its contents.
fn hook_record(path: &std::path::Path) -> String {
    let read = || std::fs::read_to_string(path).unwrap_or_default();
    let done = wait_for(Duration::from_secs(20), || read().ends_with("END\n"));
    assert!(done.is_some(), "hook never ran");
    read()
}

#[test]
fn upload_hook_command_gets_the_upload_in_its_environment() {
    let out = tempfile::tempdir().unwrap();
    let record = out.path().join("env.txt");
    let script = format!(
        "env | grep ^WHARF_ | sort > {0}.tmp; echo END >> {0}.tmp; mv {0}.tmp {0}",
        record.display()
    );
    let s = TestServer::with(move |cfg| {
        cfg.upload_hook = vec!["/bin/sh".into(), "-c".into(), script];
    });
    std::fs::create_dir(s.path("in")).unwrap();
    let mut c = s.login();
    c.cmd("TYPE I");
    let (_, r) = c.stor("STOR in/scan 1.pdf", b"12345");
    assert_eq!(r.code, 226);
    let env = hook_record(&record);
    assert!(env.contains("WHARF_PATH=/in/scan 1.pdf\n"), "{env}");
    assert!(env.contains("WHARF_USER=judge\n"), "{env}");
    assert!(env.contains("WHARF_CLIENT=127.0.0.1\n"), "{env}");
    assert!(env.contains("WHARF_SIZE=5\n"), "{env}");
    let file = env
        .lines()
        .find_map(|l| l.strip_prefix("WHARF_FILE="))
        .unwrap();
    assert_eq!(std::fs::read(file).unwrap(), b"12345");
}

#[test]
fn upload_hook_url_receives_json_and_a_failing_hook_changes_nothing() {
    let http = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/uploaded", http.local_addr().unwrap());
    let s = TestServer::with(move |cfg| {
        cfg.upload_hook_url = Some(url);
        // A command that fails: the FTP reply must not care.
        cfg.upload_hook = vec!["/bin/false".into()];
    });
    let mut c = s.login();
    let (_, r) = c.stor("STOR a.txt", b"hello");
    assert_eq!(r.code, 226);
    let (mut conn, _) = http.accept().unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut req = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&req).contains("}") {
        let n = std::io::Read::read(&mut conn, &mut buf).unwrap();
        assert!(n > 0);
        req.extend_from_slice(&buf[..n]);
    }
    conn.write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
        .unwrap();
    let req = String::from_utf8_lossy(&req);
    assert!(req.starts_with("POST /uploaded"), "{req}");
    let body = &req[req.find('{').unwrap()..];
    let json: serde_json::Value = serde_json::from_str(body.trim_end_matches('\0')).unwrap();
    assert_eq!(json["path"], "/a.txt");
    assert_eq!(json["user"], "judge");
    assert_eq!(json["size"], 5);
    assert_eq!(c.cmd("NOOP").code, 200);
}

fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

#[test]
fn upload_modes_and_owner() {
    if !is_root() {
        eprintln!("skipping: needs root to give files away");
        return;
    }
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    let s = TestServer::with(|cfg| {
        cfg.upload_mode = Some(0o640);
        cfg.dir_mode = Some(0o750);
        cfg.upload_owner = Some("nobody".into());
    });
    let mut c = s.login();
    assert_eq!(c.cmd("MKD d").code, 257);
    let (_, r) = c.stor("STOR d/f", b"x");
    assert_eq!(r.code, 226);
    use std::os::unix::fs::MetadataExt;
    let f = std::fs::metadata(s.path("d/f")).unwrap();
    assert_eq!((f.mode() & 0o7777, f.uid()), (0o640, nobody.uid.as_raw()));
    let d = std::fs::metadata(s.path("d")).unwrap();
    assert_eq!((d.mode() & 0o7777, d.uid()), (0o750, nobody.uid.as_raw()));
}

#[test]
fn run_as_drops_root_after_binding() {
    if !is_root() {
        eprintln!("skipping: needs root to drop privileges");
        return;
    }
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ftp");
    std::fs::create_dir(&root).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o777)).unwrap();
    let cfg = dir.path().join("wharf.toml");
    std::fs::write(&cfg, "run_as = \"nobody\"\nlisten = [\"127.0.0.1:0\"]\n").unwrap();
    let mut wharf = crate::processes::Wharf::start(
        crate::processes::serve()
            .arg("--config")
            .arg(&cfg)
            .arg("--root")
            .arg(&root)
            .args(["--user", "judge:pw"]),
        &dir.path().join("stderr.log"),
    );
    let addr = wharf.ftp();
    let status = std::fs::read_to_string(format!("/proc/{}/status", wharf.pid())).unwrap();
    let uid_line = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .unwrap()
        .to_string();
    let mut c = Ctrl::connect(addr);
    c.login("judge", "pw");
    let (_, r) = c.stor("STOR owned.txt", b"mine");
    wharf.kill();
    assert_eq!(r.code, 226);
    let uid = nobody.uid.as_raw();
    assert!(
        uid_line
            .split_whitespace()
            .skip(1)
            .all(|u| u == uid.to_string()),
        "{uid_line}"
    );
    assert_eq!(
        std::fs::metadata(root.join("owned.txt")).unwrap().uid(),
        uid
    );
}

/// The self-signed certificate is generated as root, before the drop: it must stay readable
/// to `run_as`, or every reload (which re-reads it) fails as the packaged service runs it.
#[test]
fn run_as_can_reload_the_generated_certificate() {
    if !is_root() {
        eprintln!("skipping: needs root to drop privileges");
        return;
    }
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let state = dir.path().join("state");
    let root = dir.path().join("ftp");
    std::fs::create_dir(&root).unwrap();
    let cfg = dir.path().join("wharf.toml");
    let text = format!(
        "run_as = \"nobody\"\nlisten = [\"127.0.0.1:0\"]\nadmin_listen = \"127.0.0.1:0\"\n\
         tls = \"optional\"\ntls_dir = \"{}\"\n",
        state.display()
    );
    std::fs::write(&cfg, text).unwrap();
    let mut wharf = crate::processes::Wharf::start(
        crate::processes::serve()
            .arg("--config")
            .arg(&cfg)
            .arg("--root")
            .arg(&root),
        &dir.path().join("stderr.log"),
    );
    let admin = wharf.admin().to_string();
    let out = crate::processes::cli(dir.path(), &["reload", "--admin", &admin]);
    let log = wharf.log();
    wharf.kill();
    assert!(
        out.status.success(),
        "{}{log}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = std::fs::metadata(state.join(wharf::tls::GENERATED_KEY)).unwrap();
    assert_eq!(
        (key.uid(), key.mode() & 0o777),
        (nobody.uid.as_raw(), 0o600)
    );
}

/// A node killed mid-upload leaves its hidden temporary; the next start (and every hour)
/// removes temporaries unwritten for longer than a live upload can be, and nothing else.
#[test]
fn the_janitor_removes_stale_upload_temporaries_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ftp");
    std::fs::create_dir_all(root.join("scans")).unwrap();
    let stale = root.join("scans/.wharf-upload.00000000deadbeef.big.iso");
    let live = root.join("scans/.wharf-upload.00000000cafebabe.live.iso");
    let kept = root.join("scans/old.pdf");
    for f in [&stale, &live, &kept] {
        std::fs::write(f, b"partial").unwrap();
    }
    let two_hours_ago = std::time::SystemTime::now() - Duration::from_secs(7200);
    for f in [&stale, &kept] {
        std::fs::File::options()
            .write(true)
            .open(f)
            .unwrap()
            .set_modified(two_hours_ago)
            .unwrap();
    }
    let mut wharf = crate::processes::Wharf::start(
        crate::processes::serve()
            .args(["--no-config", "--listen", "127.0.0.1:0", "--root"])
            .arg(&root),
        &dir.path().join("stderr.log"),
    );
    let gone = wait_for(Duration::from_secs(10), || !stale.exists());
    let log = wharf.log();
    wharf.kill();
    assert!(gone.is_some(), "{log}");
    assert!(live.exists() && kept.exists());
    assert!(log.contains("removed stale upload temporaries"), "{log}");
}

/// RUST_BACKTRACE=1 in wharf's environment must not make every library error capture a
/// backtrace (storage timeouts: cost and memory); panics keep theirs. What wharf runs
/// (an upload hook here) shows the process's setting.
#[test]
fn rust_backtrace_does_not_reach_library_errors() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ftp");
    std::fs::create_dir(&root).unwrap();
    let seen = dir.path().join("env.txt");
    let cfg = dir.path().join("wharf.toml");
    std::fs::write(
        &cfg,
        format!(
            "anonymous = \"write\"\nupload_hook = [\"/bin/sh\", \"-c\", \"env > {}\"]\n",
            seen.display()
        ),
    )
    .unwrap();
    let mut wharf = crate::processes::Wharf::start(
        crate::processes::serve()
            .args(["--listen", "127.0.0.1:0", "--config"])
            .arg(&cfg)
            .arg("--root")
            .arg(&root)
            .env("RUST_BACKTRACE", "1")
            .env_remove("RUST_LIB_BACKTRACE"),
        &dir.path().join("stderr.log"),
    );
    let mut c = Ctrl::connect(wharf.ftp());
    c.login("anonymous", "x@example.com");
    let (_, r) = c.stor("STOR a.txt", b"x");
    assert_eq!(r.code, 226, "{}", r.text());
    let ran = wait_for(Duration::from_secs(10), || {
        std::fs::read_to_string(&seen).is_ok_and(|e| e.contains("RUST_BACKTRACE"))
    });
    wharf.kill();
    assert!(ran.is_some(), "the hook ran");
    let env = std::fs::read_to_string(&seen).unwrap();
    assert!(env.lines().any(|l| l == "RUST_LIB_BACKTRACE=0"), "{env}");
}

/// An upload refused at its start (a TLS policy, after the name was checked and opened)
/// leaves no hidden file behind, and nothing of it reaches the next transfer.
#[test]
fn an_upload_refused_at_its_start_leaves_nothing() {
    let s = TestServer::tls(|c| {
        c.tls_data = wharf::config::TlsData::Required;
        c.users[0].quota_bytes = Some(1_000_000);
    });
    let mut c = s.login();
    c.cmd("TYPE I");
    let _data = c.epsv();
    let r = c.cmd("STOR refused.bin");
    assert_eq!(r.code, 521, "{}", r.text());
    assert!(temp_files(&s, "").is_empty(), "{:?}", temp_files(&s, ""));
    assert!(!s.path("refused.bin").exists());
    assert!(c.cmd("SITE QUOTA").text().contains("Bytes: 0 of 1000000"));
}
