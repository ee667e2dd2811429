//! FTP semantics on an S3 root, command by command, against Garage.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::hang::Relay;
use crate::harness::{Ctrl, TestServer, bytes, wait_for};
use crate::s3::{Garage, PART, S3Server, await_parts, block, pending, server, visible};

/// A logged-in client in TYPE I.
fn bin(s: &TestServer) -> Ctrl {
    let mut c = s.login();
    assert_eq!(c.cmd("TYPE I").code, 200);
    c
}

#[test]
fn directories_files_and_renames_map_onto_objects() {
    let Some(g) = Garage::start() else { return };
    let s = server(&g, "ops", |_| {});
    let mut c = bin(&s);
    assert_eq!(c.cmd("CWD /missing").code, 550);
    assert_eq!(c.cmd("MKD docs").code, 257);
    assert_eq!(c.cmd("MKD docs").code, 550, "MKD of an existing directory");
    assert!(visible(&g, "ops", "/docs"), "MKD writes a marker");
    assert_eq!(c.cmd("CWD docs").code, 250);
    assert_eq!(
        c.cmd("PWD").text(),
        "257 \"/docs\" is the current directory.\r\n"
    );
    let (_, done) = c.stor("STOR a.txt", b"hello\n");
    assert_eq!(done.code, 226, "{}", done.text());
    assert_eq!(c.cmd("SIZE a.txt").text(), "213 6\r\n");
    let mdtm = c.cmd("MDTM a.txt");
    assert_eq!(mdtm.code, 213, "{}", mdtm.text());
    // MFMT keeps the time as the object's `mtime` metadata; MDTM, MLSD and LIST show it.
    let mfmt = c.cmd("MFMT 20000102030405 a.txt");
    assert_eq!(mfmt.text(), "213 Modify=20000102030405; a.txt\r\n");
    assert_eq!(c.cmd("MDTM a.txt").text(), "213 20000102030405\r\n");
    let (_, mlsd) = c.retr("MLSD");
    let mlsd = String::from_utf8(mlsd).unwrap();
    assert!(mlsd.contains("modify=20000102030405"), "{mlsd}");
    assert_eq!(
        c.cmd("SIZE a.txt").text(),
        "213 6\r\n",
        "the copy keeps the data"
    );
    assert_eq!(c.cmd("SITE CHMOD 600 a.txt").code, 550);
    let (r, data) = c.retr("RETR a.txt");
    assert_eq!((r.code, data.as_slice()), (226, &b"hello\n"[..]));
    assert_eq!(c.cmd("REST 2").code, 350);
    let (r, data) = c.retr("RETR a.txt");
    assert_eq!((r.code, data.as_slice()), (226, &b"llo\n"[..]));
    assert_eq!(c.cmd("REST 6").code, 350);
    let (r, data) = c.retr("RETR a.txt");
    assert_eq!(
        (r.code, data.len()),
        (226, 0),
        "REST at the end: {}",
        r.text()
    );
    assert_eq!(c.retr("RETR /docs").0.code, 550, "RETR of a directory");
    let (r, list) = c.retr("LIST");
    assert_eq!(r.code, 226);
    let list = String::from_utf8(list).unwrap();
    assert!(
        list.contains(" 6 ") && list.ends_with("a.txt\r\n"),
        "{list}"
    );
    let (_, mlsd) = c.retr("MLSD /");
    let mlsd = String::from_utf8(mlsd).unwrap();
    assert!(
        mlsd.contains("type=dir;") && mlsd.contains(" docs\r\n"),
        "{mlsd}"
    );
    // RMD of a non-empty directory is refused and deletes nothing.
    assert_eq!(c.cmd("RMD /docs").code, 550);
    assert!(visible(&g, "ops", "/docs/a.txt"));
    // Renames copy, then delete the source.
    assert_eq!(c.cmd("RNFR a.txt").code, 350);
    assert_eq!(c.cmd("RNTO b.txt").code, 250);
    assert!(!visible(&g, "ops", "/docs/a.txt"));
    assert_eq!(c.cmd("SIZE b.txt").text(), "213 6\r\n");
    assert_eq!(
        c.cmd("MDTM b.txt").text(),
        "213 20000102030405\r\n",
        "a rename keeps the time"
    );
    // A directory holding objects is not renamed (rename_dir_limit = 0).
    assert_eq!(c.cmd("RNFR /docs").code, 350);
    assert_eq!(c.cmd("RNTO /papers").code, 550);
    assert_eq!(c.cmd("DELE b.txt").code, 250);
    assert_eq!(c.cmd("DELE b.txt").code, 550);
    assert_eq!(c.cmd("CWD /").code, 250);
    assert_eq!(c.cmd("RNFR docs").code, 350);
    assert_eq!(c.cmd("RNTO papers").code, 250, "an empty directory moves");
    assert_eq!(c.cmd("RMD papers").code, 250);
    assert!(!visible(&g, "ops", "/papers"));
    assert_eq!(c.retr("RETR nothing").0.code, 550);
    // A prefix without a marker is a directory too.
    let (_, done) = c.stor("STOR deep/er/file", b"x");
    assert_eq!(done.code, 226, "{}", done.text());
    assert_eq!(c.cmd("CWD deep/er").code, 250);
}

