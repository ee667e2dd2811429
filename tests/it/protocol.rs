//! Byte-level protocol tests over a raw control connection: reply codes and framing per
//! RFC 959, 2389, 2428, 3659, 2640 and 7151, the command gate, and the bounds.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::harness::*;
use wharf::config::Sendfile;

#[test]
fn greeting_and_quit() {
    let s = TestServer::start();
    let mut c = Ctrl::connect(s.v4);
    assert!(c.greeting.raw.ends_with(b"\r\n"));
    assert_eq!(c.cmd("QUIT").code, 221);
    assert!(c.is_closed());
}

#[test]
fn login_sequence_codes() {
    let s = TestServer::start();
    let mut c = Ctrl::connect(s.v4);
    assert_eq!(c.cmd("PASS pw").code, 503, "PASS without USER");
    assert_eq!(c.cmd("USER judge").code, 331);
    assert_eq!(c.cmd("PASS wrong").code, 530);
    // After a failed PASS the client starts again with USER.
    assert_eq!(c.cmd("PASS pw").code, 503);
    // Unknown users get the same 331 then 530: names are not revealed.
    assert_eq!(c.cmd("USER nobody").code, 331);
    assert_eq!(c.cmd("PASS pw").code, 530);
    c.login(USER, PASS);
    assert_eq!(c.cmd("PASS pw").code, 503, "already logged in");
    assert_eq!(c.cmd("ACCT x").code, 202);
}

#[test]
fn commands_before_login_get_530_and_do_nothing() {
    let s = TestServer::start();
    std::fs::write(s.path("keep"), b"x").unwrap();
    let mut c = Ctrl::connect(s.v4);
    for cmd in [
        "CWD /",
        "CDUP",
        "PWD",
        "LIST",
        "NLST",
        "MLSD",
        "MLST",
        "RETR keep",
        "STOR x",
        "STOU",
        "APPE x",
        "DELE keep",
        "RMD d",
        "MKD d",
        "RNFR keep",
        "RNTO y",
        "SIZE keep",
        "MDTM keep",
        "MFMT 20000101000000 keep",
        "SITE CHMOD 777 keep",
        "PASV",
        "EPSV",
        "PORT 127,0,0,1,4,1",
        "EPRT |1|127.0.0.1|1025|",
        "TYPE I",
        "MODE S",
        "STRU F",
        "REST 0",
        "ALLO 10",
        "STAT keep",
    ] {
        assert_eq!(c.cmd(cmd).code, 530, "{cmd}");
    }
    assert!(s.path("keep").exists());
    assert!(!s.path("d").exists());
    // What clients send before logging in is answered.
    assert_eq!(c.cmd("OPTS UTF8 ON").code, 200);
    assert_eq!(c.cmd("FEAT").code, 211);
    assert_eq!(c.cmd("SYST").code, 215);
    assert_eq!(c.cmd("NOOP").code, 200);
    assert_eq!(c.cmd("HELP").code, 214);
    assert_eq!(c.cmd("STAT").code, 211);
}

#[test]
fn windows_ftp_exe_sends_opts_before_user() {
    let s = TestServer::start();
    let mut c = Ctrl::connect(s.v4);
    assert_eq!(c.cmd("OPTS UTF8 ON").code, 200);
    c.login(USER, PASS);
    assert_eq!(c.cmd("PWD").code, 257);
}

#[test]
fn unknown_unimplemented_and_bad_arguments() {
    let s = TestServer::start();
    let mut c = s.login();
    assert_eq!(c.cmd("XYZZY").code, 500);
    assert_eq!(c.cmd("LPRT 4,4,127,0,0,1,2,4,1").code, 502);
    assert_eq!(c.cmd("LPSV").code, 502);
    assert_eq!(c.cmd("RETR").code, 501);
    assert_eq!(c.cmd("REST abc").code, 501);
    assert_eq!(c.cmd("PORT 1,2,3").code, 501);
    assert_eq!(c.cmd("TYPE Z").code, 501);
    assert_eq!(c.cmd("TYPE E").code, 504);
    assert_eq!(c.cmd("MODE B").code, 504);
    assert_eq!(c.cmd("STRU R").code, 504);
    assert_eq!(c.cmd("SITE BOGUS").code, 500);
    assert_eq!(c.cmd("OPTS BOGUS").code, 501);
    // Still usable.
    assert_eq!(c.cmd("NOOP").code, 200);
}

#[test]
fn type_mode_stru_variants() {
    let s = TestServer::start();
    let mut c = s.login();
    for t in [
        "TYPE A", "TYPE I", "TYPE L 8", "TYPE A N", "type i", "TYPE a n",
    ] {
        assert_eq!(c.cmd(t).code, 200, "{t}");
    }
    assert_eq!(c.cmd("MODE S").code, 200);
    assert_eq!(c.cmd("STRU F").code, 200);
}

#[test]
fn feat_is_framed_and_truthful() {
    let s = TestServer::start();
    let mut c = Ctrl::connect(s.v4);
    let r = c.cmd("FEAT");
    let t = r.text();
    assert!(t.starts_with("211-"), "{t}");
    assert!(t.ends_with("211 End\r\n"), "{t}");
    for f in [
        " EPRT\r\n",
        " EPSV\r\n",
        " MDTM\r\n",
        " MFMT\r\n",
        " REST STREAM\r\n",
        " SIZE\r\n",
        " TVFS\r\n",
        " UTF8\r\n",
        " HOST\r\n",
        " MLST type*;size*;modify*;perm*;unique*;\r\n",
    ] {
        assert!(t.contains(f), "missing {f:?} in {t}");
    }
    // RFC 2389: every feature line starts with a space.
    for line in t.lines().skip(1) {
        if !line.starts_with("211 ") {
            assert!(line.starts_with(' '), "{line:?}");
        }
    }
    c.login(USER, PASS);
    let r = c.cmd("OPTS MLST type;size;");
    assert_eq!(r.code, 200);
    assert!(
        c.cmd("FEAT")
            .text()
            .contains(" MLST type*;size*;modify;perm;unique;\r\n")
    );
}

