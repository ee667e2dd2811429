//! Real clients over FTPS (RFC 4217): curl (explicit `--ssl-reqd` with EPSV, PASV, EPRT and
//! PORT, `-C -` both ways, IPv6, implicit `ftps://`, control-only `--ftp-ssl-control`,
//! `tls = "required"`, `tls_data = "required"`, session resumption under
//! `tls_data_reuse = "require"`), lftp (`mirror -R` up and `mirror` down with
//! `ftp:ssl-force`, passive on IPv4 and IPv6, active, implicit, resumption), Python ftplib
//! `FTP_TLS` (passive and active on both families; the 425 for a client that cannot resume;
//! a data connection resuming another control connection's session; and proof that PROT P
//! data never travels in clear, with a plain socket on the data connection), rclone
//! (explicit, implicit, resumption) and `openssl s_client` (certificate, TLS 1.2 and 1.3,
//! clean TLS close after QUIT).
//!
//! Certificates are verified wherever the client takes a CA file: the harness generates a
//! self-signed certificate for `localhost`, so clients use that name pinned to the loopback
//! address (curl `--resolve`, lftp `dns:order inet`, ftplib's `server_hostname`, openssl
//! `-verify_hostname`). lftp over IPv6 connects to `[::1]` and checks only the chain (the
//! resolver may not map `localhost` to ::1); rclone has no CA option for FTP and skips the
//! check.
//!
//! No curl active-mode FTPS on curl 7.87/7.88: those never start TLS on an active data
//! connection (curl/curl#10666); see [`curl_does_active_tls`]. lftp and ftplib cover active
//! mode over TLS.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Output;

use wharf::config::{TlsData, TlsMode, TlsReuse};

use crate::clients_util::*;
use crate::harness::*;

// ---------------------------------------------------------------------------------------
// curl

/// curl arguments for explicit FTPS to `addr` under the name `localhost`, verified against
/// the server's certificate, and the URL prefix `ftp://judge:pw@localhost:PORT/`.
fn curl_tls(s: &TestServer, addr: SocketAddr) -> (Vec<String>, String) {
    let ip = match addr {
        SocketAddr::V4(a) => a.ip().to_string(),
        SocketAddr::V6(a) => format!("[{}]", a.ip()),
    };
    let args = vec![
        "--ssl-reqd".to_string(),
        "--cacert".to_string(),
        s.cert_path().display().to_string(),
        "--resolve".to_string(),
        format!("localhost:{}:{ip}", addr.port()),
    ];
    (
        args,
        format!("ftp://{USER}:{PASS}@localhost:{}/", addr.port()),
    )
}

/// Runs curl with `base` arguments, then `args`.
fn curl_with(home: &Path, base: &[String], args: &[&str]) -> Output {
    let mut all: Vec<&str> = base.iter().map(String::as_str).collect();
    all.extend_from_slice(args);
    curl(home, &all)
}

