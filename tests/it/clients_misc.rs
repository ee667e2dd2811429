//! tnftp, NcFTP, wget and rclone against wharf: scripted sessions, recursive transfers of a
//! small tree (with UTF-8, spaces, a dotfile and `*[]?` in names), passive and active data
//! connections, IPv6, resume, timestamps and temporary-name uploads, checked byte for byte
//! on disk.

use std::path::Path;
use std::process::Output;

use crate::clients_util::*;
use crate::harness::*;

// ---------------------------------------------------------------------------------------
// tnftp

/// Runs tnftp (`-n`: no auto-login, `-v`: show every reply) with `script` on stdin.
fn tnftp(home: &Path, script: &str) -> Output {
    let mut c = client("tnftp", home);
    c.arg("-n").arg("-v").current_dir(home);
    exec(&mut c, script.as_bytes())
}

fn tnftp_session(v6: bool, passive: bool, epsv: bool) {
    if !have("tnftp") {
        return;
    }
    let s = TestServer::start();
    let addr = match (v6, s.v6) {
        (false, _) => s.v4,
        (true, Some(a)) => a,
        (true, None) => {
            has_v6(&s);
            return;
        }
    };
    let home = scratch();
    let up = bytes(300_000, 50);
    let down = bytes(200_001, 51);
    put_file(&home.path().join("up.bin"), &up);
    put_file(&s.path("down.bin"), &down);
    put_file(&s.path("old.txt"), b"old");
    put_file(&s.path("doomed.txt"), b"doomed");
    let script = format!(
        "open {host} {port}\n\
         user judge pw\n\
         binary\n\
         passive {passive}\n\
         epsv4 {epsv}\n\
         put up.bin remote.bin\n\
         get down.bin got.bin\n\
         mkdir newdir\n\
         cd newdir\n\
         put up.bin inner.bin\n\
         cd ..\n\
         rename old.txt new.txt\n\
         delete doomed.txt\n\
         size remote.bin\n\
         ls\n\
         nlist\n\
         quit\n",
        host = addr.ip(),
        port = addr.port(),
        passive = if passive { "on" } else { "off" },
        epsv = if epsv { "on" } else { "off" },
    );
    let out = tnftp(home.path(), &script);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "tnftp\n{}", show(&out));
    assert!(text.contains("230"), "login:\n{text}");
    assert_file(&s.path("remote.bin"), &up);
    assert_file(&s.path("newdir/inner.bin"), &up);
    assert_file(&home.path().join("got.bin"), &down);
    assert_file(&s.path("new.txt"), b"old");
    assert_absent(&s.path("old.txt"));
    assert_absent(&s.path("doomed.txt"));
    assert!(text.contains("remote.bin\t300000"), "size:\n{text}");
    // The listing: an ls -l line for remote.bin, and the names alone from NLST.
    assert!(
        text.lines()
            .any(|l| l.starts_with('-') && l.trim_end().ends_with(" remote.bin")),
        "LIST output:\n{text}"
    );
    assert!(
        text.lines().any(|l| l.trim_end() == "newdir"),
        "NLST output:\n{text}"
    );
    // The data connections were of the kind asked for (tnftp falls back silently).
    let (pasv, epsv_seen) = (text.contains("227 "), text.contains("229 "));
    match (passive, epsv) {
        (true, true) => assert!(epsv_seen && !pasv, "expected EPSV only:\n{text}"),
        (true, false) => assert!(pasv && !epsv_seen, "expected PASV only:\n{text}"),
        (false, _) => assert!(!pasv && !epsv_seen, "expected active mode only:\n{text}"),
    }
}

#[test]
fn tnftp_passive_epsv() {
    tnftp_session(false, true, true);
}

#[test]
fn tnftp_passive_pasv() {
    tnftp_session(false, true, false);
}

#[test]
fn tnftp_active_eprt() {
    tnftp_session(false, false, true);
}

#[test]
fn tnftp_active_port() {
    tnftp_session(false, false, false);
}

#[test]
fn tnftp_over_ipv6_epsv() {
    tnftp_session(true, true, true);
}

#[test]
fn tnftp_over_ipv6_eprt() {
    tnftp_session(true, false, true);
}

