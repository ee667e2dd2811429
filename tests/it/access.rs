//! Users and permissions: every permission allowed and refused with its reply code,
//! per-directory rules, disabled users, client networks and the deny list.

use wharf::config::{DirRule, Permission as P, UserConfig};

use crate::harness::*;

/// A server whose user `u` (password `pw`) has exactly `perms` on the root.
fn server_with(perms: Vec<P>, dirs: Vec<DirRule>) -> TestServer {
    TestServer::with(move |cfg| {
        let hash = cfg.users[0].password.clone();
        cfg.users.push(UserConfig {
            permissions: perms,
            dirs,
            ..UserConfig::new("u", hash)
        });
    })
}

fn seed(s: &TestServer) {
    std::fs::write(s.path("file"), b"content").unwrap();
    std::fs::create_dir_all(s.path("dir/sub")).unwrap();
}

/// Runs every operation and returns (name, final reply code).
fn probe(s: &TestServer) -> Vec<(&'static str, u16)> {
    seed(s);
    let mut c = Ctrl::connect(s.v4);
    c.login("u", "pw");
    c.cmd("TYPE I");
    let mut out = vec![
        ("list", c.retr("LIST").0.code),
        ("nlst", c.retr("NLST").0.code),
        ("mlsd", c.retr("MLSD").0.code),
        ("mlst", c.cmd("MLST file").code),
        ("size", c.cmd("SIZE file").code),
        ("download", c.retr("RETR file").0.code),
        ("upload", c.stor("STOR new", b"n").1.code),
        ("overwrite", c.stor("STOR file", b"o").1.code),
        ("append", c.stor("APPE file", b"a").1.code),
    ];
    c.cmd("REST 1");
    out.push(("resume", c.stor("STOR file", b"r").1.code));
    out.push(("mkdir", c.cmd("MKD made").code));
    out.push(("chmod", c.cmd("SITE CHMOD 600 file").code));
    out.push(("mtime", c.cmd("MFMT 20200101000000 file").code));
    let rnfr = c.cmd("RNFR file").code;
    out.push((
        "rename",
        if rnfr == 350 {
            c.cmd("RNTO renamed").code
        } else {
            rnfr
        },
    ));
    let victim = if s.path("renamed").exists() {
        "renamed"
    } else {
        "file"
    };
    out.push(("delete", c.cmd(&format!("DELE {victim}")).code));
    out.push(("rmdir", c.cmd("RMD dir/sub").code));
    out
}

#[test]
fn each_permission_alone_allows_only_its_operation() {
    let cases: &[(P, &[&str])] = &[
        (P::List, &["list", "nlst", "mlsd", "mlst", "size"]),
        (P::Download, &["download", "size"]),
        (P::Upload, &["upload"]),
        (P::Overwrite, &["overwrite"]),
        (P::Append, &["append"]),
        (P::Resume, &["resume"]),
        (P::Mkdir, &["mkdir"]),
        (P::Chmod, &["chmod"]),
        (P::Mtime, &["mtime"]),
        (P::Rename, &["rename"]),
        (P::Delete, &["delete"]),
        (P::Rmdir, &["rmdir"]),
    ];
    for (perm, allowed) in cases {
        let s = server_with(vec![*perm], vec![]);
        for (op, code) in probe(&s) {
            let ok = matches!(code, 200 | 213 | 226 | 250 | 257);
            assert_eq!(ok, allowed.contains(&op), "{perm:?}: {op} answered {code}");
            if !ok {
                // Refusals use the RFC codes: 553 for stores and RNTO, 550 otherwise.
                let expect = match op {
                    "upload" | "overwrite" | "append" | "resume" => 553,
                    _ => 550,
                };
                assert_eq!(code, expect, "{perm:?}: {op}");
            }
        }
    }
}

#[test]
fn read_and_write_aliases() {
    let s = server_with(vec![P::Read], vec![]);
    for (op, code) in probe(&s) {
        let ok = matches!(code, 200 | 213 | 226 | 250 | 257);
        let reading = matches!(op, "list" | "nlst" | "mlsd" | "mlst" | "size" | "download");
        assert_eq!(ok, reading, "read: {op} answered {code}");
    }
    let s = server_with(vec![P::Read, P::Write], vec![]);
    for (op, code) in probe(&s) {
        assert!(
            matches!(code, 200 | 213 | 226 | 250 | 257),
            "all: {op} answered {code}"
        );
    }
}

