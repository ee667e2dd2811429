//! curl against wharf: listing, download, upload, resume both ways, ranges, SIZE/MDTM
//! headers, active (EPRT/PORT) and passive (EPSV/PASV) data connections, the bounce check,
//! the PASV public address, IPv6, `--ftp-create-dirs`, quote commands (DELE, RNFR/RNTO,
//! MKD/RMD), anonymous read and the drop box (refuse or unique names), TYPE A and awkward
//! names. Every result is checked byte for byte against the server's disk, and every
//! refusal by curl's exit code (which names the FTP step that failed).

use wharf::config::AnonymousMode;

use crate::clients_util::*;
use crate::harness::*;

/// An anonymous URL (no credentials: curl logs in as `anonymous`).
fn anon_url(s: &TestServer, rel: &str) -> String {
    format!("ftp://127.0.0.1:{}/{rel}", s.v4.port())
}

#[test]
fn curl_lists_a_directory_long_and_names_only() {
    if !have("curl") {
        return;
    }
    let s = TestServer::start();
    let home = scratch();
    put_file(&s.path("hello.txt"), b"hello\n");
    put_file(&s.path("big.bin"), &bytes(123_456, 1));
    std::fs::create_dir(s.path("sub")).unwrap();

    let out = curl(home.path(), &[&s.url("")]);
    let text = ok(&out, "curl LIST");
    let list = lines(&text);
    assert_eq!(list.len(), 3, "LIST should show 3 entries:\n{text}");
    for line in &list {
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert!(fields.len() >= 9, "not an ls -l line: {line:?}");
        assert!(
            [
                "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
            ]
            .contains(&fields[5]),
            "month should be English: {line:?}"
        );
    }
    let big = list
        .iter()
        .find(|l| l.ends_with(" big.bin"))
        .expect("big.bin listed");
    assert!(big.starts_with('-'), "{big}");
    assert_eq!(
        big.split_whitespace().nth(4),
        Some("123456"),
        "size column: {big}"
    );
    let sub = list
        .iter()
        .find(|l| l.ends_with(" sub"))
        .expect("sub listed");
    assert!(sub.starts_with('d'), "{sub}");

    let out = curl(home.path(), &["--list-only", &s.url("")]);
    let mut names = lines(&ok(&out, "curl NLST"));
    names.sort();
    assert_eq!(names, ["big.bin", "hello.txt", "sub"]);
}

#[test]
fn curl_downloads_and_uploads_exact_bytes() {
    if !have("curl") {
        return;
    }
    let s = TestServer::start();
    let home = scratch();
    let down = bytes(1_048_576 + 17, 2);
    put_file(&s.path("dir/down.bin"), &down);
    put_file(&s.path("empty"), b"");

    let local = home.path().join("got.bin");
    ok(
        &curl(
            home.path(),
            &["-o", local.to_str().unwrap(), &s.url("dir/down.bin")],
        ),
        "curl RETR",
    );
    assert_file(&local, &down);
    let local_empty = home.path().join("empty");
    ok(
        &curl(
            home.path(),
            &["-o", local_empty.to_str().unwrap(), &s.url("empty")],
        ),
        "curl RETR of an empty file",
    );
    assert_file(&local_empty, b"");

    let up = bytes(777_777, 3);
    let src = home.path().join("up.bin");
    put_file(&src, &up);
    ok(
        &curl(
            home.path(),
            &["-T", src.to_str().unwrap(), &s.url("dir/up.bin")],
        ),
        "curl STOR",
    );
    assert_file(&s.path("dir/up.bin"), &up);

    // Overwriting an existing file replaces it whole (a shorter upload truncates).
    let shorter = bytes(1000, 4);
    put_file(&src, &shorter);
    ok(
        &curl(
            home.path(),
            &["-T", src.to_str().unwrap(), &s.url("dir/up.bin")],
        ),
        "curl STOR over an existing file",
    );
    assert_file(&s.path("dir/up.bin"), &shorter);

    // An empty upload makes an empty file.
    let nothing = home.path().join("nothing");
    put_file(&nothing, b"");
    ok(
        &curl(
            home.path(),
            &["-T", nothing.to_str().unwrap(), &s.url("dir/nothing")],
        ),
        "curl STOR of an empty file",
    );
    assert_file(&s.path("dir/nothing"), b"");

    // Downloading a missing file: 550 to RETR, curl exit 78 (CURLE_REMOTE_FILE_NOT_FOUND).
    let out = curl(home.path(), &["-o", "/dev/null", &s.url("dir/nope.bin")]);
    exit_code(&out, 78, "curl RETR of a missing file");
}