#[test]
fn multipart_upload_appears_only_when_complete() {
    let Some(g) = Garage::start() else { return };
    let s = server(&g, "mp", |_| {});
    let mut c = bin(&s);
    let data = bytes(2 * PART + 12345, 7);
    let mut conn = c.epsv();
    assert_eq!(c.cmd("STOR big.bin").code, 150);
    conn.write_all(&data[..PART + 1000]).unwrap();
    await_parts(&g, "mp", "/big.bin", PART);
    assert!(!visible(&g, "mp", "/big.bin"), "visible before the end");
    conn.write_all(&data[PART + 1000..]).unwrap();
    drop(conn);
    let done = c.read_reply();
    assert_eq!(done.code, 226, "{}", done.text());
    let (r, got) = c.retr("RETR big.bin");
    assert_eq!(r.code, 226);
    assert!(got == data, "downloaded bytes differ");
    assert_eq!(c.cmd(&format!("REST {}", PART + 5)).code, 350);
    let (_, tail) = c.retr("RETR big.bin");
    assert!(tail == data[PART + 5..], "ranged read differs");
    // ABOR mid-upload leaves nothing, not even a resumable upload.
    let mut conn = c.epsv();
    assert_eq!(c.cmd("STOR aborted.bin").code, 150);
    conn.write_all(&data[..PART + 10]).unwrap();
    await_parts(&g, "mp", "/aborted.bin", PART);
    let r = c.cmd("ABOR");
    assert!(r.code == 426 || r.code == 226, "{}", r.text());
    if r.code == 426 {
        assert_eq!(c.read_reply().code, 226);
    }
    drop(conn);
    assert!(!visible(&g, "mp", "/aborted.bin"));
    assert_eq!(c.cmd("SIZE aborted.bin").code, 550);
}

#[test]
fn interrupted_upload_resumes_without_resending_stored_parts() {
    let Some(g) = Garage::start() else { return };
    let s = server(&g, "resume", |_| {});
    let data = bytes(3 * PART + 777, 9);
    {
        // A client killed mid-upload, once two parts are stored.
        let mut c = bin(&s);
        let mut conn = c.epsv();
        assert_eq!(c.cmd("STOR video.mp4").code, 150);
        conn.write_all(&data[..2 * PART + 4096]).unwrap();
        await_parts(&g, "resume", "/video.mp4", 2 * PART);
        s.kill_client(c, conn);
    }
    // Nothing visible; SIZE reports the bytes in the stored parts.
    let mut c = bin(&s);
    let size = c.cmd("SIZE video.mp4");
    assert_eq!(size.text(), format!("213 {}\r\n", 2 * PART));
    assert!(!visible(&g, "resume", "/video.mp4"));
    // REST elsewhere is refused with the offset that works.
    assert_eq!(c.cmd("REST 1000").code, 350);
    let conn = c.epsv();
    let r = c.cmd("STOR video.mp4");
    assert_eq!(r.code, 554, "{}", r.text());
    assert!(
        r.text().contains(&format!("REST {}", 2 * PART)),
        "{}",
        r.text()
    );
    drop(conn);
    // REST at the boundary + STOR sends only the rest.
    assert_eq!(c.cmd(&format!("REST {}", 2 * PART)).code, 350);
    let (_, done) = c.stor("STOR video.mp4", &data[2 * PART..]);
    assert_eq!(done.code, 226, "{}", done.text());
    let (_, got) = c.retr("RETR video.mp4");
    assert!(got == data, "resumed object differs");
    assert_eq!(
        c.cmd("SIZE video.mp4").text(),
        format!("213 {}\r\n", data.len())
    );
}