/// Whether this curl starts TLS on active-mode (PORT/EPRT) data connections: 7.87 and 7.88
/// accept the server's connection and never run the handshake (curl/curl#10666, fixed in
/// 8.0.0 by #10669), so wharf, waiting for the ClientHello, times out with 425.
fn curl_does_active_tls() -> bool {
    let home = scratch();
    let out = curl(home.path(), &["--version"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let version: Vec<u32> = text
        .split_whitespace()
        .nth(1)
        .unwrap_or("0")
        .split('.')
        .map(|p| p.parse().unwrap_or(0))
        .collect();
    let broken = version.first() == Some(&7) && version.get(1).is_some_and(|m| *m >= 87);
    if broken {
        eprintln!(
            "skipping active-mode FTPS: curl {} never starts TLS on an active data \
             connection (curl/curl#10666)",
            version
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(".")
        );
    }
    !broken
}

/// Download, upload and listings over one data-connection style (`extra`), checked on disk.
fn curl_transfers(s: &TestServer, addr: SocketAddr, extra: &[&str], tag: &str) {
    let home = scratch();
    let (mut base, url) = curl_tls(s, addr);
    base.extend(extra.iter().map(|a| a.to_string()));
    let down = bytes(1_048_576 + 7, 60);
    put_file(&s.path("down.bin"), &down);
    let up = bytes(654_321, 61);
    let src = home.path().join("src.bin");
    put_file(&src, &up);
    let got = home.path().join("got.bin");

    ok(
        &curl_with(
            home.path(),
            &base,
            &["-o", got.to_str().unwrap(), &format!("{url}down.bin")],
        ),
        &format!("curl FTPS RETR ({tag})"),
    );
    assert_file(&got, &down);
    let dst = format!("{url}up-{tag}.bin");
    ok(
        &curl_with(home.path(), &base, &["-T", src.to_str().unwrap(), &dst]),
        &format!("curl FTPS STOR ({tag})"),
    );
    assert_file(&s.path(&format!("up-{tag}.bin")), &up);
    let names = ok(
        &curl_with(home.path(), &base, &["--list-only", &url]),
        &format!("curl FTPS NLST ({tag})"),
    );
    let names = lines(&names);
    assert!(names.contains(&"down.bin".to_string()), "{names:?}");
    assert!(names.contains(&format!("up-{tag}.bin")), "{names:?}");
    let list = ok(
        &curl_with(home.path(), &base, &[&url]),
        &format!("curl FTPS LIST ({tag})"),
    );
    let line = lines(&list)
        .into_iter()
        .find(|l| l.ends_with(" down.bin"))
        .unwrap_or_else(|| panic!("down.bin in LIST:\n{list}"));
    assert!(line.starts_with('-'), "{line}");
    assert!(line.contains(&format!(" {} ", down.len())), "{line}");
}

#[test]
fn curl_ftps_explicit_list_get_put_and_resume() {
    if !have("curl") {
        return;
    }
    let s = TestServer::tls(|_| {});
    // Default: EPSV.
    curl_transfers(&s, s.v4, &[], "epsv");

    let home = scratch();
    let (base, url) = curl_tls(&s, s.v4);
    // -C - download: REST then RETR of the rest, appended locally.
    let full = bytes(400_003, 62);
    put_file(&s.path("resume.bin"), &full);
    let local = home.path().join("resume.bin");
    put_file(&local, &full[..123_457]);
    ok(
        &curl_with(
            home.path(),
            &base,
            &[
                "-C",
                "-",
                "-o",
                local.to_str().unwrap(),
                &format!("{url}resume.bin"),
            ],
        ),
        "curl FTPS -C - download",
    );
    assert_file(&local, &full);
    // -C - upload: SIZE, then APPE of the rest.
    put_file(&s.path("partial.bin"), &full[..200_000]);
    let src = home.path().join("full.bin");
    put_file(&src, &full);
    ok(
        &curl_with(
            home.path(),
            &base,
            &[
                "-C",
                "-",
                "-T",
                src.to_str().unwrap(),
                &format!("{url}partial.bin"),
            ],
        ),
        "curl FTPS -C - upload",
    );
    assert_file(&s.path("partial.bin"), &full);

    // The wire: AUTH (SSL first, as curl does), PBSZ 0, PROT P, then the login.
    let out = curl_with(
        home.path(),
        &base,
        &["-v", "-o", "/dev/null", &format!("{url}resume.bin")],
    );
    ok(&out, "curl FTPS -v");
    let err = String::from_utf8_lossy(&out.stderr);
    for want in [
        "> AUTH SSL",
        "< 234",
        "> PBSZ 0",
        "< 200",
        "> PROT P",
        "> USER judge",
        "< 226",
    ] {
        assert!(err.contains(want), "curl -v should show {want:?}:\n{err}");
    }
    let auth = err.find("> AUTH").unwrap();
    let user = err.find("> USER").unwrap();
    assert!(auth < user, "AUTH before USER:\n{err}");
    assert!(
        err.contains("SSL certificate verify ok"),
        "curl verified the certificate:\n{err}"
    );
}

#[test]
fn curl_ftps_explicit_pasv_and_active() {
    if !have("curl") {
        return;
    }
    let s = TestServer::tls(|_| {});
    curl_transfers(&s, s.v4, &["--disable-epsv"], "pasv");
    if !curl_does_active_tls() {
        return;
    }
    // EPRT |1|127.0.0.1|port|: wharf connects out and is the TLS server on that connection.
    curl_transfers(&s, s.v4, &["--ftp-port", "127.0.0.1"], "eprt");
    curl_transfers(
        &s,
        s.v4,
        &["--ftp-port", "127.0.0.1", "--disable-eprt"],
        "port",
    );
}

#[test]
fn curl_ftps_explicit_over_ipv6() {
    if !have("curl") {
        return;
    }
    let s = TestServer::tls(|_| {});
    if !has_v6(&s) {
        return;
    }
    let v6 = s.v6.unwrap();
    curl_transfers(&s, v6, &[], "epsv6");
    if curl_does_active_tls() {
        curl_transfers(&s, v6, &["--ftp-port", "::1"], "eprt6");
    }
}

#[test]
fn curl_ftps_implicit() {
    if !have("curl") {
        return;
    }
    let s = TestServer::tls(|_| {});
    let implicit = s.implicit.expect("implicit listener");
    let home = scratch();
    let base = [
        "--cacert".to_string(),
        s.cert_path().display().to_string(),
        "--resolve".to_string(),
        format!("localhost:{}:127.0.0.1", implicit.port()),
    ];
    let url = format!("ftps://{USER}:{PASS}@localhost:{}/", implicit.port());
    let down = bytes(777_001, 63);
    put_file(&s.path("down.bin"), &down);
    let up = bytes(300_000, 64);
    let src = home.path().join("src.bin");
    put_file(&src, &up);
    let got = home.path().join("got.bin");

    ok(
        &curl_with(
            home.path(),
            &base,
            &["-o", got.to_str().unwrap(), &format!("{url}down.bin")],
        ),
        "curl implicit FTPS RETR",
    );
    assert_file(&got, &down);
    ok(
        &curl_with(
            home.path(),
            &base,
            &["-T", src.to_str().unwrap(), &format!("{url}up.bin")],
        ),
        "curl implicit FTPS STOR",
    );
    assert_file(&s.path("up.bin"), &up);
    let out = curl_with(home.path(), &base, &["-v", "--list-only", &url]);
    let names = lines(&ok(&out, "curl implicit FTPS NLST"));
    assert!(names.contains(&"down.bin".to_string()), "{names:?}");
    assert!(names.contains(&"up.bin".to_string()), "{names:?}");
    // Implicit: no AUTH on the wire, the greeting already came over TLS.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("> AUTH"),
        "no AUTH on the implicit port:\n{err}"
    );
    assert!(err.contains("< 220"), "{err}");
    assert!(err.contains("SSL certificate verify ok"), "{err}");
}

#[test]
fn curl_ftps_control_only_keeps_data_clear() {
    if !have("curl") {
        return;
    }
    let s = TestServer::tls(|_| {});
    let home = scratch();
    let (mut base, url) = curl_tls(&s, s.v4);
    // --ftp-ssl-control: TLS for the login, PROT C for the transfers.
    base[0] = "--ftp-ssl-control".into();
    let down = bytes(250_000, 65);
    put_file(&s.path("down.bin"), &down);
    let got = home.path().join("got.bin");
    let out = curl_with(
        home.path(),
        &base,
        &["-v", "-o", got.to_str().unwrap(), &format!("{url}down.bin")],
    );
    ok(&out, "curl --ftp-ssl-control RETR");
    assert_file(&got, &down);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("> AUTH"), "{err}");
    assert!(err.contains("> PROT C"), "curl asks for clear data:\n{err}");
    assert!(!err.contains("> PROT P"), "{err}");

    let src = home.path().join("src.bin");
    put_file(&src, &down);
    ok(
        &curl_with(
            home.path(),
            &base,
            &["-T", src.to_str().unwrap(), &format!("{url}up.bin")],
        ),
        "curl --ftp-ssl-control STOR",
    );
    assert_file(&s.path("up.bin"), &down);
}

