//! lftp against wharf: `mirror -R` of a 200-file tree up and `mirror` back down, compared
//! byte for byte with modification times kept, over IPv4 (PASV) and IPv6 (EPSV); active mode
//! (PORT) over IPv4; segmented `pget` and resumed `get -c`/`put -c` (REST); file operations
//! and MLSD listings.
//!
//! No active-mode test over IPv6: on the loopback interface lftp does not bind its data
//! socket to the control connection's address (`ftp:bind-data-socket` excepts loopback) and
//! sends `EPRT |2|::|port|`, which a server checking the peer address rightly refuses.

use std::path::Path;
use std::process::Output;

use crate::clients_util::*;
use crate::harness::*;

/// Settings for every run: plain FTP (no AUTH TLS attempt), fail fast, exit non-zero on the
/// first failed command.
const SETTINGS: &str = "set ftp:ssl-allow no; set net:max-retries 1; \
     set net:reconnect-interval-base 1; set net:timeout 10; set cmd:fail-exit yes; \
     set xfer:clobber on; set cmd:interactive no;";

/// Runs `lftp -c "SETTINGS open URL; SCRIPT; bye"`.
fn lftp(home: &Path, url: &str, passive: bool, script: &str) -> Output {
    let full = format!(
        "{SETTINGS} set ftp:passive-mode {}; open {url}; {script}; bye",
        if passive { "on" } else { "off" }
    );
    let mut c = client("lftp", home);
    c.arg("-c").arg(full);
    exec0(&mut c)
}

/// Mirrors a tree of `count` files up to `/up` and back down, checking both copies, and
/// that the files' old modification times survived both ways (MFMT up, MLSD `modify` down).
fn mirror_round_trip(url: &str, s: &TestServer, count: usize, passive: bool) {
    let home = scratch();
    let local = home.path().join("local");
    let back = home.path().join("back");
    let names = make_tree(&local, count, true);
    for (i, name) in names.iter().enumerate() {
        set_mtime(&local.join(name), OLD_TIME + 61 * i as i64);
    }
    std::fs::create_dir_all(local.join("empty/dir")).unwrap();
    std::fs::create_dir_all(&back).unwrap();
    ok(
        &lftp(
            home.path(),
            url,
            passive,
            &format!(
                "mirror -R --parallel=3 '{}' /up; mirror --parallel=3 /up '{}'",
                local.display(),
                back.join("up").display()
            ),
        ),
        "lftp mirror -R then mirror",
    );
    assert_same_tree(&local, &s.path("up"));
    assert_same_tree(&local, &back.join("up"));
    for (i, name) in names.iter().enumerate() {
        let want = OLD_TIME + 61 * i as i64;
        assert_eq!(
            mtime(&s.path("up").join(name)),
            want,
            "server mtime of {name}"
        );
        assert_eq!(
            mtime(&back.join("up").join(name)),
            want,
            "mirrored-back mtime of {name}"
        );
    }
}

#[test]
fn lftp_mirror_200_files_up_and_down() {
    if !have("lftp") {
        return;
    }
    let s = TestServer::start();
    mirror_round_trip(&s.url(""), &s, 200, true);
}

#[test]
fn lftp_mirror_over_ipv6() {
    if !have("lftp") {
        return;
    }
    let s = TestServer::start();
    if !has_v6(&s) {
        return;
    }
    mirror_round_trip(&s.url6(""), &s, 60, true);
}

#[test]
fn lftp_mirror_active_mode() {
    if !have("lftp") {
        return;
    }
    let s = TestServer::start();
    mirror_round_trip(&s.url(""), &s, 40, false);
}

#[test]
fn lftp_segmented_and_resumed_transfers() {
    if !have("lftp") {
        return;
    }
    let s = TestServer::start();
    let home = scratch();
    let big = bytes(3 * 1_048_576 + 12_345, 40);
    put_file(&s.path("big.bin"), &big);
    let seg = home.path().join("seg.bin");
    let partial = home.path().join("partial.bin");
    put_file(&partial, &big[..1_000_000]);
    let up = home.path().join("up.bin");
    put_file(&up, &big);
    put_file(&s.path("up.bin"), &big[..777_777]);
    ok(
        &lftp(
            home.path(),
            &s.url(""),
            true,
            &format!(
                // Four connections, each REST to its segment.
                "pget -n 4 big.bin -o '{}'; \
                 get -c big.bin -o '{}'; \
                 put -c '{}' -o up.bin",
                seg.display(),
                partial.display(),
                up.display()
            ),
        ),
        "lftp pget / get -c / put -c",
    );
    assert_file(&seg, &big);
    assert_file(&partial, &big);
    assert_file(&s.path("up.bin"), &big);
}

#[test]
fn lftp_file_operations_and_listings() {
    if !have("lftp") {
        return;
    }
    let s = TestServer::start();
    let home = scratch();
    let data = bytes(10_000, 41);
    let src = home.path().join("src.bin");
    put_file(&src, &data);
    put_file(&s.path("old name.txt"), b"rename me");
    put_file(&s.path("delete me"), b"x");
    let out = ok(
        &lftp(
            home.path(),
            &s.url(""),
            true,
            &format!(
                "mkdir -p 'deep/er/est'; put '{}' -o 'deep/er/est/é f.bin'; \
                 mv 'old name.txt' 'deep/new name.txt'; rm 'delete me'; \
                 mkdir gone; rmdir gone; \
                 echo ==cls; cls -1 deep; echo ==ls; ls deep/er/est; echo ==end",
                src.display()
            ),
        ),
        "lftp file operations",
    );
    assert_file(&s.path("deep/er/est/é f.bin"), &data);
    assert_file(&s.path("deep/new name.txt"), b"rename me");
    assert_absent(&s.path("old name.txt"));
    assert_absent(&s.path("delete me"));
    assert_absent(&s.path("gone"));

    let section = |from: &str, to: &str| -> Vec<String> {
        let start = out.find(from).unwrap_or_else(|| panic!("{from} in {out}")) + from.len();
        let end = out.find(to).unwrap_or_else(|| panic!("{to} in {out}"));
        out[start..end]
            .lines()
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()
    };
    let mut cls = section("==cls", "==ls");
    cls.sort();
    // cls lists from MLSD: paths, directories with a trailing slash.
    assert_eq!(
        cls,
        ["deep/er/", "deep/new name.txt"],
        "cls -1 output:\n{out}"
    );
    let ls = section("==ls", "==end");
    assert_eq!(ls.len(), 1, "ls output:\n{out}");
    assert!(ls[0].starts_with('-'), "{ls:?}");
    assert!(ls[0].ends_with(" é f.bin"), "{ls:?}");
    assert!(ls[0].contains(" 10000 "), "{ls:?}");
}

#[test]
fn lftp_wrong_password_fails() {
    if !have("lftp") {
        return;
    }
    let s = TestServer::start();
    let home = scratch();
    let url = format!("ftp://judge:wrong@127.0.0.1:{}/", s.v4.port());
    let out = lftp(home.path(), &url, true, "ls");
    assert!(
        !out.status.success(),
        "login with a wrong password\n{}",
        show(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("530"),
        "{}",
        show(&out)
    );
}