#[test]
fn appe_adds_to_objects_small_and_large() {
    let Some(g) = Garage::start() else { return };
    let s = server(&g, "appe", |_| {});
    let mut c = bin(&s);
    let (_, done) = c.stor("APPE log.txt", b"one\n");
    assert_eq!(done.code, 226, "APPE to nothing creates: {}", done.text());
    let (_, done) = c.stor("APPE log.txt", b"two\n");
    assert_eq!(done.code, 226, "{}", done.text());
    assert_eq!(c.retr("RETR log.txt").1, b"one\ntwo\n");
    // Big enough to be copied inside S3 (UploadPartCopy), then the new bytes.
    let big = bytes(PART + 100, 3);
    let (_, done) = c.stor("STOR big", &big);
    assert_eq!(done.code, 226);
    let (_, done) = c.stor("APPE big", b"tail");
    assert_eq!(done.code, 226, "{}", done.text());
    let (_, got) = c.retr("RETR big");
    assert_eq!(got.len(), big.len() + 4);
    assert!(got[..big.len()] == big[..] && &got[big.len()..] == b"tail");
}

#[test]
fn unreachable_storage_fails_fast_and_recovers() {
    let Some(mut g) = Garage::start() else { return };
    let s = server(&g, "fault", |_| {});
    let mut c = bin(&s);
    let (_, done) = c.stor("STOR before", b"x");
    assert_eq!(done.code, 226);
    let data = bytes(3 * PART, 5);
    let mut conn = c.epsv();
    assert_eq!(c.cmd("STOR during").code, 150);
    conn.write_all(&data[..PART / 2]).unwrap();
    g.halt();
    let start = Instant::now();
    // The upload needs S3 to take its first part: the client is told within bounds.
    let _ = conn.write_all(&data[PART / 2..]);
    drop(conn);
    let r = c.read_reply();
    assert!([426, 451, 452, 550, 553].contains(&r.code), "{}", r.text());
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "{:?}",
        start.elapsed()
    );
    // Commands that need S3 answer 451, not hang.
    let r = c.cmd("SIZE before");
    assert_eq!(r.code, 451, "{}", r.text());
    // Other sessions connect and log in meanwhile.
    let mut other = bin(&s);
    assert_eq!(other.cmd("NOOP").code, 200);
    g.resume();
    let mut next = bin(&s);
    assert_eq!(next.cmd("SIZE before").text(), "213 1\r\n");
    let (_, done) = next.stor("STOR after", b"yz");
    assert_eq!(done.code, 226, "{}", done.text());
}

/// A wharf server on `g` behind a relay a test can hang, with a storage budget of
/// timeout 2 s × (1 retry + 1): each stalled request is answered within about 4 s.
fn behind_relay(g: &Garage) -> (TestServer, Relay) {
    let relay = Relay::start(g.port);
    let mut st = g.storage("bucket", "hung");
    st.endpoint = Some(format!("http://127.0.0.1:{}", relay.port));
    st.timeout = 2;
    st.retries = 1;
    let s = TestServer::with(move |c| {
        c.storages.push(st);
        c.root = "storage:bucket".into();
    });
    (s, relay)
}

/// The most a stalled storage may take to be answered: timeout × (retries + 1) plus the
/// backoff and some slack.
const HUNG_BUDGET: Duration = Duration::from_secs(2 * 2 + 3);
const HUNG: &str = "451 Storage unavailable or too slow; try again later.\r\n";

/// A hung S3 (connections accepted, nothing answered): every command and transfer gets its
/// answer within the storage's budget, and the same reply text.
#[test]
fn a_hung_storage_is_answered_within_its_budget() {
    let Some(g) = Garage::start() else { return };
    let (s, relay) = behind_relay(&g);
    let mut c = bin(&s);
    let (_, done) = c.stor("STOR a.bin", &bytes(1000, 3));
    assert_eq!(done.code, 226);
    relay.hang(true);
    let mut times = Vec::new();
    for cmd in ["SIZE a.bin", "MDTM a.bin"] {
        let t = Instant::now();
        let r = c.cmd(cmd);
        times.push((cmd, t.elapsed(), r.text()));
    }
    for cmd in ["RETR a.bin", "LIST"] {
        let t = Instant::now();
        let (r, _) = c.retr(cmd);
        times.push((cmd, t.elapsed(), r.text()));
    }
    relay.hang(false);
    for (cmd, took, text) in &times {
        assert!(*took < HUNG_BUDGET, "{cmd}: {took:?} ({text})");
        assert_eq!(text, HUNG, "{cmd}");
    }
    // And it recovers once the storage answers again.
    assert_eq!(c.cmd("SIZE a.bin").text(), "213 1000\r\n");
}