#[test]
fn curl_ftps_data_required_refuses_clear_transfers() {
    if !have("curl") {
        return;
    }
    let s = TestServer::tls(|cfg| cfg.tls_data = TlsData::Required);
    let home = scratch();
    let down = bytes(50_000, 66);
    put_file(&s.path("down.bin"), &down);
    let (mut base, url) = curl_tls(&s, s.v4);
    let got = home.path().join("got.bin");

    // PROT P: fine.
    ok(
        &curl_with(
            home.path(),
            &base,
            &["-o", got.to_str().unwrap(), &format!("{url}down.bin")],
        ),
        "curl --ssl-reqd RETR under tls_data = required",
    );
    assert_file(&got, &down);

    // PROT C: RETR gets 521, nothing is written.
    base[0] = "--ftp-ssl-control".into();
    let clear = home.path().join("clear.bin");
    let out = curl_with(
        home.path(),
        &base,
        &[
            "-v",
            "-o",
            clear.to_str().unwrap(),
            &format!("{url}down.bin"),
        ],
    );
    assert!(
        !out.status.success(),
        "PROT C RETR must fail\n{}",
        show(&out)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("> PROT C"), "{err}");
    assert!(err.contains("< 521"), "RETR under PROT C gets 521:\n{err}");
    assert!(
        std::fs::read(&clear).map_or(true, |b| b.is_empty()),
        "no data under PROT C"
    );
    let src = home.path().join("src.bin");
    put_file(&src, &down);
    let out = curl_with(
        home.path(),
        &base,
        &["-v", "-T", src.to_str().unwrap(), &format!("{url}up.bin")],
    );
    assert!(
        !out.status.success(),
        "PROT C STOR must fail\n{}",
        show(&out)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("< 521"), "STOR under PROT C gets 521:\n{err}");
    assert!(
        std::fs::read(s.path("up.bin")).map_or(true, |b| b.is_empty()),
        "nothing stored under PROT C"
    );
}

