//! Helpers shared by the real-client tests (curl, ftplib, lftp, tnftp, ncftp, wget, rclone):
//! running a client under a time limit with a private HOME (curl and rclone with the
//! options every test gives them), writing trees of test files and checking files and
//! whole trees byte for byte.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::harness::{PASS, USER, bytes};

/// Seconds one client run may take before coreutils `timeout` kills it.
pub const CLIENT_LIMIT: u64 = 60;

/// A command running `program` under `timeout`, so a hung client fails the test instead of
/// hanging it, with `HOME` set to `home` (no rc file, netrc or state of the user's leaks in),
/// a UTF-8 locale and no proxy.
pub fn client(program: &str, home: &Path) -> Command {
    let mut c = Command::new("timeout");
    c.arg("--kill-after=5")
        .arg(CLIENT_LIMIT.to_string())
        .arg(program)
        .env("HOME", home)
        .env("LC_ALL", "C.UTF-8")
        .env("LANG", "C.UTF-8");
    for var in [
        "ftp_proxy",
        "FTP_PROXY",
        "all_proxy",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
    ] {
        c.env_remove(var);
    }
    c
}

/// Runs `cmd` with `input` on its standard input and collects its output.
pub fn exec(cmd: &mut Command, input: &[u8]) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let mut stdin = child.stdin.take().expect("stdin");
    // A client that exits early closes its end; that shows up in its output, not here.
    let _ = stdin.write_all(input);
    drop(stdin);
    child.wait_with_output().expect("wait for client")
}

/// Runs `cmd` with an empty standard input.
pub fn exec0(cmd: &mut Command) -> Output {
    crate::harness::run(cmd)
}