/// A storage that hangs in the middle of a download or an upload: the transfer ends with
/// the same 451 within the budget, the client is not left waiting, and the session goes on.
#[test]
fn a_storage_hanging_mid_transfer_ends_the_transfer_within_its_budget() {
    let Some(g) = Garage::start() else { return };
    let (s, relay) = behind_relay(&g);
    let mut c = bin(&s);
    let big = bytes(3 * PART, 9);
    let (_, done) = c.stor("STOR big.bin", &big);
    assert_eq!(done.code, 226, "{}", done.text());

    // Download: some bytes arrive, then the storage hangs.
    let mut data = c.pasv();
    assert_eq!(c.cmd("RETR big.bin").code, 150);
    let mut got = vec![0u8; 1 << 20];
    std::io::Read::read_exact(&mut data, &mut got).unwrap();
    relay.hang(true);
    let t = Instant::now();
    let mut rest = Vec::new();
    let _ = std::io::Read::read_to_end(&mut data, &mut rest);
    let end = c.read_reply();
    let took = t.elapsed();
    assert!(got.len() + rest.len() < big.len(), "the whole file arrived");
    assert!(
        took < HUNG_BUDGET + Duration::from_secs(2),
        "RETR: {took:?}"
    );
    assert_eq!(end.text(), HUNG);
    relay.hang(false);

    // Upload: the first part is stored, then the storage hangs while the client sends.
    let mut data = c.pasv();
    assert_eq!(c.cmd("STOR up.bin").code, 150);
    data.write_all(&big[..PART + 1]).unwrap();
    relay.hang(true);
    let sender = std::thread::spawn(move || {
        // The rest goes until wharf stops reading (or closes the connection).
        let _ = data.write_all(&big[PART + 1..]);
    });
    let t = Instant::now();
    let end = c.read_reply();
    let took = t.elapsed();
    assert!(
        took < HUNG_BUDGET + Duration::from_secs(2),
        "STOR: {took:?}"
    );
    assert_eq!(end.text(), HUNG);
    relay.hang(false);
    sender.join().unwrap();
    assert!(!visible(&g, "hung", "up.bin"), "a failed upload appeared");
    assert_eq!(c.cmd("NOOP").code, 200);
}

#[test]
fn wrong_credentials_are_reported_at_start() {
    let Some(g) = Garage::start() else { return };
    let mut st = g.storage("bad", "x");
    let creds = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        creds.path(),
        "access_key_id = GK000000000000000000000000\nsecret_access_key = nope\n",
    )
    .unwrap();
    st.credentials_file = Some(creds.path().to_path_buf());
    let config = wharf::Config {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        root: "storage:bad".into(),
        storages: vec![st],
        ..wharf::Config::default()
    };
    let err = block(wharf::Server::bind(config)).err().expect("refused");
    let text = err.to_string();
    assert!(text.contains("storage `bad`"), "{text}");
    assert!(!text.contains("nope"), "the secret leaked: {text}");
}

#[test]
fn check_config_probe_reaches_the_bucket_and_hides_the_secret() {
    let Some(g) = Garage::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let st = g.storage("scans", "p");
    let file = dir.path().join("w.toml");
    let write = |creds: &std::path::Path| {
        std::fs::write(
            &file,
            format!(
                "root = \"storage:scans\"\n[[storage]]\nname = \"scans\"\nkind = \"s3\"\n\
                 bucket = \"{}\"\nendpoint = \"{}\"\nregion = \"garage\"\npath_style = true\n\
                 credentials_file = \"{}\"\n",
                crate::s3::BUCKET,
                st.endpoint.as_deref().unwrap(),
                creds.display()
            ),
        )
        .unwrap();
    };
    let check = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_wharf"))
            .args(["check-config", "--probe"])
            .arg(&file)
            .output()
            .unwrap()
    };
    write(st.credentials_file.as_deref().unwrap());
    let out = check();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("storage scans: s3://wharf/"), "{text}");
    let secret = std::fs::read_to_string(st.credentials_file.as_deref().unwrap()).unwrap();
    let secret = secret
        .lines()
        .nth(1)
        .unwrap()
        .split('=')
        .nth(1)
        .unwrap()
        .trim();
    assert!(!text.contains(secret), "the secret leaked: {text}");
    let bad = dir.path().join("bad");
    std::fs::write(
        &bad,
        "access_key_id = GK1\nsecret_access_key = wrong-secret\n",
    )
    .unwrap();
    write(&bad);
    let out = check();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("storage `scans`"), "{err}");
    assert!(!err.contains("wrong-secret"), "{err}");
}

