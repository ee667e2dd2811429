//! The `path` fuzz check and its corpus replay, shared by the fuzz target
//! (`fuzz/fuzz_targets/path.rs`) and wharf's integration tests, which include this file:
//!
//! ```ignore
//! // tests/it/main.rs
//! #[path = "../../fuzz/replay_path.rs"]
//! mod replay_path;
//! ```
//!
//! Uses only `std` and `wharf::vfs`, and no inner attributes, so it compiles as a module
//! in either crate.

use wharf::vfs::{MAX_NAME, MAX_PATH, VPath};

/// Everything that must hold when a client's bytes are resolved as paths.
///
/// The input is split on LF (which never reaches a path from a control line) into
/// arguments; each is resolved against the directory the previous one gave (starting at
/// the root, like a run of CWDs) and then once more from its own result. Only the first 32
/// arguments count: one argument alone reaches any depth, and longer runs only cost time.
pub fn check_path(data: &[u8]) {
    let mut cwd = VPath::root();
    for arg in data.split(|b| *b == b'\n').take(32) {
        let Some(p) = resolve_checked(&cwd, arg) else {
            continue;
        };
        resolve_checked(&p, arg);
        cwd = p;
    }
}

/// Resolves `arg` from `cwd`, checks the outcome against a plain model and the result
/// against every invariant of a [`VPath`], and returns it.
fn resolve_checked(cwd: &VPath, arg: &[u8]) -> Option<VPath> {
    let res = cwd.resolve(arg);
    let want = model_resolve(cwd.as_bytes(), arg);
    match (&res, &want) {
        (Ok(p), Some(w)) => assert_eq!(p.as_bytes(), w.as_slice(), "resolve vs model"),
        (Err(_), None) => return None,
        (Ok(p), None) => panic!(
            "resolve accepted {arg:?} from {:?} as {:?}",
            cwd.as_bytes(),
            p.as_bytes()
        ),
        (Err(e), Some(w)) => panic!(
            "resolve refused {arg:?} from {:?} ({e}); model gives {w:?}",
            cwd.as_bytes()
        ),
    }
    let p = res.ok()?;
    check_vpath(&p);

    // Absolute arguments ignore the current directory.
    if arg.starts_with(b"/") {
        assert_eq!(VPath::root().resolve(arg).ok().as_ref(), Some(&p));
    }
    // Without a `..` component a relative argument never leaves the current directory.
    if !arg.starts_with(b"/") && !arg.split(|b| *b == b'/').any(|c| c == b"..") {
        assert!(
            is_within(p.as_bytes(), cwd.as_bytes()),
            "{:?} left {:?}",
            p.as_bytes(),
            cwd.as_bytes()
        );
    }
    // A sibling name, when the argument is one plain component.
    if let Ok(s) = p.with_name(arg) {
        assert!(!arg.is_empty() && arg != b"." && arg != b".." && !arg.contains(&b'/'));
        assert_eq!(s.parent(), p.parent());
        assert_eq!(s.components().count(), p.components().count().max(1));
        assert_eq!(s.file_name(), Some(arg));
    }
    Some(p)
}