#[test]
fn curl_resumes_a_download() {
    if !have("curl") {
        return;
    }
    let s = TestServer::start();
    let home = scratch();
    let full = bytes(300_001, 5);
    put_file(&s.path("resume.bin"), &full);
    let local = home.path().join("resume.bin");
    put_file(&local, &full[..123_457]);
    // REST 123457 + RETR.
    ok(
        &curl(
            home.path(),
            &[
                "-C",
                "-",
                "-o",
                local.to_str().unwrap(),
                &s.url("resume.bin"),
            ],
        ),
        "curl -C - download",
    );
    assert_file(&local, &full);
}

/// An upload interrupted by a killed client stays hidden; `curl -C -` finds its length with
/// SIZE, sends only the rest, and the file appears whole.
#[test]
fn curl_resumes_an_interrupted_upload_on_disk() {
    if !have("curl") {
        return;
    }
    let s = TestServer::start();
    let home = scratch();
    let full = bytes(400_000, 7);
    let local = home.path().join("scan.pdf");
    put_file(&local, &full);
    let mut c = s.login();
    c.cmd("TYPE I");
    let mut data = c.epsv();
    assert_eq!(c.cmd("STOR scan.pdf").code, 150);
    std::io::Write::write_all(&mut data, &full[..150_000]).unwrap();
    assert!(
        wait_for(std::time::Duration::from_secs(10), || c
            .cmd("STAT")
            .text()
            .contains("150000 bytes"))
        .is_some()
    );
    s.kill_client(c, data);
    assert!(!s.path("scan.pdf").exists(), "half there");
    let out = ok(
        &curl(
            home.path(),
            &[
                "-C",
                "-",
                "-w",
                "%{size_upload}",
                "-T",
                local.to_str().unwrap(),
                &s.url("scan.pdf"),
            ],
        ),
        "curl -C - upload",
    );
    assert_eq!(out.trim(), "250000", "bytes sent on resume");
    assert_file(&s.path("scan.pdf"), &full);
}

#[test]
fn curl_resumes_an_upload() {
    if !have("curl") {
        return;
    }
    let s = TestServer::start();
    let home = scratch();
    let full = bytes(300_001, 6);
    put_file(&s.path("partial.bin"), &full[..100_000]);
    let local = home.path().join("full.bin");
    put_file(&local, &full);
    // SIZE partial.bin -> 100000, then the rest of the file with APPE.
    ok(
        &curl(
            home.path(),
            &[
                "-C",
                "-",
                "-T",
                local.to_str().unwrap(),
                &s.url("partial.bin"),
            ],
        ),
        "curl -C - upload",
    );
    assert_file(&s.path("partial.bin"), &full);

    // An explicit offset: curl skips that much of the local file and appends the rest.
    put_file(&s.path("partial2.bin"), &full[..4096]);
    ok(
        &curl(
            home.path(),
            &[
                "-C",
                "4096",
                "-T",
                local.to_str().unwrap(),
                &s.url("partial2.bin"),
            ],
        ),
        "curl -C 4096 upload",
    );
    assert_file(&s.path("partial2.bin"), &full);

    // --append: APPE onto an existing file.
    let tail = home.path().join("tail.txt");
    put_file(&tail, b"tail\n");
    put_file(&s.path("log.txt"), b"head\n");
    ok(
        &curl(
            home.path(),
            &["--append", "-T", tail.to_str().unwrap(), &s.url("log.txt")],
        ),
        "curl --append",
    );
    assert_file(&s.path("log.txt"), b"head\ntail\n");
}