#[test]
fn curl_ftps_required_refuses_a_plain_login() {
    if !have("curl") {
        return;
    }
    let s = TestServer::tls(|cfg| cfg.tls = TlsMode::Required);
    let home = scratch();
    put_file(&s.path("f.txt"), b"secret");
    // Plain FTP: USER gets 534, curl gives up with "access denied" (67).
    let out = curl(home.path(), &["-v", &s.url("f.txt")]);
    exit_code(&out, 67, "plain curl against tls = required");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("> USER judge"), "{err}");
    assert!(err.contains("< 534"), "USER before AUTH gets 534:\n{err}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("secret"));
    // With TLS: fine.
    let (base, url) = curl_tls(&s, s.v4);
    let text = ok(
        &curl_with(home.path(), &base, &[&format!("{url}f.txt")]),
        "curl --ssl-reqd against tls = required",
    );
    assert_eq!(text, "secret");
}

#[test]
fn curl_ftps_resumes_sessions_under_require_reuse() {
    if !have("curl") {
        return;
    }
    // curl resumes the control connection's TLS session on its data connections, so
    // `tls_data_reuse = "require"` lets it through (EPSV, PASV, and EPRT where curl can).
    let s = TestServer::tls(|cfg| cfg.tls_data_reuse = TlsReuse::Require);
    curl_transfers(&s, s.v4, &[], "epsv");
    curl_transfers(&s, s.v4, &["--disable-epsv"], "pasv");
    if curl_does_active_tls() {
        curl_transfers(&s, s.v4, &["--ftp-port", "127.0.0.1"], "eprt");
    }
}

// ---------------------------------------------------------------------------------------
// lftp

/// Settings for every run: TLS forced on control and data, the certificate checked against
/// the server's own, fail fast. Over IPv4 lftp connects to `localhost` (resolved to
/// 127.0.0.1 only, `dns:order inet`) and checks that name; over IPv6 it connects to `[::1]`
/// (the resolver here may not map `localhost` to ::1), so only the chain is checked.
fn lftp_settings(s: &TestServer, v6: bool, passive: bool) -> String {
    format!(
        "set ftp:ssl-force true; set ftp:ssl-protect-data true; set ftp:ssl-protect-list true; \
         set ssl:ca-file '{}'; set ssl:verify-certificate yes; set ssl:check-hostname {}; \
         set dns:order {}; set ftp:passive-mode {}; \
         set net:max-retries 1; set net:reconnect-interval-base 1; set net:timeout 10; \
         set cmd:fail-exit yes; set xfer:clobber on; set cmd:interactive no;",
        s.cert_path().display(),
        if v6 { "no" } else { "yes" },
        if v6 { "inet6" } else { "inet" },
        if passive { "on" } else { "off" },
    )
}

/// `ftp://judge:pw@localhost:PORT` (IPv4) or `ftp://judge:pw@[::1]:PORT`.
fn lftp_url(s: &TestServer, v6: bool) -> String {
    match v6 {
        false => format!("ftp://{USER}:{PASS}@localhost:{}", s.v4.port()),
        true => format!("ftp://{USER}:{PASS}@[::1]:{}", s.v6.unwrap().port()),
    }
}

