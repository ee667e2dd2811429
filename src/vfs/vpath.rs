//! Virtual paths: normalised, absolute, inside the root by construction.
//!
//! A client's argument is resolved against the current directory here and nowhere else.
//! The result never holds `.`, `..`, empty components or NUL bytes, and `..` at the root
//! stays at the root, as in a chroot.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::error::Error;

/// The longest path argument accepted, in bytes.
pub const MAX_PATH: usize = 4096;
/// The longest single name, in bytes (the common filesystem limit).
pub const MAX_NAME: usize = 255;

/// Names of uploads in progress start with this; listings hide them.
pub const UPLOAD_TEMP_PREFIX: &str = ".wharf-upload.";
/// An interrupted upload kept for a resume: `.wharf-upload.resume-<hash>.<name>`, one per
/// name (the hash of the whole name, since the name in it may be cut short).
pub const UPLOAD_RESUME_PREFIX: &str = ".wharf-upload.resume-";

/// A normalised absolute path inside a jail: `/` or `/a/b`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VPath(Vec<u8>);

impl Default for VPath {
    fn default() -> Self {
        VPath::root()
    }
}

impl VPath {
    pub fn root() -> VPath {
        VPath(b"/".to_vec())
    }

    /// Resolves a client argument against `self` (the current directory).
    /// Backslashes and `%2e` are ordinary name bytes: FTP has neither escapes nor `\`
    /// separators, so `..\x` is a file name, not a way up.
    pub fn resolve(&self, arg: &[u8]) -> Result<VPath, Error> {
        if arg.len() > MAX_PATH || arg.contains(&0) {
            return Err(Error::InvalidName);
        }
        let mut parts: Vec<&[u8]> = if arg.starts_with(b"/") {
            Vec::new()
        } else {
            self.components().collect()
        };
        for c in arg.split(|b| *b == b'/') {
            match c {
                b"" | b"." => {}
                b".." => {
                    parts.pop();
                }
                name if name.len() > MAX_NAME => return Err(Error::InvalidName),
                name => parts.push(name),
            }
        }
        let mut out = Vec::with_capacity(arg.len() + self.0.len() + 1);
        for p in &parts {
            out.push(b'/');
            out.extend_from_slice(p);
        }
        if out.is_empty() {
            out.push(b'/');
        }
        if out.len() > MAX_PATH {
            return Err(Error::InvalidName);
        }
        Ok(VPath(out))
    }