#[test]
fn curl_active_mode_eprt_and_port() {
    if !have("curl") {
        return;
    }
    let s = TestServer::start();
    let home = scratch();
    let data = bytes(200_000, 7);
    put_file(&s.path("a.bin"), &data);
    let src = home.path().join("src.bin");
    put_file(&src, &data);
    for (i, extra) in [
        // EPRT |1|127.0.0.1|port|
        &["--ftp-port", "127.0.0.1"][..],
        // PORT 127,0,0,1,p1,p2
        &["--ftp-port", "127.0.0.1", "--disable-eprt"],
        // "-": the address of the control connection.
        &["-P", "-"],
        &["-P", "-", "--disable-eprt"],
    ]
    .into_iter()
    .enumerate()
    {
        let local = home.path().join(format!("got{i}"));
        let mut args = extra.to_vec();
        let dst = s.url("a.bin");
        args.extend(["-o", local.to_str().unwrap(), &dst]);
        ok(
            &curl(home.path(), &args),
            &format!("curl active RETR {extra:?}"),
        );
        assert_file(&local, &data);

        let mut args = extra.to_vec();
        let dst = s.url(&format!("up{i}.bin"));
        args.extend(["-T", src.to_str().unwrap(), &dst]);
        ok(
            &curl(home.path(), &args),
            &format!("curl active STOR {extra:?}"),
        );
        assert_file(&s.path(&format!("up{i}.bin")), &data);

        let mut args = extra.to_vec();
        let dst = s.url("");
        args.extend(["--list-only", &dst]);
        let names = ok(
            &curl(home.path(), &args),
            &format!("curl active NLST {extra:?}"),
        );
        assert!(lines(&names).contains(&"a.bin".to_string()), "{names}");
    }
}

#[test]
fn curl_passive_mode_pasv() {
    if !have("curl") {
        return;
    }
    let s = TestServer::start();
    let home = scratch();
    let data = bytes(150_000, 8);
    put_file(&s.path("p.bin"), &data);
    let local = home.path().join("p.bin");
    ok(
        &curl(
            home.path(),
            &[
                "--disable-epsv",
                "-o",
                local.to_str().unwrap(),
                &s.url("p.bin"),
            ],
        ),
        "curl PASV RETR",
    );
    assert_file(&local, &data);
    ok(
        &curl(
            home.path(),
            &[
                "--disable-epsv",
                "-T",
                local.to_str().unwrap(),
                &s.url("q.bin"),
            ],
        ),
        "curl PASV STOR",
    );
    assert_file(&s.path("q.bin"), &data);
    let list = ok(
        &curl(home.path(), &["--disable-epsv", &s.url("")]),
        "curl PASV LIST",
    );
    assert!(list.contains(" q.bin"), "{list}");
}

#[test]
fn curl_creates_missing_directories() {
    if !have("curl") {
        return;
    }
    let s = TestServer::start();
    let home = scratch();
    let data = bytes(5000, 9);
    let src = home.path().join("f.bin");
    put_file(&src, &data);
    // multicwd (default): CWD a, 550, MKD a, CWD a, ... for each level.
    ok(
        &curl(
            home.path(),
            &[
                "--ftp-create-dirs",
                "-T",
                src.to_str().unwrap(),
                &s.url("a/b/c/f.bin"),
            ],
        ),
        "curl --ftp-create-dirs (multicwd)",
    );
    assert_file(&s.path("a/b/c/f.bin"), &data);
    // singlecwd: CWD x/y/z fails, then one MKD x/y/z that must create the parents too.
    ok(
        &curl(
            home.path(),
            &[
                "--ftp-create-dirs",
                "--ftp-method",
                "singlecwd",
                "-T",
                src.to_str().unwrap(),
                &s.url("x/y/z/f.bin"),
            ],
        ),
        "curl --ftp-create-dirs (singlecwd)",
    );
    assert_file(&s.path("x/y/z/f.bin"), &data);
    // nocwd: STOR with the whole path into an existing directory.
    ok(
        &curl(
            home.path(),
            &[
                "--ftp-method",
                "nocwd",
                "-T",
                src.to_str().unwrap(),
                &s.url("x/y/z/g.bin"),
            ],
        ),
        "curl --ftp-method nocwd",
    );
    assert_file(&s.path("x/y/z/g.bin"), &data);
    // Without --ftp-create-dirs a missing directory fails (CWD 550 -> exit 9).
    let out = curl(
        home.path(),
        &["-T", src.to_str().unwrap(), &s.url("m/n/f.bin")],
    );
    exit_code(&out, 9, "curl upload into a missing directory");
    assert_absent(&s.path("m"));
}