#[test]
fn empty_lines_are_ignored_and_telnet_is_stripped() {
    let s = TestServer::start();
    let mut c = s.login();
    c.send_raw(b"\r\n\r\n");
    assert_eq!(c.cmd("NOOP").code, 200);
    // IAC IP IAC DM before a command, and an option negotiation.
    c.send_raw(b"\xff\xf4\xff\xf2");
    assert_eq!(c.cmd("NOOP").code, 200);
    c.send_raw(b"\xff\xfb\x01");
    assert_eq!(c.cmd("PWD").code, 257);
    // Bare LF line endings.
    c.send_raw(b"NOOP\n");
    assert_eq!(c.read_reply().code, 200);
}

#[test]
fn over_long_line_is_refused_and_session_survives() {
    let s = TestServer::start();
    let mut c = s.login();
    let long = format!("RETR {}", "a".repeat(10_000));
    assert_eq!(c.cmd(&long).code, 500);
    // A huge line without any newline does not grow memory without bound.
    c.send_raw(&vec![b'x'; 1 << 20]);
    c.send_raw(b"\r\n");
    assert_eq!(c.read_reply().code, 500);
    assert_eq!(c.cmd("NOOP").code, 200);
}

#[test]
fn pwd_cwd_cdup_mkd_quoting() {
    let s = TestServer::start();
    let mut c = s.login();
    let r = c.cmd("PWD");
    assert_eq!(r.raw, b"257 \"/\" is the current directory.\r\n");
    let r = c.cmd("MKD say \"hi\"");
    assert_eq!(r.code, 257);
    assert!(
        r.text().starts_with("257 \"/say \"\"hi\"\"\" "),
        "{}",
        r.text()
    );
    assert!(s.path("say \"hi\"").is_dir());
    assert_eq!(c.cmd("CWD say \"hi\"").code, 250);
    assert!(c.cmd("PWD").text().starts_with("257 \"/say \"\"hi\"\"\""));
    assert_eq!(c.cmd("CDUP").code, 250);
    assert!(c.cmd("PWD").text().starts_with("257 \"/\""));
    assert_eq!(c.cmd("CWD missing").code, 550);
    std::fs::write(s.path("file"), b"x").unwrap();
    assert_eq!(c.cmd("CWD file").code, 550);
    assert_eq!(c.cmd("XMKD a/b/c").code, 257, "nested MKD creates parents");
    assert!(s.path("a/b/c").is_dir());
    assert_eq!(c.cmd("MKD a/b").code, 550, "existing directory");
    assert_eq!(c.cmd("XCWD a/b").code, 250);
    assert!(c.cmd("XPWD").text().starts_with("257 \"/a/b\""));
    assert_eq!(c.cmd("XCUP").code, 250);
    assert_eq!(c.cmd("RMD b").code, 550, "not empty");
    assert_eq!(c.cmd("XRMD b/c").code, 250);
    assert_eq!(c.cmd("RMD /a/b").code, 250);
    assert!(!s.path("a/b").exists());
}

#[test]
fn escapes_stay_inside_the_root() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), b"top secret").unwrap();
    let s = TestServer::start();
    std::os::unix::fs::symlink(outside.path(), s.path("out")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret"), s.path("leak")).unwrap();
    let mut c = s.login();
    let root_text = s.root().to_string_lossy().into_owned();
    for dir in ["..", "../..", "/../../..", "..\\..", "%2e%2e", "/..//../."] {
        let r = c.cmd(&format!("CWD {dir}"));
        assert!(r.code == 250 || r.code == 550, "{dir}: {}", r.text());
        let pwd = c.cmd("PWD").text();
        assert!(!pwd.contains(&root_text), "{pwd}");
        assert!(!pwd.contains(".."), "{pwd}");
        c.cmd("CWD /");
    }
    for path in [
        "../../../../../../etc/passwd",
        "/../../../../etc/passwd",
        "..\\..\\..\\etc\\passwd",
        "%2e%2e/%2e%2e/etc/passwd",
        "leak",
        "out/secret",
    ] {
        let (r, data) = c.retr(&format!("RETR {path}"));
        assert!(r.code >= 400, "{path}: {}", r.text());
        assert!(data.is_empty());
        assert!(!r.text().contains(&root_text));
    }
    let r = c.cmd("SIZE leak");
    assert_eq!(r.code, 550);
    assert_eq!(c.cmd("CWD out").code, 550);
    let (r, _) = c.stor("STOR out/planted", b"x");
    assert!(r.code >= 400);
    assert!(!outside.path().join("planted").exists());
    assert_eq!(c.cmd("MKD out/newdir").code, 550);
    assert!(!outside.path().join("newdir").exists());
    assert_eq!(c.cmd("RNFR leak").code, 350);
    let r = c.cmd("RNTO out/moved");
    assert_eq!(r.code, 553);
    assert!(!outside.path().join("moved").exists());
    // NUL bytes in a path.
    assert!(c.cmd_bytes(b"RETR a\0b").code >= 500);
    assert!(c.cmd_bytes(b"CWD \0").code >= 500);
    // An over-long path.
    assert!(c.cmd(&format!("CWD {}", "a/".repeat(3000))).code >= 500);
    assert!(c.cmd(&format!("MKD {}", "n".repeat(300))).code >= 500);
    // The server still answers.
    assert_eq!(c.cmd("NOOP").code, 200);
    assert!(c.cmd("PWD").text().starts_with("257 \"/\""));
}

