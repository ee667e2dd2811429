//! Quotas: an upload past its login's quota gets 552 and leaves nothing (refused up front
//! when the root is full, stopped mid-transfer otherwise); DELE gives the room back; the
//! count follows every change; `SITE QUOTA` and `wharf quota` show it.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use wharf::config::AnonymousMode;

use crate::harness::*;

/// A server whose user `judge` may hold `bytes` and `files`.
fn with_quota(
    bytes: Option<u64>,
    files: Option<u64>,
    f: impl FnOnce(&mut wharf::Config),
) -> TestServer {
    TestServer::with(move |c| {
        c.users[0].quota_bytes = bytes;
        c.users[0].quota_files = files;
        f(c);
    })
}

/// Uploads `data` with `line`, tolerating a server that stops reading (a quota). Returns
/// the first and the last reply.
fn upload(c: &mut Ctrl, line: &str, data: &[u8]) -> (Reply, Reply) {
    let mut conn = c.epsv();
    let first = c.cmd(line);
    if first.code != 150 && first.code != 125 {
        return (first.clone(), first);
    }
    for chunk in data.chunks(16 * 1024) {
        if conn.write_all(chunk).is_err() {
            break;
        }
    }
    drop(conn);
    (first, c.read_reply())
}

/// Bytes and files `SITE QUOTA` reports.
fn site_quota(c: &mut Ctrl) -> (u64, u64) {
    let r = c.cmd("SITE QUOTA");
    assert_eq!(r.code, 200, "{}", r.text());
    let text = r.text();
    let number = |label: &str| -> u64 {
        let line = text.lines().find(|l| l.contains(label)).unwrap();
        let after = line.split(label).nth(1).unwrap().trim();
        after.split(' ').next().unwrap().parse().unwrap()
    };
    (number("Bytes:"), number("Files:"))
}

/// What the directory holds as a client sees it (no hidden upload files): bytes, files.
fn on_disk(dir: &Path) -> (u64, u64) {
    let (mut bytes, mut files) = (0, 0);
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let meta = e.metadata().unwrap();
        if meta.is_dir() {
            let (b, f) = on_disk(&e.path());
            bytes += b;
            files += f;
        } else if !e
            .file_name()
            .to_string_lossy()
            .starts_with(".wharf-upload.")
        {
            bytes += meta.len();
            files += 1;
        }
    }
    (bytes, files)
}

fn no_hidden_files(dir: &Path) -> bool {
    std::fs::read_dir(dir).unwrap().all(|e| {
        !e.unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with(".wharf-upload.")
    })
}

#[test]
fn an_upload_past_the_quota_gets_552_and_leaves_nothing() {
    let s = with_quota(Some(100_000), None, |_| {});
    let mut c = s.login();
    c.cmd("TYPE I");
    let (_, r) = upload(&mut c, "STOR a.bin", &bytes(60_000, 1));
    assert_eq!(r.code, 226, "{}", r.text());
    assert_eq!(site_quota(&mut c), (60_000, 1));
    assert!(c.cmd("SITE QUOTA").text().contains("60000 of 100000"));
    // Past the quota while it runs: 552, and nothing under its name or hidden.
    let (first, r) = upload(&mut c, "STOR b.bin", &bytes(400_000, 2));
    assert_eq!(first.code, 150);
    assert_eq!(r.code, 552, "{}", r.text());
    assert!(!s.path("b.bin").exists());
    assert!(
        wait_for(Duration::from_secs(5), || no_hidden_files(s.root())).is_some(),
        "a temporary upload stayed"
    );
    assert_eq!(site_quota(&mut c), (60_000, 1));
    // Exactly up to the quota is allowed; past it, refused before any data.
    let (_, r) = upload(&mut c, "STOR c.bin", &bytes(40_000, 3));
    assert_eq!(r.code, 226, "{}", r.text());
    let (first, _) = upload(&mut c, "STOR d.bin", b"x");
    assert_eq!(first.code, 552, "{}", first.text());
    // DELE gives the room back.
    assert_eq!(c.cmd("DELE a.bin").code, 250);
    assert_eq!(site_quota(&mut c), (40_000, 1));
    let (_, r) = upload(&mut c, "STOR d.bin", &bytes(50_000, 4));
    assert_eq!(r.code, 226, "{}", r.text());
    // Replacing a file needs room only for the difference.
    let (_, r) = upload(&mut c, "STOR d.bin", &bytes(55_000, 5));
    assert_eq!(r.code, 226, "{}", r.text());
    assert_eq!(site_quota(&mut c), (95_000, 2));
    assert_eq!(on_disk(s.root()), (95_000, 2));
}