/// What a resolved path must look like, and how it behaves under `..`.
fn check_vpath(p: &VPath) {
    let b = p.as_bytes();
    assert!(b.starts_with(b"/"), "not absolute: {b:?}");
    assert!(!b.contains(&0), "NUL in {b:?}");
    assert!(b.len() <= MAX_PATH, "longer than MAX_PATH: {}", b.len());
    assert_eq!(p.is_root(), b == b"/");
    // Splitting after the leading `/`, every piece is a real name: this one pass rules out
    // `//`, `/./`, `/../`, a `/.` or `/..` tail and a trailing `/` (the root aside).
    if b != b"/" {
        for c in b[1..].split(|x| *x == b'/') {
            assert!(!c.is_empty(), "`//` or trailing `/` in {b:?}");
            assert!(c != b"." && c != b"..", "dot component in {b:?}");
            assert!(c.len() <= MAX_NAME, "name longer than MAX_NAME in {b:?}");
        }
    }
    let comps: Vec<&[u8]> = p.components().collect();
    assert_eq!(
        comps.len(),
        if b == b"/" {
            0
        } else {
            b.iter().filter(|x| **x == b'/').count()
        }
    );
    assert_eq!(p.file_name(), comps.last().copied());
    // wharf's own names (uploads in progress) are recognised wherever they appear, so no
    // client can name one.
    assert_eq!(
        p.is_internal(),
        comps
            .iter()
            .any(|c| c.starts_with(wharf::vfs::UPLOAD_TEMP_PREFIX.as_bytes())),
        "internal name in {b:?}"
    );
    // Canonical: resolving it again, from anywhere, is the identity.
    assert_eq!(
        VPath::root().resolve(b).ok().as_ref(),
        Some(p),
        "not canonical"
    );
    assert_eq!(p.resolve(b).ok().as_ref(), Some(p));
    assert_eq!(p.resolve(b"./").ok().as_ref(), Some(p));
    // `..` climbs one component at a time and ends at the root, where it stays. Checked
    // step by step for the last four; the rest go in arguments of up to 1,000 `../`, which
    // keeps this linear in the depth.
    let steps = comps.len().min(4);
    let mut up = p.clone();
    let mut left = comps.len();
    while left > steps {
        let n = (left - steps).min(1000); // 3,000 bytes: an argument within MAX_PATH.
        up = up.resolve(&b"../".repeat(n)).expect("`../…` refused");
        left -= n;
        assert_eq!(up.components().count(), left);
    }
    for k in (0..steps).rev() {
        let next = up.resolve(b"..").expect("`..` refused");
        assert_eq!(next, up.parent());
        assert_eq!(next.components().count(), k);
        assert!(is_within(b, next.as_bytes()));
        up = next;
    }
    assert!(
        up.is_root(),
        "`..` {} times from {b:?} gave {:?}",
        comps.len(),
        up.as_bytes()
    );
    assert_eq!(up.resolve(b"..").ok(), Some(VPath::root()));
    assert_eq!(up.resolve(b"../../..").ok(), Some(VPath::root()));
}

/// Whether `p` is `dir` or beneath it, component-wise.
fn is_within(p: &[u8], dir: &[u8]) -> bool {
    dir == b"/" || p == dir || (p.starts_with(dir) && p.get(dir.len()) == Some(&b'/'))
}

/// The resolution rules written plainly, on bytes.
fn model_resolve(cwd: &[u8], arg: &[u8]) -> Option<Vec<u8>> {
    if arg.len() > MAX_PATH || arg.contains(&0) {
        return None;
    }
    let mut stack: Vec<&[u8]> = Vec::new();
    if !arg.starts_with(b"/") {
        stack.extend(cwd.split(|b| *b == b'/').filter(|c| !c.is_empty()));
    }
    for c in arg.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                stack.pop();
            }
            c if c.len() > MAX_NAME => return None,
            c => stack.push(c),
        }
    }
    let out = if stack.is_empty() {
        b"/".to_vec()
    } else {
        stack
            .iter()
            .flat_map(|c| [&b"/"[..], c])
            .flatten()
            .copied()
            .collect()
    };
    (out.len() <= MAX_PATH).then_some(out)
}

#[cfg(test)]
#[test]
fn replay_path_corpus() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    // From the wharf crate (tests/it) the corpus is under fuzz/; from fuzz/ itself, here.
    let dir = [root.join("fuzz/corpus/path"), root.join("corpus/path")]
        .into_iter()
        .find(|d| d.is_dir())
        .unwrap_or_else(|| panic!("no fuzz/corpus/path under {}", root.display()));
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let mut failed = Vec::new();
    for path in &files {
        let data = std::fs::read(path).unwrap();
        if std::panic::catch_unwind(|| check_path(&data)).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(!files.is_empty(), "no corpus files under {}", dir.display());
    assert!(
        failed.is_empty(),
        "{} of {} corpus inputs fail: {failed:#?}",
        failed.len(),
        files.len()
    );
    eprintln!("replayed {} path corpus files", files.len());
}