/// Runs `lftp -d -c "SETTINGS open URL; SCRIPT; bye"` (debug output on stderr).
fn lftp(home: &Path, settings: &str, url: &str, script: &str) -> Output {
    let full = format!("{settings} open {url}; {script}; bye");
    let mut c = client("lftp", home);
    c.arg("-d").arg("-c").arg(full);
    exec0(&mut c)
}

fn lftp_mirror_round_trip(s: &TestServer, v6: bool, passive: bool, count: usize) {
    let home = scratch();
    let local = home.path().join("local");
    let back = home.path().join("back");
    make_tree(&local, count, true);
    std::fs::create_dir_all(local.join("empty/dir")).unwrap();
    std::fs::create_dir_all(&back).unwrap();
    let out = lftp(
        home.path(),
        &lftp_settings(s, v6, passive),
        &lftp_url(s, v6),
        &format!(
            "mirror -R --parallel=3 '{}' /up; mirror --parallel=3 /up '{}'",
            local.display(),
            back.join("up").display()
        ),
    );
    ok(&out, "lftp FTPS mirror -R then mirror");
    assert_same_tree(&local, &s.path("up"));
    assert_same_tree(&local, &back.join("up"));
    let debug = String::from_utf8_lossy(&out.stderr);
    for want in ["---> AUTH TLS", "---> PROT P", "Loaded 1 CAs"] {
        assert!(
            debug.contains(want),
            "lftp -d should show {want:?}:\n{debug}"
        );
    }
    assert!(!debug.contains("PROT C"), "no clear data:\n{debug}");
}

/// lftp really checks the certificate: trusting another server's certificate fails.
fn lftp_rejects_a_foreign_certificate(s: &TestServer, url: &str) {
    let other = TestServer::tls(|_| {});
    let home = scratch();
    let settings = lftp_settings(s, false, true).replace(
        &s.cert_path().display().to_string(),
        &other.cert_path().display().to_string(),
    );
    let out = lftp(home.path(), &settings, url, "ls");
    assert!(
        !out.status.success(),
        "lftp trusting another certificate must fail\n{}",
        show(&out)
    );
    let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(err.contains("certificate"), "{}", show(&out));
}

#[test]
fn lftp_ftps_mirror_ipv4_passive() {
    if !have("lftp") {
        return;
    }
    let s = TestServer::tls(|_| {});
    lftp_mirror_round_trip(&s, false, true, 50);
    lftp_rejects_a_foreign_certificate(&s, &lftp_url(&s, false));
}

#[test]
fn lftp_ftps_mirror_ipv6_passive() {
    if !have("lftp") {
        return;
    }
    let s = TestServer::tls(|_| {});
    if !has_v6(&s) {
        return;
    }
    lftp_mirror_round_trip(&s, true, true, 50);
}

#[test]
fn lftp_ftps_mirror_ipv4_active() {
    if !have("lftp") {
        return;
    }
    let s = TestServer::tls(|_| {});
    lftp_mirror_round_trip(&s, false, false, 30);
}

#[test]
fn lftp_ftps_implicit() {
    if !have("lftp") {
        return;
    }
    let s = TestServer::tls(|_| {});
    let implicit = s.implicit.expect("implicit listener");
    let home = scratch();
    let local = home.path().join("local");
    let back = home.path().join("back");
    make_tree(&local, 20, true);
    std::fs::create_dir_all(&back).unwrap();
    let out = lftp(
        home.path(),
        &lftp_settings(&s, false, true),
        &format!("ftps://{USER}:{PASS}@localhost:{}", implicit.port()),
        &format!(
            "mirror -R '{}' /up; mirror /up '{}'",
            local.display(),
            back.join("up").display()
        ),
    );
    ok(&out, "lftp implicit FTPS mirror -R then mirror");
    assert_same_tree(&local, &s.path("up"));
    assert_same_tree(&local, &back.join("up"));
    let debug = String::from_utf8_lossy(&out.stderr);
    assert!(
        !debug.contains("---> AUTH"),
        "no AUTH on implicit:\n{debug}"
    );
    assert!(!debug.contains("PROT C"), "no clear data:\n{debug}");
    lftp_rejects_a_foreign_certificate(
        &s,
        &format!("ftps://{USER}:{PASS}@localhost:{}", implicit.port()),
    );
}