#[test]
fn an_append_or_in_place_write_past_the_quota_is_cut_back() {
    let s = with_quota(Some(50_000), None, |c| c.atomic_uploads = Some(false));
    std::fs::write(s.path("log.txt"), bytes(10_000, 1)).unwrap();
    let mut c = s.login();
    c.cmd("TYPE I");
    let (_, r) = upload(&mut c, "APPE log.txt", &bytes(100_000, 2));
    assert_eq!(r.code, 552, "{}", r.text());
    assert_eq!(std::fs::read(s.path("log.txt")).unwrap(), bytes(10_000, 1));
    // In place (atomic uploads off), a new file stopped by the quota is removed.
    let (_, r) = upload(&mut c, "STOR new.bin", &bytes(100_000, 3));
    assert_eq!(r.code, 552, "{}", r.text());
    assert!(!s.path("new.bin").exists());
    assert_eq!(site_quota(&mut c), (10_000, 1));
    let (_, r) = upload(&mut c, "APPE log.txt", &bytes(5_000, 4));
    assert_eq!(r.code, 226, "{}", r.text());
    assert_eq!(site_quota(&mut c), (15_000, 1));
}

#[test]
fn a_files_quota_refuses_a_new_name_not_a_replacement() {
    let s = with_quota(None, Some(2), |_| {});
    let mut c = s.login();
    c.cmd("TYPE I");
    for name in ["one", "two"] {
        let (_, r) = upload(&mut c, &format!("STOR {name}"), b"data");
        assert_eq!(r.code, 226, "{}", r.text());
    }
    let (first, _) = upload(&mut c, "STOR three", b"data");
    assert_eq!(first.code, 552, "{}", first.text());
    assert!(!s.path("three").exists());
    let (_, r) = upload(&mut c, "STOR two", b"other data");
    assert_eq!(r.code, 226, "{}", r.text());
    assert!(c.cmd("SITE QUOTA").text().contains("Files: 2 of 2"));
}

#[test]
fn usage_follows_a_random_mix_of_changes() {
    let s = with_quota(Some(1 << 40), Some(1_000_000), |_| {});
    // Files already there are counted at first need.
    std::fs::create_dir(s.path("pre")).unwrap();
    std::fs::write(s.path("pre/old.bin"), bytes(1234, 9)).unwrap();
    let mut c = s.login();
    c.cmd("TYPE I");
    assert_eq!(c.cmd("MKD d").code, 257);
    let mut seed = random();
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let names = ["a", "b", "d/c", "d/e", "f"];
    for round in 0..120 {
        let name = names[next(names.len() as u64) as usize];
        let len = next(20_000) as usize;
        match next(6) {
            0 | 1 => {
                upload(&mut c, &format!("STOR {name}"), &bytes(len, round));
            }
            2 => {
                upload(&mut c, &format!("APPE {name}"), &bytes(len, round));
            }
            3 => {
                c.cmd(&format!("DELE {name}"));
            }
            4 => {
                let to = names[next(names.len() as u64) as usize];
                if c.cmd(&format!("RNFR {name}")).code == 350 {
                    c.cmd(&format!("RNTO {to}"));
                }
            }
            _ => {
                // A directory moved in and out of sight of nothing: the count holds.
                if c.cmd("RNFR d").code == 350 {
                    c.cmd("RNTO d2");
                    c.cmd("RNFR d2");
                    c.cmd("RNTO d");
                }
            }
        }
    }
    assert_eq!(site_quota(&mut c), on_disk(s.root()));
}