/// The client's output, for failure messages.
pub fn show(out: &Output) -> String {
    format!(
        "status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Asserts the client exited 0 and returns its standard output as text.
#[track_caller]
pub fn ok(out: &Output, what: &str) -> String {
    assert!(out.status.success(), "{what} failed\n{}", show(out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts the client exited with exactly `code`.
#[track_caller]
pub fn exit_code(out: &Output, code: i32, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: expected exit code {code}\n{}",
        show(out)
    );
}

/// `curl -sS --max-time 60 --connect-timeout 10` plus `args`, with a private HOME.
pub fn curl(home: &Path, args: &[&str]) -> Output {
    let mut c = client("curl", home);
    c.args(["-sS", "--max-time", "60", "--connect-timeout", "10"])
        .args(args);
    exec0(&mut c)
}

/// rclone's on-the-fly remote for judge on `host`, e.g. `:ftp,host=127.0.0.1,port=P,...:`,
/// with `extra` options (`,explicit_tls=true` …).
pub fn rclone_remote(home: &Path, host: &str, port: u16, extra: &str) -> String {
    let mut c = client("rclone", home);
    c.args(["obscure", PASS]);
    let obscured = ok(&exec0(&mut c), "rclone obscure");
    format!(
        ":ftp,host='{host}',port={port},user={USER},pass={}{extra}:",
        obscured.trim()
    )
}

/// rclone with no config file, one try, and short timeouts, run in `home`.
pub fn rclone(home: &Path, args: &[&str]) -> Output {
    let mut c = client("rclone", home);
    c.args([
        "--config",
        "/dev/null",
        "--retries",
        "1",
        "--low-level-retries",
        "1",
        "--contimeout",
        "10s",
        "--timeout",
        "30s",
    ])
    .args(args)
    .current_dir(home);
    exec0(&mut c)
}

/// The lines of a listing, without their CRLF, empty ones dropped.
pub fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.trim_end_matches('\r').to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// Writes `data` to `path`, creating parent directories.
pub fn put_file(path: &Path, data: &[u8]) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, data).unwrap();
}

/// Where two byte strings first differ, for a short failure message.
fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .or_else(|| (a.len() != b.len()).then(|| a.len().min(b.len())))
}

/// Asserts `path` exists and holds exactly `expected`.
#[track_caller]
pub fn assert_file(path: &Path, expected: &[u8]) {
    let got =
        std::fs::read(path).unwrap_or_else(|e| panic!("{} should exist: {e}", path.display()));
    if let Some(at) = first_difference(&got, expected) {
        let window = |v: &[u8]| {
            let end = (at + 16).min(v.len());
            format!("{:?}", String::from_utf8_lossy(&v[at.min(end)..end]))
        };
        panic!(
            "{}: {} bytes, expected {}; first difference at byte {at}: got {} expected {}",
            path.display(),
            got.len(),
            expected.len(),
            window(&got),
            window(expected)
        );
    }
}

/// Asserts nothing exists at `path`.
#[track_caller]
pub fn assert_absent(path: &Path) {
    assert!(
        std::fs::symlink_metadata(path).is_err(),
        "{} should not exist",
        path.display()
    );
}

/// Every entry under `root` by relative path: `None` for a directory, the contents for a file.
pub fn tree(root: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Option<Vec<u8>>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let rel = path.strip_prefix(root).unwrap().to_path_buf();
            if entry.file_type().unwrap().is_dir() {
                out.insert(rel, None);
                walk(root, &path, out);
            } else {
                out.insert(rel, Some(std::fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// Asserts `actual` holds the same directories and files as `expected`, byte for byte.
#[track_caller]
pub fn assert_same_tree(expected: &Path, actual: &Path) {
    let want = tree(expected);
    let got = tree(actual);
    let mut problems = Vec::new();
    for (path, data) in &want {
        match (data, got.get(path)) {
            (_, None) => problems.push(format!("missing: {}", path.display())),
            (None, Some(Some(_))) => {
                problems.push(format!("a file, not a dir: {}", path.display()))
            }
            (Some(_), Some(None)) => {
                problems.push(format!("a dir, not a file: {}", path.display()))
            }
            (Some(w), Some(Some(g))) => {
                if let Some(at) = first_difference(g, w) {
                    problems.push(format!(
                        "differs at byte {at}: {} ({} bytes, expected {})",
                        path.display(),
                        g.len(),
                        w.len()
                    ));
                }
            }
            (None, Some(None)) => {}
        }
    }
    for path in got.keys() {
        if !want.contains_key(path) {
            problems.push(format!("unexpected: {}", path.display()));
        }
    }
    assert!(
        problems.is_empty(),
        "{} differs from {} ({} problems):\n{}",
        actual.display(),
        expected.display(),
        problems.len(),
        problems
            .iter()
            .take(30)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Writes `count` files of assorted sizes (0 bytes, 1 byte, block edges, ~1 MiB) under
/// `root`, in nested directories; `fancy` adds names with spaces and UTF-8 and a dotfile.
/// Returns the relative paths written.
pub fn make_tree(root: &Path, count: usize, fancy: bool) -> Vec<String> {
    let mut names = Vec::with_capacity(count);
    for i in 0..count {
        let size = match i {
            7 => (1 << 20) + 3,
            150 => 1 << 20,
            _ => match i % 10 {
                0 => 0,
                1 => 1,
                2 => 511,
                3 => 4096,
                4 => 65_537,
                5 => 1000 + i * 37,
                6 => 3 * 8192 + 1,
                7 => 100,
                8 => 12_345,
                _ => 150_000 + i,
            },
        };
        let dir = match i % 7 {
            0 => String::new(),
            1 => "a/".into(),
            2 => "a/b/".into(),
            3 => "a/b/c/".into(),
            4 if fancy => "with space/".into(),
            4 => "d/".into(),
            5 if fancy => "dé日/".into(),
            5 => "e/f/".into(),
            _ => "g/".into(),
        };
        let file = match (fancy, i % 11) {
            (true, _) if i == 12 => format!(".hidden{i}"),
            (true, 3) => format!("file {i}.bin"),
            (true, 5) => format!("é{i}.txt"),
            _ => format!("f{i}.bin"),
        };
        let rel = format!("{dir}{file}");
        put_file(&root.join(&rel), &bytes(size, i as u64 + 1));
        names.push(rel);
    }
    names
}

/// Sets the modification time of `path` to `secs` after the Unix epoch.
pub fn set_mtime(path: &Path, secs: i64) {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs as u64);
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

/// The modification time of `path`, in whole seconds after the Unix epoch.
pub fn mtime(path: &Path) -> i64 {
    let t = std::fs::metadata(path).unwrap().modified().unwrap();
    t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// 2001-02-03 04:05:06 UTC: an old time (LIST shows the year) for timestamp checks.
pub const OLD_TIME: i64 = 981_173_106;

/// A fresh scratch directory (removed when dropped).
pub fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// Whether the server listens on IPv6 too; says so when it does not.
pub fn has_v6(s: &crate::harness::TestServer) -> bool {
    if s.v6.is_none() {
        eprintln!("skipping the IPv6 part: no ::1 on this host");
    }
    s.v6.is_some()
}