#[test]
fn stor_retr_size_mdtm_dele() {
    let s = TestServer::start();
    let mut c = s.login();
    assert_eq!(c.cmd("TYPE I").code, 200);
    let data = bytes(300_000, 1);
    let (first, last) = c.stor("STOR f.bin", &data);
    assert_eq!(first.code, 150);
    assert_eq!(last.code, 226);
    assert_eq!(std::fs::read(s.path("f.bin")).unwrap(), data);
    let (r, got) = c.retr("RETR f.bin");
    assert_eq!(r.code, 226);
    assert_eq!(got, data);
    assert_eq!(c.cmd("SIZE f.bin").raw, b"213 300000\r\n");
    let r = c.cmd("MDTM f.bin");
    assert_eq!(r.code, 213);
    assert_eq!(r.raw.len(), b"213 YYYYMMDDHHMMSS\r\n".len(), "{}", r.text());
    assert_eq!(c.cmd("SIZE missing").code, 550);
    assert_eq!(c.cmd("MKD d").code, 257);
    assert_eq!(c.cmd("SIZE d").code, 550);
    assert_eq!(c.cmd("DELE d").code, 550);
    assert_eq!(c.cmd("DELE f.bin").code, 250);
    assert!(!s.path("f.bin").exists());
    assert_eq!(c.cmd("DELE f.bin").code, 550);
    let (r, _) = c.retr("RETR missing");
    assert_eq!(r.code, 550);
    let (r, _) = c.retr("RETR d");
    assert_eq!(r.code, 550);
}

#[test]
fn transfer_without_data_setup_is_425() {
    let s = TestServer::start();
    let mut c = s.login();
    std::fs::write(s.path("f"), b"x").unwrap();
    assert_eq!(c.cmd("RETR f").code, 425);
    assert_eq!(c.cmd("LIST").code, 425);
    assert_eq!(c.cmd("STOR new").code, 425);
    assert!(
        !s.path("new").exists(),
        "no file created without a data connection"
    );
}

#[test]
fn rest_resumes_both_ways_and_appe_appends() {
    let s = TestServer::start();
    let data = bytes(100_000, 2);
    std::fs::write(s.path("f"), &data).unwrap();
    let mut c = s.login();
    c.cmd("TYPE I");
    assert_eq!(c.cmd("REST 40000").code, 350);
    let (r, got) = c.retr("RETR f");
    assert_eq!(r.code, 226);
    assert_eq!(got, &data[40_000..]);
    // REST is used once.
    let (_, got) = c.retr("RETR f");
    assert_eq!(got.len(), data.len());
    // Resume an upload.
    std::fs::write(s.path("up"), &data[..30_000]).unwrap();
    assert_eq!(c.cmd("REST 30000").code, 350);
    let (_, r) = c.stor("STOR up", &data[30_000..]);
    assert_eq!(r.code, 226);
    assert_eq!(std::fs::read(s.path("up")).unwrap(), data);
    // APPE appends, and creates a missing file.
    let (_, r) = c.stor("APPE up", b"tail");
    assert_eq!(r.code, 226);
    assert!(std::fs::read(s.path("up")).unwrap().ends_with(b"tail"));
    let (_, r) = c.stor("APPE fresh", b"new");
    assert_eq!(r.code, 226);
    assert_eq!(std::fs::read(s.path("fresh")).unwrap(), b"new");
}

#[test]
fn downloads_are_exact_with_and_without_sendfile() {
    // Larger than one transfer buffer, and not a multiple of a page.
    let data = bytes((3 << 20) + 12_345, 9);
    for mode in [Sendfile::Always, Sendfile::Never, Sendfile::Auto] {
        let s = TestServer::with(|cfg| cfg.sendfile = mode);
        std::fs::write(s.path("f"), &data).unwrap();
        let mut c = s.login();
        c.cmd("TYPE I");
        let (r, got) = c.retr("RETR f");
        assert_eq!(r.code, 226, "{mode:?}");
        assert!(got == data, "{mode:?}: {} bytes", got.len());
        assert_eq!(c.cmd("REST 1048577").code, 350);
        let (r, got) = c.retr("RETR f");
        assert_eq!(r.code, 226, "{mode:?}");
        assert!(got == data[1_048_577..], "{mode:?} after REST");
        // An empty file.
        std::fs::write(s.path("empty"), b"").unwrap();
        let (r, got) = c.retr("RETR empty");
        assert_eq!((r.code, got.len()), (226, 0), "{mode:?}");
    }
}

#[test]
fn stou_names_the_file_in_150() {
    let s = TestServer::start();
    let mut c = s.login();
    let (first, last) = c.stor("STOU", b"one");
    assert_eq!(first.code, 150);
    let t = first.text();
    let name = t
        .trim_end()
        .strip_prefix("150 FILE: ")
        .expect(&t)
        .to_string();
    assert_eq!(last.code, 226);
    assert_eq!(std::fs::read(s.path(&name)).unwrap(), b"one");
    let (first2, _) = c.stor("STOU", b"two");
    let name2 = first2
        .text()
        .trim_end()
        .strip_prefix("150 FILE: ")
        .unwrap()
        .to_string();
    assert_ne!(name, name2);
    assert_eq!(std::fs::read(s.path(&name)).unwrap(), b"one");
}