#[test]
fn lftp_ftps_resumes_sessions_under_require_reuse() {
    if !have("lftp") {
        return;
    }
    // lftp copies the control connection's session to its data connections
    // (`ftp:ssl-copy-sid`), so `tls_data_reuse = "require"` lets it through, both ways.
    let s = TestServer::tls(|cfg| cfg.tls_data_reuse = TlsReuse::Require);
    let home = scratch();
    let up = bytes(500_000, 67);
    let src = home.path().join("src.bin");
    put_file(&src, &up);
    put_file(&s.path("down.bin"), &up);
    for passive in [true, false] {
        let got = home.path().join(format!("got-{passive}.bin"));
        let out = lftp(
            home.path(),
            &lftp_settings(&s, false, passive),
            &lftp_url(&s, false),
            &format!(
                "put '{}' -o up-{passive}.bin; get down.bin -o '{}'; cls -1",
                src.display(),
                got.display()
            ),
        );
        let listing = ok(
            &out,
            &format!("lftp under require reuse (passive {passive})"),
        );
        assert_file(&s.path(&format!("up-{passive}.bin")), &up);
        assert_file(&got, &up);
        assert!(listing.contains("down.bin"), "{listing}");
    }
}

// ---------------------------------------------------------------------------------------
// Python ftplib

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/py/ftplib_tls.py");

/// The marker the script looks for on the wire; must match `MARKER` in the script.
const MARKER: &[u8] = b"WHARF-CLEARTEXT-MARKER-7f3a9c";

/// Runs one scenario of the script against `addr`; returns its output.
fn ftplib(s: &TestServer, name: &str, addr: SocketAddr, work: &Path, passive: bool) -> Output {
    let mut c = client("python3", work);
    c.arg(SCRIPT)
        .arg(name)
        .arg(addr.ip().to_string())
        .arg(addr.port().to_string())
        .arg(s.cert_path())
        .arg(work)
        .arg(if passive { "passive" } else { "active" })
        .env("PYTHONIOENCODING", "utf-8")
        .env("PYTHONDONTWRITEBYTECODE", "1");
    exec0(&mut c)
}

fn ftplib_roundtrip(v6: bool, passive: bool) {
    if !have("python3") {
        return;
    }
    let s = TestServer::tls(|_| {});
    let addr = if v6 {
        if !has_v6(&s) {
            return;
        }
        s.v6.unwrap()
    } else {
        s.v4
    };
    let work = scratch();
    let up = bytes(333_333, 70);
    let down = bytes(1_048_576 + 5, 71);
    put_file(&work.path().join("up.bin"), &up);
    put_file(&work.path().join("expected_down.bin"), &down);
    put_file(&s.path("down.bin"), &down);
    std::fs::create_dir(s.path("sub")).unwrap();

    let out = ftplib(&s, "roundtrip", addr, work.path(), passive);
    ok(
        &out,
        &format!("ftplib FTP_TLS roundtrip ({addr}, passive {passive})"),
    );

    assert_file(&work.path().join("got.bin"), &down);
    assert_file(&s.path("up.bin"), &up);
    assert_file(&s.path("sub/empty.bin"), b"");
    for i in 0..10u8 {
        let data = vec![b'0' + i; (i as usize) * 997];
        assert_file(&s.path(&format!("sub/n{i}.bin")), &data);
    }
}

#[test]
fn ftplib_tls_roundtrip_ipv4_passive() {
    ftplib_roundtrip(false, true);
}

#[test]
fn ftplib_tls_roundtrip_ipv4_active() {
    ftplib_roundtrip(false, false);
}

#[test]
fn ftplib_tls_roundtrip_ipv6_passive() {
    ftplib_roundtrip(true, true);
}

#[test]
fn ftplib_tls_roundtrip_ipv6_active() {
    ftplib_roundtrip(true, false);
}

/// ftplib cannot resume the control session on data connections: under
/// `tls_data_reuse = "require"` each PROT P transfer gets a 425 that says why, and the
/// control connection carries on (PROT C transfers still work).
fn ftplib_require_reuse(passive: bool) {
    if !have("python3") {
        return;
    }
    let s = TestServer::tls(|cfg| cfg.tls_data_reuse = TlsReuse::Require);
    let work = scratch();
    let up = bytes(100_000, 72);
    let down = bytes(200_000, 73);
    put_file(&work.path().join("up.bin"), &up);
    put_file(&work.path().join("expected_down.bin"), &down);
    put_file(&s.path("down.bin"), &down);
    let out = ftplib(&s, "require_reuse", s.v4, work.path(), passive);
    ok(&out, &format!("ftplib require_reuse (passive {passive})"));
    // The refused upload stored nothing (the server may have created it empty).
    assert!(
        std::fs::read(s.path("refused.bin")).map_or(true, |b| b.is_empty()),
        "a refused STOR must not store data"
    );
    assert_file(&s.path("down.bin"), &down);
}