// ---------------------------------------------------------------------------------------
// NcFTP

/// `ncftp*` with the server's port and judge's credentials, no progress meter.
fn ncftp(home: &Path, program: &str, s: &TestServer, args: &[&str]) -> Output {
    let port = s.v4.port().to_string();
    let mut c = client(program, home);
    c.args(["-P", &port, "-u", USER, "-p", PASS, "-t", "20", "-r", "0"]);
    if program != "ncftpls" {
        c.arg("-V");
    }
    c.args(args).current_dir(home);
    exec0(&mut c)
}

fn ncftp_round_trip(active: bool) {
    if !have("ncftpput") || !have("ncftpget") || !have("ncftpls") {
        return;
    }
    let s = TestServer::start();
    let home = scratch();
    let mode = if active { "-E" } else { "-F" };
    let one = bytes(123_456, 52);
    let two = bytes(0, 53);
    put_file(&home.path().join("one.bin"), &one);
    put_file(&home.path().join("two.bin"), &two);
    ok(
        &ncftp(
            home.path(),
            "ncftpput",
            &s,
            &[mode, "-m", "127.0.0.1", "/in/box", "one.bin", "two.bin"],
        ),
        "ncftpput -m",
    );
    assert_file(&s.path("in/box/one.bin"), &one);
    assert_file(&s.path("in/box/two.bin"), &two);
    // Upload under a temporary suffix, then RNFR/RNTO to the real name (over the old file).
    let three = bytes(5000, 55);
    put_file(&home.path().join("one.bin"), &three);
    ok(
        &ncftp(
            home.path(),
            "ncftpput",
            &s,
            &[mode, "-S", ".part", "127.0.0.1", "/in/box", "one.bin"],
        ),
        "ncftpput -S .part",
    );
    assert_file(&s.path("in/box/one.bin"), &three);
    assert_absent(&s.path("in/box/one.bin.part"));
    put_file(&home.path().join("one.bin"), &one);
    ok(
        &ncftp(
            home.path(),
            "ncftpput",
            &s,
            &[mode, "127.0.0.1", "/in/box", "one.bin"],
        ),
        "ncftpput over an existing file",
    );
    assert_file(&s.path("in/box/one.bin"), &one);

    // -y: keep the modification time (SITE UTIME or MFMT).
    let timed = home.path().join("timed.bin");
    put_file(&timed, b"timed");
    set_mtime(&timed, OLD_TIME);
    ok(
        &ncftp(
            home.path(),
            "ncftpput",
            &s,
            &[mode, "-y", "127.0.0.1", "/in", "timed.bin"],
        ),
        "ncftpput -y",
    );
    assert_file(&s.path("in/timed.bin"), b"timed");
    assert_eq!(
        mtime(&s.path("in/timed.bin")),
        OLD_TIME,
        "ncftpput -y mtime"
    );

    let tree = home.path().join("tree");
    make_tree(&tree, 25, true);
    ok(
        &ncftp(
            home.path(),
            "ncftpput",
            &s,
            &[mode, "-R", "127.0.0.1", "/", "tree"],
        ),
        "ncftpput -R",
    );
    assert_same_tree(&tree, &s.path("tree"));

    let got = home.path().join("got");
    std::fs::create_dir(&got).unwrap();
    ok(
        &ncftp(
            home.path(),
            "ncftpget",
            &s,
            &[mode, "127.0.0.1", got.to_str().unwrap(), "/in/box/one.bin"],
        ),
        "ncftpget",
    );
    assert_file(&got.join("one.bin"), &one);
    ok(
        &ncftp(
            home.path(),
            "ncftpget",
            &s,
            &[mode, "-R", "127.0.0.1", got.to_str().unwrap(), "/tree"],
        ),
        "ncftpget -R",
    );
    assert_same_tree(&tree, &got.join("tree"));

    let url = "ftp://127.0.0.1/%2Fin/box/";
    let names = ok(
        &ncftp(home.path(), "ncftpls", &s, &[mode, "-1", url]),
        "ncftpls -1",
    );
    let mut names: Vec<&str> = names.lines().collect();
    names.sort();
    assert_eq!(names, ["one.bin", "two.bin"]);
    let long = ok(
        &ncftp(home.path(), "ncftpls", &s, &[mode, "-l", url]),
        "ncftpls -l",
    );
    assert!(
        long.lines()
            .any(|l| l.starts_with('-') && l.contains(" 123456 ") && l.ends_with(" one.bin")),
        "ncftpls -l:\n{long}"
    );
}