#[test]
fn curl_over_ipv6() {
    if !have("curl") {
        return;
    }
    let s = TestServer::start();
    if !has_v6(&s) {
        return;
    }
    let home = scratch();
    let data = bytes(250_000, 10);
    put_file(&s.path("six.bin"), &data);
    let local = home.path().join("six.bin");
    // EPSV (curl always uses it on IPv6).
    ok(
        &curl(
            home.path(),
            &["-g", "-o", local.to_str().unwrap(), &s.url6("six.bin")],
        ),
        "curl RETR over IPv6",
    );
    assert_file(&local, &data);
    ok(
        &curl(
            home.path(),
            &["-g", "-T", local.to_str().unwrap(), &s.url6("up6.bin")],
        ),
        "curl STOR over IPv6",
    );
    assert_file(&s.path("up6.bin"), &data);
    let list = ok(
        &curl(home.path(), &["-g", &s.url6("")]),
        "curl LIST over IPv6",
    );
    assert!(list.contains(" up6.bin"), "{list}");
    // Active over IPv6: EPRT |2|::1|port|.
    let local2 = home.path().join("six2.bin");
    ok(
        &curl(
            home.path(),
            &[
                "-g",
                "-P",
                "::1",
                "-o",
                local2.to_str().unwrap(),
                &s.url6("six.bin"),
            ],
        ),
        "curl EPRT RETR over IPv6",
    );
    assert_file(&local2, &data);
}

#[test]
fn curl_deletes_and_renames_with_quote_commands() {
    if !have("curl") {
        return;
    }
    let s = TestServer::start();
    let home = scratch();
    put_file(&s.path("gone.txt"), b"x");
    put_file(&s.path("old.txt"), b"old contents");
    std::fs::create_dir(s.path("dir")).unwrap();

    ok(
        &curl(
            home.path(),
            &["-o", "/dev/null", "-Q", "-DELE gone.txt", &s.url("")],
        ),
        "curl DELE",
    );
    assert_absent(&s.path("gone.txt"));

    ok(
        &curl(
            home.path(),
            &[
                "-o",
                "/dev/null",
                "-Q",
                "-RNFR old.txt",
                "-Q",
                "-RNTO dir/new.txt",
                &s.url(""),
            ],
        ),
        "curl RNFR/RNTO",
    );
    assert_absent(&s.path("old.txt"));
    assert_file(&s.path("dir/new.txt"), b"old contents");

    // Renaming onto an existing file replaces it (cameras upload a temporary name, then
    // RNFR/RNTO over the last picture).
    put_file(&s.path("cam_tmp.jpg"), b"new picture");
    put_file(&s.path("cam.jpg"), b"old picture");
    ok(
        &curl(
            home.path(),
            &[
                "-o",
                "/dev/null",
                "-Q",
                "-RNFR cam_tmp.jpg",
                "-Q",
                "-RNTO cam.jpg",
                &s.url(""),
            ],
        ),
        "curl RNFR/RNTO over an existing file",
    );
    assert_absent(&s.path("cam_tmp.jpg"));
    assert_file(&s.path("cam.jpg"), b"new picture");

    // Quote commands before the transfer work too (no `-` prefix).
    ok(
        &curl(
            home.path(),
            &["-o", "/dev/null", "-Q", "MKD made", &s.url("")],
        ),
        "curl MKD",
    );
    assert!(s.path("made").is_dir());
    ok(
        &curl(
            home.path(),
            &["-o", "/dev/null", "-Q", "RMD made", &s.url("")],
        ),
        "curl RMD",
    );
    assert_absent(&s.path("made"));

    // A failing quote command (550 to DELE of a missing file) is curl exit 21.
    let out = curl(
        home.path(),
        &["-o", "/dev/null", "-Q", "-DELE nope.txt", &s.url("")],
    );
    exit_code(&out, 21, "curl DELE of a missing file");
    // Deleting a directory with DELE is refused and leaves it.
    let out = curl(
        home.path(),
        &["-o", "/dev/null", "-Q", "-DELE dir", &s.url("")],
    );
    exit_code(&out, 21, "curl DELE of a directory");
    assert!(s.path("dir/new.txt").is_file());
}