#[test]
fn anonymous_logins_share_their_quota() {
    let s = TestServer::with(|c| {
        c.anonymous = Some(AnonymousMode::Upload);
        c.anonymous_quota_bytes = Some(30_000);
    });
    let mut c = Ctrl::connect(s.v4);
    c.login("anonymous", "scanner@example.com");
    c.cmd("TYPE I");
    let (_, r) = upload(&mut c, "STOR one.bin", &bytes(20_000, 1));
    assert_eq!(r.code, 226, "{}", r.text());
    let mut other = Ctrl::connect(s.v4);
    other.login("anonymous", "camera@example.com");
    other.cmd("TYPE I");
    let (_, r) = upload(&mut other, "STOR two.bin", &bytes(20_000, 2));
    assert_eq!(r.code, 552, "{}", r.text());
    assert!(!s.path("two.bin").exists());
}

/// What the directory holds, hidden interrupted uploads included in bytes.
fn with_resumes(dir: &Path) -> (u64, u64) {
    let (bytes, files) = on_disk(dir);
    let parked: u64 = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".wharf-upload.resume-")
        })
        .map(|e| e.metadata().unwrap().len())
        .sum();
    (bytes + parked, files)
}

#[test]
fn concurrent_uploads_of_one_name_count_once() {
    let s = with_quota(Some(10_000_000), None, |_| {});
    let (mut a, mut b) = (s.login(), s.login());
    a.cmd("TYPE I");
    b.cmd("TYPE I");
    let (mut da, mut db) = (a.epsv(), b.epsv());
    assert_eq!(a.cmd("STOR same.bin").code, 150);
    assert_eq!(b.cmd("STOR same.bin").code, 150);
    da.write_all(&bytes(70_000, 1)).unwrap();
    db.write_all(&bytes(90_000, 2)).unwrap();
    drop(da);
    assert_eq!(a.read_reply().code, 226);
    drop(db);
    assert_eq!(b.read_reply().code, 226);
    assert_eq!(site_quota(&mut a), on_disk(s.root()));
    assert_eq!(on_disk(s.root()), (90_000, 1));
}

#[test]
fn an_interrupted_then_resumed_upload_counts_once() {
    let s = with_quota(Some(10_000_000), None, |_| {});
    let whole = bytes(200_000, 7);
    let mut c = s.login();
    c.cmd("TYPE I");
    let mut data = c.epsv();
    assert_eq!(c.cmd("STOR doc.pdf").code, 150);
    data.write_all(&whole[..120_000]).unwrap();
    data.flush().unwrap();
    await_received(&mut c, 120_000);
    s.kill_client(c, data);
    let mut c = s.login();
    c.cmd("TYPE I");
    // The kept upload takes room: counted in bytes, not in files.
    assert_eq!(site_quota(&mut c), (120_000, 0));
    assert_eq!(site_quota(&mut c), with_resumes(s.root()));
    assert_eq!(c.cmd("REST 120000").code, 350);
    let (_, r) = upload(&mut c, "STOR doc.pdf", &whole[120_000..]);
    assert_eq!(r.code, 226, "{}", r.text());
    assert_eq!(std::fs::read(s.path("doc.pdf")).unwrap(), whole);
    assert_eq!(site_quota(&mut c), (200_000, 1));
    assert_eq!(site_quota(&mut c), on_disk(s.root()));
}

#[test]
fn a_login_without_a_quota_is_told_so_and_nothing_is_counted() {
    let s = TestServer::start();
    let mut c = s.login();
    assert_eq!(c.cmd("SITE QUOTA").text(), "200 No quota for judge.\r\n");
    assert!(c.cmd("SITE HELP").text().contains(" QUOTA\r\n"));
    assert!(!s.shared.quotas.active());
}

#[test]
fn a_symlink_loop_in_the_root_is_counted_once() {
    let s = with_quota(Some(1_000_000), None, |_| {});
    std::fs::create_dir(s.path("d")).unwrap();
    std::fs::write(s.path("d/f.bin"), bytes(1000, 1)).unwrap();
    std::os::unix::fs::symlink(".", s.path("d/again")).unwrap();
    std::os::unix::fs::symlink("..", s.path("d/up")).unwrap();
    std::fs::write(s.path("top.bin"), bytes(500, 2)).unwrap();
    let mut c = s.login();
    assert_eq!(site_quota(&mut c), (1500, 2));
}
