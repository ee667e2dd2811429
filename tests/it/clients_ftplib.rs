//! Python's ftplib against wharf, over IPv4 and IPv6, passive (PASV/EPSV) and active
//! (PORT/EPRT). The scenarios live in `py/ftplib_client.py` and check what the client sees;
//! the tests here prepare the files and check the server's disk afterwards.

use std::net::SocketAddr;
use std::path::Path;

use wharf::config::AnonymousMode;

use crate::clients_util::*;
use crate::harness::*;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/py/ftplib_client.py");

#[derive(Clone, Copy, Debug)]
enum Mode {
    Passive,
    Active,
}

/// Runs one scenario of the script against `addr`, asserting it passed; returns its stdout.
fn scenario(name: &str, addr: SocketAddr, work: &Path, mode: Mode, arg: Option<&str>) -> String {
    let mut c = client("python3", work);
    c.arg(SCRIPT)
        .arg(name)
        .arg(addr.ip().to_string())
        .arg(addr.port().to_string())
        .arg(work)
        .arg(match mode {
            Mode::Passive => "passive",
            Mode::Active => "active",
        })
        .env("PYTHONIOENCODING", "utf-8")
        .env("PYTHONDONTWRITEBYTECODE", "1");
    if let Some(a) = arg {
        c.arg(a);
    }
    ok(&exec0(&mut c), &format!("ftplib {name} ({addr}, {mode:?})"))
}

/// The server's IPv4 or IPv6 address; `None` (and a note) when the host has no IPv6.
fn pick(s: &TestServer, v6: bool) -> Option<SocketAddr> {
    if v6 {
        has_v6(s).then(|| s.v6.unwrap())
    } else {
        Some(s.v4)
    }
}

fn roundtrip(v6: bool, mode: Mode) {
    let s = TestServer::start();
    let Some(addr) = pick(&s, v6) else { return };
    let work = scratch();
    let up = bytes(333_333, 30);
    let down = bytes(1_048_576 + 5, 31);
    put_file(&work.path().join("up.bin"), &up);
    put_file(&work.path().join("expected_down.bin"), &down);
    put_file(&s.path("down.bin"), &down);

    let out = scenario("roundtrip", addr, work.path(), mode, None);

    assert_file(&work.path().join("got.bin"), &down);
    assert_file(&s.path("down.bin"), &down);
    assert_file(&s.path("renamed.bin"), &up);
    assert_file(&s.path("resumed.bin"), &up);
    assert_file(&s.path("sub/inner.bin"), &up);
    assert_file(&s.path("sub/fresh.bin"), b"fresh");
    assert!(s.path("sub/deeper").is_dir());
    for gone in [
        "up.bin",
        "appended.bin",
        "fresh.bin",
        "sub/deeper/deepest",
        "say \"hi\"",
    ] {
        assert_absent(&s.path(gone));
    }
    let stou = out
        .lines()
        .find_map(|l| l.strip_prefix("STOU "))
        .expect("the script prints the STOU name");
    assert_absent(&s.path(stou));
    let mut left: Vec<String> = std::fs::read_dir(s.root())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, ["down.bin", "renamed.bin", "resumed.bin", "sub"]);
}

#[test]
fn ftplib_roundtrip_ipv4_passive() {
    if !have("python3") {
        return;
    }
    roundtrip(false, Mode::Passive);
}

#[test]
fn ftplib_roundtrip_ipv4_active() {
    if !have("python3") {
        return;
    }
    roundtrip(false, Mode::Active);
}

#[test]
fn ftplib_roundtrip_ipv6_passive() {
    if !have("python3") {
        return;
    }
    roundtrip(true, Mode::Passive);
}

#[test]
fn ftplib_roundtrip_ipv6_active() {
    if !have("python3") {
        return;
    }
    roundtrip(true, Mode::Active);
}

/// The names the byte-for-byte name tests store, list, fetch and delete.
const NAMES: &[&str] = &[
    "été.txt",
    "日本語.txt",
    "😀 emoji.bin",
    "  two leading spaces",
    "trailing space ",
    "inner  double  spaces",
    "-la",
    "100% [x] {y} *z* ?.txt",
    "quote\"d 'single'",
    "ÅNGSTRÖM",
];

/// The contents the script gives the `i`th name.
fn name_data(i: usize, name: &str) -> Vec<u8> {
    let mut line = name.as_bytes().to_vec();
    line.push(b'\n');
    line.repeat((i + 1) * 100)
}

/// [`NAMES`] as the scripts' JSON argument.
fn names_arg() -> String {
    format!(
        "[{}]",
        NAMES
            .iter()
            .map(|n| format!("\"{}\"", n.replace('\\', "\\\\").replace('"', "\\\"")))
            .collect::<Vec<_>>()
            .join(",")
    )
}

/// The name scenarios (store, list, MLSD, SIZE, MDTM, CWD; fetch, rename, delete) on any
/// root, such as an S3 one: they check themselves through the protocol only.
pub fn names_through_the_protocol(s: &TestServer) {
    let (work, arg) = (scratch(), names_arg());
    scenario("names_put", s.v4, work.path(), Mode::Passive, Some(&arg));
    scenario(
        "names_get_delete",
        s.v4,
        work.path(),
        Mode::Passive,
        Some(&arg),
    );
}