#[test]
fn type_a_converts_line_endings() {
    let s = TestServer::start();
    std::fs::write(s.path("unix.txt"), b"a\nb\n\nc").unwrap();
    let mut c = s.login();
    assert_eq!(c.cmd("TYPE A").code, 200);
    let (_, got) = c.retr("RETR unix.txt");
    assert_eq!(got, b"a\r\nb\r\n\r\nc");
    assert_eq!(c.cmd("SIZE unix.txt").raw, b"213 9\r\n");
    let (_, r) = c.stor("STOR dos.txt", b"x\r\ny\r\nlone\rcr\r\n");
    assert_eq!(r.code, 226);
    assert_eq!(
        std::fs::read(s.path("dos.txt")).unwrap(),
        b"x\ny\nlone\rcr\n"
    );
    // TYPE I is byte-exact.
    c.cmd("TYPE I");
    let (_, got) = c.retr("RETR unix.txt");
    assert_eq!(got, b"a\nb\n\nc");
    assert_eq!(c.cmd("SIZE unix.txt").raw, b"213 6\r\n");
}

#[test]
fn rename_sequence() {
    let s = TestServer::start();
    std::fs::write(s.path("a"), b"A").unwrap();
    std::fs::write(s.path("b"), b"B").unwrap();
    let mut c = s.login();
    assert_eq!(c.cmd("RNTO x").code, 503, "RNTO without RNFR");
    assert_eq!(c.cmd("RNFR missing").code, 550);
    assert_eq!(c.cmd("RNFR a").code, 350);
    assert_eq!(c.cmd("NOOP").code, 200);
    assert_eq!(c.cmd("RNTO c").code, 503, "RNTO not right after RNFR");
    assert!(s.path("a").exists());
    assert_eq!(c.cmd("RNFR a").code, 350);
    assert_eq!(c.cmd("RNTO b").code, 250, "rename over an existing file");
    assert_eq!(std::fs::read(s.path("b")).unwrap(), b"A");
    assert!(!s.path("a").exists());
}

#[test]
fn a_big_directory_lists_every_entry_once_in_order_with_its_size() {
    // Above the size where two threads share the work.
    let s = TestServer::start();
    let names: Vec<String> = (0..3001).map(|i| format!("f{i:05}")).collect();
    for (i, n) in names.iter().enumerate() {
        std::fs::write(s.path(n), vec![b'x'; i % 7]).unwrap();
    }
    let mut c = s.login();
    let (r, list) = c.retr("LIST");
    assert_eq!(r.code, 226);
    let list = String::from_utf8(list).unwrap();
    let rows: Vec<(String, u64)> = list
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[8].to_string(), f[4].parse().unwrap())
        })
        .collect();
    let want: Vec<(String, u64)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.clone(), (i % 7) as u64))
        .collect();
    assert!(rows == want, "{} rows", rows.len());
}

#[test]
fn list_nlst_mlsd_mlst_formats() {
    let s = TestServer::start();
    std::fs::write(s.path("file one.txt"), b"12345").unwrap();
    std::fs::create_dir(s.path("sub")).unwrap();
    std::fs::write(s.path(".hidden"), b"").unwrap();
    let mut c = s.login();
    let (r, list) = c.retr("LIST");
    assert_eq!(r.code, 226);
    let list = String::from_utf8(list).unwrap();
    let line = list
        .lines()
        .find(|l| l.ends_with("file one.txt"))
        .expect(&list);
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert!(fields[0].starts_with("-rw"), "{line}");
    assert!(fields[1].parse::<u64>().is_ok(), "link count: {line}");
    assert_eq!(fields[4], "5", "{line}");
    assert!(
        [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
        ]
        .contains(&fields[5]),
        "{line}"
    );
    assert!(
        list.lines()
            .any(|l| l.starts_with('d') && l.ends_with(" sub"))
    );
    assert!(list.contains(".hidden"), "dot files listed");
    assert!(list.ends_with("\r\n"));
    for flags in ["LIST -a", "LIST -la", "LIST -al sub", "NLST -CF"] {
        let (r, _) = c.retr(flags);
        assert_eq!(r.code, 226, "{flags}");
    }
    let (_, nlst) = c.retr("NLST");
    let mut names: Vec<&str> = std::str::from_utf8(&nlst)
        .unwrap()
        .split("\r\n")
        .filter(|l| !l.is_empty())
        .collect();
    names.sort();
    assert_eq!(names, vec![".hidden", "file one.txt", "sub"]);
    let (r, mlsd) = c.retr("MLSD");
    assert_eq!(r.code, 226);
    let mlsd = String::from_utf8(mlsd).unwrap();
    let f = mlsd
        .lines()
        .find(|l| l.ends_with("; file one.txt"))
        .expect(&mlsd);
    assert!(f.starts_with("type=file;size=5;modify="), "{f}");
    assert!(f.contains(";perm=adfrw;unique="), "{f}");
    let d = mlsd.lines().find(|l| l.ends_with("; sub")).unwrap();
    assert!(d.starts_with("type=dir;"), "{d}");
    let r = c.cmd("MLST file one.txt");
    assert_eq!(r.code, 250);
    let t = r.text();
    let lines: Vec<&str> = t.split("\r\n").collect();
    assert!(lines[0].starts_with("250-"), "{t}");
    assert!(lines[1].starts_with(" type=file;size=5;"), "{t}");
    assert!(lines[1].ends_with(" /file one.txt"), "{t}");
    assert!(lines[2].starts_with("250 "), "{t}");
    // Missing directories are 550 (rclone relies on it); MLSD of a file is 501.
    let (r, _) = c.retr("MLSD missing");
    assert_eq!(r.code, 550);
    let (r, _) = c.retr("LIST missing");
    assert_eq!(r.code, 550);
    let (r, _) = c.retr("MLSD file one.txt");
    assert_eq!(r.code, 501);
    assert_eq!(c.cmd("MLST missing").code, 550);
}

