//! Real clients on an S3 root (Garage): curl uploads, downloads and resumes an interrupted
//! upload sending only the missing bytes; ftplib runs its whole round trip; lftp mirrors a
//! tree up and back. Results are checked in the bucket, from outside wharf.

use std::io::Write;

use crate::clients_util::*;
use crate::harness::*;
use crate::s3::{Garage, PART, S3Server, await_parts, block, server, visible};

/// An object's bytes, read from outside wharf.
fn object(g: &Garage, prefix: &str, path: &str) -> Vec<u8> {
    use futures_util::TryStreamExt;
    let store = g.store(prefix);
    let p = wharf::vfs::VPath::root().resolve(path.as_bytes()).unwrap();
    block(async move {
        let (stream, _) = store
            .open_read(&p, 0)
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        let parts: Vec<bytes::Bytes> = stream.try_collect().await.unwrap();
        parts.concat()
    })
}

#[test]
fn curl_resumes_an_interrupted_upload_sending_only_the_missing_bytes() {
    if !have("curl") {
        return;
    }
    let Some(g) = Garage::start() else { return };
    let s = server(&g, "curl", |_| {});
    let home = scratch();
    let data = bytes(3 * PART + 4321, 41);
    let file = home.path().join("scan.pdf");
    put_file(&file, &data);
    {
        // The first attempt dies after two parts and a bit.
        let mut c = s.login();
        assert_eq!(c.cmd("TYPE I").code, 200);
        let mut conn = c.epsv();
        assert_eq!(c.cmd("STOR scan.pdf").code, 150);
        conn.write_all(&data[..2 * PART + 100_000]).unwrap();
        await_parts(&g, "curl", "/scan.pdf", 2 * PART);
        s.kill_client(c, conn);
    }
    assert!(!visible(&g, "curl", "/scan.pdf"));
    // curl -C - asks SIZE, then APPEs from there.
    let mut c = client("curl", home.path());
    c.args([
        "-sS",
        "--max-time",
        "60",
        "-C",
        "-",
        "-w",
        "%{size_upload}",
        "-T",
    ])
    .arg(&file)
    .arg(s.url("scan.pdf"));
    let sent: u64 = ok(&exec0(&mut c), "curl -C - -T").trim().parse().unwrap();
    assert_eq!(sent, (data.len() - 2 * PART) as u64, "bytes sent on resume");
    assert!(
        object(&g, "curl", "/scan.pdf") == data,
        "resumed object differs"
    );
    // A plain upload and download, and the listing.
    let mut c = client("curl", home.path());
    c.args(["-sS", "--max-time", "60", "-T"])
        .arg(&file)
        .arg(s.url("again/scan2.pdf"))
        .arg("--ftp-create-dirs");
    ok(&exec0(&mut c), "curl -T");
    let got = home.path().join("got.pdf");
    let mut c = client("curl", home.path());
    c.args(["-sS", "--max-time", "60", "-o"])
        .arg(&got)
        .arg(s.url("again/scan2.pdf"));
    ok(&exec0(&mut c), "curl download");
    assert_file(&got, &data);
    let mut c = client("curl", home.path());
    c.args(["-sS", "--max-time", "60", "-l"]).arg(s.url(""));
    let names = ok(&exec0(&mut c), "curl -l");
    assert_eq!(names.replace('\r', ""), "again\nscan.pdf\n");
}

#[test]
fn ftplib_round_trip_on_s3() {
    if !have("python3") {
        return;
    }
    let Some(g) = Garage::start() else { return };
    let s = server(&g, "py", |_| {});
    let work = scratch();
    let up = bytes(333_333, 30);
    let down = bytes(1_048_576 + 5, 31);
    put_file(&work.path().join("up.bin"), &up);
    put_file(&work.path().join("expected_down.bin"), &down);
    let mut c = s.login();
    assert_eq!(c.cmd("TYPE I").code, 200);
    assert_eq!(c.stor("STOR down.bin", &down).1.code, 226);
    drop(c);
    let mut cmd = client("python3", work.path());
    cmd.arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/it/py/ftplib_client.py"
    ))
    .args(["roundtrip", "127.0.0.1", &s.v4.port().to_string()])
    .arg(work.path())
    .arg("passive")
    .env("PYTHONDONTWRITEBYTECODE", "1");
    ok(&exec0(&mut cmd), "ftplib roundtrip on S3");
    assert!(object(&g, "py", "/renamed.bin") == up);
    assert!(object(&g, "py", "/resumed.bin") == up);
    assert!(object(&g, "py", "/sub/inner.bin") == up);
    assert_eq!(object(&g, "py", "/sub/fresh.bin"), b"fresh");
    for gone in ["/up.bin", "/appended.bin", "/fresh.bin", "/say \"hi\""] {
        assert!(!visible(&g, "py", gone), "{gone} left behind");
    }
    assert!(
        visible(&g, "py", "/sub/deeper"),
        "MKD made the parent's marker"
    );
}

#[test]
fn lftp_mirrors_a_tree_up_and_back() {
    if !have("lftp") {
        return;
    }
    let Some(g) = Garage::start() else { return };
    let s = server(&g, "lftp", |_| {});
    let home = scratch();
    let local = home.path().join("local");
    let back = home.path().join("back");
    let mut names = Vec::new();
    for i in 0..40 {
        let name = format!("d{}/f{i}.dat", i % 4);
        put_file(&local.join(&name), &bytes(i * 997 + 1, i as u64));
        names.push(name);
    }
    put_file(&local.join("big.bin"), &bytes(PART + 3, 99));
    std::fs::create_dir_all(&back).unwrap();
    let script = format!(
        "set ftp:ssl-allow no; set net:max-retries 1; set net:timeout 10; \
         set cmd:fail-exit yes; set xfer:clobber on; open {}; \
         mirror -R --parallel=3 '{}' /up; mirror --parallel=3 /up '{}'; bye",
        s.url(""),
        local.display(),
        back.join("up").display()
    );
    let mut c = client("lftp", home.path());
    c.arg("-c").arg(script);
    ok(&exec0(&mut c), "lftp mirror -R then mirror");
    assert_same_tree(&local, &back.join("up"));
    for name in &names {
        assert!(
            object(&g, "lftp", &format!("/up/{name}")) == std::fs::read(local.join(name)).unwrap()
        );
    }
}