#[test]
fn read_everything_upload_only_into_incoming() {
    let s = server_with(
        vec![P::Read],
        vec![DirRule {
            path: "/incoming".into(),
            permissions: vec![P::Upload, P::Mkdir],
        }],
    );
    std::fs::create_dir(s.path("incoming")).unwrap();
    std::fs::write(s.path("pub.txt"), b"pub").unwrap();
    let mut c = Ctrl::connect(s.v4);
    c.login("u", "pw");
    c.cmd("TYPE I");
    let (r, got) = c.retr("RETR pub.txt");
    assert_eq!((r.code, got.as_slice()), (226, &b"pub"[..]));
    let (_, r) = c.stor("STOR pub2.txt", b"x");
    assert_eq!(r.code, 553, "no upload outside /incoming");
    let (_, r) = c.stor("STOR incoming/scan.pdf", b"pdf");
    assert_eq!(r.code, 226);
    assert_eq!(c.cmd("MKD incoming/2026").code, 257);
    assert_eq!(c.cmd("CWD incoming/2026").code, 250);
    let (_, r) = c.stor("STOR deep.pdf", b"deep");
    assert_eq!(r.code, 226);
    // Inside /incoming the rule replaces the base set: no listing, no download, no overwrite.
    let (r, _) = c.retr("LIST");
    assert_eq!(r.code, 550);
    let (r, _) = c.retr("RETR deep.pdf");
    assert_eq!(r.code, 550);
    let (_, r) = c.stor("STOR deep.pdf", b"again");
    assert_eq!(r.code, 553);
    assert_eq!(
        std::fs::read(s.path("incoming/2026/deep.pdf")).unwrap(),
        b"deep"
    );
    // MLSD facts show the per-directory permissions.
    c.cmd("CWD /");
    let (_, mlsd) = c.retr("MLSD");
    let mlsd = String::from_utf8(mlsd).unwrap();
    let inc = mlsd.lines().find(|l| l.ends_with("; incoming")).unwrap();
    assert!(inc.contains("perm=cem;"), "{inc}");
    let file = mlsd.lines().find(|l| l.ends_with("; pub.txt")).unwrap();
    assert!(file.contains("perm=r;"), "{file}");
}

#[test]
fn anonymous_directory_rules() {
    let s = TestServer::with(|cfg| {
        cfg.anonymous_dirs = vec![DirRule {
            path: "/incoming".into(),
            permissions: vec![P::Upload],
        }];
    });
    std::fs::create_dir(s.path("incoming")).unwrap();
    let mut c = Ctrl::connect(s.v4);
    c.login("anonymous", "me@example.com");
    let (_, r) = c.stor("STOR top.txt", b"x");
    assert_eq!(r.code, 553);
    let (_, r) = c.stor("STOR incoming/in.txt", b"x");
    assert_eq!(r.code, 226);
}

#[test]
fn disabled_users_networks_and_deny_list() {
    let s = TestServer::with(|cfg| {
        let hash = cfg.users[0].password.clone();
        cfg.users.push(UserConfig {
            enabled: false,
            ..UserConfig::new("off", hash.clone())
        });
        cfg.users.push(UserConfig {
            allow_from: vec!["127.0.0.2/32".parse().unwrap()],
            ..UserConfig::new("net", hash.clone())
        });
        cfg.users.push(UserConfig::new("root", hash));
        cfg.deny_users = Some(vec!["root".into()]);
    });
    let refused = |user: &str, from: &str| {
        let mut c = Ctrl::connect_from(s.v4, from.parse().unwrap());
        assert_eq!(c.cmd(&format!("USER {user}")).code, 331);
        c.cmd("PASS pw").code
    };
    assert_eq!(refused("off", "127.0.0.1"), 530);
    assert_eq!(refused("root", "127.0.0.1"), 530);
    assert_eq!(refused("net", "127.0.0.1"), 530);
    assert_eq!(refused("net", "127.0.0.2"), 230);
}