#[test]
fn stat_idle_and_with_a_path() {
    let s = TestServer::start();
    std::fs::write(s.path("f"), b"abc").unwrap();
    let mut c = s.login();
    let r = c.cmd("STAT");
    assert_eq!(r.code, 211);
    assert!(r.text().ends_with("211 End of status.\r\n"));
    let r = c.cmd("STAT f");
    assert_eq!(r.code, 213, "{}", r.text());
    assert!(r.text().contains(" f\r\n"));
    let r = c.cmd("STAT /");
    assert_eq!(r.code, 212, "{}", r.text());
    assert!(r.text().contains(" f\r\n"));
    assert_eq!(c.cmd("STAT missing").code, 450);
}

#[test]
fn misc_commands() {
    let s = TestServer::start();
    let mut c = Ctrl::connect(s.v4);
    assert_eq!(c.cmd("HOST localhost").code, 220);
    c.login(USER, PASS);
    assert_eq!(c.cmd("HOST localhost").code, 503, "HOST after login");
    assert_eq!(c.cmd("SYST").raw, b"215 UNIX Type: L8\r\n");
    assert_eq!(c.cmd("ALLO 1000").code, 202);
    assert_eq!(c.cmd("HELP").code, 214);
    assert_eq!(c.cmd("HELP RETR").code, 214);
    assert_eq!(c.cmd("SITE HELP").code, 214);
    assert_eq!(c.cmd("CLNT test").code, 200);
    assert_eq!(c.cmd("ABOR").code, 226);
    assert_eq!(c.cmd("REIN").code, 220);
    assert_eq!(c.cmd("PWD").code, 530, "REIN logs out");
    let mut c = Ctrl::connect(s.v4);
    assert_eq!(c.cmd("USER judge").code, 331);
    assert_eq!(c.cmd("HOST x").code, 503, "HOST after USER");
}

#[test]
fn mfmt_site_utime_mdtm_set_and_chmod() {
    let s = TestServer::start();
    std::fs::write(s.path("f"), b"x").unwrap();
    let mut c = s.login();
    let r = c.cmd("MFMT 20200102030405 f");
    assert_eq!(r.raw, b"213 Modify=20200102030405; f\r\n");
    assert_eq!(c.cmd("MDTM f").raw, b"213 20200102030405\r\n");
    assert_eq!(c.cmd("SITE UTIME 20210102030405 f").code, 200);
    assert_eq!(c.cmd("MDTM f").raw, b"213 20210102030405\r\n");
    assert_eq!(
        c.cmd("SITE UTIME f 20220102030405 20220102030405 20220102030405 UTC")
            .code,
        200
    );
    assert_eq!(c.cmd("MDTM f").raw, b"213 20220102030405\r\n");
    assert_eq!(c.cmd("MDTM 20230102030405 f").code, 213);
    assert_eq!(c.cmd("MDTM f").raw, b"213 20230102030405\r\n");
    assert_eq!(c.cmd("MFMT 20200102030405 missing").code, 550);
    assert_eq!(c.cmd("SITE CHMOD 600 f").code, 200);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(s.path("f")).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn epsv_all_eprt_and_families() {
    let s = TestServer::start();
    let mut c = s.login();
    assert_eq!(c.cmd("EPSV 2").code, 522, "IPv6 EPSV on an IPv4 connection");
    assert_eq!(c.cmd("EPSV 3").code, 522);
    assert_eq!(c.cmd("EPRT |3|1.2.3.4|5000|").code, 522);
    assert_eq!(c.cmd("EPRT |1|127.0.0.1|x|").code, 501);
    assert_eq!(c.cmd("EPSV 1").code, 229);
    assert_eq!(c.cmd("EPSV ALL").code, 200);
    assert_eq!(c.cmd("PASV").code, 503);
    assert_eq!(c.cmd("PORT 127,0,0,1,4,1").code, 503);
    assert_eq!(c.cmd("EPRT |1|127.0.0.1|1025|").code, 503);
    std::fs::write(s.path("f"), b"epsv").unwrap();
    let (r, got) = c.retr("RETR f");
    assert_eq!((r.code, got.as_slice()), (226, &b"epsv"[..]));
}

#[test]
fn port_bounce_protection() {
    let s = TestServer::start();
    let mut c = s.login();
    assert_eq!(c.cmd("PORT 10,1,2,3,200,10").code, 504, "foreign address");
    assert_eq!(c.cmd("PORT 127,0,0,1,0,25").code, 504, "privileged port");
    assert_eq!(c.cmd("EPRT |1|10.1.2.3|5000|").code, 504);
    assert_eq!(c.cmd("EPRT |1|127.0.0.1|21|").code, 504);
    // With the switch off, the target is accepted (not connected to here).
    let s2 = TestServer::with(|cfg| cfg.active_peer_check = false);
    let mut c2 = s2.login();
    assert_eq!(c2.cmd("PORT 127,0,0,1,0,25").code, 200);
}

fn active_listener() -> (std::net::TcpListener, u16) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

#[test]
fn active_mode_port_and_eprt() {
    let s = TestServer::start();
    std::fs::write(s.path("f"), b"active data").unwrap();
    let mut c = s.login();
    for kind in ["PORT", "EPRT"] {
        let (l, port) = active_listener();
        let cmd = if kind == "PORT" {
            format!("PORT 127,0,0,1,{},{}", port >> 8, port & 0xff)
        } else {
            format!("EPRT |1|127.0.0.1|{port}|")
        };
        assert_eq!(c.cmd(&cmd).code, 200);
        assert_eq!(c.cmd("RETR f").code, 150);
        let (mut conn, _) = l.accept().unwrap();
        let mut got = Vec::new();
        conn.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"active data");
        assert_eq!(c.read_reply().code, 226);
    }
}