#[test]
fn ncftp_passive() {
    ncftp_round_trip(false);
}

#[test]
fn ncftp_active() {
    ncftp_round_trip(true);
}

// ---------------------------------------------------------------------------------------
// wget

fn wget(home: &Path, args: &[&str]) -> Output {
    let mut c = client("wget", home);
    c.args(["--tries=1", "--timeout=20", "--no-verbose"])
        .args(args)
        .current_dir(home);
    exec0(&mut c)
}

#[test]
fn wget_downloads_files() {
    if !have("wget") {
        return;
    }
    let s = TestServer::start();
    let home = scratch();
    let data = bytes(654_321, 54);
    put_file(&s.path("dir/file.bin"), &data);
    put_file(&s.path("pub/anon.txt"), b"for everyone\n");

    let a = home.path().join("a.bin");
    ok(
        &wget(
            home.path(),
            &["-O", a.to_str().unwrap(), &s.url("dir/file.bin")],
        ),
        "wget (PASV)",
    );
    assert_file(&a, &data);
    let b = home.path().join("b.bin");
    ok(
        &wget(
            home.path(),
            &[
                "--no-passive-ftp",
                "-O",
                b.to_str().unwrap(),
                &s.url("dir/file.bin"),
            ],
        ),
        "wget --no-passive-ftp (PORT)",
    );
    assert_file(&b, &data);
    if has_v6(&s) {
        let c = home.path().join("c.bin");
        ok(
            &wget(
                home.path(),
                &["-O", c.to_str().unwrap(), &s.url6("dir/file.bin")],
            ),
            "wget over IPv6 (EPSV)",
        );
        assert_file(&c, &data);
        let c2 = home.path().join("c2.bin");
        ok(
            &wget(
                home.path(),
                &[
                    "--no-passive-ftp",
                    "-O",
                    c2.to_str().unwrap(),
                    &s.url6("dir/file.bin"),
                ],
            ),
            "wget --no-passive-ftp over IPv6 (EPRT)",
        );
        assert_file(&c2, &data);
    }
    // Anonymous.
    let d = home.path().join("d.txt");
    let anon = format!("ftp://127.0.0.1:{}/pub/anon.txt", s.v4.port());
    ok(
        &wget(home.path(), &["-O", d.to_str().unwrap(), &anon]),
        "wget anonymous",
    );
    assert_file(&d, b"for everyone\n");
    // Resume: -c with a partial file (REST + RETR).
    let part = home.path().join("resume");
    put_file(&part.join("file.bin"), &data[..100_000]);
    ok(
        &wget(
            home.path(),
            &["-c", "-P", part.to_str().unwrap(), &s.url("dir/file.bin")],
        ),
        "wget -c",
    );
    assert_file(&part.join("file.bin"), &data);
    // A missing file fails (wget exit 8: the server issued an error response).
    let out = wget(home.path(), &["-O", "/dev/null", &s.url("dir/missing.bin")]);
    exit_code(&out, 8, "wget of a missing file");
}

#[test]
fn wget_recursive_download() {
    if !have("wget") {
        return;
    }
    let s = TestServer::start();
    let home = scratch();
    make_tree(&s.path("tree"), 30, true);
    let dest = home.path().join("dest");
    ok(
        &wget(
            home.path(),
            &[
                "-r",
                "-nH",
                "--no-parent",
                "--restrict-file-names=nocontrol",
                "-P",
                dest.to_str().unwrap(),
                &s.url("tree/"),
            ],
        ),
        "wget -r",
    );
    assert_same_tree(&s.path("tree"), &dest.join("tree"));
}

// ---------------------------------------------------------------------------------------
// rclone