#[test]
fn users_file_is_reloaded_without_dropping_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users.toml");
    let hash = wharf::auth::hash_password(b"pw");
    let entry = |name: &str| format!("[[user]]\nname = \"{name}\"\npassword = \"{hash}\"\n");
    std::fs::write(&file, entry("alice")).unwrap();
    let f2 = file.clone();
    let s = TestServer::with(move |cfg| cfg.users_file = Some(f2));
    let mut alice = Ctrl::connect(s.v4);
    alice.login("alice", "pw");
    std::fs::write(&file, entry("bob")).unwrap();
    assert_eq!(
        s.shared.reload_users(),
        Ok(2),
        "judge from the config, bob from the file"
    );
    let mut bob = Ctrl::connect(s.v4);
    bob.login("bob", "pw");
    let mut again = Ctrl::connect(s.v4);
    assert_eq!(again.cmd("USER alice").code, 331);
    assert_eq!(again.cmd("PASS pw").code, 530, "alice is gone");
    assert_eq!(alice.cmd("PWD").code, 257, "alice's running session stays");
    // A broken file keeps the users that were there.
    std::fs::write(&file, "[[user]]\nname = \"x\"\nbogus = 1\n").unwrap();
    let err = s.shared.reload_users().unwrap_err();
    assert!(err.contains("users.toml:3"), "{err}");
    let mut bob2 = Ctrl::connect(s.v4);
    bob2.login("bob", "pw");
}

/// System accounts through PAM: a user created for the test logs in with its password and
/// lands in its home directory; system names are denied by default.
#[cfg(feature = "pam")]
#[test]
fn system_accounts_through_pam() {
    use std::process::Command;
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipping: creating a system user needs root");
        return;
    }
    let name = format!("wharft{}", std::process::id() % 100_000);
    let home = tempfile::tempdir().unwrap();
    let home_dir = home.path().join(&name);
    let ok = Command::new("useradd")
        .args(["-M", "-d"])
        .arg(&home_dir)
        .args(["-s", "/usr/sbin/nologin", &name])
        .status()
        .unwrap();
    assert!(ok.success(), "useradd");
    struct Cleanup(String);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = Command::new("userdel").arg(&self.0).status();
        }
    }
    let _cleanup = Cleanup(name.clone());
    std::fs::create_dir(&home_dir).unwrap();
    let mut chpasswd = Command::new("chpasswd")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    writeln!(chpasswd.stdin.take().unwrap(), "{name}:S3cret-pw").unwrap();
    assert!(chpasswd.wait().unwrap().success(), "chpasswd");
    let s = TestServer::with(|cfg| {
        cfg.system_accounts = true;
        // No /etc/pam.d file of this name: PAM uses its `other` service (pam_unix).
        cfg.pam_service = "wharf-test".into();
    });
    let mut c = Ctrl::connect(s.v4);
    c.login(&name, "S3cret-pw");
    let (_, r) = c.stor("STOR hello.txt", b"hi");
    assert_eq!(r.code, 226);
    assert_eq!(std::fs::read(home_dir.join("hello.txt")).unwrap(), b"hi");
    let mut bad = Ctrl::connect(s.v4);
    bad.cmd(&format!("USER {name}"));
    assert_eq!(bad.cmd("PASS wrong").code, 530);
    bad.cmd("USER root");
    assert_eq!(bad.cmd("PASS whatever").code, 530);
}

#[test]
fn sessions_share_a_root_until_it_is_replaced() {
    let s = TestServer::start();
    std::fs::write(s.path("old.txt"), b"").unwrap();
    let mut first = s.login();
    let mut second = s.login();
    // Both see the same tree, through one open root.
    for c in [&mut first, &mut second] {
        let (_, names) = c.retr("NLST");
        assert_eq!(names, b"old.txt\r\n");
    }
    // The administrator moves the root away and makes a new one.
    let root = s.path("");
    let moved = root.with_extension("old");
    std::fs::rename(&root, &moved).unwrap();
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("new.txt"), b"").unwrap();
    // A new login sees the new root; a session already in keeps the one it had.
    let mut third = s.login();
    let (_, names) = third.retr("NLST");
    assert_eq!(names, b"new.txt\r\n");
    let (_, names) = first.retr("NLST");
    assert_eq!(names, b"old.txt\r\n");
    drop(first);
    std::fs::remove_dir_all(&moved).unwrap();
}