    /// The bytes of the path, as shown to the client (PWD, 257, MLST).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn is_root(&self) -> bool {
        self.0 == b"/"
    }

    pub fn components(&self) -> impl Iterator<Item = &[u8]> {
        self.0.split(|b| *b == b'/').filter(|c| !c.is_empty())
    }

    /// Whether `self` is `dir` or lies below it.
    pub fn is_within(&self, dir: &VPath) -> bool {
        dir.is_root()
            || self.0 == dir.0
            || (self.0.starts_with(&dir.0) && self.0.get(dir.0.len()) == Some(&b'/'))
    }

    /// Whether a name in the path is one of wharf's own (an upload in progress), which no
    /// client may name: what it stored there would be hidden from every listing.
    pub fn is_internal(&self) -> bool {
        self.components()
            .any(|c| c.starts_with(UPLOAD_TEMP_PREFIX.as_bytes()))
    }

    /// The last name, or `None` for the root.
    pub fn file_name(&self) -> Option<&[u8]> {
        self.components().last()
    }

    /// The containing directory; the root is its own parent.
    pub fn parent(&self) -> VPath {
        match self.0.iter().rposition(|b| *b == b'/') {
            Some(0) | None => VPath::root(),
            Some(i) => VPath(self.0[..i].to_vec()),
        }
    }

    /// A sibling with another last name (for unique upload names); `name` must be one
    /// plain component.
    pub fn with_name(&self, name: &[u8]) -> Result<VPath, Error> {
        if name.is_empty() || name.contains(&b'/') || name == b"." || name == b".." {
            return Err(Error::InvalidName);
        }
        self.parent().resolve(name)
    }

    /// A hidden sibling for an upload in progress: `.wharf-upload.<random>.<name>`.
    pub fn upload_temp(&self) -> VPath {
        use argon2::password_hash::rand_core::{OsRng, RngCore};
        let mut name = format!("{UPLOAD_TEMP_PREFIX}{:016x}.", OsRng.next_u64()).into_bytes();
        let own = self.file_name().unwrap_or(b"upload");
        let room = MAX_NAME.saturating_sub(name.len());
        name.extend_from_slice(&own[..own.len().min(room)]);
        self.with_name(&name).unwrap_or_else(|_| self.clone())
    }

    /// The hidden sibling where an interrupted upload of this name waits for a resume.
    pub fn upload_resume(&self) -> VPath {
        use sha2::Digest;
        let own = self.file_name().unwrap_or(b"upload");
        let hash = sha2::Sha256::digest(own);
        let mut name = UPLOAD_RESUME_PREFIX.as_bytes().to_vec();
        for b in &hash[..8] {
            name.extend_from_slice(format!("{b:02x}").as_bytes());
        }
        name.push(b'.');
        let room = MAX_NAME.saturating_sub(name.len());
        name.extend_from_slice(&own[..own.len().min(room)]);
        self.with_name(&name).unwrap_or_else(|_| self.clone())
    }

    /// The path relative to the jail root, for the backend (never absolute, never `..`).
    pub(crate) fn relative(&self) -> &Path {
        if self.is_root() {
            Path::new(".")
        } else {
            Path::new(OsStr::from_bytes(&self.0[1..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(cwd: &str, arg: &[u8]) -> Result<String, ()> {
        let cwd = VPath::root().resolve(cwd.as_bytes()).unwrap();
        cwd.resolve(arg)
            .map(|p| String::from_utf8_lossy(p.as_bytes()).into_owned())
            .map_err(|_| ())
    }

    #[test]
    fn normalises() {
        assert_eq!(r("/", b"a/b/../c/./d/"), Ok("/a/c/d".into()));
        assert_eq!(r("/x/y", b"z"), Ok("/x/y/z".into()));
        assert_eq!(r("/x/y", b"/z"), Ok("/z".into()));
        assert_eq!(r("/x/y", b"//z//"), Ok("/z".into()));
        assert_eq!(r("/x", b"."), Ok("/x".into()));
        assert_eq!(r("/x", b""), Ok("/x".into()));
        assert_eq!(r("/x", b" lead"), Ok("/x/ lead".into()));
    }

    #[test]
    fn wharfs_own_names_are_internal() {
        let v = |s: &str| VPath::root().resolve(s.as_bytes()).unwrap();
        assert!(v("/up/.wharf-upload.0000.a.txt").is_internal());
        assert!(v("/.wharf-upload.x/inner").is_internal());
        assert!(v("/up/a.txt").upload_temp().is_internal());
        assert!(!v("/up/.wharf-uploa.txt").is_internal());
        assert!(!v("/up/x.wharf-upload.txt").is_internal());
    }

    #[test]
    fn every_escape_form_stays_inside() {
        assert_eq!(r("/", b".."), Ok("/".into()));
        assert_eq!(r("/a", b"../../../../etc/passwd"), Ok("/etc/passwd".into()));
        assert_eq!(r("/a/b", b"/../../.."), Ok("/".into()));
        // Backslashes and percent-encoding are name bytes, not separators or escapes.
        assert_eq!(r("/", b"..\\..\\etc"), Ok("/..\\..\\etc".into()));
        assert_eq!(
            r("/", b"%2e%2e/%2e%2e/etc"),
            Ok("/%2e%2e/%2e%2e/etc".into())
        );
        assert_eq!(r("/", b"...."), Ok("/....".into()));
        // NUL bytes and over-long input are refused outright.
        assert_eq!(r("/", b"a\0b"), Err(()));
        assert_eq!(r("/", &vec![b'a'; MAX_PATH + 1]), Err(()));
        assert_eq!(r("/", &vec![b'a'; MAX_NAME + 1]), Err(()));
        assert!(r("/", &vec![b'a'; MAX_NAME]).is_ok());
        assert!(r("/", &b"a/".repeat(MAX_PATH / 2)).is_ok());
    }

    #[test]
    fn relative_never_climbs() {
        for arg in [&b"../../x"[..], b"/..", b"a/../../b", b"/"] {
            let p = VPath::root().resolve(arg).unwrap();
            let rel = p.relative();
            assert!(!rel.is_absolute());
            assert!(
                rel.components()
                    .all(|c| !matches!(c, std::path::Component::ParentDir))
            );
        }
        assert_eq!(VPath::root().relative(), Path::new("."));
    }

    #[test]
    fn parent_and_names() {
        let p = VPath::root().resolve(b"/a/b").unwrap();
        assert_eq!(p.parent().as_bytes(), b"/a");
        assert_eq!(p.parent().parent().as_bytes(), b"/");
        assert_eq!(VPath::root().parent().as_bytes(), b"/");
        assert_eq!(p.file_name(), Some(&b"b"[..]));
        assert_eq!(VPath::root().file_name(), None);
        assert_eq!(p.with_name(b"c.1").unwrap().as_bytes(), b"/a/c.1");
        assert!(p.with_name(b"..").is_err());
        assert!(p.with_name(b"x/y").is_err());
    }
}