#[test]
fn listings_stream_every_page() {
    use futures_util::StreamExt;
    let Some(g) = Garage::start() else { return };
    let store = g.store("many");
    const N: usize = 2_500; // three ListObjectsV2 pages
    block(async {
        futures_util::stream::iter(0..N)
            .map(|i| {
                let store = store.clone();
                async move {
                    let p = wharf::vfs::VPath::root()
                        .resolve(format!("/d/f{i:05}").as_bytes())
                        .unwrap();
                    let mut up = store
                        .upload(&p, wharf::vfs::s3::UploadStart::Fresh)
                        .await
                        .unwrap();
                    up.write(&[b'x'; 3]).await.unwrap();
                    up.finish().await.unwrap();
                }
            })
            .buffer_unordered(32)
            .collect::<Vec<()>>()
            .await
    });
    let s = server(&g, "many", |_| {});
    let mut c = bin(&s);
    let (r, nlst) = c.retr("NLST d");
    assert_eq!(r.code, 226, "{}", r.text());
    let names: Vec<&[u8]> = nlst
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(names.len(), N);
    assert_eq!(names[0], b"f00000\r");
    let (r, mlsd) = c.retr("MLSD d");
    assert_eq!(r.code, 226);
    let text = String::from_utf8(mlsd).unwrap();
    assert_eq!(text.lines().filter(|l| l.contains("size=3;")).count(), N);
    let (r, _) = c.retr("LIST nothing-here");
    assert_eq!(r.code, 550, "{}", r.text());
}

#[test]
fn janitor_aborts_interrupted_uploads_past_their_age() {
    let Some(g) = Garage::start() else { return };
    let s = server(&g, "jan", |_| {});
    {
        let mut c = bin(&s);
        let mut conn = c.epsv();
        assert_eq!(c.cmd("STOR left.bin").code, 150);
        conn.write_all(&bytes(PART + 10, 1)).unwrap();
        await_parts(&g, "jan", "/left.bin", PART);
        // The client dies: its control connection goes first, so that the data
        // connection's end cannot pass for a complete file, however loaded the machine.
        s.kill_client(c, conn);
    }
    assert_eq!(
        pending(&g, "jan", "/left.bin"),
        Some(PART as u64),
        "kept for a resume"
    );
    // A server that keeps interrupted uploads 0 s aborts it when it starts.
    let _strict = server(&g, "jan", |c| c.storages[0].resumable_for = 0);
    assert!(
        wait_for(Duration::from_secs(20), || pending(&g, "jan", "/left.bin")
            .is_none())
        .is_some(),
        "janitor did not run"
    );
}