#[test]
fn ipv6_epsv_and_eprt() {
    let s = TestServer::start();
    let Some(v6) = s.v6 else {
        eprintln!("no IPv6 on this host");
        return;
    };
    std::fs::write(s.path("f"), b"six").unwrap();
    let mut c = Ctrl::connect(v6);
    c.login(USER, PASS);
    assert_eq!(c.cmd("PASV").code, 501, "PASV cannot express IPv6");
    assert_eq!(c.cmd("EPSV 1").code, 522);
    let (r, got) = c.retr("RETR f");
    assert_eq!((r.code, got.as_slice()), (226, &b"six"[..]));
    let l = std::net::TcpListener::bind("[::1]:0").unwrap();
    let port = l.local_addr().unwrap().port();
    assert_eq!(c.cmd(&format!("EPRT |2|::1|{port}|")).code, 200);
    assert_eq!(c.cmd("RETR f").code, 150);
    let (mut conn, _) = l.accept().unwrap();
    let mut got = Vec::new();
    conn.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"six");
    assert_eq!(c.read_reply().code, 226);
}

#[test]
fn passive_port_refuses_other_addresses() {
    let s = TestServer::start();
    std::fs::write(s.path("f"), b"mine").unwrap();
    let mut c = s.login();
    let r = c.cmd("EPSV");
    let t = r.text();
    let port: u16 = t[t.find("(|||").unwrap() + 4..t.find("|)").unwrap()]
        .parse()
        .unwrap();
    // A thief from another loopback address connects first; it must get nothing.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(&SocketAddr::from(([127, 0, 0, 2], 0)).into())
        .unwrap();
    sock.connect(&SocketAddr::from(([127, 0, 0, 1], port)).into())
        .unwrap();
    let mut thief = TcpStream::from(sock);
    thief
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut data = TcpStream::connect(("127.0.0.1", port)).unwrap();
    assert_eq!(c.cmd("RETR f").code, 150);
    let mut got = Vec::new();
    data.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"mine");
    assert_eq!(c.read_reply().code, 226);
    let mut stolen = Vec::new();
    let _ = thief.read_to_end(&mut stolen);
    assert!(stolen.is_empty(), "the other address received data");
}

#[test]
fn pasv_announces_the_public_address_only_to_clients_beyond_the_local_networks() {
    // Behind NAT: a loopback (or LAN) client gets the address it connected to; the public
    // one would send it out through the router and back.
    let s = TestServer::with(|c| c.public_address = Some("192.0.2.7".parse().unwrap()));
    let mut c = s.login();
    let r = c.cmd("PASV");
    let text = String::from_utf8_lossy(&r.raw).into_owned();
    assert!(
        text.starts_with("227 Entering Passive Mode (127,0,0,1,"),
        "{text}"
    );
    // A host name is accepted and resolved.
    let s = TestServer::with(|c| c.public_address = Some("localhost".parse().unwrap()));
    assert_eq!(s.login().cmd("PASV").code, 227);
}

#[test]
fn passive_timeout_gives_425_and_session_survives() {
    let s = TestServer::with(|cfg| cfg.data_connect_timeout = 1);
    std::fs::write(s.path("f"), b"x").unwrap();
    let mut c = s.login();
    assert_eq!(c.cmd("PASV").code, 227);
    let start = Instant::now();
    assert_eq!(c.cmd("RETR f").code, 150);
    assert_eq!(c.read_reply().code, 425);
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_eq!(c.cmd("NOOP").code, 200);
    let (r, got) = c.retr("RETR f");
    assert_eq!((r.code, got.as_slice()), (226, &b"x"[..]));
}

#[test]
fn abor_mid_transfer_then_session_usable() {
    let s = TestServer::start();
    std::fs::write(s.path("big"), bytes(64 << 20, 3)).unwrap();
    let mut c = s.login();
    c.cmd("TYPE I");
    let mut data = c.epsv();
    assert_eq!(c.cmd("RETR big").code, 150);
    let mut buf = [0u8; 65536];
    data.read_exact(&mut buf).unwrap();
    // STAT answers mid-transfer.
    let r = c.cmd("STAT");
    assert_eq!(r.code, 211);
    assert!(r.text().contains("Transfer in progress"), "{}", r.text());
    c.send_raw(b"\xff\xf4\xff\xf2ABOR\r\n");
    let first = c.read_reply();
    let second = c.read_reply();
    assert_eq!((first.code, second.code), (426, 226));
    drop(data);
    assert_eq!(c.cmd("NOOP").code, 200);
    let (r, _) = c.retr("NLST");
    assert_eq!(r.code, 226);
}