fn names_round_trip(v6: bool, mode: Mode) {
    let s = TestServer::start();
    let Some(addr) = pick(&s, v6) else { return };
    let work = scratch();
    let arg = names_arg();
    scenario("names_put", addr, work.path(), mode, Some(&arg));
    // The names on disk are exactly the bytes the client sent.
    let mut on_disk: Vec<String> = std::fs::read_dir(s.root())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    on_disk.sort();
    let mut want: Vec<String> = NAMES.iter().map(|n| n.to_string()).collect();
    want.push(format!("dir {}", NAMES[0]));
    want.sort();
    assert_eq!(on_disk, want, "names on disk");
    for (i, name) in NAMES.iter().enumerate() {
        assert_file(&s.path(name), &name_data(i, name));
    }
    scenario("names_get_delete", addr, work.path(), mode, Some(&arg));
    assert_eq!(
        std::fs::read_dir(s.root()).unwrap().count(),
        0,
        "all deleted"
    );
}

#[test]
fn ftplib_names_round_trip_ipv4() {
    if !have("python3") {
        return;
    }
    names_round_trip(false, Mode::Passive);
}

#[test]
fn ftplib_names_round_trip_ipv6_active() {
    if !have("python3") {
        return;
    }
    names_round_trip(true, Mode::Active);
}

#[test]
fn ftplib_type_a_converts_line_endings() {
    if !have("python3") {
        return;
    }
    let s = TestServer::start();
    let work = scratch();
    put_file(&s.path("text.txt"), b"one\ntwo\n\nthree\n");
    scenario("ascii", s.v4, work.path(), Mode::Passive, None);
    assert_file(&s.path("up.txt"), b"alpha\nbeta\n\ngamma\n");
    assert_file(
        &s.path("big.txt"),
        &std::fs::read(work.path().join("big_unix.txt")).unwrap(),
    );
    assert_file(&s.path("text.txt"), b"one\ntwo\n\nthree\n");
}

#[test]
fn ftplib_anonymous_read_only() {
    if !have("python3") {
        return;
    }
    let s = TestServer::start();
    let work = scratch();
    let data = bytes(10_000, 32);
    put_file(&s.path("pub/file.bin"), &data);
    put_file(&work.path().join("expected.bin"), &data);
    scenario("anon_read", s.v4, work.path(), Mode::Passive, None);
    assert_file(&s.path("pub/file.bin"), &data);
    assert_absent(&s.path("pub/new.bin"));
    assert_absent(&s.path("newdir"));
    assert_absent(&s.path("moved.bin"));
}

#[test]
fn ftplib_drop_box() {
    if !have("python3") {
        return;
    }
    let s = TestServer::with(|c| c.anonymous = Some(AnonymousMode::Upload));
    let work = scratch();
    let data = bytes(20_000, 33);
    put_file(&work.path().join("up.bin"), &data);
    put_file(&s.path("existing.bin"), b"keep");
    scenario("dropbox", s.v4, work.path(), Mode::Passive, None);
    assert_file(&s.path("new.bin"), &data);
    assert_file(&s.path("inbox/2024/scan.bin"), &data);
    assert_file(&s.path("existing.bin"), b"keep");
    assert_absent(&s.path("moved.bin"));
}

#[test]
fn ftplib_cannot_leave_the_root() {
    if !have("python3") {
        return;
    }
    let s = TestServer::start();
    let work = scratch();
    let outside = scratch();
    put_file(&outside.path().join("passwd"), b"outside the root");
    put_file(&s.path("inside.txt"), b"inside");
    std::fs::create_dir(s.path("sub")).unwrap();
    std::os::unix::fs::symlink(outside.path(), s.path("escape")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("passwd"), s.path("escape_file")).unwrap();
    scenario("jail", s.v4, work.path(), Mode::Passive, None);
    assert_absent(&outside.path().join("wharf-test-must-not-exist"));
    assert_file(&outside.path().join("passwd"), b"outside the root");
}

#[test]
fn ftplib_non_utf8_name_round_trips_as_bytes() {
    if !have("python3") {
        return;
    }
    use std::os::unix::ffi::OsStrExt;
    let s = TestServer::start();
    let work = scratch();
    scenario("latin1", s.v4, work.path(), Mode::Passive, None);
    let name: &[u8] = b"caf\xe9 \xe0 la cr\xe8me2";
    let path = s.root().join(std::ffi::OsStr::from_bytes(name));
    assert_file(&path, b"latin-1 named");
    assert_eq!(std::fs::read_dir(s.root()).unwrap().count(), 1);
    scenario("latin1_delete", s.v4, work.path(), Mode::Passive, None);
    assert_absent(&path);
}

#[test]
fn ftplib_abort_during_download() {
    if !have("python3") {
        return;
    }
    let s = TestServer::start();
    let work = scratch();
    // Larger than the socket buffers, so the transfer is still running at ABOR; sparse, so
    // it costs nothing to make.
    let big = std::fs::File::create(s.path("big.bin")).unwrap();
    big.set_len(256 << 20).unwrap();
    put_file(&s.path("small.bin"), b"small");
    scenario("abort", s.v4, work.path(), Mode::Passive, None);
    assert_file(&s.path("after.bin"), b"after abort");
}

#[test]
fn ftplib_dotfiles_are_listed() {
    if !have("python3") {
        return;
    }
    let s = TestServer::start();
    let work = scratch();
    put_file(&s.path(".hidden"), b"dot");
    put_file(&s.path("visible"), b"plain");
    scenario("hidden", s.v4, work.path(), Mode::Passive, None);
}