#[test]
fn ftplib_tls_require_reuse_refuses_cleanly_passive() {
    ftplib_require_reuse(true);
}

#[test]
fn ftplib_tls_require_reuse_refuses_cleanly_active() {
    ftplib_require_reuse(false);
}

/// The reuse rule binds a data connection to the logged-in user: resuming this or another
/// control connection of the same user is accepted (rclone shares sessions across its
/// connections); a session from a connection that never logged in or from another user is
/// refused with 425 — anyone can get a TLS session without a password.
fn ftplib_foreign_session(passive: bool) {
    if !have("python3") {
        return;
    }
    let s = TestServer::tls(|cfg| cfg.tls_data_reuse = TlsReuse::Require);
    let work = scratch();
    let down = bytes(100_000, 74);
    put_file(&work.path().join("expected_down.bin"), &down);
    put_file(&s.path("down.bin"), &down);
    let out = ftplib(&s, "foreign_session", s.v4, work.path(), passive);
    ok(&out, &format!("ftplib foreign_session (passive {passive})"));
}

#[test]
fn ftplib_tls_require_reuse_refuses_another_connections_session_passive() {
    ftplib_foreign_session(true);
}

#[test]
fn ftplib_tls_require_reuse_refuses_another_connections_session_active() {
    ftplib_foreign_session(false);
}

/// A plain TCP data connection under PROT P: the script checks that the file never arrives
/// in clear and that the control connection answers afterwards.
fn plain_data(scenario: &str, passive: bool) {
    if !have("python3") {
        return;
    }
    let s = TestServer::tls(|_| {});
    let work = scratch();
    put_file(&s.path("marker.txt"), MARKER);
    let out = ftplib(&s, scenario, s.v4, work.path(), passive);
    ok(&out, &format!("ftplib {scenario} (passive {passive})"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("plain data socket received"), "{text}");
    assert_file(&s.path("marker.txt"), MARKER);
    if scenario == "plain_upload" {
        // What the plain client sent must not have been taken as the file's content.
        assert!(
            std::fs::read(s.path("uploaded.txt")).map_or(true, |b| b.is_empty()),
            "plaintext accepted as a PROT P upload"
        );
    }
}

#[test]
fn ftplib_tls_prot_p_download_never_in_clear_passive() {
    plain_data("plain_download", true);
}

#[test]
fn ftplib_tls_prot_p_download_never_in_clear_active() {
    plain_data("plain_download", false);
}

#[test]
fn ftplib_tls_prot_p_plaintext_client_hello_fails_passive() {
    plain_data("plain_garbage_download", true);
}

#[test]
fn ftplib_tls_prot_p_plaintext_client_hello_fails_active() {
    plain_data("plain_garbage_download", false);
}

#[test]
fn ftplib_tls_prot_p_plaintext_upload_refused_passive() {
    plain_data("plain_upload", true);
}

#[test]
fn ftplib_tls_prot_p_plaintext_upload_refused_active() {
    plain_data("plain_upload", false);
}

// ---------------------------------------------------------------------------------------
// rclone

fn rclone_round_trip(s: &TestServer, port: u16, extra: &str) {
    let home = scratch();
    let remote = rclone_remote(
        home.path(),
        "127.0.0.1",
        port,
        &format!(",no_check_certificate=true{extra}"),
    );
    let local = home.path().join("local");
    make_tree(&local, 30, true);
    ok(
        &rclone(
            home.path(),
            &["copy", local.to_str().unwrap(), &format!("{remote}tree")],
        ),
        &format!("rclone copy up ({extra})"),
    );
    assert_same_tree(&local, &s.path("tree"));
    let back = home.path().join("back");
    ok(
        &rclone(
            home.path(),
            &["copy", &format!("{remote}tree"), back.to_str().unwrap()],
        ),
        &format!("rclone copy down ({extra})"),
    );
    assert_same_tree(&local, &back);
}

#[test]
fn rclone_ftps_explicit_copy_up_and_down() {
    if !have("rclone") {
        return;
    }
    let s = TestServer::tls(|_| {});
    rclone_round_trip(&s, s.v4.port(), ",explicit_tls=true");
}

#[test]
fn rclone_ftps_implicit_copy_up_and_down() {
    if !have("rclone") {
        return;
    }
    let s = TestServer::tls(|_| {});
    rclone_round_trip(&s, s.implicit.expect("implicit").port(), ",tls=true");
}

#[test]
fn rclone_ftps_resumes_sessions_under_require_reuse() {
    if !have("rclone") {
        return;
    }
    // rclone keeps a TLS session cache (tls_cache_size), so its data connections resume.
    let s = TestServer::tls(|cfg| cfg.tls_data_reuse = TlsReuse::Require);
    rclone_round_trip(&s, s.v4.port(), ",explicit_tls=true");
}

// ---------------------------------------------------------------------------------------
// openssl s_client

fn s_client(home: &Path, args: &[&str]) -> Output {
    let mut c = client("openssl", home);
    // -crlf: QUIT goes out as QUIT\r\n. -ign_eof: keep reading after stdin ends, until the
    // server closes the connection after its 221.
    c.arg("s_client").args(args).args(["-crlf", "-ign_eof"]);
    exec(&mut c, b"QUIT\n")
}

/// The checks common to both ports: the certificate verified for `localhost`, the session
/// went on over TLS until QUIT's 221, and the server then closed TLS properly.
#[track_caller]
fn check_s_client(out: &Output, what: &str) -> String {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("CONNECTED"), "{what}\n{}", show(out));
    assert!(text.contains("BEGIN CERTIFICATE"), "{what}\n{}", show(out));
    assert!(
        text.contains("Verified peername: localhost"),
        "{what}\n{}",
        show(out)
    );
    assert!(
        text.contains("Verify return code: 0 (ok)"),
        "{what}\n{}",
        show(out)
    );
    // The certificate names localhost (and wharf) in its subjectAltName.
    assert!(text.contains("subject="), "{what}\n{}", show(out));
    // QUIT went over the TLS connection and got its 221.
    assert!(
        text.contains("221 "),
        "{what}: QUIT answered over TLS\n{}",
        show(out)
    );
    // After 221 the server must end TLS with close_notify before closing TCP (RFC 8446
    // section 6.1, RFC 5246 section 7.2.1); without it OpenSSL 3 reports a truncation.
    assert!(
        !err.contains("unexpected eof while reading"),
        "{what}: the server closed the TLS control connection after 221 without \
         close_notify\n{}",
        show(out)
    );
    assert!(out.status.success(), "{what}\n{}", show(out));
    text
}