#[test]
fn curl_anonymous_reads_but_may_not_write() {
    if !have("curl") {
        return;
    }
    let s = TestServer::start();
    let home = scratch();
    let data = bytes(40_000, 11);
    put_file(&s.path("pub/file.bin"), &data);

    let local = home.path().join("file.bin");
    ok(
        &curl(
            home.path(),
            &["-o", local.to_str().unwrap(), &anon_url(&s, "pub/file.bin")],
        ),
        "anonymous RETR",
    );
    assert_file(&local, &data);
    let list = ok(
        &curl(home.path(), &[&anon_url(&s, "pub/")]),
        "anonymous LIST",
    );
    assert!(list.contains(" file.bin"), "{list}");

    // STOR refused (550 or 553): curl exit 25 (CURLE_UPLOAD_FAILED); nothing written.
    let out = curl(
        home.path(),
        &["-T", local.to_str().unwrap(), &anon_url(&s, "pub/new.bin")],
    );
    exit_code(&out, 25, "anonymous STOR in read mode");
    assert_absent(&s.path("pub/new.bin"));
    let out = curl(
        home.path(),
        &["-T", local.to_str().unwrap(), &anon_url(&s, "pub/file.bin")],
    );
    exit_code(&out, 25, "anonymous overwrite in read mode");
    assert_file(&s.path("pub/file.bin"), &data);
    // DELE refused: exit 21, the file stays.
    let out = curl(
        home.path(),
        &[
            "-o",
            "/dev/null",
            "-Q",
            "-DELE pub/file.bin",
            &anon_url(&s, ""),
        ],
    );
    exit_code(&out, 21, "anonymous DELE in read mode");
    assert_file(&s.path("pub/file.bin"), &data);
}

#[test]
fn curl_anonymous_off_refuses_login() {
    if !have("curl") {
        return;
    }
    let s = TestServer::with(|c| c.anonymous = Some(AnonymousMode::Off));
    let home = scratch();
    put_file(&s.path("f"), b"secret");
    // 530 to the login: CURLE_LOGIN_DENIED (67).
    let out = curl(home.path(), &["-o", "/dev/null", &anon_url(&s, "f")]);
    exit_code(&out, 67, "anonymous login with anonymous = off");
    // A wrong password is refused the same way.
    let url = format!("ftp://judge:wrong@127.0.0.1:{}/f", s.v4.port());
    let out = curl(home.path(), &["-o", "/dev/null", &url]);
    exit_code(&out, 67, "login with a wrong password");
}