fn rclone_round_trip(host: &str, port: u16, s: &TestServer, extra: &str) {
    let home = scratch();
    let remote = rclone_remote(home.path(), host, port, extra);
    let local = home.path().join("local");
    let mut names = make_tree(&local, 30, true);
    // Names some servers cannot take (rclone has encodings for them): `*`, `[]`, `?`.
    let odd = "odd/star*[x] ?.bin".to_string();
    put_file(&local.join(&odd), b"odd name");
    names.push(odd);

    ok(
        &rclone(
            home.path(),
            &["copy", local.to_str().unwrap(), &format!("{remote}tree")],
        ),
        "rclone copy up",
    );
    assert_same_tree(&local, &s.path("tree"));

    let listed = ok(
        &rclone(
            home.path(),
            &["lsf", "-R", "--files-only", &format!("{remote}tree")],
        ),
        "rclone lsf -R",
    );
    let mut listed: Vec<&str> = listed.lines().collect();
    listed.sort();
    let mut want: Vec<&str> = names.iter().map(String::as_str).collect();
    want.sort();
    assert_eq!(listed, want, "rclone lsf -R");
    let sizes = ok(
        &rclone(
            home.path(),
            &["lsf", "--format", "sp", &format!("{remote}tree/a")],
        ),
        "rclone lsf --format sp",
    );
    for line in sizes.lines() {
        let (size, name) = line.split_once(';').unwrap();
        let meta = std::fs::metadata(local.join("a").join(name))
            .unwrap_or_else(|e| panic!("rclone lists a/{name}, not a local entry: {e}"));
        if name.ends_with('/') {
            assert!(meta.is_dir(), "a/{name}");
        } else {
            assert_eq!(size, meta.len().to_string(), "rclone size of a/{name}");
        }
    }
    assert_eq!(
        sizes.lines().count(),
        std::fs::read_dir(local.join("a")).unwrap().count(),
        "rclone lsf of a/:\n{sizes}"
    );

    let back = home.path().join("back");
    ok(
        &rclone(
            home.path(),
            &["copy", &format!("{remote}tree"), back.to_str().unwrap()],
        ),
        "rclone copy down",
    );
    assert_same_tree(&local, &back);

    let cat = ok(
        &rclone(home.path(), &["cat", &format!("{remote}tree/{}", names[1])]),
        "rclone cat",
    );
    assert_eq!(
        cat.as_bytes(),
        std::fs::read(local.join(&names[1])).unwrap()
    );

    ok(
        &rclone(
            home.path(),
            &["deletefile", &format!("{remote}tree/{}", names[2])],
        ),
        "rclone deletefile",
    );
    assert_absent(&s.path(&format!("tree/{}", names[2])));
    ok(
        &rclone(
            home.path(),
            &[
                "moveto",
                &format!("{remote}tree/{}", names[3]),
                &format!("{remote}moved/renamed file.bin"),
            ],
        ),
        "rclone moveto",
    );
    assert_absent(&s.path(&format!("tree/{}", names[3])));
    assert_file(
        &s.path("moved/renamed file.bin"),
        &std::fs::read(local.join(&names[3])).unwrap(),
    );
    ok(
        &rclone(home.path(), &["purge", &format!("{remote}tree/a")]),
        "rclone purge",
    );
    assert_absent(&s.path("tree/a"));
}

#[test]
fn rclone_copy_list_delete_move() {
    if !have("rclone") {
        return;
    }
    let s = TestServer::start();
    rclone_round_trip("127.0.0.1", s.v4.port(), &s, "");
}

#[test]
fn rclone_with_pasv_and_list_instead_of_mlsd() {
    if !have("rclone") {
        return;
    }
    let s = TestServer::start();
    rclone_round_trip(
        "127.0.0.1",
        s.v4.port(),
        &s,
        ",disable_epsv=true,disable_mlsd=true",
    );
}

#[test]
fn rclone_over_ipv6() {
    if !have("rclone") {
        return;
    }
    let s = TestServer::start();
    if !has_v6(&s) {
        return;
    }
    // rclone 1.60 joins host and port without brackets, so the host carries them.
    rclone_round_trip("[::1]", s.v6.unwrap().port(), &s, "");
}