/// A big binary download is sent from a thread of its own; a client that stops reading
/// still ends it at `data_stall_timeout`, with a 426 and a session that goes on.
#[test]
fn a_stalled_download_ends_at_the_stall_timeout() {
    let s = TestServer::with(|cfg| cfg.data_stall_timeout = 1);
    std::fs::write(s.path("big"), bytes(64 << 20, 5)).unwrap();
    let mut c = s.login();
    c.cmd("TYPE I");
    let data = c.epsv();
    assert_eq!(c.cmd("RETR big").code, 150);
    let started = std::time::Instant::now();
    let r = c.read_reply();
    assert_eq!(r.code, 426, "{}", r.text());
    let waited = started.elapsed();
    assert!(
        waited >= std::time::Duration::from_millis(800)
            && waited < std::time::Duration::from_secs(10),
        "{waited:?}"
    );
    drop(data);
    assert_eq!(c.cmd("NOOP").code, 200);
}

/// Regression: ABOR sent as urgent data (ftplib's `abort()` makes the final LF urgent; BSD
/// ftp sends IAC IP, then IAC as urgent data, then DM ABOR) went unanswered.
#[test]
fn abor_as_urgent_data() {
    let s = TestServer::start();
    std::fs::write(s.path("big"), bytes(64 << 20, 7)).unwrap();
    let mut c = s.login();
    c.cmd("TYPE I");
    for style in ["ftplib", "bsd"] {
        let mut data = c.epsv();
        assert_eq!(c.cmd("RETR big").code, 150);
        let mut buf = [0u8; 65536];
        data.read_exact(&mut buf).unwrap();
        if style == "ftplib" {
            c.send_raw(b"ABOR\r");
            c.send_urgent(b"\n");
        } else {
            c.send_raw(b"\xff\xf4");
            c.send_urgent(b"\xff");
            c.send_raw(b"\xf2ABOR\r\n");
        }
        let first = c.read_reply();
        let second = c.read_reply();
        assert_eq!((first.code, second.code), (426, 226), "{style}");
        drop(data);
        assert_eq!(c.cmd("NOOP").code, 200, "{style}");
    }
}

#[test]
fn nlst_and_list_match_patterns_but_literal_names_win() {
    let s = TestServer::start();
    for f in ["a.txt", "b.txt", "c.bin", "lit*star", "sub/d.txt"] {
        if let Some(dir) = std::path::Path::new(f).parent() {
            std::fs::create_dir_all(s.path(&dir.to_string_lossy())).unwrap();
        }
        std::fs::write(s.path(f), f.as_bytes()).unwrap();
    }
    let mut c = s.login();
    let names = |data: Vec<u8>| -> Vec<String> {
        let mut v: Vec<String> = String::from_utf8(data)
            .unwrap()
            .split("\r\n")
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        v.sort();
        v
    };
    let (r, d) = c.retr("NLST *.txt");
    assert_eq!(r.code, 226);
    assert_eq!(names(d), vec!["a.txt", "b.txt"]);
    let (_, d) = c.retr("NLST sub/*.txt");
    assert_eq!(names(d), vec!["sub/d.txt"]);
    let (_, d) = c.retr("NLST lit*star");
    assert_eq!(
        names(d),
        vec!["lit*star"],
        "the literal name, not a pattern"
    );
    let (_, d) = c.retr("LIST [ab].txt");
    assert_eq!(String::from_utf8(d).unwrap().lines().count(), 2);
    let (r, _) = c.retr("NLST *.none");
    assert_eq!(r.code, 550);
    let (r, _) = c.retr("MLSD *.txt");
    assert_eq!(r.code, 550, "MLSD never globs");
}

#[test]
fn commands_during_a_transfer_are_answered_in_order() {
    let s = TestServer::start();
    std::fs::write(s.path("f"), bytes(1 << 20, 4)).unwrap();
    let mut c = s.login();
    c.cmd("TYPE I");
    let mut data = c.epsv();
    assert_eq!(c.cmd("RETR f").code, 150);
    c.send_raw(b"NOOP\r\nPWD\r\n");
    let mut got = Vec::new();
    data.read_to_end(&mut got).unwrap();
    assert_eq!(got.len(), 1 << 20);
    assert_eq!(c.read_reply().code, 226);
    assert_eq!(c.read_reply().code, 200);
    assert_eq!(c.read_reply().code, 257);
}

#[test]
fn idle_timeout_closes_with_421() {
    let s = TestServer::with(|cfg| cfg.idle_timeout = 1);
    let mut c = s.login();
    let r = c.read_reply();
    assert_eq!(r.code, 421);
    assert!(c.is_closed());
}

#[test]
fn utf8_and_odd_names_round_trip() {
    let s = TestServer::start();
    let mut c = s.login();
    c.cmd("TYPE I");
    for name in [
        "é.txt",
        "日本語.bin",
        "emoji 🚀",
        " lead",
        "trail ",
        "in ner",
        "-la",
        "\u{7f}x",
    ] {
        let (_, r) = c.stor(&format!("STOR {name}"), name.as_bytes());
        assert_eq!(r.code, 226, "{name:?}");
        assert_eq!(
            std::fs::read(s.path(name)).unwrap(),
            name.as_bytes(),
            "{name:?}"
        );
        let (_, list) = c.retr("LIST");
        assert!(
            String::from_utf8_lossy(&list)
                .lines()
                .any(|l| l.ends_with(&format!(" {name}"))),
            "{name:?} in LIST"
        );
        let (_, mlsd) = c.retr("MLSD");
        assert!(
            String::from_utf8_lossy(&mlsd)
                .lines()
                .any(|l| l.ends_with(&format!("; {name}")))
        );
        let (r, got) = c.retr(&format!("RETR {name}"));
        assert_eq!((r.code, got.as_slice()), (226, name.as_bytes()), "{name:?}");
        assert_eq!(c.cmd(&format!("DELE {name}")).code, 250, "{name:?}");
        assert!(!s.path(name).exists());
    }
    // Names that are not UTF-8 survive as bytes.
    let (_, r) = c.stor_bytes(b"STOR raw\xe9\xfe", b"bytes");
    assert_eq!(r.code, 226);
    use std::os::unix::ffi::OsStrExt;
    let p = s.root().join(std::ffi::OsStr::from_bytes(b"raw\xe9\xfe"));
    assert_eq!(std::fs::read(p).unwrap(), b"bytes");
}