#[test]
fn curl_drop_box_takes_new_files_only() {
    if !have("curl") {
        return;
    }
    let s = TestServer::with(|c| c.anonymous = Some(AnonymousMode::Upload));
    let home = scratch();
    let data = bytes(60_000, 12);
    let src = home.path().join("scan.pdf");
    put_file(&src, &data);
    put_file(&s.path("existing.pdf"), b"keep me");

    ok(
        &curl(
            home.path(),
            &["-T", src.to_str().unwrap(), &anon_url(&s, "scan.pdf")],
        ),
        "drop-box STOR of a new file",
    );
    assert_file(&s.path("scan.pdf"), &data);
    // MKD is allowed: a camera-style nested upload.
    ok(
        &curl(
            home.path(),
            &[
                "--ftp-create-dirs",
                "-T",
                src.to_str().unwrap(),
                &anon_url(&s, "cam/2024/01/a.pdf"),
            ],
        ),
        "drop-box STOR with --ftp-create-dirs",
    );
    assert_file(&s.path("cam/2024/01/a.pdf"), &data);

    // Overwrite refused with 553: exit 25, the old file kept.
    let out = curl(
        home.path(),
        &["-T", src.to_str().unwrap(), &anon_url(&s, "existing.pdf")],
    );
    exit_code(&out, 25, "drop-box overwrite");
    assert_file(&s.path("existing.pdf"), b"keep me");
    // Resuming (APPE onto an existing file) is an overwrite too.
    let out = curl(
        home.path(),
        &[
            "--append",
            "-T",
            src.to_str().unwrap(),
            &anon_url(&s, "existing.pdf"),
        ],
    );
    exit_code(&out, 25, "drop-box APPE onto an existing file");
    assert_file(&s.path("existing.pdf"), b"keep me");
    // No download (RETR 550: exit 78), no listing, no delete, no rename.
    let out = curl(
        home.path(),
        &["-o", "/dev/null", &anon_url(&s, "existing.pdf")],
    );
    exit_code(&out, 78, "drop-box RETR");
    // The exact replies, on a raw control connection: 550 to LIST, NLST and MLSD.
    let mut c = Ctrl::connect(s.v4);
    c.login("anonymous", "cam@example.com");
    for verb in ["LIST", "NLST", "MLSD"] {
        let _data = c.pasv();
        let r = c.cmd(verb);
        assert_eq!(r.code, 550, "drop-box {verb}: {}", r.text());
    }
    let out = curl(home.path(), &[&anon_url(&s, "")]);
    assert!(
        !out.status.success(),
        "drop-box LIST should fail\n{}",
        show(&out)
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("existing.pdf"),
        "drop-box LIST leaked names\n{}",
        show(&out)
    );
    let out = curl(home.path(), &["--list-only", &anon_url(&s, "")]);
    assert!(
        !out.status.success(),
        "drop-box NLST should fail\n{}",
        show(&out)
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("existing.pdf"),
        "drop-box NLST leaked names\n{}",
        show(&out)
    );
    let out = curl(
        home.path(),
        &["-I", "-Q", "DELE existing.pdf", &anon_url(&s, "")],
    );
    exit_code(&out, 21, "drop-box DELE");
    let out = curl(
        home.path(),
        &[
            "-I",
            "-Q",
            "RNFR scan.pdf",
            "-Q",
            "RNTO moved.pdf",
            &anon_url(&s, ""),
        ],
    );
    exit_code(&out, 21, "drop-box RNFR/RNTO");
    assert_file(&s.path("existing.pdf"), b"keep me");
    assert_file(&s.path("scan.pdf"), &data);
    assert_absent(&s.path("moved.pdf"));
}

#[test]
fn curl_type_a_converts_line_endings() {
    if !have("curl") {
        return;
    }
    let s = TestServer::start();
    let home = scratch();
    let unix = b"line one\nline two\n\nlast\n".to_vec();
    put_file(&s.path("text.txt"), &unix);

    // Download in TYPE A: LF becomes CRLF on the wire, and curl turns CRLF back into LF
    // (ftplib's test checks the bytes on the wire).
    let local = home.path().join("a.txt");
    ok(
        &curl(
            home.path(),
            &["-o", local.to_str().unwrap(), &s.url("text.txt;type=a")],
        ),
        "curl ;type=a download",
    );
    assert_file(&local, &unix);
    let local2 = home.path().join("b.txt");
    ok(
        &curl(
            home.path(),
            &[
                "--use-ascii",
                "-o",
                local2.to_str().unwrap(),
                &s.url("text.txt"),
            ],
        ),
        "curl --use-ascii download",
    );
    assert_file(&local2, &unix);
    // TYPE I is exact.
    let local3 = home.path().join("c.txt");
    ok(
        &curl(
            home.path(),
            &["-o", local3.to_str().unwrap(), &s.url("text.txt")],
        ),
        "curl binary download",
    );
    assert_file(&local3, &unix);

    // Upload in TYPE A: curl sends LF as CRLF, and the server stores LF again.
    let src = home.path().join("lf.txt");
    put_file(&src, &unix);
    ok(
        &curl(
            home.path(),
            &["--use-ascii", "-T", src.to_str().unwrap(), &s.url("up.txt")],
        ),
        "curl --use-ascii upload",
    );
    assert_file(&s.path("up.txt"), &unix);
    ok(
        &curl(
            home.path(),
            &["-T", src.to_str().unwrap(), &s.url("up2.txt;type=a")],
        ),
        "curl ;type=a upload",
    );
    assert_file(&s.path("up2.txt"), &unix);
}