#[test]
fn openssl_s_client_starttls_ftp_verifies_the_certificate() {
    if !have("openssl") {
        return;
    }
    let s = TestServer::tls(|_| {});
    let home = scratch();
    let cert = s.cert_path().display().to_string();
    let addr = s.v4.to_string();
    for (flag, proto) in [("-tls1_3", "TLSv1.3"), ("-tls1_2", "TLSv1.2")] {
        // -starttls ftp: openssl reads the 220, sends AUTH TLS, expects 234, then handshakes.
        let out = s_client(
            home.path(),
            &[
                "-starttls",
                "ftp",
                "-connect",
                &addr,
                "-CAfile",
                &cert,
                "-servername",
                "localhost",
                "-verify_hostname",
                "localhost",
                "-verify_return_error",
                flag,
            ],
        );
        let what = format!("openssl s_client -starttls ftp {flag}");
        let text = check_s_client(&out, &what);
        assert!(
            text.contains(&format!("New, {proto}")),
            "{what}: negotiated {proto}\n{}",
            show(&out)
        );
    }
}

#[test]
fn openssl_s_client_implicit_port() {
    if !have("openssl") {
        return;
    }
    let s = TestServer::tls(|_| {});
    let home = scratch();
    let cert = s.cert_path().display().to_string();
    let addr = s.implicit.expect("implicit").to_string();
    let out = s_client(
        home.path(),
        &[
            "-connect",
            &addr,
            "-CAfile",
            &cert,
            "-servername",
            "localhost",
            "-verify_hostname",
            "localhost",
            "-verify_return_error",
        ],
    );
    let text = check_s_client(&out, "openssl s_client on the implicit port");
    // No AUTH here: the greeting itself came over TLS.
    assert!(text.contains("220 "), "greeting over TLS\n{}", show(&out));
}