#[test]
fn drop_box_semantics() {
    let s = TestServer::with(|cfg| cfg.anonymous = Some(wharf::config::AnonymousMode::Upload));
    std::fs::write(s.path("existing"), b"old").unwrap();
    let mut c = Ctrl::connect(s.v4);
    c.login("anonymous", "scanner@example.com");
    c.cmd("TYPE I");
    let (_, r) = c.stor("STOR scan1.pdf", b"pdf");
    assert_eq!(r.code, 226);
    assert_eq!(std::fs::read(s.path("scan1.pdf")).unwrap(), b"pdf");
    assert_eq!(c.cmd("MKD 2026/11").code, 257);
    assert_eq!(c.cmd("CWD 2026/11").code, 250);
    let (_, r) = c.stor("STOR deep.jpg", b"jpg");
    assert_eq!(r.code, 226);
    assert!(s.path("2026/11/deep.jpg").exists());
    c.cmd("CWD /");
    // No overwrite, no list, no download, no delete, no rename, no append.
    let (r, _) = c.stor("STOR existing", b"new");
    assert_eq!(r.code, 553);
    assert_eq!(std::fs::read(s.path("existing")).unwrap(), b"old");
    let (r, _) = c.retr("LIST");
    assert_eq!(r.code, 550);
    let (r, _) = c.retr("NLST");
    assert_eq!(r.code, 550);
    let (r, _) = c.retr("MLSD");
    assert_eq!(r.code, 550);
    let (r, _) = c.retr("RETR scan1.pdf");
    assert_eq!(r.code, 550);
    assert_eq!(c.cmd("DELE scan1.pdf").code, 550);
    assert_eq!(c.cmd("RNFR scan1.pdf").code, 550);
    assert_eq!(c.cmd("SIZE scan1.pdf").code, 550);
    let (r, _) = c.stor("APPE scan1.pdf", b"more");
    assert_eq!(r.code, 553);
    assert_eq!(c.cmd("RMD 2026/11").code, 550);
    assert_eq!(std::fs::read(s.path("scan1.pdf")).unwrap(), b"pdf");
}

#[test]
fn drop_box_unique_names() {
    let s = TestServer::with(|cfg| {
        cfg.anonymous = Some(wharf::config::AnonymousMode::Upload);
        cfg.upload_collision = wharf::config::Collision::Unique;
    });
    let mut c = Ctrl::connect(s.v4);
    c.login("ftp", "x");
    c.cmd("TYPE I");
    let (_, r) = c.stor("STOR img.jpg", b"1");
    assert_eq!(r.code, 226);
    let (_, r) = c.stor("STOR img.jpg", b"2");
    assert_eq!(r.code, 226);
    assert!(r.text().contains("img.jpg.1"), "{}", r.text());
    assert_eq!(std::fs::read(s.path("img.jpg")).unwrap(), b"1");
    assert_eq!(std::fs::read(s.path("img.jpg.1")).unwrap(), b"2");
}

#[test]
fn anonymous_read_only_and_off() {
    let s = TestServer::start();
    std::fs::write(s.path("pub"), b"public").unwrap();
    let mut c = Ctrl::connect(s.v4);
    c.login("anonymous", "me@example.com");
    let (r, got) = c.retr("RETR pub");
    assert_eq!((r.code, got.as_slice()), (226, &b"public"[..]));
    let (r, _) = c.stor("STOR x", b"x");
    assert_eq!(r.code, 553);
    assert_eq!(c.cmd("MKD d").code, 550);
    assert_eq!(c.cmd("DELE pub").code, 550);
    let s = TestServer::with(|cfg| cfg.anonymous = Some(wharf::config::AnonymousMode::Off));
    let mut c = Ctrl::connect(s.v4);
    assert_eq!(c.cmd("USER anonymous").code, 331);
    assert_eq!(c.cmd("PASS x").code, 530);
}

#[test]
fn many_concurrent_sessions() {
    let s = TestServer::start();
    std::fs::write(s.path("f"), bytes(50_000, 5)).unwrap();
    let addr = s.v4;
    let threads: Vec<_> = (0..40)
        .map(|i| {
            std::thread::spawn(move || {
                let mut c = Ctrl::connect(addr);
                c.login("anonymous", "x");
                c.cmd("TYPE I");
                let (r, got) = c.retr("RETR f");
                assert_eq!(r.code, 226, "session {i}");
                assert_eq!(got.len(), 50_000);
                assert_eq!(c.cmd("QUIT").code, 221);
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn client_that_vanishes_mid_upload_does_not_hurt_others() {
    let s = TestServer::start();
    let mut c = s.login();
    c.cmd("TYPE I");
    let mut data = c.epsv();
    assert_eq!(c.cmd("STOR partial").code, 150);
    data.write_all(&bytes(10_000, 6)).unwrap();
    drop(c);
    drop(data);
    let mut other = s.login();
    assert_eq!(other.cmd("NOOP").code, 200);
}