/// Percent-encodes every byte that is not unreserved, for URL paths.
fn pct(name: &str) -> String {
    name.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[test]
fn curl_round_trips_names_with_spaces_and_utf8() {
    if !have("curl") {
        return;
    }
    let s = TestServer::start();
    let home = scratch();
    let names = [
        "with space.txt",
        " leading space",
        "été.txt",
        "日本語.txt",
        "emoji 😀.bin",
        "-la",
        "100% #1 & co",
    ];
    for (i, name) in names.iter().enumerate() {
        let data = bytes(1000 + i * 333, 20 + i as u64);
        let src = home.path().join(format!("src{i}"));
        put_file(&src, &data);
        ok(
            &curl(
                home.path(),
                &["-T", src.to_str().unwrap(), &s.url(&pct(name))],
            ),
            &format!("curl STOR {name:?}"),
        );
        assert_file(&s.path(name), &data);
        let local = home.path().join(format!("got{i}"));
        ok(
            &curl(
                home.path(),
                &["-o", local.to_str().unwrap(), &s.url(&pct(name))],
            ),
            &format!("curl RETR {name:?}"),
        );
        assert_file(&local, &data);
    }
    let listed = ok(
        &curl(home.path(), &["--list-only", &s.url("")]),
        "curl NLST",
    );
    let mut got: Vec<String> = listed
        .split("\r\n")
        .flat_map(|l| l.split('\n'))
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    got.sort();
    let mut want: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    want.sort();
    assert_eq!(got, want, "NLST names");

    // A directory with UTF-8 and a space, created by curl and listed inside.
    let src = home.path().join("src0");
    let dir = format!("{}/{}", pct("dossier été"), pct("fichier 1.txt"));
    ok(
        &curl(
            home.path(),
            &[
                "--ftp-create-dirs",
                "-T",
                src.to_str().unwrap(),
                &s.url(&dir),
            ],
        ),
        "curl STOR into a new UTF-8 directory",
    );
    assert!(s.path("dossier été/fichier 1.txt").is_file());
    let list = ok(
        &curl(home.path(), &[&s.url(&format!("{}/", pct("dossier été")))]),
        "curl LIST of a UTF-8 directory",
    );
    assert!(
        lines(&list).iter().any(|l| l.ends_with(" fichier 1.txt")),
        "{list:?}"
    );

    for name in names {
        ok(
            &curl(
                home.path(),
                &[
                    "-o",
                    "/dev/null",
                    "-Q",
                    &format!("-DELE {name}"),
                    &s.url(""),
                ],
            ),
            &format!("curl DELE {name:?}"),
        );
        assert_absent(&s.path(name));
    }
}

#[test]
fn curl_ranges_head_and_remote_time() {
    if !have("curl") {
        return;
    }
    let s = TestServer::start();
    let home = scratch();
    let data = bytes(2_000_000, 13);
    put_file(&s.path("r.bin"), &data);
    set_mtime(&s.path("r.bin"), OLD_TIME);
    put_file(&s.path("small.txt"), b"small");

    // A range: REST 1000, RETR, and curl closes the data connection after 1000 bytes (the
    // server sees the transfer cut short). The same control connection then serves a second
    // transfer (--next reuses it).
    let part = home.path().join("part.bin");
    let whole = home.path().join("small.txt");
    ok(
        &curl(
            home.path(),
            &[
                "-r",
                "1000-1999",
                "-o",
                part.to_str().unwrap(),
                &s.url("r.bin"),
                "--next",
                "-sS",
                "-o",
                whole.to_str().unwrap(),
                &s.url("small.txt"),
            ],
        ),
        "curl -r then --next",
    );
    assert_file(&part, &data[1000..2000]);
    assert_file(&whole, b"small");

    // -I: SIZE and MDTM as headers.
    let head = ok(&curl(home.path(), &["-I", &s.url("r.bin")]), "curl -I");
    assert!(head.contains("Content-Length: 2000000"), "{head}");
    assert!(
        head.contains("Last-Modified: Sat, 03 Feb 2001 04:05:06 GMT"),
        "{head}"
    );
    // -R: the local copy gets the remote modification time (MDTM).
    let timed = home.path().join("timed.bin");
    ok(
        &curl(
            home.path(),
            &["-R", "-o", timed.to_str().unwrap(), &s.url("r.bin")],
        ),
        "curl -R",
    );
    assert_file(&timed, &data);
    assert_eq!(mtime(&timed), OLD_TIME, "MDTM time applied by curl -R");
    // Upload from standard input.
    let mut c = client("curl", home.path());
    c.args(["-sS", "--max-time", "60", "-T", "-", &s.url("stdin.bin")]);
    ok(&exec(&mut c, &data[..70_000]), "curl -T -");
    assert_file(&s.path("stdin.bin"), &data[..70_000]);
}

#[test]
fn curl_active_mode_to_a_third_address_is_refused() {
    if !have("curl") {
        return;
    }
    // 127.0.0.2 is loopback too, but it is not the address of the control connection's peer:
    // PORT/EPRT to it is a bounce, refused by default (active_peer_check).
    let s = TestServer::start();
    let home = scratch();
    put_file(&s.path("f.bin"), b"data");
    let local = home.path().join("f.bin");
    let out = curl(
        home.path(),
        &[
            "-P",
            "127.0.0.2",
            "-o",
            local.to_str().unwrap(),
            &s.url("f.bin"),
        ],
    );
    assert!(
        !out.status.success(),
        "active mode to 127.0.0.2 should be refused\n{}",
        show(&out)
    );
    assert!(
        std::fs::read(&local).unwrap_or_default().is_empty(),
        "nothing should have been sent to 127.0.0.2"
    );
    // With the check off, the same transfer works.
    let s = TestServer::with(|c| c.active_peer_check = false);
    put_file(&s.path("f.bin"), b"data");
    ok(
        &curl(
            home.path(),
            &[
                "-P",
                "127.0.0.2",
                "-o",
                local.to_str().unwrap(),
                &s.url("f.bin"),
            ],
        ),
        "active mode to 127.0.0.2 with active_peer_check off",
    );
    assert_file(&local, b"data");
}

#[test]
fn curl_drop_box_with_unique_names() {
    if !have("curl") {
        return;
    }
    let s = TestServer::with(|c| {
        c.anonymous = Some(AnonymousMode::Upload);
        c.upload_collision = wharf::config::Collision::Unique;
    });
    let home = scratch();
    put_file(&s.path("img.jpg"), b"first");
    for (i, body) in [b"second".as_slice(), b"third"].iter().enumerate() {
        let src = home.path().join("img.jpg");
        put_file(&src, body);
        ok(
            &curl(
                home.path(),
                &["-T", src.to_str().unwrap(), &anon_url(&s, "img.jpg")],
            ),
            "drop-box STOR of a taken name (unique)",
        );
        assert_file(&s.path(&format!("img.jpg.{}", i + 1)), body);
    }
    assert_file(&s.path("img.jpg"), b"first");
}

#[test]
fn curl_anonymous_as_ftp_user() {
    if !have("curl") {
        return;
    }
    let s = TestServer::start();
    let home = scratch();
    put_file(&s.path("pub.txt"), b"public");
    let url = format!(
        "ftp://ftp:someone%40example.com@127.0.0.1:{}/pub.txt",
        s.v4.port()
    );
    let out = ok(&curl(home.path(), &[&url]), "user ftp is anonymous");
    assert_eq!(out, "public");
}

#[test]
fn curl_passive_behind_nat_public_address() {
    if !have("curl") {
        return;
    }
    // The PASV reply announces the address configured for the client's network
    // (TEST-NET-1 here); curl, like most clients, connects to the control connection's
    // address instead (--ftp-skip-pasv-ip, on by default), so the transfer still works on
    // loopback.
    let s = TestServer::with(|c| {
        c.public_address = Some("192.0.2.9".parse().unwrap());
        c.passive_addresses = vec![wharf::config::PassiveAddress {
            network: "127.0.0.0/8".parse().unwrap(),
            address: "192.0.2.7".parse().unwrap(),
        }];
    });
    let home = scratch();
    let data = bytes(50_000, 14);
    put_file(&s.path("nat.bin"), &data);
    let local = home.path().join("nat.bin");
    let out = curl(
        home.path(),
        &[
            "-v",
            "--disable-epsv",
            "-o",
            local.to_str().unwrap(),
            &s.url("nat.bin"),
        ],
    );
    ok(&out, "curl PASV with public_address");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("227 Entering Passive Mode (192,0,2,7,"),
        "{log}"
    );
    assert_file(&local, &data);
}