/// Names exactly as given: spaces at either end of a name are part of it, as on disk, for
/// small objects and multipart ones, through every command that names a file.
pub fn names_keep_their_spaces(g: &impl S3Server) {
    let s = server(g, "spaces", |_| {});
    let mut c = bin(&s);
    let small = bytes(1000, 5);
    let big = bytes(PART + 10, 6);
    for (name, data) in [
        ("trail.txt ", &small),
        (" lead.txt", &small),
        ("both ", &big),
    ] {
        let (_, done) = c.stor(&format!("STOR {name}"), data);
        assert_eq!(done.code, 226, "STOR {name:?}: {}", done.text());
    }
    assert!(visible(g, "spaces", "trail.txt "), "the key lost its space");
    assert!(
        !visible(g, "spaces", "trail.txt"),
        "stored without its space"
    );
    let names = |c: &mut Ctrl| {
        let (r, list) = c.retr("NLST");
        assert_eq!(r.code, 226);
        let mut v: Vec<String> = String::from_utf8(list)
            .unwrap()
            .split("\r\n")
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(&mut c), [" lead.txt", "both ", "trail.txt "]);
    assert_eq!(c.cmd("SIZE trail.txt ").text(), "213 1000\r\n");
    assert_eq!(c.cmd("SIZE trail.txt").code, 550);
    assert_eq!(c.cmd("SIZE  lead.txt").text(), "213 1000\r\n");
    assert_eq!(c.cmd("SIZE both ").text(), format!("213 {}\r\n", big.len()));
    let (r, got) = c.retr("RETR trail.txt ");
    assert_eq!((r.code, got), (226, small.clone()));
    assert_eq!(c.cmd("REST 990").code, 350);
    let (r, got) = c.retr("RETR trail.txt ");
    assert_eq!((r.code, &got[..]), (226, &small[990..]));
    let (r, got) = c.retr("RETR both ");
    assert!(r.code == 226 && got == big, "RETR of the multipart object");
    assert_eq!(c.cmd("MFMT 20200102030405 trail.txt ").code, 213);
    assert_eq!(c.cmd("MDTM trail.txt ").text(), "213 20200102030405\r\n");
    let (r, mlsd) = c.retr("MLSD");
    assert_eq!(r.code, 226);
    let mlsd = String::from_utf8(mlsd).unwrap();
    assert!(
        mlsd.contains("modify=20200102030405;") && mlsd.contains("; trail.txt \r\n"),
        "{mlsd}"
    );
    // A rename onto another spaced name keeps the bytes and the time; APPE adds to it.
    assert_eq!(c.cmd("RNFR trail.txt ").code, 350);
    assert_eq!(c.cmd("RNTO  moved  ").code, 250);
    assert_eq!(c.cmd("MDTM  moved  ").text(), "213 20200102030405\r\n");
    let (_, done) = c.stor("APPE  moved  ", b"more");
    assert_eq!(done.code, 226, "{}", done.text());
    let (_, got) = c.retr("RETR  moved  ");
    assert_eq!(got, [&small[..], b"more"].concat());
    assert_eq!(names(&mut c), [" lead.txt", " moved  ", "both "]);
    // Directories too.
    assert_eq!(c.cmd("MKD  sub ").code, 257);
    assert_eq!(c.cmd("CWD  sub ").code, 250);
    let (_, done) = c.stor("STOR x ", b"x");
    assert_eq!(done.code, 226);
    assert_eq!(names(&mut c), ["x "]);
    assert_eq!(c.cmd("DELE x ").code, 250);
    assert_eq!(c.cmd("CDUP").code, 250);
    assert_eq!(c.cmd("RMD  sub ").code, 250);
    for name in [" lead.txt", " moved  ", "both "] {
        assert_eq!(c.cmd(&format!("DELE {name}")).code, 250, "DELE {name:?}");
    }
    assert_eq!(names(&mut c), Vec::<String>::new());
}

#[test]
fn names_keep_their_spaces_on_garage() {
    let Some(g) = Garage::start() else { return };
    names_keep_their_spaces(&g);
}

#[test]
fn quotas_count_objects_from_the_listing_and_refuse_past_them() {
    let Some(g) = Garage::start() else { return };
    // Objects stored before any quota was set are counted from the listing.
    let before = server(&g, "quota", |_| {});
    let mut c = bin(&before);
    assert_eq!(c.stor("STOR old.bin", &bytes(30_000, 1)).1.code, 226);
    assert_eq!(c.cmd("MKD sub").code, 257);
    assert_eq!(c.stor("STOR sub/two.bin", &bytes(10_000, 2)).1.code, 226);
    drop(c);
    drop(before);
    let s = server(&g, "quota", |c| c.users[0].quota_bytes = Some(100_000));
    let mut c = bin(&s);
    let r = c.cmd("SITE QUOTA");
    assert!(r.text().contains("Bytes: 40000 of 100000"), "{}", r.text());
    assert!(r.text().contains("Files: 2 (no limit)"), "{}", r.text());
    // Past the quota mid-transfer: 552, and no object appears.
    let mut data = c.epsv();
    assert_eq!(c.cmd("STOR big.bin").code, 150);
    for chunk in bytes(300_000, 3).chunks(16 * 1024) {
        if data.write_all(chunk).is_err() {
            break;
        }
    }
    drop(data);
    let r = c.read_reply();
    assert_eq!(r.code, 552, "{}", r.text());
    assert!(!visible(&g, "quota", "/big.bin"));
    assert_eq!(c.cmd("DELE old.bin").code, 250);
    let r = c.cmd("SITE QUOTA");
    assert!(r.text().contains("Bytes: 10000 of 100000"), "{}", r.text());
    assert_eq!(c.stor("STOR next.bin", &bytes(80_000, 4)).1.code, 226);
    assert!(c.cmd("SITE QUOTA").text().contains("Bytes: 90000 of"));
}
